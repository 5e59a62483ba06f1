// Dependencies and unique jobs end to end (docs/FILES.md, "Dependencies" and
// "Unique jobs"): dropped files, the real daemon and sandbox, the database.
#include <signal.h>

#include <catch2/catch.hpp>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

std::string IdOf(const Root& r, const std::string& file) {
  return r.Query("SELECT id FROM jobs WHERE source_name='" + file + "'");
}

std::string StateOf(const Root& r, const std::string& file) {
  return r.Query("SELECT state FROM jobs WHERE source_name='" + file + "'");
}

TEST_CASE("a chain with a failure in the middle cancels the rest, each with its result file", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "a.json", {{"id", "a"}, {"prompt", "echo one"}});
  r.Drop("team", "b.json", {{"id", "b"}, {"after", "a"}, {"prompt", "fail broken"}});
  r.Drop("team", "c.json", {{"id", "c"}, {"after", json::array({"b"})}, {"prompt", "echo three"}});
  r.Drop("team", "d.json", {{"after", "c"}, {"prompt", "echo four"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);

  CHECK(StateOf(r, "a.json") == "succeeded");
  CHECK(StateOf(r, "b.json") == "failed");
  CHECK(StateOf(r, "c.json") == "cancelled");
  CHECK(StateOf(r, "d.json") == "cancelled");
  // Neither cancelled job ever started.
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE job_id IN (" + IdOf(r, "c.json") + "," + IdOf(r, "d.json") +
                ")") == "0");
  json c = r.Result("team", "c.json");
  CHECK(c["state"] == "cancelled");
  CHECK(c["error"] == "dependency job " + IdOf(r, "b.json") + " failed");
  json d = r.Result("team", "d.json");
  CHECK(d["error"] == "dependency job " + IdOf(r, "c.json") + " was cancelled");
  CHECK(r.Query("SELECT json_extract(detail, '$.by') || ' ' || json_extract(detail, '$.after') FROM job_events "
                "WHERE event='cancelled' AND job_id=" + IdOf(r, "c.json")) == "dependency " + IdOf(r, "b.json"));

  auto shown = r.Dropq({"job", IdOf(r, "c.json")});
  INFO(shown.out);
  CHECK(shown.out.find("after: " + IdOf(r, "b.json") + " failed (must succeed)") != std::string::npos);
}

TEST_CASE("with after_policy finished a job runs after a dependency that failed", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "a.json", {{"id", "a"}, {"prompt", "fail broken"}});
  r.Drop("team", "b.json", {{"after", "a"}, {"after_policy", "finished"}, {"prompt", "echo cleanup"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(StateOf(r, "a.json") == "failed");
  CHECK(StateOf(r, "b.json") == "succeeded");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='released' AND job_id=" + IdOf(r, "b.json")) == "1");
}

// Both files are in tasks/ before dropq starts, so its first pass reads
// them together; the names put the dependent first in one case and last in
// the other.
TEST_CASE("a dependency dropped in the same pass resolves whichever file comes first", "[e2e][workflows]") {
  for (const auto& [dependent, dependency] :
       {std::pair<std::string, std::string>{"1-then.json", "2-first.json"}, {"2-then.json", "1-first.json"}}) {
    Root r;
    r.Drop("team", dependent, {{"after", "first"}, {"prompt", "echo then"}});
    r.Drop("team", dependency, {{"id", "first"}, {"prompt", "echo first"}});
    auto run = r.RunOnce();
    INFO(dependent << " " << run.err);
    REQUIRE(run.exit_code == 0);
    CHECK(StateOf(r, dependency) == "succeeded");
    CHECK(StateOf(r, dependent) == "succeeded");
    // It started only once what it waited for had ended.
    CHECK(r.Query("SELECT (SELECT started_at FROM job_runs WHERE job_id=" + IdOf(r, dependent) +
                  ") >= (SELECT finished_at FROM job_runs WHERE job_id=" + IdOf(r, dependency) + ")") == "1");
    CHECK(r.Query("SELECT count(*) FROM job_deps WHERE job_id=" + IdOf(r, dependent) +
                  " AND dep_id=" + IdOf(r, dependency)) == "1");
  }
}

TEST_CASE("a file naming a job that does not exist is rejected with the reason", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "x.json", {{"after", "nope"}, {"prompt", "echo x"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(r.Query("SELECT count(*) FROM jobs") == "0");
  json why = json::parse(ReadFile(r.Errors() / "team-x.json.error.json"));
  CHECK(why["reason"] == "field \"after\": no job with id \"nope\" in group \"team\"");
  CHECK(r.Query("SELECT json_extract(detail, '$.reason') FROM job_events WHERE event='rejected'") ==
        "field \"after\": no job with id \"nope\" in group \"team\"");
}

TEST_CASE("a waiting job survives a restart and runs when its dependency ends", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "a.json", {{"id", "a"}, {"prompt", "sleep 1500"}});
  r.Drop("team", "b.json", {{"after", "a"}, {"prompt", "echo after"}});
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  const bool started = r.WaitForRow("SELECT count(*) FROM job_runs");
  ::kill(pid, SIGKILL);
  WaitProcess(pid, 30'000);
  REQUIRE(started);
  CHECK(StateOf(r, "b.json") == "waiting");

  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(StateOf(r, "a.json") == "succeeded");
  CHECK(StateOf(r, "b.json") == "succeeded");
}

TEST_CASE("a job waiting on another group's job does not hold its own group's queue", "[e2e][workflows]") {
  Root r;
  r.Drop("other", "slow.json", {{"id", "slow"}, {"prompt", "sleep 1500"}});
  Daemon d(r);
  REQUIRE(r.WaitForRow("SELECT count(*) FROM job_runs"));
  // Main may name another group's job as `<group>:<id>`.
  r.Drop("main", "w.json", {{"target_group", "team"}, {"after", "other:slow"}, {"prompt", "echo waited"}});
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE state='waiting'"));
  r.Drop("team", "free.json", {{"prompt", "echo free"}});
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE source_name='w.json' AND state='succeeded'"));
  // The later job of the same group ran while the first one waited.
  CHECK(r.Query("SELECT (SELECT finished_at FROM jobs WHERE source_name='free.json') < "
                "(SELECT started_at FROM jobs WHERE source_name='w.json')") == "1");
}

TEST_CASE("a unique key repeated inside its window makes no job and a result file naming the first", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "a.json", {{"unique_key", "report"}, {"unique_for", "1h"}, {"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("team", "b.json", {{"unique_key", "report"}, {"unique_for", "1h"}, {"prompt", "echo b"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(r.Query("SELECT count(*) FROM jobs") == "1");
  json b = r.Result("team", "b.json");
  CHECK(b["state"] == "duplicate");
  CHECK(b["duplicateOf"]["jobId"] == 1);
  CHECK(b["duplicateOf"]["state"] == "succeeded");
  CHECK(b["duplicateOf"]["by"] == "unique_key");
  CHECK(r.Query("SELECT json_extract(detail, '$.file') FROM job_events WHERE event='duplicate' AND job_id=1") ==
        "b.json");
  CHECK_FALSE(fs::exists(r.Tasks("team") / "b.json"));
}

TEST_CASE("a unique key repeated after its window makes a new job", "[e2e][workflows]") {
  Root r;
  // A window of one millisecond has passed by the second run.
  r.Drop("team", "a.json", {{"unique_key", "report"}, {"unique_for", 1}, {"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("team", "b.json", {{"unique_key", "report"}, {"unique_for", 1}, {"prompt", "echo b"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT group_concat(state) FROM jobs") == "succeeded,succeeded");
  CHECK(r.Result("team", "b.json")["state"] == "succeeded");
}

TEST_CASE("a unique key repeated while the first job waits is a duplicate of it", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "dep.json", {{"id", "dep"}, {"prompt", "echo dep"}, {"run_at", "2999-01-01T00:00:00Z"}});
  r.Drop("team", "a.json", {{"unique_key", "k"}, {"after", "dep"}, {"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("team", "b.json", {{"unique_key", "k"}, {"prompt", "echo b"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  json b = r.Result("team", "b.json");
  CHECK(b["duplicateOf"]["jobId"] == std::stoi(IdOf(r, "a.json")));
  CHECK(b["duplicateOf"]["state"] == "waiting");
}

TEST_CASE("a second drop of a seen id gets a result file naming the first job", "[e2e][workflows]") {
  Root r;
  r.Drop("team", "a.json", {{"id", "weekly"}, {"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  r.Drop("team", "again.json", {{"id", "weekly"}, {"prompt", "echo a"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Query("SELECT count(*) FROM jobs") == "1");
  json again = r.Result("team", "again.json");
  CHECK(again["duplicateOf"] == json{{"jobId", 1}, {"state", "succeeded"}, {"by", "id"}});
  CHECK(again["id"] == "weekly");
}

}  // namespace
}  // namespace dropq::testing
