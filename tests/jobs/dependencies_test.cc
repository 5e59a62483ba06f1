// The store's side of dependencies and unique jobs (docs/FILES.md,
// "Dependencies" and "Unique jobs"): real SQLite, the injected clock.
#include "jobs/dependencies.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "jobs/retention.h"
#include "jobs/store.h"
#include "schema/migrations.h"
#include "tests/fakes/store.h"
#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using testing::TempDir;

struct Fixture : testing::StoreFixture {
  int claims = 0;
  Store::Inserted Insert(RunRequest req, std::vector<JobId> after = {}) {
    auto r = store->InsertJob("team", req, {"team", "x.json", "abc", "claim-" + std::to_string(++claims)}, 1,
                              kDefaultMaxInterruptions, after);
    REQUIRE(r.ok());
    return *r;
  }
  JobId Job(std::vector<JobId> after = {}, AfterPolicy policy = AfterPolicy::kSucceeded) {
    RunRequest req;
    req.prompt = "p";
    req.after_policy = policy;
    return Insert(req, std::move(after)).id;
  }
  // queued → running → `state`.
  void End(JobId id, JobState state) {
    auto run = store->StartAttempt(id, "process", "c");
    REQUIRE(run.ok());
    auto job = store->GetJob(id);
    REQUIRE(job.ok());
    RunOutcome o;
    o.job_state = state;
    o.run = *run;
    o.run.status = state == JobState::kSucceeded ? "succeeded" : "failed";
    o.run.finished_at = clock.NowMs();
    REQUIRE(store->FinishAttempt(**job, o).ok());
  }
  JobState StateOf(JobId id) {
    auto job = store->GetJob(id);
    REQUIRE(job.ok());
    REQUIRE(*job);
    return (*job)->state;
  }
  deps::Verdict::Kind Verdict(JobId id) {
    auto v = deps::Evaluate(*store, id);
    REQUIRE(v.ok());
    return v->kind;
  }
};

TEST_CASE("a job that names others is stored waiting with one edge each", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  JobId b = f.Job();
  JobId c = f.Job({a, b});
  CHECK(f.StateOf(c) == JobState::kWaiting);
  auto links = deps::DependenciesOf(*f.store, c);
  REQUIRE(links.ok());
  REQUIRE(links->size() == 2);
  CHECK((*links)[0].id == a);
  CHECK((*links)[1].id == b);
  auto waiting = deps::WaitingOn(*f.store, a);
  REQUIRE(waiting.ok());
  CHECK(*waiting == std::vector<JobId>{c});
}

TEST_CASE("a waiting job waits while any dependency has not ended", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  JobId b = f.Job();
  JobId c = f.Job({a, b});
  f.End(a, JobState::kSucceeded);
  CHECK(f.Verdict(c) == deps::Verdict::Kind::kWait);
}

TEST_CASE("a waiting job is released when every dependency succeeded", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  JobId c = f.Job({a});
  f.End(a, JobState::kSucceeded);
  CHECK(f.Verdict(c) == deps::Verdict::Kind::kRelease);
  auto q = deps::Release(*f.store, c);
  REQUIRE(q.ok());
  REQUIRE(*q);
  CHECK((*q)->id == c);
  CHECK(f.StateOf(c) == JobState::kQueued);
  auto again = deps::Release(*f.store, c);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
}

TEST_CASE("a failed dependency cancels under succeeded even while another still runs", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  JobId b = f.Job();
  JobId c = f.Job({a, b});
  f.End(b, JobState::kFailed);
  auto v = deps::Evaluate(*f.store, c);
  REQUIRE(v.ok());
  CHECK(v->kind == deps::Verdict::Kind::kCancel);
  CHECK(v->blocker == b);
  CHECK(v->blocker_state == JobState::kFailed);
}

TEST_CASE("under finished a failed dependency releases the job", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  JobId c = f.Job({a}, AfterPolicy::kFinished);
  f.End(a, JobState::kFailed);
  CHECK(f.Verdict(c) == deps::Verdict::Kind::kRelease);
}

TEST_CASE("waiting jobs count against the group's queue quota", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  f.Job({a});
  auto n = f.store->CountQueued("team");
  REQUIRE(n.ok());
  CHECK(*n == 2);
}

TEST_CASE("a waiting job can be cancelled like a queued one", "[deps]") {
  Fixture f;
  JobId a = f.Job();
  JobId c = f.Job({a});
  auto done = f.store->CancelQueued(c, "{}", "dependency job 1 failed");
  REQUIRE(done.ok());
  CHECK(*done);
  auto job = f.store->GetJob(c);
  CHECK((*job)->state == JobState::kCancelled);
  CHECK((*job)->error == std::optional<std::string>("dependency job 1 failed"));
}

TEST_CASE("prune keeps an ended job that a waiting job still names", "[deps][retention]") {
  Fixture f;
  JobId a = f.Job();
  JobId b = f.Job();
  JobId c = f.Job({a, b});
  f.End(a, JobState::kSucceeded);
  f.clock.Advance(48LL * 3600 * 1000);
  auto rep = PruneFinished(*f.store, f.clock.NowMs() - 3600 * 1000, false);
  REQUIRE(rep.ok());
  CHECK(rep->jobs.empty());
  REQUIRE(f.store->GetJob(a).ok());
  CHECK(*f.store->GetJob(a));
  // Once nothing waits on it, it goes like any other.
  f.End(b, JobState::kSucceeded);
  REQUIRE(deps::Release(*f.store, c).ok());
  f.clock.Advance(48LL * 3600 * 1000);
  auto later = PruneFinished(*f.store, f.clock.NowMs() - 3600 * 1000, false);
  REQUIRE(later.ok());
  CHECK(later->jobs.size() == 2);
}

RunRequest Keyed(const std::string& key, std::optional<std::int64_t> for_ms = std::nullopt) {
  RunRequest req;
  req.prompt = "p";
  req.unique_key = key;
  req.unique_for_ms = for_ms;
  return req;
}

TEST_CASE("a unique key is a duplicate while the earlier job is queued", "[unique]") {
  Fixture f;
  auto first = f.Insert(Keyed("k"));
  auto second = f.Insert(Keyed("k"));
  CHECK(second.duplicate);
  CHECK(second.id == first.id);
  CHECK(second.state == JobState::kQueued);
  CHECK(std::string(second.by) == "unique_key");
}

TEST_CASE("a unique key without a window is free again once the earlier job ended", "[unique]") {
  Fixture f;
  auto first = f.Insert(Keyed("k"));
  f.End(first.id, JobState::kSucceeded);
  CHECK_FALSE(f.Insert(Keyed("k")).duplicate);
}

TEST_CASE("a unique key is a duplicate within the window counted from the earlier job's creation", "[unique]") {
  Fixture f;
  auto first = f.Insert(Keyed("k", 60'000));
  f.End(first.id, JobState::kSucceeded);
  f.clock.Advance(60'000);  // exactly at the window's edge: still inside
  auto inside = f.Insert(Keyed("k", 60'000));
  CHECK(inside.duplicate);
  CHECK(inside.state == JobState::kSucceeded);
  f.clock.Advance(1);
  CHECK_FALSE(f.Insert(Keyed("k", 60'000)).duplicate);
}

TEST_CASE("unique keys of different groups do not collide", "[unique]") {
  Fixture f;
  REQUIRE(f.store->UpsertGroup("other", "Other", std::nullopt, false).ok());
  f.Insert(Keyed("k"));
  auto r = f.store->InsertJob("other", Keyed("k"), {"other", "x.json", "abc", "claim-o"}, 1);
  REQUIRE(r.ok());
  CHECK_FALSE(r->duplicate);
}

TEST_CASE("migration 9 keeps every job and the rows that point at them", "[store][migration]") {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  auto path = (dir / "dropq.db").string();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const auto& all = schema::migrations();
  REQUIRE(all.size() >= 9);
  for (std::size_t i = 0; i < 8; ++i) {
    REQUIRE(sqlite3_exec(db, std::string(all[i].sql).c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  const char* rows =
      "PRAGMA user_version=8;"
      "INSERT INTO groups(folder, name, created_at, updated_at) VALUES('team', 'Team', 't', 't');"
      "INSERT INTO jobs(id, group_folder, state, prompt, run_at, created_at, client_id) "
      "VALUES(7, 'team', 'failed', 'p', 't', 't', 'x');"
      "INSERT INTO job_events(job_id, group_folder, at, event) VALUES(7, 'team', 't', 'received');"
      "INSERT INTO job_runs(job_id, attempt, runtime, started_at, status) VALUES(7, 1, 'bwrap', 't', 'failed');";
  REQUIRE(sqlite3_exec(db, rows, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  auto store = Store::Open(path, clock);
  REQUIRE(store.ok());
  auto job = (*store)->GetJob(7);
  REQUIRE(job.ok());
  REQUIRE(*job);
  CHECK((*job)->client_id == std::optional<std::string>("x"));
  CHECK((*job)->state == JobState::kFailed);
  auto events = (*store)->ListEvents(7);
  REQUIRE(events.ok());
  CHECK(events->size() == 1);
  auto runs = (*store)->ListRuns(7);
  REQUIRE(runs.ok());
  CHECK(runs->size() == 1);
  // The client id is still unique per group after the rebuild.
  RunRequest req;
  req.prompt = "p";
  req.client_id = "x";
  auto again = (*store)->InsertJob("team", req, {"team", "y.json", "abc", "c2"}, 1);
  REQUIRE(again.ok());
  CHECK(again->duplicate);
  CHECK(again->id == 7);
  auto fine = (*store)->IntegrityCheck();
  REQUIRE(fine.ok());
  CHECK(*fine == "ok");
}

}  // namespace
}  // namespace dropq
