// Starts the local rank processes of a sharded model: this executable again, as
// `dsinfer worker ...`, one process per rank. Each child dies with its parent
// (PR_SET_PDEATHSIG), so a leader that crashes never leaves ranks behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dsinfer {

class LocalRanks {
 public:
  LocalRanks() = default;
  LocalRanks(const LocalRanks&) = delete;
  LocalRanks& operator=(const LocalRanks&) = delete;
  ~LocalRanks();  // kills whatever still runs

  // Runs argv (argv[0] = the executable) with "--rank R" appended, for each rank.
  absl::Status Spawn(const std::vector<std::string>& argv, const std::vector<int>& ranks);
  // Waits up to timeout_s for every child; non-OK names each rank that failed or was killed.
  absl::Status Wait(double timeout_s);
  // Waits for whichever child ends first; returns its rank and status (false if none left).
  bool WaitAny(int* rank, absl::Status* status);
  void KillAll();
  std::vector<pid_t> pids() const;

 private:
  std::vector<std::pair<int, pid_t>> children_;  // (rank, pid)
};

// A fresh private directory for a file: rendezvous (removed by the destructor). Its name carries
// the creating process's id (`<prefix><pid>-XXXXXX`), so a process killed before its destructor
// ran (SIGKILL) leaves a directory the next Make with the same prefix removes.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Make(const std::string& prefix);
  // Removes this user's `<prefix><pid>-*` directories in the temp directory whose process is
  // gone; returns how many.
  static int RemoveStale(const std::string& prefix);
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// /proc/self/exe: the running dsinfer binary (env DSINFER_WORKER_BINARY overrides it).
std::string SelfExecutable();

}  // namespace dsinfer
