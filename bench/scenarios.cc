#include "bench/scenarios.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "bench/harness.h"
#include "base/clock.h"
#include "runner/sentinel.h"
#include "base/text.h"

namespace dropq::bench {
namespace {

using nlohmann::json;

constexpr const char* kFutureJob = R"({"type":"run","prompt":"x","run_at":"2099-01-01T00:00:00Z"})";
constexpr const char* kTrivialJob = R"({"type":"run","prompt":"x"})";

std::string Name(const char* prefix, std::int64_t i) { return prefix + std::to_string(i) + ".json"; }

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double Ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string Verdict(bool met) { return met ? "met" : "MISSED"; }

// The agent's start stamp from its output block (a result file's `result.t`
// or the raw block).
std::int64_t AgentStamp(const std::string& text) {
  auto at = text.find("\"t\":");
  if (at == std::string::npos) throw BenchError("no agent stamp in: " + text.substr(0, 200));
  return std::atoll(text.c_str() + at + 4);
}

// The durability floor: what one job's WAL commit writes (8 pages of
// 4 KiB, appended, as in an strace of dropq) and one fdatasync, on the same
// filesystem, paced like the drops (one every period_ns): on this VM a flush
// right after another takes a third of one after a pause, so a floor run
// back to back would be no floor. A commit with synchronous=FULL cannot
// beat it.
std::vector<double> FsyncFloorMs(const fs::path& dir, int n, std::int64_t period_ns) {
  fs::path p = dir / "fsync-floor";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw BenchError("open " + p.string());
  static char block[8 * 4096];
  std::memset(block, 'x', sizeof(block));
  std::vector<double> out;
  std::int64_t t0 = NowNs();
  for (int i = 0; i < n; ++i) {
    SleepUntilNs(t0 + i * period_ns);
    std::int64_t t = NowNs();
    off_t at = static_cast<off_t>(i) * static_cast<off_t>(sizeof(block));
    if (::pwrite(fd, block, sizeof(block), at) != static_cast<ssize_t>(sizeof(block)) || ::fdatasync(fd) != 0) {
      ::close(fd);
      throw BenchError("fsync floor: write failed");
    }
    out.push_back(Ms(NowNs() - t));
  }
  ::close(fd);
  return out;
}

// The process-start floor: posix_spawn the agent directly and read its stamp.
std::vector<double> SpawnFloorMs(const fs::path& agent, const fs::path& dir, int n) {
  std::vector<double> out;
  fs::path o = dir / "spawn-floor.out";
  for (int i = 0; i < n; ++i) {
    fs::remove(o);
    std::int64_t t = NowNs();
    if (int rc = WaitPid(Spawn({agent.string()}, {}, "/dev/null", o.string())); rc != 0) {
      throw BenchError("agent exited " + std::to_string(rc));
    }
    out.push_back(Ms(AgentStamp(ReadText(o)) - t));
  }
  return out;
}

void WaitCount(Db& db, const std::string& sql, std::int64_t want, int timeout_s, int poll_ms) {
  std::int64_t deadline = NowNs() + std::int64_t{timeout_s} * 1'000'000'000;
  while (db.Int(sql) < want) {
    if (NowNs() > deadline) throw BenchError("timed out waiting for " + sql + " to reach " + std::to_string(want));
    SleepMs(poll_ms);
  }
}

// Until `group` has no file left in tasks/ or claimed/: after its COMMIT
// an ingest pass still removes the files it claimed, part of its work.
void WaitRemoved(const Root& root, const std::string& group, int timeout_s, int poll_ms) {
  std::int64_t deadline = NowNs() + std::int64_t{timeout_s} * 1'000'000'000;
  while (!fs::is_empty(root.Claimed(group)) || !fs::is_empty(root.Tasks(group))) {
    if (NowNs() > deadline) {
      throw BenchError("claimed files of " + group + " were not removed within " + std::to_string(timeout_s) + " s");
    }
    SleepMs(poll_ms);
  }
}

}  // namespace

std::string Fmt(double v) {
  if (std::isnan(v)) return "—";
  char buf[32];
  double a = std::fabs(v);
  std::snprintf(buf, sizeof(buf), a >= 1000 ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f", v);
  return buf;
}

std::string Spread(const std::vector<double>& v) {
  if (v.size() < 2) return "1 run";
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return Fmt(*lo) + "–" + Fmt(*hi);
}

// drop → job committed: one drop at a time at a steady rate; the moment is
// when the claimed file is unlinked, which dropq does only after the COMMIT
// (so this is an upper bound on drop → commit).
void BenchCommitLatency(Context& c) {
  std::int64_t n = EnvInt("BENCH_COMMIT_N", 1000), rate = EnvInt("BENCH_COMMIT_RATE", 200);
  std::vector<double> all, medians, floor_all;
  for (int r = 0; r < c.repeats; ++r) {
    Root root(c.agent, {});
    for (std::int64_t i = 0; i < n; ++i) root.StageFile("g0", Name("c", i), kFutureJob);
    Daemon d(c.dropq, root);
    d.WaitReady();
    Inotify ino;
    ino.Watch(root.Claimed("g0"), IN_DELETE);
    std::vector<double> lat;
    std::int64_t period = 1'000'000'000 / rate, t0 = NowNs() + 10'000'000;
    for (std::int64_t i = 0; i < n; ++i) {
      SleepUntilNs(t0 + i * period);
      std::string name = Name("c", i), suffix = "." + name;
      std::int64_t t = NowNs();
      root.Drop("g0", name);
      if (!ino.Wait(5000, [&](const std::string& f, std::uint32_t) { return EndsWith(f, suffix); })) {
        throw BenchError(name + " was not committed within 5 s");
      }
      lat.push_back(Ms(NowNs() - t));
    }
    Db db(root.Db());
    if (std::int64_t jobs = db.Int("SELECT count(*) FROM jobs"); jobs != n) {
      throw BenchError("commit latency: " + std::to_string(jobs) + " jobs recorded, expected " + std::to_string(n));
    }
    d.Stop();
    auto fl = FsyncFloorMs(root.Dir(), 200, period);
    floor_all.insert(floor_all.end(), fl.begin(), fl.end());
    medians.push_back(Median(lat));
    all.insert(all.end(), lat.begin(), lat.end());
  }
  double p50 = Median(all), p99 = Quantile(all, 0.99), fl = Median(floor_all);
  std::string scen = "drop → committed (" + std::to_string(n) + " drops at " + std::to_string(rate) + "/s)";
  c.rows.push_back({scen, "latency (ms)", p50, p99, Spread(medians),
                    "append 32 KiB + fdatasync, " + std::to_string(rate) + "/s: " + Fmt(fl) + " ms", p50 / fl,
                    "p50 ≤ 1, p99 ≤ 10", Verdict(p50 <= 1.0 && p99 <= 10.0)});
}

namespace {

// drop → agent started, one job at a time; the agent stamps its own start.
std::vector<double> StartLatency(Context& c, const std::string& runtime, std::int64_t n, std::int64_t rate) {
  RootOptions o;
  o.runtime = runtime;
  o.max_concurrent = 1;
  Root root(c.agent, o);
  for (std::int64_t i = 0; i < n; ++i) root.StageFile("g0", Name("s", i), kTrivialJob);
  Daemon d(c.dropq, root);
  d.WaitReady();
  Inotify ino;
  ino.Watch(root.Results("g0"), IN_MOVED_TO);
  std::vector<double> lat;
  std::int64_t period = 1'000'000'000 / rate, t0 = NowNs() + 10'000'000;
  for (std::int64_t i = 0; i < n; ++i) {
    SleepUntilNs(t0 + i * period);
    std::string name = Name("s", i);
    std::int64_t t = NowNs();
    root.Drop("g0", name);
    if (!ino.Wait(30'000, [&](const std::string& f, std::uint32_t) { return f == name; })) {
      throw BenchError(runtime + ": no result for " + name + " within 30 s; see " + root.Dir().string());
    }
    json res = json::parse(ReadText(root.Results("g0") / name));
    if (res.value("state", "") != "succeeded") throw BenchError(runtime + ": job failed: " + text::Dump(res));
    lat.push_back(Ms(res["result"]["t"].get<std::int64_t>() - t));
  }
  d.Stop();
  return lat;
}

}  // namespace

void BenchStartLatency(Context& c) {
  std::int64_t n = EnvInt("BENCH_START_N", 200), rate = EnvInt("BENCH_START_RATE", 50);
  std::vector<double> all, medians, floor_all;
  TempRoot scratch("spawn");
  for (int r = 0; r < c.repeats; ++r) {
    auto lat = StartLatency(c, "process", n, rate);
    medians.push_back(Median(lat));
    all.insert(all.end(), lat.begin(), lat.end());
    auto fl = SpawnFloorMs(c.agent, scratch.path(), 50);
    floor_all.insert(floor_all.end(), fl.begin(), fl.end());
  }
  double p50 = Median(all), fl = Median(floor_all);
  std::string base = "posix_spawn of the agent: " + Fmt(fl) + " ms";
  c.rows.push_back({"drop → agent started, process (" + std::to_string(n) + " at " + std::to_string(rate) + "/s)",
                    "latency (ms)", p50, Quantile(all, 0.99), Spread(medians), base, p50 / fl, "p50 ≤ 5",
                    Verdict(p50 <= 5.0)});

  std::int64_t nb = EnvInt("BENCH_START_BWRAP_N", 60), rb = EnvInt("BENCH_START_BWRAP_RATE", 20);
  std::vector<double> ball, bmed;
  try {
    for (int r = 0; r < c.repeats; ++r) {
      auto lat = StartLatency(c, "bwrap", nb, rb);
      bmed.push_back(Median(lat));
      ball.insert(ball.end(), lat.begin(), lat.end());
    }
    double b50 = Median(ball);
    c.rows.push_back({"drop → agent started, bwrap (" + std::to_string(nb) + " at " + std::to_string(rb) + "/s)",
                      "latency (ms)", b50, Quantile(ball, 0.99), Spread(bmed), base, b50 / fl, "report", ""});
  } catch (const BenchError& e) {
    c.rows.push_back(
        {"drop → agent started, bwrap", std::string("not measured: ") + e.what(), NAN, NAN, "", "", NAN, "report", ""});
  }
}

namespace {

// The ingest floor: what the same durable work costs done by the simplest
// program — per file a rename into a claim folder, open, read, close; one
// SQLite transaction (WAL, synchronous=FULL) for all; then an unlink per
// file. The transaction inserts one row with one index per file, or, given
// `rows`, dropq's own rows of the run (its schema and indexes, created
// before the clock starts): what the contract's rows cost with nothing else.
double IngestFloorPerS(std::int64_t n, const DbCopy* rows) {
  TempRoot t("floor");
  fs::path in = t.path() / "in", claimed = t.path() / "claimed";
  fs::create_directories(in);
  fs::create_directories(claimed);
  for (std::int64_t i = 0; i < n; ++i) WriteText(in / Name("f", i), kFutureJob);
  sqlite3* db = nullptr;
  sqlite3_open((t.path() / "floor.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
  if (rows) {
    rows->CreateSchema(db);
  } else {
    sqlite3_exec(db, "CREATE TABLE jobs(id INTEGER PRIMARY KEY, grp TEXT, prompt TEXT, run_at TEXT, claim TEXT UNIQUE);",
                 nullptr, nullptr, nullptr);
  }
  sqlite3_stmt* ins = nullptr;
  if (!rows) {
    sqlite3_prepare_v2(db, "INSERT INTO jobs(grp, prompt, run_at, claim) VALUES ('g0', ?, '2099', ?)", -1, &ins,
                       nullptr);
  }
  std::int64_t t0 = NowNs();
  std::vector<std::pair<std::string, std::string>> files;
  char buf[4096];
  for (std::int64_t i = 0; i < n; ++i) {
    std::string name = Name("f", i);
    fs::path to = claimed / ("tok." + name);
    if (::rename((in / name).c_str(), to.c_str()) != 0) throw BenchError("floor rename");
    int fd = ::open(to.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    ssize_t got = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    files.emplace_back(to.string(), std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(got, 0))));
  }
  sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rows) {
    rows->InsertRows(db);
  } else {
    for (const auto& [path, body] : files) {
      sqlite3_bind_text(ins, 1, body.c_str(), static_cast<int>(body.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 2, path.c_str(), static_cast<int>(path.size()), SQLITE_STATIC);
      if (sqlite3_step(ins) != SQLITE_DONE) throw BenchError("floor insert");
      sqlite3_reset(ins);
    }
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) throw BenchError("floor commit");
  for (const auto& f : files) ::unlink(f.first.c_str());
  std::int64_t t1 = NowNs();
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return static_cast<double>(n) / (static_cast<double>(t1 - t0) / 1e9);
}

}  // namespace

// Ingest bursts: N files present when dropq starts (timed from its
// "started" log line to the N-th committed row), then N more dropped as fast
// as one process can rename them (timed from the first rename).
void BenchIngestBurst(Context& c) {
  std::int64_t n = EnvInt("BENCH_BURST_N", 10000);
  std::vector<double> start_rates, run_rates, floors, row_floors;
  for (int r = 0; r < c.repeats; ++r) {
    Root root(c.agent, {});
    for (std::int64_t i = 0; i < n; ++i) WriteText(root.Tasks("g0") / Name("a", i), kFutureJob);
    for (std::int64_t i = 0; i < n; ++i) root.StageFile("g0", Name("b", i), kFutureJob);
    Daemon d(c.dropq, root);
    d.WaitReady();
    std::int64_t t0 = NowNs();
    Db db(root.Db());
    const std::string count = "SELECT coalesce(max(id), 0) FROM jobs";
    WaitCount(db, count, n, 120, 1);
    WaitRemoved(root, "g0", 120, 1);  // the floor's time includes its unlinks too
    start_rates.push_back(static_cast<double>(n) / (static_cast<double>(NowNs() - t0) / 1e9));
    t0 = NowNs();
    for (std::int64_t i = 0; i < n; ++i) root.Drop("g0", Name("b", i));
    WaitCount(db, count, 2 * n, 120, 1);
    WaitRemoved(root, "g0", 120, 1);
    run_rates.push_back(static_cast<double>(n) / (static_cast<double>(NowNs() - t0) / 1e9));
    d.Stop();
    floors.push_back(IngestFloorPerS(n, nullptr));
    // The first n jobs (those present at start) and their events.
    std::string upto = std::to_string(n);
    DbCopy rows(root.Db(), std::map<std::string, std::string>{{"jobs", "id <= " + upto},
                                                              {"job_events", "job_id <= " + upto}});
    row_floors.push_back(IngestFloorPerS(n, &rows));
  }
  double fl = Median(floors), rfl = Median(row_floors);
  std::string ns = std::to_string(n);
  double a = Median(start_rates), b = Median(run_rates);
  // Each row also names its bound: the same floor writing dropq's own rows
  // (a job row with its indexes and its events per file), and the ratio to it.
  auto base = [&](double rate) {
    return "rename+read+1 txn+unlink floor: " + Fmt(fl) + "/s; writing dropq's rows: " + Fmt(rfl) + "/s (÷ " +
           Fmt(rate / rfl) + ")";
  };
  c.rows.push_back({"ingest: " + ns + " files present at start", "files/s (committed, file removed)", a, NAN, Spread(start_rates),
                    base(a), a / fl, "≥ 0.9 × floor", Verdict(a / fl >= 0.9)});
  c.rows.push_back({"ingest: " + ns + " files dropped while running", "files/s (committed, file removed)", b, NAN, Spread(run_rates),
                    base(b), b / fl, "≥ 0.8 × floor", Verdict(b / fl >= 0.8)});
  c.rows.push_back({"ingest floor writing dropq's rows", "files/s (committed, file removed)", rfl, NAN, Spread(row_floors),
                    "rename+read+1 txn+unlink floor: " + Fmt(fl) + "/s", rfl / fl, "report", ""});
}

namespace {

struct E2E {
  double dropq_s, xargs_s, tsp_s, nq_s;
  double dropq_cpu_per_job_ms;
};

// `n` jobs spread over `groups` groups (dropq runs one job per group at a
// time) with `slots` of them at once; from the first rename to the last
// terminal row. Every job must succeed.
double TimeDropq(Context& c, std::int64_t n, int groups, int slots, const std::vector<std::string>& agent_args,
                 double& cpu_per_job_ms) {
  RootOptions o;
  o.groups.clear();
  for (int g = 0; g < groups; ++g) o.groups.push_back("g" + std::to_string(g));
  o.max_concurrent = slots;
  o.agent_args = agent_args;
  Root root(c.agent, o);
  auto group = [&](std::int64_t i) { return o.groups[static_cast<std::size_t>(i % groups)]; };
  for (std::int64_t i = 0; i < n; ++i) root.StageFile(group(i), Name("e", i), kTrivialJob);
  Daemon d(c.dropq, root);
  d.WaitReady();
  Db db(root.Db());
  ProcStat s0 = ReadProc(d.pid());
  std::int64_t t0 = NowNs();
  for (std::int64_t i = 0; i < n; ++i) root.Drop(group(i), Name("e", i));
  WaitCount(db, "SELECT count(*) FROM jobs WHERE state IN ('succeeded','failed','cancelled')", n, 600, 5);
  double secs = static_cast<double>(NowNs() - t0) / 1e9;
  ProcStat s1 = ReadProc(d.pid());
  cpu_per_job_ms = (s1.cpu_s - s0.cpu_s) * 1000 / static_cast<double>(n);
  if (std::int64_t bad = db.Int("SELECT count(*) FROM jobs WHERE state <> 'succeeded'"); bad != 0) {
    throw BenchError("end-to-end: " + std::to_string(bad) + " jobs did not succeed; see " + root.Dir().string());
  }
  d.Stop();
  return secs;
}

// xargs -P `slots` running the agent `n` times (with `agent_args`).
double TimeXargs(Context& c, std::int64_t n, int slots, const std::vector<std::string>& agent_args) {
  TempRoot t("xargs");
  std::string lines;
  for (std::int64_t i = 0; i < n; ++i) lines += "x\n";
  WriteText(t.path() / "in", lines);
  std::vector<std::string> argv = {"xargs", "-P", std::to_string(slots), "-n", "1", c.agent.string()};
  argv.insert(argv.end(), agent_args.begin(), agent_args.end());
  std::int64_t t0 = NowNs();
  int rc = WaitPid(Spawn(argv, {}, (t.path() / "in").string()));
  if (rc != 0) throw BenchError("xargs exited " + std::to_string(rc));
  return static_cast<double>(NowNs() - t0) / 1e9;
}

double TimeTsp(Context& c, std::int64_t n) {
  TempRoot t("tsp");
  std::map<std::string, std::string> env = {{"TS_SOCKET", (t.path() / "sock").string()}, {"TMPDIR", t.path().string()}};
  Run({"tsp", "-S", "2"}, env);  // starts its server with 2 slots
  std::int64_t t0 = NowNs();
  for (std::int64_t i = 0; i < n; ++i) Run({"tsp", c.agent.string()}, env);
  // -w waits for the last job; then make sure nothing is left running.
  Run({"tsp", "-w"}, env);
  for (;;) {
    WaitPid(Spawn({"tsp", "-l"}, env, "/dev/null", (t.path() / "list").string()));
    std::string list = ReadText(t.path() / "list");
    fs::remove(t.path() / "list");
    if (list.find("running") == std::string::npos && list.find("queued") == std::string::npos) break;
    SleepMs(2);
  }
  double secs = static_cast<double>(NowNs() - t0) / 1e9;
  WaitPid(Spawn({"tsp", "-K"}, env));
  return secs;
}

double TimeNq(Context& c, std::int64_t n) {
  TempRoot t("nq");
  // nq runs one queue sequentially: two queues are its two slots.
  std::string q[2] = {(t.path() / "q0").string(), (t.path() / "q1").string()};
  fs::create_directories(q[0]);
  fs::create_directories(q[1]);
  std::int64_t t0 = NowNs();
  for (std::int64_t i = 0; i < n; ++i) Run({"nq", c.agent.string()}, {{"NQDIR", q[i % 2]}});
  for (const auto& d : q) Run({"nq", "-w"}, {{"NQDIR", d}});
  return static_cast<double>(NowNs() - t0) / 1e9;
}

}  // namespace

// 1,000 trivial jobs on 2 slots: dropq (process runtime) against xargs -P 2
// (the floor), task-spooler and nq, all running the same agent, interleaved
// per repeat so each ratio pairs runs made under the same load.
void BenchEndToEnd(Context& c) {
  std::int64_t n = EnvInt("BENCH_E2E_N", 1000);
  bool have_tsp = !Which("tsp").empty(), have_nq = !Which("nq").empty();
  std::vector<double> rate, cpu, rx, rt, rn, xr, tr, nr;
  for (int r = 0; r < c.repeats; ++r) {
    double cpu_ms = 0;
    double d = TimeDropq(c, n, 2, 2, {}, cpu_ms);
    double x = TimeXargs(c, n, 2, {});
    rate.push_back(static_cast<double>(n) / d);
    cpu.push_back(cpu_ms);
    rx.push_back(d / x);
    xr.push_back(static_cast<double>(n) / x);
    if (have_tsp) {
      double t = TimeTsp(c, n);
      rt.push_back(d / t);
      tr.push_back(static_cast<double>(n) / t);
    }
    if (have_nq) {
      double q = TimeNq(c, n);
      rn.push_back(d / q);
      nr.push_back(static_cast<double>(n) / q);
    }
  }
  std::string scen = "end-to-end: " + std::to_string(n) + " trivial jobs, 2 slots, process runtime";
  c.rows.push_back({scen, "dropq jobs/s", Median(rate), NAN, Spread(rate), "", NAN, "", ""});
  c.rows.push_back({scen, "dropq CPU per job (ms)", Median(cpu), NAN, Spread(cpu), "", NAN, "", ""});
  double mx = Median(rx);
  c.rows.push_back({scen, "time ÷ xargs -P 2", mx, NAN, Spread(rx), "xargs -P 2: " + Fmt(Median(xr)) + " jobs/s", mx,
                    "≤ 3", Verdict(mx <= 3)});
  if (have_tsp) {
    double m = Median(rt);
    c.rows.push_back({scen, "time ÷ task-spooler", m, NAN, Spread(rt), "tsp -S 2: " + Fmt(Median(tr)) + " jobs/s", m,
                      "≤ 1.0", Verdict(m <= 1.0)});
  }
  if (have_nq) {
    double m = Median(rn);
    c.rows.push_back({scen, "time ÷ nq", m, NAN, Spread(rn), "nq, 2 queues: " + Fmt(Median(nr)) + " jobs/s", m, "≤ 0.8",
                      Verdict(m <= 0.8)});
  }
}

namespace {

struct SchedRun {
  std::vector<double> lag_ms;
  double rss_mb = 0, startup_s = 0, cpu_s = 0;
};

SchedRun RunScheduler(Context& c, std::int64_t tasks, std::int64_t idle_tasks, std::int64_t secs) {
  std::string yaml = "schedules:\n";
  for (std::int64_t i = 0; i < tasks; ++i) {
    yaml += "  - {id: t" + std::to_string(i) + ", group: g" + std::to_string(i % 2) +
            ", cron: \"* * * * * *\", prompt: x}\n";
  }
  for (std::int64_t i = 0; i < idle_tasks; ++i) {
    yaml += "  - {id: y" + std::to_string(i) + ", group: g0, cron: \"0 0 1 1 *\", prompt: y}\n";
  }
  RootOptions o;
  o.groups = {"g0", "g1"};
  o.extra = yaml;
  Root root(c.agent, o);
  Daemon d(c.dropq, root);
  d.WaitReady(600'000);
  SchedRun out;
  out.startup_s = static_cast<double>(NowNs() - d.started_ns()) / 1e9;
  // Slots from before the daemon was ready are the catch-up of a long
  // start-up (upserting every schedule), not the timer's lag: left out.
  std::int64_t ready_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() +
      1000;
  ProcStat s0 = ReadProc(d.pid());
  SleepMs(secs * 1000 + 300);
  ProcStat s1 = ReadProc(d.pid());
  out.rss_mb = static_cast<double>(s1.rss_kb) / 1024;
  out.cpu_s = s1.cpu_s - s0.cpu_s;
  d.Stop();
  Db db(root.Db());
  for (const auto& row : db.Rows("SELECT scheduled_at, fired_at FROM task_runs WHERE task_id LIKE 't%'")) {
    auto s = ParseIsoTime(row[0]), f = ParseIsoTime(row[1]);
    if (!s || !f) throw BenchError("scheduler: cannot read times " + row[0] + ", " + row[1]);
    if (*s < ready_ms) continue;
    out.lag_ms.push_back(static_cast<double>(*f - *s));
  }
  if (out.lag_ms.empty()) throw BenchError("scheduler: no task fired; see " + root.Dir().string());
  return out;
}

}  // namespace

// Many slots: `n` jobs whose agent sleeps 50 ms, 64 at once over 64 groups,
// against xargs -P 64 running the same agent, interleaved per repeat.
void BenchManySlots(Context& c) {
  std::int64_t n = EnvInt("BENCH_SLOTS_N", 2000), sleep_ms = EnvInt("BENCH_SLOTS_SLEEP_MS", 50);
  int slots = static_cast<int>(EnvInt("BENCH_SLOTS", 64));
  std::vector<std::string> args = {"--sleep-ms", std::to_string(sleep_ms)};
  std::vector<double> rate, cpu, rx, xr;
  for (int r = 0; r < c.repeats; ++r) {
    double cpu_ms = 0;
    double d = TimeDropq(c, n, slots, slots, args, cpu_ms);
    double x = TimeXargs(c, n, slots, args);
    rate.push_back(static_cast<double>(n) / d);
    cpu.push_back(cpu_ms);
    rx.push_back(d / x);
    xr.push_back(static_cast<double>(n) / x);
  }
  std::string ss = std::to_string(slots);
  std::string scen = "many slots: " + std::to_string(n) + " jobs of " + std::to_string(sleep_ms) + " ms, " + ss +
                     " slots over " + ss + " groups";
  c.rows.push_back({scen, "dropq jobs/s", Median(rate), NAN, Spread(rate), "", NAN, "", ""});
  c.rows.push_back({scen, "dropq CPU per job (ms)", Median(cpu), NAN, Spread(cpu), "", NAN, "", ""});
  double m = Median(rx);
  c.rows.push_back({scen, "time ÷ xargs -P " + ss, m, NAN, Spread(rx),
                    "xargs -P " + ss + ": " + Fmt(Median(xr)) + " jobs/s", m, "≤ 1.2", Verdict(m <= 1.2)});
}

namespace {

struct StartupRun {
  double secs = 0, floor_s = 0, peak_mb = 0, rest_mb = 0;
};

// Starts dropq on a fresh root made with `o`, from the spawn to its
// "started" line; its peak RSS (VmHWM) then and its RSS at rest 2 s later
// (after the quiet second that gives freed heap back); then the floor for
// the rows and files that start-up left.
StartupRun TimeStartup(Context& c, const RootOptions& o) {
  Root root(c.agent, o);
  Daemon d(c.dropq, root);
  d.WaitReady(600'000);
  StartupRun out;
  out.secs = static_cast<double>(NowNs() - d.started_ns()) / 1e9;
  SleepMs(2000);
  ProcStat s = ReadProc(d.pid());
  out.peak_mb = static_cast<double>(s.hwm_kb) / 1024;
  out.rest_mb = static_cast<double>(s.rss_kb) / 1024;
  d.Stop();
  out.floor_s = StartupFloorS(root.Db(), root.Var(), root.Var() / "store");
  return out;
}

}  // namespace

// Start-up: a root with 100,000 configured schedules, and the first start of
// a root with 2,000 groups (no directories yet), each against a floor that
// writes the same rows in one transaction and the same directories and files
// with one flush; and the peak RSS of the schedules' start-up against the
// RSS at rest after it.
void BenchStartup(Context& c) {
  std::int64_t schedules = EnvInt("BENCH_STARTUP_SCHEDULES", 100000), groups = EnvInt("BENCH_STARTUP_GROUPS", 2000);
  RootOptions sched;
  sched.groups = {"g0", "g1"};
  sched.extra = "schedules:\n";
  for (std::int64_t i = 0; i < schedules; ++i) {
    sched.extra += "  - {id: y" + std::to_string(i) + ", group: g" + std::to_string(i % 2) +
                   ", cron: \"0 0 1 1 *\", prompt: y}\n";
  }
  RootOptions many;
  many.groups.clear();
  for (std::int64_t g = 0; g < groups; ++g) many.groups.push_back("g" + std::to_string(g));
  many.make_dirs = false;
  std::vector<double> sr, sd, sf, peak, gr, gd, gf;
  for (int r = 0; r < c.repeats; ++r) {
    StartupRun a = TimeStartup(c, sched);
    sd.push_back(a.secs);
    sf.push_back(a.floor_s);
    sr.push_back(a.secs / a.floor_s);
    peak.push_back(a.peak_mb / a.rest_mb);
    StartupRun b = TimeStartup(c, many);
    gd.push_back(b.secs);
    gf.push_back(b.floor_s);
    gr.push_back(b.secs / b.floor_s);
  }
  std::string sn = std::to_string(schedules), gn = std::to_string(groups);
  double m = Median(sr);
  c.rows.push_back({"start-up: " + sn + " configured schedules", "time to started (s)", Median(sd), NAN, Spread(sd),
                    "same rows in 1 txn + same files, 1 flush: " + Fmt(Median(sf)) + " s", m, "≤ 3 × floor",
                    Verdict(m <= 3)});
  double p = Median(peak);
  c.rows.push_back({"start-up: " + sn + " configured schedules", "peak RSS ÷ RSS at rest after", p, NAN, Spread(peak),
                    "", NAN, "≤ 2", Verdict(p <= 2)});
  double g = Median(gr);
  c.rows.push_back({"start-up: first start of " + gn + " groups", "time to started (s)", Median(gd), NAN, Spread(gd),
                    "same rows in 1 txn + same files, 1 flush: " + Fmt(Median(gf)) + " s", g, "≤ 3 × floor",
                    Verdict(g <= 3)});
}

// Memory after a burst: 100,000 job files (a far run_at, so nothing runs)
// dropped into a running daemon; its RSS once they are all queued, their
// files removed, and it has been quiet 2 s, against the RSS of a daemon restarted on the same queue,
// measured the same way.
void BenchBurstMemory(Context& c) {
  std::int64_t n = EnvInt("BENCH_MEMORY_N", 100000);
  std::vector<double> after, restart, ratio;
  for (int r = 0; r < c.repeats; ++r) {
    Root root(c.agent, {});
    for (std::int64_t i = 0; i < n; ++i) root.StageFile("g0", Name("m", i), kFutureJob);
    double a = 0, b = 0;
    {
      Daemon d(c.dropq, root);
      d.WaitReady();
      for (std::int64_t i = 0; i < n; ++i) root.Drop("g0", Name("m", i));
      Db db(root.Db());
      WaitCount(db, "SELECT coalesce(max(id), 0) FROM jobs", n, 600, 10);
      // Done with the burst: the pass's batch is alive until its files are gone.
      WaitRemoved(root, "g0", 600, 10);
      SleepMs(2000);
      a = static_cast<double>(ReadProc(d.pid()).rss_kb) / 1024;
      d.Stop();
    }
    {
      Daemon d(c.dropq, root);
      d.WaitReady(600'000);
      SleepMs(2000);
      b = static_cast<double>(ReadProc(d.pid()).rss_kb) / 1024;
      Db db(root.Db());
      if (std::int64_t q = db.Int("SELECT count(*) FROM jobs WHERE state = 'queued'"); q != n) {
        throw BenchError("burst memory: " + std::to_string(q) + " jobs queued, expected " + std::to_string(n));
      }
      d.Stop();
    }
    after.push_back(a);
    restart.push_back(b);
    ratio.push_back(a / b);
  }
  double m = Median(ratio);
  c.rows.push_back({"memory after a burst of " + std::to_string(n) + " job files", "daemon RSS (MB)", Median(after),
                    NAN, Spread(after), "restarted on the same queue: " + Fmt(Median(restart)) + " MB", m, "≤ 1.5",
                    Verdict(m <= 1.5)});
}

// Scheduler: `tasks` every-second cron tasks for `secs` seconds; fire lag is
// task_runs.fired_at − scheduled_at (ms resolution, as stored). Then the same
// with 100,000 more active tasks (due once a year): lag and memory compared.
void BenchScheduler(Context& c) {
  std::int64_t tasks = EnvInt("BENCH_SCHED_TASKS", 200), secs = EnvInt("BENCH_SCHED_S", 10);
  std::int64_t idle = EnvInt("BENCH_SCHED_IDLE", 100000);
  SchedRun base = RunScheduler(c, tasks, 0, secs);
  SchedRun big = RunScheduler(c, tasks, idle, secs);
  std::string ts = std::to_string(tasks), is = std::to_string(idle);
  double p99 = Quantile(base.lag_ms, 0.99);
  c.rows.push_back({ts + " tasks every second for " + std::to_string(secs) + " s", "fire lag (ms)", Median(base.lag_ms),
                    p99, std::to_string(base.lag_ms.size()) + " fires, 1 run", "", NAN, "p99 ≤ 5", Verdict(p99 <= 5)});
  double bp99 = Quantile(big.lag_ms, 0.99);
  c.rows.push_back({"the same + " + is + " idle active tasks", "fire lag (ms)", Median(big.lag_ms), bp99,
                    std::to_string(big.lag_ms.size()) + " fires, 1 run", "p99 without them: " + Fmt(p99) + " ms",
                    p99 > 0 ? bp99 / p99 : NAN, "flat (p99 ≤ 5)", Verdict(bp99 <= 5)});
  double per_task_b = (big.rss_mb - base.rss_mb) * 1024 * 1024 / static_cast<double>(idle);
  c.rows.push_back({"the same + " + is + " idle active tasks", "daemon RSS (MB)", big.rss_mb, NAN,
                    Fmt(per_task_b) + " B per task; start-up " + Fmt(big.startup_s) + " s",
                    "without them: " + Fmt(base.rss_mb) + " MB", big.rss_mb / base.rss_mb, "flat per fire", ""});
  c.rows.push_back({ts + " tasks every second", "daemon CPU per fire (ms)",
                    base.cpu_s * 1000 / static_cast<double>(base.lag_ms.size()), NAN,
                    "with " + is + " idle: " + Fmt(big.cpu_s * 1000 / static_cast<double>(big.lag_ms.size())), "", NAN,
                    "O(log n)", ""});
}

// Idle: three groups, nothing to do, for BENCH_IDLE_S seconds.
void BenchIdle(Context& c) {
  std::int64_t secs = EnvInt("BENCH_IDLE_S", 30);
  RootOptions o;
  o.groups = {"g0", "g1", "g2"};
  Root root(c.agent, o);
  Daemon d(c.dropq, root);
  d.WaitReady();
  SleepMs(1000);
  ProcStat s0 = ReadProc(d.pid());
  SleepMs(secs * 1000);
  ProcStat s1 = ReadProc(d.pid());
  d.Stop();
  std::string scen = "idle for " + std::to_string(secs) + " s, 3 groups";
  double cpu = s1.cpu_s - s0.cpu_s, rss = static_cast<double>(s1.rss_kb) / 1024;
  c.rows.push_back({scen, "CPU (s)", cpu, NAN, "1 run", "", NAN, "≤ 0.01", Verdict(cpu <= 0.01)});
  c.rows.push_back({scen, "wake-ups (context switches)", static_cast<double>(s1.wakeups - s0.wakeups), NAN, "1 run", "",
                    NAN, "none (rescan every 60 s)", Verdict(s1.wakeups - s0.wakeups <= secs / 60 + 1)});
  c.rows.push_back({scen, "RSS (MB)", rss, NAN, "1 run", "", NAN, "≤ 15", Verdict(rss <= 15)});
}

namespace {

// The sentinel parser alone, in this process, over the flood the agent
// prints (10 MiB in 100-byte lines, then a block), in 64 KiB chunks as the
// daemon reads them; the floor is memchr for every newline of the same data.
void SentinelThroughput(std::size_t bytes, int reps, std::vector<double>& parser, std::vector<double>& floor) {
  std::string data;
  data.reserve(bytes + 256);
  while (data.size() + 100 <= bytes) data.append(std::string(99, 'x') + "\n");
  data += "---NANOCLAW_OUTPUT_START---\n{\"status\":\"success\",\"result\":{\"t\":1}}\n---NANOCLAW_OUTPUT_END---\n";
  constexpr std::size_t kChunk = 64 * 1024;
  for (int r = 0; r < reps; ++r) {
    std::size_t blocks = 0;
    runner::SentinelParser p([&](const runner::AgentOutput&) { ++blocks; }, 10u << 20);
    std::int64_t t0 = NowNs();
    for (std::size_t off = 0; off < data.size(); off += kChunk) {
      p.Feed(std::string_view(data).substr(off, kChunk));
    }
    p.Finish();
    std::int64_t t1 = NowNs();
    if (blocks != 1) throw BenchError("sentinel parser saw " + std::to_string(blocks) + " blocks, expected 1");
    parser.push_back(static_cast<double>(data.size()) / static_cast<double>(t1 - t0));  // bytes/ns = GB/s
    std::size_t lines = 0;
    t0 = NowNs();
    for (std::size_t off = 0; off < data.size(); off += kChunk) {
      const char* s = data.data() + off;
      const char* e = data.data() + std::min(data.size(), off + kChunk);
      while ((s = static_cast<const char*>(std::memchr(s, '\n', static_cast<std::size_t>(e - s)))) != nullptr) {
        ++lines;
        ++s;
      }
    }
    t1 = NowNs();
    if (lines == 0) throw BenchError("no lines");
    floor.push_back(static_cast<double>(data.size()) / static_cast<double>(t1 - t0));
  }
}

}  // namespace

// Big output: an agent printing 10 MiB with max_output 10MiB; the daemon's
// peak RSS (VmHWM) over its RSS when idle just before.
void BenchBigOutput(Context& c) {
  std::int64_t bytes = EnvInt("BENCH_BIG_BYTES", 10 << 20);
  std::vector<double> above, cpu;
  for (int r = 0; r < c.repeats; ++r) {
    RootOptions o;
    o.extra = "max_output: 10MiB\n";
    Root root(c.agent, o);
    root.StageFile("g0", "big.json", R"({"type":"run","prompt":"flood )" + std::to_string(bytes) + "\"}");
    Daemon d(c.dropq, root);
    d.WaitReady();
    SleepMs(300);
    ProcStat s0 = ReadProc(d.pid());
    Inotify ino;
    ino.Watch(root.Results("g0"), IN_MOVED_TO);
    root.Drop("g0", "big.json");
    if (!ino.Wait(60'000, [](const std::string& f, std::uint32_t) { return f == "big.json"; })) {
      throw BenchError("big output: no result within 60 s");
    }
    ProcStat s1 = ReadProc(d.pid());
    json res = json::parse(ReadText(root.Results("g0") / "big.json"));
    if (res.value("state", "") != "succeeded") throw BenchError("big output: job failed: " + text::Dump(res));
    d.Stop();
    above.push_back(static_cast<double>(s1.hwm_kb - s0.rss_kb) / 1024);
    cpu.push_back((s1.cpu_s - s0.cpu_s) * 1000);
  }
  std::vector<double> parser, floor;
  SentinelThroughput(static_cast<std::size_t>(bytes), 10, parser, floor);
  double gbs = Median(parser), fl = Median(floor), pk = Median(above);
  std::string mb = Fmt(static_cast<double>(bytes) / (1 << 20));
  c.rows.push_back({"big output: agent prints " + mb + " MiB", "sentinel parsing (GB/s)", gbs, NAN, Spread(parser),
                    "memchr over the same bytes: " + Fmt(fl) + " GB/s", gbs / fl, "≥ 1", Verdict(gbs >= 1)});
  c.rows.push_back({"big output: agent prints " + mb + " MiB", "daemon peak RSS above idle (MiB)", pk, NAN,
                    Spread(above), "max_output: 10 MiB", pk / 10, "≤ 20 (2 × max_output)", Verdict(pk <= 20)});
  c.rows.push_back({"big output: agent prints " + mb + " MiB", "daemon CPU for the job (ms)", Median(cpu), NAN,
                    Spread(cpu), "", NAN, "", ""});
}

}  // namespace dropq::bench
