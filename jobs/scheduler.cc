// Scheduler policy. Design:
//
// A task's schedule is a sequence of slots (instants). Plan() looks at the
// slots in [next_run, now] — usually exactly one, many after downtime — and
// never walks them all: the latest is found by binary search over
// cron::NextFire (about 40 calls whatever the gap), interval slots are
// arithmetic, and counting cron slots for the summary row stops at
// kMaxCountedSlots. So a pass after a month down costs about what a pass on
// time does, and one task's cost never depends on how many others exist.
//
// Considered and discarded: firing from "now" (NanoClaw: slots drift, a job
// that outlives a pass runs twice); a cron "previous fire" search of its own
// (the binary search reuses NextFire and its DST rules, so the two cannot
// disagree about which slots exist).
#include "jobs/scheduler.h"

#include <algorithm>

#include "jobs/cron.h"
#include "base/units.h"

namespace dropq {
namespace {

// The slots of one task's schedule: its compiled schedule, anchored at the
// task's next_run.
class Slots {
 public:
  Slots(const CompiledSchedule& c, std::optional<TimeMs> anchor) : c_(c), anchor_(anchor) {}

  // The first slot strictly after t.
  std::optional<TimeMs> After(TimeMs t) const {
    switch (c_.type) {
      case ScheduleType::kCron:
        return cron::NextFire(c_.cron, c_.tz, t);
      case ScheduleType::kInterval:
        if (!anchor_) return t + c_.interval_ms;
        if (t < *anchor_) return *anchor_;
        return *anchor_ + ((t - *anchor_) / c_.interval_ms + 1) * c_.interval_ms;
      case ScheduleType::kOnce:
        break;
    }
    return std::nullopt;
  }

  // The last slot in [first, t], where `first` (next_run) is a slot <= t.
  TimeMs LastUpTo(TimeMs first, TimeMs t) const {
    if (c_.type == ScheduleType::kInterval) return first + (t - first) / c_.interval_ms * c_.interval_ms;
    auto fits = [&](TimeMs x) {
      auto n = After(x);
      return n && *n <= t;
    };
    if (!fits(first)) return first;
    // fits(lo) holds and fits(hi) does not (nothing fires after t up to t),
    // and fits is monotone, so this ends with After(lo) the last slot <= t.
    TimeMs lo = first, hi = t;
    while (hi - lo > 1) {
      TimeMs mid = lo + (hi - lo) / 2;
      (fits(mid) ? lo : hi) = mid;
    }
    return *After(lo);
  }

  // The last slot before s that is not before first.
  std::optional<TimeMs> Before(TimeMs first, TimeMs s) const {
    if (s <= first) return std::nullopt;
    return LastUpTo(first, s - 1);
  }

  // How many slots lie in [first, t]; .second is false when counting stopped
  // at kMaxCountedSlots (the count is then a lower bound).
  std::pair<std::int64_t, bool> Count(TimeMs first, TimeMs t) const {
    if (c_.type == ScheduleType::kInterval) return {(t - first) / c_.interval_ms + 1, true};
    if (c_.type == ScheduleType::kOnce) return {1, true};
    std::int64_t n = 1;
    for (auto x = After(first); x && *x <= t; x = After(*x)) {
      if (++n >= kMaxCountedSlots) return {n, false};
    }
    return {n, true};
  }

 private:
  const CompiledSchedule& c_;
  std::optional<TimeMs> anchor_;  // interval: the grid's origin, next_run
};

std::string CatchUpReason(const Task& task) {
  switch (task.catch_up) {
    case CatchUp::kRunOnce:
      return "missed: catch_up run_once fires only the latest missed slot";
    case CatchUp::kSkip:
      return "missed: catch_up skip fires no slot more than 60 s late";
    case CatchUp::kRunAll:
      return "missed: more than catch_up_max (" + std::to_string(task.catch_up_max) +
             ") slots were due; run_all fires the latest";
  }
  return "missed";
}

}  // namespace

Result<CompiledSchedule> CompileSchedule(const Task& task) {
  CompiledSchedule c;
  c.type = task.schedule_type;
  switch (task.schedule_type) {
    case ScheduleType::kCron: {
      auto parsed = cron::Parse(task.schedule_value);
      if (!parsed.ok()) return parsed.status();
      auto zone = cron::LoadTimeZone(task.tz);
      if (!zone.ok()) return zone.status();
      c.cron = *parsed;
      c.tz = *zone;
      break;
    }
    case ScheduleType::kInterval: {
      auto ms = ParseDurationMs(task.schedule_value);
      if (!ms || *ms <= 0) return Status::InvalidArgument("bad interval \"" + task.schedule_value + "\"");
      c.interval_ms = *ms;
      break;
    }
    case ScheduleType::kOnce:
      break;  // its only slot is next_run
  }
  return c;
}

const Result<CompiledSchedule>& ScheduleCache::Get(const Task& task) {
  auto it = entries_.find(task.id);
  if (it != entries_.end() && it->second.type == task.schedule_type && it->second.value == task.schedule_value &&
      it->second.tz == task.tz) {
    return it->second.compiled;
  }
  ++compiles_;
  Entry e{task.schedule_type, task.schedule_value, task.tz, CompileSchedule(task)};
  if (it != entries_.end()) {
    it->second = std::move(e);
    return it->second.compiled;
  }
  return entries_.emplace(task.id, std::move(e)).first->second.compiled;
}

std::optional<TimeMs> NextRunAfter(const Task& task, TimeMs after) {
  if (task.schedule_type == ScheduleType::kOnce) return std::nullopt;
  auto compiled = CompileSchedule(task);
  if (!compiled.ok()) return std::nullopt;
  return Slots(*compiled, task.next_run).After(task.next_run ? std::max(after, *task.next_run) : after);
}

FirePlan Plan(const Task& task, TimeMs now, bool previous_active) {
  return Plan(task, now, previous_active, CompileSchedule(task));
}

FirePlan Plan(const Task& task, TimeMs now, bool previous_active, const Result<CompiledSchedule>& schedule) {
  FirePlan p;
  p.next_run = task.next_run;
  if (task.status != TaskStatus::kActive || !task.next_run || *task.next_run > now) return p;
  const TimeMs first = *task.next_run;
  if (!schedule.ok()) {
    // Only a hand-edited row gets here (ValidateTask rejects bad schedules).
    // Firing nothing forever would be silent, so say why and stop.
    p.skipped.emplace_back(first, "invalid schedule: " + schedule.status().message());
    p.skipped_total = 1;
    p.next_run = std::nullopt;
    p.completed = true;
    return p;
  }

  const Slots slots(*schedule, task.next_run);

  // 1. catch_up chooses the candidates among the due slots [first, now];
  //    the `missed` slots before them are skipped.
  const TimeMs last = slots.LastUpTo(first, now);
  const auto [count, exact] = slots.Count(first, now);
  std::vector<TimeMs> candidates;  // oldest first
  switch (task.catch_up) {
    case CatchUp::kRunOnce:
      candidates.push_back(last);
      break;
    case CatchUp::kSkip:
      if (now - last <= kSkipGraceMs) candidates.push_back(last);
      break;
    case CatchUp::kRunAll: {
      const auto k = static_cast<std::size_t>(std::min(count, std::max<std::int64_t>(task.catch_up_max, 1)));
      for (std::optional<TimeMs> s = last; s && candidates.size() < k; s = slots.Before(first, *s)) {
        candidates.push_back(*s);
      }
      std::reverse(candidates.begin(), candidates.end());
      break;
    }
  }
  const std::int64_t missed = count - static_cast<std::int64_t>(candidates.size());
  if (missed > 0) {
    const std::string why = CatchUpReason(task);
    TimeMs x = first;
    std::int64_t listed = 0;
    for (; listed < missed && listed < static_cast<std::int64_t>(kMaxListedSkips); ++listed) {
      p.skipped.emplace_back(x, why);
      x = slots.After(x).value_or(x);
    }
    if (listed < missed) {
      // One row stands for the rest: thousands of identical rows after a
      // long downtime would only bury the runs worth reading.
      const TimeMs end = candidates.empty() ? last : slots.Before(first, candidates.front()).value_or(last);
      p.skipped.emplace_back(x, why + " (this row stands for " + (exact ? "" : "at least ") +
                                    std::to_string(missed - listed) + " slots from " + FormatIsoUtc(x) + " to " +
                                    FormatIsoUtc(end) + ")");
    }
  }
  p.skipped_total = missed;

  // 2. The starting deadline, then the overlap policy, filter the candidates.
  for (TimeMs s : candidates) {
    if (task.starting_deadline_ms && s < now - *task.starting_deadline_ms) {
      p.skipped.emplace_back(s, "missed starting deadline (" + std::to_string(*task.starting_deadline_ms) + " ms)");
      ++p.skipped_total;
    } else if (previous_active && task.overlap == Overlap::kForbid) {
      p.skipped.emplace_back(s, "previous run still queued or running");
      ++p.skipped_total;
    } else {
      p.fire.push_back(s);
    }
  }
  p.replace_previous = previous_active && task.overlap == Overlap::kReplace && !p.fire.empty();

  // 3. The next slot. A once task is used up by this pass whether its slot
  //    fired or was skipped: it must never be due again.
  p.next_run = task.schedule_type == ScheduleType::kOnce ? std::nullopt : slots.After(now);
  p.completed = !p.next_run;
  return p;
}

// ---- TaskQueue ---------------------------------------------------------------

void TaskQueue::Update(const std::string& id, std::optional<TimeMs> next_run) {
  Remove(id);
  if (!next_run) return;
  next_.emplace(id, *next_run);
  by_time_.emplace(*next_run, id);
}

void TaskQueue::Remove(const std::string& id) {
  auto it = next_.find(id);
  if (it == next_.end()) return;
  by_time_.erase({it->second, id});
  next_.erase(it);
}

std::vector<std::string> TaskQueue::PopDue(TimeMs now, std::size_t max) {
  std::vector<std::string> due;
  while (!by_time_.empty() && due.size() < max && by_time_.begin()->first <= now) {
    auto node = by_time_.extract(by_time_.begin());
    next_.erase(node.value().second);
    due.push_back(std::move(node.value().second));
  }
  return due;
}

std::optional<TimeMs> TaskQueue::NextWakeup() const {
  if (by_time_.empty()) return std::nullopt;
  return by_time_.begin()->first;
}

std::optional<TimeMs> TaskQueue::NextRunOf(const std::string& id) const {
  auto it = next_.find(id);
  if (it == next_.end()) return std::nullopt;
  return it->second;
}

// ---- wall-clock jumps --------------------------------------------------------

bool ClockJumped(TimeMs expected_wall, TimeMs actual_wall, TimeMs tolerance) {
  TimeMs d = actual_wall - expected_wall;
  return d > tolerance || d < -tolerance;
}

std::optional<TimeMs> NextRunAfterClockJump(const Task& task, TimeMs now, TimeMs jump_ms) {
  if (jump_ms >= -kClockResetMs || !task.next_run || *task.next_run <= now) return task.next_run;
  if (task.schedule_type == ScheduleType::kOnce) return task.next_run;
  Task fresh = task;
  fresh.next_run.reset();  // a new grid from the new now
  auto next = NextRunAfter(fresh, now);
  if (!next) return task.next_run;
  return std::min(*next, *task.next_run);
}

}  // namespace dropq
