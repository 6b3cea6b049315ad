// Test certificates made at test time with the openssl CLI (ECDSA P-256, valid two days):
//   ca.pem / ca.key                    the CA of the server and the client certificates
//   server.pem / server.key            CN=localhost, SAN DNS:localhost, IP:127.0.0.1
//   county-c-client.pem / .key         CN=county-c-client, SAN DNS:county-c-client.example
//   stranger.pem / .key                CN=stranger, SAN DNS:stranger.example (same CA)
//   rogue-ca.pem, rogue-client.pem/.key  a second CA and a client certificate it signed
//                                      (CN=county-c-client: the right name from the wrong CA)
//   intermediate-ca.pem                a CA signed by ca.pem
//   team-client.pem / .key             CN=team-client, signed by the intermediate
//   multi-san-client.pem / .key        CN=multi-san-client, SAN URI:spiffe://prov.internal/county-u,
//                                      email:ops@county-u.example, IP:10.0.0.7
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"

namespace dsinfer::testing {

struct TestPki {
  std::filesystem::path dir;
  bool ok = false;

  static bool OpensslInstalled() {
    return std::system("command -v openssl >/dev/null 2>&1") == 0;
  }

  // `tag` keeps the directories of different tests in one process apart.
  static TestPki Make(const std::string& tag = "server") {
    TestPki p;
    p.dir = std::filesystem::temp_directory_path() /
            absl::StrCat("dsinfer_", tag, "_pki_", getpid());
    std::filesystem::remove_all(p.dir);
    std::filesystem::create_directories(p.dir);
    const std::string d = p.dir.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script = absl::StrCat(
        "set -e; cd ", d, "; exec 2>openssl.log; ", "openssl req -x509 ", key,
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=dsinfer-test-ca; ", "openssl req -x509 ",
        key, " -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj /CN=dsinfer-rogue-ca; ",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext; ", "openssl req ", key,
        " -keyout server.key -out server.csr -subj /CN=localhost; ",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 ",
        "-extfile server.ext -out server.pem; ",
        "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' ",
        "> intermediate-ca.ext; openssl req ", key,
        " -keyout intermediate-ca.key -out intermediate-ca.csr -subj /CN=dsinfer-intermediate-ca; ",
        "openssl x509 -req -in intermediate-ca.csr -CA ca.pem -CAkey ca.key -CAcreateserial ",
        "-days 2 -extfile intermediate-ca.ext -out intermediate-ca.pem; ");
    struct Client {
      const char* file;
      const char* cn;
      const char* ca;
      std::string san;
    };
    for (const Client& c :
         {Client{"county-c-client", "county-c-client", "ca", "DNS:county-c-client.example"},
          Client{"stranger", "stranger", "ca", "DNS:stranger.example"},
          Client{"rogue-client", "county-c-client", "rogue-ca", "DNS:county-c-client.example"},
          Client{"team-client", "team-client", "intermediate-ca", "DNS:team-client.example"},
          Client{"multi-san-client", "multi-san-client", "ca",
                 "URI:spiffe://prov.internal/county-u,email:ops@county-u.example,IP:10.0.0.7"}}) {
      absl::StrAppend(&script, "printf 'subjectAltName=", c.san, "\\n' > ", c.file,
                      ".ext; openssl req ", key, " -keyout ", c.file, ".key -out ", c.file,
                      ".csr -subj /CN=", c.cn, "; openssl x509 -req -in ", c.file, ".csr -CA ",
                      c.ca, ".pem -CAkey ", c.ca, ".key -CAcreateserial -days 2 -extfile ",
                      c.file, ".ext -out ", c.file, ".pem; ");
    }
    { std::ofstream(p.dir / "make.sh") << script << "\n"; }
    p.ok = std::system(absl::StrCat("sh ", (p.dir / "make.sh").string()).c_str()) == 0;
    return p;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(dir / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string Path(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace dsinfer::testing
