#pragma once
// Dependencies between jobs (docs/FILES.md, "Dependencies"): the SQL of
// `job_deps`. A job that names others in `after` is stored `waiting` with one
// edge per dependency; what a waiting job becomes is decided from the states
// of the jobs it names, so the answer is the same whenever it is asked (at
// the end of a dependency, at ingest, at start-up).
//
// All of these run inside the caller's transaction; the daemon
// (daemon/dependencies.h) decides when to ask and writes the result files.
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "jobs/dispatcher.h"
#include "jobs/job.h"
#include "jobs/store.h"

namespace dropq::deps {

// `job` waits for each of `on` (job ids that exist).
Status AddEdges(Store& store, JobId job, const std::vector<JobId>& on);

// What a waiting job is to do now, from its policy and its dependencies'
// states.
struct Verdict {
  enum class Kind { kWait, kRelease, kCancel };
  Kind kind = Kind::kWait;
  // kCancel: the dependency that failed or was cancelled (the lowest id).
  JobId blocker = 0;
  JobState blocker_state = JobState::kFailed;
};
Result<Verdict> Evaluate(Store& store, JobId job);

// waiting → queued, with a `released` event; nullopt when the job was not
// waiting (nothing changed).
Result<std::optional<QueuedJob>> Release(Store& store, JobId job);

// The waiting jobs that name `dep`, lowest id first.
Result<std::vector<JobId>> WaitingOn(Store& store, JobId dep);
// Every waiting job, lowest id first (start-up).
Result<std::vector<JobId>> ListWaiting(Store& store);

// One end of an edge, for `dropq job` and the dashboard.
struct Link {
  JobId id = 0;
  std::string group;
  std::optional<std::string> client_id;
  JobState state = JobState::kQueued;
};
// The jobs `job` waits for (or waited for), by id.
Result<std::vector<Link>> DependenciesOf(Store& store, JobId job);
// The jobs that wait (or waited) for `job`, by id.
Result<std::vector<Link>> DependentsOf(Store& store, JobId job);

}  // namespace dropq::deps
