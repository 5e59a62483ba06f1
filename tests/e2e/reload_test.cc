// Reload (SIGHUP, `systemctl reload`) against a real daemon: the config file
// is read again and applied without dropping a queued or running job, or
// refused with the reason while the old one keeps running (docs/CONFIG.md,
// "Reload"). Each test waits on the daemon's `reloaded` / `reload_refused`
// event, never on its log.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Rewrites the config with `from` replaced by `to`.
void EditConfig(Root& r, const std::string& from, const std::string& to) {
  std::string cfg = ReadFile(r.config);
  auto at = cfg.find(from);
  REQUIRE(at != std::string::npos);
  WriteFile(r.config, cfg.replace(at, from.size(), to));
}

// Sends SIGHUP and waits for the n-th event `event` (reloaded or
// reload_refused); returns its detail.
json Reload(Root& r, pid_t pid, const std::string& event = "reloaded", int n = 1) {
  REQUIRE(::kill(pid, SIGHUP) == 0);
  REQUIRE(r.WaitForRow("SELECT count(*) >= " + std::to_string(n) + " FROM job_events WHERE event='" + event + "'"));
  return json::parse(r.Query("SELECT detail FROM job_events WHERE event='" + event + "' ORDER BY id DESC LIMIT 1"));
}

const std::string kOther = "  - {folder: other, name: Other}\n";

TEST_CASE("a reload adds a group whose tasks/ is served at once", "[e2e][reload]") {
  Root r;
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  EditConfig(r, kOther, kOther + "  - {folder: extra, name: Extra}\n");
  json detail = Reload(r, d.pid);
  CHECK(detail["groups_added"] == json::array({"extra"}));
  REQUIRE(fs::is_directory(r.Tasks("extra")));
  r.Drop("extra", "hello.json", {{"prompt", "echo from extra"}});
  CHECK(r.WaitForRow("SELECT count(*) FROM jobs WHERE group_folder='extra' AND state='succeeded'"));
}

TEST_CASE("a reload removes a group: its folder is no longer read and its queued job stays queued", "[e2e][reload]") {
  Root r;
  r.Drop("other", "later.json", {{"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  EditConfig(r, kOther, "");
  json detail = Reload(r, d.pid);
  CHECK(detail["groups_removed"] == json::array({"other"}));
  r.Drop("other", "ignored.json", {{"prompt", "echo ignored"}});
  // A file main drops after it is ingested: by then a served `other` would
  // have had its file ingested too.
  r.Drop("main", "after.json", {{"prompt", "echo after"}});
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='after.json' AND state='succeeded'"));
  CHECK(fs::exists(r.Tasks("other") / "ignored.json"));
  CHECK(r.Query("SELECT state FROM jobs WHERE source_name='later.json'") == "queued");
}

TEST_CASE("a reload changes a configured schedule and removes one the config no longer has", "[e2e][reload]") {
  Root r("bwrap",
         "schedules:\n"
         "  - {id: nightly, group: team, cron: '0 3 * * *', prompt: echo night}\n"
         "  - {id: weekly, group: team, cron: '0 3 * * 1', prompt: echo week}\n");
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  EditConfig(r,
             "  - {id: nightly, group: team, cron: '0 3 * * *', prompt: echo night}\n"
             "  - {id: weekly, group: team, cron: '0 3 * * 1', prompt: echo week}\n",
             "  - {id: nightly, group: team, cron: '30 4 * * *', prompt: echo night}\n");
  json detail = Reload(r, d.pid);
  CHECK(detail["tasks_removed"] == json::array({"weekly"}));
  CHECK(r.Query("SELECT schedule_value FROM scheduled_tasks WHERE id='nightly'") == "30 4 * * *");
  CHECK(r.Query("SELECT strftime('%M', next_run) FROM scheduled_tasks WHERE id='nightly'") == "30");
  CHECK(r.Query("SELECT count(*) FROM scheduled_tasks WHERE id='weekly'") == "0");
}

TEST_CASE("a config that fails to load is refused with the reason and the old one keeps running", "[e2e][reload]") {
  Root r;
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  EditConfig(r, "max_concurrent: 2\n", "max_concurrent: -4\n");
  json detail = Reload(r, d.pid, "reload_refused");
  CHECK_THAT(detail["reason"].get<std::string>(), Catch::Contains("max_concurrent"));
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='reloaded'") == "0");
  r.Drop("team", "still.json", {{"prompt", "echo still served"}});
  CHECK(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='still.json' AND state='succeeded'"));
}

TEST_CASE("a reload names the keys that need a restart and keeps their running values", "[e2e][reload]") {
  Root r;
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  EditConfig(r, "root: var\n", "root: elsewhere\n");
  EditConfig(r, "max_concurrent: 2\n", "max_concurrent: 3\n");
  json detail = Reload(r, d.pid);
  CHECK(detail["restart_needed"] == json::array({"root"}));
  CHECK(detail["changed"] == json::array({"max_concurrent"}));
  r.Drop("team", "here.json", {{"prompt", "echo same root"}});
  CHECK(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='here.json' AND state='succeeded'"));
  CHECK_FALSE(fs::exists(r.dir / "elsewhere"));
}

TEST_CASE("a job running during a reload finishes in its first attempt", "[e2e][reload]") {
  Root r;
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  r.Drop("team", "busy.json", {{"prompt", "sleep 1000; echo survived"}});
  REQUIRE(r.WaitStarted(1));
  EditConfig(r, kOther, kOther + "  - {folder: extra, name: Extra}\n");
  Reload(r, d.pid);
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE id=1 AND state='succeeded'"));
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE job_id=1") == "1");
}

}  // namespace
}  // namespace dropq::testing
