#include "jobs/scheduler.h"

#include <catch2/catch.hpp>

namespace dropq {
namespace {

constexpr TimeMs kSecond = 1000;
constexpr TimeMs kMinute = 60 * kSecond;
constexpr TimeMs kHour = 60 * kMinute;

TimeMs T(const char* iso) {
  auto t = ParseIsoTime(iso);
  REQUIRE(t);
  return *t;
}

// A validated task whose next_run is the first slot after `created`.
Task MakeTask(ScheduleType type, const std::string& value, TimeMs created, const std::string& tz = "UTC") {
  Task t;
  t.id = "t1";
  t.group_folder = "main";
  t.prompt = "do it";
  t.schedule_type = type;
  t.schedule_value = value;
  t.tz = tz;
  auto v = ValidateTask(t, created);
  REQUIRE(v.ok());
  return *v;
}

// What the daemon stores after a pass.
void Apply(Task& t, const FirePlan& p) {
  t.next_run = p.next_run;
  if (p.completed) t.status = TaskStatus::kCompleted;
}

TEST_CASE("a cron task's next run follows the slot that fired, not the pass or the job's end") {
  Task t = MakeTask(ScheduleType::kCron, "*/5 * * * *", T("2026-05-01T08:58:00Z"));
  REQUIRE(t.next_run == T("2026-05-01T09:00:00Z"));
  // The pass ran 40 s late; the next slot is still 09:05, not 09:05:40.
  FirePlan p = Plan(t, T("2026-05-01T09:00:40Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T09:00:00Z")});
  CHECK(p.next_run == T("2026-05-01T09:05:00Z"));
  // Asked with an `after` before the slot, the answer is still its successor.
  CHECK(NextRunAfter(t, T("2026-05-01T08:00:00Z")) == T("2026-05-01T09:05:00Z"));
}

TEST_CASE("an interval task's slots do not drift when passes run late") {
  const TimeMs t0 = T("2026-05-01T09:00:00Z");
  Task t = MakeTask(ScheduleType::kInterval, "1h", t0 - kHour);
  REQUIRE(t.next_run == t0);
  FirePlan p = Plan(t, t0 + 3 * kSecond, false);
  CHECK(p.fire == std::vector<TimeMs>{t0});
  CHECK(p.next_run == t0 + kHour);
  Apply(t, p);
  p = Plan(t, t0 + kHour + 10 * kSecond, false);
  CHECK(p.fire == std::vector<TimeMs>{t0 + kHour});
  CHECK(p.next_run == t0 + 2 * kHour);
}

TEST_CASE("an interval written in milliseconds, as NanoClaw wrote it, is the same as one with a unit") {
  const TimeMs t0 = T("2026-05-01T09:00:00Z");
  CHECK(MakeTask(ScheduleType::kInterval, "300000", t0).next_run == t0 + 5 * kMinute);
  CHECK(MakeTask(ScheduleType::kInterval, "5m", t0).next_run == t0 + 5 * kMinute);
}

TEST_CASE("after downtime an interval task fires its latest slot and resumes on its grid") {
  const TimeMs t0 = T("2026-05-01T09:00:00Z");
  Task t = MakeTask(ScheduleType::kInterval, "1h", t0 - kHour);
  FirePlan p = Plan(t, t0 + 5 * kHour + 30 * kMinute, false);
  CHECK(p.fire == std::vector<TimeMs>{t0 + 5 * kHour});
  CHECK(p.skipped_total == 5);
  CHECK(p.next_run == t0 + 6 * kHour);
}

TEST_CASE("run_once fires only the latest missed slot and records the others as skipped") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  FirePlan p = Plan(t, T("2026-05-01T12:10:00Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T12:00:00Z")});
  REQUIRE(p.skipped.size() == 3);
  CHECK(p.skipped[0].first == T("2026-05-01T09:00:00Z"));
  CHECK(p.skipped[2].first == T("2026-05-01T11:00:00Z"));
  CHECK_THAT(p.skipped[0].second, Catch::Contains("run_once"));
  CHECK(p.skipped_total == 3);
  CHECK(p.next_run == T("2026-05-01T13:00:00Z"));
  CHECK_FALSE(p.completed);
}

TEST_CASE("a long downtime records a few missed slots and one summary row, not thousands") {
  Task t = MakeTask(ScheduleType::kCron, "* * * * *", T("2026-05-01T00:00:30Z"));
  FirePlan p = Plan(t, T("2026-05-31T00:00:30Z"), false);  // 30 days: 43,200 slots
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-31T00:00:00Z")});
  CHECK(p.skipped_total == 43'199);
  REQUIRE(p.skipped.size() == kMaxListedSkips + 1);
  CHECK(p.skipped[kMaxListedSkips].first == T("2026-05-01T00:06:00Z"));
  CHECK_THAT(p.skipped.back().second,
             Catch::Contains("stands for 43194 slots from 2026-05-01T00:06:00.000Z to 2026-05-30T23:59:00.000Z"));
}

TEST_CASE("counting missed every-second slots stops at a cap and says at least") {
  Task t = MakeTask(ScheduleType::kCron, "* * * * * *", T("2026-01-01T00:00:00Z"));
  FirePlan p = Plan(t, T("2026-12-01T00:00:00Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-12-01T00:00:00Z")});
  CHECK(p.next_run == T("2026-12-01T00:00:01Z"));
  CHECK_THAT(p.skipped.back().second, Catch::Contains("at least"));
}

TEST_CASE("catch_up skip fires nothing missed during downtime and waits for the next slot") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.catch_up = CatchUp::kSkip;
  FirePlan p = Plan(t, T("2026-05-01T12:10:00Z"), false);
  CHECK(p.fire.empty());
  CHECK(p.skipped_total == 4);
  REQUIRE(p.skipped.size() == 4);
  CHECK_THAT(p.skipped[3].second, Catch::Contains("skip"));
  CHECK(p.next_run == T("2026-05-01T13:00:00Z"));
}

TEST_CASE("catch_up skip still fires a slot that is only a little late") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.catch_up = CatchUp::kSkip;
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z") + kSkipGraceMs, false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T09:00:00Z")});
  CHECK(p.skipped.empty());
}

TEST_CASE("run_all fires every missed slot, oldest first") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.catch_up = CatchUp::kRunAll;
  FirePlan p = Plan(t, T("2026-05-01T11:10:00Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T09:00:00Z"), T("2026-05-01T10:00:00Z"), T("2026-05-01T11:00:00Z")});
  CHECK(p.skipped.empty());
  CHECK(p.next_run == T("2026-05-01T12:00:00Z"));
}

TEST_CASE("run_all fires at most catch_up_max slots, the latest, and skips the older ones with a reason") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.catch_up = CatchUp::kRunAll;
  t.catch_up_max = 2;
  FirePlan p = Plan(t, T("2026-05-01T13:10:00Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T12:00:00Z"), T("2026-05-01T13:00:00Z")});
  REQUIRE(p.skipped.size() == 3);
  CHECK(p.skipped[0].first == T("2026-05-01T09:00:00Z"));
  CHECK_THAT(p.skipped[0].second, Catch::Contains("catch_up_max (2)"));
}

TEST_CASE("a slot older than the starting deadline is skipped") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.starting_deadline_ms = 5 * kMinute;
  FirePlan p = Plan(t, T("2026-05-01T09:06:00Z"), false);
  CHECK(p.fire.empty());
  REQUIRE(p.skipped.size() == 1);
  CHECK(p.skipped[0].first == T("2026-05-01T09:00:00Z"));
  CHECK(p.skipped[0].second == "missed starting deadline (300000 ms)");
  CHECK(p.next_run == T("2026-05-01T10:00:00Z"));
}

TEST_CASE("a slot within the starting deadline fires") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.starting_deadline_ms = 5 * kMinute;
  CHECK(Plan(t, T("2026-05-01T09:04:59Z"), false).fire.size() == 1);
}

TEST_CASE("overlap forbid skips a slot while the previous run is still queued or running") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), true);
  CHECK(p.fire.empty());
  REQUIRE(p.skipped.size() == 1);
  CHECK(p.skipped[0].second == "previous run still queued or running");
  CHECK(p.next_run == T("2026-05-01T10:00:00Z"));
  CHECK_FALSE(p.replace_previous);
}

TEST_CASE("overlap allow fires while the previous run is still active") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.overlap = Overlap::kAllow;
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), true);
  CHECK(p.fire.size() == 1);
  CHECK_FALSE(p.replace_previous);
}

TEST_CASE("overlap replace fires and asks for the previous run to be cancelled") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.overlap = Overlap::kReplace;
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), true);
  CHECK(p.fire.size() == 1);
  CHECK(p.replace_previous);
  CHECK_FALSE(Plan(t, T("2026-05-01T09:00:00Z"), false).replace_previous);
}

TEST_CASE("a once task fires at its time and is completed") {
  Task t = MakeTask(ScheduleType::kOnce, "2026-05-01T09:00:00Z", T("2026-05-01T08:00:00Z"));
  CHECK(Plan(t, T("2026-05-01T08:59:59Z"), false).fire.empty());
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T09:00:00Z")});
  CHECK(p.next_run == std::nullopt);
  CHECK(p.completed);
  CHECK(NextRunAfter(t, T("2026-05-01T08:00:00Z")) == std::nullopt);
}

TEST_CASE("a once task whose job is still running is not fired again by the next pass") {
  // NanoClaw left a running once task due, and its next poll ran it again.
  Task t = MakeTask(ScheduleType::kOnce, "2026-05-01T09:00:00Z", T("2026-05-01T08:00:00Z"));
  TaskQueue queue;
  queue.Update(t.id, t.next_run);
  int fired = 0;
  for (TimeMs now = T("2026-05-01T09:00:00Z"); now < T("2026-05-01T10:00:00Z"); now += kMinute) {
    for (const auto& id : queue.PopDue(now)) {
      REQUIRE(id == t.id);
      // The job fired at 09:00 is still running at every later pass.
      FirePlan p = Plan(t, now, /*previous_active=*/fired > 0);
      fired += static_cast<int>(p.fire.size());
      Apply(t, p);
      queue.Update(id, t.status == TaskStatus::kActive ? t.next_run : std::nullopt);
    }
  }
  CHECK(fired == 1);
  CHECK(t.status == TaskStatus::kCompleted);
  CHECK(queue.empty());
  CHECK(Plan(t, T("2026-05-01T10:00:00Z"), true).fire.empty());
}

TEST_CASE("a once task whose slot is skipped is completed and never fires") {
  Task t = MakeTask(ScheduleType::kOnce, "2026-05-01T09:00:00Z", T("2026-05-01T08:00:00Z"));
  t.catch_up = CatchUp::kSkip;
  FirePlan p = Plan(t, T("2026-05-01T11:00:00Z"), false);
  CHECK(p.fire.empty());
  CHECK(p.skipped.size() == 1);
  CHECK(p.completed);
}

TEST_CASE("a paused task or one not yet due gets an empty plan that keeps its next run") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  FirePlan early = Plan(t, T("2026-05-01T08:59:00Z"), false);
  CHECK(early.fire.empty());
  CHECK(early.skipped.empty());
  CHECK(early.next_run == t.next_run);
  t.status = TaskStatus::kPaused;
  FirePlan paused = Plan(t, T("2026-05-01T09:00:00Z"), false);
  CHECK(paused.fire.empty());
  CHECK(paused.next_run == t.next_run);
  CHECK_FALSE(paused.completed);
}

TEST_CASE("a daily cron task in Europe/London fires once a day across both DST changes") {
  // 2026-03-29 01:00 GMT → 02:00 BST: 01:30 does not exist and fires at 02:30
  // BST; 2026-10-25 02:00 BST → 01:00 GMT: 01:30 happens twice, fires once.
  Task t = MakeTask(ScheduleType::kCron, "30 1 * * *", T("2026-03-27T12:00:00Z"), "Europe/London");
  std::vector<TimeMs> fires;
  for (TimeMs now = T("2026-03-27T12:00:00Z"); now < T("2026-10-27T12:00:00Z"); now += 15 * kMinute) {
    FirePlan p = Plan(t, now, false);
    fires.insert(fires.end(), p.fire.begin(), p.fire.end());
    Apply(t, p);
  }
  REQUIRE(fires.size() == 214);                    // 2026-03-28 .. 2026-10-27, one per day
  CHECK(fires[0] == T("2026-03-28T01:30:00Z"));    // GMT
  CHECK(fires[1] == T("2026-03-29T01:30:00Z"));    // 02:30 BST, shifted by the gap
  CHECK(fires[2] == T("2026-03-30T00:30:00Z"));    // 01:30 BST
  CHECK(fires[211] == T("2026-10-25T00:30:00Z"));  // the first 01:30, BST, only
  CHECK(fires[212] == T("2026-10-26T01:30:00Z"));  // GMT again
}

TEST_CASE("the task queue pops due tasks earliest first and wakes for the earliest") {
  TaskQueue q;
  CHECK(q.NextWakeup() == std::nullopt);
  q.Update("c", 300);
  q.Update("a", 100);
  q.Update("b", 200);
  CHECK(q.NextWakeup() == 100);
  CHECK(q.PopDue(250) == std::vector<std::string>{"a", "b"});
  CHECK(q.NextWakeup() == 300);
  CHECK(q.PopDue(250).empty());
  CHECK(q.size() == 1);
}

TEST_CASE("updating a queued task moves it and removing it forgets it") {
  TaskQueue q;
  q.Update("a", 100);
  q.Update("b", 200);
  q.Update("a", 300);
  CHECK(q.NextRunOf("a") == 300);
  CHECK(q.PopDue(250) == std::vector<std::string>{"b"});
  q.Remove("a");
  q.Remove("never-there");
  CHECK(q.empty());
  q.Update("c", 50);
  q.Update("c", std::nullopt);
  CHECK(q.empty());
}

TEST_CASE("popping due tasks can be bounded per loop turn") {
  TaskQueue q;
  for (int i = 0; i < 10; ++i) q.Update("t" + std::to_string(i), 100 + i);
  CHECK(q.PopDue(1000, 4).size() == 4);
  CHECK(q.NextWakeup() == 104);
  CHECK(q.size() == 6);
}

TEST_CASE("the task queue holds 100,000 tasks and pops exactly the due ones in order") {
  TaskQueue q;
  constexpr int kN = 100'000;
  // Inserted in a scrambled order: i * 7919 mod kN visits every slot once.
  for (int i = 0; i < kN; ++i) {
    int k = static_cast<int>((static_cast<std::int64_t>(i) * 7919) % kN);
    q.Update("task-" + std::to_string(k), 1'000'000 + k * 10);
  }
  REQUIRE(q.size() == kN);
  CHECK(q.NextWakeup() == 1'000'000);
  auto due = q.PopDue(1'000'000 + 99 * 10);
  REQUIRE(due.size() == 100);
  for (int k = 0; k < 100; ++k) CHECK(due[static_cast<std::size_t>(k)] == "task-" + std::to_string(k));
  CHECK(q.NextWakeup() == 1'000'000 + 100 * 10);
  q.Update("task-99999", 0);  // rescheduled to the front
  CHECK(q.NextWakeup() == 0);
  CHECK(q.size() == kN - 100);
}

TEST_CASE("a clock jump is noticed either way beyond the tolerance, drift within it is not") {
  CHECK_FALSE(ClockJumped(1'000'000, 1'000'000 + kClockJumpToleranceMs, kClockJumpToleranceMs));
  CHECK_FALSE(ClockJumped(1'000'000, 1'000'000 - kClockJumpToleranceMs, kClockJumpToleranceMs));
  CHECK(ClockJumped(1'000'000, 1'000'000 + kClockJumpToleranceMs + 1, kClockJumpToleranceMs));
  CHECK(ClockJumped(1'000'000, 1'000'000 - kHour, kClockJumpToleranceMs));
}

TEST_CASE("after a small backward clock jump a task keeps its next run, so no slot fires twice") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T09:30:00Z"));
  REQUIRE(t.next_run == T("2026-05-01T10:00:00Z"));
  CHECK(NextRunAfterClockJump(t, T("2026-05-01T08:59:00Z"), -kHour) == T("2026-05-01T10:00:00Z"));
}

TEST_CASE("after a backward clock jump beyond three hours cron and interval tasks re-plan from the new now") {
  const TimeMs fast = T("2027-05-01T09:30:00Z");  // the clock was a year fast
  const TimeMs now = T("2026-05-01T09:30:00Z");
  Task cron = MakeTask(ScheduleType::kCron, "0 * * * *", fast);
  CHECK(NextRunAfterClockJump(cron, now, now - fast) == T("2026-05-01T10:00:00Z"));
  Task interval = MakeTask(ScheduleType::kInterval, "15m", fast);
  CHECK(NextRunAfterClockJump(interval, now, now - fast) == now + 15 * kMinute);
  Task once = MakeTask(ScheduleType::kOnce, "2027-06-01T00:00:00Z", fast);
  CHECK(NextRunAfterClockJump(once, now, now - fast) == T("2027-06-01T00:00:00Z"));
}

TEST_CASE("a forward clock jump is treated like downtime by the catch-up policy") {
  Task t = MakeTask(ScheduleType::kCron, "*/10 * * * *", T("2026-05-01T09:05:00Z"));
  // Suspended at 09:05, resumed at 11:02: the wall clock jumped forward.
  CHECK(NextRunAfterClockJump(t, T("2026-05-01T11:02:00Z"), 2 * kHour) == t.next_run);
  FirePlan p = Plan(t, T("2026-05-01T11:02:00Z"), false);
  CHECK(p.fire == std::vector<TimeMs>{T("2026-05-01T11:00:00Z")});
  CHECK(p.skipped_total == 11);
}

TEST_CASE("a stored task whose schedule no longer parses is stopped with the reason") {
  Task t = MakeTask(ScheduleType::kCron, "0 * * * *", T("2026-05-01T08:30:00Z"));
  t.schedule_value = "61 * * * *";
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), false);
  CHECK(p.fire.empty());
  REQUIRE(p.skipped.size() == 1);
  CHECK_THAT(p.skipped[0].second, Catch::Contains("invalid schedule: minute"));
  CHECK(p.completed);
}

}  // namespace
TEST_CASE("a schedule cache compiles a task's schedule once however often it is asked") {
  Task t = MakeTask(ScheduleType::kCron, "*/5 * * * *", T("2026-05-01T08:58:00Z"));
  ScheduleCache cache;
  for (int i = 0; i < 3; ++i) REQUIRE(cache.Get(t).ok());
  CHECK(cache.compiles() == 1);
  CHECK(cache.size() == 1);
}

TEST_CASE("a schedule cache compiles again when the task's expression, type or zone changed") {
  Task t = MakeTask(ScheduleType::kCron, "*/5 * * * *", T("2026-05-01T08:58:00Z"));
  ScheduleCache cache;
  REQUIRE(cache.Get(t).ok());
  t.schedule_value = "0 * * * *";
  REQUIRE(cache.Get(t).ok());
  t.tz = "Europe/Berlin";
  REQUIRE(cache.Get(t).ok());
  t.schedule_type = ScheduleType::kInterval;
  t.schedule_value = "1h";
  REQUIRE(cache.Get(t).ok());
  CHECK(cache.compiles() == 4);
  CHECK(cache.Get(t)->type == ScheduleType::kInterval);
  CHECK(cache.Get(t)->interval_ms == kHour);
}

TEST_CASE("a plan from a cached schedule whose expression changed fires on the new expression's slots") {
  Task t = MakeTask(ScheduleType::kCron, "*/5 * * * *", T("2026-05-01T08:58:00Z"));
  ScheduleCache cache;
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), false, cache.Get(t));
  CHECK(p.next_run == T("2026-05-01T09:05:00Z"));
  Apply(t, p);
  t.schedule_value = "30 * * * *";
  p = Plan(t, T("2026-05-01T09:05:00Z"), false, cache.Get(t));
  CHECK(p.next_run == T("2026-05-01T09:30:00Z"));
}

TEST_CASE("a plan from a cached schedule is the plan from a freshly parsed one") {
  Task t = MakeTask(ScheduleType::kCron, "0 9 * * 1-5", T("2026-05-01T08:58:00Z"), "Europe/Berlin");
  t.catch_up = CatchUp::kRunAll;
  ScheduleCache cache;
  const TimeMs now = T("2026-05-20T12:00:00Z");  // nineteen days down
  FirePlan cached = Plan(t, now, false, cache.Get(t));
  FirePlan fresh = Plan(t, now, false);
  CHECK(cached.fire == fresh.fire);
  CHECK(cached.skipped == fresh.skipped);
  CHECK(cached.next_run == fresh.next_run);
  CHECK(cached.fire.size() == 10);
}

TEST_CASE("a plan from a schedule that does not compile completes the task and says why") {
  Task t = MakeTask(ScheduleType::kCron, "*/5 * * * *", T("2026-05-01T08:58:00Z"));
  t.schedule_value = "61 * * * *";  // a hand-edited row
  ScheduleCache cache;
  FirePlan p = Plan(t, T("2026-05-01T09:00:00Z"), false, cache.Get(t));
  CHECK(p.completed);
  REQUIRE(p.skipped.size() == 1);
  CHECK(p.skipped[0].second.rfind("invalid schedule: ", 0) == 0);
}

}  // namespace dropq
