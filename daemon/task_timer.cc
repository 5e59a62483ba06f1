#include "daemon/task_timer.h"
#include "base/text.h"
#include "base/guard.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <iterator>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace dropq::app {
namespace {

// How many due tasks one timer callback handles before yielding to the loop.
constexpr std::size_t kFireBatch = 512;
// The timer wakes this long before a slot: the pass reads and plans its
// tasks meanwhile, then holds the loop until the slot and only then makes
// the jobs (docs/SCHEDULER.md, "Timing"). Reading 200 tasks and planning
// them takes about 1.5 ms on a loaded 2-core VM; the margin also covers a
// loop turn still busy when the timer is due (a commit's fdatasync). With
// 3 ms, lag p99 was 4–7 ms in make bench; with 5 ms, 2–4 ms.
constexpr TimeMs kPrepareAheadMs = 5;
// The timer runs on the monotonic clock, so after a wall-clock step a task
// could wait out a stale delay. The timer therefore never sleeps longer than
// this: a step is noticed within 5 minutes even with no task due. (Not a
// poll: an idle daemon wakes at most every 5 minutes for it.)
constexpr TimeMs kMaxTimerDelayMs = 5 * 60'000;

// A task whose jobs are inserted on their own, each checked against its
// unique key, after the slot; every other task's go in the bulk insert.
bool InsertsAlone(const Task& t, const FirePlan& plan) { return t.unique_key.has_value() && !plan.fire.empty(); }

Task FromConfig(const ScheduleConfig& s, const Config& cfg) {
  Task t;
  t.id = s.id;
  t.group_folder = s.group;
  if (const GroupConfig* g = cfg.FindGroup(s.group)) t.chat_jid = g->jid ? *g->jid : g->folder;
  t.prompt = s.prompt;
  t.schedule_type = *ParseScheduleType(s.schedule_type);
  t.schedule_value = s.schedule_value;
  t.tz = s.tz.value_or("");
  t.context_mode = s.context_mode == "group" ? ContextMode::kGroup : ContextMode::kIsolated;
  if (s.overlap) t.overlap = *ParseOverlap(*s.overlap);
  if (s.catch_up) t.catch_up = *ParseCatchUp(*s.catch_up);
  if (s.catch_up_max) t.catch_up_max = *s.catch_up_max;
  t.starting_deadline_ms = s.starting_deadline_ms;
  if (s.keep_runs) t.keep_runs = *s.keep_runs;
  t.unique_key = s.unique_key;
  t.unique_for_ms = s.unique_for_ms;
  t.source = TaskSource::kConfig;
  return t;
}

}  // namespace

TaskTimer::TaskTimer(uv_loop_t* loop, Store& store, const Config& cfg, Hooks hooks)
    : loop_(loop), store_(store), cfg_(cfg), hooks_(std::move(hooks)), tasks_(store) {}

Result<std::vector<std::string>> TaskTimer::SyncConfig(const Config& cfg) {
  TimeMs now = store_.clock().NowMs();
  // Bulk: the default zone is resolved once (not a readlink of /etc/localtime
  // per task), the file tasks' ids are read once for the conflict check, and
  // each schedule is one upsert statement with nothing read back. 100,000
  // schedules: docs/PERFORMANCE.md, "Start-up".
  auto default_tz = ResolveZoneName(cfg.timezone);
  if (!default_tz.ok()) return default_tz.status();
  auto file_ids = tasks_.IdsFrom(TaskSource::kFile);
  if (!file_ids.ok()) return file_ids.status();
  std::set<std::string> ids;
  for (const auto& sc : cfg.schedules) {
    auto t = ValidateTask(FromConfig(sc, cfg), now, *default_tz);
    if (!t.ok()) return Status::InvalidArgument("schedule " + sc.id + ": " + t.status().message());
    if (file_ids->count(t->id)) return Status::Conflict("task \"" + t->id + "\" already exists from file");
    if (Status s = tasks_.Put(*t); !s.ok()) return s;
    ids.insert(sc.id);
  }
  // A reload may change any config task's schedule: each is compiled again
  // at its next fire.
  schedules_.Clear();
  return tasks_.RemoveConfigTasksExcept(ids);
}

Status TaskTimer::LoadQueue() {
  queue_ = TaskQueue();
  return tasks_.ForEachActiveNextRun([&](std::string id, TimeMs next_run) { queue_.Update(id, next_run); });
}

Status TaskTimer::Reloaded() {
  if (Status s = LoadQueue(); !s.ok()) return s;
  if (hooks_.changed) hooks_.changed();
  Arm();
  return Status::Ok();
}

Status TaskTimer::Start() {
  if (Status s = store_.Begin(); !s.ok()) return s;
  auto removed = SyncConfig(cfg_);
  if (!removed.ok()) {
    store_.Rollback();
    return removed.status();
  }
  if (Status s = store_.Commit(); !s.ok()) return s;
  for (const auto& id : *removed) spdlog::info("task {} removed: no longer in the config", id);

  if (Status s = LoadQueue(); !s.ok()) return s;
  CheckClockJump();  // sets the anchor
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  uv_timer_init(loop_, &prune_timer_);
  prune_timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&prune_timer_));
  started_ = true;
  spdlog::info("{} scheduled task(s) active", queue_.size());
  Arm();
  return Status::Ok();
}

void TaskTimer::Close() {
  if (!started_) return;
  started_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&prune_timer_), nullptr);
}

void TaskTimer::Arm() {
  if (!started_) return;
  auto next = queue_.NextWakeup();
  if (!next) {
    uv_timer_stop(&timer_);
    return;
  }
  // libuv counts the delay from the time it read at the start of this turn;
  // read it now, or the timer is early by whatever this turn has run so far
  // (a pass, its commit) and wakes for an empty pass before the real one.
  uv_update_time(loop_);
  TimeMs delay = std::clamp<TimeMs>(*next - store_.clock().NowMs() - kPrepareAheadMs, 0, kMaxTimerDelayMs);
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { Guard("task timer", [&] { static_cast<TaskTimer*>(t->data)->OnTimer(); }); },
      static_cast<std::uint64_t>(delay), 0);
  // A future task alone does not keep a `run --once` loop alive; the daemon
  // keeps the loop alive by its watchers in normal operation.
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void TaskTimer::CheckClockJump() {
  TimeMs wall = store_.clock().NowMs();
  TimeMs mono = store_.clock().MonotonicMs();
  if (anchored_) {
    TimeMs expected = anchor_wall_ + (mono - anchor_mono_);
    if (ClockJumped(expected, wall, kClockJumpToleranceMs)) {
      spdlog::warn("the wall clock jumped by {} ms; re-planning scheduled tasks", wall - expected);
      if (auto active = tasks_.ActiveWithNextRun(); active.ok()) {
        for (const auto& t : *active) {
          auto next = NextRunAfterClockJump(t, wall, wall - expected);
          if (next != t.next_run) {
            if (Status s = tasks_.SetNextRun(t.id, next); !s.ok()) {
              spdlog::error("task {}: cannot re-plan: {}", t.id, s.message());
              continue;
            }
          }
          queue_.Update(t.id, next);
        }
      }
    }
  }
  anchor_wall_ = wall;
  anchor_mono_ = mono;
  anchored_ = true;
}

void TaskTimer::OnTimer() {
  auto next = queue_.NextWakeup();
  TimeMs now = store_.clock().NowMs();
  if (next && *next > now && *next - now <= kPrepareAheadMs) {
    Tick(*next);
  } else {
    Tick();
  }
}

bool TaskTimer::WaitForSlot(TimeMs slot) {
  // Bounded in real time: a clock that does not move (a test's manual
  // clock) or steps back costs at most this much, never a hang.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(kPrepareAheadMs + 1);
  for (TimeMs now = store_.clock().NowMs(); now < slot; now = store_.clock().NowMs()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    // Most of the wait in one sleep, the last millisecond in short ones:
    // the clock is read in whole milliseconds.
    std::this_thread::sleep_for(slot - now > 1 ? std::chrono::microseconds((slot - now - 1) * 1000)
                                               : std::chrono::microseconds(50));
  }
  return true;
}

void TaskTimer::Tick(std::optional<TimeMs> at) {
  CheckClockJump();
  // `at`: a slot a moment away. The pass reads and plans as of it now, and
  // waits for it before inserting anything: no job exists before its slot.
  TimeMs now = at ? *at : store_.clock().NowMs();
  auto due = queue_.PopDue(now, kFireBatch);
  if (due.empty()) {
    // Woken before any task is due: no pass, no transaction, and nothing
    // the snapshots show has changed (main's lists every task).
    Arm();
    return;
  }
  // Group commit: every task due in this pass is recorded in ONE
  // transaction (one fsync, not one per task: 200 tasks due at the same
  // second took ~1 s with a commit each). The tasks are read in one
  // statement, and their run rows and next runs written in one each, so the
  // pass costs a few statements plus one insert per job fired
  // (docs/PERFORMANCE.md, "Scheduler"). A task whose jobs cannot be inserted
  // is undone alone (a savepoint) and retried in a minute.
  Pass p;
  Status pass = store_.Begin();
  if (pass.ok()) {
    auto loaded = tasks_.LoadDue(due);
    if (!loaded.ok()) pass = loaded.status();
    // In the order they were due (LoadDue's rows come in any order), each
    // planned: which slots fire, which are skipped and why.
    std::unordered_map<std::string_view, const DueTask*> by_id;
    if (pass.ok()) {
      for (const auto& d : *loaded) by_id.emplace(d.task.id, &d);
    }
    std::vector<std::pair<const DueTask*, FirePlan>> plans;
    for (const auto& id : due) {
      auto it = by_id.find(id);
      if (it == by_id.end() || it->second->task.status != TaskStatus::kActive) continue;
      const Task& t = it->second->task;
      plans.emplace_back(it->second, Plan(t, now, !it->second->active_jobs.empty(), schedules_.Get(t)));
    }
    // Before the slot: every task that makes its jobs in the bulk insert is
    // planned into the pass and the insert's text made. After it: the
    // tasks with a unique key, each checked and inserted on its own.
    auto fire = [&](bool alone) {
      for (const auto& [d, plan] : plans) {
        if (!pass.ok()) break;
        if (InsertsAlone(d->task, plan) != alone) continue;
        if (Status s = FireOne(d->task, d->active_jobs, plan, now, p); !s.ok()) {
          spdlog::error("task {}: cannot fire: {}; trying again in a minute", d->task.id, s.message());
          p.done.push_back({d->task.id, now + 60'000, ""});
        }
      }
    };
    fire(false);
    p.batch = Store::PreparePlainJobs(std::move(p.plain));
    if (at && !WaitForSlot(*at)) {
      // The clock did not get there (it stepped back, or a test holds it):
      // nothing is made early. The tasks wait for their slot again.
      store_.Rollback();
      for (const auto& [d, plan] : plans) queue_.Update(d->task.id, d->task.next_run);
      Arm();
      return;
    }
    fire(true);
    if (pass.ok()) pass = InsertPlain(p, now);
    // fired_at is when the rows are written, after the jobs and just before
    // the commit that makes them visible; the lag shown in /metrics is the
    // same instant against the slot.
    const TimeMs fired_at = store_.clock().NowMs();
    for (const auto& [d, plan] : plans) {
      if (!d->task.next_run) continue;
      ++fires_;
      last_lag_ms_ = fired_at - *d->task.next_run;
    }
    if (pass.ok()) pass = tasks_.RecordRuns(p.runs, fired_at);
    if (pass.ok()) pass = tasks_.SetNextRuns(p.next_runs);
  }
  if (pass.ok()) pass = store_.Commit();
  if (!pass.ok()) {
    store_.Rollback();
    spdlog::error("scheduled tasks: cannot record this pass: {}; trying again in a minute", pass.message());
    for (const auto& id : due) queue_.Update(id, now + 60'000);
    Arm();
    return;
  }
  for (const auto& d : p.done) {
    queue_.Update(d.id, d.next_run);
    if (!d.note.empty()) spdlog::info("{}", d.note);
  }
  for (auto& [id, keep] : p.prune) prune_[id] = keep;
  if (!prune_.empty() && started_) uv_timer_start(
      &prune_timer_, [](uv_timer_t* t) { Guard("task run pruning", [&] { static_cast<TaskTimer*>(t->data)->PruneFired(); }); },
      0, 0);
  if (!p.cancel.empty() && hooks_.cancel) hooks_.cancel(p.cancel);
  for (const auto& q : p.fired) hooks_.enqueued(q);
  if (hooks_.changed) hooks_.changed();
  Arm();
}

void TaskTimer::PruneFired() {
  if (prune_.empty()) return;
  auto pending = std::move(prune_);
  prune_.clear();
  // History only: a failure is logged and the rows wait for the task's next
  // fire. Its own transaction, after the pass committed, so a pass never
  // waits for it.
  Status s = store_.Begin();
  for (const auto& [id, keep] : pending) {
    if (!s.ok()) break;
    if (auto n = tasks_.PruneRuns(id, keep); !n.ok()) s = n.status();
  }
  if (s.ok()) s = store_.Commit();
  if (!s.ok()) {
    store_.Rollback();
    spdlog::warn("scheduled tasks: cannot prune run history: {}", s.message());
  }
}

Status TaskTimer::FireOne(const Task& t, const std::vector<JobId>& prev, const FirePlan& plan, TimeMs now,
                          Pass& p) {
  std::vector<TaskRunRow> rows;
  std::vector<QueuedJob> mine;
  // A task with a unique key inserts its jobs one by one (each is checked
  // against the key) under a savepoint, so a failure undoes this task
  // alone. Every other task's jobs wait for the pass's bulk insert
  // (Store::InsertPlainJobs), their run rows kept in place meanwhile.
  const bool one_by_one = InsertsAlone(t, plan);
  if (one_by_one) {
    if (Status s = store_.Savepoint("fire_one"); !s.ok()) return s;
  }
  auto fail = [&](const Status& s) {
    if (!one_by_one) return s;
    if (Status u = store_.RollbackTo("fire_one"); !u.ok()) {
      spdlog::error("task {}: cannot undo its savepoint: {}", t.id, u.message());
    }
    return s;
  };
  std::vector<std::size_t> pending;  // indexes into rows of slots for the bulk insert
  std::vector<Store::PlainJob> plain;
  for (TimeMs slot : plan.fire) {
    JobSource src{t.group_folder, "task-" + t.id, "", TaskSlotClaim(t.id, slot)};
    if (!one_by_one) {
      pending.push_back(rows.size());
      rows.push_back({t.id, slot, std::nullopt, std::nullopt});
      plain.push_back({t.group_folder, t.prompt, t.context_mode, std::move(src)});
      continue;
    }
    RunRequest req;
    req.prompt = t.prompt;
    req.context_mode = t.context_mode;
    req.unique_key = t.unique_key;
    req.unique_for_ms = t.unique_for_ms;
    auto ins = store_.InsertJob(t.group_folder, req, src, cfg_.max_attempts, cfg_.max_interruptions);
    if (!ins.ok()) return fail(ins.status());
    if (ins->duplicate) {
      // The task's unique key: an earlier job with it is active or recent.
      rows.push_back({t.id, slot, std::nullopt,
                      "duplicate of job " + std::to_string(ins->id) + " (" + std::string(ToString(ins->state)) +
                          ", unique_key \"" + t.unique_key.value_or("") + "\")"});
      continue;
    }
    rows.push_back({t.id, slot, ins->id, std::nullopt});
    mine.push_back({ins->id, t.group_folder, 0, now});
  }
  if (plan.completed) {
    if (Status s = tasks_.SetStatus(t.id, TaskStatus::kCompleted); !s.ok()) return fail(s);
  }
  if (one_by_one) {
    if (Status s = store_.Release("fire_one"); !s.ok()) return fail(s);
  }
  for (const auto& [slot, why] : plan.skipped) rows.push_back({t.id, slot, std::nullopt, why});

  if (plan.replace_previous) p.cancel.insert(p.cancel.end(), prev.begin(), prev.end());
  Fired d{t.id, plan.completed ? std::nullopt : plan.next_run, ""};
  if (!plan.fire.empty() || plan.skipped_total > 0) {
    d.note = "task " + t.id + " fired " + std::to_string(plan.fire.size()) + " job(s), skipped " +
             std::to_string(plan.skipped_total) + " slot(s); next run " +
             (plan.next_run ? FormatIsoUtc(*plan.next_run) : "none");
  }
  p.done.push_back(std::move(d));
  p.next_runs.emplace_back(t.id, plan.next_run);
  if (!rows.empty()) p.prune.emplace_back(t.id, t.keep_runs);
  for (std::size_t i : pending) p.plain_runs.push_back(p.runs.size() + i);
  p.plain.insert(p.plain.end(), std::make_move_iterator(plain.begin()), std::make_move_iterator(plain.end()));
  p.runs.insert(p.runs.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
  for (auto& q : mine) p.fired.push_back(std::move(q));
  return Status::Ok();
}

Status TaskTimer::InsertPlain(Pass& p, TimeMs now) {
  auto ids = store_.InsertPlainJobs(p.batch, cfg_.max_attempts, cfg_.max_interruptions);
  if (!ids.ok()) return ids.status();
  const auto& plain = p.batch.jobs;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    TaskRunRow& row = p.runs[p.plain_runs[i]];
    if (!(*ids)[i]) {
      // Its claim is taken: this slot made its job before (a clock set
      // back, a task re-created with an old id). Never a second job.
      row.error = "this slot already made a job (claim " + plain[i].src.claim + ")";
      continue;
    }
    row.job = (*ids)[i];
    p.fired.push_back({*row.job, plain[i].group, 0, now});
  }
  return Status::Ok();
}

std::optional<std::string> TaskTimer::OwnerOf(const std::string& id) {
  auto t = tasks_.Get(id);
  if (!t.ok() || !*t) return std::nullopt;
  return (*t)->group_folder;
}

Result<std::string> TaskTimer::Schedule(const watcher::ScheduleTask& cmd, const std::string& group,
                                        const std::optional<std::string>& chat_jid, const std::string& claim_token) {
  Task t;
  // A file without taskId gets an id from its claim token: applying the same
  // claimed file twice (a crash before its removal) upserts the same task.
  t.id = cmd.task_id.value_or("task-" + claim_token);
  if (auto existing = tasks_.Get(t.id); existing.ok() && *existing && (*existing)->group_folder != group) {
    return Status::InvalidArgument("task \"" + t.id + "\" already exists in another group");
  }
  t.group_folder = group;
  t.chat_jid = chat_jid;
  t.prompt = cmd.prompt;
  t.schedule_type = cmd.schedule_type;
  t.schedule_value = cmd.schedule_value;
  t.tz = cmd.tz.value_or("");
  t.context_mode = cmd.context_mode;
  if (cmd.overlap) t.overlap = *cmd.overlap;
  if (cmd.catch_up) t.catch_up = *cmd.catch_up;
  t.starting_deadline_ms = cmd.starting_deadline_ms;
  if (cmd.keep_runs) t.keep_runs = *cmd.keep_runs;
  t.unique_key = cmd.unique_key;
  t.unique_for_ms = cmd.unique_for_ms;
  t.source = TaskSource::kFile;
  auto valid = ValidateTask(t, store_.clock().NowMs(), cfg_.timezone);
  if (!valid.ok()) return Status::InvalidArgument(valid.status().message());
  auto stored = tasks_.Upsert(*valid);
  if (!stored.ok()) return stored.status();
  schedules_.Forget(stored->id);
  if (stored->status == TaskStatus::kActive) queue_.Update(stored->id, stored->next_run);
  Arm();
  return text::Dump(nlohmann::json{
      {"task", stored->id},
      {"action", "scheduled"},
      {"next_run", stored->next_run ? nlohmann::json(FormatIsoUtc(*stored->next_run)) : nlohmann::json(nullptr)}});
}

Result<std::string> TaskTimer::Pause(const std::string& id) {
  if (Status s = tasks_.SetStatus(id, TaskStatus::kPaused); !s.ok()) return s;
  queue_.Remove(id);
  Arm();
  return text::Dump(nlohmann::json{{"task", id}, {"action", "paused"}});
}

Result<std::string> TaskTimer::Resume(const std::string& id) {
  auto t = tasks_.Get(id);
  if (!t.ok()) return t.status();
  if (!*t) return Status::InvalidArgument("no task \"" + id + "\"");
  if ((*t)->status == TaskStatus::kCompleted) return Status::InvalidArgument("task \"" + id + "\" has completed");
  if (Status s = tasks_.SetStatus(id, TaskStatus::kActive); !s.ok()) return s;
  schedules_.Forget(id);
  queue_.Update(id, (*t)->next_run);
  Arm();
  return text::Dump(nlohmann::json{{"task", id}, {"action", "resumed"}});
}

Result<std::string> TaskTimer::Cancel(const std::string& id) {
  if (Status s = tasks_.Delete(id); !s.ok()) return s;
  schedules_.Forget(id);
  queue_.Remove(id);
  Arm();
  return text::Dump(nlohmann::json{{"task", id}, {"action", "cancelled"}});
}

Result<std::string> TaskTimer::Update(const std::string& id, const TaskChanges& changes) {
  auto t = tasks_.Get(id);
  if (!t.ok()) return t.status();
  if (!*t) return Status::InvalidArgument("no task \"" + id + "\"");
  // The config is read again at every start and reload: a change made here
  // would be undone there, so it is made there.
  if ((*t)->source == TaskSource::kConfig) {
    return Status::InvalidArgument("task \"" + id + "\" is defined in the config; change it there");
  }
  auto updated = ApplyTaskChanges(**t, changes, store_.clock().NowMs());
  if (!updated.ok()) return Status::InvalidArgument(updated.status().message());
  const Task& u = updated->task;
  if (Status s = tasks_.Update(u); !s.ok()) return s;
  if (updated->rescheduled) schedules_.Forget(u.id);
  if (u.status == TaskStatus::kActive) {
    queue_.Update(u.id, u.next_run);
  } else {
    queue_.Remove(u.id);
  }
  Arm();
  return text::Dump(
      nlohmann::json{{"task", u.id},
                     {"action", "updated"},
                     {"group", u.group_folder},
                     {"changed", updated->changed},
                     {"status", ToString(u.status)},
                     {"next_run", u.next_run ? nlohmann::json(FormatIsoUtc(*u.next_run)) : nlohmann::json(nullptr)}});
}

bool TaskTimer::IsTaskJob(JobId job) {
  auto t = tasks_.TaskForJob(job);
  return t.ok() && t->has_value();
}

Status TaskTimer::JobStarted(JobId job, TimeMs at) { return tasks_.StartRunForJob(job, at); }

Status TaskTimer::JobFinished(JobId job, JobState state, const std::optional<std::string>& result,
                              const std::optional<std::string>& error, std::optional<std::int64_t> duration_ms) {
  TaskRunStatus st = state == JobState::kSucceeded   ? TaskRunStatus::kSucceeded
                     : state == JobState::kCancelled ? TaskRunStatus::kCancelled
                                                     : TaskRunStatus::kFailed;
  auto r = tasks_.FinishRunForJob(job, st, result, error, duration_ms);
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace dropq::app
