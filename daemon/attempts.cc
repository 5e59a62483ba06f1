#include "daemon/attempts.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

namespace dropq::app {

const char* ToString(Attempts::Phase phase) {
  switch (phase) {
    case Attempts::Phase::kWaitingSnapshots:
      return "waiting_snapshots";
    case Attempts::Phase::kRunning:
      return "running";
    case Attempts::Phase::kWritingResult:
      return "writing_result";
    case Attempts::Phase::kResultBlocked:
      return "result_blocked";
    case Attempts::Phase::kEnded:
      return "ended";
  }
  return "unknown";
}

Attempts::Attempts(runner::AttemptExecutor& executor, const Clock& clock, Hooks hooks, std::function<double()> jitter)
    : executor_(executor), clock_(clock), hooks_(std::move(hooks)), jitter_(std::move(jitter)) {}

void Attempts::Launch(std::vector<runner::Attempt> attempts) {
  if (attempts.empty()) return;
  for (const auto& a : attempts) phases_[a.job.id] = Phase::kWaitingSnapshots;
  hooks_.after_snapshots([this, attempts = std::move(attempts)]() mutable {
    for (auto& a : attempts) {
      if (stopped_) {
        // The shutdown stopped the running attempts while this one waited:
        // it ends like them, an interruption.
        RunOutcome o;
        o.run = a.run;
        o.run.finished_at = clock_.NowMs();
        o.run.duration_ms = 0;
        o.job_state = JobState::kFailed;
        phases_[a.job.id] = Phase::kRunning;
        Exited(a.job, std::move(o));
        continue;
      }
      phases_[a.job.id] = Phase::kRunning;
      if (hooks_.spawned) hooks_.spawned(a);
      executor_.Start(std::move(a));
    }
    if (hooks_.launched) hooks_.launched();
  });
}

void Attempts::Exited(const Job& job, RunOutcome outcome) {
  EndCause cause = stopped_ ? EndCause::kShutdown : EndCause::kExited;
  if (cancel_requested_.erase(job.id) > 0) cause = EndCause::kCancelled;
  AttemptVerdict v = DecideEnd(job, std::move(outcome), cause, clock_.NowMs(), jitter_());
  if (!v.final) {
    Conclude(job, std::move(v.outcome), false);
    return;
  }
  WriteResult(job, std::move(v.outcome));
}

// A final outcome writes the result file first, then is recorded: a crash
// between the two leaves the attempt `running` in the database, so it is
// recovered as lost and run again, and the file is rewritten. The other
// order lost result files for good (found by the chaos suite).
void Attempts::WriteResult(const Job& job, RunOutcome outcome) {
  phases_[job.id] = Phase::kWritingResult;
  hooks_.write_result(job, std::move(outcome),
                      [this, job](RunOutcome o, Result<std::string> path) { Written(job, std::move(o), path); });
}

// When the file cannot be written for lack of space (ENOSPC, EDQUOT) the
// job is not recorded as ended either: it is tried again with backoff, and
// its group waits, so no job ends without its result file.
void Attempts::Written(const Job& job, RunOutcome outcome, const Result<std::string>& path) {
  if (!path.ok() && path.status().code() == Status::Code::kNoSpace) {
    blocked_retry_ms_ = std::min<std::uint64_t>(30'000, blocked_retry_ms_ ? blocked_retry_ms_ * 2 : 1'000);
    spdlog::error("job {}: cannot write its result file: {}; the job ends when it is written (next try in {} ms)",
                  job.id, path.status().message(), blocked_retry_ms_);
    phases_[job.id] = Phase::kResultBlocked;
    blocked_.emplace_back(job, std::move(outcome));
    hooks_.retry_later(blocked_retry_ms_);
    return;
  }
  if (!path.ok()) {
    // Not a passing fault (the group planted a symlink, say): logged, and
    // the job ends without it.
    spdlog::error("job {}: cannot write result: {}", job.id, path.status().message());
  } else {
    blocked_retry_ms_ = 0;  // the disk has room again
  }
  Conclude(job, std::move(outcome), true);
}

void Attempts::RetryBlocked() {
  auto pending = std::move(blocked_);
  blocked_.clear();
  for (auto& [job, outcome] : pending) WriteResult(job, std::move(outcome));
}

void Attempts::Conclude(const Job& job, RunOutcome outcome, bool final) {
  phases_[job.id] = Phase::kEnded;
  ended_.push_back({job, std::move(outcome), final});
  hooks_.ended(ended_.back());
}

std::vector<Attempts::End> Attempts::TakeEnded() {
  std::vector<End> out = std::move(ended_);
  ended_.clear();
  for (const auto& e : out) phases_.erase(e.job.id);
  return out;
}

bool Attempts::Cancel(JobId job) {
  auto p = phases_.find(job);
  if (p == phases_.end() || p->second != Phase::kRunning || !executor_.Stop(job)) return false;
  cancel_requested_.insert(job);
  return true;
}

void Attempts::StopAll() {
  if (stopped_) return;
  stopped_ = true;
  if (executor_.active() == 0) return;
  spdlog::info("stopping {} running job(s); they will be requeued", executor_.active());
  executor_.StopAll();
}

std::optional<Attempts::Phase> Attempts::PhaseOf(JobId job) const {
  auto p = phases_.find(job);
  if (p == phases_.end()) return std::nullopt;
  return p->second;
}

std::size_t Attempts::Count(Phase phase) const {
  return static_cast<std::size_t>(
      std::count_if(phases_.begin(), phases_.end(), [phase](const auto& p) { return p.second == phase; }));
}

bool Attempts::Settled() const {
  return std::all_of(phases_.begin(), phases_.end(), [](const auto& p) { return p.second == Phase::kResultBlocked; }) &&
         executor_.active() == 0;
}

}  // namespace dropq::app
