#include "jobs/tasks.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <utility>

#include <date/tz.h>
#include <nlohmann/json.hpp>

#include "jobs/cron.h"
#include "base/units.h"
#include "base/text.h"

namespace dropq {

// ---- enums as the strings the schema's CHECK constraints name --------------

namespace {

template <typename E, std::size_t N>
using Names = std::array<std::pair<E, std::string_view>, N>;

constexpr Names<ScheduleType, 3> kScheduleTypes{
    {{ScheduleType::kCron, "cron"}, {ScheduleType::kInterval, "interval"}, {ScheduleType::kOnce, "once"}}};
constexpr Names<TaskStatus, 3> kTaskStatuses{
    {{TaskStatus::kActive, "active"}, {TaskStatus::kPaused, "paused"}, {TaskStatus::kCompleted, "completed"}}};
constexpr Names<Overlap, 3> kOverlaps{
    {{Overlap::kForbid, "forbid"}, {Overlap::kAllow, "allow"}, {Overlap::kReplace, "replace"}}};
constexpr Names<CatchUp, 3> kCatchUps{
    {{CatchUp::kRunOnce, "run_once"}, {CatchUp::kSkip, "skip"}, {CatchUp::kRunAll, "run_all"}}};
constexpr Names<TaskSource, 2> kSources{{{TaskSource::kConfig, "config"}, {TaskSource::kFile, "file"}}};
constexpr Names<TaskRunStatus, 6> kRunStatuses{{{TaskRunStatus::kQueued, "queued"},
                                                {TaskRunStatus::kRunning, "running"},
                                                {TaskRunStatus::kSucceeded, "succeeded"},
                                                {TaskRunStatus::kFailed, "failed"},
                                                {TaskRunStatus::kSkipped, "skipped"},
                                                {TaskRunStatus::kCancelled, "cancelled"}}};

template <typename E, std::size_t N>
std::string_view NameOf(const Names<E, N>& names, E v) {
  for (const auto& [e, name] : names) {
    if (e == v) return name;
  }
  return "unknown";
}

template <typename E, std::size_t N>
std::optional<E> ValueOf(const Names<E, N>& names, std::string_view s) {
  for (const auto& [e, name] : names) {
    if (name == s) return e;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ToString(ScheduleType v) { return NameOf(kScheduleTypes, v); }
std::string_view ToString(TaskStatus v) { return NameOf(kTaskStatuses, v); }
std::string_view ToString(Overlap v) { return NameOf(kOverlaps, v); }
std::string_view ToString(CatchUp v) { return NameOf(kCatchUps, v); }
std::string_view ToString(TaskSource v) { return NameOf(kSources, v); }
std::string_view ToString(TaskRunStatus v) { return NameOf(kRunStatuses, v); }
std::optional<ScheduleType> ParseScheduleType(std::string_view s) { return ValueOf(kScheduleTypes, s); }
std::optional<TaskStatus> ParseTaskStatus(std::string_view s) { return ValueOf(kTaskStatuses, s); }
std::optional<Overlap> ParseOverlap(std::string_view s) { return ValueOf(kOverlaps, s); }
std::optional<CatchUp> ParseCatchUp(std::string_view s) { return ValueOf(kCatchUps, s); }
std::optional<TaskSource> ParseTaskSource(std::string_view s) { return ValueOf(kSources, s); }
std::optional<TaskRunStatus> ParseTaskRunStatus(std::string_view s) { return ValueOf(kRunStatuses, s); }

// ---- validation --------------------------------------------------------------

namespace {

// Past this an interval is a typo, and next_run arithmetic could overflow.
constexpr std::int64_t kMaxIntervalMs = 100LL * 366 * 24 * 3600 * 1000;

bool HasOffset(std::string_view v) {
  if (!v.empty() && (v.back() == 'Z' || v.back() == 'z')) return true;
  return v.size() > 6 && (v[v.size() - 6] == '+' || v[v.size() - 6] == '-') && v[v.size() - 3] == ':';
}

// The policy fields' ranges, for a new task and an updated one alike.
Status CheckPolicies(const Task& task) {
  if (task.catch_up_max < 1) return Status::InvalidArgument("catch_up_max: must be at least 1");
  if (task.keep_runs < 1) return Status::InvalidArgument("keep_runs: must be at least 1");
  if (task.starting_deadline_ms && *task.starting_deadline_ms <= 0) {
    return Status::InvalidArgument("starting_deadline: must be positive");
  }
  return Status::Ok();
}

}  // namespace

Result<TimeMs> ParseOnceTime(std::string_view value, std::string_view tz) {
  auto bad = [&] {
    return Status::InvalidArgument("schedule_value: \"" + std::string(value) +
                                   "\" is not an ISO-8601 time (2026-03-01T09:00:00, optionally with Z or +01:00)");
  };
  if (HasOffset(value)) {
    auto t = ParseIsoTime(value);
    if (!t) return bad();
    return *t;
  }
  // Read the wall-clock fields as if they were UTC, then place them in the zone.
  auto fields = ParseIsoTime(std::string(value) + "Z");
  if (!fields) return bad();
  auto zone = cron::LoadTimeZone(tz);
  if (!zone.ok()) return Status::InvalidArgument("tz: " + zone.status().message());
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  date::local_seconds local{date::floor<seconds>(milliseconds(*fields))};
  // info.first is the offset in force before a transition, so one rule
  // covers all three cases as docs/CRON.md states them for cron: a unique
  // time converts normally, a repeated one takes its first occurrence, and
  // one skipped by a spring-forward shifts later by the gap's length.
  const date::local_info info = (*zone)->get_info(local);
  return *fields - std::chrono::duration_cast<milliseconds>(info.first.offset).count();
}

Result<std::string> ResolveZoneName(std::string_view default_tz) {
  if (!default_tz.empty()) return std::string(default_tz);
  auto sys = cron::LoadTimeZone("");
  if (!sys.ok()) return sys.status();
  return std::string((*sys)->name());
}

Result<Task> ValidateTask(Task task, TimeMs now, std::string_view default_tz) {
  if (task.id.empty()) return Status::InvalidArgument("id: must not be empty");
  if (task.group_folder.empty()) return Status::InvalidArgument("group_folder: must not be empty");
  if (task.prompt.empty()) return Status::InvalidArgument("prompt: must not be empty");
  if (task.tz.empty()) {
    auto zone = ResolveZoneName(default_tz);
    if (!zone.ok()) return zone.status();
    task.tz = std::move(*zone);
  }
  auto zone = cron::LoadTimeZone(task.tz);
  if (!zone.ok()) return Status::InvalidArgument("tz: " + zone.status().message());

  switch (task.schedule_type) {
    case ScheduleType::kCron: {
      auto s = cron::Parse(task.schedule_value);
      if (!s.ok()) return Status::InvalidArgument("schedule_value: invalid cron expression: " + s.status().message());
      task.next_run = cron::NextFire(*s, *zone, now);
      if (!task.next_run) return Status::InvalidArgument("schedule_value: never fires");
      break;
    }
    case ScheduleType::kInterval: {
      auto ms = ParseDurationMs(task.schedule_value);
      if (!ms || *ms <= 0 || *ms > kMaxIntervalMs) {
        return Status::InvalidArgument("schedule_value: interval \"" + task.schedule_value +
                                       "\" must be a positive duration up to 100 years (ms, or 30s, 5m, 1h)");
      }
      task.next_run = now + *ms;
      break;
    }
    case ScheduleType::kOnce: {
      auto t = ParseOnceTime(task.schedule_value, task.tz);
      if (!t.ok()) return t.status();
      task.next_run = *t;
      break;
    }
  }
  if (Status s = CheckPolicies(task); !s.ok()) return s;
  return task;
}

Result<UpdatedTask> ApplyTaskChanges(Task task, const TaskChanges& c, TimeMs now) {
  UpdatedTask out;
  auto set = [&](auto& field, const auto& value, const char* name) {
    if (value && !(field == *value)) {
      field = *value;
      out.changed.emplace_back(name);
    }
  };
  set(task.prompt, c.prompt, "prompt");
  set(task.schedule_type, c.schedule_type, "schedule_type");
  set(task.schedule_value, c.schedule_value, "schedule_value");
  set(task.tz, c.tz, "tz");
  set(task.context_mode, c.context_mode, "context_mode");
  set(task.overlap, c.overlap, "overlap");
  set(task.catch_up, c.catch_up, "catch_up");
  set(task.starting_deadline_ms, c.starting_deadline_ms, "starting_deadline");
  set(task.keep_runs, c.keep_runs, "keep_runs");
  for (const auto& f : out.changed) out.rescheduled |= f == "schedule_type" || f == "schedule_value" || f == "tz";
  if (task.prompt.empty()) return Status::InvalidArgument("prompt: must not be empty");
  if (out.rescheduled) {
    // As a new task: the schedule is checked and its first slot taken from
    // now, so a task never fires on a slot of the schedule it no longer has.
    auto valid = ValidateTask(std::move(task), now);
    if (!valid.ok()) return valid.status();
    out.task = std::move(*valid);
    if (out.task.status == TaskStatus::kCompleted) out.task.status = TaskStatus::kActive;
    return out;
  }
  // The schedule is as it was: only what changed is checked (an unchanged
  // schedule was valid when it was stored), and next_run stays.
  if (Status s = CheckPolicies(task); !s.ok()) return s;
  out.task = std::move(task);
  return out;
}

// ---- persistence -------------------------------------------------------------

namespace {

constexpr const char* kTaskColumns =
    "id, group_folder, chat_jid, prompt, schedule_type, schedule_value, tz, context_mode, next_run, last_run, "
    "last_result, status, overlap, catch_up, catch_up_max, starting_deadline_ms, keep_runs, source, created_at, "
    "updated_at, unique_key, unique_for_ms";

Task ReadTask(const SqlStmt& q) {
  Task t;
  t.id = q.Text(0);
  t.group_folder = q.Text(1);
  t.chat_jid = q.OptText(2);
  t.prompt = q.Text(3);
  // The CHECK constraints keep these valid; the fallbacks are never used.
  t.schedule_type = ParseScheduleType(q.Text(4)).value_or(ScheduleType::kCron);
  t.schedule_value = q.Text(5);
  t.tz = q.Text(6);
  t.context_mode = q.Text(7) == "group" ? ContextMode::kGroup : ContextMode::kIsolated;
  t.next_run = q.OptTime(8);
  t.last_run = q.OptTime(9);
  t.last_result = q.OptText(10);
  t.status = ParseTaskStatus(q.Text(11)).value_or(TaskStatus::kPaused);
  t.overlap = ParseOverlap(q.Text(12)).value_or(Overlap::kForbid);
  t.catch_up = ParseCatchUp(q.Text(13)).value_or(CatchUp::kRunOnce);
  t.catch_up_max = q.Int(14);
  t.starting_deadline_ms = q.OptInt(15);
  t.keep_runs = q.Int(16);
  t.source = ParseTaskSource(q.Text(17)).value_or(TaskSource::kFile);
  t.created_at = q.Time(18);
  t.updated_at = q.Time(19);
  t.unique_key = q.OptText(20);
  t.unique_for_ms = q.OptInt(21);
  return t;
}

// A task's jobs still queued or running, as `jobs j` joined to its runs.
// The slots' claims ("task:<id>:<slot>") bound a range of the partial index
// jobs_active_claim (migration 011): a search over the active jobs, not a
// walk over the run history. Ids may contain ':', so the join on task_runs
// keeps the task's own jobs only. The index and the join order are forced:
// without statistics the planner walks task_runs_task instead.
#define DROPQ_TASK_ACTIVE_JOBS(ID)                                                           \
  "jobs j INDEXED BY jobs_active_claim CROSS JOIN task_runs r ON r.job_id = j.id AND r.task_id = " ID \
  " WHERE j.source_claim >= 'task:' || " ID " || ':' AND j.source_claim < 'task:' || " ID \
  " || ';' AND j.state IN ('queued','running')"

// Runs a statement with RETURNING and counts the rows it touched.
Result<std::int64_t> CountReturned(SqlStmt& q) {
  std::int64_t n = 0;
  if (Status s = ForEachRow(q, [&](const SqlStmt&) { ++n; }); !s.ok()) return s;
  return n;
}

Status NotFoundIfNone(Result<std::int64_t> touched, const std::string& id) {
  if (!touched.ok()) return touched.status();
  if (*touched == 0) return Status::NotFound("no task \"" + id + "\"");
  return Status::Ok();
}

// NanoClaw's last_result: "Error: <error>", else the result (a JSON string
// is unquoted) cut to 200 bytes on a UTF-8 boundary, else "Completed".
std::string Summary(const std::optional<std::string>& result, const std::optional<std::string>& error) {
  if (error) return "Error: " + *error;
  if (!result) return "Completed";
  std::string summary = *result;
  auto j = nlohmann::json::parse(summary, nullptr, /*allow_exceptions=*/false);
  if (j.is_string()) summary = j.get<std::string>();
  return text::Head(summary, 200);
}

}  // namespace

Result<Task> TaskStore::Upsert(const Task& task) {
  auto existing = Get(task.id);
  if (!existing.ok()) return existing.status();
  if (*existing && (*existing)->source != task.source) {
    return Status::Conflict("task \"" + task.id + "\" already exists from " +
                            std::string(ToString((*existing)->source)));
  }
  if (Status s = Put(task); !s.ok()) return s;
  auto stored = Get(task.id);
  if (!stored.ok()) return stored.status();
  if (!*stored) return Status::IOError("task \"" + task.id + "\" vanished after upsert");
  return **stored;
}

Result<std::unordered_set<std::string>> TaskStore::IdsFrom(TaskSource source) {
  auto& q = store_.Prepare("SELECT id FROM scheduled_tasks WHERE source=?1").Bind(1, ToString(source));
  std::unordered_set<std::string> ids;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { ids.insert(r.Text(0)); }); !s.ok()) return s;
  return ids;
}

Status TaskStore::Put(const Task& task) {
  TimeMs now = store_.clock().NowMs();
  // All right-hand sides in DO UPDATE see the row as it was, so `changed`
  // compares the old schedule with the new one in both CASEs.
#define DROPQ_SCHEDULE_CHANGED                                                                        \
  "(schedule_type IS NOT excluded.schedule_type OR schedule_value IS NOT excluded.schedule_value OR " \
  "tz IS NOT excluded.tz)"
  auto& q = store_.Prepare(
      "INSERT INTO scheduled_tasks(id, group_folder, chat_jid, prompt, schedule_type, schedule_value, tz, "
      "context_mode, next_run, last_run, last_result, status, overlap, catch_up, catch_up_max, "
      "starting_deadline_ms, keep_runs, source, created_at, updated_at, unique_key, unique_for_ms) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?19, ?20, ?21) "
      "ON CONFLICT(id) DO UPDATE SET "
      "group_folder=excluded.group_folder, chat_jid=excluded.chat_jid, prompt=excluded.prompt, "
      "schedule_type=excluded.schedule_type, schedule_value=excluded.schedule_value, tz=excluded.tz, "
      "context_mode=excluded.context_mode, overlap=excluded.overlap, catch_up=excluded.catch_up, "
      "catch_up_max=excluded.catch_up_max, starting_deadline_ms=excluded.starting_deadline_ms, "
      "keep_runs=excluded.keep_runs, updated_at=excluded.updated_at, unique_key=excluded.unique_key, "
      "unique_for_ms=excluded.unique_for_ms, "
      "next_run=CASE WHEN " DROPQ_SCHEDULE_CHANGED
      " THEN excluded.next_run ELSE next_run END, "
      "status=CASE WHEN " DROPQ_SCHEDULE_CHANGED
      " AND status='completed' THEN excluded.status ELSE status END "
      "WHERE group_folder IS NOT excluded.group_folder OR chat_jid IS NOT excluded.chat_jid "
      "OR prompt IS NOT excluded.prompt OR " DROPQ_SCHEDULE_CHANGED
      " "
      "OR context_mode IS NOT excluded.context_mode OR overlap IS NOT excluded.overlap "
      "OR catch_up IS NOT excluded.catch_up OR catch_up_max IS NOT excluded.catch_up_max "
      "OR starting_deadline_ms IS NOT excluded.starting_deadline_ms OR keep_runs IS NOT excluded.keep_runs "
      "OR unique_key IS NOT excluded.unique_key OR unique_for_ms IS NOT excluded.unique_for_ms");
#undef DROPQ_SCHEDULE_CHANGED
  q.Bind(1, task.id)
      .Bind(2, task.group_folder)
      .Bind(3, task.chat_jid)
      .Bind(4, task.prompt)
      .Bind(5, ToString(task.schedule_type))
      .Bind(6, task.schedule_value)
      .Bind(7, task.tz)
      .Bind(8, ToString(task.context_mode))
      .BindTime(9, task.next_run)
      .BindTime(10, task.last_run)
      .Bind(11, task.last_result)
      .Bind(12, ToString(task.status))
      .Bind(13, ToString(task.overlap))
      .Bind(14, ToString(task.catch_up))
      .Bind(15, task.catch_up_max)
      .Bind(16, task.starting_deadline_ms)
      .Bind(17, task.keep_runs)
      .Bind(18, ToString(task.source))
      .BindTime(19, now)
      .Bind(20, task.unique_key)
      .Bind(21, task.unique_for_ms);
  return q.Run();
}

Result<std::optional<Task>> TaskStore::Get(const std::string& id) {
  static const std::string sql = std::string("SELECT ") + kTaskColumns + " FROM scheduled_tasks WHERE id=?1";
  auto& q = store_.Prepare(sql.c_str()).Bind(1, id);
  std::optional<Task> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out = ReadTask(r); }); !s.ok()) return s;
  return out;
}

Result<std::vector<Task>> TaskStore::List(const std::optional<std::string>& group) {
  std::vector<Task> out;
  if (Status s = ForEach(group, [&](Task t) { out.push_back(std::move(t)); }); !s.ok()) return s;
  return out;
}

Status TaskStore::ForEach(const std::optional<std::string>& group, const std::function<void(Task)>& fn) {
  static const std::string sql = std::string("SELECT ") + kTaskColumns +
                                 " FROM scheduled_tasks WHERE (?1 IS NULL OR group_folder=?1) "
                                 "ORDER BY group_folder, id";
  auto& q = store_.Prepare(sql.c_str()).Bind(1, group);
  return ForEachRow(q, [&](const SqlStmt& r) { fn(ReadTask(r)); });
}

Status TaskStore::Delete(const std::string& id) {
  auto& q = store_.Prepare("DELETE FROM scheduled_tasks WHERE id=?1 RETURNING id").Bind(1, id);
  return NotFoundIfNone(CountReturned(q), id);
}

Status TaskStore::SetStatus(const std::string& id, TaskStatus status) {
  auto& q = store_.Prepare("UPDATE scheduled_tasks SET status=?2, updated_at=?3 WHERE id=?1 RETURNING id")
                .Bind(1, id)
                .Bind(2, ToString(status))
                .BindTime(3, store_.clock().NowMs());
  return NotFoundIfNone(CountReturned(q), id);
}

Status TaskStore::SetNextRun(const std::string& id, std::optional<TimeMs> next_run) {
  // Not an updated_at change: next_run moves at every firing, the
  // definition does not.
  auto& q = store_.Prepare("UPDATE scheduled_tasks SET next_run=?2 WHERE id=?1 RETURNING id")
                .Bind(1, id)
                .BindTime(2, next_run);
  return NotFoundIfNone(CountReturned(q), id);
}

Status TaskStore::Update(const Task& task) {
  auto& q = store_.Prepare(
      "UPDATE scheduled_tasks SET prompt=?2, schedule_type=?3, schedule_value=?4, tz=?5, context_mode=?6, "
      "overlap=?7, catch_up=?8, starting_deadline_ms=?9, keep_runs=?10, next_run=?11, status=?12, updated_at=?13 "
      "WHERE id=?1 RETURNING id");
  q.Bind(1, task.id)
      .Bind(2, task.prompt)
      .Bind(3, ToString(task.schedule_type))
      .Bind(4, task.schedule_value)
      .Bind(5, task.tz)
      .Bind(6, ToString(task.context_mode))
      .Bind(7, ToString(task.overlap))
      .Bind(8, ToString(task.catch_up))
      .Bind(9, task.starting_deadline_ms)
      .Bind(10, task.keep_runs)
      .BindTime(11, task.next_run)
      .Bind(12, ToString(task.status))
      .BindTime(13, store_.clock().NowMs());
  return NotFoundIfNone(CountReturned(q), task.id);
}

Result<std::vector<Task>> TaskStore::ActiveWithNextRun() {
  static const std::string sql = std::string("SELECT ") + kTaskColumns +
                                 " FROM scheduled_tasks WHERE status='active' AND next_run IS NOT NULL "
                                 "ORDER BY next_run, id";
  auto& q = store_.Prepare(sql.c_str());
  std::vector<Task> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back(ReadTask(r)); }); !s.ok()) return s;
  return out;
}

Status TaskStore::ForEachActiveNextRun(const std::function<void(std::string id, TimeMs next_run)>& fn) {
  auto& q = store_.Prepare(
      "SELECT id, next_run FROM scheduled_tasks WHERE status='active' AND next_run IS NOT NULL ORDER BY next_run, id");
  return ForEachRow(q, [&](const SqlStmt& r) { fn(r.Text(0), r.Time(1)); });
}

Result<std::int64_t> TaskStore::RecordRun(const std::string& task_id, TimeMs scheduled_at, std::optional<JobId> job,
                                          TaskRunStatus status, const std::optional<std::string>& error) {
  auto& q = store_.Prepare(
      "INSERT INTO task_runs(task_id, job_id, scheduled_at, fired_at, status, error) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  q.Bind(1, task_id)
      .Bind(2, job)
      .BindTime(3, scheduled_at)
      .BindTime(4, store_.clock().NowMs())
      .Bind(5, ToString(status))
      .Bind(6, error);
  if (Status s = q.Run(); !s.ok()) return s;
  return store_.LastInsertRowId();
}

Result<std::vector<DueTask>> TaskStore::LoadDue(const std::vector<std::string>& ids) {
  // The active jobs come from jobs (the truth: a retried job is queued again
  // while its run row says failed).
  static const std::string sql =
      std::string("SELECT ") + kTaskColumns +
      ", (SELECT group_concat(j.id) FROM " DROPQ_TASK_ACTIVE_JOBS("scheduled_tasks.id") ") "
      "FROM scheduled_tasks WHERE id IN (SELECT value FROM json_each(?1))";
  auto& q = store_.Prepare(sql.c_str()).Bind(1, text::Dump(nlohmann::json(ids)));
  std::vector<DueTask> out;
  out.reserve(ids.size());
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    DueTask d{ReadTask(r), {}};
    if (auto list = r.OptText(22)) {
      std::string_view rest = *list;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        auto part = rest.substr(0, comma);
        JobId id = 0;
        for (char c : part) id = id * 10 + (c - '0');
        d.active_jobs.push_back(id);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      std::sort(d.active_jobs.begin(), d.active_jobs.end());
    }
    out.push_back(std::move(d));
  });
  if (!s.ok()) return s;
  return out;
}

Status TaskStore::RecordRuns(const std::vector<TaskRunRow>& rows, TimeMs fired_at) {
  if (rows.empty()) return Status::Ok();
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : rows) {
    a.push_back({r.task_id, FormatIsoUtc(r.scheduled_at), r.job ? nlohmann::json(*r.job) : nlohmann::json(nullptr),
                 r.job ? "queued" : "skipped", r.error ? nlohmann::json(*r.error) : nlohmann::json(nullptr)});
  }
  return store_
      .Prepare(
          "INSERT INTO task_runs(task_id, job_id, scheduled_at, fired_at, status, error) "
          "SELECT value->>0, value->>2, value->>1, ?2, value->>3, value->>4 FROM json_each(?1) ORDER BY key")
      .Bind(1, text::Dump(a))
      .BindTime(2, fired_at)
      .Run();
}

Status TaskStore::SetNextRuns(const std::vector<std::pair<std::string, std::optional<TimeMs>>>& next_runs) {
  if (next_runs.empty()) return Status::Ok();
  nlohmann::json a = nlohmann::json::array();
  for (const auto& [id, next] : next_runs) {
    a.push_back({id, next ? nlohmann::json(FormatIsoUtc(*next)) : nlohmann::json(nullptr)});
  }
  return store_
      .Prepare(
          "UPDATE scheduled_tasks SET next_run = v.value->>1 FROM json_each(?1) AS v "
          "WHERE scheduled_tasks.id = v.value->>0")
      .Bind(1, text::Dump(a))
      .Run();
}

Result<std::optional<std::string>> TaskStore::TaskForJob(JobId job) {
  auto& q = store_.Prepare("SELECT task_id FROM task_runs WHERE job_id=?1").Bind(1, job);
  std::optional<std::string> task_id;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { task_id = r.Text(0); }); !s.ok()) return s;
  return task_id;
}

Status TaskStore::StartRunForJob(JobId job, TimeMs started_at) {
  return store_
      .Prepare(
          "UPDATE task_runs SET status='running', started_at=coalesce(started_at, ?2) "
          "WHERE job_id=?1 AND status IN ('queued','running')")
      .Bind(1, job)
      .BindTime(2, started_at)
      .Run();
}

Result<std::optional<std::string>> TaskStore::FinishRunForJob(JobId job, TaskRunStatus status,
                                                              const std::optional<std::string>& result,
                                                              const std::optional<std::string>& error,
                                                              std::optional<std::int64_t> duration_ms) {
  auto& q = store_.Prepare(
      "UPDATE task_runs SET status=?2, result=?3, error=?4, duration_ms=?5 WHERE job_id=?1 RETURNING task_id");
  q.Bind(1, job).Bind(2, ToString(status)).Bind(3, result).Bind(4, error).Bind(5, duration_ms);
  std::optional<std::string> task_id;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { task_id = r.Text(0); }); !s.ok()) return s;
  if (!task_id) return task_id;
  Status s = store_.Prepare("UPDATE scheduled_tasks SET last_run=?2, last_result=?3 WHERE id=?1")
                 .Bind(1, *task_id)
                 .BindTime(2, store_.clock().NowMs())
                 .Bind(3, Summary(result, error))
                 .Run();
  if (!s.ok()) return s;
  return task_id;
}

Result<std::vector<TaskRun>> TaskStore::ListRuns(const std::string& task_id, int limit) {
  auto& q = store_.Prepare(
      "SELECT id, task_id, job_id, scheduled_at, fired_at, started_at, duration_ms, status, result, error "
      "FROM task_runs WHERE task_id=?1 ORDER BY id DESC LIMIT ?2");
  q.Bind(1, task_id).Bind(2, std::int64_t{limit});
  std::vector<TaskRun> out;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    TaskRun run;
    run.id = r.Int(0);
    run.task_id = r.Text(1);
    run.job_id = r.OptInt(2);
    run.scheduled_at = r.Time(3);
    run.fired_at = r.Time(4);
    run.started_at = r.OptTime(5);
    run.duration_ms = r.OptInt(6);
    run.status = ParseTaskRunStatus(r.Text(7)).value_or(TaskRunStatus::kFailed);
    run.result = r.OptText(8);
    run.error = r.OptText(9);
    out.push_back(std::move(run));
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::int64_t> TaskStore::PruneRuns(const std::string& task_id, std::int64_t keep) {
  if (keep < 0) return Status::InvalidArgument("keep_runs: must not be negative");
  auto& q = store_.Prepare(sql::kPruneTaskRuns);
  q.Bind(1, task_id).Bind(2, keep);
  return CountReturned(q);
}

Result<std::vector<std::string>> TaskStore::RemoveConfigTasksExcept(const std::set<std::string>& keep) {
  auto& q = store_.Prepare("SELECT id FROM scheduled_tasks WHERE source='config' ORDER BY id");
  std::vector<std::string> gone;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    std::string id = r.Text(0);
    if (!keep.count(id)) gone.push_back(std::move(id));
  });
  if (!s.ok()) return s;
  for (const auto& id : gone) {
    if (Status d = Delete(id); !d.ok()) return d;
  }
  return gone;
}

Result<std::vector<JobId>> TaskStore::ActiveJobs(const std::string& task_id) {
  auto& q = store_.Prepare(
      "SELECT j.id FROM " DROPQ_TASK_ACTIVE_JOBS("?1") " ORDER BY j.id");
  q.Bind(1, task_id);
  std::vector<JobId> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back(r.Int(0)); }); !s.ok()) return s;
  return out;
}

Result<bool> TaskStore::HasActiveJob(const std::string& task_id) {
  auto jobs = ActiveJobs(task_id);
  if (!jobs.ok()) return jobs.status();
  return !jobs->empty();
}

}  // namespace dropq
