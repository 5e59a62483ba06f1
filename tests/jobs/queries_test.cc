// The dashboard's reads on a real SQLite file, through a read-only connection
// as the dashboard opens it, with an injected clock.
#include "jobs/queries.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "jobs/layout.h"
#include "tests/fakes/temp_dir.h"

namespace dropq::app {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteFile;

constexpr TimeMs kStart = 1'800'000'000'000;  // 2027-01-15T08:00:00Z, a whole minute

struct Fixture {
  TempDir dir;
  ManualClock clock{kStart};
  std::unique_ptr<Store> writer;
  int claims = 0;
  Fixture() {
    auto s = Store::Open(db(), clock);
    REQUIRE(s.ok());
    writer = std::move(*s);
    REQUIRE(writer->UpsertGroup("main", "Main", std::nullopt, true).ok());
    REQUIRE(writer->UpsertGroup("team", "Team", std::nullopt, false).ok());
  }
  std::string db() const { return (dir / "dropq.db").string(); }
  JobId Insert(const std::string& group, const std::string& prompt = "p") {
    RunRequest req;
    req.prompt = prompt;
    auto r = writer->InsertJob(group, req, {group, "x.json", "abc", "c" + std::to_string(++claims)}, 1);
    REQUIRE(r.ok());
    return r->id;
  }
  JobRun Start(JobId id) {
    auto run = writer->StartAttempt(id, "process", "dropq-c");
    REQUIRE(run.ok());
    return *run;
  }
  // Runs a job to `state` taking `ms`, ending now (the clock is advanced).
  void Finish(JobId id, const JobRun& run, JobState state, std::int64_t ms,
              std::optional<std::string> log = std::nullopt) {
    clock.Advance(ms);
    auto job = **writer->GetJob(id);
    RunOutcome o;
    o.job_state = state;
    o.run = run;
    o.run.status = state == JobState::kSucceeded ? "succeeded" : "failed";
    o.run.finished_at = clock.NowMs();
    o.run.duration_ms = ms;
    o.run.log_file = log;
    REQUIRE(writer->FinishAttempt(job, o).ok());
  }
  std::unique_ptr<Store> Reader() {
    auto r = Store::OpenReadOnly(db(), clock);
    REQUIRE(r.ok());
    return std::move(*r);
  }
};

TEST_CASE("finished jobs fall into the minute they finished in, over the last hour only", "[dashboard]") {
  Fixture f;
  JobId old = f.Insert("main");
  f.Finish(old, f.Start(old), JobState::kSucceeded, 1000);  // 08:00:01
  f.clock.Set(kStart + 61 * 60'000);                        // 09:01:00: the first job is out of the hour
  for (int i = 0; i < 2; ++i) {
    JobId id = f.Insert("team");
    f.Finish(id, f.Start(id), JobState::kSucceeded, 500);
  }
  JobId bad = f.Insert("team");
  f.Finish(bad, f.Start(bad), JobState::kFailed, 500);
  f.clock.Advance(3 * 60'000);  // now 09:04:01.5: those three finished three minutes ago
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto b = q.FinishedPerMinute();
  REQUIRE(b.ok());
  REQUIRE(b->size() == 60);
  CHECK(b->back().minute == kStart + 64 * 60'000);
  const auto& at = (*b)[b->size() - 4];
  CHECK(at.minute == kStart + 61 * 60'000);
  CHECK(at.succeeded == 2);
  CHECK(at.failed == 1);
  std::int64_t total = 0;
  for (const auto& m : *b) total += m.succeeded + m.failed + m.cancelled;
  CHECK(total == 3);
}

TEST_CASE("a running job's elapsed time runs from its attempt's start by the injected clock", "[dashboard]") {
  Fixture f;
  JobId id = f.Insert("team", "long one");
  f.Start(id);
  f.clock.Advance(42'000);
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto running = q.Running();
  REQUIRE(running.ok());
  REQUIRE(running->size() == 1);
  CHECK((*running)[0].id == id);
  CHECK((*running)[0].group == "team");
  CHECK((*running)[0].prompt == "long one");
  CHECK((*running)[0].elapsed_ms == 42'000);
}

TEST_CASE("counts by group and state and the ready queue depth come from the jobs table", "[dashboard]") {
  Fixture f;
  f.Insert("team");
  f.Insert("team");
  JobId done = f.Insert("main");
  f.Finish(done, f.Start(done), JobState::kSucceeded, 10);
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto counts = q.CountsByGroupAndState();
  REQUIRE(counts.ok());
  REQUIRE(counts->size() == 2);
  CHECK(((*counts)[0].group == "main" && (*counts)[0].state == "succeeded" && (*counts)[0].count == 1));
  CHECK(((*counts)[1].group == "team" && (*counts)[1].state == "queued" && (*counts)[1].count == 2));
  auto ready = q.ReadyByGroup();
  REQUIRE(ready.ok());
  REQUIRE(ready->size() == 1);
  CHECK((*ready)[0] == std::pair<std::string, std::int64_t>("team", 2));
}

TEST_CASE("the run duration histogram puts each finished attempt in every bucket at or above it", "[dashboard]") {
  Fixture f;
  for (std::int64_t ms : {50, 700, 4000}) {
    JobId id = f.Insert("main");
    f.Finish(id, f.Start(id), JobState::kSucceeded, ms);
  }
  JobId running = f.Insert("main");
  f.Start(running);  // not finished: not in the histogram
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto h = q.RunDurations();
  REQUIRE(h.ok());
  CHECK(h->count == 3);
  CHECK(h->sum_seconds == Approx(4.75));
  const auto& bounds = DurationHistogram::kBoundsSeconds;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    INFO(bounds[i]);
    std::int64_t want = (bounds[i] >= 0.05) + (bounds[i] >= 0.7) + (bounds[i] >= 4.0);
    CHECK(h->cumulative[i] == want);
  }
}

TEST_CASE("a job's detail holds its runs, its events and the tail of its run log", "[dashboard]") {
  Fixture f;
  Layout layout(f.dir.path());
  REQUIRE(layout.CreateGroup("team").ok());
  auto log = layout.GroupLogsDir("team") / "container-1-job1-1.log";
  std::string body(DashboardQueries::kMaxLogBytes + 10, 'a');
  body.replace(body.size() - 4, 4, "TAIL");
  WriteFile(log, body);
  JobId id = f.Insert("team");
  f.Finish(id, f.Start(id), JobState::kSucceeded, 10, log.string());
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto d = q.Detail(id);
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  const JobDetail& jd = **d;
  CHECK(jd.runs.size() == 1);
  REQUIRE(jd.events.size() == 3);
  CHECK(jd.events.back().event == "succeeded");
  REQUIRE(jd.log);
  CHECK(jd.log->size() == DashboardQueries::kMaxLogBytes);
  CHECK(jd.log->substr(jd.log->size() - 4) == "TAIL");
  CHECK(jd.log_truncated);
  CHECK_FALSE(q.Detail(id + 100)->has_value());
}

TEST_CASE("a run log the group replaced with a symlink is not read", "[dashboard][security]") {
  Fixture f;
  Layout layout(f.dir.path());
  REQUIRE(layout.CreateGroup("team").ok());
  WriteFile(f.dir / "secret.txt", "do not show");
  auto log = layout.GroupLogsDir("team") / "container-1-job1-1.log";
  fs::create_symlink(f.dir / "secret.txt", log);
  JobId id = f.Insert("team");
  f.Finish(id, f.Start(id), JobState::kSucceeded, 10, log.string());
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto d = q.Detail(id);
  REQUIRE(d.ok());
  CHECK_FALSE((*d)->log.has_value());
  CHECK((*d)->log_error.has_value());
}

TEST_CASE("a group's logs folder replaced with a symlink is not followed", "[dashboard][security]") {
  Fixture f;
  Layout layout(f.dir.path());
  REQUIRE(layout.CreateGroup("team").ok());
  fs::create_directories(f.dir / "elsewhere");
  WriteFile(f.dir / "elsewhere/container-1-job1-1.log", "do not show");
  fs::remove_all(layout.GroupLogsDir("team"));
  fs::create_directory_symlink(f.dir / "elsewhere", layout.GroupLogsDir("team"));
  JobId id = f.Insert("team");
  f.Finish(id, f.Start(id), JobState::kSucceeded, 10,
           (layout.GroupLogsDir("team") / "container-1-job1-1.log").string());
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto d = q.Detail(id);
  REQUIRE(d.ok());
  CHECK_FALSE((*d)->log.has_value());
  CHECK((*d)->log_error.has_value());
}

TEST_CASE("a run log path outside the job's own group's logs folder is not read", "[dashboard][security]") {
  Fixture f;
  Layout layout(f.dir.path());
  REQUIRE(layout.CreateGroup("main").ok());
  auto other = layout.GroupLogsDir("main") / "x.log";
  WriteFile(other, "main's log");
  JobId id = f.Insert("team");
  f.Finish(id, f.Start(id), JobState::kSucceeded, 10, other.string());
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  auto d = q.Detail(id);
  REQUIRE(d.ok());
  CHECK_FALSE((*d)->log.has_value());
}

TEST_CASE("the recent jobs list filters by state and group and clamps its limit", "[dashboard]") {
  Fixture f;
  f.Insert("team");
  JobId done = f.Insert("team");
  f.Finish(done, f.Start(done), JobState::kSucceeded, 10);
  f.Insert("main");
  auto reader = f.Reader();
  DashboardQueries q(*reader, f.clock, f.dir.str());
  JobFilter by_state;
  by_state.state = JobState::kSucceeded;
  auto a = q.Recent(by_state);
  REQUIRE(a.ok());
  REQUIRE(a->size() == 1);
  CHECK((*a)[0].id == done);
  JobFilter by_group;
  by_group.group = "team";
  by_group.limit = 100000;
  auto b = q.Recent(by_group);
  REQUIRE(b.ok());
  CHECK(b->size() == 2);
  CHECK((*b)[0].id > (*b)[1].id);  // newest first
}

}  // namespace
}  // namespace dropq::app
