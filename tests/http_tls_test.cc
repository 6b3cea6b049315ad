// TLS and mTLS on the HTTP server (src/http): HTTPS with the test CA, a plain HTTP request to a
// TLS port answered 400 and closed without disturbing other connections, client certificates
// required / optional / from the wrong CA, the identities a verified certificate carries, and
// slow handshakes (silent, a partial ClientHello, a trickled one) cut at the header timeout
// while /healthz on the same TLS listener answers within 100 ms; the server ends its sessions
// with a close_notify (after a `Connection: close` answer, an error answer and at the idle
// timeout), and a client that never answers it is cut at the write timeout. Certificates are
// made at test time with the openssl CLI (tests/test_pki.h); without it the tests skip.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "src/http/http_server.h"
#include "src/metrics/http_server.h"
#include "src/metrics/registry.h"
#include "tests/raw_socket.h"
#include "tests/test_pki.h"

namespace dsinfer {
namespace {

using testing::Clock;
using testing::Connect;
using testing::ReadUntilClose;
using testing::Seconds;
using testing::SendAll;
using testing::TestPki;

constexpr double kProbeBound = 0.100;  // the issue's /healthz bound

class HttpTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);  // httplib may write into a connection the server refused
    if (!TestPki::OpensslInstalled()) return;
    pki_ = new TestPki(TestPki::Make("http_tls"));
  }
  static void TearDownTestSuite() {
    if (pki_ != nullptr) std::filesystem::remove_all(pki_->dir);
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override {
    if (pki_ == nullptr) GTEST_SKIP() << "the openssl command is not installed";
    ASSERT_TRUE(pki_->ok) << pki_->Read("openssl.log");
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  HttpTlsOptions Tls(HttpTlsOptions::ClientCerts certs) const {
    HttpTlsOptions o;
    o.cert_chain_pem = pki_->Read("server.pem");
    o.private_key_pem = pki_->Read("server.key");
    if (certs != HttpTlsOptions::ClientCerts::kNone) o.client_ca_pem = pki_->Read("ca.pem");
    o.client_certs = certs;
    return o;
  }

  // A server whose /whoami answers "tls=<0|1> ids=<identities, comma-separated>".
  void StartServer(HttpTlsOptions::ClientCerts certs, HttpConfig limits = {}) {
    server_ = std::make_unique<HttpServer>("test HTTPS server", limits);
    server_->Route("GET", "/whoami", [](std::shared_ptr<HttpExchange> ex) {
      const HttpRequest& r = ex->request();
      ex->Respond(HttpResponse{
          200,
          "text/plain",
          absl::StrCat("tls=", r.tls ? 1 : 0, " ids=", absl::StrJoin(r.peer_identities, ",")),
          {}});
    });
    ASSERT_TRUE(server_->EnableTls(Tls(certs)).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }

  // An HTTPS client that verifies the server against `ca` and presents `client` (a file stem in
  // the PKI directory) when given.
  std::unique_ptr<httplib::SSLClient> Client(int port, const std::string& client = "",
                                             const std::string& ca = "ca.pem") const {
    std::unique_ptr<httplib::SSLClient> c;
    if (client.empty()) {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    } else {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", port, pki_->Path(client + ".pem"),
                                               pki_->Path(client + ".key"));
    }
    c->set_ca_cert_path(pki_->Path(ca));
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(2, 0);
    c->set_read_timeout(2, 0);
    return c;
  }

  // The /whoami body, or "failed: <httplib error>".
  std::string WhoAmI(httplib::SSLClient& c) {
    httplib::Result r = c.Get("/whoami");
    if (!r) return absl::StrCat("failed: ", httplib::to_string(r.error()));
    if (r->status != 200) return absl::StrCat("status ", r->status);
    return r->body;
  }

  int WaitConnections(int n) const {
    for (int i = 0; i < 300 && server_->connections() != n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return server_->connections();
  }

  static TestPki* pki_;
  std::unique_ptr<HttpServer> server_;
};

TestPki* HttpTls::pki_ = nullptr;

// A raw OpenSSL client on a blocking socket: what a strict client sees at the end of a session.
class RawTlsClient {
 public:
  RawTlsClient(int port, const std::string& ca_path) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca_path.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = Connect(port);
    timeval tv{5, 0};  // no read blocks the test for long
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = fd_ >= 0 && SSL_connect(ssl_) == 1;
  }
  ~RawTlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  bool Write(const std::string& s) {
    return SSL_write(ssl_, s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size());
  }
  // Reads until the session or the socket ends (or `until` appears, when given). `end`:
  // "close_notify" (a clean TLS shutdown), "truncated" (EOF without one), or the error.
  std::string Read(std::string* end, const std::string& until = "") {
    std::string got;
    char buf[4096];
    for (;;) {
      if (!until.empty() && got.find(until) != std::string::npos) {
        *end = "";
        return got;
      }
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_ZERO_RETURN) {
        *end = "close_notify";
      } else if (err == SSL_ERROR_SSL &&
                 ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        *end = "truncated";
      } else if (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
        *end = "truncated";  // EOF without close_notify (older OpenSSL reports it so)
      } else {
        *end = absl::StrCat("error ", err);
      }
      ERR_clear_error();
      return got;
    }
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(HttpTls, TheServerEndsSessionsWithACloseNotify) {
  HttpConfig limits;
  limits.max_header_bytes = 4096;
  limits.idle_timeout_seconds = 0.3;
  limits.write_timeout_seconds = 1.0;
  StartServer(HttpTlsOptions::ClientCerts::kNone, limits);
  const std::string ca = pki_->Path("ca.pem");
  std::string end;
  {
    // The client asks to close after the answer.
    RawTlsClient c(server_->port(), ca);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Write("GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const std::string r = c.Read(&end);
    EXPECT_NE(r.find("tls=1"), std::string::npos) << r;
    EXPECT_EQ(end, "close_notify");
  }
  {
    // An error answer that ends the connection (431).
    RawTlsClient c(server_->port(), ca);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Write(absl::StrCat("GET /whoami HTTP/1.1\r\nHost: x\r\nX-Padding: ",
                                     std::string(8192, 'p'), "\r\n\r\n")));
    const std::string r = c.Read(&end);
    EXPECT_EQ(r.rfind("HTTP/1.1 431", 0), 0u) << r;
    EXPECT_EQ(end, "close_notify");
  }
  {
    // A keep-alive client idle past the idle timeout.
    RawTlsClient c(server_->port(), ca);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Write("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string r = c.Read(&end, "tls=1 ids=");
    EXPECT_NE(r.find("tls=1"), std::string::npos) << r;
    const auto idle_from = Clock::now();
    c.Read(&end);
    EXPECT_EQ(end, "close_notify");
    EXPECT_GE(Seconds(Clock::now() - idle_from), 0.2);
    EXPECT_LT(Seconds(Clock::now() - idle_from), 2.0);
  }
  EXPECT_EQ(WaitConnections(0), 0);
  {
    // A client that reads the close_notify but never answers it nor closes: the server lets go
    // at the write timeout, not later.
    RawTlsClient c(server_->port(), ca);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Write("GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const auto from = Clock::now();
    c.Read(&end);
    EXPECT_EQ(end, "close_notify");
    EXPECT_EQ(WaitConnections(0), 0);
    EXPECT_LT(Seconds(Clock::now() - from), 2.5);
  }
}

TEST_F(HttpTls, HttpsWithTheCaSucceeds) {
  StartServer(HttpTlsOptions::ClientCerts::kNone);
  EXPECT_EQ(WhoAmI(*Client(server_->port())), "tls=1 ids=");
  // A client that trusts another CA refuses the server's certificate.
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "", "rogue-ca.pem")).rfind("failed", 0), 0u);
  // Without a client CA no certificate is asked for; one sent anyway identifies nobody.
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "county-c-client")), "tls=1 ids=");
  EXPECT_EQ(WaitConnections(0), 0);
}

TEST_F(HttpTls, PlainHttpToTheTlsPortIsRefusedCleanly) {
  StartServer(HttpTlsOptions::ClientCerts::kNone);
  auto https = Client(server_->port());
  https->set_keep_alive(true);
  EXPECT_EQ(WhoAmI(*https), "tls=1 ids=");  // a kept-alive HTTPS connection, before and after
  const int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  SendAll(fd, "GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  const std::string r = ReadUntilClose(fd, 3.0, &closed);
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_LT(Seconds(Clock::now() - start), 1.0);
  EXPECT_EQ(r.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("HTTPS"), std::string::npos) << r;
  EXPECT_EQ(WhoAmI(*https), "tls=1 ids=");
  EXPECT_EQ(WhoAmI(*Client(server_->port())), "tls=1 ids=");
  https.reset();
  EXPECT_EQ(WaitConnections(0), 0);
}

TEST_F(HttpTls, RequiredClientCertificate) {
  StartServer(HttpTlsOptions::ClientCerts::kRequired);
  EXPECT_EQ(WhoAmI(*Client(server_->port())).rfind("failed", 0), 0u) << "no certificate";
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "rogue-client")).rfind("failed", 0), 0u)
      << "a certificate from another CA (with a tenant's name)";
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "county-c-client")),
            "tls=1 ids=county-c-client,county-c-client.example");
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "stranger")), "tls=1 ids=stranger,stranger.example");
  // Every kind of subject alternative name gRPC reports, in the certificate's order.
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "multi-san-client")),
            "tls=1 ids=multi-san-client,spiffe://prov.internal/county-u,ops@county-u.example,"
            "10.0.0.7");
  EXPECT_EQ(WaitConnections(0), 0);
}

TEST_F(HttpTls, OptionalClientCertificateIsVerifiedWhenSent) {
  StartServer(HttpTlsOptions::ClientCerts::kOptional);
  EXPECT_EQ(WhoAmI(*Client(server_->port())), "tls=1 ids=");  // API keys may still be used
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "rogue-client")).rfind("failed", 0), 0u);
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "county-c-client")),
            "tls=1 ids=county-c-client,county-c-client.example");
}

// As gRPC configures OpenSSL (X509_V_FLAG_PARTIAL_CHAIN): an intermediate CA alone as the
// client CA verifies the certificates it issued; the root's other certificates are not trusted.
TEST_F(HttpTls, AnIntermediateAloneIsEnoughAsTheClientCa) {
  HttpTlsOptions tls = Tls(HttpTlsOptions::ClientCerts::kRequired);
  tls.client_ca_pem = pki_->Read("intermediate-ca.pem");
  server_ = std::make_unique<HttpServer>("test HTTPS server", HttpConfig{});
  server_->Route("GET", "/whoami", [](std::shared_ptr<HttpExchange> ex) {
    ex->Respond(
        HttpResponse{200, "text/plain", absl::StrJoin(ex->request().peer_identities, ","), {}});
  });
  ASSERT_TRUE(server_->EnableTls(tls).ok());
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "team-client")), "team-client,team-client.example");
  EXPECT_EQ(WhoAmI(*Client(server_->port(), "county-c-client")).rfind("failed", 0), 0u);
}

// The limits and the client-gone notice hold over TLS: an oversized header is answered 431
// (encrypted) before the connection closes; a client that gives up while its handler works is
// noticed at once.
TEST_F(HttpTls, LimitsAndClientGoneOverTls) {
  HttpConfig limits;
  limits.max_header_bytes = 4096;
  server_ = std::make_unique<HttpServer>("test HTTPS server", limits);
  std::atomic<bool> gone{false};
  std::shared_ptr<HttpExchange> held;
  std::mutex mu;
  server_->Route("GET", "/hold", [&](std::shared_ptr<HttpExchange> ex) {
    ex->OnClientGone([&gone] { gone.store(true); });
    std::lock_guard<std::mutex> lock(mu);
    held = std::move(ex);  // never answered while the client waits
  });
  ASSERT_TRUE(server_->EnableTls(Tls(HttpTlsOptions::ClientCerts::kNone)).ok());
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());

  auto big = Client(server_->port());
  httplib::Result r = big->Get("/hold", {{"X-Padding", std::string(8192, 'p')}});
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 431);

  auto impatient = Client(server_->port());
  impatient->set_read_timeout(0, 300000);  // gives up after 0.3 s and closes
  EXPECT_FALSE(impatient->Get("/hold"));
  impatient.reset();
  for (int i = 0; i < 200 && !gone.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone.load());
  {
    std::lock_guard<std::mutex> lock(mu);
    held.reset();
  }
  EXPECT_EQ(WaitConnections(0), 0);
}

TEST_F(HttpTls, HandshakesCountTowardTheConnectionCaps) {
  HttpConfig limits;
  limits.max_connections_per_address = 3;
  limits.max_connections = 3;
  StartServer(HttpTlsOptions::ClientCerts::kNone, limits);
  std::vector<int> silent;
  for (int i = 0; i < 3; ++i) silent.push_back(Connect(server_->port()));
  ASSERT_EQ(WaitConnections(3), 3);
  EXPECT_EQ(WhoAmI(*Client(server_->port())).rfind("failed", 0), 0u) << "over the cap";
  close(silent[0]);
  ASSERT_EQ(WaitConnections(2), 2);
  EXPECT_EQ(WhoAmI(*Client(server_->port())), "tls=1 ids=");
  for (size_t i = 1; i < silent.size(); ++i) close(silent[i]);
  EXPECT_EQ(WaitConnections(0), 0);
}

// Slow handshakes on the ops listener served over TLS: each is cut at the header timeout
// (counted from the accept), and /healthz over HTTPS answers within 100 ms meanwhile.
TEST_F(HttpTls, SlowHandshakesAreCutAndHealthzStaysFast) {
  HttpConfig limits;
  limits.max_connections = 4096;
  limits.max_connections_per_address = 4096;
  limits.header_timeout_seconds = 1.0;
  MetricRegistry registry;
  MetricsHttpServer ops(&registry, nullptr, nullptr, limits);
  ASSERT_TRUE(ops.EnableTls(Tls(HttpTlsOptions::ClientCerts::kNone)).ok());
  ASSERT_TRUE(ops.Start("127.0.0.1:0").ok());

  // A TLS record header announcing a 512-byte ClientHello, and the start of its body.
  const std::string partial_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  struct Slow {
    int fd;
    Clock::time_point opened;
  };
  std::vector<Slow> slow;
  for (int i = 0; i < 100; ++i) {
    const int fd = Connect(ops.port());
    ASSERT_GE(fd, 0) << i;
    slow.push_back({fd, Clock::now()});
    if (i % 2 == 1) SendAll(fd, partial_hello);  // half silent, half a partial ClientHello
  }
  // One more trickles its ClientHello a byte every 100 ms: the deadline does not move.
  const int trickle = Connect(ops.port());
  ASSERT_GE(trickle, 0);
  const auto trickle_opened = Clock::now();
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    for (size_t i = 0; i < partial_hello.size() && !stop.load(); ++i) {
      if (!SendAll(trickle, partial_hello.substr(i, 1))) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  auto probe = Client(ops.port());
  std::vector<double> latencies;
  for (int i = 0; i < 10; ++i) {
    const auto start = Clock::now();
    httplib::Result r = probe->Get("/healthz");
    latencies.push_back(Seconds(Clock::now() - start));
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ok\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<double> sorted = latencies;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "[healthz over TLS, 101 slow handshakes] %zu probes, median %.2f ms, max %.2f ms "
      "(bound %.0f ms)\n",
      sorted.size(), sorted[sorted.size() / 2] * 1e3, sorted.back() * 1e3, kProbeBound * 1e3);
  for (double s : latencies) EXPECT_LT(s, kProbeBound);

  // Every slow handshake is closed at the header timeout, not before, not much after.
  for (const Slow& s : slow) {
    bool closed = false;
    const std::string got = ReadUntilClose(s.fd, 3.0, &closed);
    const double lived = Seconds(Clock::now() - s.opened);
    EXPECT_TRUE(closed);
    EXPECT_GE(lived, 0.9);
    EXPECT_LT(lived, 2.5);
    close(s.fd);
  }
  bool closed = false;
  ReadUntilClose(trickle, 3.0, &closed);
  const double lived = Seconds(Clock::now() - trickle_opened);
  stop.store(true);
  trickler.join();
  close(trickle);
  EXPECT_TRUE(closed);
  EXPECT_GE(lived, 0.9);
  EXPECT_LT(lived, 2.5);
  // The ops listener still answers once they are gone.
  httplib::Result r = Client(ops.port())->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ops.Stop();
}

}  // namespace
}  // namespace dsinfer
