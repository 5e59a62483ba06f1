// Retention (jobs/retention.h) on a real SQLite file with an injected clock.
#include "jobs/retention.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using testing::TempDir;

constexpr TimeMs kDay = 86'400'000;

struct Fixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  std::unique_ptr<Store> store;
  int claims = 0;
  Fixture() {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    REQUIRE(store->UpsertGroup("team", "Team", std::nullopt, false).ok());
  }
  JobId Queue() {
    RunRequest req;
    req.prompt = "p";
    auto r = store->InsertJob("team", req, {"team", "x.json", "abc", "c" + std::to_string(++claims)}, 1);
    REQUIRE(r.ok());
    return r->id;
  }
  JobId Start() {
    JobId id = Queue();
    REQUIRE(store->StartAttempt(id, "process", "c").ok());
    return id;
  }
  JobId Finish(JobState state) {
    JobId id = Queue();
    auto run = store->StartAttempt(id, "process", "c");
    REQUIRE(run.ok());
    RunOutcome o;
    o.job_state = state;
    o.run = *run;
    o.run.status = state == JobState::kSucceeded ? "succeeded" : "failed";
    o.run.finished_at = clock.NowMs();
    o.run.log_file = "/logs/job" + std::to_string(id) + ".log";
    REQUIRE(store->FinishAttempt(**store->GetJob(id), o).ok());
    return id;
  }
  // Through a second connection: Store::Prepare caches by the literal's address.
  std::int64_t Count(const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2((dir / "dropq.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    std::int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }
  // Plain SQL through a second connection, as a user's sqlite3 shell.
  int Exec(const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir / "dropq.db").c_str(), &db) == SQLITE_OK);
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
  }
};

TEST_CASE("prune removes a finished job older than the cutoff with its runs and events", "[retention]") {
  Fixture f;
  JobId old = f.Finish(JobState::kSucceeded);
  f.clock.Advance(31 * kDay);
  auto rep = PruneFinished(*f.store, f.clock.NowMs() - 30 * kDay, false);
  REQUIRE(rep.ok());
  REQUIRE(rep->jobs.size() == 1);
  CHECK(rep->jobs[0].id == old);
  CHECK(rep->jobs[0].log_files == std::vector<std::string>{"/logs/job" + std::to_string(old) + ".log"});
  CHECK(rep->runs == 1);
  CHECK(rep->events == 3);  // received, started, succeeded
  CHECK(f.Count("SELECT count(*) FROM jobs") == 0);
  CHECK(f.Count("SELECT count(*) FROM job_runs") == 0);
  CHECK(f.Count("SELECT count(*) FROM job_events") == 0);
}

TEST_CASE("prune never touches queued or running jobs however old", "[retention]") {
  Fixture f;
  JobId queued = f.Queue();
  JobId running = f.Start();
  f.clock.Advance(365 * kDay);
  auto rep = PruneFinished(*f.store, f.clock.NowMs() - kDay, false);
  REQUIRE(rep.ok());
  CHECK(rep->jobs.empty());
  CHECK((*f.store->GetJob(queued)).has_value());
  CHECK((*f.store->GetJob(running)).has_value());
  CHECK(f.Count("SELECT count(*) FROM job_events") == 3);  // received ×2, started
}

TEST_CASE("prune keeps finished jobs that ended after the cutoff", "[retention]") {
  Fixture f;
  f.Finish(JobState::kFailed);
  f.clock.Advance(kDay);
  JobId recent = f.Finish(JobState::kSucceeded);
  f.clock.Advance(kDay);
  auto rep = PruneFinished(*f.store, f.clock.NowMs() - kDay - 1, false);
  REQUIRE(rep.ok());
  REQUIRE(rep->jobs.size() == 1);
  CHECK(f.Count("SELECT count(*) FROM jobs") == 1);
  CHECK((*f.store->GetJob(recent)).has_value());
}

TEST_CASE("a dry-run prune reports what it would remove and removes nothing", "[retention]") {
  Fixture f;
  f.Finish(JobState::kSucceeded);
  f.clock.Advance(2 * kDay);
  auto rep = PruneFinished(*f.store, f.clock.NowMs() - kDay, true);
  REQUIRE(rep.ok());
  CHECK(rep->jobs.size() == 1);
  CHECK(rep->events == 3);
  CHECK(f.Count("SELECT count(*) FROM jobs") == 1);
  CHECK(f.Count("SELECT count(*) FROM job_events") == 3);
}

TEST_CASE("prune removes rejection events older than the cutoff", "[retention]") {
  Fixture f;
  REQUIRE(f.store->AppendEvent(std::nullopt, std::string("team"), "rejected", R"({"file":"bad.json"})").ok());
  f.clock.Advance(2 * kDay);
  REQUIRE(f.store->AppendEvent(std::nullopt, std::string("team"), "rejected", R"({"file":"new.json"})").ok());
  auto rep = PruneFinished(*f.store, f.clock.NowMs() - kDay, false);
  REQUIRE(rep.ok());
  CHECK(rep->events == 1);
  CHECK(f.Count("SELECT count(*) FROM job_events WHERE detail LIKE '%new.json%'") == 1);
}

TEST_CASE("outside a prune the audit trail still refuses deletes and updates", "[retention]") {
  Fixture f;
  f.Finish(JobState::kSucceeded);
  f.clock.Advance(2 * kDay);
  CHECK(f.Exec("DELETE FROM job_events") == SQLITE_CONSTRAINT);
  CHECK(f.Exec("UPDATE job_events SET event='x'") == SQLITE_CONSTRAINT);
  REQUIRE(PruneFinished(*f.store, f.clock.NowMs() - kDay, true).ok());
  // The window closes with prune's transaction.
  CHECK(f.Count("SELECT count(*) FROM prune_window") == 0);
  CHECK(f.Exec("DELETE FROM job_events") == SQLITE_CONSTRAINT);
}

TEST_CASE("an open prune window still refuses deleting events of a queued job", "[retention]") {
  Fixture f;
  f.Queue();
  f.clock.Advance(2 * kDay);
  CHECK(f.Exec("BEGIN; INSERT INTO prune_window(id, cutoff) VALUES(1, '9999-01-01T00:00:00.000Z'); "
               "DELETE FROM job_events; COMMIT;") == SQLITE_CONSTRAINT);
  CHECK(f.Count("SELECT count(*) FROM job_events") == 1);
}

}  // namespace
}  // namespace dropq
