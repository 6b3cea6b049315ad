// Status plumbing used at module borders (absl::Status / absl::StatusOr).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DSINFER_CONCAT_INNER_(a, b) a##b
#define DSINFER_CONCAT_(a, b) DSINFER_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` yields a non-OK status.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _dsinfer_st = (expr);       \
    if (!_dsinfer_st.ok()) return _dsinfer_st; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());`
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(DSINFER_CONCAT_(_dsinfer_sor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

// Broken internal invariant: abort with a message (never used for user input).
#define DSINFER_CHECK(cond)                                                          \
  do {                                                                               \
    if (!(cond)) ::dsinfer::internal::CheckFailed(#cond, __FILE__, __LINE__);         \
  } while (0)

namespace dsinfer::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}  // namespace dsinfer::internal
