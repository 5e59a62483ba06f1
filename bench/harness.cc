#include "bench/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace dropq::bench {

std::int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void SleepUntilNs(std::int64_t t) {
  timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void SleepMs(std::int64_t ms) { SleepUntilNs(NowNs() + ms * 1'000'000); }

std::int64_t EnvInt(const char* name, std::int64_t def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  char* end = nullptr;
  long long n = std::strtoll(v, &end, 10);
  if (*end != '\0' || n <= 0) throw BenchError(std::string(name) + "=\"" + v + "\": expected a positive integer");
  return n;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double Median(const std::vector<double>& v) { return Quantile(v, 0.5); }

ProcStat ReadProc(pid_t pid) {
  ProcStat s;
  auto proc = "/proc/" + std::to_string(pid);
  // Every thread of the process: the loop, libuv's thread pool (run logs and
  // result files are written there), the dashboard's. The first field of
  // schedstat is the time spent on a CPU in ns (utime/stime in
  // /proc/<pid>/stat count 10 ms ticks: too coarse for the idle target).
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(proc + "/task", ec)) {
    s.cpu_s += static_cast<double>(std::atoll(ReadText(task.path() / "schedstat").c_str())) / 1e9;
    std::istringstream status(ReadText(task.path() / "status"));
    for (std::string line; std::getline(status, line);) {
      for (const char* key : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
        if (line.rfind(key, 0) == 0) s.wakeups += std::atoll(line.c_str() + std::strlen(key));
      }
    }
  }
  std::istringstream status(ReadText(proc + "/status"));
  for (std::string line; std::getline(status, line);) {
    auto value = [&](const char* key) -> std::optional<std::int64_t> {
      std::size_t n = std::strlen(key);
      if (line.compare(0, n, key) != 0) return std::nullopt;
      return std::atoll(line.c_str() + n);
    };
    if (auto v = value("VmRSS:")) s.rss_kb = *v;
    if (auto v = value("VmHWM:")) s.hwm_kb = *v;
  }
  return s;
}

namespace {

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "?";
    sqlite3_free(err);
    throw BenchError("floor: " + sql.substr(0, 80) + ": " + why);
  }
}

}  // namespace

DbCopy::DbCopy(const fs::path& db_path, const std::optional<std::map<std::string, std::string>>& only) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> src(raw, &sqlite3_close);  // closed on every way out
  if (rc != SQLITE_OK) throw BenchError("floor: cannot open " + db_path.string());
  Db schema(db_path);
  for (const auto& r : schema.Rows("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND "
                                   "name NOT LIKE 'sqlite_%' AND type IN ('table', 'index') ORDER BY type DESC")) {
    if (r[0] == "index") {
      indexes_sql_.push_back(r[2]);
      continue;
    }
    tables_sql_.push_back(r[2]);
    std::string where = "1";
    if (only) {
      auto w = only->find(r[1]);
      if (w == only->end()) continue;
      where = w->second;
    }
    Table t;
    sqlite3_stmt* st = nullptr;
    std::string q = "SELECT * FROM \"" + r[1] + "\" WHERE " + where;
    if (sqlite3_prepare_v2(src.get(), q.c_str(), -1, &st, nullptr) != SQLITE_OK) throw BenchError("floor: " + q);
    int cols = sqlite3_column_count(st);
    t.insert = "INSERT INTO \"" + r[1] + "\" VALUES (";
    for (int i = 0; i < cols; ++i) t.insert += i ? ", ?" : "?";
    t.insert += ")";
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<Value> row;
      for (int i = 0; i < cols; ++i) row.emplace_back(sqlite3_value_dup(sqlite3_column_value(st, i)), &sqlite3_value_free);
      t.rows.push_back(std::move(row));
    }
    sqlite3_finalize(st);
    tables_.push_back(std::move(t));
  }
}

void DbCopy::CreateSchema(sqlite3* db) const {
  for (const auto& sql : tables_sql_) Exec(db, sql);
  for (const auto& sql : indexes_sql_) Exec(db, sql);
}

void DbCopy::InsertRows(sqlite3* db) const {
  for (const auto& t : tables_) {
    sqlite3_stmt* ins = nullptr;
    if (sqlite3_prepare_v2(db, t.insert.c_str(), -1, &ins, nullptr) != SQLITE_OK) throw BenchError("floor: " + t.insert);
    for (const auto& row : t.rows) {
      for (std::size_t i = 0; i < row.size(); ++i) sqlite3_bind_value(ins, static_cast<int>(i + 1), row[i].get());
      if (sqlite3_step(ins) != SQLITE_DONE) {
        std::string why = sqlite3_errmsg(db);
        sqlite3_finalize(ins);
        throw BenchError("floor: insert: " + why);
      }
      sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
  }
}

double StartupFloorS(const fs::path& db_path, const fs::path& tree, const fs::path& skip) {
  // Read everything first: the schema, every row, every directory and file.
  DbCopy copy(db_path, std::nullopt);
  std::vector<fs::path> dirs;
  std::vector<std::pair<fs::path, std::string>> files;
  for (auto it = fs::recursive_directory_iterator(tree); it != fs::recursive_directory_iterator(); ++it) {
    if (it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    fs::path rel = fs::relative(it->path(), tree);
    if (it->is_directory()) {
      dirs.push_back(rel);
    } else if (it->is_regular_file()) {
      files.emplace_back(rel, ReadText(it->path()));
    }
  }

  TempRoot out("startup-floor");
  std::int64_t t0 = NowNs();
  sqlite3* db = nullptr;
  if (sqlite3_open((out.path() / "floor.db").c_str(), &db) != SQLITE_OK) throw BenchError("floor: open db");
  Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; BEGIN IMMEDIATE");
  copy.CreateSchema(db);
  copy.InsertRows(db);
  Exec(db, "COMMIT");
  for (const auto& d : dirs) fs::create_directories(out.path() / d);
  for (const auto& [rel, body] : files) WriteText(out.path() / rel, body);
  int fd = ::open(out.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::syncfs(fd) != 0) throw BenchError("floor: syncfs");
  ::close(fd);
  double secs = static_cast<double>(NowNs() - t0) / 1e9;
  sqlite3_close(db);
  return secs;
}

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw BenchError("cannot write " + p.string());
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw BenchError("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TempRoot::TempRoot(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dropq-bench-" + tag + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw BenchError("mkdtemp " + tmpl + ": " + std::strerror(errno));
  path_ = tmpl;
}

TempRoot::~TempRoot() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Root::Root(const fs::path& agent, const RootOptions& o) : tmp_("root") {
  std::string yaml = "root: var\nruntime: " + o.runtime + "\n";
  if (o.runtime == "bwrap") {
    yaml += "agent: [/opt/bench/agent]\nbwrap:\n  ro_binds:\n    - {host: " + agent.string() +
            ", container: /opt/bench/agent}\n";
  } else {
    yaml += "agent: [" + agent.string();
    for (const auto& a : o.agent_args) yaml += ", \"" + a + "\"";
    yaml += "]\n";
  }
  yaml += "max_concurrent: " + std::to_string(o.max_concurrent) +
          "\nmax_queued_per_group: 1000000\nlog_level: info\nsecrets: []\ngroups:\n";
  for (std::size_t i = 0; i < o.groups.size(); ++i) {
    yaml += "  - {folder: " + o.groups[i] + (i == 0 ? ", main: true" : "") + "}\n";
  }
  yaml += o.extra;
  WriteText(Config(), yaml);
  for (const auto& g : o.groups) {
    if (o.make_dirs) fs::create_directories(Tasks(g));
    fs::create_directories(Stage() / g);
  }
}

void Root::StageFile(const std::string& group, const std::string& name, const std::string& body) {
  WriteText(Stage() / group / name, body);
}

void Root::Drop(const std::string& group, const std::string& name) {
  if (::rename((Stage() / group / name).c_str(), (Tasks(group) / name).c_str()) != 0) {
    throw BenchError("rename into " + Tasks(group).string() + ": " + std::strerror(errno));
  }
}

Daemon::Daemon(const fs::path& binary, const Root& root) : log_(root.Dir() / "daemon.log") {
  started_ns_ = NowNs();
  pid_ = Spawn({binary.string(), "run", "--config", root.Config().string()}, {}, "/dev/null", log_.string(),
               log_.string());
}

Daemon::~Daemon() {
  if (pid_ > 0) Stop();
}

void Daemon::WaitReady(int timeout_ms) {
  std::int64_t deadline = NowNs() + std::int64_t{timeout_ms} * 1'000'000;
  while (NowNs() < deadline) {
    std::string log = ReadText(log_);
    if (log.find(" started: root ") != std::string::npos) return;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw BenchError("dropq exited at start-up:\n" + log);
    }
    SleepMs(2);
  }
  throw BenchError("dropq did not start within " + std::to_string(timeout_ms) + " ms:\n" + ReadText(log_));
}

int Daemon::Stop() {
  if (pid_ <= 0) return 0;
  ::kill(pid_, SIGTERM);
  int rc = WaitPid(pid_);
  pid_ = -1;
  return rc;
}

Db::Db(const fs::path& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    throw BenchError("cannot open " + path.string() + ": " + sqlite3_errmsg(db_));
  }
  sqlite3_busy_timeout(db_, 1000);
}

Db::~Db() { sqlite3_close(db_); }

std::vector<std::vector<std::string>> Db::Rows(const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    throw BenchError("query " + sql + ": " + sqlite3_errmsg(db_));
  }
  std::vector<std::vector<std::string>> rows;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw BenchError("query " + sql + ": " + sqlite3_errmsg(db_));
  return rows;
}

std::int64_t Db::Int(const std::string& sql) {
  auto rows = Rows(sql);
  if (rows.empty() || rows[0].empty()) return 0;
  return std::atoll(rows[0][0].c_str());
}

Inotify::Inotify() : fd_(inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) {
  if (fd_ < 0) throw BenchError(std::string("inotify_init1: ") + std::strerror(errno));
}

Inotify::~Inotify() { ::close(fd_); }

void Inotify::Watch(const fs::path& dir, std::uint32_t mask) {
  if (inotify_add_watch(fd_, dir.c_str(), mask) < 0) {
    throw BenchError("inotify_add_watch " + dir.string() + ": " + std::strerror(errno));
  }
}

bool Inotify::Wait(int timeout_ms, const std::function<bool(const std::string&, std::uint32_t)>& on) {
  std::int64_t deadline = NowNs() + std::int64_t{timeout_ms} * 1'000'000;
  alignas(inotify_event) char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        if (ev->mask & IN_Q_OVERFLOW) throw BenchError("inotify queue overflowed");
        if (ev->len > 0 && on(ev->name, ev->mask)) return true;
        p += sizeof(inotify_event) + ev->len;
      }
      continue;
    }
    std::int64_t left_ms = (deadline - NowNs()) / 1'000'000;
    if (left_ms <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(left_ms));
  }
}

pid_t Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, const std::string& in,
            const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!in.empty()) posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
  if (!out.empty()) posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!err.empty()) posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (!env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (auto& e : envs) ev.push_back(e.data());
  ev.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, av[0], &fa, nullptr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw BenchError("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

int WaitPid(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

void Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  int rc = WaitPid(Spawn(argv, env));
  if (rc != 0) throw BenchError(argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + ": exit " + std::to_string(rc));
}

std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    if (::access((fs::path(d) / name).c_str(), X_OK) == 0) return d;
  }
  return "";
}

}  // namespace dropq::bench
