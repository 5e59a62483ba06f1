#pragma once
// Retention of finished work (`dropq prune --older-than D`, docs/CLI.md).
//
// Only jobs that are finished (succeeded, failed, cancelled) and ended before
// the cutoff are removed, with their job_runs, job_events and task_runs rows,
// and rejection events (no job) recorded before the cutoff. Queued and
// running jobs are never touched, however old. Everything is deleted in one
// transaction through the store's writer connection; the append-only trigger
// on job_events lets these deletes through only inside prune's window
// (schema/migrations/004_retention.sql).
//
// Files (run logs, result files) are not removed here: the caller removes the
// ones named in the report after the commit, so a crash leaves at worst an
// orphaned file, never a row pointing at a missing one.
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/job.h"
#include "base/status.h"
#include "jobs/store.h"

namespace dropq {

struct PrunedJob {
  JobId id = 0;
  std::string group;
  std::optional<std::string> source_group;  // whose results/ got the result file
  std::optional<std::string> source_name;
  std::vector<std::string> log_files;  // job_runs.log_file of its attempts
};

struct PruneReport {
  std::vector<PrunedJob> jobs;
  std::int64_t runs = 0;
  std::int64_t events = 0;  // of the jobs and rejections removed
  std::int64_t task_runs = 0;
};

// Removes what ended before `cutoff`. With dry_run the same statements run and
// are rolled back, so the report says exactly what a real run would remove.
Result<PruneReport> PruneFinished(Store& store, TimeMs cutoff, bool dry_run);

}  // namespace dropq
