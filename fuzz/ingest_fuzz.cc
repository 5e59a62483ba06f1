// libFuzzer target: the real ingest path (watcher::Ingestor) on a real root,
// with fuzzed file NAMES, contents and file kinds (issue 12, item 7).
//
// One root (under /dev/shm when there is one) and one SQLite store serve
// every input; tasks/, claimed/ and errors/ are emptied between inputs, and
// the store is recreated every kInputsPerStore inputs so the per-group queue
// quota never fills. Each input creates ONE entry in a group's tasks/ —
// "main", "team", or a group whose folder is 64 characters, the longest a
// config allows, so "<group>-<name>" in errors/ exceeds NAME_MAX — then runs
// one scan + Flush() and checks the contract of docs/FILES.md:
//
//   a name the watcher picks up (ends in ".json", does not start with '.')
//     - is no longer in tasks/ and nothing is left in data/claimed/<group>/;
//     - became exactly one audit row: `received` (with exactly one new job),
//       `duplicate` (same client id as an earlier job; no new job) or
//       `rejected` (no job; errors/ holds the file and exactly one
//       "<movedTo>.error.json" that is valid UTF-8 JSON with a reason);
//   any other name is left where it is, untouched, with no audit row;
//   every TEXT value of the new job_events and jobs rows is valid UTF-8,
//   every event detail parses as JSON; Flush() succeeds on a healthy store;
//   no exception escapes; and every line logged at info or above is valid
//   UTF-8 without control characters (nothing a group names its file can
//   forge a log line or drive a terminal).
//
// Names the filesystem itself refuses (containing '/' or NUL, empty, over
// NAME_MAX) are skipped: no group can drop them. Everything else is fed:
// invalid UTF-8, control characters, names up to 255 bytes.
//
// Input layout:
//   byte 0   bits 0-1 group (0 main, 1 team, 2 the 64-character one, 3 team)
//            bit 2    use the name as given (else ".json" is appended)
//            bits 3-4 kind (0, 1 regular file, 2 symlink to the body as a
//                     path, 3 FIFO)
//   byte 1   n, the name's length (0..255)
//   n bytes  the name
//   the rest the file's contents
//
// Settling is off (settle_ms 0): a half-written file's second look is
// tested in tests/watcher/ingest_test.cc; here every file is final.
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "config/logging.h"
#include "base/clock.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "base/text.h"
#include "watcher/ingest.h"

namespace {

namespace fs = std::filesystem;
using dropq::text::IsValidUtf8;

constexpr std::size_t kNameMax = 255;
constexpr int kInputsPerStore = 4096;
constexpr const char* kLongGroup = "g64-the-longest-group-folder-a-config-allows-so-error-names-over";
static_assert(std::char_traits<char>::length(kLongGroup) == 64);

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "ingest_fuzz: broken invariant: %s\n", what.c_str());
  std::abort();
}

void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

// The name as a C-escaped string, for messages.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\" (" + std::to_string(s.size()) + " bytes)";
}

// Every line the daemon's log sink (config/logging.cc, the text format a
// terminal shows) writes at info or above must be valid UTF-8 with no C0, DEL
// or C1 control character but the sink's own colour codes and the final
// newline: names and reasons are escaped where log lines are written. Each
// message goes through the real sink into a scratch file and is read back.
class CheckingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  CheckingSink()
      : file_(std::tmpfile()), real_(dropq::app::MakeLogSink(fileno(file_), dropq::app::LogFormat::kPretty)) {}
  ~CheckingSink() override { std::fclose(file_); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const int fd = fileno(file_);
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) Fail("cannot reset the log scratch file");
    real_->log(msg);
    std::string line;
    char buf[4096];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) line.append(buf, static_cast<std::size_t>(n));
    for (const char* code : {"\033[2m", "\033[0m", "\033[33m", "\033[31;1m", "\033[32m"}) {
      for (std::size_t at; (at = line.find(code)) != std::string::npos;) line.erase(at, std::strlen(code));
    }
    if (line.empty() || line.back() != '\n') Fail("a log line does not end in one newline: " + Quote(line));
    line.pop_back();
    if (!IsValidUtf8(line)) Fail("a log line is not valid UTF-8: " + Quote(line));
    for (std::size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      const bool c1 = c == 0xC2 && i + 1 < line.size() && static_cast<unsigned char>(line[i + 1]) <= 0x9F;
      if (c < 0x20 || c == 0x7F || c1) Fail("a log line carries a control character: " + Quote(line));
    }
  }
  void flush_() override {}

 private:
  std::FILE* file_;
  std::shared_ptr<spdlog::sinks::sink> real_;
};

bool PickedUp(std::string_view name) {
  // docs/FILES.md: "Names not ending in `.json`, and names starting with `.`,
  // are ignored."
  return name.size() > 5 && name.substr(name.size() - 5) == ".json" && name[0] != '.';
}

std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

void EmptyDir(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) fs::remove_all(e.path());
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Event {
  std::int64_t id;
  std::string group, event, detail;
};

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
    PruneStaleRoots(base, "dropq-ingest-fuzz-");
    std::string tmpl = std::string(base) + "/dropq-ingest-fuzz-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) Fail("cannot make a temporary root");
    root_ = tmpl;
    layout_ = std::make_unique<dropq::Layout>(root_);
    Check(layout_->CreateCommon().ok(), "the layout's common folders are created");
    for (const char* g : {"main", "team", kLongGroup})
      Check(layout_->CreateGroup(g).ok(), "a group's folders are created");
    OpenStore();
  }
  ~World() {
    Close();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  const dropq::Layout& layout() const { return *layout_; }
  dropq::watcher::Ingestor& ingestor() { return *ingestor_; }

  void CountInput() {
    if (++inputs_ % kInputsPerStore == 0) {
      Close();
      for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((layout_->DatabasePath().string() + suffix).c_str());
      OpenStore();
    }
  }

  // Rows appended since the last call: checked for UTF-8 on the way.
  std::vector<Event> NewEvents() {
    std::vector<Event> out;
    sqlite3_stmt* st = Prepare("SELECT * FROM job_events WHERE id > ?1 ORDER BY id");
    sqlite3_bind_int64(st, 1, last_event_);
    while (sqlite3_step(st) == SQLITE_ROW) {
      CheckTextColumns(st, "job_events");
      Event e;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        std::string col = sqlite3_column_name(st, c);
        auto text = [&] {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
          return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c))) : std::string();
        };
        if (col == "id") e.id = sqlite3_column_int64(st, c);
        if (col == "group_folder") e.group = text();
        if (col == "event") e.event = text();
        if (col == "detail") e.detail = text();
      }
      last_event_ = e.id;
      out.push_back(std::move(e));
    }
    sqlite3_finalize(st);
    return out;
  }

  int NewJobs() {
    int n = 0;
    sqlite3_stmt* st = Prepare("SELECT * FROM jobs WHERE id > ?1 ORDER BY id");
    sqlite3_bind_int64(st, 1, last_job_);
    while (sqlite3_step(st) == SQLITE_ROW) {
      CheckTextColumns(st, "jobs");
      last_job_ = sqlite3_column_int64(st, 0);
      ++n;
    }
    sqlite3_finalize(st);
    return n;
  }

 private:
  void OpenStore() {
    auto s = dropq::Store::Open(layout_->DatabasePath().string(), clock_);
    if (!s.ok()) Fail("the store opens: " + s.status().message());
    store_ = std::move(*s);
    Check(store_->UpsertGroup("main", "Main", std::string("main@x"), true).ok(), "group main is recorded");
    Check(store_->UpsertGroup("team", "Team", std::string("team@x"), false).ok(), "group team is recorded");
    Check(store_->UpsertGroup(kLongGroup, "Long", std::nullopt, false).ok(), "the 64-character group is recorded");
    dropq::watcher::IngestOptions o;
    o.groups = {{"main", "main@x", true}, {"team", "team@x", false}, {kLongGroup, std::nullopt, false}};
    o.max_file_bytes = 2048;  // small, so the size cap is reached with small inputs
    o.settle_ms = 0;
    ingestor_ = std::make_unique<dropq::watcher::Ingestor>(*store_, *layout_, o, clock_);
    if (sqlite3_open_v2(layout_->DatabasePath().c_str(), &reader_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      Fail("a reader connection opens");
    }
    last_event_ = last_job_ = 0;
  }

  void Close() {
    ingestor_.reset();
    store_.reset();
    if (reader_) sqlite3_close(reader_);
    reader_ = nullptr;
  }

  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(reader_, sql, -1, &st, nullptr) != SQLITE_OK) Fail(std::string("cannot prepare ") + sql);
    return st;
  }

  static void CheckTextColumns(sqlite3_stmt* st, const char* table) {
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      if (sqlite3_column_type(st, c) != SQLITE_TEXT) continue;
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      std::string_view v(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
      if (!IsValidUtf8(v)) {
        Fail(std::string(table) + "." + sqlite3_column_name(st, c) + " is not valid UTF-8: " + Quote(v));
      }
    }
  }

  fs::path root_;
  dropq::ManualClock clock_{1'800'000'000'000};
  std::unique_ptr<dropq::Layout> layout_;
  std::unique_ptr<dropq::Store> store_;
  std::unique_ptr<dropq::watcher::Ingestor> ingestor_;
  sqlite3* reader_ = nullptr;
  std::int64_t last_event_ = 0, last_job_ = 0;
  int inputs_ = 0;
};

World* world = nullptr;

enum class Kind { kRegular, kSymlink, kFifo };

// Creates tasks/<name>; false when the filesystem refuses the name.
bool Create(const fs::path& tasks, const std::string& name, Kind kind, std::string_view body) {
  const std::string path = (tasks / name).string();
  if (kind == Kind::kSymlink) return ::symlink(std::string(body).c_str(), path.c_str()) == 0;
  if (kind == Kind::kFifo) return ::mkfifo(path.c_str(), 0644) == 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < body.size()) {
    ssize_t n = ::write(fd, body.data() + done, body.size() - done);
    if (n <= 0) Fail("cannot write a dropped file");
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return true;
}

void CheckRejection(const fs::path& errors, const std::string& name) {
  auto entries = Entries(errors);
  std::string reason_file;
  for (const auto& e : entries) {
    if (e.size() > 11 && e.compare(e.size() - 11, 11, ".error.json") == 0) {
      Check(reason_file.empty(), "one rejection leaves one .error.json in errors/ for " + Quote(name));
      reason_file = e;
    }
  }
  Check(!reason_file.empty(), "a rejected file has its .error.json in errors/: " + Quote(name));
  Check(entries.size() == 2, "errors/ holds the rejected file and its reason, nothing else, for " + Quote(name));
  std::string text = ReadAll(errors / reason_file);
  Check(IsValidUtf8(text), "the .error.json is valid UTF-8 for " + Quote(name));
  auto why = nlohmann::json::parse(text, nullptr, false);
  Check(!why.is_discarded() && why.is_object(), "the .error.json parses as a JSON object for " + Quote(name));
  Check(why.contains("reason") && why["reason"].is_string() && !why["reason"].get<std::string>().empty(),
        "the .error.json gives a reason for " + Quote(name));
  Check(why.contains("movedTo") && why["movedTo"].is_string(), "the .error.json names where the file went");
  const std::string moved = why["movedTo"].get<std::string>();
  Check(reason_file == moved + ".error.json", "the reason sits beside the file as <movedTo>.error.json");
  std::error_code ec;
  Check(fs::symlink_status(errors / moved, ec).type() != fs::file_type::not_found,
        "the rejected file is in errors/ under movedTo for " + Quote(name));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto logger = std::make_shared<spdlog::logger>("ingest_fuzz", std::make_shared<CheckingSink>());
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
  world = new World();
  std::atexit([] { delete world; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 2) return 0;
  const auto flags = static_cast<unsigned char>(in[0]);
  std::size_t n = static_cast<unsigned char>(in[1]);
  in.remove_prefix(2);
  n = std::min(n, in.size());
  std::string name(in.substr(0, n));
  const std::string_view body = in.substr(n);
  const char* groups[] = {"main", "team", kLongGroup, "team"};
  const std::string group = groups[flags & 3];
  if ((flags & 4) == 0) name += ".json";
  const int kind_bits = (flags >> 3) & 3;
  const Kind kind = kind_bits == 2 ? Kind::kSymlink : kind_bits == 3 ? Kind::kFifo : Kind::kRegular;

  // What no group can drop: the filesystem refuses these names.
  if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos ||
      name.size() > kNameMax || name == "." || name == "..") {
    return 0;
  }
  World& w = *world;
  const dropq::Layout& layout = w.layout();
  const fs::path tasks = layout.TasksDir(group);
  if (kind == Kind::kSymlink && (body.empty() || body.find('\0') != std::string_view::npos)) return 0;
  if (!Create(tasks, name, kind, body)) return 0;

  try {
    w.ingestor().ScanAll();
    auto queued = w.ingestor().Flush();
    if (!queued.ok()) Fail("Flush fails on a healthy store: " + queued.status().message());
  } catch (const std::exception& e) {
    Fail(std::string("an exception escaped the ingest pass: ") + e.what() + "; file " + Quote(name) + " in " + group);
  }

  const auto events = w.NewEvents();
  const int jobs = w.NewJobs();
  for (const auto& e : events) {
    Check(IsValidUtf8(e.detail), "an event's detail is valid UTF-8");
    auto d = nlohmann::json::parse(e.detail, nullptr, false);
    Check(!d.is_discarded(), "an event's detail parses as JSON");
    // (A job main queues for another group is recorded in that group.)
    if (e.event == "rejected") Check(e.group == group, "a rejection names the group the file was dropped in");
  }
  const auto left = Entries(tasks);
  const auto claimed = Entries(layout.ClaimedDir(group));
  Check(claimed.empty(), "nothing is left in data/claimed/ after a pass: " + Quote(name));
  if (PickedUp(name)) {
    Check(left.empty(), "a dropped *.json file no longer sits in tasks/ after a pass: " + Quote(name) + " in " + group);
    Check(!w.ingestor().pending(), "nothing is left pending after a pass");
    Check(events.size() == 1,
          "a dropped file becomes exactly one audit row (" + std::to_string(events.size()) + "): " + Quote(name));
    const std::string& ev = events[0].event;
    if (ev == "received") {
      Check(jobs == 1, "a received file is exactly one new job");
      Check(Entries(layout.ErrorsDir()).empty(), "an accepted file leaves nothing in errors/");
    } else if (ev == "duplicate") {
      Check(jobs == 0, "a duplicate makes no new job");
      Check(Entries(layout.ErrorsDir()).empty(), "a duplicate leaves nothing in errors/");
    } else {
      Check(ev == "rejected", "the audit row is received, duplicate or rejected, not " + ev);
      Check(jobs == 0, "a rejected file makes no job");
      CheckRejection(layout.ErrorsDir(), name);
    }
  } else {
    Check(left.size() == 1 && left[0] == name, "a name the watcher ignores stays in tasks/ as it was: " + Quote(name));
    Check(events.empty() && jobs == 0, "an ignored name leaves no audit row and no job");
    Check(Entries(layout.ErrorsDir()).empty(), "an ignored name leaves nothing in errors/");
  }

  EmptyDir(tasks);
  EmptyDir(layout.ErrorsDir());
  w.CountInput();
  return 0;
}
