// Config errors point at the fix: file:line:column and "did you mean".
#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"
#include "tests/fakes/temp_dir.h"

using dropq::app::ClosestKey;
using dropq::app::ConfigError;
using dropq::app::LoadConfigFile;
using dropq::app::LoadConfigString;

namespace {

const std::string kMinimal = "agent: [/opt/dropq/agent]\ngroups:\n  - folder: main\n    main: true\n";

ConfigError ErrorOf(const std::string& yaml) {
  try {
    LoadConfigString(yaml, "/srv/dropq");
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for:\n" << yaml);
  return ConfigError("", "");
}

}  // namespace

TEST_CASE("An unknown top-level key is located at its line and column, 1-based") {
  auto e = ErrorOf(kMinimal + "max_concurrency: 3\n");
  CHECK(e.line() == 5);
  CHECK(e.column() == 1);
}

TEST_CASE("An unknown key close to a known one suggests it") {
  auto e = ErrorOf(kMinimal + "bwrap:\n  netwrok: true\n");
  CHECK(e.key() == "bwrap.netwrok");
  CHECK(e.reason() == "unknown key; did you mean `network`?");
  CHECK(e.line() == 6);
  CHECK(e.column() == 3);
}

TEST_CASE("An unknown key far from every known one gets no suggestion") {
  CHECK(ErrorOf(kMinimal + "colour: blue\n").reason() == "unknown key");
}

TEST_CASE("A bad value inside a list item points at its key") {
  auto e = ErrorOf("agent: [/a]\ngroups:\n  - folder: main\n    main: true\n  - folder: b\n    timeout: soon\n");
  CHECK(e.key() == "groups[1].timeout");
  CHECK(e.line() == 6);
  CHECK(e.column() == 5);
}

TEST_CASE("A missing required key points at the mapping that lacks it") {
  auto e = ErrorOf("agent: [/a]\ngroups:\n  - main: true\n");
  CHECK(e.key() == "groups[0].folder");
  CHECK(e.line() == 3);
  CHECK(e.column() == 5);
}

TEST_CASE("A duplicate key points at the second occurrence") {
  auto e = ErrorOf(kMinimal + "timeout: 1s\ntimeout: 2s\n");
  CHECK(e.reason() == "duplicate key");
  CHECK(e.line() == 6);
}

TEST_CASE("A config error from a file reads path:line:column: key: reason") {
  dropq::testing::TempDir dir;
  dropq::testing::WriteFile(dir / "dropq.yaml", kMinimal + "max_concurrent: 0\n");
  try {
    LoadConfigFile((dir / "dropq.yaml").string());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == (dir / "dropq.yaml").string() + ":5:1: max_concurrent: must be an integer from 1 to 100000");
  }
}

TEST_CASE("A YAML syntax error from a file reads path:line:column: message") {
  dropq::testing::TempDir dir;
  dropq::testing::WriteFile(dir / "dropq.yaml", "groups:\n  - folder: [main\n");
  try {
    LoadConfigFile((dir / "dropq.yaml").string());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    const std::string prefix = (dir / "dropq.yaml").string() + ":" + std::to_string(e.line()) + ":";
    CHECK(e.line() > 0);
    CHECK(std::string(e.what()).rfind(prefix, 0) == 0);
    CHECK(std::string(e.what()).find("yaml-cpp") == std::string::npos);
  }
}

TEST_CASE("ClosestKey finds a transposition, a missing letter and a wrong case") {
  CHECK(ClosestKey("tiemout", {"timeout", "timezone"}) == "timeout");
  CHECK(ClosestKey("agnt", {"agent", "root"}) == "agent");
  CHECK(ClosestKey("Runtime", {"runtime"}) == "runtime");
}

TEST_CASE("ClosestKey suggests nothing beyond distance two") {
  CHECK(ClosestKey("schedule_list", {"schedules"}).empty());
}
