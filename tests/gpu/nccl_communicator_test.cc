// NcclCommunicator against host-computed expectations, with a group of 1 GPU and a group of all
// the GPUs of the machine. Production runs one process per GPU; here each rank is a thread (one
// GPU each) and the unique id goes through a tiny in-process control communicator. Also: the
// watchdog (a peer that never joins the collective makes it fail with UNAVAILABLE, not hang).
#include "src/comm/nccl_communicator.h"

#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

// The control channel of the bootstrap: only Broadcast (once, from rank 0) is needed.
class ThreadBroadcastHub {
 public:
  void Post(const void* data, int64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    payload_.assign(static_cast<const char*>(data), static_cast<const char*>(data) + bytes);
    posted_ = true;
    cv_.notify_all();
  }
  void Read(void* data, int64_t bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return posted_; });
    std::memcpy(data, payload_.data(), std::min<size_t>(bytes, payload_.size()));
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool posted_ = false;
  std::vector<char> payload_;
};

class ThreadControl final : public Communicator {
 public:
  ThreadControl(ThreadBroadcastHub* hub, int rank, int size)
      : hub_(hub), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "thread"; }
  bool healthy() const override { return true; }
  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root != 0) return absl::UnimplementedError("root 0 only");
    rank_ == 0 ? hub_->Post(data, bytes) : hub_->Read(data, bytes);
    return absl::OkStatus();
  }
  absl::Status AllReduceSum(void*, int64_t, CommDType) override { return Unimplemented(); }
  absl::Status AllGatherV(const void*, void*, absl::Span<const int64_t>) override {
    return Unimplemented();
  }
  absl::Status AllToAllV(const void*, absl::Span<const int64_t>, void*,
                         absl::Span<const int64_t>) override {
    return Unimplemented();
  }
  absl::Status AllToAll(const void*, void*, int64_t) override { return Unimplemented(); }
  absl::Status Barrier() override { return Unimplemented(); }
  void set_timeout(std::chrono::milliseconds) override {}

 private:
  static absl::Status Unimplemented() { return absl::UnimplementedError("bootstrap only"); }
  ThreadBroadcastHub* hub_;
  int rank_, size_;
};

// Runs body(comm) on `size` threads, rank r on GPU r (after the NCCL bootstrap).
void RunGroup(int size, const std::function<void(NcclCommunicator&)>& body,
              std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  ThreadBroadcastHub hub;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; ++rank) {
    threads.emplace_back([&, rank] {
      ASSERT_EQ(cudaSetDevice(rank), cudaSuccess);
      ThreadControl control(&hub, rank, size);
      NcclCommunicatorOptions options;
      options.timeout = timeout;
      auto comm = CreateNcclCommunicator(control, rank, options);
      ASSERT_TRUE(comm.ok()) << "rank " << rank << ": " << comm.status();
      EXPECT_EQ((*comm)->rank(), rank);
      EXPECT_EQ((*comm)->size(), size);
      EXPECT_STREQ((*comm)->backend_name(), "nccl");
      body(**comm);
    });
  }
  for (auto& t : threads) t.join();
}

// Bytes rank s sends rank d in the all-to-all-v test (zero for some pairs), and their content.
int64_t PairBytes(int s, int d) { return ((s * 7 + d * 3) % 5) * 37; }
char PairByte(int s, int d, int64_t i) { return static_cast<char>((s * 31 + d * 17 + i) & 0xff); }

class NcclCommunicatorTest : public ::testing::TestWithParam<bool> {
 protected:
  // false: a group of 1 GPU; true: every GPU of the machine.
  int GroupSize() const { return GetParam() ? DeviceCount() : 1; }
};

TEST_P(NcclCommunicatorTest, AllReduceSumF32AndBf16) {
  SKIP_WITHOUT_CUDA();
  const int n = GroupSize();
  const int64_t count = 7168 * 3 + 5;
  RunGroup(n, [&](NcclCommunicator& comm) {
    const int r = comm.rank();
    std::vector<float> f32(count), want_f32(count);
    std::vector<float> bf(count), want_bf(count);
    for (int64_t i = 0; i < count; ++i) {
      f32[i] = static_cast<float>(i % 17 + r);  // small integers: sums are exact in any order
      want_f32[i] = static_cast<float>(n * (i % 17) + n * (n - 1) / 2);
      bf[i] = static_cast<float>(i % 8 + r);  // exact in bf16 while sums stay <= 256
      want_bf[i] = static_cast<float>(n * (i % 8) + n * (n - 1) / 2);
    }
    DeviceArray<float> d_f32(f32);
    ASSERT_TRUE(comm.AllReduceSum(d_f32.get(), count, CommDType::kF32).ok());
    EXPECT_EQ(d_f32.ToHost(), want_f32) << "rank " << r;

    DeviceArray<__nv_bfloat16> d_bf(gpu_test::ToBf16(bf));
    ASSERT_TRUE(comm.AllReduceSum(d_bf.get(), count, CommDType::kBF16).ok());
    if (n * 7 + n * (n - 1) / 2 <= 256) {
      EXPECT_EQ(gpu_test::FromBf16(d_bf.ToHost()), want_bf) << "rank " << r;
    } else {
      EXPECT_LT(gpu_test::MaxRelErr(gpu_test::FromBf16(d_bf.ToHost()), want_bf), 1e-2);
    }
    ASSERT_TRUE(comm.AllReduceSum(nullptr, 0, CommDType::kF32).ok());
    EXPECT_EQ(comm.stats().all_reduce.calls, 3);
    EXPECT_EQ(comm.stats().all_reduce.bytes, count * 4 + count * 2);
  });
}

TEST_P(NcclCommunicatorTest, AllGatherVUnevenZeroAndUniformSizes) {
  SKIP_WITHOUT_CUDA();
  const int n = GroupSize();
  RunGroup(n, [&](NcclCommunicator& comm) {
    const int r = comm.rank();
    const std::vector<std::vector<int64_t>> cases = {
        [&] {  // uneven, with zero-size ranks (every third one)
          std::vector<int64_t> b(n);
          for (int k = 0; k < n; ++k) b[k] = k % 3 == 1 ? 0 : 100 * (k + 1) + 3;
          return b;
        }(),
        std::vector<int64_t>(n, 7168 * 2),  // uniform: the ncclAllGather path
        std::vector<int64_t>(n, 0),         // nothing at all
    };
    for (const auto& bytes : cases) {
      std::vector<char> in(bytes[r]), want;
      for (int64_t i = 0; i < bytes[r]; ++i) in[i] = static_cast<char>(r * 13 + i);
      for (int k = 0; k < n; ++k) {
        for (int64_t i = 0; i < bytes[k]; ++i) want.push_back(static_cast<char>(k * 13 + i));
      }
      DeviceArray<char> d_in(in), d_out(want.size());
      const absl::Status s = comm.AllGatherV(d_in.get(), d_out.get(), bytes);
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_EQ(d_out.ToHost(), want) << "rank " << r << " first size " << bytes[0];
    }
    EXPECT_EQ(comm.stats().all_gather.calls, 3);
  });
}

TEST_P(NcclCommunicatorTest, AllToAllVUnevenAndAllToAll) {
  SKIP_WITHOUT_CUDA();
  const int n = GroupSize();
  RunGroup(n, [&](NcclCommunicator& comm) {
    const int r = comm.rank();
    std::vector<int64_t> send(n), recv(n);
    std::vector<char> in, want;
    for (int d = 0; d < n; ++d) {
      send[d] = PairBytes(r, d);
      for (int64_t i = 0; i < send[d]; ++i) in.push_back(PairByte(r, d, i));
    }
    for (int s = 0; s < n; ++s) {
      recv[s] = PairBytes(s, r);
      for (int64_t i = 0; i < recv[s]; ++i) want.push_back(PairByte(s, r, i));
    }
    DeviceArray<char> d_in(in), d_out(want.size());
    const absl::Status s = comm.AllToAllV(d_in.get(), send, d_out.get(), recv);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(d_out.ToHost(), want) << "rank " << r;

    const int64_t block = 7168 * 2 + 6;
    std::vector<char> in2(block * n), want2(block * n);
    for (int d = 0; d < n; ++d) {
      for (int64_t i = 0; i < block; ++i) {
        in2[d * block + i] = PairByte(r, d, i);
        want2[d * block + i] = PairByte(d, r, i);
      }
    }
    DeviceArray<char> d_in2(in2), d_out2(want2.size());
    ASSERT_TRUE(comm.AllToAll(d_in2.get(), d_out2.get(), block).ok());
    EXPECT_EQ(d_out2.ToHost(), want2) << "rank " << r;
    EXPECT_EQ(comm.stats().all_to_all.calls, 2);
  });
}

TEST_P(NcclCommunicatorTest, BroadcastAndBarrier) {
  SKIP_WITHOUT_CUDA();
  const int n = GroupSize();
  RunGroup(n, [&](NcclCommunicator& comm) {
    const int r = comm.rank(), root = n - 1;
    const int64_t bytes = 4099;
    std::vector<char> mine(bytes), want(bytes);
    for (int64_t i = 0; i < bytes; ++i) {
      mine[i] = static_cast<char>(r * 5 + i);
      want[i] = static_cast<char>(root * 5 + i);
    }
    DeviceArray<char> d(mine);
    ASSERT_TRUE(comm.Broadcast(d.get(), bytes, root).ok());
    EXPECT_EQ(d.ToHost(), want) << "rank " << r;
    EXPECT_EQ(comm.stats().broadcast.bytes, r == root ? bytes : 0);
    ASSERT_TRUE(comm.Barrier().ok());
    EXPECT_TRUE(comm.healthy());
  });
}

TEST_P(NcclCommunicatorTest, BadArgumentsAreRejectedWithoutBreakingTheGroup) {
  SKIP_WITHOUT_CUDA();
  const int n = GroupSize();
  RunGroup(n, [&](NcclCommunicator& comm) {
    const std::vector<int64_t> wrong(n + 1, 4);
    EXPECT_EQ(comm.AllGatherV(nullptr, nullptr, wrong).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(comm.Broadcast(nullptr, 4, n).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(comm.AllReduceSum(nullptr, -1, CommDType::kF32).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(comm.healthy());
    EXPECT_TRUE(comm.Barrier().ok());
  });
}

INSTANTIATE_TEST_SUITE_P(Groups, NcclCommunicatorTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "AllGpus" : "OneGpu"; });

TEST(NcclWatchdogTest, MissingPeerTimesOutWithUnavailable) {
  SKIP_WITHOUT_CUDA();
  if (DeviceCount() < 2) GTEST_SKIP() << "needs 2 GPUs: skipped";
  RunGroup(2, [&](NcclCommunicator& comm) {
    if (comm.rank() == 1) {
      // Never joins the all-reduce; shorten its own timeout so its destructor ends soon too.
      comm.set_timeout(std::chrono::milliseconds(1500));
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      return;
    }
    comm.set_timeout(std::chrono::milliseconds(500));
    DeviceArray<float> d(std::vector<float>(1024, 1.f));
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status s = comm.AllReduceSum(d.get(), 1024, CommDType::kF32);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_NE(s.message().find("timed out"), std::string::npos) << s;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    EXPECT_FALSE(comm.healthy());
    EXPECT_EQ(comm.Barrier().code(), absl::StatusCode::kUnavailable);
  });
}

}  // namespace
}  // namespace dsinfer
