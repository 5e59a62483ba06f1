#pragma once
// What the daemon does when a job a waiting job names ends (docs/FILES.md,
// "Dependencies"): the waiting job is released into the queue, cancelled
// (a dependency failed or was cancelled under the default policy) — with
// its result file, its on_finish delivery, and the same for the jobs that
// wait on it in turn — or left waiting.
//
// Everything happens inside the caller's open transaction, so a job's end
// and what it released or cancelled commit together; the result file of a
// cancelled job is written before that commit, as for every other final
// state (a crash in between writes it again: the waiting job is settled
// again at the next start).
#include <functional>
#include <vector>

#include "base/status.h"
#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "jobs/store.h"

namespace dropq::app {

class Dependencies {
 public:
  // Called for each job cancelled here, before the commit: its on_finish
  // outbox row (daemon/notifier.h).
  using Finished = std::function<Status(const Job& job, const RunOutcome& outcome)>;

  Dependencies(Store& store, const Layout& layout, Dispatcher& dispatcher, Finished finished)
      : store_(store), layout_(layout), dispatcher_(dispatcher), finished_(std::move(finished)) {}

  // Decides the waiting jobs `ids`: each is released (added to the
  // dispatcher and to `released`), cancelled (and the jobs waiting on it
  // decided in turn), or left waiting.
  Status Settle(const std::vector<JobId>& ids, std::vector<QueuedJob>& released);
  // `job` ended (succeeded, failed after its retries, or cancelled): decides
  // the jobs waiting on it.
  Status Ended(JobId job, std::vector<QueuedJob>& released);

 private:
  Status Cancel(JobId id, JobId blocker, JobState blocker_state, std::vector<JobId>& ended);

  Store& store_;
  const Layout& layout_;
  Dispatcher& dispatcher_;
  Finished finished_;
};

}  // namespace dropq::app
