// libFuzzer target: an agent's stdout, stderr and exit status, through the
// runner's outcome (runner::MakeOutcome, the function Runner::Execution
// calls when an attempt ends), a real SQLite store (StartAttempt,
// FinishAttempt) and the result file (runner::WriteResultFile) — the sinks
// issue 12 found an agent's bytes could crash (item 7).
//
// Checked for every input, whatever the agent printed:
//   - no exception escapes (nlohmann's dump() throws on invalid UTF-8, and
//     the daemon writes the result file on libuv's pool, where a throw
//     terminates it);
//   - FinishAttempt and WriteResultFile succeed;
//   - every TEXT value of the job's jobs and job_runs rows and of its new
//     job_events rows is valid UTF-8; jobs.result and every event detail
//     parse as JSON; the job is final (or queued again, for a retry);
//   - the result file is valid UTF-8 JSON naming the job, its state, and the
//     same error the database holds;
//   - an exit or signal error starts with NanoClaw's words and quotes only a
//     short tail of stderr, never all of it.
//
// Input layout:
//   byte 0   bits 0-1 how it ended: 0 exited, 1 killed by a signal,
//                     2 timed out, 3 could not be spawned
//            bit 2    stdout was truncated;  bit 3  stderr was truncated
//            bit 4    the job's context_mode is "group" (its session is kept)
//            bit 5    a failure is retried (queued again, no result file)
//   byte 1   the exit code, or the signal (1 + byte % 64)
//   byte 2-3 n, stdout's length (little-endian; clamped to what is left)
//   n bytes  stdout (fed to the sentinel parser as one chunk: sentinel_fuzz
//            varies the chunking)
//   the rest stderr
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "base/clock.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "base/text.h"
#include "runner/outcome.h"
#include "runner/runner.h"
#include "runner/sentinel.h"

namespace {

namespace fs = std::filesystem;
using dropq::text::IsValidUtf8;

constexpr int kInputsPerStore = 8192;
// "Container exited with code 255: " + a 200-byte tail, with room for the
// tail's characters to be escaped or replaced: anything near the size of the
// whole stderr means it was not cut.
constexpr std::size_t kMaxExitError = 1024;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "agent_output_fuzz: broken invariant: %s\n", what.c_str());
  std::abort();
}

void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void CheckTextColumns(sqlite3_stmt* st, const char* table) {
  for (int c = 0; c < sqlite3_column_count(st); ++c) {
    if (sqlite3_column_type(st, c) != SQLITE_TEXT) continue;
    std::string_view v(reinterpret_cast<const char*>(sqlite3_column_text(st, c)),
                       static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
    if (!IsValidUtf8(v)) Fail(std::string(table) + "." + sqlite3_column_name(st, c) + " is not valid UTF-8");
    const std::string col = sqlite3_column_name(st, c);
    if ((col == "detail" || col == "result") && nlohmann::json::parse(v, nullptr, false).is_discarded()) {
      Fail(std::string(table) + "." + col + " is not JSON");
    }
  }
}

// A crash (the point of a fuzzer) skips the destructor that removes the
// root, and /dev/shm is memory: roots "<prefix><pid>-XXXXXX" whose process
// is gone are removed when the next run starts.
void PruneStaleRoots(const fs::path& base, const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(base, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
}

class World {
 public:
  World() {
    const char* base =
        fs::is_directory("/dev/shm") ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    PruneStaleRoots(base, "dropq-output-fuzz-");
    std::string tmpl = std::string(base) + "/dropq-output-fuzz-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) Fail("cannot make a temporary root");
    root_ = tmpl;
    layout_ = std::make_unique<dropq::Layout>(root_);
    Check(layout_->CreateCommon().ok() && layout_->CreateGroup("team").ok(), "the layout is created");
    Open();
  }
  ~World() {
    Close();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  dropq::Store& store() { return *store_; }
  const dropq::Layout& layout() const { return *layout_; }
  dropq::ManualClock& clock() { return clock_; }

  void CountInput() {
    if (++inputs_ % kInputsPerStore != 0) return;
    Close();
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((layout_->DatabasePath().string() + suffix).c_str());
    Open();
  }

  // Runs `sql` (one ?1 = job id) on the reader and checks every row's text.
  void CheckRows(const char* sql, std::int64_t id, const char* table, int* rows = nullptr) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(reader_, sql, -1, &st, nullptr) != SQLITE_OK) Fail(std::string("cannot prepare ") + sql);
    sqlite3_bind_int64(st, 1, id);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      CheckTextColumns(st, table);
      ++n;
    }
    sqlite3_finalize(st);
    if (rows) *rows = n;
  }

  std::optional<std::string> Text(const char* sql, std::int64_t id) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(reader_, sql, -1, &st, nullptr) != SQLITE_OK) Fail(std::string("cannot prepare ") + sql);
    sqlite3_bind_int64(st, 1, id);
    std::optional<std::string> out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
      out = std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                        static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
    }
    sqlite3_finalize(st);
    return out;
  }

 private:
  void Open() {
    auto s = dropq::Store::Open(layout_->DatabasePath().string(), clock_);
    if (!s.ok()) Fail("the store opens: " + s.status().message());
    store_ = std::move(*s);
    Check(store_->UpsertGroup("team", "Team", std::string("team@x"), false).ok(), "group team is recorded");
    if (sqlite3_open_v2(layout_->DatabasePath().c_str(), &reader_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      Fail("a reader connection opens");
    }
  }
  void Close() {
    store_.reset();
    if (reader_) sqlite3_close(reader_);
    reader_ = nullptr;
  }

  fs::path root_;
  dropq::ManualClock clock_{1'800'000'000'000};
  std::unique_ptr<dropq::Layout> layout_;
  std::unique_ptr<dropq::Store> store_;
  sqlite3* reader_ = nullptr;
  int inputs_ = 0;
};

World* world = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  world = new World();
  std::atexit([] { delete world; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 4) return 0;
  const auto flags = static_cast<unsigned char>(in[0]);
  const auto code = static_cast<unsigned char>(in[1]);
  std::size_t n =
      static_cast<unsigned char>(in[2]) | (static_cast<std::size_t>(static_cast<unsigned char>(in[3])) << 8);
  in.remove_prefix(4);
  n = std::min(n, in.size());
  const std::string_view out_bytes = in.substr(0, n);
  const std::string_view err_bytes = in.substr(n);
  const int how = flags & 3;
  const bool retry = (flags & 32) != 0;

  World& w = *world;
  dropq::Store& store = w.store();
  dropq::RunRequest req;
  req.prompt = "p";
  req.context_mode = (flags & 16) ? dropq::ContextMode::kGroup : dropq::ContextMode::kIsolated;
  static std::uint64_t claims = 0;  // claim tokens are unique per job
  auto ins =
      store.InsertJob("team", req, {"team", "out.json", std::string(64, '0'), "claim-" + std::to_string(++claims)}, 2);
  Check(ins.ok(), "the job is inserted: " + (ins.ok() ? std::string() : ins.status().message()));
  const dropq::JobId id = ins->id;
  auto run = store.StartAttempt(id, "process", "dropq-team-" + std::to_string(id));
  Check(run.ok(), "the attempt starts");
  auto job = store.GetJob(id);
  Check(job.ok() && job->has_value(), "the job is read back");

  dropq::runner::SentinelParser parser;
  parser.Feed(out_bytes);
  parser.Finish();
  dropq::runner::CapturedRun c;
  c.run = *run;
  c.started_ms = w.clock().NowMs();
  w.clock().Advance(1234);
  c.now = w.clock().NowMs();
  c.stderr_text = err_bytes;
  c.stdout_bytes = static_cast<std::int64_t>(out_bytes.size());
  c.stderr_bytes = static_cast<std::int64_t>(err_bytes.size());
  c.stdout_truncated = (flags & 4) != 0;
  c.stderr_truncated = (flags & 8) != 0;
  if (how == 3) c.spawn_error = "/opt/dropq/agent: No such file or directory";
  c.timed_out = how == 2;
  c.timeout_ms = 300'000;
  c.exit_status = how == 0 ? code : 0;
  c.term_signal = how == 1 ? 1 + code % 64 : 0;
  c.parser = &parser;

  dropq::RunOutcome o;
  dropq::Result<std::string> path = std::string();
  dropq::Status finished;
  const fs::path result_path = w.layout().ResultsDir("team") / "out.json";
  try {
    o = dropq::runner::MakeOutcome(c);
    if (retry && o.job_state == dropq::JobState::kFailed) o.retry_at = c.now + 1000;
    // As the daemon does (daemon/daemon.cc, Finish): the result file of a final
    // outcome first, then the commit.
    if (!o.retry_at) path = dropq::runner::WriteResultFile(w.layout(), **job, o);
    finished = store.FinishAttempt(**job, o);
  } catch (const std::exception& e) {
    Fail(std::string("an exception escaped the outcome, the store or the result file: ") + e.what());
  }
  Check(finished.ok(), "FinishAttempt succeeds: " + finished.message());
  Check(path.ok(), "WriteResultFile succeeds");

  if (how == 0 && code != 0) {
    Check(o.error && o.error->rfind("Container exited with code " + std::to_string(code), 0) == 0,
          "a non-zero exit is the error's first words");
  }
  if (how == 1) Check(o.error && o.error->rfind("Container killed by signal ", 0) == 0, "a signal is named");
  if (o.error && (how <= 1)) Check(o.error->size() <= kMaxExitError, "the error quotes only stderr's tail");

  w.CheckRows("SELECT * FROM jobs WHERE id = ?1", id, "jobs");
  int runs = 0;
  w.CheckRows("SELECT * FROM job_runs WHERE job_id = ?1", id, "job_runs", &runs);
  Check(runs == 1, "the attempt has its job_runs row");
  w.CheckRows("SELECT * FROM job_events WHERE job_id = ?1", id, "job_events");
  w.CheckRows("SELECT * FROM sessions", id, "sessions");
  const auto state = w.Text("SELECT state FROM jobs WHERE id = ?1", id);
  const auto error = w.Text("SELECT error FROM jobs WHERE id = ?1", id);
  if (o.retry_at) {
    Check(state == "queued", "a retried failure is queued again");
  } else {
    Check(state == "succeeded" || state == "failed", "the job is final");
    std::string text = ReadAll(result_path);
    Check(IsValidUtf8(text), "the result file is valid UTF-8");
    auto r = nlohmann::json::parse(text, nullptr, false);
    Check(!r.is_discarded() && r.is_object(), "the result file is a JSON object");
    Check(r["jobId"] == id, "the result file names its job");
    Check(r["state"] == *state, "the result file's state is the job's");
    Check(error ? r["error"] == *error : r["error"].is_null(), "the result file's error is the one the database holds");
    fs::remove(result_path);
  }
  w.CountInput();
  return 0;
}
