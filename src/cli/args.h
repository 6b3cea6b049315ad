// Minimal `--flag value` / `--switch` parsing for the dsinfer subcommands; every flag a
// subcommand does not know is an error that names it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dsinfer::cli {

class Args {
 public:
  // valued: flags taking a value; switches: flags without one.
  static absl::StatusOr<Args> Parse(int argc, char** argv, int first,
                                    const std::set<std::string>& valued,
                                    const std::set<std::string>& switches);

  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::optional<std::string> Get(const std::string& flag) const;
  absl::StatusOr<std::string> Required(const std::string& flag) const;
  absl::StatusOr<int64_t> Int(const std::string& flag, int64_t fallback) const;
  absl::StatusOr<double> Float(const std::string& flag, double fallback) const;
  // "1,2,3" -> ids
  absl::StatusOr<std::vector<int32_t>> Ids(const std::string& flag) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace dsinfer::cli
