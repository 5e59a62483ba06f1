#pragma once
// The SQLite store: the durable queue and the audit trail (docs/SCHEMA.md).
//
// One Store is the daemon's writer connection and lives on the loop thread.
// Readers (the CLI) open their own connection with OpenReadOnly; WAL lets them
// read while the daemon writes. Every state change writes the jobs row and a
// job_events row in the same transaction, so the audit trail is never behind.
//
// Opening applies pending migrations (PRAGMA user_version). A database whose
// version is newer than this binary knows is refused — starting over would
// lose jobs.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/dispatcher.h"
#include "jobs/job.h"
#include "jobs/sql_stmt.h"
#include "base/status.h"

namespace dropq {

struct JobEvent {
  std::int64_t id = 0;
  std::optional<JobId> job_id;
  std::optional<std::string> group;
  TimeMs at = 0;
  std::string event;
  std::optional<std::string> detail;  // JSON text
};

// One attempt. `status` is running | succeeded | failed | timed_out | lost.
struct JobRun {
  std::int64_t id = 0;
  JobId job_id = 0;
  std::int64_t attempt = 0;
  std::string runtime;
  std::optional<std::string> container_name;
  TimeMs started_at = 0;
  std::optional<TimeMs> finished_at;
  std::optional<std::int64_t> duration_ms;
  std::string status = "running";
  std::optional<std::int64_t> exit_code;
  std::optional<std::int64_t> signal;
  std::int64_t stdout_bytes = 0;
  std::int64_t stderr_bytes = 0;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::optional<std::string> log_file;
  std::optional<std::string> error;
  // Where a cluster ran it, from its accounting (runtime: slurm, sacct);
  // nullopt when not asked or not answered (migration 010).
  std::optional<std::string> node;
  std::optional<std::string> cluster_state;
};

// A group main registered at run time (register_group), as stored in
// `groups` with source 'registered'.
struct RegisteredGroup {
  std::string folder;
  std::string name;
  std::string jid;
  std::optional<std::string> trigger;
  std::optional<bool> requires_trigger;
  std::optional<std::string> container_config;  // compact JSON object
};

struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> group;
  int limit = 1000;
};

// How an attempt ended, as the runner saw it.
struct RunOutcome {
  JobState job_state = JobState::kFailed;  // succeeded | failed
  JobRun run;                              // finished fields filled in
  std::optional<std::string> result;       // JSON text
  std::optional<std::string> error;
  std::optional<std::string> new_session_id;
  // Every output block the agent printed (JSON object text), oldest first;
  // only the newest are kept when there were very many (dropped_outputs).
  std::vector<std::string> outputs;
  std::size_t dropped_outputs = 0;
  // Set when a failed attempt will be retried: the job goes back to
  // `queued` with this run_at (and a `retry` event) instead of `failed`.
  std::optional<TimeMs> retry_at;
  // The attempt ended because dropq itself stopped (its graceful shutdown):
  // jobs.interruptions + 1, so the attempt does not count against
  // max_attempts.
  bool interrupted = false;
};

// The queries the daemon runs for every file or job, shared with the tests
// that pin their query plans.
namespace sql {
inline constexpr char kListQueuedRefs[] = "SELECT id, group_folder, priority, run_at FROM jobs WHERE state='queued'";
// Waiting jobs count too: max_queued_per_group bounds both.
inline constexpr char kCountQueued[] =
    "SELECT count(*) FROM jobs WHERE state IN ('queued','waiting') AND group_folder=?1";
inline constexpr char kHasClaim[] = "SELECT 1 FROM jobs WHERE source_claim=?1";
// Every attempt started at or after ?1, with its group, oldest first: what
// rate-limit windows are rebuilt from (migration 007 indexes started_at).
inline constexpr char kStartsSince[] =
    "SELECT j.group_folder, r.started_at FROM job_runs r JOIN jobs j ON j.id = r.job_id "
    "WHERE r.started_at >= ?1 ORDER BY r.started_at";
}  // namespace sql

namespace app {
class DashboardQueries;
}  // namespace app

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The daemon's writer connection: creates the file, applies migrations.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, const Clock& clock);
  // A reader for the CLI: never writes, never migrates; refuses a missing
  // database or one with a schema it does not know.
  static Result<std::unique_ptr<Store>> OpenReadOnly(const std::string& path, const Clock& clock);

  // Explicit transactions group many writes into one commit (group commit).
  // Calls outside Begin/Commit run in their own implicit transaction.
  Status Begin();
  Status Commit();
  void Rollback();
  // True between Begin and Commit/Rollback.
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  // Savepoints nest inside a transaction (or open one when there is none):
  // Savepoint opens one, Release keeps its writes, RollbackTo undoes and
  // ends it. `name` is a plain identifier chosen by the caller.
  // Each is a prepared statement kept for its text (a pass of the task
  // timer opens one per task that fires: parsing them each time cost more
  // than the inserts they guard).
  Status Savepoint(const std::string& name) { return RunKept("SAVEPOINT " + name); }
  Status Release(const std::string& name) { return RunKept("RELEASE " + name); }
  Status RollbackTo(const std::string& name) {
    Status s = RunKept("ROLLBACK TO " + name);
    Status r = RunKept("RELEASE " + name);
    return s.ok() ? r : s;
  }

  // A group from the config (source 'config'), inserted or brought up to
  // date at every start.
  Status UpsertGroup(const std::string& folder, const std::string& name, const std::optional<std::string>& jid,
                     bool is_main);
  // A group main registered at run time (register_group): inserted, or its
  // row replaced when the folder was registered before. Returns true when
  // the group is new. Never touches a group of the config.
  Result<bool> UpsertRegisteredGroup(const RegisteredGroup& g);
  // Every group registered at run time, by folder.
  Result<std::vector<RegisteredGroup>> ListRegisteredGroups();

  // Records a new job and its `received` event: `queued`, or `waiting` with
  // one job_deps row per id of `after` (ids that exist; the ingest resolved
  // them). When the group already has a job with the request's client id,
  // or an active or recent one with its unique_key (docs/FILES.md, "Unique
  // jobs"), nothing is inserted: a `duplicate` event is appended to that job
  // and its id and state returned with duplicate = true and `by` "id" or
  // "unique_key".
  struct Inserted {
    JobId id = 0;
    bool duplicate = false;
    JobState state = JobState::kQueued;
    const char* by = nullptr;
  };
  // The request's max_attempts and max_interruptions, else these defaults
  // (the config's), are stored with the job.
  Result<Inserted> InsertJob(const std::string& group, const RunRequest& req, const JobSource& src,
                             std::int64_t default_max_attempts,
                             std::int64_t default_max_interruptions = kDefaultMaxInterruptions,
                             const std::vector<JobId>& after = {});
  // Many plain jobs in two statements (the task timer's pass: 200 tasks due
  // at one instant, docs/PERFORMANCE.md "Scheduler"): each queued now with
  // the defaults, and its `received` event, exactly as InsertJob records a
  // request with only a prompt and a context mode. A job whose claim is
  // already taken is not inserted (that slot made its job before); the
  // result has, for each job in order, its id or nullopt for such a one.
  struct PlainJob {
    std::string group;
    std::string prompt;
    ContextMode context_mode = ContextMode::kIsolated;
    JobSource src;
  };
  // The text of the two statements' rows, made ahead (the timer builds it
  // before the slot it fires for, docs/SCHEDULER.md "Timing").
  struct PlainBatch {
    std::vector<PlainJob> jobs;
    std::string rows;                  // JSON, the jobs insert's rows
    std::vector<std::string> details;  // each job's received-event detail
  };
  static PlainBatch PreparePlainJobs(std::vector<PlainJob> jobs);
  Result<std::vector<std::optional<JobId>>> InsertPlainJobs(const PlainBatch& batch, std::int64_t max_attempts,
                                                            std::int64_t max_interruptions);
  Result<std::vector<std::optional<JobId>>> InsertPlainJobs(std::vector<PlainJob> jobs, std::int64_t max_attempts,
                                                            std::int64_t max_interruptions) {
    return InsertPlainJobs(PreparePlainJobs(std::move(jobs)), max_attempts, max_interruptions);
  }
  // True when a job was already recorded from this claim token (start-up
  // reconciliation of data/claimed/).
  Result<bool> HasClaim(const std::string& claim);
  // The group's job that was made with this client id (`id` in the job
  // file), if any.
  Result<std::optional<JobId>> FindByClientId(const std::string& group, const std::string& client_id);

  Status AppendEvent(std::optional<JobId> job, const std::optional<std::string>& group, const std::string& event,
                     const std::string& detail_json);

  // queued → running, attempts+1, a job_runs row, a `started` event.
  // `at`: the start to record (the dispatcher's, so the rate window rebuilt
  // from job_runs after a restart is the one it kept); the clock's now
  // when absent.
  Result<JobRun> StartAttempt(JobId id, const std::string& runtime, const std::string& container_name,
                              std::optional<TimeMs> at = std::nullopt);
  // running → succeeded | failed (or queued again, see retry_at); fills the
  // job_runs row; a `succeeded` / `failed` / `retry` event; stores the
  // group's new session id when given; counts an interruption when the
  // outcome says so.
  Status FinishAttempt(const Job& job, const RunOutcome& outcome);

  // queued or waiting → cancelled, with a `cancelled` event; false when the
  // job was in another state (nothing changed).
  // `error` is stored as the job's error (what its result file says).
  Result<bool> CancelQueued(JobId id, const std::string& detail_json, const std::string& error = "cancelled");
  // failed | cancelled → queued now with max_attempts more counted attempts
  // and max_interruptions more interruptions (attempt numbers keep counting,
  // so every job_runs row stays), with a `retried` event; false when the job
  // was in another state (nothing changed).
  // `waiting`: back to waiting for its dependencies instead (a job with
  // dependencies that have not all ended).
  Result<bool> Requeue(JobId id, const std::string& detail_json, bool waiting = false);

  // Start-up recovery: attempts still `running` belong to a dropq that died.
  // Each becomes `lost` with a `recovered` event and counts as one of its
  // job's interruptions, not one of its attempts: the job is requeued,
  // unless its interruptions now exceed max_interruptions — then it is
  // failed ("interrupted N times; ..."). `before_fail` is called for each
  // job about to be failed, inside the one transaction and before it
  // commits (the daemon writes the job's result file there, so a crash in
  // between just redoes it); an error from it rolls all of recovery back and
  // is returned. Returns the jobs touched.
  using BeforeFail = std::function<Status(const Job& job, const RunOutcome& outcome)>;
  Result<std::vector<JobId>> RecoverInterrupted(const BeforeFail& before_fail = {});

  Result<std::optional<Job>> GetJob(JobId id);
  Result<std::vector<Job>> ListJobs(const JobFilter& filter);
  Result<std::vector<Job>> ListQueued();
  // The dispatcher's view of every queued job, for start-up: four columns
  // through the jobs_state index, no prompts loaded (100,000 queued jobs
  // stay a few MB).
  Result<std::vector<QueuedJob>> ListQueuedRefs();
  Result<std::int64_t> CountQueued(const std::string& group);
  Result<std::vector<JobEvent>> ListEvents(std::optional<JobId> job);
  // The id of the newest event (0 when there is none): a control command
  // remembers it before dropping its file, then looks for its verdict only
  // among newer events (FindVerdict), a search of the primary key.
  Result<std::int64_t> LastEventId();
  // A control file's verdict (docs/DESIGN.md, "One signal to wait on"): the
  // `applied` or `rejected` event newer than `after_id` that names the file
  // `file` dropped into `group`'s tasks/; nullopt while there is none.
  Result<std::optional<JobEvent>> FindVerdict(const std::string& group, const std::string& file, std::int64_t after_id);
  Result<std::vector<JobRun>> ListRuns(JobId job);
  Result<std::vector<std::pair<std::string, std::int64_t>>> CountByState();
  // (group, started_at) of every attempt started at or after `since`, oldest
  // first, retries and interrupted attempts included: the history a group's
  // rate window is rebuilt from (docs/CONFIG.md, "Rate limits").
  struct AttemptStart {
    std::string group;
    TimeMs started_at = 0;
  };
  Result<std::vector<AttemptStart>> StartsSince(TimeMs since);
  Result<std::optional<std::string>> GetSession(const std::string& group);
  Result<std::int64_t> SchemaVersion();
  // SQLite's PRAGMA integrity_check: "ok", or its first complaint.
  Result<std::string> IntegrityCheck();
  // This root's instance id (table `instance`): 12 lowercase hex characters
  // from std::random_device, made by the first call and the same ever after,
  // across restarts. Container runtimes label their containers with it so
  // start-up clean-up stops only this root's (docs/RUNTIMES.md).
  Result<std::string> InstanceId();

  // EXPLAIN QUERY PLAN of `sql` on this connection: one `detail` per row.
  // Tests use it to pin that the daemon's per-job queries search an index.
  Result<std::vector<std::string>> QueryPlan(const std::string& sql);

  std::int64_t LastInsertRowId() const;
  const Clock& clock() const { return clock_; }

 private:
  // All SQL lives in jobs/ (docs/DESIGN.md, "Layout"; tests/layout_test.cc
  // fails on SQL anywhere else): the rest of the product calls named
  // functions of Store, TaskStore, DashboardQueries or the free functions of
  // jobs/. Those reach the connection through these two, as members, as
  // friends, or (free functions of jobs/) through StoreSql below.
  SqlStmt& Prepare(const char* sql);
  Status Exec(const char* sql);
  friend class TaskStore;
  friend class app::DashboardQueries;
  friend struct StoreSql;
  friend class MessageStore;

  Store(sqlite3* db, const Clock& clock);

  Status Migrate();
  // PRAGMA foreign_key_check: the first row that points nowhere, as an error.
  Status CheckForeignKeys();
  Result<std::vector<JobId>> RecoverInterruptedLocked(const BeforeFail& before_fail);
  Result<bool> TransitionWithEvent(const char* update_sql, JobId id, const char* event, const std::string& detail_json);
  Status Err(const char* what) const;

  sqlite3* db_;
  const Clock& clock_;
  std::vector<std::pair<const char*, std::unique_ptr<SqlStmt>>> cache_;
  // Statements built at run time (savepoints), kept by their text.
  std::map<std::string, std::unique_ptr<SqlStmt>, std::less<>> kept_;
  Status RunKept(const std::string& sql);
};

// The door to the connection for the free functions of jobs/ (retention,
// the snapshot queries) and for the tests of jobs/: nothing outside jobs/
// uses it (tests/layout_test.cc enforces that for the product).
struct StoreSql {
  static SqlStmt& Prepare(Store& store, const char* sql) { return store.Prepare(sql); }
  static Status Exec(Store& store, const char* sql) { return store.Exec(sql); }
};

}  // namespace dropq
