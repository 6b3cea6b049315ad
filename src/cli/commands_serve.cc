// dsinfer serve --config FILE [--model DIR] [--grpc-listen ADDR] [--http-listen ADDR]
//               [--openai-listen ADDR]
//               [--threads N]
// Flags override the config. Signals go through a self-pipe to a watcher thread (the handler
// only writes one byte): the first SIGTERM/SIGINT drains (health NOT_SERVING, /readyz 503, new
// requests UNAVAILABLE, running ones finish within drain_grace_seconds) and the process exits 0; a
// second signal exits 1 at once.
#include <fcntl.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "src/cli/args.h"
#include "src/cli/commands_server.h"
#include "src/config/model_config.h"
#include "src/config/server_config.h"
#include "src/core/status_macros.h"
#include "src/server/inference_server.h"
#include "src/weights/load_progress.h"

namespace dsinfer::cli {
namespace {

int g_signal_pipe[2] = {-1, -1};

// The only work done in signal context: one byte into the self-pipe (async-signal-safe).
extern "C" void OnTerminationSignal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  const ssize_t n = write(g_signal_pipe[1], &b, 1);
  (void)n;
}

// SIGTERM/SIGINT through a self-pipe to a watcher thread. Library threads (BLAS, gRPC) may
// receive the signal; the handler only writes the pipe, whichever thread runs it.
class SignalWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Install() {
    if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
    struct sigaction sa = {};
    sa.sa_handler = OnTerminationSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, nullptr) != 0 || sigaction(SIGINT, &sa, nullptr) != 0) {
      return absl::InternalError("sigaction failed");
    }
    return std::unique_ptr<SignalWatcher>(new SignalWatcher());
  }

  ~SignalWatcher() {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    stopping_.store(true);
    const unsigned char wake = 0;
    const ssize_t n = write(g_signal_pipe[1], &wake, 1);
    (void)n;
    thread_.join();
    close(g_signal_pipe[0]);
    close(g_signal_pipe[1]);
  }

  // While the model loads there is nothing to drain: a signal ends the process at once.
  void SetLoading(bool loading) { exit_on_signal_.store(loading); }
  bool signalled() {
    std::lock_guard<std::mutex> lock(mu_);
    return signal_ != 0;
  }
  int Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return signal_ != 0; });
    return signal_;
  }

 private:
  SignalWatcher() {
    thread_ = std::thread([this] {
      for (;;) {
        unsigned char b = 0;
        const ssize_t n = read(g_signal_pipe[0], &b, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || stopping_.load()) return;
        std::unique_lock<std::mutex> lock(mu_);
        if (exit_on_signal_.load()) std::_Exit(0);
        if (signal_ != 0) std::_Exit(1);  // a second signal while draining: stop now
        signal_ = b;
        lock.unlock();
        cv_.notify_all();
      }
    });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int signal_ = 0;
  std::atomic<bool> exit_on_signal_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Runs the server until a signal; on a start-up error the server is drained and destroyed here,
// before gRPC is shut down.
absl::Status Serve(ServerConfig config, ModelConfig model, SignalWatcher& signals) {
  ASSIGN_OR_RETURN(std::unique_ptr<InferenceServer> server,
                   InferenceServer::Create(std::move(config), std::move(model)));
  signals.SetLoading(true);
  if (signals.signalled()) return absl::OkStatus();
  absl::Status st = server->StartListeners();
  if (st.ok()) st = server->LoadModel(StderrProgress("loading weights"));
  if (!st.ok()) {
    server->log().Write(LogLevel::kError, "start_failed",
                        {{"code", absl::StatusCodeToString(st.code())}});
    server->Drain(0);
    return st;
  }
  signals.SetLoading(false);

  const int sig = signals.Wait();
  server->log().Write(LogLevel::kInfo, "signal",
                      {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  server->Drain(server->config().drain_grace_seconds);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunServe(int argc, char** argv) {
  ASSIGN_OR_RETURN(
      Args args,
      Args::Parse(argc, argv, 2, {"config", "model", "grpc-listen", "http-listen", "openai-listen", "threads"}, {}));
  ASSIGN_OR_RETURN(std::string config_path, args.Required("config"));
  ASSIGN_OR_RETURN(ServerConfig config, LoadServerConfig(config_path));
  if (auto v = args.Get("model")) config.model_path = *v;
  if (auto v = args.Get("grpc-listen")) config.grpc_listen = *v;
  if (auto v = args.Get("http-listen")) config.http_listen = *v;
  if (auto v = args.Get("openai-listen")) config.openai_listen = *v;
  if (args.Has("threads")) {
    ASSIGN_OR_RETURN(int64_t threads, args.Int("threads", 0));
    if (threads < 0 || threads > 4096) {
      return absl::InvalidArgumentError("--threads: must be in [0, 4096] (0: one per core)");
    }
    config.threads = static_cast<int32_t>(threads);
  }
  ASSIGN_OR_RETURN(ModelConfig model, LoadModelConfig(config.model_path));

  ASSIGN_OR_RETURN(std::unique_ptr<SignalWatcher> signals, SignalWatcher::Install());
  // gRPC stays initialised until the server and everything else here is gone, and is then shut
  // down synchronously: an exit (after a start-up error as after a drain) never races gRPC's own
  // teardown threads.
  grpc_init();
  absl::Status st = Serve(std::move(config), std::move(model), *signals);
  grpc_shutdown_blocking();
  return st;
}

}  // namespace dsinfer::cli
