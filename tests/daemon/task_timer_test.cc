// The task timer (daemon/task_timer.h) on a real SQLite file and a real
// libuv loop, with a manual clock: the tests move time and call Tick(), what
// the timer's callback does, instead of waiting for it.
#include "daemon/task_timer.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

#include "tests/fakes/temp_dir.h"

namespace dropq::app {
namespace {

using testing::TempDir;

constexpr TimeMs kStart = 1'800'000'000'000;  // 2027-01-15T08:00:00Z

struct TimerFixture {
  TempDir dir;
  ManualClock clock{kStart};
  std::unique_ptr<Store> store;
  Config cfg;
  uv_loop_t loop{};
  std::vector<QueuedJob> enqueued;
  std::vector<std::vector<JobId>> cancelled;
  int changed = 0;
  std::unique_ptr<TaskTimer> timer;

  TimerFixture() {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    REQUIRE(store->UpsertGroup("team", "Team", std::nullopt, false).ok());
    cfg.timezone = "UTC";
    GroupConfig g;
    g.folder = "team";
    g.name = "Team";
    cfg.groups.push_back(g);
    uv_loop_init(&loop);
  }
  ~TimerFixture() {
    if (timer) timer->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  void Schedule(const std::string& id, const std::string& type, const std::string& value,
                std::optional<std::string> overlap = std::nullopt, std::optional<std::int64_t> keep_runs = std::nullopt) {
    ScheduleConfig sc;
    sc.keep_runs = keep_runs;
    sc.id = id;
    sc.group = "team";
    sc.prompt = "report on " + id;
    sc.schedule_type = type;
    sc.schedule_value = value;
    sc.overlap = std::move(overlap);
    cfg.schedules.push_back(sc);
  }
  void Start() {
    TaskTimer::Hooks hooks;
    hooks.enqueued = [this](const QueuedJob& q) { enqueued.push_back(q); };
    hooks.cancel = [this](const std::vector<JobId>& ids) { cancelled.push_back(ids); };
    hooks.changed = [this] { ++changed; };
    timer = std::make_unique<TaskTimer>(&loop, *store, cfg, std::move(hooks));
    REQUIRE(timer->Start().ok());
  }
  // A task from a schedule_task file (a config task cannot be updated).
  void ScheduleFile(const std::string& id, ScheduleType type, const std::string& value) {
    watcher::ScheduleTask cmd;
    cmd.task_id = id;
    cmd.prompt = "report on " + id;
    cmd.schedule_type = type;
    cmd.schedule_value = value;
    REQUIRE(timer->Schedule(cmd, "team", std::string("team"), "claim-" + id).ok());
  }
  std::string Query(const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2((dir / "dropq.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string out;
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        if (c) out += '|';
        const unsigned char* t = sqlite3_column_text(st, c);
        out += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
      out += '\n';
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
};

}  // namespace

TEST_CASE("the timer is armed at the earliest active task's next run") {
  TimerFixture f;
  f.Schedule("hourly", "interval", "1h");
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  REQUIRE(f.timer->next_wakeup());
  CHECK(*f.timer->next_wakeup() == kStart + 15 * 60'000);
}

TEST_CASE("a task does not fire before its next run") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  f.clock.Advance(15 * 60'000 - 1);
  f.timer->Tick();
  CHECK(f.enqueued.empty());
  CHECK(f.Query("SELECT count(*) FROM jobs") == "0\n");
}

TEST_CASE("a due task fires one job with its task run and is re-armed one interval on") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  REQUIRE(f.enqueued.size() == 1);
  CHECK(f.enqueued[0].group == "team");
  CHECK(f.Query("SELECT group_folder, source_claim FROM jobs") ==
        "team|task:quarter:" + std::to_string(kStart + 15 * 60'000) + "\n");
  CHECK(f.Query("SELECT task_id, status FROM task_runs") == "quarter|queued\n");
  CHECK(f.changed == 1);
  CHECK(*f.timer->next_wakeup() == kStart + 30 * 60'000);
  CHECK(f.timer->fires() == 1);
  CHECK(f.timer->last_lag_ms() == 0);
}

TEST_CASE("a tick at the same instant again fires nothing more") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
  CHECK(f.Query("SELECT count(*) FROM jobs") == "1\n");
}

TEST_CASE("a tick before any task is due reports no change to the snapshots") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  f.clock.Advance(15 * 60'000 - 1);
  f.timer->Tick();
  CHECK(f.changed == 0);
  CHECK(f.Query("SELECT count(*) FROM task_runs") == "0\n");
}

TEST_CASE("a paused task does not fire when its time comes and a resumed one does") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  REQUIRE(f.timer->Pause("quarter").ok());
  CHECK_FALSE(f.timer->next_wakeup());
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  CHECK(f.enqueued.empty());
  REQUIRE(f.timer->Resume("quarter").ok());
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
}

TEST_CASE("a task whose previous job is still queued is skipped under overlap forbid") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m", "forbid");
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
  CHECK(f.Query("SELECT status FROM task_runs ORDER BY id") == "queued\nskipped\n");
}

TEST_CASE("a pass prepared ahead of its slot makes its jobs only once the clock reaches the slot") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  const TimeMs slot = kStart + 15 * 60'000;
  f.clock.Advance(15 * 60'000 - 2);
  f.clock.AdvancePerRead(1);  // the clock moves while the pass waits on it
  f.timer->Tick(slot);
  f.clock.AdvancePerRead(0);
  REQUIRE(f.enqueued.size() == 1);
  CHECK(f.Query("SELECT j.created_at >= r.scheduled_at, r.fired_at >= r.scheduled_at, r.scheduled_at "
                "FROM jobs j JOIN task_runs r ON r.job_id = j.id") ==
        "1|1|" + FormatIsoUtc(slot) + "\n");
}

TEST_CASE("a pass prepared for a slot the clock does not reach makes nothing and waits for the slot again") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  const TimeMs slot = kStart + 15 * 60'000;
  f.clock.Advance(15 * 60'000 - 2);
  f.timer->Tick(slot);  // the manual clock stands still
  CHECK(f.enqueued.empty());
  CHECK(f.Query("SELECT count(*) FROM jobs") == "0\n");
  CHECK(f.Query("SELECT count(*) FROM task_runs") == "0\n");
  CHECK(f.timer->next_wakeup() == slot);
  f.clock.Advance(2);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
}

TEST_CASE("a task's run history is trimmed to keep_runs once the pass has committed") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m", "forbid", 2);
  f.Start();
  for (int i = 0; i < 4; ++i) {
    f.clock.Advance(15 * 60'000);
    f.timer->Tick();
  }
  // The pass itself keeps every row; the trim runs after its commit.
  CHECK(f.Query("SELECT count(*) FROM task_runs") == "4\n");
  f.timer->PruneFired();
  // The queued job's run is kept whatever its age: overlap checks need it.
  CHECK(f.Query("SELECT status FROM task_runs ORDER BY id") == "queued\nskipped\nskipped\n");
}

TEST_CASE("every task due at one instant fires in one pass with one fired_at") {
  TimerFixture f;
  for (int i = 0; i < 50; ++i) f.Schedule("t" + std::to_string(i), "interval", "15m");
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 50);
  CHECK(f.Query("SELECT count(*), count(DISTINCT task_id), count(DISTINCT job_id), count(DISTINCT fired_at) "
                "FROM task_runs WHERE status='queued'") == "50|50|50|1\n");
  CHECK(f.Query("SELECT count(*) FROM scheduled_tasks WHERE next_run='" + FormatIsoUtc(kStart + 30 * 60'000) + "'") ==
        "50\n");
  CHECK(*f.timer->next_wakeup() == kStart + 30 * 60'000);
}

TEST_CASE("a task whose previous job is still queued has it cancelled under overlap replace") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m", "replace");
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  REQUIRE(f.enqueued.size() == 1);
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  REQUIRE(f.cancelled.size() == 1);
  CHECK(f.cancelled[0] == std::vector<JobId>{f.enqueued[0].id});
  CHECK(f.enqueued.size() == 2);
}

TEST_CASE("a task with a unique key skips a firing while its key's job is still queued") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m", "allow");
  f.cfg.schedules.back().unique_key = "quarterly";
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  REQUIRE(f.enqueued.size() == 1);
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  // overlap: allow would enqueue again; the key does not.
  CHECK(f.enqueued.size() == 1);
  CHECK(f.Query("SELECT status, coalesce(error, '') FROM task_runs ORDER BY id") ==
        "queued|\nskipped|duplicate of job " + std::to_string(f.enqueued[0].id) + " (queued, unique_key \"quarterly\")\n");
  CHECK(f.Query("SELECT unique_key FROM jobs") == "quarterly\n");
}

TEST_CASE("a job's end is recorded on its task run") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  f.clock.Advance(15 * 60'000);
  f.timer->Tick();
  REQUIRE(f.enqueued.size() == 1);
  const JobId job = f.enqueued[0].id;
  CHECK(f.timer->IsTaskJob(job));
  REQUIRE(f.timer->JobStarted(job, f.clock.NowMs()).ok());
  REQUIRE(f.timer->JobFinished(job, JobState::kSucceeded, std::string("{\"ok\":1}"), std::nullopt, 1200).ok());
  CHECK(f.Query("SELECT status FROM task_runs") == "succeeded\n");
}

TEST_CASE("a wall-clock step forward past slots goes through the catch-up policy once") {
  TimerFixture f;
  f.Schedule("quarter", "interval", "15m");
  f.Start();
  // The wall clock jumps two hours ahead while no time passes: eight slots
  // were jumped over; the default catch-up runs the missed work once.
  f.clock.Set(kStart + 2 * 3'600'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
  REQUIRE(f.timer->next_wakeup());
  CHECK(*f.timer->next_wakeup() > f.clock.NowMs());
}

TEST_CASE("a once task fires once and is completed") {
  TimerFixture f;
  f.Schedule("once", "once", "2027-01-15T09:00:00Z");
  f.Start();
  f.clock.Advance(3'600'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
  CHECK(f.Query("SELECT status FROM scheduled_tasks WHERE id='once'") == "completed\n");
  CHECK_FALSE(f.timer->next_wakeup());
}

// ---- update_task ----------------------------------------------------------------

TEST_CASE("an updated schedule re-arms the timer at the next run counted from the update") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("hourly", ScheduleType::kInterval, "1h");
  f.clock.Advance(10 * 60'000);
  TaskChanges c;
  c.schedule_value = "15m";
  auto r = f.timer->Update("hourly", c);
  REQUIRE(r.ok());
  CHECK(*f.timer->next_wakeup() == kStart + 25 * 60'000);
  CHECK(f.Query("SELECT schedule_value FROM scheduled_tasks WHERE id='hourly'") == "15m\n");
}

TEST_CASE("an updated task fires on its new schedule and not on its old one") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("hourly", ScheduleType::kInterval, "1h");
  TaskChanges c;
  c.schedule_value = "2h";
  REQUIRE(f.timer->Update("hourly", c).ok());
  f.clock.Advance(60 * 60'000);
  f.timer->Tick();
  CHECK(f.enqueued.empty());
  f.clock.Advance(60 * 60'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 1);
}

TEST_CASE("an update reports what changed, the status and the next run") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("hourly", ScheduleType::kInterval, "1h");
  TaskChanges c;
  c.prompt = "other words";
  c.schedule_value = "30m";
  auto r = f.timer->Update("hourly", c);
  REQUIRE(r.ok());
  auto j = nlohmann::json::parse(*r);
  CHECK(j["task"] == "hourly");
  CHECK(j["action"] == "updated");
  CHECK(j["changed"] == nlohmann::json::array({"prompt", "schedule_value"}));
  CHECK(j["status"] == "active");
  CHECK(j["next_run"] == FormatIsoUtc(kStart + 30 * 60'000));
}

TEST_CASE("a paused task given a new schedule stays paused and out of the timer") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("hourly", ScheduleType::kInterval, "1h");
  REQUIRE(f.timer->Pause("hourly").ok());
  TaskChanges c;
  c.schedule_value = "5m";
  REQUIRE(f.timer->Update("hourly", c).ok());
  CHECK_FALSE(f.timer->next_wakeup());
  CHECK(f.Query("SELECT status FROM scheduled_tasks WHERE id='hourly'") == "paused\n");
  REQUIRE(f.timer->Resume("hourly").ok());
  CHECK(*f.timer->next_wakeup() == kStart + 5 * 60'000);
}

TEST_CASE("a completed once task given a new once time fires again at that time") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("once", ScheduleType::kOnce, "2027-01-15T09:00:00Z");
  f.clock.Advance(3'600'000);
  f.timer->Tick();
  REQUIRE(f.Query("SELECT status FROM scheduled_tasks WHERE id='once'") == "completed\n");
  // Its first job is over, so the new slot is not skipped as an overlap.
  REQUIRE(f.store->CancelQueued(f.enqueued[0].id, "{}").ok());
  TaskChanges c;
  c.schedule_value = "2027-01-15T10:00:00Z";
  REQUIRE(f.timer->Update("once", c).ok());
  CHECK(*f.timer->next_wakeup() == kStart + 2 * 3'600'000);
  f.clock.Advance(3'600'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 2);
}

TEST_CASE("a task defined in the config is not updated by a file") {
  TimerFixture f;
  f.Schedule("nightly", "cron", "0 3 * * *");
  f.Start();
  TaskChanges c;
  c.prompt = "hijacked";
  auto r = f.timer->Update("nightly", c);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "task \"nightly\" is defined in the config; change it there");
  CHECK(f.Query("SELECT prompt FROM scheduled_tasks WHERE id='nightly'") == "report on nightly\n");
}

TEST_CASE("an update with an invalid schedule changes nothing and says why") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("hourly", ScheduleType::kInterval, "1h");
  TaskChanges c;
  c.schedule_type = ScheduleType::kCron;
  c.schedule_value = "61 * * * *";
  auto r = f.timer->Update("hourly", c);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::StartsWith("schedule_value: invalid cron expression"));
  CHECK(f.Query("SELECT schedule_type, schedule_value FROM scheduled_tasks WHERE id='hourly'") == "interval|1h\n");
  CHECK(*f.timer->next_wakeup() == kStart + 60 * 60'000);
}


TEST_CASE("a cron task that fires again is not parsed again") {
  TimerFixture f;
  f.Schedule("minutely", "cron", "* * * * *", "allow");
  f.Start();
  for (int i = 0; i < 3; ++i) {
    f.clock.Advance(60'000);
    f.timer->Tick();
  }
  CHECK(f.enqueued.size() == 3);
  CHECK(f.timer->schedules().compiles() == 1);
}

TEST_CASE("an updated cron schedule is parsed again and fires on its new slots") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("hourly", ScheduleType::kCron, "0 * * * *");
  f.clock.Advance(60 * 60'000);  // 09:00
  f.timer->Tick();
  REQUIRE(f.enqueued.size() == 1);
  TaskChanges c;
  c.schedule_value = "30 * * * *";
  REQUIRE(f.timer->Update("hourly", c).ok());
  f.clock.Advance(30 * 60'000);  // 09:30
  f.timer->Tick();
  CHECK(f.timer->schedules().compiles() == 2);
  // The first job is still queued, so overlap forbid records the new slot
  // as skipped: the slot is what shows the new schedule.
  CHECK(f.Query("SELECT scheduled_at FROM task_runs WHERE task_id='hourly' ORDER BY id") ==
        "2027-01-15T09:00:00.000Z\n2027-01-15T09:30:00.000Z\n");
}

TEST_CASE("a config schedule changed by a reload is parsed again and fires on its new slots") {
  TimerFixture f;
  f.Schedule("hourly", "cron", "0 * * * *", "allow");
  f.Start();
  f.clock.Advance(60 * 60'000);  // 09:00
  f.timer->Tick();
  REQUIRE(f.enqueued.size() == 1);
  f.cfg.schedules[0].schedule_value = "30 * * * *";
  REQUIRE(f.store->Begin().ok());
  REQUIRE(f.timer->SyncConfig(f.cfg).ok());
  REQUIRE(f.store->Commit().ok());
  REQUIRE(f.timer->Reloaded().ok());
  f.clock.Advance(30 * 60'000);  // 09:30
  f.timer->Tick();
  CHECK(f.enqueued.size() == 2);
  CHECK(f.timer->schedules().compiles() == 2);
}

TEST_CASE("a resumed cron task is parsed again when it next fires") {
  TimerFixture f;
  f.Schedule("hourly", "cron", "0 * * * *", "allow");
  f.Start();
  f.clock.Advance(60 * 60'000);
  f.timer->Tick();
  REQUIRE(f.timer->Pause("hourly").ok());
  REQUIRE(f.timer->Resume("hourly").ok());
  f.clock.Advance(60 * 60'000);
  f.timer->Tick();
  CHECK(f.enqueued.size() == 2);
  CHECK(f.timer->schedules().compiles() == 2);
}

TEST_CASE("a configured schedule with the id of a file task is refused by the config sync") {
  TimerFixture f;
  f.Start();
  f.ScheduleFile("report", ScheduleType::kInterval, "1h");
  f.Schedule("report", "interval", "2h");
  REQUIRE(f.store->Begin().ok());
  auto r = f.timer->SyncConfig(f.cfg);
  f.store->Rollback();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "task \"report\" already exists from file");
  CHECK(f.Query("SELECT source, schedule_value FROM scheduled_tasks") == "file|1h\n");
}

TEST_CASE("a config sync keeps the next run of an unchanged schedule and recomputes a changed one") {
  TimerFixture f;
  f.Schedule("same", "cron", "0 * * * *");
  f.Schedule("moved", "cron", "0 * * * *");
  f.Start();
  f.clock.Advance(3 * 60 * 60'000 + 60'000);  // 11:01, three slots missed, no tick
  f.cfg.schedules[1].schedule_value = "30 * * * *";
  REQUIRE(f.store->Begin().ok());
  REQUIRE(f.timer->SyncConfig(f.cfg).ok());
  REQUIRE(f.store->Commit().ok());
  CHECK(f.Query("SELECT id, next_run FROM scheduled_tasks ORDER BY id") ==
        "moved|2027-01-15T11:30:00.000Z\nsame|2027-01-15T09:00:00.000Z\n");
}

TEST_CASE("a config sync removes the config tasks no longer in the config and names them") {
  TimerFixture f;
  f.Schedule("kept", "interval", "1h");
  f.Schedule("dropped", "interval", "1h");
  f.Start();
  f.cfg.schedules.pop_back();
  REQUIRE(f.store->Begin().ok());
  auto removed = f.timer->SyncConfig(f.cfg);
  REQUIRE(f.store->Commit().ok());
  REQUIRE(removed.ok());
  CHECK(*removed == std::vector<std::string>{"dropped"});
  CHECK(f.Query("SELECT id FROM scheduled_tasks") == "kept\n");
}

}  // namespace dropq::app
