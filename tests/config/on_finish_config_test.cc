// on_finish (docs/CONFIG.md, "Completion hooks"): the global hook, a
// group's, and the errors that point at a wrong one.
#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"

namespace dropq::app {
namespace {

const std::string kMinimal = "agent: [/opt/dropq/agent]\ngroups:\n  - folder: main\n    main: true\n";

Config Load(const std::string& yaml) { return LoadConfigString(yaml, "/srv/dropq"); }

ConfigError ErrorOf(const std::string& yaml) {
  try {
    Load(yaml);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for:\n" << yaml);
  return ConfigError("", "");
}

TEST_CASE("without on_finish no job has a completion hook", "[config]") {
  Config c = Load(kMinimal);
  CHECK(c.FinishHookFor(c.FindGroup("main")) == nullptr);
}

TEST_CASE("a command on_finish gets the defaults: failures only, 30 s, 5 tries", "[config]") {
  Config c = Load(kMinimal + "on_finish: {command: [/usr/local/bin/notify, --x]}\n");
  const FinishHook* h = c.FinishHookFor(c.FindGroup("main"));
  REQUIRE(h != nullptr);
  CHECK(h->command == std::vector<std::string>{"/usr/local/bin/notify", "--x"});
  CHECK(h->url.empty());
  CHECK(h->failures_only);
  CHECK(h->timeout_ms == 30'000);
  CHECK(h->max_attempts == 5);
}

TEST_CASE("a url on_finish takes when, timeout and max_attempts", "[config]") {
  Config c = Load(kMinimal +
                  "on_finish: {url: 'https://hooks.example/dropq?x=1', when: always, timeout: 5s, max_attempts: 2}\n");
  REQUIRE(c.on_finish);
  CHECK(c.on_finish->url == "https://hooks.example/dropq?x=1");
  CHECK_FALSE(c.on_finish->failures_only);
  CHECK(c.on_finish->timeout_ms == 5'000);
  CHECK(c.on_finish->max_attempts == 2);
}

TEST_CASE("a group's on_finish replaces the global one for that group only", "[config]") {
  Config c = Load(
      "agent: [/a]\non_finish: {command: [/bin/global]}\ngroups:\n  - folder: main\n    main: true\n"
      "  - folder: team\n    on_finish: {url: 'http://127.0.0.1:9/t'}\n");
  CHECK(c.FinishHookFor(c.FindGroup("main"))->command == std::vector<std::string>{"/bin/global"});
  CHECK(c.FinishHookFor(c.FindGroup("team"))->url == "http://127.0.0.1:9/t");
  // A group registered at run time has only the global one.
  CHECK(c.FinishHookFor(nullptr)->command == std::vector<std::string>{"/bin/global"});
}

TEST_CASE("a group's on_finish: null turns the global hook off for it", "[config]") {
  Config c = Load(
      "agent: [/a]\non_finish: {command: [/bin/global]}\ngroups:\n  - folder: main\n    main: true\n"
      "  - folder: team\n    on_finish:\n");
  CHECK(c.FinishHookFor(c.FindGroup("team")) == nullptr);
  CHECK(c.FinishHookFor(c.FindGroup("main")) != nullptr);
}

TEST_CASE("on_finish with both command and url is refused at the url's line", "[config]") {
  auto e = ErrorOf(kMinimal + "on_finish:\n  command: [/bin/n]\n  url: https://x.example/\n");
  CHECK(e.key() == "on_finish.url");
  CHECK(e.reason() == "set either command or url, not both");
  CHECK(e.line() == 7);
  CHECK(e.column() == 3);
}

TEST_CASE("on_finish with neither command nor url is refused", "[config]") {
  auto e = ErrorOf(kMinimal + "on_finish: {when: always}\n");
  CHECK(e.key() == "on_finish");
  CHECK(e.reason() == "needs command (an argv) or url");
}

TEST_CASE("an on_finish url that is not http or https is refused", "[config]") {
  auto e = ErrorOf(kMinimal + "on_finish: {url: 'ftp://x.example/'}\n");
  CHECK(e.key() == "on_finish.url");
  CHECK(e.reason() == "must be an http:// or https:// URL with a host");
}

TEST_CASE("an on_finish when other than failed or always is refused", "[config]") {
  auto e = ErrorOf(kMinimal + "on_finish: {command: [/bin/n], when: sometimes}\n");
  CHECK(e.key() == "on_finish.when");
  CHECK(e.reason() == "must be failed or always");
}

TEST_CASE("a misspelt key in a group's on_finish suggests the right one", "[config]") {
  auto e = ErrorOf(kMinimal + "    on_finish: {command: [/bin/n], max_atempts: 3}\n");
  CHECK(e.key() == "groups[0].on_finish.max_atempts");
  CHECK(e.reason() == "unknown key; did you mean `max_attempts`?");
  CHECK(e.line() == 5);
}

}  // namespace
}  // namespace dropq::app
