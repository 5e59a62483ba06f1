#include "jobs/store.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/text.h"
#include "schema/migrations.h"
#include "tests/fakes/sqlite_read.h"
#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using testing::TempDir;

struct Fixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  std::unique_ptr<Store> store;
  Fixture() {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup("team", "Team", std::nullopt, false).ok());
  }
  JobId Insert(const std::string& group, RunRequest req, const std::string& claim) {
    auto r = store->InsertJob(group, req, {group, "x.json", "abc", claim}, 1);
    REQUIRE(r.ok());
    return r->id;
  }
};

std::string LastEvent(Store& store, JobId id) {
  auto events = store.ListEvents(id);
  REQUIRE(events.ok());
  REQUIRE_FALSE(events->empty());
  return events->back().event;
}

RunRequest Req(const std::string& prompt) {
  RunRequest r;
  r.prompt = prompt;
  return r;
}

TEST_CASE("text that is not valid UTF-8 is stored with replacement characters", "[store][text]") {
  Fixture f;
  RunRequest req;
  req.prompt = "p";
  JobId id = f.Insert("team", req, "c1");
  REQUIRE(f.store->AppendEvent(id, "team", "output", "{\"e\":\"x\xFF\xE6\x97\"}").ok());
  auto events = f.store->ListEvents(id);
  REQUIRE(events.ok());
  CHECK(events->back().detail == std::optional<std::string>("{\"e\":\"x\xEF\xBF\xBD\xEF\xBF\xBD\"}"));
  CHECK(text::IsValidUtf8(*events->back().detail));
}

TEST_CASE("opening a new database applies every migration", "[store]") {
  Fixture f;
  auto v = f.store->SchemaVersion();
  REQUIRE(v.ok());
  CHECK(*v == static_cast<std::int64_t>(schema::migrations().size()));
}

TEST_CASE("a database from a newer dropq is refused, not started over", "[store]") {
  TempDir dir;
  ManualClock clock;
  auto path = (dir / "dropq.db").string();
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE keep(x); PRAGMA user_version=999;", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = Store::Open(path, clock);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.status().message(), Catch::Contains("newer than this dropq"));
}

TEST_CASE("the instance id is made at the first call and kept across reopening the database", "[store]") {
  TempDir dir;
  ManualClock clock;
  const auto path = (dir / "dropq.db").string();
  std::string first;
  {
    auto store = Store::Open(path, clock);
    REQUIRE(store.ok());
    auto id = (*store)->InstanceId();
    REQUIRE(id.ok());
    first = *id;
    auto again = (*store)->InstanceId();
    REQUIRE(again.ok());
    CHECK(*again == first);
  }
  auto reopened = Store::Open(path, clock);
  REQUIRE(reopened.ok());
  auto id = (*reopened)->InstanceId();
  REQUIRE(id.ok());
  CHECK(*id == first);
}

TEST_CASE("an instance id is 12 lowercase hex characters", "[store]") {
  Fixture f;
  auto id = f.store->InstanceId();
  REQUIRE(id.ok());
  CHECK(id->size() == 12);
  CHECK(id->find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("two databases get different instance ids", "[store]") {
  Fixture a, b;
  auto ida = a.store->InstanceId();
  auto idb = b.store->InstanceId();
  REQUIRE(ida.ok());
  REQUIRE(idb.ok());
  CHECK(*ida != *idb);
}

TEST_CASE("an inserted job is queued with a received event", "[store]") {
  Fixture f;
  JobId id = f.Insert("main", Req("hi"), "t1");
  auto job = f.store->GetJob(id);
  REQUIRE(job.ok());
  REQUIRE(job->has_value());
  CHECK((*job)->state == JobState::kQueued);
  CHECK((*job)->prompt == "hi");
  CHECK((*job)->run_at == f.clock.NowMs());
  auto events = f.store->ListEvents(id);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 1);
  CHECK((*events)[0].event == "received");
}

TEST_CASE("a client id already seen in the group makes no second job", "[store]") {
  Fixture f;
  RunRequest r = Req("once");
  r.client_id = "abc";
  JobId first = f.Insert("main", r, "t1");
  auto second = f.store->InsertJob("main", r, {"main", "y.json", "def", "t2"}, 1);
  REQUIRE(second.ok());
  CHECK(second->duplicate);
  CHECK(second->id == first);
  auto jobs = f.store->ListJobs({});
  REQUIRE(jobs.ok());
  CHECK(jobs->size() == 1);
  CHECK(LastEvent(*f.store, first) == "duplicate");
}

TEST_CASE("the same client id in another group is a different job", "[store]") {
  Fixture f;
  RunRequest r = Req("x");
  r.client_id = "abc";
  JobId a = f.Insert("main", r, "t1");
  JobId b = f.Insert("team", r, "t2");
  CHECK(a != b);
}

TEST_CASE("a claim token is known once its job is recorded", "[store]") {
  Fixture f;
  CHECK_FALSE(*f.store->HasClaim("t1"));
  f.Insert("main", Req("x"), "t1");
  CHECK(*f.store->HasClaim("t1"));
}

TEST_CASE("starting and finishing an attempt records the run and the state changes", "[store]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");
  auto run = f.store->StartAttempt(id, "bwrap", "dropq-team-1");
  REQUIRE(run.ok());
  CHECK(run->attempt == 1);
  auto job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kRunning);
  f.clock.Advance(250);
  RunOutcome o;
  o.job_state = JobState::kSucceeded;
  o.run = *run;
  o.run.status = "succeeded";
  o.run.exit_code = 0;
  o.run.finished_at = f.clock.NowMs();
  o.run.duration_ms = 250;
  o.result = R"({"ok":true})";
  REQUIRE(f.store->FinishAttempt(job, o).ok());
  job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kSucceeded);
  CHECK(job.result == std::optional<std::string>(R"({"ok":true})"));
  auto runs = *f.store->ListRuns(id);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].status == "succeeded");
  CHECK(runs[0].duration_ms == std::optional<std::int64_t>(250));
  std::vector<std::string> names;
  auto events = f.store->ListEvents(id);
  REQUIRE(events.ok());
  for (const auto& e : *events) names.push_back(e.event);
  CHECK(names == std::vector<std::string>{"received", "started", "succeeded"});
}

TEST_CASE("an attempt's node and cluster state are kept on its run row", "[store]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");
  auto run = *f.store->StartAttempt(id, "slurm", "dropq-team-1");
  auto job = **f.store->GetJob(id);
  RunOutcome o;
  o.job_state = JobState::kSucceeded;
  o.run = run;
  o.run.status = "succeeded";
  o.run.node = "node[1-2]";
  o.run.cluster_state = "COMPLETED";
  REQUIRE(f.store->FinishAttempt(job, o).ok());
  auto runs = *f.store->ListRuns(id);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].node == std::optional<std::string>("node[1-2]"));
  CHECK(runs[0].cluster_state == std::optional<std::string>("COMPLETED"));
}

TEST_CASE("an attempt without cluster accounting has no node or cluster state", "[store]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");
  auto run = *f.store->StartAttempt(id, "bwrap", "dropq-team-1");
  auto job = **f.store->GetJob(id);
  RunOutcome o;
  o.job_state = JobState::kSucceeded;
  o.run = run;
  o.run.status = "succeeded";
  REQUIRE(f.store->FinishAttempt(job, o).ok());
  auto runs = *f.store->ListRuns(id);
  REQUIRE(runs.size() == 1);
  CHECK_FALSE(runs[0].node);
  CHECK_FALSE(runs[0].cluster_state);
}

TEST_CASE("a failed attempt with a retry goes back to queued at the retry time", "[store]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");
  auto run = *f.store->StartAttempt(id, "process", "c");
  auto job = **f.store->GetJob(id);
  RunOutcome o;
  o.job_state = JobState::kFailed;
  o.run = run;
  o.run.status = "failed";
  o.error = "boom";
  o.retry_at = f.clock.NowMs() + 5000;
  REQUIRE(f.store->FinishAttempt(job, o).ok());
  job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kQueued);
  CHECK(job.run_at == f.clock.NowMs() + 5000);
  CHECK(LastEvent(*f.store, id) == "retry");
}

TEST_CASE("an attempt still running at start-up is recorded lost and its job requeued without using an attempt",
          "[store][recovery]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");  // max_attempts 1, the default
  REQUIRE(f.store->StartAttempt(id, "bwrap", "c").ok());
  auto touched = f.store->RecoverInterrupted();
  REQUIRE(touched.ok());
  CHECK(*touched == std::vector<JobId>{id});
  auto job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kQueued);
  CHECK(job.attempts == 1);
  CHECK(job.interruptions == 1);
  CHECK(job.CountedAttempts() == 0);
  CHECK((*f.store->ListRuns(id))[0].status == "lost");
  CHECK(LastEvent(*f.store, id) == "recovered");
}

TEST_CASE("the interruption after max_interruptions fails the job with the reason", "[store][recovery]") {
  Fixture f;
  RunRequest r = Req("x");
  r.max_interruptions = 2;
  JobId id = f.Insert("team", r, "t1");
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.store->StartAttempt(id, "bwrap", "c").ok());
    REQUIRE(f.store->RecoverInterrupted().ok());
    REQUIRE((**f.store->GetJob(id)).state == JobState::kQueued);
  }
  REQUIRE(f.store->StartAttempt(id, "bwrap", "c").ok());
  REQUIRE(f.store->RecoverInterrupted().ok());
  auto job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kFailed);
  CHECK(job.error == std::optional<std::string>("interrupted 3 times; dropq stopped during each attempt"));
  CHECK(job.interruptions == 3);
  auto runs = *f.store->ListRuns(id);
  REQUIRE(runs.size() == 3);
  for (const auto& run : runs) CHECK(run.status == "lost");
  CHECK(LastEvent(*f.store, id) == "recovered");
}

TEST_CASE("a job recovery fails is handed to the callback as failed before recovery commits", "[store][recovery]") {
  Fixture f;
  RunRequest r = Req("x");
  r.max_interruptions = 0;
  JobId id = f.Insert("team", r, "t1");
  RunRequest other = Req("y");
  JobId requeued = f.Insert("main", other, "t2");
  REQUIRE(f.store->StartAttempt(id, "bwrap", "c").ok());
  REQUIRE(f.store->StartAttempt(requeued, "bwrap", "d").ok());
  std::vector<JobId> seen;
  std::optional<JobState> state_in_db;
  auto touched = f.store->RecoverInterrupted([&](const Job& job, const RunOutcome& o) {
    seen.push_back(job.id);
    CHECK(o.job_state == JobState::kFailed);
    CHECK(o.error == std::optional<std::string>("interrupted 1 time; dropq stopped during its attempt"));
    CHECK(o.run.status == "lost");
    CHECK(o.run.attempt == 1);
    state_in_db = (**f.store->GetJob(job.id)).state;
    return Status::Ok();
  });
  REQUIRE(touched.ok());
  CHECK(touched->size() == 2);
  CHECK(seen == std::vector<JobId>{id});
  CHECK(state_in_db == JobState::kRunning);  // not failed yet when the callback ran
  CHECK((**f.store->GetJob(id)).state == JobState::kFailed);
}

TEST_CASE("an error from the callback undoes all of recovery", "[store][recovery]") {
  Fixture f;
  RunRequest r = Req("x");
  r.max_interruptions = 0;
  JobId id = f.Insert("team", r, "t1");
  JobId requeued = f.Insert("main", Req("y"), "t2");
  REQUIRE(f.store->StartAttempt(requeued, "bwrap", "d").ok());
  REQUIRE(f.store->StartAttempt(id, "bwrap", "c").ok());
  auto touched = f.store->RecoverInterrupted([](const Job&, const RunOutcome&) { return Status::NoSpace("full"); });
  REQUIRE_FALSE(touched.ok());
  CHECK(touched.status().code() == Status::Code::kNoSpace);
  for (JobId j : {id, requeued}) {
    auto job = **f.store->GetJob(j);
    CHECK(job.state == JobState::kRunning);
    CHECK(job.interruptions == 0);
    CHECK((*f.store->ListRuns(j))[0].status == "running");
    CHECK(LastEvent(*f.store, j) == "started");
  }
}

TEST_CASE("an attempt dropq's shutdown stopped counts as an interruption, not an attempt", "[store][recovery]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");
  auto run = *f.store->StartAttempt(id, "process", "c");
  auto job = **f.store->GetJob(id);
  RunOutcome o;
  o.job_state = JobState::kFailed;
  o.run = run;
  o.run.status = "lost";
  o.error = "stopped by dropq shutdown";
  o.retry_at = f.clock.NowMs();
  o.interrupted = true;
  REQUIRE(f.store->FinishAttempt(job, o).ok());
  job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kQueued);
  CHECK(job.interruptions == 1);
  CHECK(job.CountedAttempts() == 0);
}

TEST_CASE("an attempt that failed by itself does not count as an interruption", "[store][recovery]") {
  Fixture f;
  JobId id = f.Insert("team", Req("x"), "t1");
  auto run = *f.store->StartAttempt(id, "process", "c");
  auto job = **f.store->GetJob(id);
  RunOutcome o;
  o.job_state = JobState::kFailed;
  o.run = run;
  o.run.status = "failed";
  o.error = "boom";
  REQUIRE(f.store->FinishAttempt(job, o).ok());
  job = **f.store->GetJob(id);
  CHECK(job.interruptions == 0);
  CHECK(job.CountedAttempts() == 1);
}

TEST_CASE("retrying a job failed by interruptions gives it fresh attempts and interruptions", "[store][recovery]") {
  Fixture f;
  RunRequest r = Req("x");
  r.max_interruptions = 0;
  JobId id = f.Insert("team", r, "t1");
  REQUIRE(f.store->StartAttempt(id, "bwrap", "c").ok());
  REQUIRE(f.store->RecoverInterrupted().ok());
  REQUIRE((**f.store->GetJob(id)).state == JobState::kFailed);
  REQUIRE(*f.store->Requeue(id, "{}"));
  auto job = **f.store->GetJob(id);
  CHECK(job.state == JobState::kQueued);
  CHECK(job.CountedAttempts() < job.max_attempts);
  CHECK(job.interruptions == 1);
  CHECK(job.max_interruptions == 1);  // one more interruption before it fails again
}

TEST_CASE("a job stores the max_interruptions of its request, else the default it is given", "[store]") {
  Fixture f;
  RunRequest r = Req("x");
  r.max_interruptions = 0;
  auto given = f.store->InsertJob("team", r, {"team", "a.json", "abc", "t1"}, 1, 5);
  auto defaulted = f.store->InsertJob("team", Req("y"), {"team", "b.json", "abc", "t2"}, 1, 5);
  REQUIRE(given.ok());
  REQUIRE(defaulted.ok());
  CHECK((**f.store->GetJob(given->id)).max_interruptions == 0);
  CHECK((**f.store->GetJob(defaulted->id)).max_interruptions == 5);
}

TEST_CASE("the audit trail refuses updates and deletes", "[store]") {
  Fixture f;
  f.Insert("main", Req("x"), "t1");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((f.dir / "dropq.db").c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE job_events SET event='x'", nullptr, nullptr, nullptr) != SQLITE_OK);
  CHECK(sqlite3_exec(db, "DELETE FROM job_events", nullptr, nullptr, nullptr) != SQLITE_OK);
  sqlite3_close(db);
}

TEST_CASE("a read-only reader sees what the writer committed", "[store]") {
  Fixture f;
  f.Insert("main", Req("x"), "t1");
  auto reader = Store::OpenReadOnly((f.dir / "dropq.db").string(), f.clock);
  REQUIRE(reader.ok());
  auto jobs = (*reader)->ListJobs({});
  REQUIRE(jobs.ok());
  CHECK(jobs->size() == 1);
}

TEST_CASE("a read-only reader refuses a database an older dropq left until the daemon upgrades it", "[store]") {
  TempDir dir;
  ManualClock clock;
  auto path = (dir / "dropq.db").string();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const auto& all = schema::migrations();
  for (std::size_t i = 0; i + 1 < all.size(); ++i) {
    REQUIRE(sqlite3_exec(db, std::string(all[i].sql).c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  std::string version = "PRAGMA user_version=" + std::to_string(all.size() - 1);
  REQUIRE(sqlite3_exec(db, version.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto old = Store::OpenReadOnly(path, clock);
  REQUIRE_FALSE(old.ok());
  CHECK(old.status().message().find("older than this dropq") != std::string::npos);
  REQUIRE(Store::Open(path, clock).ok());  // the daemon's writer migrates it
  CHECK(Store::OpenReadOnly(path, clock).ok());
}

TEST_CASE("a read-only reader refuses a database the daemon never created", "[store]") {
  TempDir dir;
  ManualClock clock;
  auto r = Store::OpenReadOnly((dir / "missing.db").string(), clock);
  CHECK_FALSE(r.ok());
}

TEST_CASE("jobs can be listed by state and by group", "[store]") {
  Fixture f;
  f.Insert("main", Req("a"), "t1");
  JobId b = f.Insert("team", Req("b"), "t2");
  REQUIRE(f.store->StartAttempt(b, "bwrap", "c").ok());
  JobFilter by_state;
  by_state.state = JobState::kRunning;
  auto running = *f.store->ListJobs(by_state);
  REQUIRE(running.size() == 1);
  CHECK(running[0].id == b);
  JobFilter by_group;
  by_group.group = "main";
  auto main_jobs = *f.store->ListJobs(by_group);
  REQUIRE(main_jobs.size() == 1);
  CHECK(main_jobs[0].group == "main");
}

TEST_CASE("a registered group is stored with its fields and listed", "[store][groups]") {
  Fixture f;
  RegisteredGroup g{"newbie", "Newbie", "new@x", std::string("@bot"), true, std::string(R"({"timeout":1000})")};
  auto added = f.store->UpsertRegisteredGroup(g);
  REQUIRE(added.ok());
  CHECK(*added);
  auto list = f.store->ListRegisteredGroups();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].folder == "newbie");
  CHECK((*list)[0].jid == "new@x");
  CHECK((*list)[0].trigger == std::optional<std::string>("@bot"));
  CHECK((*list)[0].requires_trigger == std::optional<bool>(true));
  CHECK((*list)[0].container_config == std::optional<std::string>(R"({"timeout":1000})"));
}

TEST_CASE("registering a folder again updates the group instead of adding one", "[store][groups]") {
  Fixture f;
  REQUIRE(f.store->UpsertRegisteredGroup({"newbie", "Newbie", "new@x", {}, {}, {}}).ok());
  auto again = f.store->UpsertRegisteredGroup({"newbie", "Renamed", "new@x", {}, {}, {}});
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  auto list = f.store->ListRegisteredGroups();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].name == "Renamed");
}

TEST_CASE("a group of the config cannot be overwritten by a registration", "[store][groups]") {
  Fixture f;
  auto r = f.store->UpsertRegisteredGroup({"team", "Hijack", "evil@x", {}, {}, {}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("comes from the config") != std::string::npos);
  auto list = f.store->ListRegisteredGroups();
  REQUIRE(list.ok());
  CHECK(list->empty());
}

TEST_CASE("a registered group later put in the config becomes a config group", "[store][groups]") {
  Fixture f;
  REQUIRE(f.store->UpsertRegisteredGroup({"newbie", "Newbie", "new@x", {}, {}, {}}).ok());
  REQUIRE(f.store->UpsertGroup("newbie", "Newbie", std::string("new@x"), false).ok());
  auto list = f.store->ListRegisteredGroups();
  REQUIRE(list.ok());
  CHECK(list->empty());
}

// Another process's sqlite3 shell, as far as locks go.
struct OutsideConnection {
  sqlite3* db = nullptr;
  explicit OutsideConnection(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  ~OutsideConnection() { sqlite3_close(db); }
  int Exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }
};

TEST_CASE("a write lock held by an outside connection is waited out instead of failing", "[store][busy]") {
  Fixture f;
  OutsideConnection other((f.dir / "dropq.db").string());
  REQUIRE(other.Exec("BEGIN IMMEDIATE; INSERT INTO groups(folder, name, created_at, updated_at) "
                     "VALUES('x', 'x', 'now', 'now');") == SQLITE_OK);
  // The outside writer commits a moment later, well within the busy timeout.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    other.Exec("COMMIT");
  });
  auto ins = f.store->InsertJob("team", Req("after the lock"), {"team", "x.json", "abc", "tok-busy"}, 1);
  release.join();
  INFO((ins.ok() ? std::string() : ins.status().message()));
  REQUIRE(ins.ok());
  CHECK((**f.store->GetJob(ins->id)).prompt == "after the lock");
}

TEST_CASE("an outside reader's open transaction does not block the daemon's writes", "[store][busy]") {
  Fixture f;
  OutsideConnection reader((f.dir / "dropq.db").string());
  REQUIRE(reader.Exec("BEGIN; SELECT count(*) FROM jobs;") == SQLITE_OK);
  JobId id = f.Insert("team", Req("while read"), "tok-read");
  CHECK(id > 0);
  REQUIRE(reader.Exec("COMMIT") == SQLITE_OK);
}

// The plan's lines joined, for readable failures.
std::string Plan(Store& store, const char* query) {
  auto plan = store.QueryPlan(query);
  REQUIRE(plan.ok());
  std::string out;
  for (const auto& line : *plan) out += line + "\n";
  return out;
}

TEST_CASE("the starts of a rate window are every attempt started since, with its group, oldest first", "[store]") {
  Fixture f;
  JobId a = f.Insert("main", Req("a"), "t1");
  JobId b = f.Insert("team", Req("b"), "t2");
  REQUIRE(f.store->StartAttempt(a, "process", "c1").ok());
  f.clock.Advance(1'000);
  const TimeMs since = f.clock.NowMs();
  REQUIRE(f.store->StartAttempt(b, "process", "c2").ok());
  f.clock.Advance(1'000);
  auto starts = f.store->StartsSince(since);
  REQUIRE(starts.ok());
  REQUIRE(starts->size() == 1);
  CHECK((*starts)[0].group == "team");
  CHECK((*starts)[0].started_at == since);
}

TEST_CASE("reading the starts of a rate window searches the start-time index", "[store][scale]") {
  Fixture f;
  std::string plan = Plan(*f.store, sql::kStartsSince);
  INFO(plan);
  CHECK(plan.find("SEARCH r USING INDEX job_runs_started (started_at>?)") != std::string::npos);
  CHECK(plan.find("SCAN") == std::string::npos);
}

TEST_CASE("loading the queue at start searches the state index instead of scanning jobs", "[store][scale]") {
  Fixture f;
  std::string plan = Plan(*f.store, sql::kListQueuedRefs);
  INFO(plan);
  CHECK(plan.find("SEARCH jobs USING INDEX jobs_state (state=?)") != std::string::npos);
  CHECK(plan.find("SCAN") == std::string::npos);
}

TEST_CASE("counting a group's queued jobs for its quota reads only an index", "[store][scale]") {
  Fixture f;
  std::string plan = Plan(*f.store, sql::kCountQueued);
  INFO(plan);
  CHECK(plan.find("USING COVERING INDEX jobs_group_state (group_folder=? AND state=?)") != std::string::npos);
  CHECK(plan.find("SCAN") == std::string::npos);
}

TEST_CASE("reconciling a claimed file finds its job through the claim's unique index", "[store][scale]") {
  Fixture f;
  std::string plan = Plan(*f.store, sql::kHasClaim);
  INFO(plan);
  CHECK(plan.find("USING COVERING INDEX sqlite_autoindex_jobs_1 (source_claim=?)") != std::string::npos);
  CHECK(plan.find("SCAN") == std::string::npos);
}

TEST_CASE("the queue loaded at start carries each job's group, priority and run_at", "[store][scale]") {
  Fixture f;
  RunRequest later = Req("later");
  later.priority = 7;
  later.run_at = f.clock.NowMs() + 60'000;
  JobId a = f.Insert("team", Req("now"), "tok-a");
  JobId b = f.Insert("main", later, "tok-b");
  auto refs = f.store->ListQueuedRefs();
  REQUIRE(refs.ok());
  REQUIRE(refs->size() == 2);
  std::sort(refs->begin(), refs->end(), [](const QueuedJob& x, const QueuedJob& y) { return x.id < y.id; });
  CHECK((*refs)[0].id == a);
  CHECK((*refs)[0].group == "team");
  CHECK((*refs)[1].id == b);
  CHECK((*refs)[1].priority == 7);
  CHECK((*refs)[1].run_at == f.clock.NowMs() + 60'000);
}

}  // namespace
}  // namespace dropq

namespace dropq {
namespace {

using testing::QueryOne;

// Every column of a jobs row but id and source_claim, which differ by
// construction, quoted and joined.
std::string JobRowWithout(const std::filesystem::path& db, JobId id) {
  std::string cols = QueryOne(db,
                             "SELECT group_concat('quote(' || name || ')', ' || ''|'' || ') FROM pragma_table_info('jobs') "
                             "WHERE name NOT IN ('id','source_claim')");
  REQUIRE_FALSE(cols.empty());
  return QueryOne(db, "SELECT " + cols + " FROM jobs WHERE id=" + std::to_string(id));
}

TEST_CASE("plain jobs inserted in bulk are stored as InsertJob stores them", "[store]") {
  Fixture f;
  RunRequest req;
  req.prompt = "report on t";
  req.context_mode = ContextMode::kGroup;
  auto one = f.store->InsertJob("team", req, {"team", "task-t", "", "task:t:1"}, 3, 2);
  REQUIRE(one.ok());
  auto bulk = f.store->InsertPlainJobs({{"team", "report on t", ContextMode::kGroup, {"team", "task-t", "", "task:t:2"}}},
                                       3, 2);
  REQUIRE(bulk.ok());
  REQUIRE(bulk->size() == 1);
  REQUIRE((*bulk)[0]);
  const std::string row = JobRowWithout(f.dir / "dropq.db", one->id);
  CHECK_THAT(row, Catch::Contains("'report on t'") && Catch::Contains("'group'"));
  CHECK(JobRowWithout(f.dir / "dropq.db", *(*bulk)[0]) == row);
  auto e1 = f.store->ListEvents(one->id);
  auto e2 = f.store->ListEvents(*(*bulk)[0]);
  REQUIRE(e1.ok());
  REQUIRE(e2.ok());
  REQUIRE(e1->size() == 1);
  REQUIRE(e2->size() == 1);
  CHECK(e2->front().event == "received");
  CHECK(e2->front().detail == e1->front().detail);
}

TEST_CASE("a bulk insert makes no second job for a claim already taken and says which", "[store]") {
  Fixture f;
  auto first = f.store->InsertPlainJobs({{"team", "p", ContextMode::kIsolated, {"team", "task-t", "", "task:t:1"}}}, 1, 2);
  REQUIRE(first.ok());
  auto again = f.store->InsertPlainJobs({{"team", "p", ContextMode::kIsolated, {"team", "task-t", "", "task:t:2"}},
                                         {"team", "p", ContextMode::kIsolated, {"team", "task-t", "", "task:t:1"}}},
                                        1, 2);
  REQUIRE(again.ok());
  REQUIRE(again->size() == 2);
  CHECK((*again)[0].has_value());
  CHECK_FALSE((*again)[1].has_value());
  CHECK(QueryOne(f.dir / "dropq.db", "SELECT count(*) FROM jobs") == "2");
  CHECK(QueryOne(f.dir / "dropq.db", "SELECT id FROM jobs WHERE source_claim='task:t:1'") == std::to_string(*(*first)[0]));
}

}  // namespace
}  // namespace dropq
