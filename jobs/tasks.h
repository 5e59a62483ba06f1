#pragma once
// Scheduled tasks: the model, its validation and its SQLite persistence
// (tables scheduled_tasks and task_runs, docs/SCHEDULER.md).
//
// TaskStore shares the Store's connection (the daemon's single writer on the
// loop thread), so a task's next_run, the job a firing enqueues and the
// task_runs row commit in one transaction when the caller wraps them in
// Store::Begin/Commit. When to fire is decided elsewhere (jobs/scheduler.h);
// this file only validates and persists.
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "jobs/job.h"
#include "base/status.h"
#include "jobs/store.h"

namespace dropq {

enum class ScheduleType { kCron, kInterval, kOnce };
enum class TaskStatus { kActive, kPaused, kCompleted };
// What to do when a slot comes while the task's previous job is still queued
// or running.
enum class Overlap { kForbid, kAllow, kReplace };
// What to do with the slots that passed while dropq was not running.
enum class CatchUp { kRunOnce, kSkip, kRunAll };
enum class TaskSource { kConfig, kFile };
enum class TaskRunStatus { kQueued, kRunning, kSucceeded, kFailed, kSkipped, kCancelled };

std::string_view ToString(ScheduleType v);
std::string_view ToString(TaskStatus v);
std::string_view ToString(Overlap v);
std::string_view ToString(CatchUp v);
std::string_view ToString(TaskSource v);
std::string_view ToString(TaskRunStatus v);
std::optional<ScheduleType> ParseScheduleType(std::string_view s);
std::optional<TaskStatus> ParseTaskStatus(std::string_view s);
std::optional<Overlap> ParseOverlap(std::string_view s);
std::optional<CatchUp> ParseCatchUp(std::string_view s);
std::optional<TaskSource> ParseTaskSource(std::string_view s);
std::optional<TaskRunStatus> ParseTaskRunStatus(std::string_view s);

// One row of scheduled_tasks. Defaults are the documented policy defaults.
struct Task {
  std::string id;
  std::string group_folder;
  std::optional<std::string> chat_jid;
  std::string prompt;
  ScheduleType schedule_type = ScheduleType::kCron;
  // cron: an expression (docs/CRON.md); interval: ms or "30s"/"5m"/"1h";
  // once: ISO-8601, with an offset or local in `tz`. Kept as the user wrote it.
  std::string schedule_value;
  // IANA zone. Empty only before ValidateTask, which resolves it (the
  // config's timezone, else the system's), so a stored task never changes
  // meaning when the daemon's default zone does.
  std::string tz;
  ContextMode context_mode = ContextMode::kIsolated;
  std::optional<TimeMs> next_run;  // the next slot; nullopt: nothing left to fire
  std::optional<TimeMs> last_run;  // when the last fired job ended
  std::optional<std::string> last_result;
  TaskStatus status = TaskStatus::kActive;
  Overlap overlap = Overlap::kForbid;
  CatchUp catch_up = CatchUp::kRunOnce;
  std::int64_t catch_up_max = 10;                    // run_all fires at most this many missed slots
  std::optional<std::int64_t> starting_deadline_ms;  // a slot older than this is skipped
  std::int64_t keep_runs = 100;                      // task_runs rows kept per task
  // Given to every job the task enqueues (docs/FILES.md, "Unique jobs"): a
  // firing whose job would repeat an active or recent one is skipped.
  std::optional<std::string> unique_key;
  std::optional<std::int64_t> unique_for_ms;
  TaskSource source = TaskSource::kFile;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
};

// One row of task_runs: a slot that fired (job_id set) or was skipped.
struct TaskRun {
  std::int64_t id = 0;
  std::string task_id;
  std::optional<JobId> job_id;
  TimeMs scheduled_at = 0;
  TimeMs fired_at = 0;
  std::optional<TimeMs> started_at;
  std::optional<std::int64_t> duration_ms;
  TaskRunStatus status = TaskRunStatus::kQueued;
  std::optional<std::string> result;
  std::optional<std::string> error;
};

// Checks a task and fills in what is derived: tz (empty → default_tz, or the
// system's zone when default_tz is empty too) and next_run, the first slot
// after `now` (cron, interval) or the once time itself, even when it has
// passed (it then fires at the next pass, under the task's catch-up policy).
// Errors are InvalidArgument naming the field:
//   schedule_value: invalid cron expression: minute: 60 is out of range 0-59
//   schedule_value: interval "0" must be a positive duration (ms, or 30s, 5m, 1h)
//   tz: unknown time zone "Mars/Olympus_Mons"
Result<Task> ValidateTask(Task task, TimeMs now, std::string_view default_tz = "");

// The zone a task without one gets: `default_tz`, or the system's zone's name
// when it is empty. Resolve it once for many tasks (ValidateTask would read
// /etc/localtime for each).
Result<std::string> ResolveZoneName(std::string_view default_tz);

// The instant a `once` value names: with an offset ("...Z", "+02:00") as
// written; without one, as wall-clock time in `tz` (a time skipped by a
// spring-forward shifts later by the gap, a repeated one takes its first
// occurrence — the same rules as cron, docs/CRON.md).
Result<TimeMs> ParseOnceTime(std::string_view value, std::string_view tz);

// What an `update_task` file changes (docs/FILES.md): each field set is
// the new value, each unset one stays as it is. The task's id, group and
// chat, its source and its history are not changeable this way.
struct TaskChanges {
  std::optional<std::string> prompt;
  std::optional<ScheduleType> schedule_type;
  std::optional<std::string> schedule_value;
  std::optional<std::string> tz;
  std::optional<ContextMode> context_mode;
  std::optional<Overlap> overlap;
  std::optional<CatchUp> catch_up;
  std::optional<std::int64_t> starting_deadline_ms;
  std::optional<std::int64_t> keep_runs;
};

struct UpdatedTask {
  Task task;
  // The fields whose value differs from before, by their file names
  // ("prompt", "schedule_value", ...), in TaskChanges' order.
  std::vector<std::string> changed;
  // schedule_type, schedule_value or tz changed: next_run was recomputed.
  bool rescheduled = false;
};

// `task` with `changes` applied, as of `now` (the injected clock). When the
// schedule (type, value or tz) changed, the task is validated as a new one
// would be and next_run is the first slot after `now` (a `once` time: that
// time, due at once when it has passed); a completed task becomes active
// again, a paused one stays paused. Otherwise next_run and status are kept.
// Errors are ValidateTask's, naming the field.
Result<UpdatedTask> ApplyTaskChanges(Task task, const TaskChanges& changes, TimeMs now);

namespace sql {
// A task's runs beyond the newest `keep`, except those whose job is still
// queued or running. The job check is a primary-key lookup per candidate row
// (NOT EXISTS), not a list of every active job built at each fire: that was
// O(active jobs) per fire (docs/PERFORMANCE.md).
inline constexpr char kPruneTaskRuns[] =
    "DELETE FROM task_runs WHERE task_id=?1 "
    "AND id NOT IN (SELECT id FROM task_runs WHERE task_id=?1 ORDER BY id DESC LIMIT ?2) "
    "AND (job_id IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM jobs j WHERE j.id = task_runs.job_id AND j.state IN ('queued','running'))) "
    "RETURNING id";
}  // namespace sql

// The source_claim of the job a task's slot fires: unique, so a slot never
// makes two jobs, and its prefix finds the task's active jobs
// (TaskStore::ActiveJobs, LoadDue). Every job a task fires carries it.
inline std::string TaskSlotClaim(const std::string& task_id, TimeMs slot) {
  return "task:" + task_id + ":" + std::to_string(slot);
}

// One due task as the timer's pass reads it (TaskStore::LoadDue).
struct DueTask {
  Task task;
  std::vector<JobId> active_jobs;  // its jobs still queued or running, by id
};

// A task_runs row a pass writes (TaskStore::RecordRuns).
struct TaskRunRow {
  std::string task_id;
  TimeMs scheduled_at = 0;
  std::optional<JobId> job;  // set: the slot fired this job (queued); unset: skipped
  std::optional<std::string> error;  // for a skipped slot: why
};

class TaskStore {
 public:
  explicit TaskStore(Store& store) : store_(store) {}

  // Inserts, or updates the task with this id, and returns the row as stored.
  // An update rewrites the definition (group, prompt, schedule, tz, policies)
  // but keeps the runtime state — next_run, status, last_run, last_result,
  // created_at — so re-reading the config at start neither loses the slots
  // missed while dropq was down nor revives a completed or paused task.
  // Exception: when schedule_type, schedule_value or tz changed, next_run is
  // taken from `task` and a completed task becomes active again.
  // A task from the other source with the same id is a Conflict.
  Result<Task> Upsert(const Task& task);
  // Upsert's write alone, for bulk loads (the configured schedules at start
  // and reload, docs/PERFORMANCE.md): no conflict check and no read-back, so
  // one statement per task instead of three. The caller checks conflicts
  // against IdsFrom(the other source), read once.
  Status Put(const Task& task);
  Result<std::unordered_set<std::string>> IdsFrom(TaskSource source);
  Result<std::optional<Task>> Get(const std::string& id);
  // Every task, or one group's, ordered by group then id.
  Result<std::vector<Task>> List(const std::optional<std::string>& group = std::nullopt);
  // The same tasks in the same order, one at a time, none kept (snapshots
  // of 100,000 tasks).
  Status ForEach(const std::optional<std::string>& group, const std::function<void(Task)>& fn);
  // Removes the task; its task_runs stay (history). NotFound when absent.
  Status Delete(const std::string& id);
  Status SetStatus(const std::string& id, TaskStatus status);
  Status SetNextRun(const std::string& id, std::optional<TimeMs> next_run);
  // Rewrites a task's definition, next_run and status from `task` (an
  // ApplyTaskChanges result); group, chat, source, created_at and its
  // run history stay. NotFound when there is no task with that id.
  Status Update(const Task& task);
  // Active tasks that have a next_run, by next_run: what the daemon loads
  // into its TaskQueue at start.
  Result<std::vector<Task>> ActiveWithNextRun();
  // The same tasks' ids and next runs only, in the same order (loading the
  // TaskQueue of 100,000 tasks without holding every row's text).
  Status ForEachActiveNextRun(const std::function<void(std::string id, TimeMs next_run)>& fn);

  // Records a fired slot (job set, status queued) or a skipped one (no job,
  // status skipped, error = why). fired_at is the clock's now. Returns the id.
  Result<std::int64_t> RecordRun(const std::string& task_id, TimeMs scheduled_at, std::optional<JobId> job,
                                 TaskRunStatus status, const std::optional<std::string>& error = std::nullopt);
  // The timer's pass in three statements, whatever the number of tasks
  // (docs/PERFORMANCE.md, "Scheduler"): the due tasks with their active jobs
  // (ids absent or deleted are left out; any order), every run row of the
  // pass stamped with one fired_at, every task's next_run.
  Result<std::vector<DueTask>> LoadDue(const std::vector<std::string>& ids);
  Status RecordRuns(const std::vector<TaskRunRow>& rows, TimeMs fired_at);
  Status SetNextRuns(const std::vector<std::pair<std::string, std::optional<TimeMs>>>& next_runs);
  // The task that fired this job, if any: the daemon sets the container
  // input's isScheduledTask from it.
  Result<std::optional<std::string>> TaskForJob(JobId job);
  // The job a task fired started: its run becomes running. No-op for jobs no
  // task fired.
  Status StartRunForJob(JobId job, TimeMs started_at);
  // The job a task fired ended: its run gets the status, result, error and
  // duration; the task gets last_run (now) and last_result (NanoClaw's
  // summary: "Error: ..." or the result, cut to 200 bytes, or "Completed").
  // Returns the task's id, or nullopt when no task fired this job.
  Result<std::optional<std::string>> FinishRunForJob(JobId job, TaskRunStatus status,
                                                     const std::optional<std::string>& result,
                                                     const std::optional<std::string>& error,
                                                     std::optional<std::int64_t> duration_ms);
  // The task's runs, newest first.
  Result<std::vector<TaskRun>> ListRuns(const std::string& task_id, int limit = 1000);
  // Deletes the task's oldest runs beyond `keep`, but never one whose job is
  // still queued or running (overlap checks need it). Returns rows deleted.
  Result<std::int64_t> PruneRuns(const std::string& task_id, std::int64_t keep);
  // Deletes the config tasks whose ids are not in `keep` (they were removed
  // from the YAML). File tasks are never touched. Returns the ids removed.
  Result<std::vector<std::string>> RemoveConfigTasksExcept(const std::set<std::string>& keep);
  // Jobs this task fired that are still queued or running (any of its runs,
  // not only the last: run_all may fire several in one pass).
  Result<std::vector<JobId>> ActiveJobs(const std::string& task_id);
  Result<bool> HasActiveJob(const std::string& task_id);

 private:
  Store& store_;
};

}  // namespace dropq
