#include "jobs/dependencies.h"

#include <nlohmann/json.hpp>

#include "base/text.h"

namespace dropq::deps {
namespace {

Result<std::vector<JobId>> Ids(SqlStmt& q) {
  std::vector<JobId> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back(r.Int(0)); }); !s.ok()) return s;
  return out;
}

}  // namespace

Status AddEdges(Store& store, JobId job, const std::vector<JobId>& on) {
  for (JobId dep : on) {
    auto& ins = StoreSql::Prepare(store, "INSERT OR IGNORE INTO job_deps(job_id, dep_id) VALUES(?1, ?2)");
    if (Status s = ins.Bind(1, job).Bind(2, dep).Run(); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<Verdict> Evaluate(Store& store, JobId job) {
  auto& q = StoreSql::Prepare(store,
                              "SELECT d.dep_id, j.state, w.after_policy FROM job_deps d "
                              "JOIN jobs j ON j.id = d.dep_id JOIN jobs w ON w.id = d.job_id "
                              "WHERE d.job_id = ?1 ORDER BY d.dep_id")
                .Bind(1, job);
  Verdict v;
  v.kind = Verdict::Kind::kRelease;
  bool blocked = false;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    JobState st = ParseJobState(r.Text(1)).value_or(JobState::kFailed);
    bool need_success = r.OptText(2).value_or("succeeded") != "finished";
    if (need_success && (st == JobState::kFailed || st == JobState::kCancelled)) {
      if (!blocked) {
        blocked = true;
        v.blocker = r.Int(0);
        v.blocker_state = st;
      }
    } else if (!IsFinal(st)) {
      if (v.kind == Verdict::Kind::kRelease) v.kind = Verdict::Kind::kWait;
    }
  });
  if (!s.ok()) return s;
  // A failed dependency decides at once, whatever the others still do.
  if (blocked) v.kind = Verdict::Kind::kCancel;
  return v;
}

Result<std::optional<QueuedJob>> Release(Store& store, JobId job) {
  auto& up = StoreSql::Prepare(store,
                               "UPDATE jobs SET state='queued' WHERE id=?1 AND state='waiting' "
                               "RETURNING group_folder, priority, run_at")
                 .Bind(1, job);
  auto row = up.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<QueuedJob>();
  QueuedJob q{job, up.Text(0), up.Int(1), up.Time(2)};
  // Finish the RETURNING statement before the next write.
  if (auto done = up.Step(); !done.ok()) return done.status();
  auto deps = DependenciesOf(store, job);
  if (!deps.ok()) return deps.status();
  nlohmann::json after = nlohmann::json::array();
  for (const auto& d : *deps) after.push_back({{"job", d.id}, {"state", ToString(d.state)}});
  if (Status s = store.AppendEvent(job, q.group, "released", text::Dump(nlohmann::json{{"after", after}})); !s.ok()) {
    return s;
  }
  return std::optional<QueuedJob>(std::move(q));
}

Result<std::vector<JobId>> WaitingOn(Store& store, JobId dep) {
  auto& q = StoreSql::Prepare(store,
                              "SELECT d.job_id FROM job_deps d JOIN jobs w ON w.id = d.job_id "
                              "WHERE d.dep_id = ?1 AND w.state = 'waiting' ORDER BY d.job_id")
                .Bind(1, dep);
  return Ids(q);
}

Result<std::vector<JobId>> ListWaiting(Store& store) {
  auto& q = StoreSql::Prepare(store, "SELECT id FROM jobs WHERE state='waiting' ORDER BY id");
  return Ids(q);
}

// One side of the edges of `job`: the jobs it names, or the jobs naming it.
Result<std::vector<Link>> LinksOf(Store& store, JobId job, bool dependents) {
  auto& q = StoreSql::Prepare(store, dependents ? "SELECT j.id, j.group_folder, j.client_id, j.state FROM job_deps d "
                                                  "JOIN jobs j ON j.id = d.job_id WHERE d.dep_id = ?1 ORDER BY j.id"
                                                : "SELECT j.id, j.group_folder, j.client_id, j.state FROM job_deps d "
                                                  "JOIN jobs j ON j.id = d.dep_id WHERE d.job_id = ?1 ORDER BY j.id")
                .Bind(1, job);
  std::vector<Link> out;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    out.push_back({r.Int(0), r.Text(1), r.OptText(2), ParseJobState(r.Text(3)).value_or(JobState::kFailed)});
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Link>> DependenciesOf(Store& store, JobId job) { return LinksOf(store, job, false); }

Result<std::vector<Link>> DependentsOf(Store& store, JobId job) { return LinksOf(store, job, true); }

}  // namespace dropq::deps
