#include "jobs/store.h"
#include <unordered_map>
#include <string_view>

#include <sqlite3.h>

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "base/text.h"
#include "jobs/dependencies.h"
#include "schema/migrations.h"

namespace dropq {

namespace {

constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kJobColumns =
    "id, group_folder, type, client_id, state, prompt, priority, run_at, timeout_ms, context_mode, attempts, "
    "max_attempts, source_name, source_hash, created_at, started_at, finished_at, result, error, source_group, "
    "interruptions, max_interruptions, after_policy, unique_key";

}  // namespace

Store::Store(sqlite3* db, const Clock& clock) : db_(db), clock_(clock) {}

Store::~Store() {
  cache_.clear();  // finalize statements before closing
  kept_.clear();
  sqlite3_close(db_);
}

Status Store::Err(const char* what) const { return Status::IOError(std::string(what) + ": " + sqlite3_errmsg(db_)); }

Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::IOError(std::string("sqlite: ") + msg);
  }
  return Status::Ok();
}

SqlStmt& Store::Prepare(const char* sql) {
  // Statements are keyed by the address of their literal: every call site
  // passes a string literal, so this is a cheap exact lookup.
  for (auto& [key, stmt] : cache_) {
    if (key == sql) return stmt->Use();
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    // A statement that does not prepare is a programming error in this file.
    fprintf(stderr, "dropq: bad SQL %s: %s\n", sql, sqlite3_errmsg(db_));
    abort();
  }
  cache_.emplace_back(sql, std::make_unique<SqlStmt>(db_, s));
  return cache_.back().second->Use();
}

Status Store::RunKept(const std::string& sql) {
  auto it = kept_.find(sql);
  if (it == kept_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      return Err(("cannot prepare " + sql).c_str());
    }
    it = kept_.emplace(sql, std::make_unique<SqlStmt>(db_, s)).first;
  }
  return it->second->Use().Run();
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const Clock& clock) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Store> store(new Store(db, clock));
  if (rc != SQLITE_OK) return store->Err(("cannot open " + path).c_str());
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 0);
  // WAL: readers never block the writer. synchronous=FULL: a COMMIT that
  // returned is on disk, which is what "remove the file after COMMIT" relies on.
  // temp_store=MEMORY: a statement inside a long transaction keeps its
  // statement journal (SQLite's temporary file for undoing one statement) in
  // memory; on disk, start-up's 100,000 schedule upserts wrote it 800,000
  // times (docs/PERFORMANCE.md, "Start-up"). It holds only the pages one
  // statement changes; nothing durable lives in temporary files.
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
    if (Status s = store->Exec(pragma); !s.ok()) {
      return Status::Corruption(path + " cannot be used as dropq's database: " + s.message());
    }
  }
  // A damaged or foreign file is named as such, not met later as a crash.
  {
    auto& q = store->Prepare("PRAGMA quick_check");
    std::optional<std::string> answer;
    Status read = ForEachRow(q, [&](const SqlStmt& r) {
      if (!answer) answer = r.Text(0);
    });
    if (!read.ok() || answer != "ok") {
      std::string why = read.ok() ? answer.value_or("no answer") : read.message();
      return Status::Corruption(path + " failed SQLite's integrity check (" + why +
                                "); restore it from a backup or move it aside — dropq will not touch it");
    }
  }
  if (Status s = store->Migrate(); !s.ok()) return Status(s);
  return store;
}

Result<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& path, const Clock& clock) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Store> store(new Store(db, clock));
  if (rc != SQLITE_OK) return Status::NotFound("cannot open database " + path + ": " + sqlite3_errmsg(db));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto v = store->SchemaVersion();
  if (!v.ok()) return v.status();
  auto known = static_cast<std::int64_t>(schema::migrations().size());
  if (*v == 0) return Status::NotFound(path + " holds no dropq database yet (has the daemon run?)");
  if (*v > known) {
    return Status::Corruption(path + " has schema version " + std::to_string(*v) + ", newer than this dropq (" +
                              std::to_string(known) + ")");
  }
  // A reader never migrates, and this binary's queries name columns an
  // older schema lacks (jobs.interruptions, migration 005).
  if (*v < known) {
    return Status::Conflict(path + " has schema version " + std::to_string(*v) + ", older than this dropq (" +
                            std::to_string(known) + "); start the daemon once to upgrade it");
  }
  return store;
}

Result<std::int64_t> Store::SchemaVersion() {
  auto& st = Prepare("PRAGMA user_version");
  std::int64_t v = 0;
  if (Status s = ForEachRow(st, [&](const SqlStmt& r) { v = r.Int(0); }); !s.ok()) return s;
  return v;
}

Result<std::string> Store::InstanceId() {
  auto read = [this]() -> Result<std::optional<std::string>> {
    auto& q = Prepare("SELECT instance_id FROM instance WHERE id=1");
    std::optional<std::string> id;
    if (Status s = ForEachRow(q, [&](const SqlStmt& r) { id = r.Text(0); }); !s.ok()) return s;
    return id;
  };
  auto existing = read();
  if (!existing.ok()) return existing.status();
  if (*existing) return **existing;
  std::string id;
  try {
    std::random_device random;  // the kernel's getrandom/urandom on Linux
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 12; ++i) id.push_back(kHex[random() & 0xF]);
  } catch (const std::exception& e) {
    return Status::IOError(std::string("cannot make an instance id: no random source: ") + e.what());
  }
  // DO NOTHING: had another connection made one in between, that one stays.
  if (Status s = Prepare("INSERT INTO instance(id, instance_id, created_at) VALUES(1, ?1, ?2) "
                         "ON CONFLICT(id) DO NOTHING")
                     .Bind(1, id)
                     .BindTime(2, clock_.NowMs())
                     .Run();
      !s.ok()) {
    return s;
  }
  auto made = read();
  if (!made.ok()) return made.status();
  if (!*made) return Status::IOError("instance id was written but cannot be read back");
  return **made;
}

Status Store::Migrate() {
  auto v = SchemaVersion();
  if (!v.ok()) return v.status();
  const auto& all = schema::migrations();
  auto known = static_cast<std::int64_t>(all.size());
  if (*v > known) {
    return Status::Corruption("database schema version " + std::to_string(*v) + " is newer than this dropq (" +
                              std::to_string(known) + "); refusing to touch it");
  }
  for (auto i = *v; i < known; ++i) {
    const auto& m = all[static_cast<std::size_t>(i)];
    // Foreign keys off while a migration runs (a table rebuilt the way
    // SQLite documents it, 009, must not cascade its DROP), checked before
    // its COMMIT; the pragma is a no-op inside a transaction, so it is set
    // around it.
    std::string sql = "PRAGMA foreign_keys=OFF;\nBEGIN IMMEDIATE;\n" + std::string(m.sql) +
                      "\nPRAGMA user_version=" + std::to_string(i + 1) + ";\n";
    Status s = Exec(sql.c_str());
    if (s.ok()) s = CheckForeignKeys();
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) (void)Exec("ROLLBACK");  // best effort: the migration's own failure is what we report
    if (Status on = Exec("PRAGMA foreign_keys=ON"); s.ok() && !on.ok()) s = on;
    if (!s.ok()) return Status::IOError("migration " + std::string(m.name) + " failed: " + s.message());
  }
  return Status::Ok();
}

Status Store::CheckForeignKeys() {
  auto& q = Prepare("PRAGMA foreign_key_check");
  std::string problem;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    if (problem.empty()) problem = "a row of " + r.Text(0) + " points at a missing row of " + r.Text(2);
  });
  if (!s.ok()) return s;
  if (!problem.empty()) return Status::Corruption(problem);
  return Status::Ok();
}

std::int64_t Store::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

Status Store::Begin() {
  // A statement stepped but not finished keeps a read transaction open; a
  // connection holding one cannot wait for the write lock (SQLite returns
  // SQLITE_BUSY at once rather than deadlock), and it pins the WAL.
  for (sqlite3_stmt* st = sqlite3_next_stmt(db_, nullptr); st; st = sqlite3_next_stmt(db_, st)) {
    if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
  }
  return Exec("BEGIN IMMEDIATE");
}
Status Store::Commit() { return Exec("COMMIT"); }
// Best effort: after a failed statement SQLite may have rolled back already.
void Store::Rollback() { (void)Exec("ROLLBACK"); }

Status Store::UpsertGroup(const std::string& folder, const std::string& name, const std::optional<std::string>& jid,
                          bool is_main) {
  TimeMs now = clock_.NowMs();
  return Prepare(
             "INSERT INTO groups(folder, name, jid, is_main, created_at, updated_at, source) "
             "VALUES(?1, ?2, ?3, ?4, ?5, ?5, 'config') "
             "ON CONFLICT(folder) DO UPDATE SET name=excluded.name, jid=excluded.jid, is_main=excluded.is_main, "
             "updated_at=excluded.updated_at, source='config', trigger_word=NULL, requires_trigger=NULL, "
             "container_config=NULL "
             "WHERE name IS NOT excluded.name OR jid IS NOT excluded.jid OR is_main IS NOT excluded.is_main "
             "OR source IS NOT 'config'")
      .Bind(1, folder)
      .Bind(2, name)
      .Bind(3, jid)
      .Bind(4, std::int64_t{is_main})
      .BindTime(5, now)
      .Run();
}

Result<bool> Store::UpsertRegisteredGroup(const RegisteredGroup& g) {
  auto& known = Prepare("SELECT source FROM groups WHERE folder=?1").Bind(1, g.folder);
  std::optional<std::string> source;
  if (Status s = ForEachRow(known, [&](const SqlStmt& r) { source = r.Text(0); }); !s.ok()) return s;
  bool is_new = !source;
  if (!is_new && source != "registered") {
    return Status::InvalidArgument("group \"" + g.folder + "\" comes from the config; change it there");
  }
  std::optional<std::int64_t> requires_trigger;
  if (g.requires_trigger) requires_trigger = *g.requires_trigger ? 1 : 0;
  Status s = Prepare(
                 "INSERT INTO groups(folder, name, jid, is_main, created_at, updated_at, source, trigger_word, "
                 "requires_trigger, container_config) VALUES(?1, ?2, ?3, 0, ?4, ?4, 'registered', ?5, ?6, ?7) "
                 "ON CONFLICT(folder) DO UPDATE SET name=excluded.name, jid=excluded.jid, "
                 "updated_at=excluded.updated_at, trigger_word=excluded.trigger_word, "
                 "requires_trigger=excluded.requires_trigger, container_config=excluded.container_config")
                 .Bind(1, g.folder)
                 .Bind(2, g.name)
                 .Bind(3, g.jid)
                 .BindTime(4, clock_.NowMs())
                 .Bind(5, g.trigger)
                 .Bind(6, requires_trigger)
                 .Bind(7, g.container_config)
                 .Run();
  if (!s.ok()) return s;
  return is_new;
}

Result<std::vector<RegisteredGroup>> Store::ListRegisteredGroups() {
  auto& q = Prepare(
      "SELECT folder, name, jid, trigger_word, requires_trigger, container_config FROM groups "
      "WHERE source='registered' ORDER BY folder");
  std::vector<RegisteredGroup> out;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    RegisteredGroup g;
    g.folder = r.Text(0);
    g.name = r.Text(1);
    g.jid = r.OptText(2).value_or(g.folder);
    g.trigger = r.OptText(3);
    if (auto t = r.OptInt(4)) g.requires_trigger = *t != 0;
    g.container_config = r.OptText(5);
    out.push_back(std::move(g));
  });
  if (!s.ok()) return s;
  return out;
}

Status Store::AppendEvent(std::optional<JobId> job, const std::optional<std::string>& group, const std::string& event,
                          const std::string& detail_json) {
  return Prepare("INSERT INTO job_events(job_id, group_folder, at, event, detail) VALUES(?1, ?2, ?3, ?4, ?5)")
      .Bind(1, job)
      .Bind(2, group)
      .BindTime(3, clock_.NowMs())
      .Bind(4, event)
      .Bind(5, detail_json.empty() ? std::optional<std::string>() : std::optional(detail_json))
      .Run();
}

Result<std::optional<JobId>> Store::FindByClientId(const std::string& group, const std::string& client_id) {
  auto& q = Prepare("SELECT id FROM jobs WHERE group_folder=?1 AND client_id=?2").Bind(1, group).Bind(2, client_id);
  std::optional<JobId> id;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { id = r.Int(0); }); !s.ok()) return s;
  return id;
}

Result<std::string> Store::IntegrityCheck() {
  auto& q = Prepare("PRAGMA integrity_check");
  std::optional<std::string> verdict;
  if (Status s = ForEachRow(q,
                            [&](const SqlStmt& r) {
                              if (!verdict) verdict = r.Text(0);
                            });
      !s.ok()) {
    return s;
  }
  return verdict.value_or("no answer");
}

namespace {

// The `received` event's detail of a job made from `src` for `group`
// (InsertJob adds what a file may also carry: after, unique_key).
nlohmann::json ReceivedDetail(const std::string& group, const JobSource& src) {
  nlohmann::json d = {{"file", src.name}, {"sha256", src.sha256}};
  if (!src.group.empty() && src.group != group) d["from_group"] = src.group;
  return d;
}

}  // namespace

Result<Store::Inserted> Store::InsertJob(const std::string& group, const RunRequest& req, const JobSource& src,
                                         std::int64_t default_max_attempts, std::int64_t default_max_interruptions,
                                         const std::vector<JobId>& after) {
  TimeMs now = clock_.NowMs();
  // An earlier job this file repeats: by client id (forever), or by unique
  // key (while it is active, or created within the file's window).
  std::optional<std::pair<JobId, JobState>> earlier;
  const char* by = nullptr;
  if (req.client_id) {
    auto& q = Prepare("SELECT id, state FROM jobs WHERE group_folder=?1 AND client_id=?2");
    q.Bind(1, group).Bind(2, *req.client_id);
    Status s = ForEachRow(q, [&](const SqlStmt& r) {
      earlier = {r.Int(0), ParseJobState(r.Text(1)).value_or(JobState::kFailed)};
    });
    if (!s.ok()) return s;
    if (earlier) by = "id";
  }
  if (!earlier && req.unique_key) {
    auto& q = Prepare(
        "SELECT id, state FROM jobs WHERE group_folder=?1 AND unique_key=?2 "
        "AND (state IN ('waiting','queued','running') OR (?3 IS NOT NULL AND created_at >= ?3)) "
        "ORDER BY id DESC LIMIT 1");
    q.Bind(1, group).Bind(2, *req.unique_key);
    if (req.unique_for_ms) {
      q.BindTime(3, now - *req.unique_for_ms);
    } else {
      q.Bind(3, std::optional<std::string>());
    }
    Status s = ForEachRow(q, [&](const SqlStmt& r) {
      earlier = {r.Int(0), ParseJobState(r.Text(1)).value_or(JobState::kFailed)};
    });
    if (!s.ok()) return s;
    if (earlier) by = "unique_key";
  }
  if (earlier) {
    nlohmann::json d = {{"file", src.name}, {"sha256", src.sha256}, {"by", by}};
    if (req.client_id) d["client_id"] = *req.client_id;
    if (req.unique_key) d["unique_key"] = *req.unique_key;
    if (!src.group.empty() && src.group != group) d["from_group"] = src.group;
    if (Status s = AppendEvent(earlier->first, group, "duplicate", text::Dump(d)); !s.ok()) return s;
    return Inserted{earlier->first, true, earlier->second, by};
  }
  const JobState state = after.empty() ? JobState::kQueued : JobState::kWaiting;
  auto& ins = Prepare(
      "INSERT INTO jobs(group_folder, type, client_id, state, prompt, priority, run_at, timeout_ms, context_mode, "
      "max_attempts, source_name, source_hash, source_claim, created_at, source_group, max_interruptions, "
      "after_policy, unique_key) "
      "VALUES(?1, 'run', ?2, ?15, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?16, ?17)");
  ins.Bind(1, group)
      .Bind(2, req.client_id)
      .Bind(3, req.prompt)
      .Bind(4, req.priority)
      .BindTime(5, req.run_at.value_or(now))
      .Bind(6, req.timeout_ms)
      .Bind(7, ToString(req.context_mode))
      .Bind(8, req.max_attempts.value_or(default_max_attempts))
      .Bind(9, src.name)
      .Bind(10, src.sha256)
      .Bind(11, src.claim)
      .BindTime(12, now)
      .Bind(13, src.group.empty() ? group : src.group)
      .Bind(14, req.max_interruptions.value_or(default_max_interruptions))
      .Bind(15, ToString(state))
      .Bind(16, after.empty() ? std::optional<std::string>() : std::string(ToString(req.after_policy)))
      .Bind(17, req.unique_key);
  if (Status s = ins.Run(); !s.ok()) return s;
  JobId id = sqlite3_last_insert_rowid(db_);
  nlohmann::json d = ReceivedDetail(group, src);
  if (!after.empty()) {
    d["after"] = after;
    d["after_policy"] = ToString(req.after_policy);
  }
  if (req.unique_key) d["unique_key"] = *req.unique_key;
  if (Status s = AppendEvent(id, group, "received", text::Dump(d)); !s.ok()) return s;
  if (!after.empty()) {
    if (Status s = deps::AddEdges(*this, id, after); !s.ok()) return s;
  }
  return Inserted{id, false, state, nullptr};
}


Store::PlainBatch Store::PreparePlainJobs(std::vector<PlainJob> jobs) {
  PlainBatch b;
  nlohmann::json rows = nlohmann::json::array();
  b.details.reserve(jobs.size());
  for (const PlainJob& j : jobs) {
    rows.push_back({j.group, j.prompt, ToString(j.context_mode), j.src.name, j.src.sha256, j.src.claim,
                    j.src.group.empty() ? j.group : j.src.group});
    b.details.push_back(text::Dump(ReceivedDetail(j.group, j.src)));
  }
  b.rows = text::Dump(rows);
  b.jobs = std::move(jobs);
  return b;
}

Result<std::vector<std::optional<JobId>>> Store::InsertPlainJobs(const PlainBatch& b, std::int64_t max_attempts,
                                                                 std::int64_t max_interruptions) {
  std::vector<std::optional<JobId>> ids(b.jobs.size());
  if (b.jobs.empty()) return ids;
  const TimeMs now = clock_.NowMs();
  std::unordered_map<std::string_view, std::size_t> by_claim;
  for (std::size_t i = 0; i < b.jobs.size(); ++i) by_claim.emplace(b.jobs[i].src.claim, i);
  // The same columns as InsertJob's insert with RunRequest's defaults
  // (priority 0, no client id, timeout, after or unique key). WHERE 1: an
  // upsert after a SELECT needs it to parse.
  auto& ins = Prepare(
      "INSERT INTO jobs(group_folder, type, state, prompt, priority, run_at, context_mode, max_attempts, "
      "source_name, source_hash, source_claim, created_at, source_group, max_interruptions) "
      "SELECT value->>0, 'run', 'queued', value->>1, 0, ?2, value->>2, ?3, value->>3, value->>4, value->>5, ?2, "
      "value->>6, ?4 FROM json_each(?1) WHERE 1 ORDER BY key "
      "ON CONFLICT(source_claim) DO NOTHING RETURNING id, source_claim");
  ins.Bind(1, b.rows).BindTime(2, now).Bind(3, max_attempts).Bind(4, max_interruptions);
  Status s = ForEachRow(ins, [&](const SqlStmt& r) {
    if (auto it = by_claim.find(r.Text(1)); it != by_claim.end()) ids[it->second] = r.Int(0);
  });
  if (!s.ok()) return s;
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t i = 0; i < b.jobs.size(); ++i) {
    if (ids[i]) events.push_back({*ids[i], b.jobs[i].group, b.details[i]});
  }
  if (events.empty()) return ids;
  s = Prepare(
          "INSERT INTO job_events(job_id, group_folder, at, event, detail) "
          "SELECT value->>0, value->>1, ?2, 'received', value->>2 FROM json_each(?1) ORDER BY key")
          .Bind(1, text::Dump(events))
          .BindTime(2, now)
          .Run();
  if (!s.ok()) return s;
  return ids;
}

Result<bool> Store::HasClaim(const std::string& claim) {
  auto& q = Prepare(sql::kHasClaim).Bind(1, claim);
  bool known = false;
  if (Status s = ForEachRow(q, [&](const SqlStmt&) { known = true; }); !s.ok()) return s;
  return known;
}

Result<JobRun> Store::StartAttempt(JobId id, const std::string& runtime, const std::string& container_name,
                                   std::optional<TimeMs> at) {
  TimeMs now = at.value_or(clock_.NowMs());
  auto& up = Prepare(
                 "UPDATE jobs SET state='running', attempts=attempts+1, started_at=?2, finished_at=NULL "
                 "WHERE id=?1 AND state='queued' RETURNING attempts, group_folder")
                 .Bind(1, id)
                 .BindTime(2, now);
  auto row = up.Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("job " + std::to_string(id) + " is not queued");
  JobRun run;
  run.job_id = id;
  run.attempt = up.Int(0);
  std::string group = up.Text(1);
  // Finish the RETURNING statement before the next write.
  if (auto done = up.Step(); !done.ok()) return done.status();
  run.runtime = runtime;
  run.container_name = container_name;
  run.started_at = now;
  auto& ins =
      Prepare("INSERT INTO job_runs(job_id, attempt, runtime, container_name, started_at) VALUES(?1, ?2, ?3, ?4, ?5)")
          .Bind(1, id)
          .Bind(2, run.attempt)
          .Bind(3, runtime)
          .Bind(4, container_name)
          .BindTime(5, now);
  if (Status s = ins.Run(); !s.ok()) return s;
  run.id = sqlite3_last_insert_rowid(db_);
  nlohmann::json d = {{"attempt", run.attempt}, {"runtime", runtime}, {"container", container_name}};
  if (Status s = AppendEvent(id, group, "started", text::Dump(d)); !s.ok()) return s;
  return run;
}

Status Store::FinishAttempt(const Job& job, const RunOutcome& o) {
  const JobRun& r = o.run;
  auto& run = Prepare(
      "UPDATE job_runs SET finished_at=?2, duration_ms=?3, status=?4, exit_code=?5, signal=?6, stdout_bytes=?7, "
      "stderr_bytes=?8, stdout_truncated=?9, stderr_truncated=?10, log_file=?11, error=?12, node=?13, cluster_state=?14 WHERE id=?1");
  run.Bind(1, r.id)
      .BindTime(2, r.finished_at)
      .Bind(3, r.duration_ms)
      .Bind(4, r.status)
      .Bind(5, r.exit_code)
      .Bind(6, r.signal)
      .Bind(7, r.stdout_bytes)
      .Bind(8, r.stderr_bytes)
      .Bind(9, std::int64_t{r.stdout_truncated})
      .Bind(10, std::int64_t{r.stderr_truncated})
      .Bind(11, r.log_file)
      .Bind(12, r.error)
      .Bind(13, r.node)
      .Bind(14, r.cluster_state);
  if (Status s = run.Run(); !s.ok()) return s;
  auto& up = Prepare(
      "UPDATE jobs SET state=?2, finished_at=?3, result=?4, error=?5, run_at=coalesce(?6, run_at), "
      "interruptions=interruptions+?7 WHERE id=?1");
  up.Bind(1, job.id)
      .Bind(2, o.retry_at ? std::string_view("queued") : ToString(o.job_state))
      .BindTime(3, o.retry_at ? std::optional<TimeMs>() : r.finished_at)
      .Bind(4, o.result)
      .Bind(5, o.error)
      .BindTime(6, o.retry_at)
      .Bind(7, std::int64_t{o.interrupted ? 1 : 0});
  if (Status s = up.Run(); !s.ok()) return s;
  if (o.new_session_id && job.context_mode == ContextMode::kGroup) {
    auto& ss = Prepare(
        "INSERT INTO sessions(group_folder, session_id, updated_at) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(group_folder) DO UPDATE SET session_id=excluded.session_id, updated_at=excluded.updated_at");
    if (Status s = ss.Bind(1, job.group).Bind(2, *o.new_session_id).BindTime(3, clock_.NowMs()).Run(); !s.ok()) {
      return s;
    }
  }
  nlohmann::json d = {{"attempt", r.attempt}, {"run_status", r.status}, {"duration_ms", r.duration_ms.value_or(0)}};
  if (r.exit_code) d["exit_code"] = *r.exit_code;
  if (r.signal) d["signal"] = *r.signal;
  if (o.error) d["error"] = *o.error;
  if (o.retry_at) d["retry_at"] = FormatIsoUtc(*o.retry_at);
  return AppendEvent(job.id, job.group, o.retry_at ? "retry" : std::string(ToString(o.job_state)), text::Dump(d));
}

// One guarded state change and its audit event: `update_sql` binds ?1 = job
// id and ?2 = now, and RETURNs the group when its WHERE matched.
Result<bool> Store::TransitionWithEvent(const char* update_sql, JobId id, const char* event,
                                        const std::string& detail_json) {
  auto& up = Prepare(update_sql).Bind(1, id).BindTime(2, clock_.NowMs());
  auto row = up.Step();
  if (!row.ok()) return row.status();
  if (!*row) return false;
  std::string group = up.Text(0);
  // Finish the RETURNING statement before the next write.
  if (auto done = up.Step(); !done.ok()) return done.status();
  if (Status s = AppendEvent(id, group, event, detail_json); !s.ok()) return s;
  return true;
}

Result<bool> Store::CancelQueued(JobId id, const std::string& detail_json, const std::string& error) {
  auto& up = Prepare(
                 "UPDATE jobs SET state='cancelled', finished_at=?2, error=?3 "
                 "WHERE id=?1 AND state IN ('queued','waiting') RETURNING group_folder")
                 .Bind(1, id)
                 .BindTime(2, clock_.NowMs())
                 .Bind(3, error);
  auto row = up.Step();
  if (!row.ok()) return row.status();
  if (!*row) return false;
  std::string group = up.Text(0);
  // Finish the RETURNING statement before the next write.
  if (auto done = up.Step(); !done.ok()) return done.status();
  if (Status s = AppendEvent(id, group, "cancelled", detail_json); !s.ok()) return s;
  return true;
}

Result<bool> Store::Requeue(JobId id, const std::string& detail_json, bool waiting) {
  if (waiting) {
    return TransitionWithEvent(
        "UPDATE jobs SET state='waiting', max_attempts=attempts-interruptions+max_attempts, "
        "max_interruptions=interruptions+max_interruptions, run_at=?2, "
        "started_at=NULL, finished_at=NULL, error=NULL, result=NULL "
        "WHERE id=?1 AND state IN ('failed','cancelled') RETURNING group_folder",
        id, "retried", detail_json);
  }
  return TransitionWithEvent(
      "UPDATE jobs SET state='queued', max_attempts=attempts-interruptions+max_attempts, "
      "max_interruptions=interruptions+max_interruptions, run_at=?2, "
      "started_at=NULL, finished_at=NULL, error=NULL, result=NULL "
      "WHERE id=?1 AND state IN ('failed','cancelled') RETURNING group_folder",
      id, "retried", detail_json);
}

Result<std::vector<JobId>> Store::RecoverInterrupted(const BeforeFail& before_fail) {
  // One transaction: a crash during recovery leaves either nothing done or
  // all of it, never a `lost` run without its requeue and `recovered` event
  // (the chaos suite caught exactly that with separate commits).
  if (Status s = Begin(); !s.ok()) return s;
  auto result = RecoverInterruptedLocked(before_fail);
  if (!result.ok()) {
    Rollback();
    return result;
  }
  if (Status s = Commit(); !s.ok()) return s;
  return result;
}

Result<std::vector<JobId>> Store::RecoverInterruptedLocked(const BeforeFail& before_fail) {
  std::vector<JobId> touched;
  TimeMs now = clock_.NowMs();
  auto& runs = Prepare(
      "SELECT r.id, r.job_id, r.attempt, r.runtime, r.container_name, r.started_at FROM job_runs r "
      "WHERE r.status='running'");
  std::vector<JobRun> lost;
  for (;;) {
    auto row = runs.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    JobRun r;
    r.id = runs.Int(0);
    r.job_id = runs.Int(1);
    r.attempt = runs.Int(2);
    r.runtime = runs.Text(3);
    r.container_name = runs.OptText(4);
    r.started_at = runs.Time(5);
    lost.push_back(std::move(r));
  }
  const char* msg = "dropq stopped while this attempt ran";
  for (auto& r : lost) {
    auto found = GetJob(r.job_id);
    if (!found.ok()) return found.status();
    if (!*found) continue;  // job_runs has a foreign key: cannot happen
    Job job = std::move(**found);
    r.finished_at = now;
    r.duration_ms = std::max<TimeMs>(0, now - r.started_at);
    r.status = "lost";
    r.error = msg;
    if (Status s = Prepare("UPDATE job_runs SET status='lost', finished_at=?2, duration_ms=?3, error=?4 WHERE id=?1")
                       .Bind(1, r.id)
                       .BindTime(2, now)
                       .Bind(3, r.duration_ms)
                       .Bind(4, msg)
                       .Run();
        !s.ok()) {
      return s;
    }
    // Not the job's fault: an interruption, not one of its attempts. Only a
    // crash loop (more interruptions than the job allows) fails it.
    ++job.interruptions;
    bool running = job.state == JobState::kRunning;
    bool requeue = job.interruptions <= job.max_interruptions;
    std::string error = requeue                  ? std::string(msg)
                        : job.interruptions == 1 ? "interrupted 1 time; dropq stopped during its attempt"
                                                 : "interrupted " + std::to_string(job.interruptions) +
                                                       " times; dropq stopped during each attempt";
    if (running && !requeue && before_fail) {
      RunOutcome o;
      o.job_state = JobState::kFailed;
      o.run = r;
      o.error = error;
      if (Status s = before_fail(job, o); !s.ok()) return s;
    }
    if (Status s = Prepare("UPDATE jobs SET state=?2, finished_at=?3, error=?4, interruptions=interruptions+1 "
                           "WHERE id=?1 AND state='running'")
                       .Bind(1, job.id)
                       .Bind(2, requeue ? "queued" : "failed")
                       .BindTime(3, requeue ? std::optional<TimeMs>() : std::optional<TimeMs>(now))
                       .Bind(4, error)
                       .Run();
        !s.ok()) {
      return s;
    }
    nlohmann::json d = {{"attempt", r.attempt},
                        {"requeued", requeue},
                        {"reason", msg},
                        {"interruptions", job.interruptions},
                        {"max_interruptions", job.max_interruptions}};
    if (!requeue) d["error"] = error;
    if (Status s = AppendEvent(job.id, job.group, "recovered", text::Dump(d)); !s.ok()) return s;
    touched.push_back(job.id);
  }
  return touched;
}

namespace {

template <typename S>
Job ReadJob(const S& q) {
  Job j;
  j.id = q.Int(0);
  j.group = q.Text(1);
  j.type = q.Text(2);
  j.client_id = q.OptText(3);
  j.state = ParseJobState(q.Text(4)).value_or(JobState::kFailed);
  j.prompt = q.Text(5);
  j.priority = q.Int(6);
  j.run_at = q.Time(7);
  j.timeout_ms = q.OptInt(8);
  j.context_mode = q.Text(9) == "group" ? ContextMode::kGroup : ContextMode::kIsolated;
  j.attempts = q.Int(10);
  j.max_attempts = q.Int(11);
  j.source_name = q.OptText(12);
  j.source_hash = q.OptText(13);
  j.created_at = q.Time(14);
  j.started_at = q.OptTime(15);
  j.finished_at = q.OptTime(16);
  j.result = q.OptText(17);
  j.error = q.OptText(18);
  j.source_group = q.OptText(19);
  j.interruptions = q.Int(20);
  j.max_interruptions = q.Int(21);
  if (auto p = q.OptText(22)) j.after_policy = *p == "finished" ? AfterPolicy::kFinished : AfterPolicy::kSucceeded;
  j.unique_key = q.OptText(23);
  return j;
}

}  // namespace

Result<std::optional<Job>> Store::GetJob(JobId id) {
  static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=?1";
  auto& q = Prepare(sql.c_str()).Bind(1, id);
  std::optional<Job> job;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { job = ReadJob(r); }); !s.ok()) return s;
  return job;
}

Result<std::vector<Job>> Store::ListJobs(const JobFilter& f) {
  static const std::string sql = std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE (?1 IS NULL OR state=?1) AND (?2 IS NULL OR group_folder=?2) "
                                 "ORDER BY id DESC LIMIT ?3";
  auto& q = Prepare(sql.c_str());
  q.Bind(1, f.state ? std::optional<std::string>(std::string(ToString(*f.state))) : std::nullopt)
      .Bind(2, f.group)
      .Bind(3, std::int64_t{f.limit});
  std::vector<Job> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back(ReadJob(r)); }); !s.ok()) return s;
  return out;
}

Result<std::vector<Job>> Store::ListQueued() {
  static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE state='queued' ORDER BY id";
  auto& q = Prepare(sql.c_str());
  std::vector<Job> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back(ReadJob(r)); }); !s.ok()) return s;
  return out;
}

Result<std::vector<QueuedJob>> Store::ListQueuedRefs() {
  auto& q = Prepare(sql::kListQueuedRefs);
  std::vector<QueuedJob> out;
  if (Status s = ForEachRow(q,
                            [&](const SqlStmt& r) {
                              out.push_back({r.Int(0), r.Text(1), r.Int(2), r.Time(3)});
                            });
      !s.ok()) {
    return s;
  }
  return out;
}

Result<std::vector<Store::AttemptStart>> Store::StartsSince(TimeMs since) {
  auto& q = Prepare(sql::kStartsSince);
  q.BindTime(1, since);
  std::vector<AttemptStart> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back({r.Text(0), r.Time(1)}); }); !s.ok()) return s;
  return out;
}

Result<std::vector<std::string>> Store::QueryPlan(const std::string& query) {
  sqlite3_stmt* st = nullptr;
  std::string text = "EXPLAIN QUERY PLAN " + query;
  if (sqlite3_prepare_v2(db_, text.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    return Status::InvalidArgument(std::string("cannot explain: ") + sqlite3_errmsg(db_));
  }
  std::vector<std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    // Columns: id, parent, notused, detail.
    if (const unsigned char* d = sqlite3_column_text(st, 3)) out.emplace_back(reinterpret_cast<const char*>(d));
  }
  sqlite3_finalize(st);
  return out;
}

Result<std::int64_t> Store::CountQueued(const std::string& group) {
  auto& q = Prepare(sql::kCountQueued).Bind(1, group);
  std::int64_t n = 0;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { n = r.Int(0); }); !s.ok()) return s;
  return n;
}

Result<std::vector<JobEvent>> Store::ListEvents(std::optional<JobId> job) {
  auto& q = Prepare(
                "SELECT id, job_id, group_folder, at, event, detail FROM job_events "
                "WHERE (?1 IS NULL OR job_id=?1) ORDER BY id")
                .Bind(1, job);
  std::vector<JobEvent> out;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    out.push_back({r.Int(0), r.OptInt(1), r.OptText(2), r.Time(3), r.Text(4), r.OptText(5)});
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::int64_t> Store::LastEventId() {
  auto& q = Prepare("SELECT coalesce(max(id), 0) FROM job_events");
  std::int64_t id = 0;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { id = r.Int(0); }); !s.ok()) return s;
  return id;
}

Result<std::optional<JobEvent>> Store::FindVerdict(const std::string& group, const std::string& file,
                                                   std::int64_t after_id) {
  auto& q = Prepare(
                "SELECT id, job_id, group_folder, at, event, detail FROM job_events "
                "WHERE id > ?1 AND event IN ('applied', 'rejected') AND group_folder = ?2 "
                "AND json_extract(detail, '$.file') = ?3 ORDER BY id LIMIT 1")
                .Bind(1, after_id)
                .Bind(2, group)
                .Bind(3, file);
  std::optional<JobEvent> found;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    found = JobEvent{r.Int(0), r.OptInt(1), r.OptText(2), r.Time(3), r.Text(4), r.OptText(5)};
  });
  if (!s.ok()) return s;
  return found;
}

Result<std::vector<JobRun>> Store::ListRuns(JobId job) {
  auto& q = Prepare(
                "SELECT id, job_id, attempt, runtime, container_name, started_at, finished_at, duration_ms, "
                "status, exit_code, signal, stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, "
                "log_file, error, node, cluster_state FROM job_runs WHERE job_id=?1 ORDER BY attempt")
                .Bind(1, job);
  std::vector<JobRun> out;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    JobRun run;
    run.id = r.Int(0);
    run.job_id = r.Int(1);
    run.attempt = r.Int(2);
    run.runtime = r.Text(3);
    run.container_name = r.OptText(4);
    run.started_at = r.Time(5);
    run.finished_at = r.OptTime(6);
    run.duration_ms = r.OptInt(7);
    run.status = r.Text(8);
    run.exit_code = r.OptInt(9);
    run.signal = r.OptInt(10);
    run.stdout_bytes = r.OptInt(11).value_or(0);
    run.stderr_bytes = r.OptInt(12).value_or(0);
    run.stdout_truncated = r.Int(13) != 0;
    run.stderr_truncated = r.Int(14) != 0;
    run.log_file = r.OptText(15);
    run.error = r.OptText(16);
    run.node = r.OptText(17);
    run.cluster_state = r.OptText(18);
    out.push_back(std::move(run));
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<std::pair<std::string, std::int64_t>>> Store::CountByState() {
  auto& q = Prepare("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state");
  std::vector<std::pair<std::string, std::int64_t>> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.emplace_back(r.Text(0), r.Int(1)); }); !s.ok()) return s;
  return out;
}

Result<std::optional<std::string>> Store::GetSession(const std::string& group) {
  auto& q = Prepare("SELECT session_id FROM sessions WHERE group_folder=?1").Bind(1, group);
  std::optional<std::string> id;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { id = r.Text(0); }); !s.ok()) return s;
  return id;
}

}  // namespace dropq
