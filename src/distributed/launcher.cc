#include "src/distributed/launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dsinfer {
namespace {

absl::Status ExitStatus(int rank, int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status))
    return absl::UnavailableError(absl::StrCat("rank ", rank, " exited with ", WEXITSTATUS(status)));
  if (WIFSIGNALED(status))
    return absl::UnavailableError(absl::StrCat("rank ", rank, " was killed by signal ",
                                               WTERMSIG(status)));
  return absl::UnavailableError(absl::StrCat("rank ", rank, " ended abnormally"));
}

}  // namespace

std::string SelfExecutable() {
  // Tests run the server in-process; they point this at the dsinfer binary.
  if (const char* env = std::getenv("DSINFER_WORKER_BINARY"); env != nullptr && *env) return env;
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("dsinfer") : p.string();
}

LocalRanks::~LocalRanks() { KillAll(); }

absl::Status LocalRanks::Spawn(const std::vector<std::string>& argv, const std::vector<int>& ranks) {
  const pid_t parent = getpid();
  for (int rank : ranks) {
    std::vector<std::string> args = argv;
    args.push_back("--rank");
    args.push_back(std::to_string(rank));
    std::vector<char*> cargs;
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("fork for rank ", rank, " failed"));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
      execv(cargs[0], cargs.data());
      _exit(127);
    }
    children_.push_back({rank, pid});
  }
  return absl::OkStatus();
}

absl::Status LocalRanks::Wait(double timeout_s) {
  absl::Status first;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!children_.empty()) {
    for (auto it = children_.begin(); it != children_.end();) {
      int status = 0;
      if (waitpid(it->second, &status, WNOHANG) == it->second) {
        absl::Status st = ExitStatus(it->first, status);
        if (first.ok()) first = st;
        it = children_.erase(it);
      } else {
        ++it;
      }
    }
    if (children_.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (first.ok())
        first = absl::DeadlineExceededError(
            absl::StrCat("rank ", children_.front().first, " did not exit in time"));
      KillAll();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return first;
}

bool LocalRanks::WaitAny(int* rank, absl::Status* status) {
  if (children_.empty()) return false;
  int st = 0;
  const pid_t pid = waitpid(-1, &st, 0);
  for (auto it = children_.begin(); it != children_.end(); ++it) {
    if (it->second == pid) {
      *rank = it->first;
      *status = ExitStatus(it->first, st);
      children_.erase(it);
      return true;
    }
  }
  return !children_.empty();
}

std::vector<pid_t> LocalRanks::pids() const {
  std::vector<pid_t> out;
  for (const auto& [rank, pid] : children_) out.push_back(pid);
  return out;
}

void LocalRanks::KillAll() {
  for (auto& [rank, pid] : children_) kill(pid, SIGKILL);
  for (auto& [rank, pid] : children_) waitpid(pid, nullptr, 0);
  children_.clear();
}

int TempDir::RemoveStale(const std::string& prefix) {
  std::error_code ec;
  const std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
  if (ec) return 0;
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tmp, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t dash = name.find('-', prefix.size());
    int64_t pid = 0;
    if (dash == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(name).substr(prefix.size(), dash - prefix.size()),
                          &pid) ||
        pid <= 0) {
      continue;
    }
    struct stat st;
    if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
      continue;
    }
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // still running
    std::error_code rm;
    std::filesystem::remove_all(entry.path(), rm);
    removed += rm ? 0 : 1;
  }
  return removed;
}

absl::StatusOr<TempDir> TempDir::Make(const std::string& prefix) {
  RemoveStale(prefix);
  std::string tmpl =
      (std::filesystem::temp_directory_path() / absl::StrCat(prefix, getpid(), "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr)
    return absl::InternalError(absl::StrCat("cannot create a temporary directory ", tmpl));
  return TempDir(tmpl);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace dsinfer
