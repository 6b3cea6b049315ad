#include "src/cli/args.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace dsinfer::cli {

absl::StatusOr<Args> Args::Parse(int argc, char** argv, int first,
                                 const std::set<std::string>& valued,
                                 const std::set<std::string>& switches) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (switches.count(name)) {
      if (inline_value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      a.values_[name] = "1";
    } else if (valued.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        value = argv[++i];
      }
      a.values_[name] = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return a;
}

std::optional<std::string> Args::Get(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> Args::Required(const std::string& flag) const {
  auto v = Get(flag);
  if (!v) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is required"));
  return *v;
}

absl::StatusOr<int64_t> Args::Int(const std::string& flag, int64_t fallback) const {
  auto v = Get(flag);
  if (!v) return fallback;
  int64_t out;
  if (!absl::SimpleAtoi(*v, &out))
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": \"", *v, "\" is not an integer"));
  return out;
}

absl::StatusOr<double> Args::Float(const std::string& flag, double fallback) const {
  auto v = Get(flag);
  if (!v) return fallback;
  double out;
  if (!absl::SimpleAtod(*v, &out))
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": \"", *v, "\" is not a number"));
  return out;
}

absl::StatusOr<std::vector<int32_t>> Args::Ids(const std::string& flag) const {
  auto v = Get(flag);
  if (!v) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is required"));
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(*v, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id) || id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", part, "\" is not a token id (a non-negative integer)"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return ids;
}

}  // namespace dsinfer::cli
