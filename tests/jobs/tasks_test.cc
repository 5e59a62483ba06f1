#include "jobs/tasks.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <map>

#include "jobs/scheduler.h"
#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using testing::TempDir;

constexpr TimeMs kMinute = 60'000;

TimeMs T(const char* iso) {
  auto t = ParseIsoTime(iso);
  REQUIRE(t);
  return *t;
}

Task Draft(const std::string& id, const std::string& group = "main") {
  Task t;
  t.id = id;
  t.group_folder = group;
  t.prompt = "summarise the news";
  t.schedule_type = ScheduleType::kCron;
  t.schedule_value = "0 9 * * *";
  t.tz = "Europe/London";
  return t;
}

struct Fixture {
  TempDir dir;
  ManualClock clock{T("2026-05-01T08:00:00Z")};
  std::unique_ptr<Store> store;
  std::unique_ptr<TaskStore> tasks;
  Fixture() {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup("team", "Team", std::nullopt, false).ok());
    tasks = std::make_unique<TaskStore>(*store);
  }
  Task Add(Task draft) {
    auto v = ValidateTask(std::move(draft), clock.NowMs());
    REQUIRE(v.ok());
    auto stored = tasks->Upsert(*v);
    REQUIRE(stored.ok());
    return *stored;
  }
  JobId Fire(const std::string& task_id, TimeMs slot) {
    RunRequest req;
    req.prompt = "p";
    auto j = store->InsertJob("main", req, {"main", "task-" + task_id, "", TaskSlotClaim(task_id, slot)}, 1);
    REQUIRE(j.ok());
    REQUIRE(tasks->RecordRun(task_id, slot, j->id, TaskRunStatus::kQueued).ok());
    return j->id;
  }
  void Finish(JobId id) {
    auto run = store->StartAttempt(id, "process", "c");
    REQUIRE(run.ok());
    RunOutcome o;
    o.job_state = JobState::kSucceeded;
    o.run = *run;
    o.run.status = "succeeded";
    o.run.finished_at = clock.NowMs();
    auto job = store->GetJob(id);
    REQUIRE(job.ok());
    REQUIRE(store->FinishAttempt(**job, o).ok());
  }
};

TEST_CASE("a task round-trips through the store with every column") {
  Fixture f;
  Task t = Draft("task-1");
  t.chat_jid = "team@g.us";
  t.context_mode = ContextMode::kGroup;
  t.overlap = Overlap::kReplace;
  t.catch_up = CatchUp::kRunAll;
  t.catch_up_max = 3;
  t.starting_deadline_ms = 120'000;
  t.keep_runs = 7;
  t.source = TaskSource::kConfig;
  Task stored = f.Add(t);
  auto got = f.tasks->Get("task-1");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  const Task& g = **got;
  CHECK(g.group_folder == "main");
  CHECK(g.chat_jid == "team@g.us");
  CHECK(g.prompt == "summarise the news");
  CHECK(g.schedule_type == ScheduleType::kCron);
  CHECK(g.schedule_value == "0 9 * * *");
  CHECK(g.tz == "Europe/London");
  CHECK(g.context_mode == ContextMode::kGroup);
  CHECK(g.next_run == T("2026-05-02T08:00:00Z"));  // 09:00 BST, the day after
  CHECK(g.status == TaskStatus::kActive);
  CHECK(g.overlap == Overlap::kReplace);
  CHECK(g.catch_up == CatchUp::kRunAll);
  CHECK(g.catch_up_max == 3);
  CHECK(g.starting_deadline_ms == 120'000);
  CHECK(g.keep_runs == 7);
  CHECK(g.source == TaskSource::kConfig);
  CHECK(g.created_at == f.clock.NowMs());
  CHECK(g.updated_at == f.clock.NowMs());
  CHECK(stored.id == g.id);
}

TEST_CASE("a missing task reads as nothing and cannot be changed or deleted") {
  Fixture f;
  auto got = f.tasks->Get("nope");
  REQUIRE(got.ok());
  CHECK_FALSE(got->has_value());
  CHECK(f.tasks->SetStatus("nope", TaskStatus::kPaused).code() == Status::Code::kNotFound);
  CHECK(f.tasks->SetNextRun("nope", std::nullopt).code() == Status::Code::kNotFound);
  CHECK(f.tasks->Delete("nope").code() == Status::Code::kNotFound);
}

TEST_CASE("validation computes a cron task's first run in its own time zone") {
  auto v = ValidateTask(Draft("t"), T("2026-01-10T10:00:00Z"));
  REQUIRE(v.ok());
  CHECK(v->next_run == T("2026-01-11T09:00:00Z"));  // 09:00 GMT
}

TEST_CASE("validation rejects an invalid cron expression naming the field") {
  Task t = Draft("t");
  t.schedule_value = "61 9 * * *";
  auto v = ValidateTask(t, 0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "schedule_value: invalid cron expression: minute: 61 is out of range 0-59");
}

TEST_CASE("validation rejects an interval that is zero, negative or not a duration") {
  for (const char* bad : {"0", "-5", "5 minutes", "1.5h", ""}) {
    Task t = Draft("t");
    t.schedule_type = ScheduleType::kInterval;
    t.schedule_value = bad;
    auto v = ValidateTask(t, 0);
    INFO(bad);
    REQUIRE_FALSE(v.ok());
    CHECK_THAT(v.status().message(), Catch::StartsWith("schedule_value: interval"));
  }
}

TEST_CASE("an interval task's first run is one interval after now") {
  Task t = Draft("t");
  t.schedule_type = ScheduleType::kInterval;
  t.schedule_value = "30s";
  auto v = ValidateTask(t, 1'000'000);
  REQUIRE(v.ok());
  CHECK(v->next_run == 1'030'000);
}

TEST_CASE("a once time with an offset is that instant") {
  Task t = Draft("t");
  t.schedule_type = ScheduleType::kOnce;
  t.schedule_value = "2026-07-01T09:00:00+02:00";
  auto v = ValidateTask(t, 0);
  REQUIRE(v.ok());
  CHECK(v->next_run == T("2026-07-01T07:00:00Z"));
}

TEST_CASE("a once time without an offset is wall-clock time in the task's zone") {
  CHECK(*ParseOnceTime("2026-07-01T09:00:00", "Europe/London") == T("2026-07-01T08:00:00Z"));
  CHECK(*ParseOnceTime("2026-01-01T09:00:00.250", "America/New_York") == T("2026-01-01T14:00:00.250Z"));
}

TEST_CASE("a once local time in a DST gap shifts later and in a repeat takes the first occurrence") {
  // London 2026-03-29 01:30 does not exist (01:00 GMT → 02:00 BST).
  CHECK(*ParseOnceTime("2026-03-29T01:30:00", "Europe/London") == T("2026-03-29T01:30:00Z"));
  // London 2026-10-25 01:30 happens twice: BST first.
  CHECK(*ParseOnceTime("2026-10-25T01:30:00", "Europe/London") == T("2026-10-25T00:30:00Z"));
}

TEST_CASE("a once value that is not a time is rejected") {
  for (const char* bad : {"tomorrow", "2026-07-01", "2026-07-01T09:00:00+0200", "2026-13-01T09:00:00Z"}) {
    INFO(bad);
    auto t = ParseOnceTime(bad, "UTC");
    REQUIRE_FALSE(t.ok());
    CHECK_THAT(t.status().message(), Catch::StartsWith("schedule_value:"));
  }
}

TEST_CASE("an unknown time zone is rejected") {
  Task t = Draft("t");
  t.tz = "Mars/Olympus_Mons";
  auto v = ValidateTask(t, 0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "tz: unknown time zone \"Mars/Olympus_Mons\"");
}

TEST_CASE("a task without a zone takes the default zone, or the system's") {
  Task t = Draft("t");
  t.tz = "";
  auto v = ValidateTask(t, 0, "Asia/Kolkata");
  REQUIRE(v.ok());
  CHECK(v->tz == "Asia/Kolkata");
  auto sys = ValidateTask(t, 0);
  REQUIRE(sys.ok());
  CHECK_FALSE(sys->tz.empty());
}

TEST_CASE("validation rejects policies out of range") {
  Task a = Draft("t");
  a.catch_up_max = 0;
  CHECK_THAT(ValidateTask(a, 0).status().message(), Catch::StartsWith("catch_up_max"));
  Task b = Draft("t");
  b.keep_runs = 0;
  CHECK_THAT(ValidateTask(b, 0).status().message(), Catch::StartsWith("keep_runs"));
  Task c = Draft("t");
  c.starting_deadline_ms = 0;
  CHECK_THAT(ValidateTask(c, 0).status().message(), Catch::StartsWith("starting_deadline"));
}

TEST_CASE("re-upserting an unchanged schedule keeps next_run and status, so downtime is still caught up") {
  Fixture f;
  Task t = Draft("daily");
  t.source = TaskSource::kConfig;
  f.Add(t);
  REQUIRE(f.tasks->SetNextRun("daily", T("2026-04-20T08:00:00Z")).ok());  // missed while down
  REQUIRE(f.tasks->SetStatus("daily", TaskStatus::kPaused).ok());
  f.clock.Advance(kMinute);
  t.prompt = "a new prompt";
  Task stored = f.Add(t);  // the config is read again at start
  CHECK(stored.prompt == "a new prompt");
  CHECK(stored.next_run == T("2026-04-20T08:00:00Z"));
  CHECK(stored.status == TaskStatus::kPaused);
  CHECK(stored.updated_at == f.clock.NowMs());
}

TEST_CASE("a changed schedule takes the new next_run and revives a completed task") {
  Fixture f;
  Task t = Draft("once");
  t.schedule_type = ScheduleType::kOnce;
  t.schedule_value = "2026-05-01T10:00:00Z";
  f.Add(t);
  REQUIRE(f.tasks->SetNextRun("once", std::nullopt).ok());
  REQUIRE(f.tasks->SetStatus("once", TaskStatus::kCompleted).ok());
  // Unchanged: a completed once task is not revived by reading the config again.
  CHECK(f.Add(t).status == TaskStatus::kCompleted);
  t.schedule_value = "2026-06-01T10:00:00Z";
  Task stored = f.Add(t);
  CHECK(stored.status == TaskStatus::kActive);
  CHECK(stored.next_run == T("2026-06-01T10:00:00Z"));
}

TEST_CASE("a config task and a file task cannot share an id") {
  Fixture f;
  f.Add(Draft("shared"));
  Task cfg = Draft("shared");
  cfg.source = TaskSource::kConfig;
  auto r = f.tasks->Upsert(*ValidateTask(cfg, 0));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kConflict);
}

TEST_CASE("a task for a group that does not exist is refused by the database") {
  Fixture f;
  auto r = f.tasks->Upsert(*ValidateTask(Draft("t", "ghost"), 0));
  CHECK_FALSE(r.ok());
}

TEST_CASE("listing by group returns only that group's tasks, ordered by id") {
  Fixture f;
  f.Add(Draft("b", "team"));
  f.Add(Draft("a", "team"));
  f.Add(Draft("c", "main"));
  auto team = f.tasks->List(std::string("team"));
  REQUIRE(team.ok());
  REQUIRE(team->size() == 2);
  CHECK((*team)[0].id == "a");
  CHECK((*team)[1].id == "b");
  CHECK(f.tasks->List()->size() == 3);
}

TEST_CASE("only active tasks with a next run are loaded into the queue, earliest first") {
  Fixture f;
  f.Add(Draft("later"));
  f.Add(Draft("paused"));
  f.Add(Draft("done"));
  f.Add(Draft("sooner"));
  REQUIRE(f.tasks->SetNextRun("sooner", T("2026-05-01T08:30:00Z")).ok());
  REQUIRE(f.tasks->SetStatus("paused", TaskStatus::kPaused).ok());
  REQUIRE(f.tasks->SetStatus("done", TaskStatus::kCompleted).ok());
  auto active = f.tasks->ActiveWithNextRun();
  REQUIRE(active.ok());
  REQUIRE(active->size() == 2);
  CHECK((*active)[0].id == "sooner");
  CHECK((*active)[1].id == "later");
  REQUIRE(f.tasks->SetNextRun("later", std::nullopt).ok());
  CHECK(f.tasks->ActiveWithNextRun()->size() == 1);
}

TEST_CASE("deleting a task keeps its run history") {
  Fixture f;
  f.Add(Draft("t"));
  REQUIRE(
      f.tasks->RecordRun("t", T("2026-05-01T08:00:00Z"), std::nullopt, TaskRunStatus::kSkipped, std::string("because"))
          .ok());
  REQUIRE(f.tasks->Delete("t").ok());
  CHECK_FALSE(f.tasks->Get("t")->has_value());
  auto runs = f.tasks->ListRuns("t");
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  CHECK((*runs)[0].status == TaskRunStatus::kSkipped);
  CHECK((*runs)[0].error == "because");
}

TEST_CASE("a fired job's run follows it from queued to running to its end, and the task keeps a summary") {
  Fixture f;
  f.Add(Draft("t"));
  JobId job = f.Fire("t", T("2026-05-01T08:00:00Z"));
  auto runs = f.tasks->ListRuns("t");
  REQUIRE(runs->size() == 1);
  CHECK((*runs)[0].status == TaskRunStatus::kQueued);
  CHECK((*runs)[0].scheduled_at == T("2026-05-01T08:00:00Z"));
  CHECK((*runs)[0].fired_at == f.clock.NowMs());
  REQUIRE(f.tasks->StartRunForJob(job, f.clock.NowMs() + 1000).ok());
  CHECK((*f.tasks->ListRuns("t"))[0].status == TaskRunStatus::kRunning);
  f.clock.Advance(kMinute);
  auto id = f.tasks->FinishRunForJob(job, TaskRunStatus::kSucceeded, std::string("\"all done\""), std::nullopt, 59'000);
  REQUIRE(id.ok());
  CHECK(*id == std::optional<std::string>("t"));
  TaskRun run = (*f.tasks->ListRuns("t"))[0];
  CHECK(run.status == TaskRunStatus::kSucceeded);
  CHECK(run.started_at == T("2026-05-01T08:00:01Z"));
  CHECK(run.duration_ms == 59'000);
  CHECK(run.result == "\"all done\"");
  Task t = **f.tasks->Get("t");
  CHECK(t.last_run == f.clock.NowMs());
  CHECK(t.last_result == "all done");
}

TEST_CASE("a failed run's summary is the error, and a long result is cut on a character boundary") {
  Fixture f;
  f.Add(Draft("t"));
  JobId a = f.Fire("t", 1);
  REQUIRE(f.tasks->FinishRunForJob(a, TaskRunStatus::kFailed, std::nullopt, std::string("boom"), 5).ok());
  CHECK(f.tasks->Get("t")->value().last_result == "Error: boom");
  JobId b = f.Fire("t", 2);
  std::string long_text = "\"" + std::string(199, 'x') + "\xC3\xA9" + "\"";  // é straddles byte 200
  REQUIRE(f.tasks->FinishRunForJob(b, TaskRunStatus::kSucceeded, long_text, std::nullopt, 5).ok());
  CHECK(f.tasks->Get("t")->value().last_result == std::string(199, 'x'));
}

TEST_CASE("a job a task fired is known as a scheduled one, and no other job is") {
  Fixture f;
  f.Add(Draft("t"));
  JobId job = f.Fire("t", 1);
  CHECK(*f.tasks->TaskForJob(job) == std::optional<std::string>("t"));
  CHECK_FALSE(f.tasks->TaskForJob(job + 1)->has_value());
}

TEST_CASE("finishing a job that no task fired changes nothing") {
  Fixture f;
  auto id = f.tasks->FinishRunForJob(12345, TaskRunStatus::kSucceeded, std::nullopt, std::nullopt, 1);
  REQUIRE(id.ok());
  CHECK_FALSE(id->has_value());
}

TEST_CASE("pruning keeps the newest runs") {
  Fixture f;
  f.Add(Draft("t"));
  for (int i = 0; i < 5; ++i) {
    REQUIRE(f.tasks->RecordRun("t", i, std::nullopt, TaskRunStatus::kSkipped).ok());
  }
  auto deleted = f.tasks->PruneRuns("t", 2);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 3);
  auto runs = f.tasks->ListRuns("t");
  REQUIRE(runs->size() == 2);
  CHECK((*runs)[0].scheduled_at == 4);
  CHECK((*runs)[1].scheduled_at == 3);
}

TEST_CASE("pruning never deletes a run whose job is still queued or running") {
  Fixture f;
  f.Add(Draft("t"));
  JobId active = f.Fire("t", 1);
  for (int i = 2; i < 5; ++i) REQUIRE(f.tasks->RecordRun("t", i, std::nullopt, TaskRunStatus::kSkipped).ok());
  REQUIRE(f.tasks->PruneRuns("t", 1).ok());
  CHECK(f.tasks->ListRuns("t")->size() == 2);  // the newest and the active one
  CHECK(*f.tasks->HasActiveJob("t"));
  f.Finish(active);
  REQUIRE(f.tasks->PruneRuns("t", 1).ok());
  CHECK(f.tasks->ListRuns("t")->size() == 1);
}

TEST_CASE("pruning looks each candidate's job up by id instead of listing every active job") {
  Fixture f;
  auto plan = f.store->QueryPlan(sql::kPruneTaskRuns);
  REQUIRE(plan.ok());
  std::string text;
  for (const auto& line : *plan) text += line + "\n";
  INFO(text);
  CHECK(text.find("SEARCH j USING INTEGER PRIMARY KEY") != std::string::npos);
  CHECK(text.find("jobs_state") == std::string::npos);
  CHECK(text.find("SCAN") == std::string::npos);
}

TEST_CASE("config tasks removed from the YAML are deleted and file tasks stay") {
  Fixture f;
  for (const char* id : {"keep", "drop1", "drop2"}) {
    Task t = Draft(id);
    t.source = TaskSource::kConfig;
    f.Add(t);
  }
  f.Add(Draft("from-file"));
  auto removed = f.tasks->RemoveConfigTasksExcept({"keep"});
  REQUIRE(removed.ok());
  CHECK(*removed == std::vector<std::string>{"drop1", "drop2"});
  auto left = f.tasks->List();
  REQUIRE(left->size() == 2);
  CHECK((*left)[0].id == "from-file");
  CHECK((*left)[1].id == "keep");
}

TEST_CASE("a task has an active job while a job it fired is queued or running") {
  Fixture f;
  f.Add(Draft("t"));
  CHECK_FALSE(*f.tasks->HasActiveJob("t"));
  REQUIRE(f.tasks->RecordRun("t", 1, std::nullopt, TaskRunStatus::kSkipped).ok());
  CHECK_FALSE(*f.tasks->HasActiveJob("t"));
  JobId job = f.Fire("t", 2);
  CHECK(*f.tasks->HasActiveJob("t"));  // queued
  CHECK(*f.tasks->ActiveJobs("t") == std::vector<JobId>{job});
  // A skipped slot recorded after it does not hide it.
  REQUIRE(f.tasks->RecordRun("t", 3, std::nullopt, TaskRunStatus::kSkipped).ok());
  REQUIRE(f.store->StartAttempt(job, "process", "c").ok());
  CHECK(*f.tasks->HasActiveJob("t"));  // running
  CHECK_FALSE(*f.tasks->HasActiveJob("other"));
}

TEST_CASE("a task's active jobs leave out those of a task whose id it prefixes") {
  // Slots claim "task:<id>:<slot>": task "a:b"'s claims start with "task:a:".
  Fixture f;
  f.Add(Draft("a"));
  f.Add(Draft("a:b"));
  JobId mine = f.Fire("a", 1);
  f.Finish(mine);
  JobId theirs = f.Fire("a:b", 1);
  CHECK(f.tasks->ActiveJobs("a")->empty());
  CHECK(*f.tasks->ActiveJobs("a:b") == std::vector<JobId>{theirs});
}

TEST_CASE("due tasks are loaded with their active jobs and unknown ids are left out") {
  Fixture f;
  f.Add(Draft("t"));
  f.Add(Draft("u"));
  JobId j1 = f.Fire("t", 1);
  JobId j2 = f.Fire("t", 2);
  f.Finish(f.Fire("u", 1));
  auto due = f.tasks->LoadDue({"u", "gone", "t"});
  REQUIRE(due.ok());
  REQUIRE(due->size() == 2);
  std::map<std::string, std::vector<JobId>> active;
  for (const auto& d : *due) active[d.task.id] = d.active_jobs;
  CHECK(active["t"] == std::vector<JobId>{j1, j2});
  CHECK(active["u"].empty());
}

TEST_CASE("a task has no active job once the job it fired has ended") {
  Fixture f;
  f.Add(Draft("t"));
  JobId job = f.Fire("t", 1);
  f.Finish(job);
  CHECK_FALSE(*f.tasks->HasActiveJob("t"));
}

TEST_CASE("a once task fired by one pass is not fired again while its job still runs") {
  // The daemon's pass, with the store: NanoClaw re-enqueued such a task.
  Fixture f;
  Task draft = Draft("once");
  draft.schedule_type = ScheduleType::kOnce;
  draft.schedule_value = "2026-05-01T08:05:00Z";
  f.Add(draft);
  int fired = 0;
  for (int pass = 0; pass < 3; ++pass) {
    f.clock.Advance(5 * kMinute);
    auto due = f.tasks->ActiveWithNextRun();
    REQUIRE(due.ok());
    for (const Task& t : *due) {
      if (*t.next_run > f.clock.NowMs()) continue;
      FirePlan p = Plan(t, f.clock.NowMs(), *f.tasks->HasActiveJob(t.id));
      REQUIRE(f.store->Begin().ok());
      for (TimeMs slot : p.fire) {
        JobId job = f.Fire(t.id, slot);
        REQUIRE(f.store->StartAttempt(job, "process", "c").ok());  // and it keeps running
        ++fired;
      }
      REQUIRE(f.tasks->SetNextRun(t.id, p.next_run).ok());
      if (p.completed) REQUIRE(f.tasks->SetStatus(t.id, TaskStatus::kCompleted).ok());
      REQUIRE(f.store->Commit().ok());
    }
  }
  CHECK(fired == 1);
  CHECK(f.tasks->Get("once")->value().status == TaskStatus::kCompleted);
}

// ---- update_task: ApplyTaskChanges and TaskStore::Update ----------------------

// A stored-looking task: validated at `created`, next_run set from there.
Task Existing(TimeMs created) {
  auto v = ValidateTask(Draft("t"), created);
  REQUIRE(v.ok());
  return *v;
}

TEST_CASE("a changed cron schedule takes its next run from now, not from when the task was made") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));  // next run 2026-01-11T09:00Z
  TaskChanges c;
  c.schedule_value = "30 17 * * *";
  auto u = ApplyTaskChanges(t, c, T("2026-02-01T12:00:00Z"));
  REQUIRE(u.ok());
  CHECK(u->rescheduled);
  CHECK(u->changed == std::vector<std::string>{"schedule_value"});
  CHECK(u->task.next_run == T("2026-02-01T17:30:00Z"));  // 17:30 GMT, today
}

TEST_CASE("a change of schedule type to interval makes the next run one interval after now") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  TaskChanges c;
  c.schedule_type = ScheduleType::kInterval;
  c.schedule_value = "15m";
  auto u = ApplyTaskChanges(t, c, T("2026-03-01T12:00:00Z"));
  REQUIRE(u.ok());
  CHECK(u->task.schedule_type == ScheduleType::kInterval);
  CHECK(u->task.next_run == T("2026-03-01T12:15:00Z"));
  CHECK(u->changed == std::vector<std::string>{"schedule_type", "schedule_value"});
}

TEST_CASE("a changed zone alone moves the next run to the same wall-clock time in the new zone") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));  // 0 9 * * * in London
  TaskChanges c;
  c.tz = "America/New_York";
  auto u = ApplyTaskChanges(t, c, T("2026-01-10T10:00:00Z"));
  REQUIRE(u.ok());
  CHECK(u->rescheduled);
  CHECK(u->task.next_run == T("2026-01-10T14:00:00Z"));  // 09:00 EST, today
}

TEST_CASE("a new prompt alone keeps the next run the task had") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  TaskChanges c;
  c.prompt = "summarise the weather";
  auto u = ApplyTaskChanges(t, c, T("2026-01-10T11:00:00Z"));
  REQUIRE(u.ok());
  CHECK_FALSE(u->rescheduled);
  CHECK(u->task.prompt == "summarise the weather");
  CHECK(u->task.next_run == T("2026-01-11T09:00:00Z"));
}

TEST_CASE("a schedule given as it already is keeps the next run and lists nothing changed") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  TaskChanges c;
  c.schedule_type = ScheduleType::kCron;
  c.schedule_value = "0 9 * * *";
  auto u = ApplyTaskChanges(t, c, T("2026-01-12T10:00:00Z"));
  REQUIRE(u.ok());
  CHECK_FALSE(u->rescheduled);
  CHECK(u->changed.empty());
  CHECK(u->task.next_run == T("2026-01-11T09:00:00Z"));  // a missed slot, still to be caught up
}

TEST_CASE("a paused task given a new schedule stays paused with the new next run") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  t.status = TaskStatus::kPaused;
  TaskChanges c;
  c.schedule_value = "0 18 * * *";
  auto u = ApplyTaskChanges(t, c, T("2026-01-10T12:00:00Z"));
  REQUIRE(u.ok());
  CHECK(u->task.status == TaskStatus::kPaused);
  CHECK(u->task.next_run == T("2026-01-10T18:00:00Z"));
}

TEST_CASE("a completed once task given a new once time is active again and due then") {
  Task t = Draft("t");
  t.schedule_type = ScheduleType::kOnce;
  t.schedule_value = "2026-01-10T09:00:00Z";
  auto v = ValidateTask(t, T("2026-01-01T00:00:00Z"));
  REQUIRE(v.ok());
  v->status = TaskStatus::kCompleted;
  v->next_run = std::nullopt;
  TaskChanges c;
  c.schedule_value = "2026-02-01T09:00:00Z";
  auto u = ApplyTaskChanges(*v, c, T("2026-01-20T00:00:00Z"));
  REQUIRE(u.ok());
  CHECK(u->task.status == TaskStatus::kActive);
  CHECK(u->task.next_run == T("2026-02-01T09:00:00Z"));
}

TEST_CASE("a completed task given only a new prompt stays completed") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  t.status = TaskStatus::kCompleted;
  TaskChanges c;
  c.prompt = "again?";
  auto u = ApplyTaskChanges(t, c, T("2026-01-10T11:00:00Z"));
  REQUIRE(u.ok());
  CHECK(u->task.status == TaskStatus::kCompleted);
}

TEST_CASE("an update with an invalid new schedule is rejected naming the field") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  TaskChanges c;
  c.schedule_value = "61 9 * * *";
  auto u = ApplyTaskChanges(t, c, T("2026-01-10T11:00:00Z"));
  REQUIRE_FALSE(u.ok());
  CHECK_THAT(u.status().message(), Catch::StartsWith("schedule_value: invalid cron expression"));
}

TEST_CASE("an update with keep_runs 0 is rejected as a new task would be") {
  Task t = Existing(T("2026-01-10T10:00:00Z"));
  TaskChanges c;
  c.keep_runs = 0;
  auto u = ApplyTaskChanges(t, c, T("2026-01-10T11:00:00Z"));
  REQUIRE_FALSE(u.ok());
  CHECK(u.status().message() == "keep_runs: must be at least 1");
}

TEST_CASE("updating a stored task rewrites its definition and keeps its group, source and creation time") {
  Fixture f;
  Task stored = f.Add(Draft("t", "team"));
  f.clock.Advance(kMinute);
  TaskChanges c;
  c.prompt = "new words";
  c.overlap = Overlap::kAllow;
  c.starting_deadline_ms = 30'000;
  auto u = ApplyTaskChanges(stored, c, f.clock.NowMs());
  REQUIRE(u.ok());
  REQUIRE(f.tasks->Update(u->task).ok());
  Task g = f.tasks->Get("t")->value();
  CHECK(g.prompt == "new words");
  CHECK(g.overlap == Overlap::kAllow);
  CHECK(g.starting_deadline_ms == 30'000);
  CHECK(g.group_folder == "team");
  CHECK(g.source == TaskSource::kFile);
  CHECK(g.created_at == stored.created_at);
  CHECK(g.updated_at == f.clock.NowMs());
  CHECK(g.next_run == stored.next_run);
}

TEST_CASE("updating a task that is not stored is not found") {
  Fixture f;
  CHECK(f.tasks->Update(Existing(T("2026-01-10T10:00:00Z"))).code() == Status::Code::kNotFound);
}

TEST_CASE("the scheduler tables refuse values outside their documented sets") {
  Fixture f;
  f.Add(Draft("t"));
  CHECK(StoreSql::Exec(*f.store, "UPDATE scheduled_tasks SET overlap='sometimes'").code() == Status::Code::kIOError);
  CHECK_FALSE(f.tasks->RecordRun("t", 1, std::int64_t{999}, TaskRunStatus::kQueued).ok());  // no such job
  CHECK(StoreSql::Exec(*f.store,
                       "INSERT INTO messages(group_folder, chat_jid, text, created_at) "
                       "VALUES('main', 'x@g.us', 'hi', '2026-05-01T08:00:00.000Z')")
            .ok());
  CHECK_FALSE(StoreSql::Exec(*f.store, "UPDATE messages SET delivery_state='lost'").ok());
}

}  // namespace
}  // namespace dropq
