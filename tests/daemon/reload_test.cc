#include "daemon/reload.h"

#include <catch2/catch.hpp>

namespace dropq::app {
namespace {

// A config with `top` keys and main plus `groups` in its group list.
Config Load(const std::string& top, const std::string& groups = "") {
  return LoadConfigString(top +
                              "root: /srv/dropq\n"
                              "agent: [/bin/true]\n"
                              "groups:\n"
                              "  - {folder: main, name: Main, main: true}\n" +
                              groups,
                          "/etc/dropq");
}

TEST_CASE("a reload plan keeps the running root and runtime and names them as needing a restart", "[reload]") {
  Config loaded = Load("runtime: process\n");
  loaded.root = "/srv/other";
  ReloadPlan plan = PlanReload(Load(""), loaded);
  CHECK(plan.restart_needed == std::vector<std::string>{"root", "runtime"});
  CHECK(plan.next.root == "/srv/dropq");
  CHECK(plan.next.runtime == "bwrap");
}

TEST_CASE("a reload plan applies changed limits and groups and lists them", "[reload]") {
  ReloadPlan plan = PlanReload(Load(""), Load("max_concurrent: 9\n", "  - {folder: team, name: Team}\n"));
  CHECK(plan.restart_needed.empty());
  CHECK(plan.changed == std::vector<std::string>{"max_concurrent", "groups"});
  CHECK(plan.next.max_concurrent == 9);
  CHECK(plan.next.groups.size() == 2);
}

TEST_CASE("a reload plan applies a changed rate limit, top-level or a group's", "[reload]") {
  ReloadPlan plan = PlanReload(Load("", "  - {folder: team, rate: 2/min}\n"),
                               Load("rate: 1/s\n", "  - {folder: team, rate: 4/min}\n"));
  CHECK(plan.restart_needed.empty());
  CHECK(plan.changed == std::vector<std::string>{"rate", "groups"});
  CHECK(plan.next.RateFor("team") == std::optional<RateLimit>(RateLimit{4, 60'000}));
  CHECK(plan.next.RateFor("main") == std::optional<RateLimit>(RateLimit{1, 1'000}));
}

TEST_CASE("a reload plan applies a changed max_concurrent_per_group, top-level or a group's", "[reload]") {
  ReloadPlan plan = PlanReload(Load("", "  - {folder: team}\n"),
                               Load("max_concurrent_per_group: 2\n", "  - {folder: team, max_concurrent_per_group: 6}\n"));
  CHECK(plan.restart_needed.empty());
  CHECK(plan.changed == std::vector<std::string>{"max_concurrent_per_group", "groups"});
  CHECK(plan.next.MaxConcurrentPerGroupFor("team") == 6);
  CHECK(plan.next.MaxConcurrentPerGroupFor("main") == 2);
}

TEST_CASE("a reload plan of an unchanged config changes nothing", "[reload]") {
  ReloadPlan plan = PlanReload(Load("timeout: 5m\n"), Load("timeout: 5m\n"));
  CHECK(plan.restart_needed.empty());
  CHECK(plan.changed.empty());
}

TEST_CASE("a reload plan notices a changed additional mount of a group", "[reload]") {
  auto team = [](const char* host) {
    return std::string("  - {folder: team, name: Team, containerConfig: {additionalMounts: [{hostPath: ") + host +
           "}]}}\n";
  };
  ReloadPlan plan = PlanReload(Load("", team("/data/a")), Load("", team("/data/b")));
  CHECK(plan.changed == std::vector<std::string>{"groups"});
}

TEST_CASE("a reload plan keeps the running dashboard's token file and names the dashboard as needing a restart",
          "[reload]") {
  Config running = Load("");
  running.dashboard.token_file = "/etc/dropq/token";
  Config loaded = running;
  loaded.dashboard.token_file = "/etc/dropq/new-token";
  ReloadPlan plan = PlanReload(running, loaded);
  CHECK(plan.restart_needed == std::vector<std::string>{"dashboard"});
  CHECK(plan.next.dashboard.token_file == "/etc/dropq/token");
}

}  // namespace
}  // namespace dropq::app
