// cancel, retry and task pause|resume|cancel|update against a real root: the CLI
// drops a control file, waits for the daemon's verdict on it (an `applied` or
// `rejected` event naming the file) and exits with its code (docs/CLI.md,
// "Control commands").
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A job that waits far in the future, queued by a run --once; returns its id.
std::int64_t QueuedJob(Root& r) {
  r.Drop("team", "later.json", {{"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  return std::stoll(r.Query("SELECT id FROM jobs WHERE source_name='later.json'"));
}

// A job run to success by a run --once; returns its id.
std::int64_t SucceededJob(Root& r) {
  r.Drop("team", "done.json", {{"prompt", "echo done"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(r.Query("SELECT state FROM jobs WHERE source_name='done.json'") == "succeeded");
  return std::stoll(r.Query("SELECT id FROM jobs WHERE source_name='done.json'"));
}

bool IsEmpty(const fs::path& dir) { return fs::is_empty(dir); }

TEST_CASE("cancel waits for the running daemon's verdict and prints what it did", "[e2e][control]") {
  Root r;
  std::int64_t id = QueuedJob(r);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"cancel", std::to_string(id)});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("job " + std::to_string(id) + " cancelled"));
  CHECK(r.Query("SELECT state FROM jobs WHERE id=" + std::to_string(id)) == "cancelled");
}

TEST_CASE("retry of a job that succeeded exits 6 with the daemon's reason", "[e2e][control]") {
  Root r;
  std::int64_t id = SucceededJob(r);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"retry", std::to_string(id)});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 6);
  CHECK_THAT(out.out, Catch::Contains("rejected: job " + std::to_string(id) + " is succeeded"));
  CHECK(r.Query("SELECT state FROM jobs WHERE id=" + std::to_string(id)) == "succeeded");
}

TEST_CASE("cancel of a finished job is rejected with the job's state instead of reported done", "[e2e][control]") {
  Root r;
  std::int64_t id = SucceededJob(r);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"cancel", std::to_string(id), "--json"});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 6);
  auto j = json::parse(out.out);
  CHECK(j["verdict"] == "rejected");
  CHECK(j["job"] == id);
  CHECK_THAT(j["reason"].get<std::string>(), Catch::Contains("has finished (succeeded)"));
}

TEST_CASE("a control command with no daemon running says it applies at the next start", "[e2e][control]") {
  Root r;
  std::int64_t id = QueuedJob(r);
  auto out = r.Dropq({"cancel", std::to_string(id)});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("applies when dropq next starts"));
  CHECK_FALSE(IsEmpty(r.Tasks("main")));  // the file waits there
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=" + std::to_string(id)) == "cancelled");
}

TEST_CASE("a control command with --no-wait drops its file and exits at once", "[e2e][control]") {
  Root r;
  std::int64_t id = QueuedJob(r);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  ::kill(d.pid, SIGSTOP);  // no verdict can come while it is stopped
  auto out = r.Dropq({"cancel", std::to_string(id), "--no-wait", "--json"});
  ::kill(d.pid, SIGCONT);
  INFO(out.out << out.err);
  CHECK(out.exit_code == 0);
  CHECK(json::parse(out.out)["verdict"] == "dropped");
}

TEST_CASE("a control command gives up with exit 5 when the daemon gives no verdict in time", "[e2e][control]") {
  Root r;
  std::int64_t id = QueuedJob(r);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  ::kill(d.pid, SIGSTOP);
  auto out = r.Dropq({"cancel", std::to_string(id), "--timeout", "300ms"});
  ::kill(d.pid, SIGCONT);
  INFO(out.out << out.err);
  CHECK(out.exit_code == 5);
  CHECK_THAT(out.out, Catch::Contains("no verdict after"));
  // The file was not lost: the daemon applies it once it runs again.
  CHECK(r.WaitForRow("SELECT count(*) FROM jobs WHERE state='cancelled' AND id=" + std::to_string(id)));
}

TEST_CASE("task pause waits for the verdict and the task is paused", "[e2e][control]") {
  Root r("bwrap", "schedules:\n  - {id: nightly, group: team, cron: '0 3 * * *', prompt: echo night}\n");
  REQUIRE(r.RunOnce().exit_code == 0);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"task", "pause", "nightly"});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("task nightly paused"));
  CHECK(r.Query("SELECT status FROM scheduled_tasks WHERE id='nightly'") == "paused");
}

// A task team scheduled by a file (a config task changes only in the config).
void FileTask(Root& r, const std::string& id) {
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", id},
          {"prompt", "echo old"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(r.Query("SELECT count(*) FROM scheduled_tasks WHERE id='" + id + "'") == "1");
}

TEST_CASE("task update waits for the verdict and the task has its new prompt and schedule", "[e2e][control]") {
  Root r;
  FileTask(r, "digest");
  std::string before = r.Query("SELECT next_run FROM scheduled_tasks WHERE id='digest'");
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"task", "update", "digest", "--prompt", "echo new", "--cron", "30 18 * * *"});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("task digest updated (prompt, schedule_value); active, next run "));
  CHECK(r.Query("SELECT prompt || '|' || schedule_value FROM scheduled_tasks WHERE id='digest'") ==
        "echo new|30 18 * * *");
  CHECK(r.Query("SELECT next_run FROM scheduled_tasks WHERE id='digest'") != before);
}

TEST_CASE("task update of a task defined in the config exits 6 with the reason", "[e2e][control]") {
  Root r("bwrap", "schedules:\n  - {id: nightly, group: team, cron: '0 3 * * *', prompt: echo night}\n");
  REQUIRE(r.RunOnce().exit_code == 0);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"task", "update", "nightly", "--prompt", "echo day", "--json"});
  INFO(out.out << out.err);
  CHECK(out.exit_code == 6);
  auto j = json::parse(out.out);
  CHECK(j["verdict"] == "rejected");
  CHECK(j["reason"] == "task \"nightly\" is defined in the config; change it there");
  CHECK(r.Query("SELECT prompt FROM scheduled_tasks WHERE id='nightly'") == "echo night");
}

TEST_CASE("task update with nothing to change is a usage error and drops nothing", "[e2e][control]") {
  Root r;
  FileTask(r, "digest");
  auto out = r.Dropq({"task", "update", "digest"});
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("nothing to update"));
  CHECK(IsEmpty(r.Tasks("main")));
}

TEST_CASE("an update option on another task command is a usage error", "[e2e][control]") {
  Root r;
  FileTask(r, "digest");
  auto out = r.Dropq({"task", "pause", "digest", "--prompt", "x"});
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("--prompt is only for task update"));
  CHECK(IsEmpty(r.Tasks("main")));
}

TEST_CASE("a task command naming no task exits 3 and drops nothing", "[e2e][control]") {
  Root r;
  REQUIRE(r.RunOnce().exit_code == 0);
  auto out = r.Dropq({"task", "resume", "nope"});
  CHECK(out.exit_code == 3);
  CHECK_THAT(out.err, Catch::Contains("no task nope"));
  CHECK(IsEmpty(r.Tasks("main")));
}

}  // namespace
}  // namespace dropq::testing
