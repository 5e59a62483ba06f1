#pragma once
// What every benchmark scenario needs: a clock, statistics, a temporary dropq
// root with its config, the real dropq binary as a child process, /proc
// readings of it, read-only queries of its database, inotify waits, and
// spawning the peers. Bad input (a missing binary, a daemon that does not
// start) throws BenchError with the reason; main prints it and exits 1.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_value;

namespace dropq::bench {

namespace fs = std::filesystem;

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// CLOCK_MONOTONIC in ns: the clock the bench agent stamps its start with.
std::int64_t NowNs();
void SleepUntilNs(std::int64_t t);
void SleepMs(std::int64_t ms);

// A scenario size from the environment (BENCH_<NAME>), else the default.
std::int64_t EnvInt(const char* name, std::int64_t def);

// Sorted samples: order statistics by nearest rank.
double Quantile(std::vector<double> v, double q);
double Median(const std::vector<double>& v);

struct ProcStat {
  double cpu_s = 0;          // time on a CPU, all threads (/proc/<pid>/task/*/schedstat, ns)
  std::int64_t rss_kb = 0;   // VmRSS
  std::int64_t hwm_kb = 0;   // VmHWM (peak RSS)
  std::int64_t wakeups = 0;  // voluntary + involuntary context switches, all threads
};
ProcStat ReadProc(pid_t pid);

// Another database's schema and rows, read into memory to be written again
// by a floor program. `only` names the tables whose rows are copied and a
// WHERE clause for each (nullopt: every row of every table); the schema is
// always whole (every table and index).
class DbCopy {
 public:
  DbCopy(const fs::path& db, const std::optional<std::map<std::string, std::string>>& only);
  DbCopy(const DbCopy&) = delete;
  DbCopy& operator=(const DbCopy&) = delete;

  void CreateSchema(sqlite3* db) const;  // every table, then every index
  void InsertRows(sqlite3* db) const;    // one prepared INSERT per table

 private:
  using Value = std::unique_ptr<sqlite3_value, void (*)(sqlite3_value*)>;  // sqlite3_value_dup'ed
  struct Table {
    std::string insert;                     // INSERT INTO "t" VALUES (?, ...)
    std::vector<std::vector<Value>> rows;
  };
  std::vector<std::string> tables_sql_, indexes_sql_;
  std::vector<Table> tables_;
};

// The start-up floor: the same rows as the database at `db` (every table and
// index, created from its own schema) written into a fresh database in one
// transaction (WAL, synchronous=FULL), and the same directories and files as
// under `tree` (skipping `skip`, e.g. the store) created under a scratch
// directory, with one syncfs at the end. Everything is read before the clock
// starts; returns the seconds the writing took.
double StartupFloorS(const fs::path& db, const fs::path& tree, const fs::path& skip);

void WriteText(const fs::path& p, const std::string& text);
std::string ReadText(const fs::path& p);

// A fresh directory under $TMPDIR, removed with its contents.
class TempRoot {
 public:
  explicit TempRoot(const std::string& tag);
  ~TempRoot();
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct RootOptions {
  std::string runtime = "process";
  std::vector<std::string> groups = {"g0"};
  int max_concurrent = 2;
  std::string extra;  // more top-level YAML (schedules:, max_output:, ...)
  std::vector<std::string> agent_args;  // after the agent's path (process runtime)
  bool make_dirs = true;  // create each group's tasks/ (false: a first start creates them)
};

// A dropq root: config at <dir>/dropq.yaml, root <dir>/var, staged files in
// <dir>/stage (same filesystem, so a drop is one rename).
class Root {
 public:
  Root(const fs::path& agent, const RootOptions& opts);
  fs::path Dir() const { return tmp_.path(); }
  fs::path Config() const { return Dir() / "dropq.yaml"; }
  fs::path Var() const { return Dir() / "var"; }
  fs::path Tasks(const std::string& g) const { return Var() / "data/ipc" / g / "tasks"; }
  fs::path Results(const std::string& g) const { return Var() / "data/ipc" / g / "results"; }
  fs::path Claimed(const std::string& g) const { return Var() / "data/claimed" / g; }
  fs::path Db() const { return Var() / "store/dropq.db"; }
  fs::path Stage() const { return Dir() / "stage"; }

  // Writes <stage>/<group>/<name> now; Drop renames it into tasks/.
  void StageFile(const std::string& group, const std::string& name, const std::string& body);
  void Drop(const std::string& group, const std::string& name);

 private:
  TempRoot tmp_;
};

// The dropq daemon as a child process; its log is <dir>/daemon.log.
class Daemon {
 public:
  Daemon(const fs::path& binary, const Root& root);
  ~Daemon();
  // Waits until the log says it started (or throws after timeout_ms).
  void WaitReady(int timeout_ms = 60'000);
  // SIGTERM and wait; returns the exit status.
  int Stop();
  pid_t pid() const { return pid_; }
  std::int64_t started_ns() const { return started_ns_; }

 private:
  pid_t pid_ = -1;
  fs::path log_;
  std::int64_t started_ns_ = 0;
};

// A read-only connection to a dropq database, as a user's sqlite3 shell.
class Db {
 public:
  explicit Db(const fs::path& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  std::int64_t Int(const std::string& sql);
  std::vector<std::vector<std::string>> Rows(const std::string& sql);

 private:
  sqlite3* db_ = nullptr;
};

// inotify on a few directories; Wait hands each (name, mask) to `on` until
// it returns true or timeout_ms passes (then false).
class Inotify {
 public:
  Inotify();
  ~Inotify();
  void Watch(const fs::path& dir, std::uint32_t mask);
  bool Wait(int timeout_ms, const std::function<bool(const std::string&, std::uint32_t)>& on);

 private:
  int fd_ = -1;
};

// posix_spawnp argv with extra environment; stdin/stdout/stderr to the given
// paths ("" = inherit). Returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
            const std::string& in = "/dev/null", const std::string& out = "/dev/null", const std::string& err = "");
// Waits for pid; returns its exit status (or 128 + signal).
int WaitPid(pid_t pid);
// Spawn and wait; throws BenchError on a non-zero exit.
void Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
// The directory holding `name` on PATH, or "" if none.
std::string Which(const std::string& name);

}  // namespace dropq::bench
