// max_concurrent_per_group against the real binary (docs/CONFIG.md,
// "Parallel jobs of one group"): a group allowed four runs four at once and
// never a fifth, concurrent jobs of a group each get the session stored at
// their start and the last to end sets it, cancelling one stops only that
// one, a reload raises the limit, and a large max_concurrent raises the
// daemon's open-file limit.
// Agents hold until the test creates their release file (the test agent's
// `await`); every check reads the database.
#include <signal.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

using nlohmann::json;

// A root whose group `wide` may run `per_group` jobs at once, within a
// global max_concurrent of `global` (the process runtime: agents see the
// test's release files at their host paths).
struct WideRoot : Root {
  explicit WideRoot(int per_group, int global = 10)
      : Root("process", "", "  - {folder: wide, name: Wide, max_concurrent_per_group: " + std::to_string(per_group) + "}\n") {
    SetGlobal("max_concurrent: " + std::to_string(global) + "\n");
    fs::create_directories(release);
  }
  // Replaces the root's max_concurrent line (Root writes 2).
  void SetGlobal(const std::string& line) {
    std::string cfg = ReadFile(config);
    const std::string two = "max_concurrent: 2\n";
    auto at = cfg.find(two);
    REQUIRE(at != std::string::npos);
    WriteFile(config, cfg.replace(at, two.size(), line));
  }
  // A job of `wide` that runs `before` (a script, may be empty) and then
  // holds until Release(name).
  void DropHeld(const std::string& name, const std::string& before = "", const json& extra = json::object()) {
    json body = {{"prompt", before + "await " + (release / name).string()}};
    body.update(extra);
    Drop("wide", name, body);
  }
  void Release(const std::string& name) { WriteFile(release / name, ""); }
  // True once exactly `n` jobs of `wide` are in `state` (or, with no
  // state, exist at all).
  bool WaitFor(int n, const std::string& state = "") const {
    return WaitForRow("SELECT count(*) = " + std::to_string(n) + " FROM jobs WHERE group_folder='wide'" +
                      (state.empty() ? "" : " AND state='" + state + "'"));
  }
  // Drops a held job for each name and waits until all are jobs and
  // `running` of them run.
  bool DropHeldAndWait(const std::vector<std::string>& names, int running) {
    for (const auto& n : names) DropHeld(n);
    return WaitFor(static_cast<int>(names.size())) && WaitFor(running, "running");
  }
  std::string Count(const std::string& state) const {
    return Query("SELECT count(*) FROM jobs WHERE group_folder='wide' AND state='" + state + "'");
  }
  // The most attempts of `wide` that were running at one instant, from the
  // audit trail: for each start, the attempts begun by then and not ended.
  std::string MostAtOnce() const {
    return Query(
        "SELECT max((SELECT count(*) FROM job_runs r2 JOIN jobs j2 ON j2.id=r2.job_id "
        "WHERE j2.group_folder='wide' AND r2.started_at <= r1.started_at "
        "AND (r2.finished_at IS NULL OR r2.finished_at > r1.started_at))) "
        "FROM job_runs r1 JOIN jobs j1 ON j1.id=r1.job_id WHERE j1.group_folder='wide'");
  }
  fs::path release = dir / "release";
};

TEST_CASE("a group allowed four at once runs four of its jobs together and never a fifth",
          "[e2e][per_group]") {
  WideRoot r(4);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  const std::vector<std::string> names = {"j1.json", "j2.json", "j3.json", "j4.json", "j5.json", "j6.json"};
  REQUIRE(r.DropHeldAndWait(names, 4));
  CHECK(r.Count("queued") == "2");

  // One ends: the fifth job takes its place, and still only four run.
  const std::string first = r.Query("SELECT source_name FROM jobs WHERE group_folder='wide' AND state='running' LIMIT 1");
  REQUIRE_FALSE(first.empty());
  r.Release(first);
  REQUIRE(r.WaitFor(1, "succeeded"));
  REQUIRE(r.WaitFor(4, "running"));
  CHECK(r.Count("queued") == "1");

  for (const auto& n : names) r.Release(n);
  REQUIRE(r.WaitFor(6, "succeeded"));
  CHECK(r.MostAtOnce() == "4");
  // Every attempt has its own container name, though several started together.
  CHECK(r.Query("SELECT count(DISTINCT container_name) FROM job_runs") == "6");
}

TEST_CASE("jobs of a group running at once each start from the stored session and the last to end sets it",
          "[e2e][per_group]") {
  WideRoot r(4);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  const json group_context = {{"context_mode", "group"}};
  // The group's session before: the one job `first` returns ("test-<id>").
  r.Drop("wide", "first.json", {{"prompt", "echo first"}, {"context_mode", "group"}});
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='first.json' AND state='succeeded'"));
  const std::string first_id = r.Query("SELECT id FROM jobs WHERE source_name='first.json'");
  REQUIRE(r.Query("SELECT session_id FROM sessions WHERE group_folder='wide'") == "test-" + first_id);

  r.DropHeld("early.json", "input; ", group_context);
  r.DropHeld("late.json", "input; ", group_context);
  REQUIRE(r.WaitFor(2, "running"));
  // `late` ends last although it may have started first.
  r.Release("early.json");
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='early.json' AND state='succeeded'"));
  r.Release("late.json");
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='late.json' AND state='succeeded'"));

  for (const char* n : {"early.json", "late.json"}) {
    CHECK(r.Query(std::string("SELECT json_extract(result, '$.input.sessionId') FROM jobs WHERE source_name='") + n +
                  "'") == "test-" + first_id);
  }
  const std::string late_id = r.Query("SELECT id FROM jobs WHERE source_name='late.json'");
  CHECK(r.Query("SELECT session_id FROM sessions WHERE group_folder='wide'") == "test-" + late_id);
}

TEST_CASE("a reload that raises a group's limit starts its held jobs", "[e2e][per_group][reload]") {
  WideRoot r(1);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  REQUIRE(r.DropHeldAndWait({"a.json", "b.json", "c.json"}, 1));
  CHECK(r.Count("queued") == "2");

  std::string cfg = ReadFile(r.config);
  const std::string one = "max_concurrent_per_group: 1}";
  auto at = cfg.find(one);
  REQUIRE(at != std::string::npos);
  WriteFile(r.config, cfg.replace(at, one.size(), "max_concurrent_per_group: 3}"));
  REQUIRE(::kill(d.pid, SIGHUP) == 0);
  REQUIRE(r.WaitFor(3, "running"));
  CHECK(r.Query("SELECT json_extract(detail, '$.changed') FROM job_events WHERE event='reloaded'") == "[\"groups\"]");

  for (const char* n : {"a.json", "b.json", "c.json"}) r.Release(n);
  REQUIRE(r.WaitFor(3, "succeeded"));
}

TEST_CASE("cancelling one of a group's running jobs stops only that one", "[e2e][per_group][control]") {
  WideRoot r(3);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  REQUIRE(r.DropHeldAndWait({"a.json", "b.json", "c.json"}, 3));
  const std::string b = r.Query("SELECT id FROM jobs WHERE source_name='b.json'");
  auto out = r.Dropq({"cancel", b});
  INFO(out.out << out.err);
  REQUIRE(out.exit_code == 0);
  // The verdict for a running job is `stopping`; its end is the row.
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE id=" + b + " AND state='cancelled'"));
  CHECK(r.Count("running") == "2");

  for (const char* n : {"a.json", "c.json"}) r.Release(n);
  REQUIRE(r.WaitFor(2, "succeeded"));
}

// The soft "Max open files" of process `pid`, as the kernel reports it.
std::string SoftOpenFiles(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream fields(line.substr(std::string("Max open files").size()));
      std::string soft;
      fields >> soft;
      return soft;
    }
  }
  return "";
}

TEST_CASE("a daemon whose max_concurrent needs more open files than its soft limit raises it",
          "[e2e][per_group]") {
  WideRoot r(1, 100);
  rlimit before{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
  REQUIRE(before.rlim_max >= 300);
  // The daemon inherits a soft limit of 300; max_concurrent 100 wants
  // 256 + 8 per slot = 1056 (daemon/daemon.cc), as far as the hard limit allows.
  rlimit low = before;
  low.rlim_cur = 300;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  Daemon d(r);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &before) == 0);
  REQUIRE(r.WaitReady(d.pid));
  const rlim_t expected = before.rlim_max == RLIM_INFINITY ? 1056 : std::min<rlim_t>(1056, before.rlim_max);
  CHECK(SoftOpenFiles(d.pid) == std::to_string(expected));
}

}  // namespace
}  // namespace dropq::testing
