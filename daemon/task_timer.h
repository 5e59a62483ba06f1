#pragma once
// Scheduled tasks in the daemon's loop (docs/SCHEDULER.md): one uv_timer
// armed at the earliest next_run (TaskQueue, O(log n)), never a poll. When it
// fires, each due task is planned (jobs/scheduler.h: catch-up, overlap,
// starting deadline) and its jobs are inserted with their task_runs rows in
// one transaction; then the dispatcher is told.
//
// Lifecycle: Start() initialises the timer; Close() closes it, and the loop
// must run its close callback before this is destroyed.
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "jobs/dispatcher.h"
#include "jobs/scheduler.h"
#include "jobs/store.h"
#include "jobs/tasks.h"
#include "watcher/job_file.h"

namespace dropq::app {

class TaskTimer {
 public:
  struct Hooks {
    std::function<void(const QueuedJob&)> enqueued;         // a task fired a job
    std::function<void(const std::vector<JobId>&)> cancel;  // overlap: replace
    std::function<void()> changed;                          // a pass may have changed tasks (next_run, status)
  };
  TaskTimer(uv_loop_t* loop, Store& store, const Config& cfg, Hooks hooks);

  // Upserts the config's schedules (removing config tasks no longer there),
  // loads every active task and arms the timer.
  Status Start();
  void Close();

  // Reload (docs/CONFIG.md, "Reload"): upserts `cfg`'s schedules and removes
  // the config tasks it no longer has, inside the caller's transaction;
  // returns the ids removed. After the commit, Reloaded() re-reads the
  // active tasks and re-arms the timer.
  Result<std::vector<std::string>> SyncConfig(const Config& cfg);
  Status Reloaded();

  // File commands. Each returns the audit detail or the reason to reject.
  Result<std::string> Schedule(const watcher::ScheduleTask& cmd, const std::string& group,
                               const std::optional<std::string>& chat_jid, const std::string& claim_token);
  Result<std::string> Pause(const std::string& id);
  Result<std::string> Resume(const std::string& id);
  Result<std::string> Cancel(const std::string& id);
  // update_task: a file task's fields changed (jobs/tasks.h,
  // ApplyTaskChanges), as of the store's clock; a config task is refused
  // (it changes only in the config).
  Result<std::string> Update(const std::string& id, const TaskChanges& changes);
  // The group owning a task, for authorisation; nullopt for an unknown id.
  std::optional<std::string> OwnerOf(const std::string& id);

  // Job lifecycle hooks (inside the daemon's transactions).
  bool IsTaskJob(JobId job);
  Status JobStarted(JobId job, TimeMs at);
  Status JobFinished(JobId job, JobState state, const std::optional<std::string>& result,
                     const std::optional<std::string>& error, std::optional<std::int64_t> duration_ms);

  TaskStore& tasks() { return tasks_; }
  // For the metrics: how many slots fired since start, and how late the
  // last one fired against its scheduled time (nullopt before the first).
  std::uint64_t fires() const { return fires_; }
  std::optional<std::int64_t> last_lag_ms() const { return last_lag_ms_; }
  // Each firing task's schedule, compiled once (jobs/scheduler.h).
  const ScheduleCache& schedules() const { return schedules_; }

  // What the timer does when it fires: fires every due task (as of the
  // store's clock) and re-arms. Tests with a manual clock call it after
  // moving the clock (tests/daemon/task_timer_test.cc). With `at`, a slot
  // a few ms ahead: the tasks due then are read and planned at once, and
  // their jobs made once the clock reaches it.
  void Tick(std::optional<TimeMs> at = std::nullopt);
  // Trims the run history (keep_runs) of the tasks that fired, in its own
  // transaction. Tick schedules it on the loop right after its commit, so
  // no pass waits for it; tests with a manual clock call it after Tick.
  void PruneFired();
  // When the earliest active task is due; nullopt when none is.
  std::optional<TimeMs> next_wakeup() const { return queue_.NextWakeup(); }

 private:
  void Arm();
  Status LoadQueue();
  // Notices a wall-clock step (NTP, suspend) against the loop's monotonic
  // clock and re-plans every active task (jobs/scheduler.h).
  void CheckClockJump();
  // What firing one task decided, applied to the queue and logged only
  // after the pass's transaction commits.
  struct Fired {
    std::string id;
    std::optional<TimeMs> next_run;
    std::string note;  // the log line, empty when nothing fired or was skipped
  };
  // What one pass decided, written in bulk before its commit and acted on
  // after it.
  struct Pass {
    std::vector<QueuedJob> fired;
    std::vector<JobId> cancel;
    std::vector<Fired> done;
    std::vector<TaskRunRow> runs;
    std::vector<std::pair<std::string, std::optional<TimeMs>>> next_runs;
    std::vector<std::pair<std::string, std::int64_t>> prune;  // task, keep_runs
    std::vector<Store::PlainJob> plain;  // jobs for the bulk insert
    std::vector<std::size_t> plain_runs;  // each one's row in runs
    Store::PlainBatch batch;              // `plain`, prepared before the slot
  };
  // Inside Tick's transaction. `prev`: the task's jobs still queued or
  // running.
  Status FireOne(const Task& t, const std::vector<JobId>& prev, const FirePlan& plan, TimeMs now, Pass& p);
  // The timer's callback: a pass for the next slot when it is at most
  // kPrepareAheadMs away (Tick(slot)), else for now.
  void OnTimer();
  // Holds the loop until the store's clock reaches `slot` (a few ms at
  // most, and never longer than that in real time). False: it did not.
  bool WaitForSlot(TimeMs slot);
  // The pass's bulk insert of the plain jobs; fills in their run rows.
  Status InsertPlain(Pass& p, TimeMs now);

  uv_loop_t* loop_;
  Store& store_;
  const Config& cfg_;
  Hooks hooks_;
  TaskStore tasks_;
  TaskQueue queue_;
  ScheduleCache schedules_;
  uv_timer_t timer_{};
  uv_timer_t prune_timer_{};
  std::map<std::string, std::int64_t> prune_;  // tasks whose history to trim, keep_runs
  bool started_ = false;
  TimeMs anchor_wall_ = 0;
  TimeMs anchor_mono_ = 0;
  bool anchored_ = false;
  std::uint64_t fires_ = 0;
  std::optional<std::int64_t> last_lag_ms_;
};

}  // namespace dropq::app
