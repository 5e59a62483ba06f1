// The attempt lifecycle (daemon/attempts.h) driven through every transition
// with a recording executor, a manual clock, a fixed jitter and result files
// "written" by the test.
#include "daemon/attempts.h"

#include <catch2/catch.hpp>

#include <deque>

#include "tests/fakes/recording_executor.h"

namespace dropq::app {
namespace {

using Phase = Attempts::Phase;

struct Harness {
  testing::RecordingExecutor executor;
  ManualClock clock;
  double jitter = 0.5;
  // Snapshot waits and result writes the test completes by hand.
  std::deque<std::function<void()>> snapshot_waits;
  struct Write {
    Job job;
    RunOutcome outcome;
    Attempts::Hooks::Written written;
  };
  std::deque<Write> writes;
  std::vector<Attempts::End> ended_calls;
  std::vector<std::uint64_t> retry_delays;
  int launched_calls = 0;
  Attempts attempts{executor, clock, Hooks(), [this] { return jitter; }};

  Attempts::Hooks Hooks() {
    Attempts::Hooks h;
    h.after_snapshots = [this](std::function<void()> then) { snapshot_waits.push_back(std::move(then)); };
    h.write_result = [this](const Job& j, RunOutcome o, Attempts::Hooks::Written w) {
      writes.push_back({j, std::move(o), std::move(w)});
    };
    h.ended = [this](const Attempts::End& e) { ended_calls.push_back(e); };
    h.retry_later = [this](std::uint64_t d) { retry_delays.push_back(d); };
    h.launched = [this] { ++launched_calls; };
    return h;
  }

  static runner::Attempt MakeAttempt(JobId id, std::int64_t attempt = 1, std::int64_t max_attempts = 3) {
    runner::Attempt a;
    a.job.id = id;
    a.job.group = "team";
    a.job.attempts = attempt;
    a.job.max_attempts = max_attempts;
    a.job.state = JobState::kRunning;
    a.run.job_id = id;
    a.run.attempt = attempt;
    return a;
  }
  void SnapshotsWritten() {
    REQUIRE_FALSE(snapshot_waits.empty());
    auto then = std::move(snapshot_waits.front());
    snapshot_waits.pop_front();
    then();
  }
  void ResultWritten(Result<std::string> path = std::string("/srv/dropq/data/ipc/team/results/x.json")) {
    REQUIRE_FALSE(writes.empty());
    auto w = std::move(writes.front());
    writes.pop_front();
    w.written(std::move(w.outcome), std::move(path));
  }
  // The agent of `a` exits with `state`.
  void Exit(const runner::Attempt& a, JobState state) {
    executor.Gone(a.job.id);
    RunOutcome o;
    o.job_state = state;
    o.run = a.run;
    o.run.status = state == JobState::kSucceeded ? "succeeded" : "failed";
    if (state == JobState::kFailed) o.error = o.run.error = "Container exited with code 1";
    attempts.Exited(a.job, std::move(o));
  }
};

}  // namespace

TEST_CASE("a launched attempt waits for the snapshots before its agent starts") {
  Harness h;
  h.attempts.Launch({Harness::MakeAttempt(1)});
  CHECK(h.executor.started.empty());
  CHECK(h.attempts.PhaseOf(1) == Phase::kWaitingSnapshots);
  h.SnapshotsWritten();
  REQUIRE(h.executor.started.size() == 1);
  CHECK(h.executor.started[0].job.id == 1);
  CHECK(h.attempts.PhaseOf(1) == Phase::kRunning);
  CHECK(h.launched_calls == 1);
}

TEST_CASE("a succeeded attempt is handed over only after its result file is written") {
  Harness h;
  auto a = Harness::MakeAttempt(1);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.Exit(a, JobState::kSucceeded);
  CHECK(h.attempts.PhaseOf(1) == Phase::kWritingResult);
  CHECK(h.ended_calls.empty());
  CHECK(h.attempts.TakeEnded().empty());
  h.ResultWritten();
  REQUIRE(h.ended_calls.size() == 1);
  CHECK(h.ended_calls[0].final);
  auto ended = h.attempts.TakeEnded();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].outcome.job_state == JobState::kSucceeded);
  CHECK_FALSE(h.attempts.PhaseOf(1));
  CHECK(h.attempts.Settled());
}

TEST_CASE("a failed attempt with attempts left ends at once, not final, with its retry time") {
  Harness h;
  h.jitter = 1.0;
  auto a = Harness::MakeAttempt(1, 1, 3);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.Exit(a, JobState::kFailed);
  CHECK(h.writes.empty());  // no result file for an attempt that is retried
  auto ended = h.attempts.TakeEnded();
  REQUIRE(ended.size() == 1);
  CHECK_FALSE(ended[0].final);
  REQUIRE(ended[0].outcome.retry_at);
  CHECK(*ended[0].outcome.retry_at == h.clock.NowMs() + 5'000);
}

TEST_CASE("a failed last attempt writes its result file and ends final") {
  Harness h;
  auto a = Harness::MakeAttempt(1, 3, 3);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.Exit(a, JobState::kFailed);
  REQUIRE(h.writes.size() == 1);
  CHECK(h.writes[0].outcome.job_state == JobState::kFailed);
  CHECK(h.writes[0].outcome.error == "Container exited with code 1");
  CHECK(h.writes[0].outcome.run.status == "failed");
  h.ResultWritten();
  auto ended = h.attempts.TakeEnded();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].final);
}

TEST_CASE("a result file that meets a full disk holds the end back and is retried with a doubling delay") {
  Harness h;
  auto a = Harness::MakeAttempt(1);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.Exit(a, JobState::kSucceeded);
  h.ResultWritten(Status::NoSpace("No space left on device"));
  CHECK(h.attempts.PhaseOf(1) == Phase::kResultBlocked);
  CHECK(h.ended_calls.empty());
  CHECK(h.retry_delays == std::vector<std::uint64_t>{1'000});
  h.attempts.RetryBlocked();
  CHECK(h.attempts.PhaseOf(1) == Phase::kWritingResult);
  h.ResultWritten(Status::NoSpace("No space left on device"));
  CHECK(h.retry_delays == std::vector<std::uint64_t>{1'000, 2'000});
  h.attempts.RetryBlocked();
  h.ResultWritten();
  REQUIRE(h.ended_calls.size() == 1);
  CHECK(h.ended_calls[0].outcome.job_state == JobState::kSucceeded);
}

TEST_CASE("a result file that cannot be written for another reason does not hold the end back") {
  Harness h;
  auto a = Harness::MakeAttempt(1);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.Exit(a, JobState::kSucceeded);
  h.ResultWritten(Status::IOError("results/x.json is a symlink"));
  CHECK(h.retry_delays.empty());
  REQUIRE(h.ended_calls.size() == 1);
  CHECK(h.ended_calls[0].final);
}

TEST_CASE("cancelling a running attempt stops it and records it cancelled when it exits") {
  Harness h;
  auto a = Harness::MakeAttempt(1, 1, 5);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  CHECK(h.attempts.Cancel(1));
  CHECK(h.executor.stop_requests == std::vector<JobId>{1});
  h.Exit(a, JobState::kFailed);  // killed: a failure, were it not cancelled
  REQUIRE(h.writes.size() == 1);
  CHECK(h.writes[0].outcome.job_state == JobState::kCancelled);
  h.ResultWritten();
  auto ended = h.attempts.TakeEnded();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].final);
  CHECK(ended[0].outcome.error == "cancelled");
}

TEST_CASE("an attempt still waiting for the snapshots cannot be cancelled as running") {
  Harness h;
  h.attempts.Launch({Harness::MakeAttempt(1)});
  CHECK_FALSE(h.attempts.Cancel(1));
  CHECK(h.executor.stop_requests.empty());
  CHECK_FALSE(h.attempts.Cancel(99));
}

TEST_CASE("the shutdown stops running attempts and they end as interruptions, requeued") {
  Harness h;
  auto a = Harness::MakeAttempt(1, 3, 3);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.attempts.StopAll();
  CHECK(h.executor.stop_all_calls == 1);
  CHECK_FALSE(h.attempts.Settled());
  h.Exit(a, JobState::kFailed);
  auto ended = h.attempts.TakeEnded();
  REQUIRE(ended.size() == 1);
  CHECK_FALSE(ended[0].final);
  CHECK(ended[0].outcome.interrupted);
  CHECK(ended[0].outcome.run.status == "lost");
  CHECK(*ended[0].outcome.retry_at == h.clock.NowMs());
  CHECK(h.attempts.Settled());
}

TEST_CASE("an attempt whose snapshots arrive after the shutdown never starts and ends as an interruption") {
  Harness h;
  h.attempts.Launch({Harness::MakeAttempt(1)});
  h.attempts.StopAll();
  h.SnapshotsWritten();
  CHECK(h.executor.started.empty());
  auto ended = h.attempts.TakeEnded();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].outcome.interrupted);
  CHECK(ended[0].outcome.run.duration_ms == 0);
}

TEST_CASE("the lifecycle is settled only when nothing waits, runs, is written or waits to be recorded") {
  Harness h;
  CHECK(h.attempts.Settled());
  auto a = Harness::MakeAttempt(1);
  h.attempts.Launch({a});
  CHECK_FALSE(h.attempts.Settled());  // waiting for the snapshots
  h.SnapshotsWritten();
  CHECK_FALSE(h.attempts.Settled());  // running
  h.Exit(a, JobState::kSucceeded);
  CHECK_FALSE(h.attempts.Settled());  // writing its result file
  h.ResultWritten();
  CHECK_FALSE(h.attempts.Settled());  // its end not yet taken
  CHECK(h.attempts.Count(Phase::kEnded) == 1);
  h.attempts.TakeEnded();
  CHECK(h.attempts.Settled());
}

TEST_CASE("an attempt is in flight from its launch until its agent has ended") {
  Harness h;
  auto a = Harness::MakeAttempt(1);
  CHECK(h.attempts.InFlight() == 0);
  h.attempts.Launch({a});
  CHECK(h.attempts.InFlight() == 1);  // waiting for the snapshots
  h.SnapshotsWritten();
  CHECK(h.attempts.InFlight() == 1);  // running
  h.Exit(a, JobState::kSucceeded);
  CHECK(h.attempts.InFlight() == 0);  // writing its result file
}

TEST_CASE("a blocked result file does not keep the lifecycle from settling") {
  Harness h;
  auto a = Harness::MakeAttempt(1);
  h.attempts.Launch({a});
  h.SnapshotsWritten();
  h.Exit(a, JobState::kSucceeded);
  h.ResultWritten(Status::NoSpace("full"));
  CHECK(h.attempts.Settled());
  CHECK(h.attempts.Count(Phase::kResultBlocked) == 1);
}

}  // namespace dropq::app
