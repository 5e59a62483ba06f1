// dashboard.listen, allow_remote, tls_cert, tls_key and token_file (docs/CONFIG.md, docs/SECURITY.md).
#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"
#include "config/listen_address.h"

namespace dropq::app {
namespace {

const std::string kMinimal = "agent: [/opt/dropq/agent]\ngroups:\n  - folder: main\n    main: true\n";

Config Load(const std::string& extra) { return LoadConfigString(kMinimal + extra, "/srv/dropq"); }

ConfigError ErrorOf(const std::string& extra) {
  try {
    Load(extra);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for:\n" << extra);
  return ConfigError("", "");
}

TEST_CASE("without a dashboard key the dashboard is off", "[dashboard][config]") {
  Config c = Load("");
  CHECK(c.dashboard.listen.empty());
}

TEST_CASE("dashboard.listen on a loopback address is taken apart into host and port", "[dashboard][config]") {
  Config c = Load("dashboard:\n  listen: 127.0.0.1:8080\n");
  CHECK(c.dashboard.host == "127.0.0.1");
  CHECK(c.dashboard.port == 8080);
  CHECK(Load("dashboard: {listen: \"[::1]:9000\"}\n").dashboard.host == "::1");
  CHECK(Load("dashboard: {listen: \"localhost:0\"}\n").dashboard.port == 0);
  CHECK(Load("dashboard: {listen: \"127.8.9.10:1\"}\n").dashboard.host == "127.8.9.10");
}

TEST_CASE("dashboard.listen on a non-loopback address is refused unless allow_remote is set", "[dashboard][config]") {
  auto e = ErrorOf("dashboard:\n  listen: 0.0.0.0:8080\n");
  CHECK(e.key() == "dashboard.listen");
  CHECK_THAT(e.reason(), Catch::Contains("not a loopback address") && Catch::Contains("dashboard.allow_remote: true"));
  CHECK(ErrorOf("dashboard: {listen: \"[::]:8080\"}\n").key() == "dashboard.listen");
  CHECK(ErrorOf("dashboard: {listen: \"192.0.2.7:8080\", allow_remote: false}\n").key() == "dashboard.listen");
}

const std::string kRemote =
    "dashboard:\n  listen: 0.0.0.0:8080\n  allow_remote: true\n  tls_cert: tls/cert.pem\n"
    "  tls_key: tls/key.pem\n  token_file: /etc/dropq/dashboard.token\n";

std::string Without(const std::string& key) {
  std::string s = kRemote;
  auto at = s.find("  " + key + ":");
  return s.erase(at, s.find('\n', at) + 1 - at);
}

TEST_CASE("dashboard.allow_remote with TLS and a token lets the dashboard listen on every address",
          "[dashboard][config]") {
  Config c = Load(kRemote);
  CHECK(c.dashboard.host == "0.0.0.0");
  CHECK(c.dashboard.allow_remote);
}

TEST_CASE("dashboard TLS and token paths resolve against the config file's directory", "[dashboard][config]") {
  Config c = Load(kRemote);
  CHECK(c.dashboard.tls_cert == "/srv/dropq/tls/cert.pem");
  CHECK(c.dashboard.tls_key == "/srv/dropq/tls/key.pem");
  CHECK(c.dashboard.token_file == "/etc/dropq/dashboard.token");
}

TEST_CASE("dashboard.allow_remote without a certificate, key or token file is refused naming the missing key",
          "[dashboard][config][security]") {
  for (const char* key : {"tls_cert", "tls_key", "token_file"}) {
    INFO(key);
    auto e = ErrorOf(Without(key));
    CHECK(e.key() == std::string("dashboard.") + key);
    CHECK_THAT(e.reason(), Catch::Contains("required when dashboard.allow_remote is true"));
  }
  CHECK(ErrorOf("dashboard:\n  listen: 0.0.0.0:8080\n  allow_remote: true\n").key() == "dashboard.tls_cert");
}

TEST_CASE("a dashboard certificate without its key, or a key without its certificate, is refused",
          "[dashboard][config]") {
  CHECK(ErrorOf("dashboard:\n  listen: 127.0.0.1:1\n  tls_cert: c.pem\n").key() == "dashboard.tls_key");
  CHECK(ErrorOf("dashboard:\n  listen: 127.0.0.1:1\n  tls_key: k.pem\n").key() == "dashboard.tls_cert");
}

TEST_CASE("a loopback dashboard may use TLS and a token without allow_remote", "[dashboard][config]") {
  Config c = Load("dashboard:\n  listen: 127.0.0.1:1\n  tls_cert: c.pem\n  tls_key: k.pem\n  token_file: t\n");
  CHECK_FALSE(c.dashboard.allow_remote);
  CHECK(c.dashboard.token_file == "/srv/dropq/t");
}

TEST_CASE("a dashboard.listen that is not HOST:PORT is refused with the shape it needs", "[dashboard][config]") {
  for (const char* bad : {"8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "::1:8080",
                          "[::1]8080", "127.0.0.1:-1"}) {
    INFO(bad);
    auto e = ErrorOf(std::string("dashboard:\n  listen: \"") + bad + "\"\n");
    CHECK(e.key() == "dashboard.listen");
  }
  CHECK_THAT(ErrorOf("dashboard: {listen: \"8080\"}\n").reason(), Catch::Contains("must be HOST:PORT"));
  CHECK_THAT(ErrorOf("dashboard: {listen: \"::1:8080\"}\n").reason(), Catch::Contains("in brackets"));
}

TEST_CASE("a dashboard host name other than localhost is refused rather than resolved", "[dashboard][config]") {
  auto e = ErrorOf(
      "dashboard:\n  listen: dashboard.example:8080\n  allow_remote: true\n  tls_cert: c\n"
      "  tls_key: k\n  token_file: t\n");
  CHECK(e.key() == "dashboard.listen");
  CHECK_THAT(e.reason(), Catch::Contains("IP address or localhost"));
}

TEST_CASE("an unknown key under dashboard is refused", "[dashboard][config]") {
  CHECK(ErrorOf("dashboard:\n  listen: 127.0.0.1:1\n  port: 2\n").key() == "dashboard.port");
}

}  // namespace
}  // namespace dropq::app
