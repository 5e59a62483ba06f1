// The dashboard served beyond loopback: a real daemon with
// dashboard.allow_remote, TLS on a certificate made here with the openssl
// CLI (a throw-away key in the test's temp dir, never committed) and a
// bearer token from a file (docs/DASHBOARD.md, "Remote access").
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <string>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";

// A self-signed certificate for 127.0.0.1 and localhost, valid for a day.
void MakeCertificate(const fs::path& dir) {
  auto res =
      RunProcess({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                  "-keyout", (dir / "key.pem").string(), "-out", (dir / "cert.pem").string()},
                 dir);
  INFO(res.err);
  REQUIRE(res.exit_code == 0);
}

std::string RemoteDashboard(const fs::path& dir) {
  return "shutdown_grace: 0\ndashboard:\n  listen: 127.0.0.1:0\n  allow_remote: true\n  tls_cert: " +
         (dir / "cert.pem").string() + "\n  tls_key: " + (dir / "key.pem").string() +
         "\n  token_file: " + (dir / "token").string() + "\n";
}

void WriteToken(const fs::path& file, const std::string& token, fs::perms perms) {
  WriteFile(file, token + "\n");
  fs::permissions(file, perms);
}

struct TlsDaemon {
  TempDir keys;
  Root r;
  pid_t pid = -1;
  int port = 0;

  TlsDaemon() : r("bwrap", (MakeCertificate(keys.path()), RemoteDashboard(keys.path()))) {
    WriteToken(keys / "token", kToken, fs::perms::owner_read | fs::perms::owner_write);
    pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
    bool up = r.WaitReady(pid);
    if (up) port = r.DashboardPort(pid, "https");
    up = up && port > 0;
    INFO(ReadFile(r.scratch / "stderr"));
    REQUIRE(up);
  }
  ~TlsDaemon() {
    ::kill(pid, SIGTERM);
    WaitProcess(pid, 30'000);
  }
  // Over TLS, verifying the server against the test's own certificate.
  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    httplib::SSLClient c("127.0.0.1", port);
    c.set_ca_cert_path((keys / "cert.pem").c_str());
    c.enable_server_certificate_verification(true);
    c.set_read_timeout(10, 0);
    return c.Get(path.c_str(), headers);
  }
  httplib::Result GetWithToken(const std::string& path, const std::string& token) {
    return Get(path, {{"Authorization", "Bearer " + token}});
  }
};

TEST_CASE(
    "a remote dashboard answers its API, /metrics and unknown paths with 401 and a Bearer challenge "
    "without a token",
    "[e2e][dashboard][security]") {
  TlsDaemon d;
  for (const char* path : {"/api/overview", "/api/jobs", "/api/tasks", "/api/jobs/1", "/metrics", "/nope"}) {
    INFO(path);
    auto res = d.Get(path);
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK_THAT(res->get_header_value("WWW-Authenticate"), Catch::StartsWith("Bearer"));
    CHECK_THAT(res->body, !Catch::Contains("\"jobs\""));
  }
}

TEST_CASE("a remote dashboard refuses a wrong token with 401", "[e2e][dashboard][security]") {
  TlsDaemon d;
  for (const std::string& wrong :
       {std::string("0123456789abcdef0123456789abcdeX"), std::string("short"), kToken + "0", std::string("")}) {
    INFO(wrong);
    auto res = d.GetWithToken("/api/jobs", wrong);
    REQUIRE(res);
    CHECK(res->status == 401);
  }
  auto basic = d.Get("/api/jobs", {{"Authorization", "Basic " + kToken}});
  REQUIRE(basic);
  CHECK(basic->status == 401);
}

TEST_CASE("a remote dashboard answers the right token with the jobs and metrics", "[e2e][dashboard][security]") {
  TlsDaemon d;
  d.r.Drop("main", "hello.json", {{"prompt", "echo hello"}});
  REQUIRE(WaitUntil([&] { return d.r.Query("SELECT count(*) FROM jobs WHERE state='succeeded'") == "1"; }, 30'000));
  auto jobs = d.GetWithToken("/api/jobs", kToken);
  REQUIRE(jobs);
  CHECK(jobs->status == 200);
  CHECK_THAT(jobs->body, Catch::Contains("echo hello"));
  auto metrics = d.Get("/metrics", {{"Authorization", "bearer " + kToken}});
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK_THAT(metrics->body, Catch::Contains("dropq_"));
}

TEST_CASE("a remote dashboard serves its page and assets without a token, so the page can ask for it",
          "[e2e][dashboard][security]") {
  TlsDaemon d;
  for (const char* path : {"/", "/dashboard.js", "/dashboard.css"}) {
    INFO(path);
    auto res = d.Get(path);
    REQUIRE(res);
    CHECK(res->status == 200);
  }
}

TEST_CASE("a remote dashboard does not answer plain HTTP on its TLS port", "[e2e][dashboard][security]") {
  TlsDaemon d;
  httplib::Client plain("127.0.0.1", d.port);
  plain.set_read_timeout(5, 0);
  auto res = plain.Get("/api/jobs", {{"Authorization", "Bearer " + kToken}});
  CHECK_FALSE(res);
}

TEST_CASE("the daemon refuses to start when others can read the dashboard's token file", "[e2e][dashboard][security]") {
  TempDir keys;
  MakeCertificate(keys.path());
  Root r("bwrap", RemoteDashboard(keys.path()));
  WriteToken(keys / "token", kToken,
             fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  auto res = r.Dropq({"run"}, 30'000);
  CHECK(res.exit_code != 0);
  CHECK_THAT(res.err, Catch::Contains("dashboard.token_file") && Catch::Contains("chmod 600"));
}

TEST_CASE("the daemon refuses to start on a token shorter than 16 characters", "[e2e][dashboard][security]") {
  TempDir keys;
  MakeCertificate(keys.path());
  Root r("bwrap", RemoteDashboard(keys.path()));
  WriteToken(keys / "token", "tooshort", fs::perms::owner_read | fs::perms::owner_write);
  auto res = r.Dropq({"run"}, 30'000);
  CHECK(res.exit_code != 0);
  CHECK_THAT(res.err, Catch::Contains("at least 16 characters"));
}

}  // namespace
}  // namespace dropq::testing
