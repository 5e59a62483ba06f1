#include "daemon/dependencies.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/text.h"
#include "jobs/dependencies.h"
#include "runner/runner.h"

namespace dropq::app {

Status Dependencies::Settle(const std::vector<JobId>& ids, std::vector<QueuedJob>& released) {
  // A worklist, not recursion: a long chain of cancelled jobs is a loop.
  std::vector<JobId> todo(ids.rbegin(), ids.rend());
  while (!todo.empty()) {
    JobId id = todo.back();
    todo.pop_back();
    auto v = deps::Evaluate(store_, id);
    if (!v.ok()) return v.status();
    switch (v->kind) {
      case deps::Verdict::Kind::kWait:
        break;
      case deps::Verdict::Kind::kRelease: {
        auto q = deps::Release(store_, id);
        if (!q.ok()) return q.status();
        if (*q) {
          spdlog::info("job {}: what it waited for has ended; queued", id);
          dispatcher_.Add(**q);
          released.push_back(**q);
        }
        break;
      }
      case deps::Verdict::Kind::kCancel: {
        std::vector<JobId> ended;
        if (Status s = Cancel(id, v->blocker, v->blocker_state, ended); !s.ok()) return s;
        for (JobId e : ended) {
          auto next = deps::WaitingOn(store_, e);
          if (!next.ok()) return next.status();
          todo.insert(todo.end(), next->rbegin(), next->rend());
        }
        break;
      }
    }
  }
  return Status::Ok();
}

Status Dependencies::Ended(JobId job, std::vector<QueuedJob>& released) {
  auto waiting = deps::WaitingOn(store_, job);
  if (!waiting.ok()) return waiting.status();
  if (waiting->empty()) return Status::Ok();
  return Settle(*waiting, released);
}

Status Dependencies::Cancel(JobId id, JobId blocker, JobState blocker_state, std::vector<JobId>& ended) {
  auto job = store_.GetJob(id);
  if (!job.ok()) return job.status();
  if (!*job || (*job)->state != JobState::kWaiting) return Status::Ok();
  RunOutcome o;
  o.job_state = JobState::kCancelled;
  o.error = "dependency job " + std::to_string(blocker) + " " +
            (blocker_state == JobState::kFailed ? "failed" : "was cancelled");
  o.run.attempt = (*job)->attempts;
  // As for every final state: the result file before the commit.
  if (auto path = runner::WriteResultFile(layout_, **job, o); !path.ok()) {
    spdlog::error("job {}: cannot write result: {}", id, path.status().message());
  }
  nlohmann::json detail = {{"by", "dependency"}, {"after", blocker}, {"after_state", ToString(blocker_state)}};
  auto done = store_.CancelQueued(id, text::Dump(detail), *o.error);
  if (!done.ok()) return done.status();
  if (!*done) return Status::Ok();
  Job final = **job;
  final.state = JobState::kCancelled;
  final.error = o.error;
  if (finished_) {
    if (Status s = finished_(final, o); !s.ok()) return s;
  }
  spdlog::info("job {} cancelled: {}", id, *o.error);
  ended.push_back(id);
  return Status::Ok();
}

}  // namespace dropq::app
