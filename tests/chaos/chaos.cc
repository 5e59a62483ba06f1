// dropq-chaos: the fault-injection suite (issue 5, item 6; docs/RELIABILITY.md).
//
// A job runner is trusted only when a kill -9 cannot lose or double work, so
// this program tries: it drops job files while SIGKILLing the daemon at random
// moments and restarting it, then proves from the database and the files that
// every dropped file became exactly one job, that job succeeded, its result
// file came back once, and job_events tells its whole story.
//
//   1. Plan everything from --seed: each job's group, file name, client id and
//      sleep; each kill's moment (a share of the jobs done, or a delay after
//      a start) and how long the daemon then stays down. Only timing is left
//      to chance.
//   2. Start the daemon and a dropper thread that writes the files
//      (name.json.tmp, then rename, as docs/FILES.md asks) a little ahead of
//      the finished jobs for the whole run — also while the daemon is down,
//      so start-up scans and reconciliation of data/claimed/ get work.
//   3. SIGKILL the daemon --kills times, restarting it each time.
//   4. Let the last daemon run until every job is final, stop it with SIGTERM,
//      and check the database (read-only, sqlite3 C API) and the files.
//
// Standalone on purpose (not a Catch2 test): it runs for tens of seconds, and
// its report — what it tried, what it found — is the point.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMaxConcurrent = 4;
// max_attempts is left at its default (1): an attempt lost to a kill is an
// interruption, not one of the job's attempts, so no job may need a second
// counted attempt. max_interruptions is set above the number of kills, so no
// job may fail for being interrupted either.
constexpr int kMaxSleepMs = 50;
constexpr std::size_t kShowProblems = 5;
// No job becoming final for this long means a stuck job: give up waiting and
// let the checks name it, rather than idling to --max-seconds.
constexpr auto kStallLimit = std::chrono::seconds(60);

// ---------------------------------------------------------------- options

struct Options {
  std::string dropq;
  std::string agent;
  int jobs = 2000;
  int groups = 10;
  int kills = 10;
  std::uint64_t seed = 1;
  std::string workdir;  // empty: a fresh mkdtemp dir, removed after a pass
  int max_seconds = 600;
  std::string runtime = "process";
  int per_group = 1;  // max_concurrent_per_group
  bool keep = false;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "dropq-chaos: %s\n"
               "usage: dropq-chaos --dropq PATH --agent PATH [--jobs 2000] [--groups 10] [--kills 10]\n"
               "                   [--seed N] [--workdir DIR] [--max-seconds 600] [--runtime process|bwrap|slurm]\n"
               "                   [--per-group 1] [--keep]\n",
               why.c_str());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  auto number = [](const std::string& flag, const char* text, long long lo, long long hi) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
      Usage(flag + " needs an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--keep") {
      o.keep = true;
      continue;
    }
    if (i + 1 >= argc) Usage(a + " needs a value (or is unknown)");
    const char* v = argv[++i];
    if (a == "--dropq")
      o.dropq = v;
    else if (a == "--agent")
      o.agent = v;
    else if (a == "--jobs")
      o.jobs = static_cast<int>(number(a, v, 1, 1'000'000));
    else if (a == "--groups")
      o.groups = static_cast<int>(number(a, v, 1, 100));
    else if (a == "--kills")
      o.kills = static_cast<int>(number(a, v, 0, 10'000));
    else if (a == "--seed")
      o.seed = static_cast<std::uint64_t>(number(a, v, 0, INT64_MAX));
    else if (a == "--workdir")
      o.workdir = v;
    else if (a == "--max-seconds")
      o.max_seconds = static_cast<int>(number(a, v, 10, 86'400));
    else if (a == "--runtime")
      o.runtime = v;
    else if (a == "--per-group")
      o.per_group = static_cast<int>(number(a, v, 1, kMaxConcurrent));
    else
      Usage("unknown option " + a);
  }
  if (o.dropq.empty() || o.agent.empty()) Usage("--dropq and --agent are required");
  if (o.runtime != "process" && o.runtime != "bwrap" && o.runtime != "slurm") {
    Usage("--runtime is process, bwrap or slurm");
  }
  // The config and the bwrap bind need absolute paths; the daemon's working
  // directory is not ours to assume.
  o.dropq = fs::absolute(o.dropq).string();
  o.agent = fs::absolute(o.agent).string();
  for (const auto& p : {o.dropq, o.agent}) {
    if (access(p.c_str(), X_OK) != 0) Usage(p + " is not an executable");
  }
  return o;
}

// ---------------------------------------------------------------- time

std::int64_t WallMs() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// dropq's timestamps: "2026-11-27T08:45:57.123Z" (docs/SCHEMA.md). -1 for
// NULL or anything else.
std::int64_t ParseIsoMs(const std::string& s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  char z = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms, &z) != 8 || z != 'Z') {
    return -1;
  }
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = sec;
  return static_cast<std::int64_t>(timegm(&t)) * 1000 + ms;
}

std::string IsoMs(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm t{};
  gmtime_r(&secs, &t);
  char buf[32], out[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string Secs(Steady::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fs", std::chrono::duration<double>(d).count());
  return buf;
}

// ---------------------------------------------------------------- the plan

struct PlannedJob {
  std::string group;
  std::string name;  // file name, unique across groups: matches jobs.source_name
  std::string id;    // client id, unique: matches jobs.client_id and result.echo
  int sleep_ms = 0;
  // The workflow mix (docs/FILES.md, "Dependencies", "Unique jobs"): a job
  // that waits for an earlier job of its group (by its client id), and a
  // file that repeats an earlier job's unique key and must make no job.
  std::optional<std::size_t> after;   // index of the planned job it waits for
  std::optional<std::size_t> dup_of;  // index of the planned job it repeats
};

// Every planned job's key: each job has its own, a duplicate borrows one.
std::string UniqueKeyOf(const PlannedJob& j) { return "key-" + j.id; }

struct PlannedKill {
  // An early kill strikes `after_start_ms` after the daemon (re)started, where
  // recovery, reconciliation of claimed/ and the start-up scan run. A late
  // one waits for the daemon to be up that long AND for `progress` of the
  // jobs to be final, which spreads the kills over the whole run however
  // fast the machine is.
  bool early = false;
  int after_start_ms = 0;
  double progress = 0;
  int down_ms = 0;  // how long the daemon stays down afterwards
};

struct Plan {
  std::vector<std::string> groups;  // groups[0] is main
  std::vector<PlannedJob> jobs;
  std::vector<PlannedKill> kills;
};

Plan MakePlan(const Options& o) {
  std::mt19937_64 rng(o.seed);
  Plan p;
  p.groups.push_back("main");
  for (int g = 1; g < o.groups; ++g) {
    char name[16];
    std::snprintf(name, sizeof name, "g%02d", g);
    p.groups.push_back(name);
  }
  std::uniform_int_distribution<std::size_t> group(0, p.groups.size() - 1);
  std::uniform_int_distribution<int> sleep(0, kMaxSleepMs), mix(0, 15);
  std::map<std::string, std::vector<std::size_t>> jobs_of;  // group -> planned jobs (not duplicates)
  for (int i = 0; i < o.jobs; ++i) {
    char name[32], id[48];
    std::snprintf(name, sizeof name, "job-%06d.json", i);
    std::snprintf(id, sizeof id, "chaos-%llu-%06d", static_cast<unsigned long long>(o.seed), i);
    PlannedJob j{p.groups[group(rng)], name, id, sleep(rng), std::nullopt, std::nullopt};
    // One file in eight waits for one of the last few jobs of its group,
    // one in sixteen repeats one's unique key. Both name jobs dropped
    // before them: a dependency must exist (or arrive in the same pass).
    const auto& earlier = jobs_of[j.group];
    const int roll = mix(rng);
    if (!earlier.empty() && roll < 3) {
      std::uniform_int_distribution<std::size_t> pick(earlier.size() > 8 ? earlier.size() - 8 : 0, earlier.size() - 1);
      if (roll < 2) {
        j.after = earlier[pick(rng)];
      } else {
        j.dup_of = earlier[pick(rng)];
      }
    }
    if (!j.dup_of) jobs_of[j.group].push_back(p.jobs.size());
    p.jobs.push_back(std::move(j));
  }
  // A third of the kills are early (the first kill is always late: a start
  // with nothing to recover is not much of a test). The late ones fall one
  // in each equal slice of the first 90 % of progress, so the kills span the
  // run. Down times let files pile up in tasks/.
  std::uniform_int_distribution<int> early(5, 150), late(200, 1500), down(0, 400), coin(0, 2);
  std::uniform_real_distribution<double> within(0, 1);
  for (int k = 0; k < o.kills; ++k) {
    PlannedKill pk;
    pk.early = k > 0 && coin(rng) == 0;
    pk.after_start_ms = pk.early ? early(rng) : late(rng);
    pk.down_ms = down(rng);
    p.kills.push_back(pk);
  }
  const auto lates = std::count_if(p.kills.begin(), p.kills.end(), [](const PlannedKill& k) { return !k.early; });
  int slice = 0;
  for (auto& k : p.kills) {
    if (!k.early) k.progress = 0.9 * (slice++ + within(rng)) / static_cast<double>(lates);
  }
  return p;
}

std::string Config(const Options& o, const Plan& p, const fs::path& root) {
  auto q = [](const std::string& s) { return json(s).dump(); };  // a JSON string is a YAML double-quoted scalar
  std::ostringstream c;
  c << "root: " << q(root.string()) << "\n"
    << "runtime: " << o.runtime << "\n";
  if (o.runtime == "bwrap") {
    c << "agent: [/opt/dropq/test-agent]\n"
      << "bwrap:\n  ro_binds:\n    - {host: " << q(o.agent) << ", container: /opt/dropq/test-agent}\n";
  } else {
    c << "agent: [" << q(o.agent) << "]\n";
  }
  if (o.runtime == "slurm") {
    // Each attempt an srun step on the cluster SLURM_CONF names; the agent
    // runs bare on the node, which shares this machine's files.
    c << "slurm:\n  shared_root: " << q(root.parent_path().string()) << "\n  inner: bare\n";
  }
  c << "max_concurrent: " << kMaxConcurrent << "\n"
    << "max_concurrent_per_group: " << o.per_group << "\n"
    << "max_interruptions: " << o.kills + 1 << "\n"
    << "timeout: 30s\n"
    << "kill_grace: 1s\n"
    << "groups:\n";
  for (std::size_t g = 0; g < p.groups.size(); ++g) {
    c << "  - {folder: " << p.groups[g] << (g == 0 ? ", main: true" : "") << "}\n";
  }
  return c.str();
}

// ---------------------------------------------------------------- the daemon

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// The daemon as a child process: stdout and stderr appended to one log, so
// every run of a chaos session reads in order in one file.
class Daemon {
 public:
  Daemon(std::string binary, fs::path config, fs::path log)
      : binary_(std::move(binary)), config_(std::move(config)), log_(std::move(log)) {}
  ~Daemon() {
    if (pid_ > 0) Kill();
  }

  bool Start() {
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(127);
      execl(binary_.c_str(), binary_.c_str(), "run", "--config", config_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    started_ = Steady::now();
    return true;
  }

  bool running() const { return pid_ > 0; }
  Steady::duration uptime() const { return Steady::now() - started_; }

  // Reaps the daemon if it exited by itself; its status, else nullopt.
  std::optional<int> ExitedByItself() {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    return std::nullopt;
  }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  // A line in the daemon's log, so a reader sees where each run was cut.
  void Mark(const std::string& line) {
    std::ofstream(log_, std::ios::app) << "---- dropq-chaos: " << line << " ----\n";
  }

  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  std::string Stop(Steady::duration grace) {
    if (pid_ <= 0) return "not running";
    ::kill(pid_, SIGTERM);
    const auto until = Steady::now() + grace;
    int status = 0;
    while (Steady::now() < until) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return DescribeStatus(status);
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    Kill();
    return "did not stop within " + Secs(grace) + ": SIGKILLed";
  }

 private:
  std::string binary_;
  fs::path config_, log_;
  pid_t pid_ = -1;
  Steady::time_point started_{};
};

// ---------------------------------------------------------------- the dropper

// Writes the planned files, each as name.tmp then a rename, whether or not
// the daemon is up at that moment. It stays `window` files ahead of the jobs
// already final, so files keep arriving for the whole run (and every kill
// finds a backlog) instead of all landing in the first seconds; each kill
// grants a burst beyond the window, dropped while the daemon is down.
class Dropper {
 public:
  Dropper(const Plan& plan, fs::path ipc, std::size_t window) : plan_(plan), ipc_(std::move(ipc)), window_(window) {}
  ~Dropper() {
    Stop();
    Join();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() { stop_ = true; }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void Progress(std::int64_t final_jobs) { final_ = static_cast<std::size_t>(std::max<std::int64_t>(0, final_jobs)); }
  void Burst(std::size_t n) { bonus_ += n; }
  std::size_t dropped() const { return dropped_; }
  bool finished() const { return finished_; }
  std::string error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void Run() {
    for (std::size_t i = 0; i < plan_.jobs.size() && !stop_; ++i) {
      while (!stop_ && i >= final_ + window_ + bonus_) std::this_thread::sleep_for(milliseconds(2));
      if (stop_) break;
      const PlannedJob& j = plan_.jobs[i];
      const fs::path dir = ipc_ / j.group / "tasks";
      json body = {{"type", "run"},
                   {"prompt", "sleep " + std::to_string(j.sleep_ms) + "; echo " + j.id},
                   {"id", j.id},
                   {"unique_key", UniqueKeyOf(j.dup_of ? plan_.jobs[*j.dup_of] : j)},
                   {"unique_for", "1h"}};
      if (j.after) body["after"] = plan_.jobs[*j.after].id;
      const fs::path tmp = dir / (j.name + ".tmp");
      std::error_code ec;
      {
        std::ofstream out(tmp, std::ios::binary);
        out << body.dump() << "\n";
        out.close();
        if (!out) ec = std::make_error_code(std::errc::io_error);
      }
      if (!ec) fs::rename(tmp, dir / j.name, ec);
      if (ec) {
        std::lock_guard lock(mu_);
        error_ = "cannot drop " + (dir / j.name).string() + ": " + ec.message();
        break;
      }
      ++dropped_;
    }
    finished_ = true;
  }

  const Plan& plan_;
  fs::path ipc_;
  std::size_t window_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, finished_{false};
  std::atomic<std::size_t> dropped_{0}, final_{0}, bonus_{0};
  std::mutex mu_;
  std::string error_;
};

// ---------------------------------------------------------------- the database

// A read-only connection: the checks must never change what they judge.
class Db {
 public:
  explicit Db(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      error_ = db_ ? sqlite3_errmsg(db_) : "out of memory";
      return;
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& error() const { return error_; }

  // Calls `row` for each result row; false (and error()) on failure.
  bool Query(const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
    if (!error_.empty()) return false;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
      error_ = sqlite3_errmsg(db_);
      return false;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    if (rc != SQLITE_DONE) error_ = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
  }

 private:
  sqlite3* db_ = nullptr;
  std::string error_;
};

std::string Text(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

struct DbJob {
  std::int64_t id = 0;
  std::string group, client_id, state, source_group, source_name;
  std::int64_t attempts = 0, interruptions = 0, max_attempts = 0;
};

struct DbEvent {
  std::int64_t id = 0;
  std::optional<std::int64_t> job;
  std::string event, detail, at;
};

struct DbRun {
  std::int64_t job = 0, attempt = 0;
  std::string status;
  std::int64_t started = -1, finished = -1;  // ms since the epoch, -1 for NULL
};

struct Snapshot {
  std::vector<DbJob> jobs;
  std::vector<DbEvent> events;
  std::vector<DbRun> runs;
  std::set<std::pair<std::int64_t, std::int64_t>> deps;  // (job, the job it waits for)
};

std::optional<Snapshot> ReadDb(const fs::path& path, std::string* err) {
  Db db(path);
  Snapshot s;
  bool ok = db.Query(
                "SELECT id, group_folder, client_id, state, source_group, source_name, attempts, interruptions, "
                "max_attempts FROM jobs",
                [&](sqlite3_stmt* st) {
                  s.jobs.push_back({sqlite3_column_int64(st, 0), Text(st, 1), Text(st, 2), Text(st, 3), Text(st, 4),
                                    Text(st, 5), sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7),
                                    sqlite3_column_int64(st, 8)});
                }) &&
            db.Query("SELECT id, job_id, event, detail, at FROM job_events ORDER BY id",
                     [&](sqlite3_stmt* st) {
                       DbEvent e{sqlite3_column_int64(st, 0), std::nullopt, Text(st, 2), Text(st, 3), Text(st, 4)};
                       if (sqlite3_column_type(st, 1) != SQLITE_NULL) e.job = sqlite3_column_int64(st, 1);
                       s.events.push_back(std::move(e));
                     }) &&
            db.Query("SELECT job_id, attempt, status, started_at, finished_at FROM job_runs ORDER BY job_id, attempt",
                     [&](sqlite3_stmt* st) {
                       s.runs.push_back({sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), Text(st, 2),
                                         ParseIsoMs(Text(st, 3)), ParseIsoMs(Text(st, 4))});
                     }) &&
            db.Query("SELECT job_id, dep_id FROM job_deps", [&](sqlite3_stmt* st) {
              s.deps.insert({sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)});
            });
  if (!ok) {
    *err = db.error();
    return std::nullopt;
  }
  return s;
}

// Progress in the final phase: (jobs, of which final). nullopt while the
// database cannot be read (not created yet, say).
std::optional<std::pair<std::int64_t, std::int64_t>> CountJobs(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  Db db(path);
  std::pair<std::int64_t, std::int64_t> c{0, 0};
  if (!db.Query("SELECT count(*), coalesce(sum(state IN ('succeeded','failed','cancelled')), 0) FROM jobs",
                [&](sqlite3_stmt* st) {
                  c = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
                })) {
    return std::nullopt;
  }
  return c;
}

// ---------------------------------------------------------------- checks

struct Check {
  std::string name;
  std::string summary;
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

std::size_t CountEntries(const fs::path& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++n;
  return n;
}

std::vector<std::string> ListNames(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::int64_t Attempt(const std::string& detail) {
  json d = json::parse(detail, nullptr, false);
  return d.is_object() && d.contains("attempt") && d["attempt"].is_number_integer() ? d["attempt"].get<std::int64_t>()
                                                                                    : -1;
}

struct KillRecord {
  Steady::duration at{};      // since the run started
  Steady::duration uptime{};  // of the daemon that was killed
  std::size_t dropped = 0;    // files dropped by then
  std::int64_t final_jobs = 0;
  std::size_t dropped_while_down = 0;
  std::int64_t wall_before = 0, wall_after = 0;  // around kill() .. reaped, for matching lost runs
  Steady::duration down{};
};

struct Findings {
  std::vector<Check> checks;
  std::vector<std::string> notes;
};

// The checks of the brief, in order. Each collects the offending jobs/files
// so a failure says exactly what to look at.
Findings RunChecks(const Plan& plan, std::size_t dropped, const fs::path& root, const Snapshot& db,
                   const std::vector<KillRecord>& kills) {
  Findings f;
  const fs::path ipc = root / "data/ipc";
  std::vector<const PlannedJob*> files;       // dropped files that must each make a job
  std::vector<const PlannedJob*> duplicates;  // dropped files that must make none
  for (std::size_t i = 0; i < dropped; ++i) (plan.jobs[i].dup_of ? duplicates : files).push_back(&plan.jobs[i]);

  // 1. Every dropped file produced exactly one job; no job from nowhere.
  std::map<std::string, std::vector<const DbJob*>> by_name;
  for (const auto& j : db.jobs) by_name[j.source_name].push_back(&j);
  std::map<std::string, const DbJob*> job_of;  // file name -> its one job
  std::map<std::string, std::int64_t> repeats;  // duplicate file -> the job it must name (-1: none)
  {
    Check c{"files -> jobs", "", {}};
    std::size_t missing = 0, doubled = 0, mismatched = 0, unexpected = 0;
    for (const auto* p : files) {
      auto it = by_name.find(p->name);
      if (it == by_name.end()) {
        ++missing;
        c.problems.push_back(p->group + "/" + p->name + ": no job (file lost)");
        continue;
      }
      if (it->second.size() > 1) {
        ++doubled;
        std::string ids;
        for (const auto* j : it->second) ids += " " + std::to_string(j->id);
        c.problems.push_back(p->group + "/" + p->name + ": " + std::to_string(it->second.size()) + " jobs:" + ids);
      }
      const DbJob* j = it->second.front();
      job_of[p->name] = j;
      if (j->group != p->group || j->source_group != p->group || j->client_id != p->id) {
        ++mismatched;
        c.problems.push_back(p->group + "/" + p->name + ": job " + std::to_string(j->id) + " has group " + j->group +
                             ", source_group " + j->source_group + ", client_id " + j->client_id);
      }
    }
    std::set<std::string> planned;
    for (const auto* p : files) planned.insert(p->name);
    for (const auto& j : db.jobs) {
      if (!planned.count(j.source_name)) {
        ++unexpected;
        c.problems.push_back("job " + std::to_string(j.id) + " (" + j.source_name + ") matches no dropped file");
      }
    }
    // A file repeating a unique key makes no job, only a `duplicate` event on
    // the job it repeats (two when a kill fell between its commit and its
    // removal). With unique ids, any other `duplicate` event means a file was
    // ingested twice and only the client-id index kept it from becoming a
    // second job.
    for (const auto* d : duplicates) {
      const PlannedJob& original = plan.jobs[*d->dup_of];
      auto it = job_of.find(original.name);
      repeats[d->name] = it == job_of.end() ? -1 : it->second->id;
    }
    std::size_t dup_events = 0;
    std::set<std::string> repeated;
    for (const auto& e : db.events) {
      if (e.event != "duplicate") continue;
      ++dup_events;
      const json d = json::parse(e.detail, nullptr, false);
      const std::string file = d.is_object() && d.contains("file") && d["file"].is_string() ? d["file"].get<std::string>() : "";
      auto r = repeats.find(file);
      if (r != repeats.end() && e.job == r->second && d.value("by", "") == "unique_key") {
        repeated.insert(file);
        continue;
      }
      c.problems.push_back("job " + std::to_string(e.job.value_or(0)) +
                           ": file ingested twice, caught only by the dedupe: " + e.detail);
    }
    for (const auto* d : duplicates) {
      if (by_name.count(d->name)) {
        ++doubled;
        c.problems.push_back(d->group + "/" + d->name + ": repeats a unique key, yet made a job");
      } else if (!repeated.count(d->name)) {
        ++missing;
        c.problems.push_back(d->group + "/" + d->name + ": repeats a unique key, but no `duplicate` event says so");
      }
    }
    c.summary = std::to_string(files.size()) + " files (+" + std::to_string(duplicates.size()) + " duplicates), " +
                std::to_string(db.jobs.size()) + " jobs; missing " +
                std::to_string(missing) + ", doubled " + std::to_string(doubled) + ", mismatched " +
                std::to_string(mismatched) + ", unexpected " + std::to_string(unexpected) + ", duplicate events " +
                std::to_string(dup_events);
    f.checks.push_back(std::move(c));
  }

  // 2. Every job succeeded.
  {
    Check c{"job states", "", {}};
    std::map<std::string, std::size_t> states;
    for (const auto& j : db.jobs) {
      ++states[j.state];
      if (j.state != "succeeded") {
        c.problems.push_back("job " + std::to_string(j.id) + " (" + j.group + "/" + j.source_name + ") is " + j.state +
                             " after " + std::to_string(j.attempts) + " attempt(s)");
      }
    }
    for (const auto& [s, n] : states) c.summary += (c.summary.empty() ? "" : ", ") + s + " " + std::to_string(n);
    if (c.summary.empty()) c.summary = "no jobs";
    f.checks.push_back(std::move(c));
  }

  // 3. Exactly one result file per dropped file, naming its job, succeeded.
  {
    Check c{"result files", "", {}};
    std::size_t good = 0, missing = 0, wrong = 0, extra = 0, temps = 0;
    std::map<std::string, std::set<std::string>> expected;  // group -> names
    for (const auto* p : files) expected[p->group].insert(p->name);
    for (const auto* p : duplicates) expected[p->group].insert(p->name);
    for (const auto& g : plan.groups) {
      const fs::path dir = ipc / g / "results";
      std::set<std::string> seen;
      for (const auto& name : ListNames(dir)) {
        if (name[0] == '.' && name.find(".tmp-") != std::string::npos) {
          ++temps;  // an atomic write cut short by a kill: never visible as a result
          continue;
        }
        if (!expected[g].count(name)) {
          ++extra;
          c.problems.push_back(g + "/results/" + name + ": no such file was dropped in " + g);
          continue;
        }
        seen.insert(name);
        std::ifstream in(dir / name);
        const json r = json::parse(in, nullptr, false);
        const DbJob* j = job_of.count(name) ? job_of[name] : nullptr;
        // A field as JSON, null when absent: compared whole, so a wrong type
        // is a mismatch rather than an exception.
        auto field = [](const json& o, const char* key) { return o.is_object() && o.contains(key) ? o[key] : json(); };
        std::string why;
        auto repeat = repeats.find(name);
        if (!r.is_object())
          why = "not a JSON object (half-written?)";
        else if (repeat != repeats.end()) {
          if (field(r, "state") != "duplicate" || field(field(r, "duplicateOf"), "jobId") != json(repeat->second) ||
              field(r, "file") != name)
            why = "not a duplicate of job " + std::to_string(repeat->second) + ": " + r.dump();
        } else if (!j)
          why = "no job to match";
        else if (field(r, "jobId") != json(j->id))
          why = "jobId " + field(r, "jobId").dump() + ", job is " + std::to_string(j->id);
        else if (field(r, "state") != "succeeded")
          why = "state " + field(r, "state").dump();
        else if (field(r, "file") != name || field(r, "group") != g)
          why = "file/group " + field(r, "file").dump() + "/" + field(r, "group").dump();
        else if (field(field(r, "result"), "echo") != j->client_id)
          why = "result " + field(r, "result").dump() + " is not the echo of " + j->client_id;
        if (why.empty()) {
          ++good;
        } else {
          ++wrong;
          c.problems.push_back(g + "/results/" + name + ": " + why);
        }
      }
      for (const auto& name : expected[g]) {
        if (!seen.count(name)) {
          ++missing;
          const DbJob* j = job_of.count(name) ? job_of[name] : nullptr;
          c.problems.push_back(g + "/results/" + name + ": missing" +
                               (j ? " (job " + std::to_string(j->id) + " is " + j->state + ")" : ""));
        }
      }
    }
    c.summary = std::to_string(good) + " good, " + std::to_string(missing) + " missing, " + std::to_string(wrong) +
                " wrong, " + std::to_string(extra) + " extra";
    if (temps > 0) {
      f.notes.push_back(std::to_string(temps) +
                        " temporary file(s) (.<name>.tmp-*) left in results/ by writes a kill "
                        "cut short: invisible to readers, but never cleaned up");
    }
    f.checks.push_back(std::move(c));
  }

  // 4. Nothing left behind.
  {
    Check c{"leftovers", "", {}};
    std::size_t tasks = 0, claimed = 0;
    for (const auto& g : plan.groups) {
      for (const auto& n : ListNames(ipc / g / "tasks")) {
        ++tasks;
        c.problems.push_back(g + "/tasks/" + n + ": still there");
      }
      for (const auto& n : ListNames(root / "data/claimed" / g)) {
        ++claimed;
        c.problems.push_back("data/claimed/" + g + "/" + n + ": still there");
      }
    }
    const auto errors = ListNames(ipc / "errors");
    for (const auto& n : errors) c.problems.push_back("data/ipc/errors/" + n);
    c.summary = "tasks/ " + std::to_string(tasks) + ", claimed/ " + std::to_string(claimed) + ", errors/ " +
                std::to_string(errors.size());
    f.checks.push_back(std::move(c));
  }

  // 5. Each job's story: received, then started -> outcome pairs (with the
  //    attempt's `output` events between), ending in succeeded; started
  //    events = job_runs rows = jobs.attempts; the lost runs are the job's
  //    interruptions (jobs.interruptions), which do not count against
  //    max_attempts: attempts - interruptions <= max_attempts.
  std::map<std::int64_t, std::vector<const DbEvent*>> events_of;
  std::map<std::string, std::size_t> event_counts;
  std::size_t reconciled = 0;
  {
    Check c{"audit trail", "", {}};
    for (const auto& e : db.events) {
      ++event_counts[e.event];
      if (e.job) {
        events_of[*e.job].push_back(&e);
      } else if (e.event == "reconciled") {
        ++reconciled;  // a claimed file whose job had committed before a kill
      } else if (e.event == "ready") {
        // One per start that got as far as watching (a kill may come first).
      } else {
        c.problems.push_back("event " + std::to_string(e.id) + " (" + e.event + ", no job): " + e.detail);
      }
    }
    // Every start but the killed-early ones said it was ready, and the last
    // one (which ran to the end) did.
    const std::size_t ready = event_counts["ready"];
    if (ready < 1 || ready > kills.size() + 1) {
      c.problems.push_back(std::to_string(ready) + " `ready` event(s) for " + std::to_string(kills.size() + 1) +
                           " start(s): expected 1 to " + std::to_string(kills.size() + 1));
    }
    std::map<std::int64_t, std::vector<const DbRun*>> runs_of;
    for (const auto& r : db.runs) runs_of[r.job].push_back(&r);
    std::size_t complete = 0;
    for (const auto& j : db.jobs) {
      const std::string who = "job " + std::to_string(j.id) + " (" + j.group + "/" + j.source_name + "): ";
      auto ev = events_of[j.id];
      std::string bad;
      std::int64_t running = 0, started = 0;  // the attempt in flight (0: none), attempts started
      std::set<std::int64_t> recovered;
      const PlannedJob* planned_job = nullptr;
      for (const auto* p : files) {
        if (p->name == j.source_name) planned_job = p;
      }
      const bool waits = planned_job && planned_job->after;
      int released = 0;
      for (std::size_t i = 0; i < ev.size() && bad.empty(); ++i) {
        const DbEvent& e = *ev[i];
        const std::int64_t a = Attempt(e.detail);
        if (e.event == "received") {
          if (i != 0) bad = "`received` is event #" + std::to_string(i + 1) + ", not the first";
        } else if (i == 0) {
          bad = "story starts with `" + e.event + "`, not `received`";
        } else if (e.event == "started") {
          if (running != 0)
            bad = "attempt " + std::to_string(a) + " started while attempt " + std::to_string(running) +
                  " had no outcome";
          else if (a != started + 1)
            bad = "attempt " + std::to_string(a) + " started after " + std::to_string(started) + " attempt(s)";
          running = started = a;
        } else if (e.event == "released") {
          // A job with `after` is queued once, before its first attempt.
          if (!waits || started != 0 || ++released > 1) bad = "unexpected `released` " + e.detail;
        } else if (e.event == "duplicate") {
          // A repeat of its unique key (judged in "files -> jobs").
        } else if (e.event == "output" || e.event == "allocated") {
          // A block the agent printed, recorded as it streamed, or (slurm)
          // the moment its step ran: only inside its own attempt.
          if (running == 0 || a != running)
            bad = "`" + e.event + "` for attempt " + std::to_string(a) + " while attempt " + std::to_string(running) +
                  " was in flight";
        } else if (e.event == "succeeded" || e.event == "failed" || e.event == "retry" || e.event == "recovered") {
          if (running == 0 || a != running)
            bad = "`" + e.event + "` for attempt " + std::to_string(a) + " while attempt " + std::to_string(running) +
                  " was in flight";
          if (e.event == "recovered") recovered.insert(a);
          running = 0;
        } else {
          bad = "unexpected event `" + e.event + "` (not one docs/SCHEMA.md lists for a job) " + e.detail;
        }
      }
      if (bad.empty() && waits && released != 1) bad = "waited for a job, but was never `released`";
      while (!ev.empty() && ev.back()->event == "duplicate") ev.pop_back();
      if (bad.empty() && (ev.empty() || ev.back()->event != "succeeded")) {
        bad = "story ends with `" + (ev.empty() ? std::string("nothing") : ev.back()->event) + "`, not `succeeded`";
      }
      // The attempts, three ways, and each run's status against its events.
      const auto& runs = runs_of[j.id];
      if (bad.empty() && !(started == static_cast<std::int64_t>(runs.size()) && started == j.attempts)) {
        bad = std::to_string(started) + " started events, " + std::to_string(runs.size()) +
              " job_runs rows, attempts = " + std::to_string(j.attempts);
      }
      for (std::size_t i = 0; i < runs.size() && bad.empty(); ++i) {
        const DbRun& r = *runs[i];
        const bool last = i + 1 == runs.size();
        if (r.attempt != static_cast<std::int64_t>(i) + 1)
          bad = "job_runs attempts are not 1.." + std::to_string(runs.size());
        else if (last && r.status != "succeeded")
          bad = "last run (attempt " + std::to_string(r.attempt) + ") is " + r.status;
        else if (!last && r.status != "lost")
          bad = "attempt " + std::to_string(r.attempt) + " is " + r.status + " (the agent never fails by itself)";
        else if (!last && !recovered.count(r.attempt))
          bad = "lost attempt " + std::to_string(r.attempt) + " has no `recovered` event";
      }
      const auto lost = static_cast<std::int64_t>(
          std::count_if(runs.begin(), runs.end(), [](const DbRun* r) { return r->status == "lost"; }));
      if (bad.empty() && lost != j.interruptions) {
        bad = std::to_string(lost) + " lost runs, interruptions = " + std::to_string(j.interruptions);
      }
      if (bad.empty() && j.attempts - j.interruptions > j.max_attempts) {
        bad = std::to_string(j.attempts - j.interruptions) + " counted attempts (attempts " +
              std::to_string(j.attempts) + " - interruptions " + std::to_string(j.interruptions) +
              "), more than max_attempts " + std::to_string(j.max_attempts);
      }
      if (bad.empty()) {
        ++complete;
      } else {
        std::string story;
        for (const auto* e : ev)
          story += " " + e->event + (Attempt(e->detail) > 0 ? "(" + std::to_string(Attempt(e->detail)) + ")" : "");
        c.problems.push_back(who + bad + "; story:" + story);
      }
    }
    c.summary = std::to_string(complete) + "/" + std::to_string(db.jobs.size()) + " stories whole; events:";
    for (const auto& [e, n] : event_counts) c.summary += " " + e + " " + std::to_string(n);
    std::int64_t interruptions = 0, counted = 0;
    for (const auto& j : db.jobs) {
      interruptions += j.interruptions;
      counted += j.attempts - j.interruptions;
    }
    c.summary += "; interruptions " + std::to_string(interruptions) + ", counted attempts " + std::to_string(counted);
    f.checks.push_back(std::move(c));
  }
  if (reconciled > 0) {
    f.notes.push_back(std::to_string(reconciled) +
                      " claimed file(s) found already committed at a restart and removed "
                      "(`reconciled`): the commit-then-unlink window was hit and held");
  }

  // 5b. Each dependency held: the edge is recorded, and the job's first
  //     attempt started only after the job it waited for had succeeded.
  {
    Check c{"dependencies", "", {}};
    std::map<std::int64_t, std::vector<const DbRun*>> runs_of;
    for (const auto& r : db.runs) runs_of[r.job].push_back(&r);
    std::size_t held = 0, waited = 0;
    for (const auto* p : files) {
      if (!p->after) continue;
      ++waited;
      auto j = job_of.find(p->name);
      auto dep = job_of.find(plan.jobs[*p->after].name);
      if (j == job_of.end() || dep == job_of.end()) continue;  // reported by "files -> jobs"
      const std::string who = "job " + std::to_string(j->second->id) + " (" + p->name + ") after job " +
                              std::to_string(dep->second->id) + ": ";
      const auto& mine = runs_of[j->second->id];
      const auto& theirs = runs_of[dep->second->id];
      if (!db.deps.count({j->second->id, dep->second->id})) {
        c.problems.push_back(who + "no job_deps row");
      } else if (mine.empty() || theirs.empty() || theirs.back()->status != "succeeded") {
        c.problems.push_back(who + "missing runs (reported by the checks above)");
      } else if (mine.front()->started < theirs.back()->finished) {
        c.problems.push_back(who + "started " + std::to_string(theirs.back()->finished - mine.front()->started) +
                             " ms before it ended");
      } else {
        ++held;
      }
    }
    c.summary = std::to_string(held) + "/" + std::to_string(waited) + " waits held";
    f.checks.push_back(std::move(c));
  }

  // 6. Lost runs match the kills: each lost run was in flight at a kill (it
  //    started before the kill and was recorded lost after), no kill cost more
  //    runs than could run at once, and no run in flight at a kill escaped
  //    being marked lost.
  {
    Check c{"lost runs vs kills", "", {}};
    std::vector<std::size_t> per_kill(kills.size(), 0);
    std::size_t lost = 0;
    for (const auto& r : db.runs) {
      const std::string who = "job " + std::to_string(r.job) + " attempt " + std::to_string(r.attempt) + ": ";
      // The kill that ended this run is the first one reaped after it started.
      std::optional<std::size_t> k;
      for (std::size_t i = 0; i < kills.size() && !k; ++i) {
        if (kills[i].wall_after >= r.started) k = i;
      }
      if (r.status == "lost") {
        ++lost;
        if (!k || r.finished < kills[*k].wall_before) {
          c.problems.push_back(who + "lost, but no kill fell between its start and its recovery");
        } else {
          ++per_kill[*k];
        }
      } else if (k && r.started < kills[*k].wall_before && (r.finished < 0 || r.finished > kills[*k].wall_after)) {
        c.problems.push_back(who + "in flight at kill #" + std::to_string(*k + 1) + " yet recorded " + r.status);
      }
    }
    for (std::size_t i = 0; i < per_kill.size(); ++i) {
      if (per_kill[i] > static_cast<std::size_t>(kMaxConcurrent)) {
        c.problems.push_back("kill #" + std::to_string(i + 1) + " lost " + std::to_string(per_kill[i]) +
                             " runs, more than max_concurrent " + std::to_string(kMaxConcurrent));
      }
    }
    c.summary = std::to_string(lost) + " lost runs; per kill:";
    for (auto n : per_kill) c.summary += " " + std::to_string(n);
    if (kills.empty()) c.summary += " (no kills)";
    f.checks.push_back(std::move(c));
  }
  return f;
}

// ---------------------------------------------------------------- main

// One chaos session: the daemon, the dropper, what was done to them and what
// went wrong while doing it (things the checks cannot see, like a daemon that
// exited by itself or a run out of time).
class Session {
 public:
  Session(const Options& o, const Plan& plan, const fs::path& work)
      : o_(o),
        plan_(plan),
        root_(work / "root"),
        log_(work / "daemon.log"),
        t0_(Steady::now()),
        deadline_(t0_ + std::chrono::seconds(o.max_seconds)),
        daemon_(o.dropq, work / "dropq.yaml", log_),
        dropper_(plan, root_ / "data/ipc", std::max<std::size_t>(40, plan.jobs.size() / 20)) {}

  int Run() {
    // Budget: kills until 70 % of --max-seconds, the final run until 20 s
    // before the deadline (at least 80 % in), then stopping and checking.
    const auto kill_end = t0_ + (deadline_ - t0_) * 7 / 10;
    const auto final_end = std::max(deadline_ - std::chrono::seconds(20), t0_ + (deadline_ - t0_) * 8 / 10);
    std::printf("tried:\n  dropping %zu files, at most %zu ahead of the finished jobs, plus a burst at each kill\n",
                plan_.jobs.size(), std::max<std::size_t>(40, plan_.jobs.size() / 20));
    dropper_.Start();
    Start("first");
    for (std::size_t k = 0; alive_ && !stop_killing_ && k < plan_.kills.size(); ++k) Kill(k, kill_end);
    if (static_cast<int>(kills_.size()) < o_.kills) {
      trouble_.push_back("only " + std::to_string(kills_.size()) + " of " + std::to_string(o_.kills) + " kills done");
    }

    // The last daemon runs to the end: every file dropped, every job final,
    // nothing waiting in tasks/ or claimed/ — or stuck, or out of time.
    const bool done = WaitUntil([&] { return Done(); }, final_end, "every job final");
    if (done) std::printf("  every job final at +%s\n", Since(Steady::now()).c_str());
    dropper_.Stop();
    dropper_.Join();
    if (!dropper_.error().empty()) trouble_.push_back(dropper_.error());
    const auto stop_at = Steady::now();
    const std::string stop = daemon_.Stop(std::min<Steady::duration>(std::chrono::seconds(10), deadline_ - stop_at));
    std::printf("  SIGTERM at +%s: %s after %s\n", Since(stop_at).c_str(), stop.c_str(),
                Secs(Steady::now() - stop_at).c_str());
    if (stop != "exit code 0") trouble_.push_back("the final stop ended with " + stop);
    const auto duration = Steady::now() - t0_;
    std::printf("  %zu files dropped, %d start(s), %zu kill(s), %d unexpected exit(s), %s\n", dropper_.dropped(),
                starts_, kills_.size(), unexpected_exits_, Secs(duration).c_str());
    return Report(duration);
  }

 private:
  std::string Since(Steady::time_point t) const { return Secs(t - t0_); }

  void Start(const char* why) {
    if (!daemon_.Start()) {
      trouble_.push_back(std::string("cannot fork the daemon: ") + std::strerror(errno));
      alive_ = false;
      return;
    }
    ++starts_;
    std::printf("  start #%d at +%s (%s)\n", starts_, Since(Steady::now()).c_str(), why);
  }

  // One step of every wait: notices a daemon that exited without being told
  // to (a finding; restarted, but not forever — one that cannot start would
  // spin) and, every 50 ms, reads the progress from the database.
  void Tick() {
    std::this_thread::sleep_for(milliseconds(5));
    if (auto status = daemon_.ExitedByItself()) {
      ++unexpected_exits_;
      trouble_.push_back("daemon exited by itself (" + DescribeStatus(*status) + ") at +" + Since(Steady::now()) +
                         "; see " + log_.string());
      std::printf("  daemon exited by itself at +%s: %s\n", Since(Steady::now()).c_str(),
                  DescribeStatus(*status).c_str());
      if (unexpected_exits_ < 3) {
        Start("after it exited");
      } else {
        alive_ = false;
      }
    }
    if (Steady::now() - last_poll_ < milliseconds(50)) return;
    last_poll_ = Steady::now();
    if (auto c = CountJobs(root_ / "store/dropq.db")) {
      counts_ = *c;
      dropper_.Progress(counts_.second);
      if (counts_.second != last_final_) {
        last_final_ = counts_.second;
        last_progress_ = Steady::now();
      }
    }
  }

  // Ticks until `ready`; false (with the reason in trouble_) when the daemon
  // is gone for good, time runs out, or no job became final for a minute.
  bool WaitUntil(const std::function<bool()>& ready, Steady::time_point until, const std::string& what) {
    last_progress_ = Steady::now();
    while (alive_) {
      Tick();
      if (ready()) return true;
      if (Steady::now() > until) {
        trouble_.push_back("out of time at +" + Since(Steady::now()) + " waiting for " + what);
        return false;
      }
      if (Steady::now() - last_progress_ > kStallLimit) {
        trouble_.push_back("stuck: no job became final for " + Secs(kStallLimit) + " waiting for " + what + " (" +
                           std::to_string(counts_.second) + " of " + std::to_string(counts_.first) + " final)");
        return false;
      }
    }
    return false;
  }

  bool Done() {
    // The last daemon must have had time to install its signal handlers (a
    // SIGTERM before that kills it outright, which would blame the stop) and
    // to finish its start-up recovery and scan.
    if (daemon_.uptime() < std::chrono::seconds(2)) return false;
    // Files repeating a unique key make no job.
    const std::size_t dropped = dropper_.dropped();
    const auto jobs = static_cast<std::int64_t>(std::count_if(
        plan_.jobs.begin(), plan_.jobs.begin() + static_cast<std::ptrdiff_t>(dropped),
        [](const PlannedJob& j) { return !j.dup_of; }));
    if (!dropper_.finished() || counts_.first != counts_.second || counts_.first < jobs) return false;
    for (const auto& g : plan_.groups) {
      if (CountEntries(root_ / "data/ipc" / g / "tasks") + CountEntries(root_ / "data/claimed" / g) > 0) return false;
    }
    return true;
  }

  void Kill(std::size_t k, Steady::time_point kill_end) {
    const PlannedKill& pk = plan_.kills[k];
    const auto target = static_cast<std::int64_t>(pk.progress * static_cast<double>(plan_.jobs.size()));
    char what[96];
    std::snprintf(what, sizeof what, "kill #%zu (%s)", k + 1, pk.early ? "early" : "late");
    if (!WaitUntil(
            [&] {
              return daemon_.uptime() >= milliseconds(pk.after_start_ms) && (pk.early || counts_.second >= target);
            },
            kill_end, what)) {
      stop_killing_ = true;  // the final phase still runs, and the checks say what happened
      return;
    }
    KillRecord r;
    r.at = Steady::now() - t0_;
    r.uptime = daemon_.uptime();
    r.dropped = dropper_.dropped();
    r.final_jobs = counts_.second;
    r.wall_before = WallMs();
    daemon_.Kill();
    r.wall_after = WallMs();
    daemon_.Mark("SIGKILL #" + std::to_string(k + 1) + " at " + IsoMs(r.wall_before));
    r.down = milliseconds(pk.down_ms);
    // Files to land while nobody watches tasks/.
    dropper_.Burst(std::max<std::size_t>(40, plan_.jobs.size() / 20) / 2);
    std::this_thread::sleep_for(r.down);
    r.dropped_while_down = dropper_.dropped() - r.dropped;
    std::printf(
        "  kill #%zu at +%s (%s): SIGKILL %s after %s up, %lld jobs final, %zu files dropped; "
        "down %s, %zu files dropped meanwhile\n",
        k + 1, Secs(r.at).c_str(), IsoMs(r.wall_before).c_str(), pk.early ? "early" : "late", Secs(r.uptime).c_str(),
        static_cast<long long>(r.final_jobs), r.dropped, Secs(r.down).c_str(), r.dropped_while_down);
    kills_.push_back(r);
    Start(k + 1 == plan_.kills.size() ? "the last: runs to the end" : "after the kill");
  }

  int Report(Steady::duration duration) {
    const fs::path dbpath = root_ / "store/dropq.db";
    std::string err;
    auto snap = ReadDb(dbpath, &err);
    if (!snap) {
      std::printf("found:\n  [FAIL] cannot read %s: %s\n", dbpath.c_str(), err.c_str());
      return 1;
    }
    Findings f = RunChecks(plan_, dropper_.dropped(), root_, *snap, kills_);
    Check run{"the run itself",
              std::to_string(kills_.size()) + "/" + std::to_string(o_.kills) + " kills, " +
                  std::to_string(dropper_.dropped()) + "/" + std::to_string(plan_.jobs.size()) + " files dropped",
              trouble_};
    if (dropper_.dropped() < plan_.jobs.size() && run.problems.empty())
      run.problems.push_back("not every file was dropped");
    f.checks.insert(f.checks.begin(), std::move(run));
    bool pass = true;
    std::printf("found:\n");
    for (const auto& c : f.checks) {
      pass = pass && c.ok();
      std::printf("  [%s] %s: %s\n", c.ok() ? "ok" : "FAIL", c.name.c_str(), c.summary.c_str());
      for (std::size_t i = 0; i < c.problems.size() && i < kShowProblems; ++i) {
        std::printf("         %s\n", c.problems[i].c_str());
      }
      if (c.problems.size() > kShowProblems)
        std::printf("         ... and %zu more\n", c.problems.size() - kShowProblems);
    }
    for (const auto& n : f.notes) std::printf("  note: %s\n", n.c_str());
    std::printf("result: %s in %s\n", pass ? "PASS" : "FAIL", Secs(duration).c_str());
    return pass ? 0 : 1;
  }

  const Options& o_;
  const Plan& plan_;
  fs::path root_, log_;
  Steady::time_point t0_, deadline_;
  Daemon daemon_;
  Dropper dropper_;
  std::vector<KillRecord> kills_;
  std::vector<std::string> trouble_;
  int starts_ = 0, unexpected_exits_ = 0;
  bool alive_ = true, stop_killing_ = false;
  std::pair<std::int64_t, std::int64_t> counts_{0, 0};  // jobs, of which final
  std::int64_t last_final_ = -1;
  Steady::time_point last_poll_{}, last_progress_{};
};

int Main(const Options& o) {
  bool own_workdir = o.workdir.empty();
  fs::path work;
  if (own_workdir) {
    char tmpl[] = "/tmp/dropq-chaos-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("dropq-chaos: mkdtemp");
      return 2;
    }
    work = tmpl;
  } else {
    work = fs::absolute(o.workdir);
    fs::create_directories(work);
    if (!fs::is_empty(work)) {
      std::fprintf(stderr, "dropq-chaos: %s is not empty; give a fresh --workdir\n", work.c_str());
      return 2;
    }
  }
  const Plan plan = MakePlan(o);
  std::ofstream(work / "dropq.yaml") << Config(o, plan, work / "root");
  // The dropper may write before the first daemon creates the tree.
  for (const auto& g : plan.groups) fs::create_directories(work / "root/data/ipc" / g / "tasks");

  std::printf("dropq-chaos: seed %llu, %d jobs across %d groups (%d at once each), %d kills, runtime %s, at most %d s\n",
              static_cast<unsigned long long>(o.seed), o.jobs, o.groups, o.per_group, o.kills, o.runtime.c_str(),
              o.max_seconds);
  std::printf("  workdir %s (dropq.yaml, daemon.log, root/)\n", work.c_str());
  const int rc = Session(o, plan, work).Run();
  if (rc == 0 && own_workdir && !o.keep) {
    std::error_code ec;
    fs::remove_all(work, ec);
  } else {
    std::printf("workdir kept: %s\n", work.c_str());
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  // stdout is usually a pipe in CI: line-buffer it so progress shows as it happens.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    return Main(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dropq-chaos: %s\n", e.what());
    return 2;
  }
}
