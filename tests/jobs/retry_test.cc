// The retry policy (jobs/retry.h): what an attempt's end means for its job.
#include "jobs/retry.h"

#include <catch2/catch.hpp>

namespace dropq {
namespace {

constexpr TimeMs kNow = 1'800'000'000'000;

Job Started(std::int64_t attempts, std::int64_t max_attempts, std::int64_t interruptions = 0) {
  Job j;
  j.id = 7;
  j.group = "team";
  j.attempts = attempts;
  j.max_attempts = max_attempts;
  j.interruptions = interruptions;
  return j;
}

RunOutcome Failed() {
  RunOutcome o;
  o.job_state = JobState::kFailed;
  o.run.status = "failed";
  o.error = o.run.error = "Container exited with code 1";
  return o;
}

}  // namespace

TEST_CASE("the retry ceiling doubles from five seconds per counted attempt") {
  CHECK(RetryCeilingMs(1) == 5'000);
  CHECK(RetryCeilingMs(2) == 10'000);
  CHECK(RetryCeilingMs(3) == 20'000);
  CHECK(RetryCeilingMs(7) == 320'000);
}

TEST_CASE("the retry ceiling stops at ten minutes however many attempts were made") {
  CHECK(RetryCeilingMs(8) == 600'000);
  CHECK(RetryCeilingMs(60) == 600'000);
  CHECK(RetryCeilingMs(1'000'000) == 600'000);
}

TEST_CASE("a retry ceiling for no counted attempt is the first one's") {
  CHECK(RetryCeilingMs(0) == 5'000);
  CHECK(RetryCeilingMs(-3) == 5'000);
}

TEST_CASE("a failed attempt with attempts left is queued again within the ceiling") {
  auto v = DecideEnd(Started(2, 3), Failed(), EndCause::kExited, kNow, 0.5);
  CHECK_FALSE(v.final);
  REQUIRE(v.outcome.retry_at);
  CHECK(*v.outcome.retry_at == kNow + 5'000);  // half of 10 s after the second attempt
  CHECK(v.outcome.job_state == JobState::kFailed);
  CHECK_FALSE(v.outcome.interrupted);
}

TEST_CASE("the jitter spans the whole ceiling from now to now plus the ceiling") {
  CHECK(*DecideEnd(Started(1, 3), Failed(), EndCause::kExited, kNow, 0.0).outcome.retry_at == kNow);
  CHECK(*DecideEnd(Started(1, 3), Failed(), EndCause::kExited, kNow, 1.0).outcome.retry_at == kNow + 5'000);
  // A draw outside [0, 1] is held to it.
  CHECK(*DecideEnd(Started(1, 3), Failed(), EndCause::kExited, kNow, 7.0).outcome.retry_at == kNow + 5'000);
  CHECK(*DecideEnd(Started(1, 3), Failed(), EndCause::kExited, kNow, -1.0).outcome.retry_at == kNow);
}

TEST_CASE("a failed last attempt is final and failed") {
  auto v = DecideEnd(Started(3, 3), Failed(), EndCause::kExited, kNow, 0.5);
  CHECK(v.final);
  CHECK(v.outcome.job_state == JobState::kFailed);
  CHECK_FALSE(v.outcome.retry_at);
  CHECK(v.outcome.error == "Container exited with code 1");
}

TEST_CASE("interrupted attempts do not count against max_attempts or in the backoff") {
  // Three attempts started, two cut short by dropq: one counted of two.
  auto v = DecideEnd(Started(3, 2, 2), Failed(), EndCause::kExited, kNow, 1.0);
  CHECK_FALSE(v.final);
  CHECK(*v.outcome.retry_at == kNow + 5'000);
}

TEST_CASE("a succeeded attempt is final whatever attempts are left") {
  RunOutcome o;
  o.job_state = JobState::kSucceeded;
  o.run.status = "succeeded";
  auto v = DecideEnd(Started(1, 5), o, EndCause::kExited, kNow, 0.5);
  CHECK(v.final);
  CHECK(v.outcome.job_state == JobState::kSucceeded);
  CHECK_FALSE(v.outcome.retry_at);
}

TEST_CASE("a cancelled attempt is final and cancelled, never retried") {
  auto v = DecideEnd(Started(1, 5), Failed(), EndCause::kCancelled, kNow, 0.5);
  CHECK(v.final);
  CHECK(v.outcome.job_state == JobState::kCancelled);
  CHECK(v.outcome.run.status == "cancelled");
  CHECK(v.outcome.error == "cancelled");
  CHECK(v.outcome.run.error == "cancelled");
  CHECK_FALSE(v.outcome.retry_at);
}

TEST_CASE("an attempt stopped by the shutdown is lost, an interruption, and requeued at once") {
  auto v = DecideEnd(Started(3, 3), Failed(), EndCause::kShutdown, kNow, 0.5);
  CHECK_FALSE(v.final);  // even on its last attempt
  CHECK(v.outcome.run.status == "lost");
  CHECK(v.outcome.error == "stopped by dropq shutdown");
  CHECK(v.outcome.interrupted);
  CHECK(*v.outcome.retry_at == kNow);
}

TEST_CASE("an attempt that succeeded while the shutdown stopped it stays succeeded") {
  RunOutcome o;
  o.job_state = JobState::kSucceeded;
  auto v = DecideEnd(Started(1, 3), o, EndCause::kShutdown, kNow, 0.5);
  CHECK(v.final);
  CHECK(v.outcome.job_state == JobState::kSucceeded);
  CHECK_FALSE(v.outcome.interrupted);
}

}  // namespace dropq
