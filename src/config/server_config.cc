// ServerConfig from YAML (yaml-cpp): a strict walk that names the full key path of each problem.
#include "src/config/server_config.h"
#include "src/config/model_config.h"
#include "src/config/yaml_kind.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dsinfer {
namespace {

// Debian's Abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

constexpr size_t kMaxConfigBytes = 4 << 20;
constexpr size_t kMaxErrors = 50;

// `"value"` with control characters escaped and long values cut, for error messages.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string cut(s.substr(0, kMax));
  return absl::StrCat("\"", absl::CHexEscape(cut), s.size() > kMax ? "...\"" : "\"");
}

const char* KindName(const YAML::Node& n) { return YamlKindName(n); }

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsValidTenantId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

// "host:port", "[v6]:port". Port 0 (ephemeral) is allowed. Returns an error text or "".
std::string CheckListenAddress(std::string_view addr, std::string* host, int* port) {
  std::string_view port_text;
  if (!addr.empty() && addr.front() == '[') {
    const size_t close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
      return "is not [ipv6]:port";
    }
    *host = std::string(addr.substr(0, close + 1));
    port_text = addr.substr(close + 2);
  } else {
    const size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return "is not host:port";
    *host = std::string(addr.substr(0, colon));
    port_text = addr.substr(colon + 1);
    for (char c : *host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
        return "has an invalid host (a name, an IPv4 address or [ipv6])";
      }
    }
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(Av(port_text), port) || *port > 65535) {
    return "has no valid port (0-65535)";
  }
  return "";
}

bool IsWildcardHost(std::string_view host) { return host == "0.0.0.0" || host == "[::]"; }

class ConfigParser {
 public:
  using Handler = std::function<void(const YAML::Node&, const std::string&)>;
  struct Field {
    std::string_view key;
    Handler handle;
  };

  void Error(const std::string& path, std::string message, const YAML::Node* at = nullptr) {
    if (errors_.size() >= kMaxErrors) return;
    std::string line;
    if (at != nullptr && at->IsDefined() && !at->Mark().is_null()) {
      line = absl::StrCat(" (line ", at->Mark().line + 1, ")");
    }
    errors_.push_back(absl::StrCat(path.empty() ? "config" : path, ": ", message, line));
    if (errors_.size() == kMaxErrors) errors_.push_back("... (further errors not shown)");
  }
  const std::vector<std::string>& errors() const { return errors_; }

  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : absl::StrCat(path, ".", Av(key));
  }

  // A mapping whose keys must all be in `fields`; null counts as an empty mapping.
  void Map(const YAML::Node& n, const std::string& path, const std::vector<Field>& fields) {
    if (n.IsNull()) return;
    if (!n.IsMap()) {
      Error(path, absl::StrCat("expected a mapping, got ", KindName(n)), &n);
      return;
    }
    std::set<std::string, std::less<>> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      // Copies: `it->` yields a temporary proxy, so references into it would dangle.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        Error(path, absl::StrCat("keys must be plain names, got ", KindName(key)), &key);
        continue;
      }
      const std::string name = key.Scalar();
      const std::string child = Join(path, name);
      if (!seen.insert(name).second) {
        Error(child, "duplicate key", &key);
        continue;
      }
      const Field* f = nullptr;
      for (const Field& candidate : fields) {
        if (candidate.key == name) f = &candidate;
      }
      if (f == nullptr) {
        Error(child, "unknown key", &key);
        continue;
      }
      f->handle(value, child);
    }
  }

  bool Scalar(const YAML::Node& n, const std::string& path, std::string_view expected,
              std::string* out) {
    if (!n.IsScalar()) {
      Error(path, absl::StrCat("expected ", Av(expected), ", got ", KindName(n)), &n);
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  Handler String(std::string* out) {
    return [this, out](const YAML::Node& n, const std::string& path) {
      Scalar(n, path, "a string", out);
    };
  }

  Handler OneOf(std::string* out, std::vector<std::string> allowed) {
    return [this, out, allowed = std::move(allowed)](const YAML::Node& n, const std::string& path) {
      std::string s;
      if (!Scalar(n, path, "a string", &s)) return;
      if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
        Error(path, absl::StrCat(Quote(s), " is not one of ", absl::StrJoin(allowed, ", ")), &n);
        return;
      }
      *out = s;
    };
  }

  Handler Bool(bool* out) {
    return [this, out](const YAML::Node& n, const std::string& path) {
      std::string s;
      if (!Scalar(n, path, "true or false", &s)) return;
      const std::string lower = absl::AsciiStrToLower(s);
      if (lower == "true") {
        *out = true;
      } else if (lower == "false") {
        *out = false;
      } else {
        Error(path, absl::StrCat(Quote(s), " is not true or false"), &n);
      }
    };
  }

  template <typename Int>
  Handler Integer(Int* out, int64_t min, int64_t max = std::numeric_limits<Int>::max()) {
    return [this, out, min, max](const YAML::Node& n, const std::string& path) {
      std::string s;
      if (!Scalar(n, path, "an integer", &s)) return;
      int64_t v = 0;
      if (!absl::SimpleAtoi(s, &v)) {
        Error(path, absl::StrCat(Quote(s), " is not an integer"), &n);
        return;
      }
      if (!InRange(v, min, max, path, n)) return;
      *out = static_cast<Int>(v);
    };
  }

  // An integer number of bytes, optionally with a binary suffix: 512MiB, 60GiB, 1TiB.
  Handler ByteSize(int64_t* out) {
    return [this, out](const YAML::Node& n, const std::string& path) {
      std::string s;
      if (!Scalar(n, path, "a byte count", &s)) return;
      std::string_view digits = s;
      int shift = 0;
      for (auto [suffix, bits] : {std::pair{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}}) {
        if (absl::EndsWith(Av(digits), suffix)) {
          digits.remove_suffix(3);
          shift = bits;
          break;
        }
      }
      int64_t v = 0;
      if (!absl::SimpleAtoi(Av(digits), &v)) {
        Error(path,
              absl::StrCat(Quote(s),
                           " is not a byte count (an integer, or with KiB, MiB, "
                           "GiB or TiB)"),
              &n);
        return;
      }
      if (v < 0) {
        Error(path, absl::StrCat("must be >= 0, got ", s), &n);
        return;
      }
      if (v > (std::numeric_limits<int64_t>::max() >> shift)) {
        Error(path, absl::StrCat(Quote(s), " is too large"), &n);
        return;
      }
      *out = v << shift;
    };
  }

  // A finite number in [min, max]; `min_exclusive` makes the lower bound strict.
  Handler Number(double* out, double min, bool min_exclusive,
                 double max = std::numeric_limits<double>::infinity()) {
    return [this, out, min, min_exclusive, max](const YAML::Node& n, const std::string& path) {
      std::string s;
      if (!Scalar(n, path, "a number", &s)) return;
      double v = 0;
      if (!absl::SimpleAtod(s, &v) || !std::isfinite(v)) {
        Error(path, absl::StrCat(Quote(s), " is not a finite number"), &n);
        return;
      }
      if (min_exclusive ? !(v > min) : !(v >= min)) {
        Error(path, absl::StrCat("must be ", min_exclusive ? "> " : ">= ", min, ", got ", s), &n);
        return;
      }
      if (v > max) {
        Error(path, absl::StrCat("must be <= ", max, ", got ", s), &n);
        return;
      }
      *out = v;
    };
  }

  Handler PriorityField(Priority* out) {
    return [this, out](const YAML::Node& n, const std::string& path) {
      std::string s;
      if (!Scalar(n, path, "a priority", &s)) return;
      std::optional<Priority> p = ParsePriority(s);
      if (!p) {
        Error(path, absl::StrCat(Quote(s), " is not one of emergency, interactive, batch"), &n);
        return;
      }
      *out = *p;
    };
  }

  // A sequence of strings; `each` checks one element (path is `key[i]`).
  Handler StringList(
      std::vector<std::string>* out,
      std::function<bool(std::string*, const YAML::Node&, const std::string&)> each) {
    return [this, out, each](const YAML::Node& n, const std::string& path) {
      if (n.IsNull()) return;
      if (!n.IsSequence()) {
        Error(path, absl::StrCat("expected a sequence, got ", KindName(n)), &n);
        return;
      }
      for (size_t i = 0; i < n.size(); ++i) {
        const std::string item_path = absl::StrCat(path, "[", i, "]");
        std::string s;
        if (!Scalar(n[i], item_path, "a string", &s)) continue;
        if (each(&s, n[i], item_path)) out->push_back(std::move(s));
      }
    };
  }

  void Tenant(const YAML::Node& n, const std::string& path, TenantConfig* t) {
    bool has_id = false;
    Map(n, path,
        {
            {"id",
             [&](const YAML::Node& v, const std::string& p) {
               has_id = true;
               std::string s;
               if (!Scalar(v, p, "a string", &s)) return;
               if (!IsValidTenantId(s)) {
                 Error(p, absl::StrCat(Quote(s), " must be 1-64 characters of A-Z a-z 0-9 _ . -"),
                       &v);
                 return;
               }
               t->id = s;
             }},
            {"weight", Number(&t->weight, 0, /*min_exclusive=*/true)},
            {"max_priority", PriorityField(&t->max_priority)},
            {"max_concurrent", Integer(&t->max_concurrent, 0)},
            {"max_queued", Integer(&t->max_queued, 0)},
            {"tokens_per_minute", Integer(&t->tokens_per_minute, 0)},
            {"api_key_sha256",
             StringList(&t->api_key_sha256,
                        [this](std::string* s, const YAML::Node& v, const std::string& p) {
                          // Never echo the value: a pasted plaintext key must not reach logs.
                          if (!IsHex64(*s)) {
                            Error(p,
                                  absl::StrCat("must be 64 hex characters (the SHA-256 of the "
                                               "key, never the key itself); got ",
                                               s->size(), " characters"),
                                  &v);
                            return false;
                          }
                          absl::AsciiStrToLower(s);
                          return true;
                        })},
            {"client_cert_identities",
             StringList(&t->client_cert_identities,
                        [this](std::string* s, const YAML::Node& v, const std::string& p) {
                          if (s->empty()) {
                            Error(p, "must not be empty", &v);
                            return false;
                          }
                          return true;
                        })},
        });
    if (n.IsMap() && !has_id) Error(path + ".id", "required", &n);
  }

  void Top(const YAML::Node& root, ServerConfig* c) {
    bool has_model_path = false;
    Map(root, "",
        {
            {"model_path",
             [&](const YAML::Node& v, const std::string& p) {
               has_model_path = true;
               String (&c->model_path)(v, p);
             }},
            {"dtype", OneOf(&c->dtype, {"bf16", "f32"})},
            {"backend", OneOf(&c->backend, {"cpu", "cuda"})},
            {"threads", Integer(&c->threads, 0, 4096)},
            {"dequantize_fp8", Bool(&c->dequantize_fp8)},
            {"mtp", Bool(&c->mtp)},
            {"mtp_draft_tokens", Integer(&c->mtp_draft_tokens, 1, kMaxMtpDraftTokens)},
            {"grpc_listen", String(&c->grpc_listen)},
            {"http_listen", String(&c->http_listen)},
            {"openai_listen", String(&c->openai_listen)},
            {"http",
             [&](const YAML::Node& v, const std::string& p) {
               HttpConfig& h = c->http;
               Map(v, p,
                   {
                       {"max_header_bytes", Integer(&h.max_header_bytes, 1024, 1 << 20)},
                       {"max_body_bytes", Integer(&h.max_body_bytes, 1024, int64_t{1} << 30)},
                       {"header_timeout_seconds", Number(&h.header_timeout_seconds, 0, true, 3600)},
                       {"body_timeout_seconds", Number(&h.body_timeout_seconds, 0, true, 3600)},
                       {"idle_timeout_seconds", Number(&h.idle_timeout_seconds, 0, true, 86400)},
                       {"write_timeout_seconds", Number(&h.write_timeout_seconds, 0, true, 3600)},
                       {"max_connections", Integer(&h.max_connections, 1, 1 << 20)},
                       {"max_connections_per_address",
                        Integer(&h.max_connections_per_address, 1, 1 << 20)},
                       {"threads", Integer(&h.threads, 1, 64)},
                   });
             }},
            {"tls",
             [&](const YAML::Node& v, const std::string& p) {
               Map(v, p,
                   {
                       {"enabled", Bool(&c->tls.enabled)},
                       {"cert_file", String(&c->tls.cert_file)},
                       {"key_file", String(&c->tls.key_file)},
                       {"client_ca_file", String(&c->tls.client_ca_file)},
                       {"require_client_cert", Bool(&c->tls.require_client_cert)},
                       {"on_http_listen", Bool(&c->tls.on_http_listen)},
                   });
             }},
            {"scheduler",
             [&](const YAML::Node& v, const std::string& p) {
               SchedulerConfig& s = c->scheduler;
               Map(v, p,
                   {
                       {"max_batched_tokens", Integer(&s.max_batched_tokens, 1, 1 << 24)},
                       {"max_running", Integer(&s.max_running, 1, 1 << 20)},
                       {"max_waiting", Integer(&s.max_waiting, 0, 1 << 24)},
                       {"max_queue_seconds", Number(&s.max_queue_seconds, 0, true, 86400)},
                       {"prefill_chunk", Integer(&s.prefill_chunk, 1, 1 << 24)},
                       {"max_preemptions_per_request",
                        Integer(&s.max_preemptions_per_request, 0, 1000)},
                       {"step_share", Bool(&s.step_share)},
                       {"share_window_seconds", Number(&s.share_window_seconds, 0, false, 3600)},
                   });
             }},
            {"kv_cache",
             [&](const YAML::Node& v, const std::string& p) {
               KvCacheConfig& k = c->kv_cache;
               Map(v, p,
                   {
                       {"num_blocks", Integer(&k.num_blocks, 0)},
                       {"memory_bytes", ByteSize(&k.memory_bytes)},
                       {"memory_fraction", Number(&k.memory_fraction, 0, true, 1.0)},
                       {"prefix_caching", Bool(&k.prefix_caching)},
                       {"share_prefix_across_tenants", Bool(&k.share_prefix_across_tenants)},
                   });
             }},
            {"parallel",
             [&](const YAML::Node& v, const std::string& p) {
               ParallelConfig& q = c->parallel;
               Map(v, p,
                   {
                       {"tp", Integer(&q.tp, 1, 1024)},
                       {"ep", Integer(&q.ep, 1, 1024)},
                       {"ranks_per_node", Integer(&q.ranks_per_node, 0, 1024)},
                       {"rendezvous_listen", String(&q.rendezvous_listen)},
                       {"leader_address", String(&q.leader_address)},
                       {"bind_address", String(&q.bind_address)},
                       {"timeout_seconds", Number(&q.timeout_seconds, 0, true, 86400)},
                   });
             }},
            {"tenants",
             [&](const YAML::Node& v, const std::string& p) {
               if (v.IsNull()) return;
               if (!v.IsSequence()) {
                 Error(p, absl::StrCat("expected a sequence, got ", KindName(v)), &v);
                 return;
               }
               for (size_t i = 0; i < v.size(); ++i) {
                 TenantConfig t;
                 Tenant(v[i], absl::StrCat(p, "[", i, "]"), &t);
                 c->tenants.push_back(std::move(t));
               }
             }},
            {"allow_unauthenticated", Bool(&c->allow_unauthenticated)},
            {"default_tenant", String(&c->default_tenant)},
            {"drain_grace_seconds", Number(&c->drain_grace_seconds, 0, false, 3600)},
            {"log_request_content",
             [&](const YAML::Node& v, const std::string& p) {
               Bool (&c->log_request_content)(v, p);
               if (c->log_request_content) {
                 Error(p, "must be false: request content never appears in dsinfer logs", &v);
               }
             }},
            {"log_level", OneOf(&c->log_level, {"debug", "info", "warning", "error"})},
        });
    if (!has_model_path || c->model_path.empty()) Error("model_path", "required");
    if (c->mtp_draft_tokens != 1 && !c->mtp) {
      Error("mtp_draft_tokens", absl::StrCat(c->mtp_draft_tokens, " drafts but mtp is false"));
    }
  }

  // Rules that relate several keys; run after the walk.
  void CrossCheck(ServerConfig* c) {
    if (c->backend == "cuda" && c->dtype != "bf16") {
      Error("dtype", absl::StrCat(Quote(c->dtype), " with backend cuda: the cuda backend runs bf16"));
    }
    const ParallelConfig& q = c->parallel;
    if (q.tp % q.ep != 0) {
      Error("parallel.ep", absl::StrCat("must divide parallel.tp (", q.tp, "); is ", q.ep));
    }
    if (q.ranks_per_node > 0 && q.tp % q.ranks_per_node != 0) {
      Error("parallel.ranks_per_node",
            absl::StrCat("parallel.tp (", q.tp, ") must be a multiple of it; is ",
                         q.ranks_per_node));
    }
    std::string grpc_host, http_host;
    int grpc_port = 0, http_port = 0;
    bool addrs_ok = true;
    if (std::string e = CheckListenAddress(c->grpc_listen, &grpc_host, &grpc_port); !e.empty()) {
      Error("grpc_listen", absl::StrCat(Quote(c->grpc_listen), " ", e));
      addrs_ok = false;
    }
    if (std::string e = CheckListenAddress(c->http_listen, &http_host, &http_port); !e.empty()) {
      Error("http_listen", absl::StrCat(Quote(c->http_listen), " ", e));
      addrs_ok = false;
    }
    if (addrs_ok && grpc_port != 0 && grpc_port == http_port &&
        (grpc_host == http_host || IsWildcardHost(grpc_host) || IsWildcardHost(http_host))) {
      Error("http_listen", absl::StrCat("port ", http_port, " is also grpc_listen's"));
    }
    if (!c->openai_listen.empty()) {
      std::string api_host;
      int api_port = 0;
      if (std::string e = CheckListenAddress(c->openai_listen, &api_host, &api_port); !e.empty()) {
        Error("openai_listen", absl::StrCat(Quote(c->openai_listen), " ", e));
      } else if (addrs_ok && api_port != 0) {
        for (auto [key, host, port] : {std::tuple{"grpc_listen", grpc_host, grpc_port},
                                       std::tuple{"http_listen", http_host, http_port}}) {
          if (api_port == port &&
              (api_host == host || IsWildcardHost(api_host) || IsWildcardHost(host))) {
            Error("openai_listen", absl::StrCat("port ", api_port, " is also ", key, "'s"));
          }
        }
      }
    }
    if (c->http.max_connections_per_address > c->http.max_connections) {
      Error("http.max_connections_per_address",
            absl::StrCat(c->http.max_connections_per_address, " exceeds http.max_connections (",
                         c->http.max_connections, ")"));
    }

    const TlsConfig& tls = c->tls;
    if (tls.enabled) {
      if (tls.cert_file.empty()) Error("tls.cert_file", "required when tls.enabled is true");
      if (tls.key_file.empty()) Error("tls.key_file", "required when tls.enabled is true");
      if (tls.require_client_cert && tls.client_ca_file.empty()) {
        Error("tls.client_ca_file", "required when tls.require_client_cert is true");
      }
    } else {
      // Settings that would silently do nothing are mistakes.
      for (auto [key, value] : {std::pair{"tls.cert_file", &tls.cert_file},
                                {"tls.key_file", &tls.key_file},
                                {"tls.client_ca_file", &tls.client_ca_file}}) {
        if (!value->empty()) Error(key, "set but tls.enabled is false");
      }
      if (tls.require_client_cert)
        Error("tls.require_client_cert", "true but tls.enabled is false");
      if (tls.on_http_listen) Error("tls.on_http_listen", "true but tls.enabled is false");
    }

    const SchedulerConfig& s = c->scheduler;
    if (s.max_running > s.max_batched_tokens) {
      Error("scheduler.max_running",
            absl::StrCat(s.max_running, " exceeds scheduler.max_batched_tokens (",
                         s.max_batched_tokens, "): every running sequence decodes a token a step"));
    }
    if (s.prefill_chunk > s.max_batched_tokens) {
      Error("scheduler.prefill_chunk",
            absl::StrCat(s.prefill_chunk, " exceeds scheduler.max_batched_tokens (",
                         s.max_batched_tokens, ")"));
    }
    if (c->kv_cache.num_blocks > 0 && c->kv_cache.memory_bytes > 0) {
      Error("kv_cache.memory_bytes", "set together with kv_cache.num_blocks: set one of them");
    }

    std::set<std::string, std::less<>> ids, keys, identities;
    std::vector<std::pair<std::string, std::string>> key_owner, identity_owner;
    for (size_t i = 0; i < c->tenants.size(); ++i) {
      const TenantConfig& t = c->tenants[i];
      const std::string path = absl::StrCat("tenants[", i, "]");
      if (!t.id.empty() && !ids.insert(t.id).second) {
        Error(path + ".id", absl::StrCat("duplicate tenant id ", Quote(t.id)));
      }
      for (size_t k = 0; k < t.api_key_sha256.size(); ++k) {
        if (!keys.insert(t.api_key_sha256[k]).second) {
          Error(absl::StrCat(path, ".api_key_sha256[", k, "]"),
                "the same key hash is listed twice: a key must identify one tenant");
        }
      }
      for (size_t k = 0; k < t.client_cert_identities.size(); ++k) {
        const std::string& id = t.client_cert_identities[k];
        const std::string p = absl::StrCat(path, ".client_cert_identities[", k, "]");
        if (!identities.insert(id).second) {
          Error(p, absl::StrCat(Quote(id), " is listed twice: an identity must name one tenant"));
        }
        if (!tls.enabled || tls.client_ca_file.empty()) {
          Error(p, "needs tls.enabled and tls.client_ca_file to verify client certificates");
        }
      }
    }

    if (c->tenants.empty() && !c->allow_unauthenticated) {
      Error("tenants", "no tenants and allow_unauthenticated is false: no request could be served");
    }
    if (c->allow_unauthenticated) {
      if (c->default_tenant.empty()) {
        if (c->tenants.empty()) {
          TenantConfig anonymous;
          anonymous.id = "anonymous";
          c->tenants.push_back(anonymous);
          c->default_tenant = anonymous.id;
        } else {
          Error("default_tenant",
                "required when allow_unauthenticated is true and tenants are set");
        }
      } else if (!ids.contains(c->default_tenant)) {
        Error("default_tenant", absl::StrCat(Quote(c->default_tenant), " is not a tenant id"));
      }
    } else if (!c->default_tenant.empty()) {
      Error("default_tenant", "set but allow_unauthenticated is false");
    }
    for (size_t i = 0; i < c->tenants.size(); ++i) {
      const TenantConfig& t = c->tenants[i];
      if (!t.id.empty() && t.id != c->default_tenant && t.api_key_sha256.empty() &&
          t.client_cert_identities.empty()) {
        Error(absl::StrCat("tenants[", i, "]"),
              absl::StrCat("tenant ", Quote(t.id),
                           " has no api_key_sha256 and no client_cert_identities: no request "
                           "could reach it"));
      }
    }
  }

 private:
  bool InRange(int64_t v, int64_t min, int64_t max, const std::string& path, const YAML::Node& n) {
    if (v < min) {
      Error(path, absl::StrCat("must be >= ", min, ", got ", v), &n);
      return false;
    }
    if (v > max) {
      Error(path, absl::StrCat("must be <= ", max, ", got ", v), &n);
      return false;
    }
    return true;
  }

  std::vector<std::string> errors_;
};

absl::Status JoinErrors(const std::vector<std::string>& errors, const std::string& prefix) {
  std::string message;
  for (const std::string& e : errors) {
    if (!message.empty()) message += '\n';
    absl::StrAppend(&message, prefix, e);
  }
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<ServerConfig> Parse(std::string_view yaml_text, const std::string& prefix) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    // e.msg only: what() may quote the offending line, which could hold a secret.
    return absl::InvalidArgumentError(absl::StrCat(prefix, "not valid YAML: ", e.msg, " (line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ")"));
  }
  ConfigParser parser;
  ServerConfig config;
  try {
    if (!root.IsMap() && !root.IsNull()) {
      parser.Error("", absl::StrCat("expected a mapping at the top level, got ", KindName(root)));
    } else {
      parser.Top(root, &config);
      parser.CrossCheck(&config);
    }
  } catch (const YAML::Exception& e) {
    // Aliases and other shapes the walk does not expect; should not happen on a parsed tree.
    parser.Error("", absl::StrCat("unsupported YAML: ", e.msg));
  }
  if (!parser.errors().empty()) return JoinErrors(parser.errors(), prefix);
  return config;
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view yaml_text) {
  return Parse(yaml_text, "");
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::string text;
  char buf[64 << 10];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxConfigBytes >> 20, " MiB; not a config file"));
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));

  absl::StatusOr<ServerConfig> config = Parse(text, absl::StrCat(path, ": "));
  if (!config.ok()) return config.status();
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  auto resolve = [&dir](std::string* p) {
    if (p->empty() || dir.empty() || std::filesystem::path(*p).is_absolute()) return;
    *p = (dir / *p).lexically_normal().string();
  };
  resolve(&config->model_path);
  resolve(&config->tls.cert_file);
  resolve(&config->tls.key_file);
  resolve(&config->tls.client_ca_file);
  return config;
}

}  // namespace dsinfer
