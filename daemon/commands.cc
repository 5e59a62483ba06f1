#include "daemon/commands.h"

#include <spdlog/spdlog.h>

#include "base/text.h"
#include "jobs/dependencies.h"
#include "runner/runner.h"
#include "watcher/authorize.h"

namespace dropq::app {

// Control commands dropped into tasks/ (watcher::CommandHandler).
Result<std::string> ControlCommands::Apply(const watcher::IngestGroup& from, const watcher::ClaimedFile& file,
                                           const watcher::JobCommand& cmd) {
  if (auto r = ApplyTaskCommand(from, file, cmd)) {
    if (r->ok()) hooks_.snapshots_changed();
    return std::move(*r);
  }
  if (const auto* r = std::get_if<watcher::RegisterGroup>(&cmd)) return RegisterGroup(from, cmd, *r);
  if (std::holds_alternative<watcher::RefreshGroups>(cmd)) return RefreshGroups(from, cmd);
  const auto* cancel = std::get_if<watcher::CancelJob>(&cmd);
  const auto* retry = std::get_if<watcher::RetryJob>(&cmd);
  JobId id = cancel ? cancel->job_id : retry->job_id;
  auto job = p_.store.GetJob(id);
  if (!job.ok()) return job.status();
  std::optional<std::string> owner;
  if (*job) owner = (*job)->group;
  auto allowed = watcher::Authorize(from, p_.groups.identities(), cmd, owner);
  if (!allowed.ok()) return allowed.status();
  nlohmann::json by = {{"by_group", from.folder}, {"file", file.name}};
  return cancel ? CancelJob(**job, by) : RetryJob(**job, by);
}

// register_group: main adds a group (or updates one it registered),
// which is served at once: its directories made, its tasks/ and
// messages/ watched, its files already there ingested.
Result<std::string> ControlCommands::RegisterGroup(const watcher::IngestGroup& from, const watcher::JobCommand& command,
                                                   const watcher::RegisterGroup& cmd) {
  auto allowed = watcher::Authorize(from, p_.groups.identities(), command);
  if (!allowed.ok()) return allowed.status();
  if (Status s = p_.groups.CheckRegistrable(cmd.folder); !s.ok()) return s;
  RegisteredGroup row = ToRegisteredGroup(cmd);
  auto group = ToGroupConfig(row);
  if (!group.ok()) return group.status();
  if (Status s = hooks_.prepare_group(cmd.folder); !s.ok()) return s;
  // A savepoint: the Ingestor's transaction around Apply commits it with
  // the file's `applied` event.
  Status s = p_.store.Savepoint("register_group");
  Result<bool> added = s.ok() ? p_.store.UpsertRegisteredGroup(row) : Result<bool>(s);
  nlohmann::json detail = {{"folder", cmd.folder}, {"jid", cmd.jid}, {"name", cmd.name}, {"by_group", from.folder}};
  if (added.ok()) {
    detail["action"] = *added ? "registered" : "updated";
    s = p_.store.AppendEvent(std::nullopt, cmd.folder, "group_registered", text::Dump(detail));
  } else {
    s = added.status();
  }
  if (s.ok()) s = p_.store.Release("register_group");
  if (!s.ok()) {
    if (Status u = p_.store.RollbackTo("register_group"); !u.ok()) {
      spdlog::error("register_group: cannot undo its savepoint: {}", u.message());
    }
    return s;
  }
  const GroupConfig registered = *group;
  p_.groups.Put(std::move(*group));
  hooks_.group_registered(registered);
  spdlog::info("group {} {} by {}: drop job files into {}", cmd.folder, detail["action"].get<std::string>(),
               from.folder, p_.layout.TasksDir(cmd.folder).string());
  hooks_.snapshots_changed();
  return text::Dump(detail);
}

// refresh_groups: main's available_groups.json is rewritten at once.
Result<std::string> ControlCommands::RefreshGroups(const watcher::IngestGroup& from, const watcher::JobCommand& cmd) {
  auto allowed = watcher::Authorize(from, p_.groups.identities(), cmd);
  if (!allowed.ok()) return allowed.status();
  if (Status s = p_.snapshots.WriteNow(p_.store, p_.groups.identities(), from.folder, /*refresh=*/true); !s.ok()) {
    return s;
  }
  return text::Dump(nlohmann::json{{"action", "refreshed"}, {"groups", p_.groups.all().size()}});
}

// schedule_task, pause_task, resume_task, cancel_task, update_task; nullopt for any
// other command.
std::optional<Result<std::string>> ControlCommands::ApplyTaskCommand(const watcher::IngestGroup& from,
                                                                     const watcher::ClaimedFile& file,
                                                                     const watcher::JobCommand& cmd) {
  if (const auto* s = std::get_if<watcher::ScheduleTask>(&cmd)) {
    auto allowed = watcher::Authorize(from, p_.groups.identities(), cmd);
    if (!allowed.ok()) return Result<std::string>(allowed.status());
    return p_.tasks.Schedule(*s, allowed->folder, allowed->chat_jid, file.token);
  }
  const std::string* id = nullptr;
  if (const auto* c = std::get_if<watcher::PauseTask>(&cmd)) id = &c->task_id;
  if (const auto* c = std::get_if<watcher::ResumeTask>(&cmd)) id = &c->task_id;
  if (const auto* c = std::get_if<watcher::CancelTask>(&cmd)) id = &c->task_id;
  const auto* update = std::get_if<watcher::UpdateTask>(&cmd);
  if (update) id = &update->task_id;
  if (id == nullptr) return std::nullopt;
  auto allowed = watcher::Authorize(from, p_.groups.identities(), cmd, p_.tasks.OwnerOf(*id));
  if (!allowed.ok()) return Result<std::string>(allowed.status());
  if (update) return p_.tasks.Update(*id, update->changes);
  if (std::holds_alternative<watcher::PauseTask>(cmd)) return p_.tasks.Pause(*id);
  if (std::holds_alternative<watcher::ResumeTask>(cmd)) return p_.tasks.Resume(*id);
  return p_.tasks.Cancel(*id);
}

// A queued job is cancelled at once, a running one is stopped (graceful,
// then kill) and recorded cancelled when it ends; a finished one is left as
// it is and the file rejected with its state, so `dropq cancel` says so.
Result<std::string> ControlCommands::CancelJob(const Job& job, nlohmann::json detail) {
  if (job.state == JobState::kQueued || job.state == JobState::kWaiting) {
    // As for an attempt's end (daemon/attempts.h): the result file before
    // the commit that makes the job final.
    RunOutcome o;
    o.job_state = JobState::kCancelled;
    o.error = "cancelled";
    o.run.attempt = job.attempts;
    if (auto path = runner::WriteResultFile(p_.layout, job, o); !path.ok()) {
      spdlog::error("job {}: cannot write result: {}", job.id, path.status().message());
    }
    // A savepoint: the cancel and its on_finish delivery commit together
    // (in the caller's transaction, or on their own when there is none).
    Status s = p_.store.Savepoint("cancel_job");
    Result<bool> done = s.ok() ? p_.store.CancelQueued(job.id, text::Dump(detail)) : Result<bool>(s);
    if (done.ok() && *done && hooks_.finished) {
      Job final = job;
      final.state = JobState::kCancelled;
      if (Status f = hooks_.finished(final, o); !f.ok()) done = f;
    }
    // The jobs waiting on it are decided in the same savepoint.
    std::vector<QueuedJob> released;
    if (done.ok() && *done) {
      if (Status d = p_.deps.Ended(job.id, released); !d.ok()) done = d;
    }
    if (!released.empty()) hooks_.queue_changed();
    if (done.ok()) s = p_.store.Release("cancel_job");
    if (!done.ok() || !s.ok()) {
      if (Status u = p_.store.RollbackTo("cancel_job"); !u.ok()) {
        spdlog::error("cancel: cannot undo its savepoint: {}", u.message());
      }
      return done.ok() ? s : done.status();
    }
    if (Status s = p_.tasks.JobFinished(job.id, JobState::kCancelled, std::nullopt, "cancelled", std::nullopt);
        !s.ok()) {
      spdlog::error("job {}: cannot record its task run: {}", job.id, s.message());
    }
    p_.dispatcher.Remove(job.id);
    spdlog::info("job {} cancelled", job.id);
    return text::Dump(nlohmann::json{{"job", job.id}, {"action", "cancelled"}});
  }
  if (job.state == JobState::kRunning && p_.attempts.Cancel(job.id)) {
    spdlog::info("job {} cancelled while running: stopping it", job.id);
    return text::Dump(nlohmann::json{{"job", job.id}, {"action", "stopping"}});
  }
  // Nothing to cancel: a verdict the command can show (docs/CLI.md).
  if (job.state == JobState::kRunning) {
    return Status::InvalidArgument("job " + std::to_string(job.id) +
                                   " is starting or writing its result; cancel it again in a moment");
  }
  return Status::InvalidArgument("job " + std::to_string(job.id) + " has finished (" +
                                 std::string(ToString(job.state)) + "); only queued or running jobs can be cancelled");
}

// A job with dependencies goes back to waiting for them (or to the queue when
// they have all ended as it needs); one whose dependency failed or was
// cancelled is refused, naming it: retry that one first (docs/FILES.md).
Result<std::string> ControlCommands::RetryJob(const Job& job, nlohmann::json detail) {
  bool waiting = false;
  if (job.after_policy && (job.state == JobState::kFailed || job.state == JobState::kCancelled)) {
    auto v = deps::Evaluate(p_.store, job.id);
    if (!v.ok()) return v.status();
    if (v->kind == deps::Verdict::Kind::kCancel) {
      return Status::InvalidArgument("job " + std::to_string(job.id) + " runs after job " +
                                     std::to_string(v->blocker) + ", which " +
                                     (v->blocker_state == JobState::kFailed ? "failed" : "was cancelled") +
                                     "; retry that one first");
    }
    waiting = v->kind == deps::Verdict::Kind::kWait;
  }
  auto done = p_.store.Requeue(job.id, text::Dump(detail), waiting);
  if (!done.ok()) return done.status();
  if (!*done) {
    return Status::InvalidArgument("job " + std::to_string(job.id) + " is " + std::string(ToString(job.state)) +
                                   "; only failed or cancelled jobs can be retried");
  }
  if (waiting) {
    spdlog::info("job {} requeued with fresh attempts; waiting for its dependencies", job.id);
    return text::Dump(nlohmann::json{{"job", job.id}, {"action", "requeued"}, {"state", "waiting"}});
  }
  p_.dispatcher.Add({job.id, job.group, job.priority, p_.clock.NowMs()});
  hooks_.queue_changed();
  spdlog::info("job {} requeued with fresh attempts", job.id);
  return text::Dump(nlohmann::json{{"job", job.id}, {"action", "requeued"}});
}

}  // namespace dropq::app
