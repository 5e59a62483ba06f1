// The CLI against a real root: the real dropq binary, a real daemon (run
// --once, or `run` in the background), real SQLite and bubblewrap sandboxes
// running the test agent. docs/CLI.md is the contract.
#include <signal.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>
#include <string>
#include <chrono>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_root.h"
#include "tests/fakes/env.h"
#include "tests/fakes/pty.h"

namespace dropq::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// "just now", "12s ago", "5m ago", ...
bool HasRelativeTime(const std::string& line) {
  return std::regex_search(line, std::regex("just now|[0-9]+[smhd] ago"));
}

std::vector<std::string> Column(const json& arr, const char* key) {
  std::vector<std::string> out;
  for (const auto& e : arr) out.push_back(e[key].get<std::string>());
  return out;
}

// One job run to the end by run --once; returns its id.
std::int64_t OneFinishedJob(Root& r, const std::string& prompt = "echo hello") {
  r.Drop("team", "one.json", {{"prompt", prompt}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  return std::stoll(r.Query("SELECT id FROM jobs WHERE source_name='one.json'"));
}

TEST_CASE("enqueue writes a run job file into the group's tasks that the daemon then runs", "[e2e][cli]") {
  Root r;
  auto out = r.Dropq({"enqueue", "--group", "team", "--prompt", "echo from the cli", "--priority", "3", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  fs::path file = json::parse(out.out)["file"].get<std::string>();
  CHECK(file.parent_path() == r.Tasks("team"));
  auto body = json::parse(ReadFile(file));
  CHECK(body["type"] == "run");
  CHECK(body["prompt"] == "echo from the cli");
  CHECK(body["priority"] == 3);
  REQUIRE(r.RunOnce().exit_code == 0);
  auto result = r.Result("team", file.filename().string());
  CHECK(result["state"] == "succeeded");
  CHECK(result["result"]["echo"] == "from the cli");
}

TEST_CASE("enqueue --wait prints the result once a running daemon has finished the job", "[e2e][cli]") {
  Root r;
  Daemon d(r);
  auto out = r.Dropq({"enqueue", "-g", "team", "-p", "echo waited for", "--wait", "--wait-timeout", "60s", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["result"]["state"] == "succeeded");
  CHECK(j["result"]["result"]["echo"] == "waited for");
}

TEST_CASE("enqueue --wait exits 4 when the job fails", "[e2e][cli]") {
  Root r;
  Daemon d(r);
  auto out = r.Dropq({"enqueue", "-g", "team", "-p", "exit 3", "--wait", "--wait-timeout", "60s"});
  INFO(out.out + out.err);
  CHECK(out.exit_code == 4);
  CHECK_THAT(out.out, Catch::Contains("failed"));
}

TEST_CASE("enqueue --wait with a client id the group already used reports the earlier job", "[e2e][cli]") {
  Root r;
  REQUIRE(r.Dropq({"enqueue", "-g", "team", "-p", "echo first", "--id", "weekly"}).exit_code == 0);
  REQUIRE(r.RunOnce().exit_code == 0);
  std::string first = r.Query("SELECT id FROM jobs WHERE client_id='weekly'");
  Daemon d(r);
  auto out = r.Dropq(
      {"enqueue", "-g", "team", "-p", "echo second", "--id", "weekly", "--wait", "--wait-timeout", "60s", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(std::to_string(j["duplicate_of"]["id"].get<std::int64_t>()) == first);
  CHECK(j["duplicate_of"]["result"]["echo"] == "first");
  CHECK(r.Query("SELECT count(*) FROM jobs") == "1");
}

TEST_CASE("enqueue --wait reports the rejection of its file in a group with a 64-character folder", "[e2e][cli]") {
  const std::string g(64, 'g');
  Root r("bwrap", "max_queued_per_group: 1\n", "  - {folder: " + g + ", name: Long}\n");
  REQUIRE(r.RunOnce().exit_code == 0);  // creates the group's folders
  REQUIRE(r.Dropq({"enqueue", "-g", g, "-p", "echo later", "--run-at", "2099-01-01T00:00:00Z"}).exit_code == 0);
  Daemon d(r);
  // The first job is queued (it runs in 2099) before the second is dropped.
  for (int i = 0; i < 600 && r.Query("SELECT count(*) FROM jobs WHERE state = 'queued'") != "1"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(r.Query("SELECT count(*) FROM jobs WHERE state = 'queued'") == "1");
  auto out = r.Dropq({"enqueue", "-g", g, "-p", "echo now", "--wait", "--wait-timeout", "60s", "--json"});
  INFO(out.err);
  CHECK(out.exit_code == 4);
  auto j = json::parse(out.out);
  CHECK_THAT(j["rejected"]["reason"].get<std::string>(), Catch::Contains("max_queued_per_group is 1"));
}

TEST_CASE("enqueue --wait gives up with exit 5 when no daemon picks the job up", "[e2e][cli]") {
  Root r;
  auto out = r.Dropq({"enqueue", "-g", "team", "-p", "echo x", "--wait", "--wait-timeout", "300ms"});
  CHECK(out.exit_code == 5);
  CHECK_THAT(out.err, Catch::Contains("no result after"));
  CHECK(std::distance(fs::directory_iterator(r.Tasks("team")), fs::directory_iterator()) == 1);
}

TEST_CASE("enqueue refuses an unknown group or a malformed run-at with exit 2 and writes nothing", "[e2e][cli]") {
  Root r;
  auto bad_group = r.Dropq({"enqueue", "-g", "nobody", "-p", "x"});
  CHECK(bad_group.exit_code == 2);
  CHECK_THAT(bad_group.err, Catch::Contains("no group \"nobody\""));
  auto bad_time = r.Dropq({"enqueue", "-g", "team", "-p", "x", "--run-at", "tomorrow"});
  CHECK(bad_time.exit_code == 2);
  CHECK_THAT(bad_time.err, Catch::Contains("--run-at"));
  CHECK(fs::is_empty(r.Tasks("team")));
}

TEST_CASE("events prints a job's audit trail oldest first", "[e2e][cli]") {
  Root r;
  auto id = OneFinishedJob(r);
  auto out = r.Dropq({"events", std::to_string(id), "--json"});
  REQUIRE(out.exit_code == 0);
  CHECK(Column(json::parse(out.out), "event") ==
        std::vector<std::string>{"received", "started", "output", "succeeded"});
  auto table = r.Dropq({"events", std::to_string(id)});
  REQUIRE(table.exit_code == 0);
  auto lines = Lines(table.out);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].rfind("AT ", 0) == 0);
  CHECK_THAT(lines[1], Catch::Contains("received"));
  CHECK(HasRelativeTime(lines[1]));
}

TEST_CASE("events of a job that does not exist exits 3", "[e2e][cli]") {
  Root r;
  OneFinishedJob(r);
  auto out = r.Dropq({"events", "999"});
  CHECK(out.exit_code == 3);
  CHECK_THAT(out.err, Catch::Contains("no job 999"));
}

TEST_CASE("logs prints each attempt's run log", "[e2e][cli]") {
  Root r;
  auto id = OneFinishedJob(r, "echo logged");
  auto out = r.Dropq({"logs", std::to_string(id)});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("=== job " + std::to_string(id) + " attempt 1 (succeeded)"));
  CHECK_THAT(out.out, Catch::Contains("=== Stdout ==="));
  auto j = json::parse(r.Dropq({"logs", std::to_string(id), "--json"}).out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["log"].get<std::string>() == ReadFile(j[0]["log_file"].get<std::string>()));
}

TEST_CASE("logs and job show what an agent printed escaped, so it cannot drive the terminal", "[e2e][cli][text]") {
  Root r;
  // ESC ] 0 ; pwned BEL (sets a terminal's title), then a newline; exit 3.
  auto id = OneFinishedJob(r, "raw-stderr 1b5d303b70776e6564070a; exit 3");
  auto logs = r.Dropq({"logs", std::to_string(id)});
  REQUIRE(logs.exit_code == 0);
  CHECK(logs.out.find('\x1b') == std::string::npos);
  CHECK(logs.out.find('\x07') == std::string::npos);
  CHECK_THAT(logs.out, Catch::Contains("\\x1b]0;pwned\\x07\n"));  // escaped, its line kept
  auto job = r.Dropq({"job", std::to_string(id)});
  REQUIRE(job.exit_code == 0);
  CHECK(job.out.find('\x1b') == std::string::npos);
  CHECK_THAT(job.out, Catch::Contains("Container exited with code 3: \\x1b]0;pwned\\x07"));
}

TEST_CASE("logs --follow streams a running job's events and ends with its log", "[e2e][cli]") {
  Root r;
  Daemon d(r);
  auto enq = r.Dropq({"enqueue", "-g", "team", "-p", "sleep 1500; echo slow", "--json"});
  REQUIRE(enq.exit_code == 0);
  std::string name = fs::path(json::parse(enq.out)["file"].get<std::string>()).filename().string();
  // Ingested (the database exists and holds the job) once tasks/ is empty.
  REQUIRE(WaitUntil([&] { return fs::is_empty(r.Tasks("team")); }, 30'000));
  std::string id;
  REQUIRE(WaitUntil(
      [&] {
        id = r.Query("SELECT id FROM jobs WHERE source_name='" + name + "' AND state='running'");
        return !id.empty();
      },
      30'000));
  auto out = r.Dropq({"logs", id, "--follow", "--timeout", "60s", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  std::vector<std::string> kinds, events;
  for (const auto& l : Lines(out.out)) {
    auto j = json::parse(l);
    kinds.push_back(j["type"]);
    if (j["type"] == "event") events.push_back(j["event"]);
  }
  CHECK(events == std::vector<std::string>{"received", "started", "output", "succeeded"});
  CHECK(kinds.back() == "log");
}

TEST_CASE("prune removes finished jobs with their runs, events, logs and results but keeps queued ones", "[e2e][cli]") {
  Root r;
  r.Drop("team", "done.json", {{"prompt", "echo done"}});
  r.Drop("team", "later.json", {{"prompt", "echo later"}, {"run_at", "2099-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  fs::path log = r.Query("SELECT log_file FROM job_runs");
  REQUIRE(fs::exists(log));
  REQUIRE(fs::exists(r.Results("team") / "done.json"));
  // The job finished before this process started the prune, so more than 1ms ago.
  auto out = r.Dropq({"prune", "--older-than", "1ms", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["jobs"] == 1);
  CHECK(j["runs"] == 1);
  CHECK(j["log_files"] == 1);
  CHECK(j["result_files"] == 1);
  CHECK(r.Query("SELECT group_concat(source_name) FROM jobs") == "later.json");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE job_id IS NOT NULL") == "1");  // later.json's `received`
  CHECK_FALSE(fs::exists(log));
  CHECK_FALSE(fs::exists(r.Results("team") / "done.json"));
}

TEST_CASE("prune --dry-run removes nothing", "[e2e][cli]") {
  Root r;
  OneFinishedJob(r);
  auto out = r.Dropq({"prune", "--older-than", "1ms", "--dry-run", "--json"});
  REQUIRE(out.exit_code == 0);
  CHECK(json::parse(out.out)["jobs"] == 1);
  CHECK(r.Query("SELECT count(*) FROM jobs") == "1");
  CHECK(fs::exists(r.Results("team") / "one.json"));
}

TEST_CASE("prune refuses a malformed age with exit 2", "[e2e][cli]") {
  Root r;
  auto out = r.Dropq({"prune", "--older-than", "a month"});
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("--older-than"));
}

TEST_CASE("check-config prints the effective config with defaults filled in", "[e2e][cli]") {
  Root r;
  auto out = r.Dropq({"check-config", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["root"] == r.Var().string());
  CHECK(j["max_concurrent"] == 2);
  CHECK(j["timeout_ms"] == 300000);  // the default
  CHECK(j["groups"].size() == 3);
  auto yaml = r.Dropq({"check-config"});
  REQUIRE(yaml.exit_code == 0);
  CHECK_THAT(yaml.out, Catch::Contains("valid") && Catch::Contains("kill_grace_ms: 500"));
}

TEST_CASE("check-config accepts a docker config without agent and shows the agent empty", "[e2e][cli]") {
  Root r("docker", "docker: {image: nanoclaw-agent:latest}\n");
  r.RemoveAgent();
  auto out = r.Dropq({"check-config", "--json"});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  CHECK(json::parse(out.out)["agent"] == json::array());
}

TEST_CASE("check-config exits 2 naming the bad key", "[e2e][cli]") {
  Root r("bwrap", "max_output: 5\n");
  auto out = r.Dropq({"check-config"});
  CHECK(out.exit_code == 2);
  CHECK_THAT(out.err, Catch::Contains("max_output"));
}

TEST_CASE("doctor passes every check on a root the daemon has run on", "[e2e][cli]") {
  Root r;
  OneFinishedJob(r);
  auto out = r.Dropq({"doctor", "--json"});
  INFO(out.out + out.err);
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.out);
  CHECK(j["ok"] == true);
  std::map<std::string, std::string> status;
  for (const auto& c : j["checks"]) status[c["check"]] = c["status"];
  CHECK(status["runtime bwrap"] == "ok");
  CHECK(status["user namespaces"] == "ok");
  CHECK(status["database"] == "ok");
  CHECK(status["writable team tasks/"] == "ok");
  CHECK(status.count("disk space") == 1);
}

TEST_CASE("doctor fails and exits 1 when the database is damaged", "[e2e][cli]") {
  Root r;
  OneFinishedJob(r);
  for (const char* f : {"dropq.db-wal", "dropq.db-shm"}) fs::remove(r.Var() / "store" / f);
  WriteFile(r.Var() / "store/dropq.db", "this is not a database");
  auto out = r.Dropq({"doctor"});
  CHECK(out.exit_code == 1);
  CHECK_THAT(out.out, Catch::Contains("database") && Catch::Contains("fail"));
}

TEST_CASE("jobs prints an aligned table with relative times and no colour into a pipe", "[e2e][cli]") {
  Root r;
  OneFinishedJob(r);
  auto out = r.Dropq({"jobs"});
  REQUIRE(out.exit_code == 0);
  auto lines = Lines(out.out);
  REQUIRE(lines.size() == 2);
  // Each column starts where its header does.
  CHECK(lines[0].find("STATE") == lines[1].find("succeeded"));
  CHECK(lines[0].find("FILE") == lines[1].find("one.json"));
  CHECK(HasRelativeTime(lines[1]));
  CHECK(out.out.find('\033') == std::string::npos);
}

TEST_CASE("jobs on a terminal shows states in colour", "[e2e][cli]") {
  Root r;
  OneFinishedJob(r);
  auto out = RunInPty({DROPQ_BINARY, "jobs", "--config", r.config.string()}, r.scratch);
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("\033[32msucceeded\033[0m"));
}

TEST_CASE("run --once on a terminal shows a progress line with done, running, failed and elapsed", "[e2e][cli]") {
  Root r;
  r.Drop("team", "a.json", {{"prompt", "echo a"}});
  r.Drop("team", "b.json", {{"prompt", "exit 1"}});
  auto out = RunInPty({DROPQ_BINARY, "run", "--once", "--config", r.config.string()}, r.scratch);
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("2/2 done, 0 running, 1 failed, "));
  CHECK_THAT(out.out, Catch::Contains("0/2 done, "));  // drawn before anything had finished
}

TEST_CASE("the daemon logs one JSON object per line on stderr when it is not a terminal", "[e2e][cli]") {
  Root r;
  r.Drop("team", "a.json", {{"prompt", "echo \"quoted\""}});
  auto run = r.RunOnce();
  REQUIRE(run.exit_code == 0);
  auto lines = Lines(run.err);
  REQUIRE_FALSE(lines.empty());
  bool saw_queued = false;
  for (const auto& l : lines) {
    INFO(l);
    auto j = json::parse(l);  // throws (fails the test) on any line that is not JSON
    CHECK(j["ts"].is_string());
    CHECK(j["level"].is_string());
    saw_queued = saw_queued || j["msg"].get<std::string>().find("queued for group team") != std::string::npos;
  }
  CHECK(saw_queued);
}

// Eleven files in one pass: one over the per-job lines' limit (docs/CLI.md "Logs").
void DropEleven(Root& r) {
  for (int i = 0; i < 11; ++i) r.Drop("team", "j" + std::to_string(10 + i) + ".json", {{"prompt", "echo a"}});
}

TEST_CASE("a burst queued in one pass gets one info line with its count and ids", "[e2e][cli]") {
  Root r;
  DropEleven(r);
  ScopedEnv env("DROPQ_LOG_LEVEL", "info");
  auto run = r.RunOnce();
  REQUIRE(run.exit_code == 0);
  int summaries = 0, per_job = 0;
  for (const auto& l : Lines(run.err)) {
    auto msg = json::parse(l)["msg"].get<std::string>();
    if (msg == "11 jobs queued for group team, ids 1 to 11") ++summaries;
    if (msg.rfind("job ", 0) == 0 && msg.find(" queued for group ") != std::string::npos) ++per_job;
  }
  CHECK(summaries == 1);
  CHECK(per_job == 0);
}

TEST_CASE("each job of a burst still has its own queued line at debug level", "[e2e][cli]") {
  Root r;  // log_level: debug in the config
  DropEleven(r);
  auto run = r.RunOnce();
  REQUIRE(run.exit_code == 0);
  std::set<std::string> per_job;
  for (const auto& l : Lines(run.err)) {
    auto j = json::parse(l);
    auto msg = j["msg"].get<std::string>();
    if (msg.rfind("job ", 0) == 0 && msg.find(" queued for group team") != std::string::npos) {
      CHECK(j["level"] == "debug");
      per_job.insert(msg);
    }
  }
  CHECK(per_job.size() == 11);
}

TEST_CASE("DROPQ_LOG_LEVEL overrides the config's log level", "[e2e][cli]") {
  Root r;  // log_level: debug in the config
  r.Drop("team", "a.json", {{"prompt", "echo a"}});
  ScopedEnv env("DROPQ_LOG_LEVEL", "warn");
  auto run = r.RunOnce();
  REQUIRE(run.exit_code == 0);
  for (const auto& l : Lines(run.err)) {
    auto level = json::parse(l)["level"].get<std::string>();
    CHECK((level == "warn" || level == "error" || level == "critical"));
  }
  CHECK(r.Result("team", "a.json")["state"] == "succeeded");
}

TEST_CASE("the daemon's logs on a terminal are readable lines rather than JSON", "[e2e][cli]") {
  Root r;
  r.Drop("team", "a.json", {{"prompt", "echo a"}});
  auto out = RunInPty({DROPQ_BINARY, "run", "--once", "--config", r.config.string()}, r.scratch);
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("info\033[0m job 1 queued for group team"));
  CHECK(out.out.find("{\"ts\"") == std::string::npos);
}

}  // namespace
}  // namespace dropq::testing
