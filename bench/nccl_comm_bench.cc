// NcclCommunicator over all the GPUs of the machine (one thread per GPU, as the GPU test does):
// what a DeepSeek decode step moves per layer, hidden 7168 x 1..128 tokens x bf16.
// - AllReduce: the tensor-parallel all-reduce of the attention / dense MLP output,
//   7168 * tokens bf16 elements.
// - AllToAllV: the MoE dispatch of `tokens` tokens of this rank, each to top-8 experts spread
//   over the ranks (rows split as evenly as possible, so the sizes are slightly uneven).
// Each call is host-synchronous (the communicator waits for it), so the time is what the engine
// waits per collective. A batch of kReps calls is timed per iteration; Time is per call.
// Counters: GBps (payload bytes this rank sends / time), busbw_GBps for the all-reduce
// (nccl-tests convention: 2 (n-1) / n * bytes / time). Skipped with fewer than 2 GPUs.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/comm/nccl_communicator.h"

namespace dsinfer::nccl_bench {
namespace {

constexpr int64_t kHidden = 7168;
constexpr int64_t kTopK = 8;
constexpr int kReps = 50;

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

// One rank: its communicator and grows-only device buffers, touched only by its own thread.
struct Rank {
  std::unique_ptr<NcclCommunicator> comm;
  void* in = nullptr;
  void* out = nullptr;
  size_t capacity = 0;
  bool Reserve(size_t bytes) {
    if (bytes <= capacity) return true;
    if (in) cudaFree(in);
    if (out) cudaFree(out);
    in = out = nullptr;
    capacity = 0;
    if (cudaMalloc(&in, bytes) != cudaSuccess || cudaMalloc(&out, bytes) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    cudaMemset(in, 0x3c, bytes);  // values do not matter for timing
    capacity = bytes;
    return true;
  }
};

using Job = std::function<bool(Rank&)>;  // one call; false on failure

// Worker threads, one per GPU, that run the same job kReps times in lock-step.
class Group {
 public:
  explicit Group(int n) : ranks_(n) {
    ncclUniqueId uid;
    ok_ = ncclGetUniqueId(&uid) == ncclSuccess;
    NcclUniqueIdBytes id;
    std::memcpy(id.data(), uid.internal, id.size());
    for (int r = 0; r < n && ok_; ++r) {
      threads_.emplace_back([this, r, n, id] { Loop(r, n, id); });
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_ == static_cast<int>(threads_.size()); });
  }
  ~Group() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  bool ok() const { return ok_; }
  int size() const { return static_cast<int>(ranks_.size()); }

  // Runs `job` `reps` times on every rank; the wall time of the whole batch, or < 0 on failure.
  double Run(const Job& job, int reps) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    job_ = job;
    reps_ = reps;
    done_ = 0;
    failed_ = false;
    ++generation_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_ == size(); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return failed_ ? -1 : s;
  }

 private:
  void Loop(int r, int n, NcclUniqueIdBytes id) {
    cudaSetDevice(r);
    NcclCommunicatorOptions options;
    options.timeout = std::chrono::seconds(60);  // a broken run fails instead of hanging
    auto comm = NcclCommunicator::Create(r, n, id, r, options);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (comm.ok()) {
        ranks_[r].comm = std::move(*comm);
      } else {
        std::fprintf(stderr, "rank %d: %s\n", r, comm.status().ToString().c_str());
        ok_ = false;
      }
      ++ready_;
    }
    cv_.notify_all();
    uint64_t seen = 0;
    for (;;) {
      Job job;
      int reps;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) break;
        job = job_;
        reps = reps_;
      }
      bool ok = ranks_[r].comm != nullptr;
      for (int i = 0; i < reps && ok; ++i) ok = job(ranks_[r]);
      {
        std::lock_guard<std::mutex> lock(mu_);
        failed_ |= !ok;
        ++done_;
      }
      cv_.notify_all();
    }
    Rank& rank = ranks_[r];
    rank.comm.reset();
    if (rank.in) cudaFree(rank.in);
    if (rank.out) cudaFree(rank.out);
  }

  std::vector<Rank> ranks_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ok_ = true, stop_ = false, failed_ = false;
  int ready_ = 0, done_ = 0, reps_ = 0;
  uint64_t generation_ = 0;
  Job job_;
};

std::unique_ptr<Group>& TheGroup() {
  static std::unique_ptr<Group> group;
  return group;
}

Group* GetGroup(benchmark::State& state) {
  const int n = DeviceCount();
  if (n < 2) {
    state.SkipWithError("needs >= 2 GPUs");
    return nullptr;
  }
  if (!TheGroup()) TheGroup() = std::make_unique<Group>(n);
  if (!TheGroup()->ok()) {
    state.SkipWithError("NCCL group creation failed");
    return nullptr;
  }
  return TheGroup().get();
}

// Times `job` (after one warm-up batch that also makes NCCL connect the peers).
void TimeJob(benchmark::State& state, Group& group, const Job& job, int64_t bytes,
             double bus_factor) {
  if (group.Run(job, 2) < 0) {
    state.SkipWithError("collective failed (see stderr)");
    return;
  }
  double total = 0;
  for (auto _ : state) {
    const double s = group.Run(job, kReps);
    if (s < 0) {
      state.SkipWithError("collective failed");
      return;
    }
    state.SetIterationTime(s / kReps);
    total += s / kReps;
  }
  const double per_call = total / static_cast<double>(state.iterations());
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["tokens"] = static_cast<double>(state.range(0));
  state.counters["ranks"] = group.size();
  state.counters["GBps"] = bytes / per_call / 1e9;
  if (bus_factor > 0) state.counters["busbw_GBps"] = bus_factor * bytes / per_call / 1e9;
}

void BM_AllReduceBf16(benchmark::State& state) {
  Group* group = GetGroup(state);
  if (group == nullptr) return;
  const int64_t count = kHidden * state.range(0);
  const int64_t bytes = count * 2;
  const int n = group->size();
  TimeJob(
      state, *group,
      [count, bytes](Rank& r) {
        return r.Reserve(bytes) && r.comm->AllReduceSum(r.in, count, CommDType::kBF16).ok();
      },
      bytes, 2.0 * (n - 1) / n);
}

void BM_AllToAllVBf16(benchmark::State& state) {
  Group* group = GetGroup(state);
  if (group == nullptr) return;
  const int n = group->size();
  const int64_t rows = state.range(0) * kTopK, row_bytes = kHidden * 2;
  // Rank s sends rows / n rows to every rank, plus one to the next rows % n ranks after it.
  auto pair_rows = [&](int s, int d) { return rows / n + ((d - s + n) % n < rows % n ? 1 : 0); };
  std::vector<std::vector<int64_t>> send(n, std::vector<int64_t>(n)), recv = send;
  for (int s = 0; s < n; ++s) {
    for (int d = 0; d < n; ++d) {
      send[s][d] = pair_rows(s, d) * row_bytes;
      recv[d][s] = send[s][d];
    }
  }
  const int64_t bytes = rows * row_bytes;  // sent by each rank
  TimeJob(
      state, *group,
      [send, recv, bytes](Rank& r) {
        const int k = r.comm->rank();
        return r.Reserve(bytes) && r.comm->AllToAllV(r.in, send[k], r.out, recv[k]).ok();
      },
      bytes, 0);
}

void TokenArgs(benchmark::internal::Benchmark* b) {
  for (int64_t tokens : {1, 4, 16, 32, 64, 128}) b->Arg(tokens);
  b->ArgName("tokens")->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_AllReduceBf16)->Apply(TokenArgs);
BENCHMARK(BM_AllToAllVBf16)->Apply(TokenArgs);

}  // namespace
}  // namespace dsinfer::nccl_bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const int n = dsinfer::nccl_bench::DeviceCount();
  int version = 0;
  ncclGetVersion(&version);
  benchmark::AddCustomContext("gpus", std::to_string(n));
  benchmark::AddCustomContext("nccl_version", std::to_string(version));
  if (n >= 1) {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    benchmark::AddCustomContext("gpu", prop.name);
  }
  if (n < 2) {
    std::fprintf(stderr, "nccl_comm_bench: %d GPU(s); the collectives need >= 2: skipped\n", n);
  }
  benchmark::RunSpecifiedBenchmarks();
  dsinfer::nccl_bench::TheGroup().reset();  // NCCL teardown before the CUDA runtime's
  benchmark::Shutdown();
  return 0;
}
