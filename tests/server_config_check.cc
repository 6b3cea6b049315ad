// Validates server config files with the server's own parser: `server_config_check FILE...`.
// Used by tools/check_helm.sh on the ConfigMap the Helm chart renders. Exit 0 when all parse.
#include <cstdio>

#include "src/config/server_config.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    absl::StatusOr<dsinfer::ServerConfig> c = dsinfer::LoadServerConfig(argv[i]);
    if (c.ok()) {
      std::printf("%s: OK (%zu tenants)\n", argv[i], c->tenants.size());
    } else {
      std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}
