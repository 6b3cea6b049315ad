// NcclCommunicator: non-blocking NCCL communicator with an inline watchdog (see the header).
#include "src/comm/nccl_communicator.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dsinfer {
namespace {

using Clock = std::chrono::steady_clock;

// Spin (yielding) this long before sleeping between polls: a decode-step collective takes tens
// of microseconds, and sleeping would add more than that.
constexpr auto kSpinFor = std::chrono::milliseconds(2);
constexpr auto kPollSleep = std::chrono::microseconds(100);
// ncclCommFinalize waits for the peers to quiesce; do not let a destructor wait longer.
constexpr auto kFinalizeTimeout = std::chrono::seconds(30);

bool Launched(ncclResult_t r) { return r == ncclSuccess || r == ncclInProgress; }

// Runs body() between ncclGroupStart and ncclGroupEnd; always closes the group, so a failure
// does not leave this thread inside a group.
template <typename Body>
ncclResult_t Grouped(Body&& body) {
  ncclResult_t r = ncclGroupStart();
  if (r != ncclSuccess) return r;
  const ncclResult_t body_r = body();
  const ncclResult_t end_r = ncclGroupEnd();
  return Launched(body_r) ? end_r : body_r;
}

absl::Status ValidateSizes(absl::Span<const int64_t> sizes, int group, absl::string_view what) {
  if (static_cast<int>(sizes.size()) != group) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", sizes.size(), " entries for a group of ", group, " ranks"));
  }
  for (int64_t s : sizes) {
    if (s < 0) return absl::InvalidArgumentError(absl::StrCat(what, " has a negative size ", s));
  }
  return absl::OkStatus();
}

size_t DTypeBytes(CommDType d) { return d == CommDType::kF32 ? 4 : 2; }
ncclDataType_t NcclType(CommDType d) { return d == CommDType::kF32 ? ncclFloat : ncclBfloat16; }

}  // namespace

NcclCommunicator::NcclCommunicator(int rank, int size, int device, cudaStream_t stream,
                                   bool owns_stream, std::chrono::milliseconds timeout)
    : rank_(rank),
      size_(size),
      device_(device),
      stream_(stream),
      owns_stream_(owns_stream),
      timeout_ms_(timeout.count()) {}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    int rank, int size, const NcclUniqueIdBytes& id, int device,
    const NcclCommunicatorOptions& options) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrCat("nccl: rank ", rank, " of ", size));
  }
  if (const cudaError_t err = cudaSetDevice(device); err != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        absl::StrCat("nccl: cudaSetDevice(", device, "): ", cudaGetErrorString(err)));
  }
  cudaStream_t stream = options.stream;
  const bool owns_stream = stream == nullptr;
  if (owns_stream) {
    // A blocking stream: it waits for work on the legacy default stream (cudaMemset,
    // cudaMemcpy of the inputs), so callers that use it need no extra synchronisation.
    if (const cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamDefault);
        err != cudaSuccess) {
      cudaGetLastError();
      return absl::InternalError(
          absl::StrCat("nccl: cudaStreamCreate on device ", device, ": ", cudaGetErrorString(err)));
    }
  }
  std::unique_ptr<NcclCommunicator> comm(
      new NcclCommunicator(rank, size, device, stream, owns_stream, options.timeout));
  if (const cudaError_t err = cudaMalloc(&comm->barrier_scratch_, sizeof(float));
      err != cudaSuccess) {
    comm->barrier_scratch_ = nullptr;
    cudaGetLastError();
    return absl::ResourceExhaustedError(
        absl::StrCat("nccl: barrier scratch on device ", device, ": ", cudaGetErrorString(err)));
  }

  ncclUniqueId uid;
  static_assert(sizeof(uid.internal) == std::tuple_size_v<NcclUniqueIdBytes>);
  std::memcpy(uid.internal, id.data(), id.size());
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // see the header: nothing may hang on a dead peer, init included
  ncclComm_t raw = nullptr;
  const ncclResult_t r = ncclCommInitRankConfig(&raw, size, uid, rank, &config);
  comm->comm_ = raw;
  constexpr absl::string_view kInit = "ncclCommInitRankConfig";
  if (!Launched(r)) return comm->Fail(r, kInit);
  if (raw == nullptr) return absl::InternalError("nccl: ncclCommInitRankConfig gave no comm");
  if (absl::Status s = comm->WaitDone(kInit, /*query_stream=*/false); !s.ok()) return s;
  return comm;
}

NcclCommunicator::~NcclCommunicator() {
  cudaSetDevice(device_);
  if (comm_ != nullptr) {
    // Finalize flushes our work and waits for the group to quiesce; bounded, then abort.
    timeout_ms_ = std::min<int64_t>(
        timeout_ms_,
        std::chrono::duration_cast<std::chrono::milliseconds>(kFinalizeTimeout).count());
    const ncclResult_t r = ncclCommFinalize(comm_);
    if (Launched(r) && WaitDone("ncclCommFinalize", /*query_stream=*/false).ok()) {
      ncclCommDestroy(comm_);
    } else if (comm_ != nullptr) {
      ncclCommAbort(comm_);
    }
    comm_ = nullptr;
  }
  if (barrier_scratch_ != nullptr) cudaFree(barrier_scratch_);
  if (owns_stream_ && stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status NcclCommunicator::CheckUsable(absl::string_view op) const {
  if (comm_ != nullptr) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("nccl ", op, ": the communicator was aborted earlier: ", broken_.message()));
}

void NcclCommunicator::Abort(absl::Status why) {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
  broken_ = std::move(why);
}

absl::Status NcclCommunicator::Fail(ncclResult_t result, absl::string_view op) {
  std::string msg = absl::StrCat("nccl ", op, " (rank ", rank_, " of ", size_, ", device ", device_,
                                 ") failed: ", ncclGetErrorString(result));
  const char* last = ncclGetLastError(comm_);
  if (last != nullptr && *last != '\0') absl::StrAppend(&msg, ": ", last);
  // A remote or system error means a peer (or the network) is gone; anything else is a bug or
  // a broken device. Either way the group is out of step now, so the communicator is done.
  const bool peer_gone = result == ncclRemoteError || result == ncclSystemError;
  absl::Status status = peer_gone ? absl::UnavailableError(msg) : absl::InternalError(msg);
  Abort(status);
  return status;
}

absl::Status NcclCommunicator::FailCuda(cudaError_t err, absl::string_view op) {
  cudaGetLastError();
  absl::Status status = absl::InternalError(
      absl::StrCat("nccl ", op, " (rank ", rank_, " of ", size_, ", device ", device_,
                   "): CUDA error ", cudaGetErrorName(err), ": ", cudaGetErrorString(err)));
  Abort(status);
  return status;
}

absl::Status NcclCommunicator::FailTimeout(absl::string_view op) {
  absl::Status status = absl::UnavailableError(absl::StrCat(
      "nccl ", op, " (rank ", rank_, " of ", size_, ", device ", device_, ") timed out after ",
      timeout_ms_.load(), " ms: a peer is gone or late; communicator aborted"));
  Abort(status);
  return status;
}

absl::Status NcclCommunicator::WaitDone(absl::string_view op, bool query_stream) {
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms_.load());
  for (;;) {
    ncclResult_t async = ncclSuccess;
    if (const ncclResult_t r = ncclCommGetAsyncError(comm_, &async); r != ncclSuccess) {
      return Fail(r, op);
    }
    if (async != ncclSuccess && async != ncclInProgress) return Fail(async, op);
    if (async == ncclSuccess) {  // enqueued; now the device work itself
      if (!query_stream) return absl::OkStatus();
      const cudaError_t err = cudaStreamQuery(stream_);
      if (err == cudaSuccess) return absl::OkStatus();
      if (err != cudaErrorNotReady) return FailCuda(err, op);
    }
    const auto now = Clock::now();
    if (now >= deadline) return FailTimeout(op);
    if (now - start < kSpinFor) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(kPollSleep);
    }
  }
}

template <typename Enqueue>
absl::Status NcclCommunicator::Run(absl::string_view op, CommStats::Op* stat, int64_t bytes,
                                   Enqueue&& enqueue) {
  if (absl::Status s = CheckUsable(op); !s.ok()) return s;
  if (const cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) return FailCuda(err, op);
  const auto t0 = Clock::now();
  if (const ncclResult_t r = enqueue(); !Launched(r)) return Fail(r, op);
  if (absl::Status s = WaitDone(op, /*query_stream=*/true); !s.ok()) return s;
  if (stat != nullptr) {
    stat->calls += 1;
    stat->bytes += bytes;
    stat->seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::AllReduceSum(void* data, int64_t count, CommDType dtype) {
  if (count < 0 || (count > 0 && data == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("nccl all-reduce of ", count, " elements"));
  }
  const int64_t bytes = count * static_cast<int64_t>(DTypeBytes(dtype));
  return Run("all-reduce", &stats_.all_reduce, bytes, [&] {
    if (count == 0) return ncclSuccess;
    return ncclAllReduce(data, data, static_cast<size_t>(count), NcclType(dtype), ncclSum, comm_,
                         stream_);
  });
}

absl::Status NcclCommunicator::AllGatherV(const void* in, void* out,
                                          absl::Span<const int64_t> bytes_per_rank) {
  if (absl::Status s = ValidateSizes(bytes_per_rank, size_, "all-gather-v bytes_per_rank");
      !s.ok()) {
    return s;
  }
  const int64_t total = std::accumulate(bytes_per_rank.begin(), bytes_per_rank.end(), int64_t{0});
  if ((bytes_per_rank[rank_] > 0 && in == nullptr) || (total > 0 && out == nullptr)) {
    return absl::InvalidArgumentError("all-gather-v: null buffer");
  }
  const bool uniform = std::all_of(bytes_per_rank.begin(), bytes_per_rank.end(),
                                   [&](int64_t b) { return b == bytes_per_rank[0]; });
  auto* dst = static_cast<char*>(out);
  return Run("all-gather-v", &stats_.all_gather, bytes_per_rank[rank_], [&] {
    if (uniform) {
      if (bytes_per_rank[0] == 0) return ncclSuccess;
      return ncclAllGather(in, out, static_cast<size_t>(bytes_per_rank[0]), ncclUint8, comm_,
                           stream_);
    }
    // Uneven: one broadcast per rank into its slot, fused in a group (what PyTorch does for
    // uneven all-gather). Every rank skips the same zero-size slots.
    return Grouped([&] {
      int64_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        const int64_t n = bytes_per_rank[r];
        if (n > 0) {
          const void* send = r == rank_ ? in : dst + offset;  // send is read on the root only
          const ncclResult_t res = ncclBroadcast(send, dst + offset, static_cast<size_t>(n),
                                                 ncclUint8, r, comm_, stream_);
          if (!Launched(res)) return res;
        }
        offset += n;
      }
      return ncclSuccess;
    });
  });
}

absl::Status NcclCommunicator::AllToAllV(const void* in, absl::Span<const int64_t> send_bytes,
                                         void* out, absl::Span<const int64_t> recv_bytes) {
  if (absl::Status s = ValidateSizes(send_bytes, size_, "all-to-all-v send_bytes"); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateSizes(recv_bytes, size_, "all-to-all-v recv_bytes"); !s.ok()) {
    return s;
  }
  if (send_bytes[rank_] != recv_bytes[rank_]) {
    return absl::InvalidArgumentError(
        absl::StrCat("all-to-all-v: rank ", rank_, " sends ", send_bytes[rank_],
                     " bytes to itself but expects ", recv_bytes[rank_]));
  }
  const int64_t total_send = std::accumulate(send_bytes.begin(), send_bytes.end(), int64_t{0});
  const int64_t total_recv = std::accumulate(recv_bytes.begin(), recv_bytes.end(), int64_t{0});
  if ((total_send > 0 && in == nullptr) || (total_recv > 0 && out == nullptr)) {
    return absl::InvalidArgumentError("all-to-all-v: null buffer");
  }
  const auto* src = static_cast<const char*>(in);
  auto* dst = static_cast<char*>(out);
  return Run("all-to-all-v", &stats_.all_to_all, total_send, [&] {
    // Send/recv pairs fused in a group (self included: NCCL copies locally); zero sizes are
    // skipped on both sides, which agree on them.
    return Grouped([&] {
      int64_t send_off = 0, recv_off = 0;
      for (int peer = 0; peer < size_; ++peer) {
        if (send_bytes[peer] > 0) {
          const ncclResult_t res = ncclSend(src + send_off, static_cast<size_t>(send_bytes[peer]),
                                            ncclUint8, peer, comm_, stream_);
          if (!Launched(res)) return res;
        }
        if (recv_bytes[peer] > 0) {
          const ncclResult_t res = ncclRecv(dst + recv_off, static_cast<size_t>(recv_bytes[peer]),
                                            ncclUint8, peer, comm_, stream_);
          if (!Launched(res)) return res;
        }
        send_off += send_bytes[peer];
        recv_off += recv_bytes[peer];
      }
      return ncclSuccess;
    });
  });
}

absl::Status NcclCommunicator::AllToAll(const void* in, void* out, int64_t bytes_per_rank) {
  if (bytes_per_rank < 0) {
    return absl::InvalidArgumentError(absl::StrCat("all-to-all of ", bytes_per_rank, " bytes"));
  }
  const std::vector<int64_t> sizes(size_, bytes_per_rank);
  return AllToAllV(in, sizes, out, sizes);
}

absl::Status NcclCommunicator::Broadcast(void* data, int64_t bytes, int root) {
  if (root < 0 || root >= size_ || bytes < 0 || (bytes > 0 && data == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl broadcast of ", bytes, " bytes from root ", root, " of ", size_));
  }
  return Run("broadcast", &stats_.broadcast, rank_ == root ? bytes : 0, [&] {
    if (bytes == 0) return ncclSuccess;
    return ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_);
  });
}

absl::Status NcclCommunicator::Barrier() {
  // Completing a one-element all-reduce means every rank has reached this call; Run waits for
  // the stream, so the host is past it too.
  return Run("barrier", nullptr, 0, [&] {
    return ncclAllReduce(barrier_scratch_, barrier_scratch_, 1, ncclFloat, ncclSum, comm_, stream_);
  });
}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(
    Communicator& control, int device, const NcclCommunicatorOptions& options) {
  // Byte 0: 1 when rank 0 created the id, so that its failure reaches every rank instead of
  // leaving them waiting; bytes 1..128: the ncclUniqueId.
  std::array<char, 1 + NCCL_UNIQUE_ID_BYTES> msg{};
  std::string leader_error;
  if (control.rank() == 0) {
    ncclUniqueId uid;
    const ncclResult_t r = ncclGetUniqueId(&uid);
    if (r == ncclSuccess) {
      msg[0] = 1;
      std::memcpy(msg.data() + 1, uid.internal, NCCL_UNIQUE_ID_BYTES);
    } else {
      leader_error = absl::StrCat(ncclGetErrorString(r), ": ", ncclGetLastError(nullptr));
    }
  }
  if (absl::Status s = control.Broadcast(msg.data(), static_cast<int64_t>(msg.size()), 0);
      !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("nccl bootstrap: broadcasting the unique id over the ",
                                     control.backend_name(), " control channel: ", s.message()));
  }
  if (msg[0] != 1) {
    return absl::InternalError(absl::StrCat(
        "nccl bootstrap: rank 0 could not create the unique id",
        leader_error.empty() ? "" : absl::StrCat(" (ncclGetUniqueId: ", leader_error, ")")));
  }
  NcclUniqueIdBytes id;
  std::memcpy(id.data(), msg.data() + 1, id.size());
  return NcclCommunicator::Create(control.rank(), control.size(), id, device, options);
}

}  // namespace dsinfer
