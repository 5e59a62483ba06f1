#pragma once
// The attempt lifecycle (docs/DESIGN.md, "Attempts"): one state machine from
// the moment an attempt's start is committed to the moment its end is handed
// to the transaction that records it.
//
//   Launch ─► waiting_snapshots ─► running ─► writing_result ─► ended ─► (TakeEnded)
//                                     │            │    ▲
//                                     │            ▼    │ RetryBlocked
//                                     │        result_blocked (no space)
//                                     └──────────────────► ended   (not final: retried)
//
// An attempt ends in one place (Conclude): the retry policy (jobs/retry.h)
// decides what the runner's outcome means for the job; a final outcome
// gets its result file written first (off the loop, through the
// write_result hook), and only then is the end handed over, so no job is
// ever recorded over without its result file. No clock, loop or process is
// touched directly: the executor, the clock, the jitter and the hooks are
// injected, and tests/daemon/attempts_test.cc drives every transition.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/job.h"
#include "jobs/retry.h"
#include "jobs/store.h"
#include "runner/runner.h"

namespace dropq::app {

class Attempts {
 public:
  enum class Phase { kWaitingSnapshots, kRunning, kWritingResult, kResultBlocked, kEnded };

  // An attempt that is over, its end not yet recorded.
  struct End {
    Job job;
    RunOutcome outcome;
    bool final = true;
  };

  struct Hooks {
    // Calls `then` once the snapshot files attempts may read are current.
    std::function<void(std::function<void()> then)> after_snapshots;
    // Writes a final outcome's result file (off the loop) and calls
    // `written` back on the loop with the outcome and the path or the error.
    using Written = std::function<void(RunOutcome, Result<std::string>)>;
    std::function<void(const Job&, RunOutcome, Written written)> write_result;
    // An end is ready for TakeEnded (the group may run its next job).
    std::function<void(const End&)> ended;
    // A result file could not be written for lack of space: RetryBlocked()
    // is due in `delay_ms`.
    std::function<void(std::uint64_t delay_ms)> retry_later;
    // Optional: an attempt was handed to the executor.
    std::function<void(const runner::Attempt&)> spawned;
    // Optional: a launched batch has been handed over (or ended at once).
    std::function<void()> launched;
  };

  // `jitter` draws uniformly from [0, 1] for the retry backoff.
  Attempts(runner::AttemptExecutor& executor, const Clock& clock, Hooks hooks, std::function<double()> jitter);

  // Attempts whose start is committed: spawned once the snapshots are
  // current. After StopAll they end at once, as the running ones do.
  void Launch(std::vector<runner::Attempt> attempts);
  // The executor's report: the attempt's agent is gone.
  void Exited(const Job& job, RunOutcome outcome);
  // Stops a running attempt that is then recorded cancelled; false when the
  // job has no running attempt.
  bool Cancel(JobId job);
  // The shutdown: stops every running attempt; they and any launched later
  // end as interruptions (requeued).
  void StopAll();
  bool stopped() const { return stopped_; }
  // Tries again the result files that met a full disk.
  void RetryBlocked();

  // The ends ready to be recorded, oldest first; they leave the lifecycle.
  std::vector<End> TakeEnded();

  std::optional<Phase> PhaseOf(JobId job) const;
  std::size_t Count(Phase phase) const;
  std::size_t running() const { return executor_.active(); }
  // Attempts whose start is recorded and whose agent has not ended yet:
  // running, or about to start once the snapshots are written.
  std::size_t InFlight() const { return Count(Phase::kWaitingSnapshots) + Count(Phase::kRunning); }
  // Nothing launched, running, being written or waiting to be recorded
  // (blocked result files do not count: a shutdown leaves them to the
  // next start).
  bool Settled() const;

 private:
  // The one place an attempt ends.
  void Conclude(const Job& job, RunOutcome outcome, bool final);
  void Written(const Job& job, RunOutcome outcome, const Result<std::string>& path);
  void WriteResult(const Job& job, RunOutcome outcome);

  runner::AttemptExecutor& executor_;
  const Clock& clock_;
  Hooks hooks_;
  std::function<double()> jitter_;
  std::map<JobId, Phase> phases_;
  std::set<JobId> cancel_requested_;  // running attempts stopped because their job was cancelled
  std::vector<End> ended_;
  std::vector<std::pair<Job, RunOutcome>> blocked_;  // final, result file not written yet
  std::uint64_t blocked_retry_ms_ = 0;
  bool stopped_ = false;
};

const char* ToString(Attempts::Phase phase);

}  // namespace dropq::app
