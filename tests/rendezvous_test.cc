// The gRPC rendezvous store: a RendezvousServer on 127.0.0.1 (ephemeral port), clients in
// threads (set / get / wait, timeouts, a client that starts before the leader, tokens), and a
// real Gloo full-mesh rendezvous through GrpcStore followed by an all-reduce.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gloo/allreduce.h"
#include "gloo/common/error.h"
#include "gloo/math.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "src/comm/rendezvous_store.h"

namespace dsinfer {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string Address(int port) { return absl::StrCat("127.0.0.1:", port); }

RendezvousClientOptions Opts(milliseconds timeout, std::string token = "") {
  RendezvousClientOptions o;
  o.timeout = timeout;
  o.token = std::move(token);
  return o;
}

class RendezvousTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto port = server_.Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status();
    ASSERT_GT(*port, 0);
    leader_ = Address(*port);
  }
  RendezvousServer server_;
  std::string leader_;
};

TEST_F(RendezvousTest, SetThenGet) {
  RendezvousClient client(leader_, Opts(milliseconds(5000)));
  ASSERT_TRUE(client.Set("a", "alpha").ok());
  ASSERT_TRUE(client.Set("b", std::string("\0bin\xff", 5)).ok());
  auto values = client.Get({"b", "a"}, milliseconds(1000));
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(*values, (std::vector<std::string>{std::string("\0bin\xff", 5), "alpha"}));
  ASSERT_TRUE(client.Set("a", "again").ok());  // overwrite
  EXPECT_EQ(client.Get({"a"}, milliseconds(1000))->front(), "again");
  EXPECT_TRUE(client.Wait({"a", "b"}, milliseconds(0)).ok());
}

TEST_F(RendezvousTest, GetWaitsForKeysSetByOtherClients) {
  constexpr int kRanks = 6;
  std::vector<std::string> keys;
  for (int r = 0; r < kRanks; ++r) keys.push_back(absl::StrCat("rank/", r));
  std::vector<std::vector<std::string>> got(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      RendezvousClient client(leader_, Opts(milliseconds(10000)));
      std::this_thread::sleep_for(milliseconds(20 * r));  // staggered: most Gets must wait
      ASSERT_TRUE(client.Set(keys[r], absl::StrCat("addr-", r)).ok());
      auto values = client.Get(keys, milliseconds(10000));
      ASSERT_TRUE(values.ok()) << values.status();
      got[r] = *values;
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_EQ(got[r].size(), static_cast<size_t>(kRanks));
    for (int k = 0; k < kRanks; ++k) EXPECT_EQ(got[r][k], absl::StrCat("addr-", k));
  }
}

TEST_F(RendezvousTest, GrpcStoreSetGetWait) {
  GrpcStore setter(leader_, Opts(milliseconds(5000)));
  GrpcStore getter(leader_, Opts(milliseconds(5000)));
  std::thread later([&] {
    std::this_thread::sleep_for(milliseconds(100));
    setter.set("k", {'x', 'y', 'z'});
  });
  getter.wait({"k"}, milliseconds(5000));
  EXPECT_EQ(getter.get("k"), (std::vector<char>{'x', 'y', 'z'}));
  later.join();
}

TEST_F(RendezvousTest, WaitTimeoutNamesKeyAndLeader) {
  RendezvousClient client(leader_, Opts(milliseconds(5000)));
  ASSERT_TRUE(client.Set("present", "1").ok());
  const auto t0 = Clock::now();
  const absl::Status s = client.Wait({"present", "never-set"}, milliseconds(300));
  const auto waited = Clock::now() - t0;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("\"never-set\""), std::string::npos) << s;
  EXPECT_EQ(s.message().find("\"present\" not set"), std::string::npos) << s;
  EXPECT_NE(s.message().find(leader_), std::string::npos) << s;
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(3000));

  GrpcStore store(leader_, Opts(milliseconds(200)));
  try {
    store.wait({"never-set"});
    ADD_FAILURE() << "wait did not throw";
  } catch (const gloo::IoException& e) {
    EXPECT_NE(std::string(e.what()).find("never-set"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(leader_), std::string::npos) << e.what();
  }
  EXPECT_THROW(store.get("never-set"), gloo::IoException);
}

TEST_F(RendezvousTest, StopEndsPendingWaits) {
  std::atomic<bool> done{false};
  absl::Status status;
  std::thread waiter([&] {
    RendezvousClient client(leader_, Opts(milliseconds(1500)));
    status = client.Wait({"never-set"}, milliseconds(1500));
    done = true;
  });
  std::this_thread::sleep_for(milliseconds(200));
  const auto t0 = Clock::now();
  server_.Stop();  // must not wait for the pending Get
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  waiter.join();
  EXPECT_TRUE(done);
  EXPECT_FALSE(status.ok());
}

TEST(RendezvousClientTest, ClientStartedBeforeTheLeaderConnectsOnceItIsUp) {
  // Find a free port, release it, and bring the leader up there only after the client started.
  int port = 0;
  {
    RendezvousServer probe;
    auto p = probe.Start("127.0.0.1:0");
    ASSERT_TRUE(p.ok()) << p.status();
    port = *p;
  }
  std::vector<char> got;
  std::thread rank([&] {
    GrpcStore store(Address(port), Opts(milliseconds(15000)));
    store.set("early", {'1'});  // retried until the leader is up
    got = store.get("early");
  });
  std::this_thread::sleep_for(milliseconds(700));
  RendezvousServer leader;
  auto p = leader.Start(Address(port));
  ASSERT_TRUE(p.ok()) << p.status();
  rank.join();
  EXPECT_EQ(got, std::vector<char>{'1'});
}

TEST(RendezvousClientTest, UnreachableLeaderTimesOutWithAClearError) {
  int port = 0;
  {
    RendezvousServer probe;
    port = *probe.Start("127.0.0.1:0");
  }
  RendezvousClient client(Address(port), Opts(milliseconds(400)));
  const auto t0 = Clock::now();
  const absl::Status s = client.Set("k", "v");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find(Address(port)), std::string::npos) << s;
  EXPECT_NE(s.message().find("\"k\""), std::string::npos) << s;
  EXPECT_LT(Clock::now() - t0, milliseconds(3000));
}

TEST(RendezvousClientTest, WrongOrMissingTokenIsRefused) {
  RendezvousServer server;
  auto port = server.Start("127.0.0.1:0", "s3cret");
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string leader = Address(*port);
  for (const std::string token : {"", "wrong"}) {
    RendezvousClient stray(leader, Opts(milliseconds(5000), token));
    const auto t0 = Clock::now();
    const absl::Status s = stray.Set("k", "v");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_LT(Clock::now() - t0, milliseconds(2000)) << "refusals are not retried";
    EXPECT_EQ(stray.Get({"k"}, milliseconds(100)).status().code(),
              absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(s.message().find("s3cret"), std::string::npos);
  }
  RendezvousClient member(leader, Opts(milliseconds(5000), "s3cret"));
  ASSERT_TRUE(member.Set("k", "v").ok());
  EXPECT_EQ(member.Get({"k"}, milliseconds(100))->front(), "v");
  GrpcStore stray_store(leader, Opts(milliseconds(5000), "wrong"));
  EXPECT_THROW(stray_store.set("k", {'v'}), gloo::IoException);
}

TEST_F(RendezvousTest, GlooFullMeshThroughTheStoreThenAllreduce) {
  constexpr int kSize = 3;
  constexpr size_t kCount = 1000;
  std::vector<std::vector<float>> results(kSize);
  std::vector<std::string> errors(kSize);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kSize; ++rank) {
    ranks.emplace_back([&, rank] {
      try {
        GrpcStore store(leader_, Opts(milliseconds(20000)));
        gloo::transport::tcp::attr attr;
        attr.hostname = "127.0.0.1";
        auto device = gloo::transport::tcp::CreateDevice(attr);
        auto context = std::make_shared<gloo::rendezvous::Context>(rank, kSize);
        context->setTimeout(milliseconds(20000));
        context->connectFullMesh(store, device);

        std::vector<float> data(kCount);
        for (size_t i = 0; i < kCount; ++i) data[i] = static_cast<float>((rank + 1) * i);
        gloo::AllreduceOptions opts(context);
        opts.setOutput(data.data(), data.size());
        opts.setReduceFunction(
            static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
        opts.setTag(1);
        gloo::allreduce(opts);
        results[rank] = std::move(data);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (int rank = 0; rank < kSize; ++rank) {
    ASSERT_EQ(errors[rank], "") << "rank " << rank;
    ASSERT_EQ(results[rank].size(), kCount);
    for (size_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(results[rank][i], static_cast<float>(6 * i)) << "rank " << rank << " i " << i;
    }
  }
}

}  // namespace
}  // namespace dsinfer
