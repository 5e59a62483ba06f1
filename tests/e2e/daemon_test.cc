// Black-box tests: the real dropq binary on a temporary root, real SQLite,
// real bubblewrap sandboxes running the test agent (examples/test_agent.cc).
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <thread>

#include "base/clock.h"
#include "tests/e2e/e2e_root.h"
#include "tests/fakes/small_disk.h"

namespace dropq::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool EmptyDir(const fs::path& p) { return !fs::exists(p) || fs::is_empty(p); }

TEST_CASE("files for two groups all succeed with result files and audit rows and nothing left behind", "[e2e]") {
  Root r;
  for (int i = 0; i < 3; ++i) {
    r.Drop("main", "m" + std::to_string(i) + ".json", {{"prompt", "echo main " + std::to_string(i)}});
    r.Drop("team", "t" + std::to_string(i) + ".json", {{"prompt", "echo team " + std::to_string(i)}});
  }
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  for (int i = 0; i < 3; ++i) {
    auto m = r.Result("main", "m" + std::to_string(i) + ".json");
    CHECK(m["state"] == "succeeded");
    CHECK(m["result"]["echo"] == "main " + std::to_string(i));
    auto t = r.Result("team", "t" + std::to_string(i) + ".json");
    CHECK(t["state"] == "succeeded");
    CHECK(t["exitCode"] == 0);
  }
  CHECK(r.Query("SELECT count(*) FROM jobs WHERE state='succeeded'") == "6");
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE status='succeeded' AND log_file IS NOT NULL") == "6");
  // Every job's story: received, started, its output, succeeded.
  CHECK(r.Query("SELECT count(*) FROM jobs j WHERE (SELECT group_concat(event, ',') FROM "
                "(SELECT event FROM job_events e WHERE e.job_id=j.id ORDER BY e.id)) = "
                "'received,started,output,succeeded'") == "6");
  for (const char* g : {"main", "team"}) {
    CHECK(EmptyDir(r.Tasks(g)));
    CHECK(EmptyDir(r.Var() / "data/claimed" / g));
  }
  CHECK(EmptyDir(r.Errors()));
}

TEST_CASE("a malformed file lands in errors with a reason while the others run", "[e2e]") {
  Root r;
  r.Drop("team", "good.json", {{"prompt", "echo fine"}});
  WriteFile(r.Tasks("team") / "bad.json", "{\"prompt\": ");
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(r.Result("team", "good.json")["state"] == "succeeded");
  CHECK(ReadFile(r.Errors() / "team-bad.json") == "{\"prompt\": ");
  auto why = json::parse(ReadFile(r.Errors() / "team-bad.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("invalid JSON"));
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='rejected' AND job_id IS NULL") == "1");
}

TEST_CASE("a bwrap job cannot see the host's home or other groups and cannot write outside its mounts", "[e2e]") {
  Root r;
  std::string other_group = (r.Var() / "groups/main").string();
  const char* home = std::getenv("HOME");
  std::string host_home = home && std::string(home) != "/" ? home : "/root";
  r.Drop(
      "team", "probe.json",
      {{"prompt", "probe /root; probe " + host_home + "; probe " + other_group + "; probe /workspace/project; probe " +
                      r.dir.str() + "; probe /workspace/group; write /usr/evil x; write /workspace/group/ok.txt hi"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto res = r.Result("team", "probe.json");
  INFO(res.dump(2));
  REQUIRE(res["state"] == "succeeded");
  auto probes = res["result"]["probes"];
  REQUIRE(probes.size() == 6);
  for (int i = 0; i < 5; ++i) CHECK(probes[i]["exists"] == false);
  CHECK(probes[5]["writable"] == true);
  CHECK(res["result"]["writes"][0]["ok"] == false);
  CHECK(res["result"]["writes"][1]["ok"] == true);
  CHECK(ReadFile(r.Var() / "groups/team/ok.txt") == "hi");
  CHECK_FALSE(fs::exists("/usr/evil"));
}

TEST_CASE("the main group sees the whole root at /workspace/project", "[e2e]") {
  Root r;
  r.Drop("main", "probe.json", {{"prompt", "probe /workspace/project/groups/team; probe /workspace/global"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = r.Result("main", "probe.json");
  CHECK(res["result"]["probes"][0]["exists"] == true);
  CHECK(res["result"]["probes"][1]["exists"] == false);
}

TEST_CASE("a job over its timeout is killed with its children and marked failed", "[e2e]") {
  Root r;
  r.Drop("team", "slow.json", {{"prompt", "ignore-term; child-sleep 60000; sleep 60000"}, {"timeout", "300ms"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto res = r.Result("team", "slow.json");
  CHECK(res["state"] == "failed");
  CHECK(res["runStatus"] == "timed_out");
  CHECK_THAT(res["error"].get<std::string>(), Catch::Contains("timed out after 300 ms"));
  CHECK(r.Query("SELECT status FROM job_runs") == "timed_out");
  CHECK(std::stoll(r.Query("SELECT duration_ms FROM job_runs")) < 30'000);
}

TEST_CASE("an agent that exits non-zero fails the job with the exit code in the error", "[e2e]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "exit 3"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = r.Result("team", "x.json");
  CHECK(res["state"] == "failed");
  CHECK(res["exitCode"] == 3);
  CHECK_THAT(res["error"].get<std::string>(), Catch::Contains("exited with code 3"));
  CHECK(r.Query("SELECT error FROM jobs").find("exited with code 3") != std::string::npos);
}

TEST_CASE("output without markers is read from the last line", "[e2e]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "nomarkers; echo plain"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = r.Result("team", "x.json");
  CHECK(res["state"] == "succeeded");
  CHECK(res["result"]["echo"] == "plain");
}

TEST_CASE("a malformed output block fails the job saying why", "[e2e]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "malformed"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = r.Result("team", "x.json");
  CHECK(res["state"] == "failed");
  CHECK_THAT(res["error"].get<std::string>(), Catch::Contains("Failed to parse container output"));
}

TEST_CASE("output beyond max_output is cut and the run flagged truncated", "[e2e]") {
  Root r("bwrap", "max_output: 64KiB\n");
  r.Drop("team", "x.json", {{"prompt", "flood 1000000; echo after"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = r.Result("team", "x.json");
  CHECK(res["state"] == "succeeded");
  CHECK(res["stdoutTruncated"] == true);
  CHECK(r.Query("SELECT stdout_truncated FROM job_runs") == "1");
  CHECK(std::stoll(r.Query("SELECT stdout_bytes FROM job_runs")) > 1'000'000);
}

TEST_CASE("the agent gets the container input on stdin", "[e2e]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "input"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto in = r.Result("team", "x.json")["result"]["input"];
  CHECK(in["groupFolder"] == "team");
  CHECK(in["chatJid"] == "team@x");
  CHECK(in["isMain"] == false);
  CHECK(in["isScheduledTask"] == false);
  CHECK(in["attempt"] == 1);
  CHECK(in["jobId"].is_number_integer());
}

TEST_CASE("the process runtime runs the agent with mounts passed as environment variables", "[e2e]") {
  Root r("process");
  r.Drop("team", "x.json", {{"prompt", "env WORKSPACE_GROUP; env WORKSPACE_IPC"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto env = r.Result("team", "x.json")["result"]["env"];
  CHECK(env["WORKSPACE_GROUP"] == (r.Var() / "groups/team").string());
  CHECK(env["WORKSPACE_IPC"] == (r.Var() / "data/ipc/team").string());
  CHECK_THAT(run.err, Catch::Contains("does NOT isolate"));
}

TEST_CASE("the daemon picks up a file dropped while it runs and stops cleanly on SIGTERM", "[e2e]") {
  Root r;
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  // The daemon creates the layout and watches; wait until it has said so.
  REQUIRE(r.WaitReady(pid));
  r.Drop("other", "live.json", {{"prompt", "echo live"}});
  bool done = WaitUntil([&] { return fs::exists(r.Results("other") / "live.json"); }, 30'000);
  ::kill(pid, SIGTERM);
  int rc = WaitProcess(pid, 30'000);
  INFO(ReadFile(r.scratch / "stderr"));
  REQUIRE(done);
  CHECK(rc == 0);
  CHECK(r.Result("other", "live.json")["result"]["echo"] == "live");
}

TEST_CASE("SIGTERM the moment a result file appears still records the job and exits", "[e2e][reliability]") {
  // The result file is renamed into place on a pool thread, which then
  // flushes the folder and tells the loop; the attempt's end is committed by
  // the next pump. A signal handled in the loop turn that heard from the pool
  // once stopped that pump and left the daemon waiting forever. To land the
  // signal there: stop the daemon the moment the file appears (inside the
  // folder's flush), queue SIGTERM, continue it, so the pool's news and the
  // signal reach the loop together. Twelve rounds; each must exit with the
  // job recorded succeeded.
  for (int round = 0; round < 12; ++round) {
    INFO("round " << round);
    Root r("process");
    pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
    REQUIRE(r.WaitReady(pid));
    int in = ::inotify_init1(IN_CLOEXEC);
    REQUIRE(in >= 0);
    REQUIRE(::inotify_add_watch(in, r.Results("team").c_str(), IN_MOVED_TO) >= 0);
    r.Drop("team", "t.json", {{"prompt", "echo hi"}});
    pollfd p{in, POLLIN, 0};
    bool appeared = ::poll(&p, 1, 30'000) == 1;
    ::kill(pid, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ::kill(pid, SIGTERM);
    ::kill(pid, SIGCONT);
    ::close(in);
    int rc = WaitProcess(pid, 15'000);
    INFO(ReadFile(r.scratch / "stderr"));
    REQUIRE(appeared);
    REQUIRE(rc == 0);
    CHECK(r.Query("SELECT state FROM jobs") == "succeeded");
  }
}

TEST_CASE("a job running at shutdown is stopped and requeued for the next start without using an attempt", "[e2e]") {
  Root r("bwrap", "shutdown_grace: 200ms\n");
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  r.Drop("team", "long.json", {{"prompt", "sleep 60000"}});
  REQUIRE(r.WaitStarted(1));
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  CHECK(r.Query("SELECT state FROM jobs") == "queued");
  CHECK(r.Query("SELECT status FROM job_runs") == "lost");
  CHECK(r.Query("SELECT attempts - interruptions FROM jobs") == "0");
}

TEST_CASE("jobs --json lists jobs with id, group, state and attempts", "[e2e]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto out = r.Dropq({"jobs", "--json"});
  REQUIRE(out.exit_code == 0);
  auto arr = json::parse(out.out);
  REQUIRE(arr.size() == 1);
  CHECK(arr[0]["group"] == "team");
  CHECK(arr[0]["state"] == "succeeded");
  CHECK(arr[0]["attempts"] == 1);
  CHECK(arr[0]["id"].is_number_integer());
}

TEST_CASE("job --json shows the job with its runs and events", "[e2e]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto out = r.Dropq({"job", "1", "--json"});
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["id"] == 1);
  CHECK(j["runs"].size() == 1);
  CHECK(j["events"].size() == 4);  // received, started, output, succeeded
  CHECK(r.Dropq({"job", "99"}).exit_code == 3);
}

TEST_CASE("status counts jobs by state", "[e2e]") {
  Root r;
  r.Drop("team", "a.json", {{"prompt", "echo a"}});
  r.Drop("other", "b.json", {{"prompt", "exit 1"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto out = r.Dropq({"status", "--json"});
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["jobs"]["succeeded"] == 1);
  CHECK(j["jobs"]["failed"] == 1);
}

TEST_CASE("a config error names the key and exits with code 2", "[e2e]") {
  Root r;
  WriteFile(r.config, "root: var\nagent: [x]\nmax_concurent: 3\ngroups: [{folder: main, main: true}]\n");
  auto out = r.Dropq({"run", "--once"});
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("max_concurent"));
}

TEST_CASE("a job with a future run_at is left queued by --once", "[e2e]") {
  Root r;
  r.Drop("team", "later.json", {{"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs") == "queued");
  CHECK_FALSE(fs::exists(r.Results("team") / "later.json"));
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

TEST_CASE("a job main enqueues for another group runs in that group and reports back to main", "[e2e]") {
  Root r;
  r.Drop("main", "delegate.json", {{"prompt", "env WORKSPACE_GROUP; input"}, {"target_group", "team"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = r.Result("main", "delegate.json");
  CHECK(res["state"] == "succeeded");
  CHECK(res["group"] == "team");
  CHECK(res["result"]["input"]["groupFolder"] == "team");
  CHECK(res["result"]["input"]["isMain"] == false);
  CHECK_FALSE(fs::exists(r.Results("team") / "delegate.json"));
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

TEST_CASE("cron next prints the next fire times as UTC instants", "[e2e]") {
  TempDir dir;
  auto out = RunProcess({DROPQ_BINARY, "cron", "next", "0 9 * * MON", "--tz", "Europe/Berlin", "--from",
                         "2026-11-27T00:00:00Z", "--count", "2", "--json"},
                        dir.path());
  REQUIRE(out.exit_code == 0);
  CHECK(nlohmann::json::parse(out.out) == nlohmann::json({"2026-11-30T08:00:00.000Z", "2026-12-07T08:00:00.000Z"}));
}

TEST_CASE("cron next rejects an invalid expression naming the field with exit code 2", "[e2e]") {
  TempDir dir;
  auto out = RunProcess({DROPQ_BINARY, "cron", "next", "0 25 * * *"}, dir.path());
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("hour"));
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

TEST_CASE("cancel stops a running job gracefully and records it cancelled", "[e2e][control]") {
  Root r;
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  r.Drop("team", "long.json", {{"prompt", "sleep 60000"}, {"max_attempts", 3}});
  REQUIRE(r.WaitStarted(1));
  auto out = r.Dropq({"cancel", "1"});
  CHECK(out.exit_code == 0);
  bool done = WaitUntil([&] { return fs::exists(r.Results("team") / "long.json"); }, 30'000);
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  REQUIRE(done);
  CHECK(r.Result("team", "long.json")["state"] == "cancelled");
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "cancelled");
  CHECK(r.Query("SELECT status FROM job_runs WHERE job_id=1") == "cancelled");
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE job_id=1") == "1");  // not retried
  CHECK(EmptyDir(r.Tasks("main")));                                       // the control file was consumed
}

TEST_CASE("a queued job is cancelled by a cancel_job file from its own group", "[e2e][control]") {
  Root r;
  r.Drop("team", "later.json", {{"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("team", "stop.json", {{"type", "cancel_job"}, {"jobId", 1}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "cancelled");
  CHECK(r.Result("team", "later.json")["state"] == "cancelled");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE job_id=1 AND event='cancelled'") == "1");
}

TEST_CASE("a group may not cancel another group's job", "[e2e][control]") {
  Root r;
  r.Drop("team", "later.json", {{"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("other", "stop.json", {{"type", "cancel_job"}, {"jobId", 1}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "queued");
  CHECK(fs::exists(r.Errors() / "other-stop.json.error.json"));
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='rejected'") == "1");
}

TEST_CASE("retry requeues a failed job with fresh attempts and it runs again", "[e2e][control]") {
  Root r;
  WriteFile(r.dir / "flag", "");
  r.Drop("team", "x.json", {{"prompt", "exit 3"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(r.Query("SELECT state FROM jobs WHERE id=1") == "failed");
  CHECK(r.Dropq({"retry", "1"}).exit_code == 0);
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE job_id=1") == "2");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE job_id=1 AND event='retried'") == "1");
  CHECK(r.Dropq({"retry", "42"}).exit_code == 3);
}

TEST_CASE("retrying a job that succeeded is rejected with the reason", "[e2e][control]") {
  Root r;
  r.Drop("team", "x.json", {{"prompt", "echo ok"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(r.Dropq({"retry", "1"}).exit_code == 0);
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "succeeded");
  bool found = false;
  for (const auto& e : fs::directory_iterator(r.Errors())) {
    if (e.path().string().find(".error.json") != std::string::npos &&
        ReadFile(e.path()).find("only failed or cancelled jobs can be retried") != std::string::npos) {
      found = true;
    }
  }
  CHECK(found);
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

std::string Count(const Root& r, const std::string& where) { return r.Query("SELECT count(*) FROM " + where); }

TEST_CASE("a six-field every-second task fires once for each second it runs", "[e2e][scheduler]") {
  Root r("process", "schedules:\n  - {id: tick, group: team, cron: '* * * * * *', prompt: echo tick}\n");
  const auto started = std::chrono::steady_clock::now();
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  // Real time is the point here: the timer must fire on the second. How long
  // the daemon lived is measured, not assumed, so a slow machine (ASan, a
  // loaded CI host) cannot turn a late SIGTERM into a failure.
  std::this_thread::sleep_for(std::chrono::milliseconds(3'500));
  ::kill(pid, SIGTERM);
  REQUIRE(WaitProcess(pid, 30'000) == 0);
  const double lived_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  int fired = std::stoi(Count(r, "task_runs WHERE task_id='tick' AND job_id IS NOT NULL"));
  CHECK(fired >= 3);
  CHECK(fired <= static_cast<int>(lived_s) + 1);
  // One fire per slot, and the slots are consecutive seconds: no doubles, no gaps.
  CHECK(Count(r, "(SELECT DISTINCT scheduled_at FROM task_runs WHERE task_id='tick' AND job_id IS NOT NULL)") == std::to_string(fired));
  CHECK(r.Query("SELECT CAST(round((julianday(max(scheduled_at)) - julianday(min(scheduled_at))) * 86400) AS INTEGER)"
                " FROM task_runs WHERE task_id='tick' AND job_id IS NOT NULL") == std::to_string(fired - 1));
  CHECK(Count(r, "jobs WHERE state='succeeded'") == Count(r, "task_runs WHERE status='succeeded'"));
}

TEST_CASE("a schedule_task file creates a task the tasks command lists", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "daily"},
          {"prompt", "echo daily"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"},
          {"tz", "Europe/Berlin"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto out = r.Dropq({"tasks", "--json"});
  REQUIRE(out.exit_code == 0);
  auto tasks = json::parse(out.out);
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0]["id"] == "daily");
  CHECK(tasks[0]["group"] == "team");
  CHECK(tasks[0]["status"] == "active");
  CHECK(tasks[0]["tz"] == "Europe/Berlin");
  CHECK(Count(r, "jobs") == "0");  // 09:00 Berlin is not now
}

TEST_CASE("a task with an invalid cron expression is rejected naming the field", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"}, {"prompt", "p"}, {"schedule_type", "cron"}, {"schedule_value", "0 25 * * *"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK_THAT(ReadFile(r.Errors() / "team-s.json.error.json"), Catch::Contains("hour"));
  CHECK(Count(r, "scheduled_tasks") == "0");
}

TEST_CASE("a paused task does not fire and a resumed one catches up once", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "t1"},
          {"prompt", "echo t"},
          {"schedule_type", "interval"},
          {"schedule_value", "3s"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  // Paused well before its first slot, even on a loaded machine.
  REQUIRE(r.Dropq({"task", "pause", "t1"}).exit_code == 0);
  REQUIRE(r.RunOnce().exit_code == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(3'500));  // its first slot passes while paused
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(Count(r, "jobs") == "0");
  CHECK(r.Query("SELECT status FROM scheduled_tasks WHERE id='t1'") == "paused");
  REQUIRE(r.Dropq({"task", "resume", "t1"}).exit_code == 0);
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(Count(r, "jobs") == "1");  // run_once: the missed slots become one run
  CHECK(Count(r, "task_runs WHERE job_id IS NOT NULL") == "1");
}

TEST_CASE("a task whose slots passed while dropq was down fires once on start", "[e2e][scheduler]") {
  Root r("process", "schedules:\n  - {id: every, group: other, interval: 300ms, prompt: echo caught up}\n");
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(Count(r, "jobs") == "0");
  std::this_thread::sleep_for(std::chrono::milliseconds(1'200));  // dropq is down: four slots pass
  REQUIRE(r.RunOnce().exit_code == 0);
  // The slots missed while down — until the first timer pass, since a
  // daemon that is still starting is down too (under ASan start-up alone
  // takes 300 ms) — became one run, the others recorded skipped. (On a
  // loaded machine a slot after that pass may fire too before --once ends;
  // it is not a catch-up.)
  const std::string first_pass = "(SELECT min(fired_at) FROM task_runs)";
  CHECK(Count(r, "task_runs WHERE job_id IS NOT NULL AND scheduled_at <= " + first_pass) == "1");
  CHECK(std::stoi(Count(r, "task_runs WHERE status = 'skipped' AND scheduled_at <= " + first_pass)) >= 3);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "succeeded");
  CHECK(r.Query("SELECT source_name FROM jobs WHERE id=1") == "task-every");
}

TEST_CASE("a once task runs exactly once and becomes completed", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "one"},
          {"prompt", "echo once"},
          {"schedule_type", "once"},
          {"schedule_value", "2020-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(Count(r, "jobs") == "1");
  CHECK(r.Query("SELECT status FROM scheduled_tasks WHERE id='one'") == "completed");
}

TEST_CASE("a scheduled job tells the agent it is a scheduled task", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "one"},
          {"prompt", "input"},
          {"schedule_type", "once"},
          {"schedule_value", "2020-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto res = json::parse(ReadFile(r.Results("team") / "task-one"));
  CHECK(res["result"]["input"]["isScheduledTask"] == true);
}

TEST_CASE("a group may not pause another group's task", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "mine"},
          {"prompt", "p"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("other", "p.json", {{"type", "pause_task"}, {"taskId", "mine"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT status FROM scheduled_tasks WHERE id='mine'") == "active");
  CHECK(fs::exists(r.Errors() / "other-p.json.error.json"));
}

TEST_CASE("a group's update_task file changes its own task and the audit row names what changed",
          "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "mine"},
          {"prompt", "p"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("team", "u.json",
         {{"type", "update_task"},
          {"taskId", "mine"},
          {"prompt", "q"},
          {"schedule_type", "interval"},
          {"schedule_value", "1h"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT prompt || '|' || schedule_type || '|' || schedule_value FROM scheduled_tasks "
                "WHERE id='mine'") == "q|interval|1h");
  auto applied = json::parse(r.Query(
      "SELECT detail FROM job_events WHERE event='applied' AND group_folder='team' "
      "AND json_extract(detail, '$.file')='u.json'"));
  CHECK(applied["type"] == "update_task");
  CHECK(applied["result"]["changed"] == json::array({"prompt", "schedule_type", "schedule_value"}));
  CHECK(applied["result"]["status"] == "active");
  CHECK(applied["result"]["next_run"].is_string());
}

TEST_CASE("a group may not update another group's task", "[e2e][scheduler]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "mine"},
          {"prompt", "p"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("other", "u.json", {{"type", "update_task"}, {"taskId", "mine"}, {"prompt", "hijacked"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT prompt FROM scheduled_tasks WHERE id='mine'") == "p");
  auto why = json::parse(ReadFile(r.Errors() / "other-u.json.error.json"));
  CHECK(why["reason"] == "no task \"mine\" in group \"other\" (a group may update only its own tasks; the main group "
                         "may update any)");
}

TEST_CASE("a config schedule with a bad expression fails start-up with exit code 2", "[e2e][scheduler]") {
  Root r("process", "schedules:\n  - {id: bad, group: team, cron: '61 * * * *', prompt: p}\n");
  auto out = r.RunOnce();
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("schedules[0].cron"));
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

TEST_CASE("a running job may finish within the shutdown grace", "[e2e][reliability]") {
  Root r("process", "shutdown_grace: 20s\n");
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  r.Drop("team", "short.json", {{"prompt", "sleep 500; echo made it"}});
  REQUIRE(r.WaitStarted(1));
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "succeeded");
  CHECK(r.Result("team", "short.json")["result"]["echo"] == "made it");
}

TEST_CASE("a second dropq on the same root refuses to start naming the first", "[e2e][reliability]") {
  Root r("process");
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  fs::create_directories(r.dir / "second");
  auto second = RunProcess({DROPQ_BINARY, "run", "--once", "--config", r.config.string()}, r.dir / "second");
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  CHECK(second.exit_code == 1);
  CHECK_THAT(second.err, Catch::Contains("another dropq (pid " + std::to_string(pid) + ")"));
}

TEST_CASE("a corrupt database is reported at start instead of crashing", "[e2e][reliability]") {
  Root r("process");
  fs::create_directories(r.Var() / "store");
  WriteFile(r.Var() / "store/dropq.db", std::string(8192, 'x'));
  auto out = r.RunOnce();
  CHECK(out.exit_code == 1);
  CHECK_THAT(out.err, Catch::Contains("cannot be used as dropq's database"));
  CHECK(ReadFile(r.Var() / "store/dropq.db") == std::string(8192, 'x'));  // untouched
}

TEST_CASE("files over a group's queue quota are rejected with the reason", "[e2e][reliability]") {
  Root r("process", "max_queued_per_group: 2\n");
  for (int i = 0; i < 3; ++i) {
    r.Drop("team", "q" + std::to_string(i) + ".json", {{"prompt", "echo"}, {"run_at", "2999-01-01T00:00:00Z"}});
  }
  r.Drop("other", "fine.json", {{"prompt", "echo fine"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT count(*) FROM jobs WHERE group_folder='team'") == "2");
  CHECK(r.Query("SELECT state FROM jobs WHERE group_folder='other'") == "succeeded");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='rejected' AND detail LIKE '%max_queued_per_group%'") ==
        "1");
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

TEST_CASE("a group that replaces its tasks folder with a symlink is not read and the others are served",
          "[e2e][reliability]") {
  Root r("process");
  REQUIRE(r.RunOnce().exit_code == 0);  // lays out the folders
  TempDir outside;
  WriteFile(outside / "steal.json", R"({"prompt":"echo stolen"})");
  fs::remove_all(r.Tasks("team"));
  fs::create_directory_symlink(outside.path(), r.Tasks("team"));
  r.Drop("other", "fine.json", {{"prompt", "echo fine"}});
  auto run = r.RunOnce();
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.err, Catch::Contains("replaced by a symlink"));
  CHECK(r.Result("other", "fine.json")["state"] == "succeeded");
  CHECK(fs::exists(outside / "steal.json"));  // never claimed, never read
  CHECK(r.Query("SELECT count(*) FROM jobs WHERE group_folder='team'") == "0");
}

TEST_CASE("a results folder replaced by a symlink gets no result written through it", "[e2e][reliability]") {
  Root r("process");
  REQUIRE(r.RunOnce().exit_code == 0);
  TempDir outside;
  fs::remove_all(r.Results("other"));
  fs::create_directory_symlink(outside.path(), r.Results("other"));
  r.Drop("other", "x.json", {{"prompt", "echo x"}});
  auto run = r.RunOnce();
  REQUIRE(run.exit_code == 0);
  CHECK(fs::is_empty(outside.path()));
  CHECK(r.Query("SELECT state FROM jobs") == "succeeded");  // the job itself is not the group's victim
  CHECK_THAT(run.err, Catch::Contains("cannot write result"));
}

}  // namespace
}  // namespace dropq::testing

namespace dropq::testing {
namespace {

TEST_CASE("a message file a group drops is delivered to its outbox", "[e2e][messages]") {
  Root r("process");
  REQUIRE(r.RunOnce().exit_code == 0);
  auto dir = r.Var() / "data/ipc/team/messages";
  WriteFile(dir / "m.json.tmp", R"({"type":"message","chatJid":"team@x","text":"hello team"})");
  fs::rename(dir / "m.json.tmp", dir / "m.json");
  WriteFile(dir / "bad.json.tmp", R"({"type":"message","chatJid":"main@x","text":"not yours"})");
  fs::rename(dir / "bad.json.tmp", dir / "bad.json");
  REQUIRE(r.RunOnce().exit_code == 0);
  auto line = json::parse(ReadFile(r.Var() / "outbox/team.jsonl"));
  CHECK(line["text"] == "hello team");
  CHECK(r.Query("SELECT delivery_state FROM messages WHERE text='hello team'") == "delivered");
  CHECK(fs::exists(r.Errors() / "team-bad.json.error.json"));
  CHECK(fs::is_empty(dir));
}

TEST_CASE("snapshots show main every task and group and other groups only their own", "[e2e][messages]") {
  Root r("process");
  r.Drop("team", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "team-task"},
          {"prompt", "p"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"}});
  r.Drop("other", "s.json",
         {{"type", "schedule_task"},
          {"taskId", "other-task"},
          {"prompt", "p"},
          {"schedule_type", "cron"},
          {"schedule_value", "0 9 * * *"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto main_tasks = json::parse(ReadFile(r.Var() / "data/ipc/main/current_tasks.json"));
  auto team_tasks = json::parse(ReadFile(r.Var() / "data/ipc/team/current_tasks.json"));
  CHECK(main_tasks.size() == 2);
  REQUIRE(team_tasks.size() == 1);
  CHECK(team_tasks[0]["id"] == "team-task");
  CHECK(json::parse(ReadFile(r.Var() / "data/ipc/main/available_groups.json"))["groups"].size() == 3);
  CHECK(json::parse(ReadFile(r.Var() / "data/ipc/team/available_groups.json"))["groups"].empty());
}

json Registration(const std::string& folder, const std::string& jid) {
  return {{"type", "register_group"}, {"jid", jid}, {"name", "New " + folder}, {"folder", folder}};
}

TEST_CASE("a group main registers is watched at once and its jobs run", "[e2e][groups]") {
  Root r("process");
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  r.Drop("main", "reg.json", Registration("newbie", "new@x"));
  // The group's tasks/ is made and watched by the daemon; no rescan (60 s)
  // is needed for a file dropped there to run.
  bool watched = r.WaitApplied("main", "reg.json");
  if (watched) r.Drop("newbie", "hello.json", {{"prompt", "echo hello newbie"}});
  bool ran = watched && WaitUntil([&] { return fs::exists(r.Results("newbie") / "hello.json"); }, 30'000);
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  INFO(ReadFile(r.scratch / "stderr"));
  REQUIRE(ran);
  CHECK(r.Result("newbie", "hello.json")["result"]["echo"] == "hello newbie");
  CHECK(r.Query("SELECT source || ' ' || jid FROM groups WHERE folder='newbie'") == "registered new@x");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='group_registered'") == "1");
  auto groups = json::parse(ReadFile(r.Var() / "data/ipc/main/available_groups.json"))["groups"];
  CHECK(groups.size() == 4);
  CHECK(EmptyDir(r.Tasks("main")));
}

TEST_CASE("a registered group is served again after a restart", "[e2e][groups]") {
  Root r("process");
  r.Drop("main", "reg.json", Registration("newbie", "new@x"));
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(fs::is_directory(r.Tasks("newbie")));
  r.Drop("newbie", "later.json", {{"prompt", "echo later"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Result("newbie", "later.json")["result"]["echo"] == "later");
}

TEST_CASE("a registered group may address its own chat but not main's", "[e2e][groups]") {
  Root r("process");
  r.Drop("main", "reg.json", Registration("newbie", "new@x"));
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("newbie", "own.json", {{"prompt", "echo mine"}, {"targetJid", "new@x"}});
  r.Drop("newbie", "main.json", {{"prompt", "echo theirs"}, {"targetJid", "main@x"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Result("newbie", "own.json")["result"]["echo"] == "mine");
  CHECK(fs::exists(r.Errors() / "newbie-main.json.error.json"));
}

TEST_CASE("only main may register a group", "[e2e][groups]") {
  Root r("process");
  r.Drop("team", "reg.json", Registration("sneaky", "sneaky@x"));
  REQUIRE(r.RunOnce().exit_code == 0);
  auto why = json::parse(ReadFile(r.Errors() / "team-reg.json.error.json"));
  CHECK(why["reason"].get<std::string>().find("only the main group may register groups") != std::string::npos);
  CHECK_FALSE(fs::exists(r.Tasks("sneaky")));
  CHECK(r.Query("SELECT count(*) FROM groups WHERE folder='sneaky'") == "0");
}

TEST_CASE("registering a group of the config is rejected: it changes only in the config", "[e2e][groups]") {
  Root r("process");
  r.Drop("main", "reg.json", Registration("team", "hijack@x"));
  REQUIRE(r.RunOnce().exit_code == 0);
  auto why = json::parse(ReadFile(r.Errors() / "main-reg.json.error.json"));
  CHECK(why["reason"] == "group \"team\" is defined in the config; change it there");
  CHECK(r.Query("SELECT jid FROM groups WHERE folder='team'") == "team@x");
}

TEST_CASE("a registration with a bad containerConfig is rejected naming the key", "[e2e][groups]") {
  Root r("process");
  json reg = Registration("newbie", "new@x");
  reg["containerConfig"] = {{"timeout", 1000}, {"privileged", true}};
  r.Drop("main", "reg.json", reg);
  REQUIRE(r.RunOnce().exit_code == 0);
  auto why = json::parse(ReadFile(r.Errors() / "main-reg.json.error.json"));
  CHECK(why["reason"] == "containerConfig.privileged: unknown key");
  CHECK(r.Query("SELECT count(*) FROM groups WHERE folder='newbie'") == "0");
}

TEST_CASE("a registered group's containerConfig timeout applies to its jobs", "[e2e][groups]") {
  Root r("process");
  json reg = Registration("newbie", "new@x");
  reg["containerConfig"] = {{"timeout", 300}};
  r.Drop("main", "reg.json", reg);
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("newbie", "slow.json", {{"prompt", "sleep 20000"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE group_folder='newbie'") == "failed");
  CHECK(r.Query("SELECT status FROM job_runs") == "timed_out");
}

TEST_CASE("refresh_groups rewrites main's available_groups.json at once", "[e2e][groups]") {
  Root r("process");
  REQUIRE(r.RunOnce().exit_code == 0);
  // The same list, stamped long ago: an unchanged list is not rewritten by
  // an ordinary pass, so only the refresh can renew the stamp.
  auto path = r.Var() / "data/ipc/main/available_groups.json";
  json doc = json::parse(ReadFile(path));
  doc["lastSync"] = "2000-01-01T00:00:00.000Z";
  WriteFile(path, doc.dump());
  r.Drop("main", "refresh.json", {{"type", "refresh_groups"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(json::parse(ReadFile(path))["lastSync"] != "2000-01-01T00:00:00.000Z");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='rejected'") == "0");
}

TEST_CASE("a group other than main may not refresh groups", "[e2e][groups]") {
  Root r("process");
  r.Drop("team", "refresh.json", {{"type", "refresh_groups"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  auto why = json::parse(ReadFile(r.Errors() / "team-refresh.json.error.json"));
  CHECK(why["reason"].get<std::string>().find("only the main group may refresh groups") != std::string::npos);
}

// Names of temporary files an atomic write left behind, anywhere under dir.
std::vector<std::string> TempLeftovers(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.find(".tmp-") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

TEST_CASE("a full disk stops ingest with a clear error and it resumes when space returns", "[e2e][reliability][disk]") {
  Root r("process");
  SmallDisk disk(r.Var(), 16 << 20);
  INFO(disk.why());
  REQUIRE(disk.ok());
  for (const char* g : {"main", "team", "other"}) fs::create_directories(r.Tasks(g));
  auto staging = r.Var() / "staging";  // same filesystem, so a rename needs no space
  fs::create_directories(staging);
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  for (int i = 0; i < 5; ++i)
    WriteFile(staging / ("j" + std::to_string(i) + ".json"), json{{"prompt", "echo full"}}.dump());
  auto filler = r.Var() / "filler";
  CHECK(SmallDisk::Fill(filler) > 0);
  for (int i = 0; i < 5; ++i) {
    std::string name = "j" + std::to_string(i) + ".json";
    fs::rename(staging / name, r.Tasks("team") / name);
  }
  // The daemon claims them (renamed into data/claimed/team/) and, the disk
  // full, cannot commit them: they stay claimed, tried again later.
  auto claimed = r.Var() / "data/claimed/team";
  bool stopped = WaitUntil(
      [&] {
        std::error_code ec;
        return fs::is_empty(r.Tasks("team")) && fs::exists(claimed, ec) &&
               std::distance(fs::directory_iterator(claimed, ec), fs::directory_iterator()) == 5;
      },
      30'000);
  // A full disk leaves no row to wait on (the daemon cannot write one), and
  // the claim comes before the commit that fails, in the same turn. What
  // the daemon offers for this case is its error, which this test is about:
  // wait for it, so the space is not freed before a commit has failed.
  bool refused = WaitUntil([&] { return ReadFile(r.scratch / "stderr").find("ingest failed") != std::string::npos; },
                           30'000);
  std::string jobs_while_full = Count(r, "jobs");
  fs::remove(filler);
  bool resumed = WaitUntil(
      [&] {
        for (int i = 0; i < 5; ++i) {
          if (!fs::exists(r.Results("team") / ("j" + std::to_string(i) + ".json"))) return false;
        }
        return true;
      },
      30'000);
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  std::string log = ReadFile(r.scratch / "stderr");
  INFO(log);
  REQUIRE(stopped);
  REQUIRE(refused);
  CHECK(log.find("full") != std::string::npos);
  CHECK(jobs_while_full == "0");
  REQUIRE(resumed);
  CHECK(log.find("ingest resumed") != std::string::npos);
  CHECK(Count(r, "jobs") == "5");
  CHECK(Count(r, "jobs WHERE state='succeeded'") == "5");
  CHECK(EmptyDir(r.Errors()));
  CHECK(TempLeftovers(r.Var()).empty());
}

// True once a file whose name starts with `prefix` is removed from `dir`
// (watched before the call returns false); false after timeout_ms.
bool TmpRemovedIn(const fs::path& dir, const std::string& prefix, int timeout_ms) {
  int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in < 0 || ::inotify_add_watch(in, dir.c_str(), IN_DELETE) < 0) return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool seen = false;
  while (!seen) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
    alignas(inotify_event) char buf[4096];
    ssize_t n = ::read(in, buf, sizeof buf);
    for (ssize_t at = 0; n > 0 && at < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
      if (e->len > 0 && std::string(e->name).rfind(prefix, 0) == 0) seen = true;
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  ::close(in);
  return seen;
}

TEST_CASE("a result file that cannot be written holds the job until it can", "[e2e][reliability][disk]") {
  Root r("process");
  SmallDisk disk(r.Var(), 16 << 20);
  INFO(disk.why());
  REQUIRE(disk.ok());
  for (const char* g : {"main", "team", "other"}) fs::create_directories(r.Tasks(g));
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  REQUIRE(r.WaitReady(pid));
  r.Drop("team", "slow.json", {{"prompt", "sleep 1500"}});
  REQUIRE(r.WaitStarted(1));
  auto filler = r.Var() / "filler";
  CHECK(SmallDisk::Fill(filler) > 0);  // while the agent runs
  // The daemon's try at the result file: its temporary file made in
  // results/team/ and, the disk full, removed again unrenamed.
  bool held = TmpRemovedIn(r.Results("team"), ".slow.json.tmp-", 30'000);
  std::string state_while_full = r.Query("SELECT state FROM jobs WHERE id=1");
  fs::remove(filler);
  bool written = WaitUntil([&] { return fs::exists(r.Results("team") / "slow.json"); }, 30'000);
  bool ended = WaitUntil([&] { return r.Query("SELECT state FROM jobs WHERE id=1") == "succeeded"; }, 30'000);
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  INFO(ReadFile(r.scratch / "stderr"));
  REQUIRE(held);
  CHECK(state_while_full == "running");
  CHECK(written);
  CHECK(ended);
  CHECK(r.Result("team", "slow.json")["state"] == "succeeded");
  CHECK(TempLeftovers(r.Var()).empty());
}

// The daemon's resident memory in KiB, from /proc.
long RssKiB(pid_t pid) {
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("VmRSS:");
  return at == std::string::npos ? -1 : std::stol(status.substr(at + 6));
}

TEST_CASE("a daemon with a hundred thousand queued jobs stays under 50 MB resident", "[e2e][reliability][scale]") {
  Root r("process", "max_queued_per_group: 100000\n");
  REQUIRE(r.RunOnce().exit_code == 0);  // creates the database
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((r.Var() / "store/dropq.db").c_str(), &db) == SQLITE_OK);
    // Queued for next year, so none runs; prompts of a realistic size.
    const char* fill =
        "BEGIN;"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
        "INSERT INTO jobs(group_folder, state, prompt, run_at, created_at, source_claim) "
        "SELECT CASE i % 3 WHEN 0 THEN 'main' WHEN 1 THEN 'team' ELSE 'other' END, 'queued', "
        "printf('job %d: summarise the report and file it under the right heading', i), "
        "'2027-11-27T00:00:00.000Z', '2026-11-27T00:00:00.000Z', 'claim-' || i FROM n;"
        "COMMIT;";
    REQUIRE(sqlite3_exec(db, fill, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  bool ready = r.WaitReady(pid, 60'000);
  // A file dropped now is still ingested and runs ahead of next year's jobs.
  if (ready) r.Drop("team", "now.json", {{"prompt", "echo now"}});
  bool ran = ready && WaitUntil([&] { return fs::exists(r.Results("team") / "now.json"); }, 30'000);
  long rss = RssKiB(pid);
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  INFO(ReadFile(r.scratch / "stderr"));
  REQUIRE(ready);
  CHECK(ran);
  CHECK(Count(r, "jobs WHERE state='queued'") == "100000");
  INFO("RSS " << rss << " KiB");
  REQUIRE(rss > 0);
#if defined(__SANITIZE_ADDRESS__)
  // ASan's shadow memory and quarantine make RSS meaningless here; the
  // figure is checked in the plain build.
  SUCCEED("RSS not checked under AddressSanitizer");
#else
  CHECK(rss < 50 * 1024);
#endif
}

}  // namespace
}  // namespace dropq::testing

// Interrupted is not failed (issue 12): an attempt lost because dropq itself
// was killed does not use one of the job's attempts.
namespace dropq::testing {
namespace {

// One value from the database, or nothing while the daemon has not created
// it yet: for waiting on the daemon's state without failing the test.
std::optional<std::string> TryQuery(const Root& r, const std::string& sql) {
  sqlite3* db = nullptr;
  std::optional<std::string> out;
  if (sqlite3_open_v2((r.Var() / "store/dropq.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// Starts the daemon, waits until job 1's first attempt is recorded running,
// and kills the daemon with SIGKILL. False when the attempt never ran.
bool KillWhileJobOneRuns(Root& r) {
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  bool running =
      WaitUntil([&] { return TryQuery(r, "SELECT status FROM job_runs WHERE job_id=1") == "running"; }, 30'000);
  ::kill(pid, SIGKILL);
  WaitProcess(pid, 30'000);
  return running;
}

TEST_CASE("a job whose attempt dropq was killed under runs again at the next start without using an attempt",
          "[e2e][reliability][interrupt]") {
  Root r;
  r.Drop("team", "slow.json", {{"prompt", "sleep 1500; echo done"}});  // max_attempts 1, the default
  REQUIRE(KillWhileJobOneRuns(r));
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "succeeded");
  CHECK(
      r.Query("SELECT group_concat(status, ',') FROM (SELECT status FROM job_runs WHERE job_id=1 ORDER BY attempt)") ==
      "lost,succeeded");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE job_id=1 AND event='recovered'") == "1");
  CHECK(r.Result("team", "slow.json")["state"] == "succeeded");
  auto out = r.Dropq({"job", "1", "--json"});
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["attempts"] == 2);
  CHECK(j["interruptions"] == 1);
  CHECK(j["max_interruptions"] == 3);
}

TEST_CASE("a job dropq was killed under more often than max_interruptions fails with its result file",
          "[e2e][reliability][interrupt]") {
  Root r;
  r.Drop("team", "crash.json", {{"prompt", "sleep 60000"}, {"max_interruptions", 0}});
  REQUIRE(KillWhileJobOneRuns(r));
  REQUIRE_FALSE(fs::exists(r.Results("team") / "crash.json"));
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT state FROM jobs WHERE id=1") == "failed");
  CHECK(r.Query("SELECT status FROM job_runs WHERE job_id=1") == "lost");
  REQUIRE(fs::exists(r.Results("team") / "crash.json"));
  auto res = r.Result("team", "crash.json");
  CHECK(res["state"] == "failed");
  CHECK(res["jobId"] == 1);
  CHECK(res["runStatus"] == "lost");
  CHECK(res["error"] == "interrupted 1 time; dropq stopped during its attempt");
}

TEST_CASE("a job that fails after an interruption still gets its configured retries", "[e2e][reliability][interrupt]") {
  Root r;
  r.Drop("team", "flaky.json", {{"prompt", "sleep 1000; exit 3"}, {"max_attempts", 2}});
  REQUIRE(KillWhileJobOneRuns(r));
  // Not --once: the retry waits out its backoff (at most 5 s).
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  bool ended = WaitUntil([&] { return TryQuery(r, "SELECT state FROM jobs WHERE id=1") == "failed"; }, 60'000);
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);
  REQUIRE(ended);
  CHECK(
      r.Query("SELECT group_concat(status, ',') FROM (SELECT status FROM job_runs WHERE job_id=1 ORDER BY attempt)") ==
      "lost,failed,failed");
  CHECK(r.Query("SELECT attempts - interruptions FROM jobs WHERE id=1") == "2");
  CHECK(r.Result("team", "flaky.json")["state"] == "failed");
}

}  // namespace
}  // namespace dropq::testing
