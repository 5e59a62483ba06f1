#include "jobs/retention.h"

namespace dropq {
namespace {

// The jobs a prune may remove: finished, ended before the cutoff (?1), and
// named by no waiting job (a dependency that ended stays while something
// still waits on it, docs/FILES.md "Dependencies"). Keep in step with the
// job_events_no_delete trigger (004_retention.sql), which is looser.
#define DROPQ_PRUNABLE                                                       \
  "SELECT id FROM jobs j WHERE state IN ('succeeded','failed','cancelled') " \
  "AND coalesce(finished_at, created_at) < ?1 "                              \
  "AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs w ON w.id = d.job_id " \
  "WHERE d.dep_id = j.id AND w.state = 'waiting')"

// Runs a DELETE ... RETURNING 1 and counts the rows it removed.
Result<std::int64_t> CountedDelete(SqlStmt& st) {
  std::int64_t n = 0;
  for (;;) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) return n;
    ++n;
  }
}

Result<PruneReport> PruneLocked(Store& store, TimeMs cutoff) {
  PruneReport rep;
  std::string at = FormatIsoUtc(cutoff);
  if (Status s =
          StoreSql::Prepare(store, "INSERT OR REPLACE INTO prune_window(id, cutoff) VALUES(1, ?1)").Bind(1, at).Run();
      !s.ok()) {
    return s;
  }
  {
    auto& q = StoreSql::Prepare(
                  store, "SELECT id, group_folder, source_group, source_name FROM jobs WHERE id IN (" DROPQ_PRUNABLE
                         ") ORDER BY id")
                  .Bind(1, at);
    for (;;) {
      auto row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      rep.jobs.push_back({q.Int(0), q.Text(1), q.OptText(2), q.OptText(3), {}});
    }
  }
  for (auto& j : rep.jobs) {
    auto& q = StoreSql::Prepare(
                  store, "SELECT log_file FROM job_runs WHERE job_id=?1 AND log_file IS NOT NULL ORDER BY attempt")
                  .Bind(1, j.id);
    for (;;) {
      auto row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      j.log_files.push_back(q.Text(0));
    }
  }
  // Children before parents: foreign keys are on.
  auto n = CountedDelete(
      StoreSql::Prepare(store, "DELETE FROM task_runs WHERE job_id IN (" DROPQ_PRUNABLE ") RETURNING 1").Bind(1, at));
  if (!n.ok()) return n.status();
  rep.task_runs = *n;
  n = CountedDelete(
      StoreSql::Prepare(store, "DELETE FROM job_events WHERE job_id IN (" DROPQ_PRUNABLE ") RETURNING 1").Bind(1, at));
  if (!n.ok()) return n.status();
  rep.events = *n;
  n = CountedDelete(
      StoreSql::Prepare(store, "DELETE FROM job_events WHERE job_id IS NULL AND at < ?1 RETURNING 1").Bind(1, at));
  if (!n.ok()) return n.status();
  rep.events += *n;
  n = CountedDelete(
      StoreSql::Prepare(store, "DELETE FROM job_runs WHERE job_id IN (" DROPQ_PRUNABLE ") RETURNING 1").Bind(1, at));
  if (!n.ok()) return n.status();
  rep.runs = *n;
  n = CountedDelete(
      StoreSql::Prepare(store, "DELETE FROM jobs WHERE id IN (" DROPQ_PRUNABLE ") RETURNING 1").Bind(1, at));
  if (!n.ok()) return n.status();
  if (static_cast<std::size_t>(*n) != rep.jobs.size()) {
    return Status::Conflict("jobs changed while pruning (" + std::to_string(*n) + " removed, " +
                            std::to_string(rep.jobs.size()) + " expected)");
  }
  // Close the window in the same transaction: once committed, job_events is
  // append-only again for everyone.
  if (Status s = StoreSql::Exec(store, "DELETE FROM prune_window"); !s.ok()) return s;
  return rep;
}

#undef DROPQ_PRUNABLE

}  // namespace

Result<PruneReport> PruneFinished(Store& store, TimeMs cutoff, bool dry_run) {
  if (Status s = store.Begin(); !s.ok()) return s;
  auto rep = PruneLocked(store, cutoff);
  if (!rep.ok() || dry_run) {
    store.Rollback();
    return rep;
  }
  if (Status s = store.Commit(); !s.ok()) {
    store.Rollback();
    return s;
  }
  return rep;
}

}  // namespace dropq
