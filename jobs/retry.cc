#include "jobs/retry.h"

#include <algorithm>
#include <cmath>

namespace dropq {

TimeMs RetryCeilingMs(std::int64_t counted) {
  counted = std::max<std::int64_t>(1, counted);
  return std::min(kRetryCapMs, kRetryBaseMs << std::min<std::int64_t>(counted - 1, 20));
}

AttemptVerdict DecideEnd(const Job& job, RunOutcome o, EndCause cause, TimeMs now, double jitter) {
  AttemptVerdict v;
  if (cause == EndCause::kCancelled) {
    o.job_state = JobState::kCancelled;
    o.run.status = "cancelled";
    o.error = o.run.error = "cancelled";
  } else if (cause == EndCause::kShutdown && o.job_state == JobState::kFailed) {
    // Not the job's fault: requeued at once, an interruption rather than
    // one of its attempts, and never a reason to fail it (only recovery
    // after a kill checks max_interruptions).
    o.run.status = "lost";
    o.error = o.run.error = "stopped by dropq shutdown";
    o.retry_at = now;
    o.interrupted = true;
    v.final = false;
  } else if (o.job_state == JobState::kFailed && job.CountedAttempts() < job.max_attempts) {
    // Attempts dropq's stops cut short count neither here nor in the backoff.
    const TimeMs ceiling = RetryCeilingMs(job.CountedAttempts());
    const double unit = std::clamp(jitter, 0.0, 1.0);
    o.retry_at = now + static_cast<TimeMs>(std::llround(unit * static_cast<double>(ceiling)));
    v.final = false;
  }
  v.outcome = std::move(o);
  return v;
}

}  // namespace dropq
