#include "src/comm/gloo_communicator.h"

#include <csignal>
#include <chrono>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gloo/allgatherv.h"
#include "gloo/allreduce.h"
#include "gloo/alltoall.h"
#include "gloo/alltoallv.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/math.h"
#include "gloo/rendezvous/context.h"
#include "gloo/rendezvous/store.h"
#include "gloo/transport/tcp/device.h"
#include "src/core/numeric.h"

namespace dsinfer {
namespace {

// bf16 sum for Gloo's reduce hook: each pair is added in f32 and rounded once.
void SumBf16(void* c, const void* a, const void* b, size_t n) {
  auto* out = static_cast<uint16_t*>(c);
  const auto* x = static_cast<const uint16_t*>(a);
  const auto* y = static_cast<const uint16_t*>(b);
  for (size_t i = 0; i < n; ++i) out[i] = F32ToBf16(Bf16ToF32(x[i]) + Bf16ToF32(y[i]));
}

// Gloo wants a buffer even for zero bytes.
char g_empty[8];
template <typename T>
T* NonNull(T* p) {
  return p != nullptr ? p : reinterpret_cast<T*>(g_empty);
}

}  // namespace

GlooCommunicator::GlooCommunicator(std::shared_ptr<gloo::Context> context, int rank, int size,
                                   std::chrono::milliseconds timeout)
    : context_(std::move(context)), rank_(rank), size_(size), timeout_(timeout) {}

GlooCommunicator::~GlooCommunicator() = default;

absl::StatusOr<std::unique_ptr<GlooCommunicator>> GlooCommunicator::Create(
    gloo::rendezvous::Store& store, const GlooOptions& o) {
  if (o.size < 1 || o.rank < 0 || o.rank >= o.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("communicator: rank ", o.rank, " is not in [0, ", o.size, ")"));
  }
  // Gloo's TCP transport writes without MSG_NOSIGNAL: a peer that leaves would kill this process
  // with SIGPIPE instead of failing the collective with an error. Ignore it (once, and only where
  // nobody installed a handler).
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] {
    struct sigaction old {};
    if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  });
  try {
    gloo::transport::tcp::attr attr(o.bind_address.c_str());
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(o.rank, o.size);
    ctx->setTimeout(o.timeout);
    ctx->connectFullMesh(store, dev);
    return std::unique_ptr<GlooCommunicator>(
        new GlooCommunicator(std::move(ctx), o.rank, o.size, o.timeout));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", o.rank, " of ", o.size,
                                               " could not connect to the other ranks (bind ",
                                               o.bind_address, "): ", e.what()));
  }
}

template <typename Fn>
absl::Status GlooCommunicator::Run(const char* op, CommStats::Op& stat, int64_t bytes, Fn&& fn) {
  if (!healthy_) {
    return absl::UnavailableError(
        absl::StrCat(op, ": the communicator failed earlier; a rank is gone"));
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    fn();
  } catch (const std::exception& e) {
    healthy_ = false;
    return absl::UnavailableError(absl::StrCat(op, " on rank ", rank_, " of ", size_,
                                               " failed (a rank is gone or timed out): ",
                                               e.what()));
  }
  stat.calls += 1;
  stat.bytes += bytes;
  stat.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return absl::OkStatus();
}

absl::Status GlooCommunicator::AllReduceSum(void* data, int64_t count, CommDType dtype) {
  const size_t elem = dtype == CommDType::kF32 ? 4 : 2;
  if (size_ == 1 || count == 0) return absl::OkStatus();
  return Run("all-reduce", stats_.all_reduce, count * static_cast<int64_t>(elem), [&] {
    gloo::AllreduceOptions opts(context_);
    opts.setTimeout(timeout_);
    if (dtype == CommDType::kF32) {
      opts.setInput(static_cast<float*>(data), count);
      opts.setOutput(static_cast<float*>(data), count);
      opts.setReduceFunction(
          static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
    } else {
      opts.setInput(static_cast<uint16_t*>(data), count);
      opts.setOutput(static_cast<uint16_t*>(data), count);
      opts.setReduceFunction(&SumBf16);
    }
    gloo::allreduce(opts);
  });
}

absl::Status GlooCommunicator::AllGatherV(const void* in, void* out,
                                          absl::Span<const int64_t> bytes_per_rank) {
  if (static_cast<int>(bytes_per_rank.size()) != size_) {
    return absl::InvalidArgumentError("all-gather: one size per rank expected");
  }
  std::vector<size_t> elements(bytes_per_rank.begin(), bytes_per_rank.end());
  return Run("all-gather", stats_.all_gather, bytes_per_rank[rank_], [&] {
    gloo::AllgathervOptions opts(context_);
    opts.setTimeout(timeout_);
    opts.setInput(NonNull(const_cast<char*>(static_cast<const char*>(in))),
                  elements[rank_]);
    opts.setOutput(NonNull(static_cast<char*>(out)), elements);
    gloo::allgatherv(opts);
  });
}

absl::Status GlooCommunicator::AllToAllV(const void* in, absl::Span<const int64_t> send_bytes,
                                         void* out, absl::Span<const int64_t> recv_bytes) {
  if (static_cast<int>(send_bytes.size()) != size_ ||
      static_cast<int>(recv_bytes.size()) != size_) {
    return absl::InvalidArgumentError("all-to-all-v: one size per rank expected");
  }
  int64_t sent = 0;
  for (int64_t b : send_bytes) sent += b;
  return Run("all-to-all-v", stats_.all_to_all, sent, [&] {
    gloo::AlltoallvOptions opts(context_);
    opts.setTimeout(timeout_);
    opts.setInput(NonNull(const_cast<char*>(static_cast<const char*>(in))),
                  std::vector<int64_t>(send_bytes.begin(), send_bytes.end()));
    opts.setOutput(NonNull(static_cast<char*>(out)),
                   std::vector<int64_t>(recv_bytes.begin(), recv_bytes.end()));
    gloo::alltoallv(opts);
  });
}

absl::Status GlooCommunicator::AllToAll(const void* in, void* out, int64_t bytes_per_rank) {
  return Run("all-to-all", stats_.all_to_all, bytes_per_rank * size_, [&] {
    gloo::AlltoallOptions opts(context_);
    opts.setTimeout(timeout_);
    opts.setInput(const_cast<char*>(static_cast<const char*>(in)), bytes_per_rank * size_);
    opts.setOutput(static_cast<char*>(out), bytes_per_rank * size_);
    gloo::alltoall(opts);
  });
}

absl::Status GlooCommunicator::Broadcast(void* data, int64_t bytes, int root) {
  if (root < 0 || root >= size_) return absl::InvalidArgumentError("broadcast: bad root rank");
  if (size_ == 1 || bytes == 0) return absl::OkStatus();
  return Run("broadcast", stats_.broadcast, rank_ == root ? bytes : 0, [&] {
    gloo::BroadcastOptions opts(context_);
    opts.setTimeout(timeout_);
    opts.setRoot(root);
    if (rank_ == root) opts.setInput(static_cast<char*>(data), bytes);
    opts.setOutput(static_cast<char*>(data), bytes);
    gloo::broadcast(opts);
  });
}

absl::Status GlooCommunicator::Barrier() {
  if (size_ == 1) return absl::OkStatus();
  CommStats::Op ignored;
  return Run("barrier", ignored, 0, [&] {
    gloo::BarrierOptions opts(context_);
    opts.setTimeout(timeout_);
    gloo::barrier(opts);
  });
}

}  // namespace dsinfer
