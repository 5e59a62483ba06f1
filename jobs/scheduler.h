#pragma once
// Scheduler policy: when a task's slots fire, which are skipped and why, and
// an in-memory queue of next runs. Pure: time comes in as arguments, nothing
// here reads a clock, touches SQLite or libuv. docs/SCHEDULER.md is the
// contract; daemon/daemon.cc does the I/O:
//
//   start:  TaskStore::ActiveWithNextRun() → TaskQueue::Update for each;
//           arm one uv_timer at NextWakeup() (no polling).
//   timer:  for each id in PopDue(now): Plan(task, now, HasActiveJob(id));
//           in ONE transaction enqueue a job per plan.fire, RecordRun each
//           fired and skipped slot, SetNextRun(plan.next_run) (and status
//           completed when plan.completed); after COMMIT cancel the previous
//           job if replace_previous, Update the queue, re-arm the timer.
//
// Why a slot's successor comes from the slot and never from "now" or from
// when a job finished: NanoClaw recomputed from completion time, so a cron
// job drifted and a `once` task whose job outlived a polling pass ran twice.
// Here a task's next_run moves past the slot in the same transaction that
// enqueues the slot's job.
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "jobs/cron.h"
#include "jobs/tasks.h"

namespace dropq {

// catch_up: skip still fires a slot this late: a timer that fired a little
// late, or a loop turn that was busy, is not downtime.
inline constexpr TimeMs kSkipGraceMs = 60'000;
// Missed slots recorded one task_runs row each; the rest share one summary row.
inline constexpr std::size_t kMaxListedSkips = 5;
// Counting missed cron slots stops here ("at least 100000"): a summary row
// is not worth an unbounded walk through years of every-second slots.
inline constexpr std::int64_t kMaxCountedSlots = 100'000;

// The slot that follows the task's current one (task.next_run, the slot that
// just fired): the first slot strictly after both `after` and next_run.
//  - cron: cron::NextFire in task.tz, so the successor depends only on the
//    schedule, never on when the job ran or finished;
//  - interval: slots are next_run + k·interval, drift-free (a late pass or a
//    long job does not shift them); without a next_run, after + interval;
//  - once: nullopt (its only slot is next_run).
// nullopt also when the stored schedule no longer parses (ValidateTask
// rejects such tasks, so only a hand-edited row can get here).
std::optional<TimeMs> NextRunAfter(const Task& task, TimeMs after);

// A task's schedule as planning needs it: the cron expression parsed and its
// zone loaded, or the interval in ms (a `once` task needs nothing). Parsing
// is most of what planning a cron task costs, so the daemon compiles a task's
// schedule once and keeps it (ScheduleCache) instead of at every fire.
struct CompiledSchedule {
  ScheduleType type = ScheduleType::kOnce;
  cron::Schedule cron{};
  const date::time_zone* tz = nullptr;  // cron only
  std::int64_t interval_ms = 0;         // interval only
};
// Errors name what does not parse (only a hand-edited row has one:
// ValidateTask rejects such schedules).
Result<CompiledSchedule> CompileSchedule(const Task& task);

// What one firing pass does for one task.
struct FirePlan {
  std::vector<TimeMs> fire;                             // enqueue a job per slot, oldest first
  std::vector<std::pair<TimeMs, std::string>> skipped;  // record as skipped: slot and why
  std::int64_t skipped_total = 0;                       // every skipped slot, also those a summary row stands for
  std::optional<TimeMs> next_run;                       // store this, and Update the queue with it
  bool completed = false;                               // nothing will ever fire again: status → completed
  bool replace_previous = false;                        // overlap replace: cancel the task's queued/running jobs
};

// Plans a task whose next_run <= now (a task that is not active or not due
// gets an empty plan that keeps its next_run). previous_active: a job the
// task fired earlier is still queued or running (TaskStore::HasActiveJob).
//
// The due slots are next_run and every later slot up to now. catch_up picks
// which of them fire:
//  - run_once (default): the latest; the others are skipped;
//  - skip: the latest, only if it is at most kSkipGraceMs old; else none;
//  - run_all: the latest catch_up_max, oldest first; older ones are skipped.
// Then a slot older than now - starting_deadline_ms is skipped ("missed
// starting deadline"), and with previous_active, overlap forbid skips the
// rest ("previous run still queued or running"), replace fires and sets
// replace_previous, allow fires. next_run is the first slot after now; a
// `once` task is completed after this pass whatever happened to its slot,
// so it fires at most once ever.
FirePlan Plan(const Task& task, TimeMs now, bool previous_active);
// The same with the task's schedule already compiled (CompileSchedule of
// this task's schedule_type, schedule_value and tz, or its error).
FirePlan Plan(const Task& task, TimeMs now, bool previous_active, const Result<CompiledSchedule>& schedule);

// Compiled schedules by task id, so a task's cron expression is parsed once,
// not at every fire. An entry remembers the schedule_type, schedule_value and
// tz it was compiled from and is compiled again when the task's differ, so a
// stale entry is never used; the daemon also Forgets a task whose schedule
// changes or that goes away (update_task, resume, cancel, schedule_task) and
// Clears on a config reload, so entries do not outlive their task. Only tasks
// that fire get an entry: 100,000 idle tasks cost nothing here.
class ScheduleCache {
 public:
  const Result<CompiledSchedule>& Get(const Task& task);
  void Forget(const std::string& id) { entries_.erase(id); }
  void Clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }
  // How many times a schedule was compiled (tests: a changed one is again).
  std::uint64_t compiles() const { return compiles_; }

 private:
  struct Entry {
    ScheduleType type;
    std::string value;
    std::string tz;
    Result<CompiledSchedule> compiled;
  };
  std::unordered_map<std::string, Entry> entries_;
  std::uint64_t compiles_ = 0;
};

// The next runs of active tasks, earliest first. std::set + a map by id:
// O(log n) per Update, Remove and popped id, so 100,000 tasks cost the same
// per firing as ten.
class TaskQueue {
 public:
  // Sets (or, with nullopt, removes) the task's next run.
  void Update(const std::string& id, std::optional<TimeMs> next_run);
  void Remove(const std::string& id);
  // Removes and returns the ids with next_run <= now, earliest first (ties
  // by id), at most `max` of them (the daemon may bound one loop turn).
  std::vector<std::string> PopDue(TimeMs now, std::size_t max = std::numeric_limits<std::size_t>::max());
  // The earliest next_run: where to arm the timer; nullopt when empty.
  std::optional<TimeMs> NextWakeup() const;
  std::optional<TimeMs> NextRunOf(const std::string& id) const;
  std::size_t size() const { return next_.size(); }
  bool empty() const { return next_.empty(); }

 private:
  std::set<std::pair<TimeMs, std::string>> by_time_;
  std::unordered_map<std::string, TimeMs> next_;
};

// Wall-clock jumps (suspend, NTP step, an operator's `date -s`). libuv timers
// run on the monotonic clock, next_run is wall-clock time. The task timer
// keeps an anchor {wall, mono} from its last wake-up; at every wake-up (it
// never sleeps longer than 5 minutes, so a jump is noticed even with no
// task due) it computes
//     expected_wall = anchor.wall + (Clock::MonotonicMs() - anchor.mono)
// and calls ClockJumped(expected_wall, wall_now, kClockJumpToleranceMs). A
// busy loop that wakes late moves both clocks, so it is not a jump.
// On a jump, either way: re-anchor, give every queued task
// NextRunAfterClockJump(task, now, wall_now - expected_wall) (store and
// Update it when it changed), run a firing pass, re-arm the timer from
// NextWakeup(). Forward jumps need nothing more: the slots jumped over are
// due and Plan applies the catch-up policy, as after downtime.
inline constexpr TimeMs kClockJumpToleranceMs = 5'000;
bool ClockJumped(TimeMs expected_wall, TimeMs actual_wall, TimeMs tolerance);

// Vixie cron's rule for a backward jump: up to kClockResetMs the stored
// next_run is kept (slots that already fired do not fire again; the task
// waits for the clock to catch up); beyond it the clock counts as reset, and
// cron and interval tasks take their next slot from the new now (otherwise a
// clock that was a year fast would stall every task for a year). `once`
// tasks keep their instant. Returns the task's next_run, changed or not.
inline constexpr TimeMs kClockResetMs = 3 * 3600 * 1000;
std::optional<TimeMs> NextRunAfterClockJump(const Task& task, TimeMs now, TimeMs jump_ms);

}  // namespace dropq
