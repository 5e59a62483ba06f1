#pragma once
// What an attempt's end means for its job (docs/DESIGN.md, "Retries,
// shutdown, recovery"): pure, so every branch is unit-tested
// (tests/jobs/retry_test.cc) without a loop, a clock or a process.
#include <cstdint>

#include "base/clock.h"
#include "jobs/job.h"
#include "jobs/store.h"

namespace dropq {

// Retry backoff: exponential with full jitter, 5 s base, 10 min cap.
inline constexpr TimeMs kRetryBaseMs = 5'000;
inline constexpr TimeMs kRetryCapMs = 600'000;

// Why the attempt ended, as the daemon knows it (the outcome says how).
enum class EndCause {
  kExited,     // the agent ended (or could not start) on its own
  kCancelled,  // someone cancelled the job while it ran
  kShutdown,   // dropq's own graceful shutdown stopped it
};

// The upper bound of the delay before the next attempt, after `counted`
// counted attempts (Job::CountedAttempts; at least 1): min(cap, base × 2^(counted-1)).
TimeMs RetryCeilingMs(std::int64_t counted);

struct AttemptVerdict {
  RunOutcome outcome;  // with status, error, retry_at and interrupted set as recorded
  bool final = true;   // the job is over (its result file is written first)
};

// `job` as the attempt started it (attempts counted), `o` the runner's
// outcome, `now` the end, `jitter` a uniform draw in [0, 1] for the backoff.
// - cancelled: final, `cancelled`, never retried;
// - shutdown of a failed attempt: `lost`, an interruption, requeued now;
// - failed with counted attempts left: queued again at now + jitter × ceiling;
// - otherwise final as the outcome says.
AttemptVerdict DecideEnd(const Job& job, RunOutcome o, EndCause cause, TimeMs now, double jitter);

}  // namespace dropq
