// The hostile-input soak (issue 12, item 7): the real daemon, the process
// runtime and a test agent that spews hostile bytes on both streams and ends
// with random exit codes (examples/test_agent.cc, `spew`), fed hundreds of
// files with hostile names and contents at once. It waits on the database
// and the files only, never on log wording, and then checks that every file
// is accounted for and every text the daemon stored is valid UTF-8.
//
// Deterministic given the seed (DROPQ_SOAK_SEED overrides the default): the
// names, contents and each agent's bytes and ending follow from it; only the
// order in which the daemon takes the files is left to timing.
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/text.h"
#include "tests/e2e/e2e_root.h"
#include "watcher/claim.h"

namespace dropq::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::uint64_t kDefaultSeed = 20261204;
constexpr int kFiles = 400;
constexpr std::size_t kNameMax = 255;
constexpr int kWaitMs = 60'000;
// The longest folder a config allows: "<group>-<name>" in errors/ is then
// over NAME_MAX for any name over 190 bytes.
constexpr char kLongGroup[] = "g64-the-longest-group-folder-a-config-allows-so-error-names-over";
static_assert(sizeof kLongGroup - 1 == 64);
const std::vector<std::string> kGroups = {"main", "team", "other", kLongGroup};

// The name's bytes, C-escaped, for messages.
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
  return out + "\"";
}

enum class Kind { kRegular, kSymlink, kFifo };

struct Planned {
  std::string group;
  std::string name;
  Kind kind = Kind::kRegular;
  std::string body;
  bool picked_up = true;  // the watcher reads it (docs/FILES.md)
  bool valid = false;     // a well-formed run job
  bool plain = false;     // its name is short printable ASCII: a valid job must then be queued
  std::string Describe() const {
    return group + "/" + Quote(name) + (kind == Kind::kSymlink ? " (symlink)" : kind == Kind::kFifo ? " (FIFO)" : "");
  }
};

std::uint64_t Seed() {
  const char* s = std::getenv("DROPQ_SOAK_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : kDefaultSeed;
}

// A hostile name: pieces of invalid UTF-8, control characters, terminal
// escapes, format strings, multi-byte characters and spaces, short or close
// to NAME_MAX. Each carries its index in ASCII near its start, so two files
// never share a result file or an errors/ entry whatever a fix makes of the
// rest of their names.
std::string HostileName(std::mt19937_64& rng, int index, bool* plain) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  static const std::vector<std::string> kPieces = {"\xff",
                                                   "\xfe\xfe",
                                                   "\xc3",
                                                   "\xe2\x82",
                                                   "\xed\xa0\x80",
                                                   "\xc0\xaf",
                                                   "\x80",  // invalid UTF-8
                                                   "\n",
                                                   "\r",
                                                   "\t",
                                                   "\x01",
                                                   "\x1f",
                                                   "\x7f",
                                                   "\xc2\x9b",  // controls (C0, DEL, C1)
                                                   "\x1b[31m",
                                                   "\x1b]0;pwned\x07",
                                                   "\x1b[2J",  // terminal escapes
                                                   "{}",
                                                   "%s%n",
                                                   "{:>999999}",
                                                   "$(id)",
                                                   "..",
                                                   " ",
                                                   "  ",
                                                   "-",  // format and shell bait
                                                   "\xc3\xa9",
                                                   "\xe6\x97\xa5\xe6\x9c\xac",
                                                   "\xf0\x9f\x98\x80",
                                                   "\xe2\x80\xae",
                                                   "report"};  // valid, RTL override
  *plain = pick(5) == 0;
  std::string stem;
  if (*plain) {
    stem = "plain-" + std::to_string(index);
  } else {
    const bool long_name = pick(5) < 2;
    const std::size_t target = long_name ? 200 + pick(kNameMax - 200 + 1) : 1 + pick(24);
    if (pick(2)) stem += kPieces[pick(kPieces.size())];  // a hostile first byte or few
    stem += std::to_string(index) + "-";
    while (stem.size() < target) stem += kPieces[pick(kPieces.size())];
    if (stem.size() > target) stem.resize(target);  // may cut a character in half: hostile too
  }
  static const std::vector<std::string> kOtherSuffixes = {".json.tmp", ".JSON", ".jsonx", "", ".json "};
  const bool ignored_suffix = !*plain && pick(12) == 0;
  const std::string suffix = ignored_suffix ? kOtherSuffixes[pick(kOtherSuffixes.size())] : ".json";
  if (!*plain && pick(20) == 0) stem.insert(0, ".");  // hidden: ignored by design
  if (stem.size() + suffix.size() > kNameMax) stem.resize(kNameMax - suffix.size());
  return stem + suffix;
}

// Contents: mostly jobs whose agent spews, plus every kind of bad file.
std::string Body(std::mt19937_64& rng, int index, bool* valid) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  *valid = false;
  const std::size_t k = pick(100);
  if (k < 45) {
    *valid = true;
    return json{{"prompt", "spew " + std::to_string(rng() >> 1) + " " + std::to_string(pick(6000))}, {"n", index}}
        .dump();
  }
  if (k < 55) {
    // A valid job whose prompt (and so the agent's echo) is hostile text.
    *valid = true;
    std::string prompt = "echo \xe2\x80\xae\x1b[31m\r\t\x7f\xc2\x9b" + std::to_string(index) + "\xf0\x9f\x98\x80";
    return json{{"prompt", prompt}, {"n", index}}.dump();
  }
  if (k < 63) {  // malformed JSON
    static const std::vector<std::string> kBad = {
        "{\"prompt\": ", "{\"prompt\": \"x\",}", "{'prompt': 'x'}", "{\"prompt\": \"x\"} trailing", "}{", "nul"};
    return kBad[pick(kBad.size())] + std::string(index % 3, ' ');
  }
  if (k < 66) return json{{"prompt", std::string(70'000 + pick(1000), 'x')}, {"n", index}}.dump();  // over max_job_file
  if (k < 73) {  // nested far deeper than the parser's limit of 64
    const std::size_t depth = 65 + pick(5000);
    return "{\"prompt\":\"p\",\"x\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  }
  if (k < 78) return "";
  if (k < 88) {  // binary
    std::string b;
    for (std::size_t i = 0, n = 1 + pick(512); i < n; ++i) b += static_cast<char>(rng() & 0xFF);
    if (!b.empty() && (b[0] == '{' || b[0] == '[')) b[0] = '\x01';
    return b;
  }
  if (k < 95) return "{\"prompt\":\"invalid \xff\xfe UTF-8 " + std::to_string(index) + "\"}";
  static const std::vector<std::string> kWrong = {"{\"prompt\": 5}", "[]", "\"just a string\"",
                                                  "{\"type\":\"nope\",\"prompt\":\"p\"}", "{\"prompt\":\"\"}"};
  return kWrong[pick(kWrong.size())];
}

bool PickedUp(const std::string& name) {
  // docs/FILES.md: "Names not ending in `.json`, and names starting with
  // `.`, are ignored."
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 && name[0] != '.';
}

std::vector<Planned> Plan(std::uint64_t seed, const fs::path& outside) {
  std::mt19937_64 rng(seed);
  std::vector<Planned> plan;
  std::set<std::pair<std::string, std::string>> taken;
  for (int i = 0; static_cast<int>(plan.size()) < kFiles; ++i) {
    Planned p;
    p.group = kGroups[rng() % kGroups.size()];
    p.name = HostileName(rng, i, &p.plain);
    p.body = Body(rng, i, &p.valid);
    if (p.name.find('/') != std::string::npos || p.name.find('\0') != std::string::npos || p.name == "." ||
        p.name == ".." || !taken.insert({p.group, p.name}).second) {
      continue;  // no group can drop these
    }
    p.picked_up = PickedUp(p.name);
    plan.push_back(std::move(p));
  }
  // A symlink to a valid job outside the root and a FIFO: never followed,
  // never blocked on, rejected with the reason.
  Planned link{"team", "link-to-outside.json", Kind::kSymlink, outside.string(), true, false, true};
  Planned fifo{"other", "a-fifo.json", Kind::kFifo, "", true, false, true};
  plan.push_back(link);
  plan.push_back(fifo);
  return plan;
}

// Writes the file under a hidden temporary name (ignored by the watcher)
// and renames it into place, as the contract asks writers to.
void DropPlanned(const Root& r, const Planned& p, int i) {
  const fs::path tmp = r.Tasks(p.group) / (".soak-" + std::to_string(i) + ".tmp");
  switch (p.kind) {
    case Kind::kRegular:
      WriteFile(tmp, p.body);
      break;
    case Kind::kSymlink:
      fs::create_symlink(p.body, tmp);
      break;
    case Kind::kFifo:
      REQUIRE(::mkfifo(tmp.c_str(), 0644) == 0);
      break;
  }
  INFO(p.Describe());
  REQUIRE(::rename(tmp.c_str(), (r.Tasks(p.group) / p.name).c_str()) == 0);
}

using Row = std::vector<std::optional<std::string>>;

// Every row of `sql`, each column as text (NULL as nullopt), read as the
// sqlite3 shell would.
std::vector<Row> Rows(const Root& r, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((r.Var() / "store/dropq.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  INFO(sql);
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::vector<Row> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    Row row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      if (sqlite3_column_type(st, c) == SQLITE_NULL) {
        row.emplace_back();
      } else {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row.emplace_back(std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

std::int64_t Count(const Root& r, const std::string& sql) {
  auto rows = Rows(r, sql);
  return rows.empty() || !rows[0][0] ? 0 : std::stoll(*rows[0][0]);
}

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

bool Alive(pid_t pid, int* status) { return ::waitpid(pid, status, WNOHANG) == 0; }

// The end of the daemon's log, made printable, for a failure's message.
std::string LogTail(const Root& r) {
  std::string log = ReadFile(r.scratch / "stderr");
  if (log.size() > 3000) log = log.substr(log.size() - 3000);
  return text::ForLog(log);
}

TEST_CASE("a daemon fed hundreds of hostile files and spewing agents stays up and accounts for every file",
          "[e2e][soak]") {
  const std::uint64_t seed = Seed();
  INFO("seed " << seed << " (set DROPQ_SOAK_SEED to replay another)");
  Root r("process", "max_job_file: 64KiB\n", "  - {folder: " + std::string(kLongGroup) + ", name: Long}\n");
  fs::create_directories(r.Tasks(kLongGroup));
  const fs::path outside = r.dir / "outside.json";
  WriteFile(outside, json{{"prompt", "echo followed a link"}}.dump());
  const std::vector<Planned> plan = Plan(seed, outside);

  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  int status = 0;
  // Ready when a first job has gone all the way through (files, not logs).
  r.Drop("team", "ready.json", {{"prompt", "echo ready"}});
  bool ready = WaitUntil([&] { return fs::exists(r.Results("team") / "ready.json") || !Alive(pid, &status); }, kWaitMs);
  {
    INFO(LogTail(r));
    REQUIRE(ready);
    REQUIRE(fs::exists(r.Results("team") / "ready.json"));
  }

  for (std::size_t i = 0; i < plan.size(); ++i) DropPlanned(r, plan[i], static_cast<int>(i));
  std::map<std::string, std::set<std::string>> ignored;  // by group: names the watcher leaves alone
  std::size_t picked = 0;
  for (const auto& p : plan) {
    if (p.picked_up) {
      ++picked;
    } else {
      ignored[p.group].insert(p.name);
    }
  }

  // Settled: every picked-up file left tasks/ and claimed/ and has its audit
  // row (the canary's included), and no job is queued or running.
  auto settled = [&] {
    for (const auto& g : kGroups) {
      if (Names(r.Tasks(g)).size() != ignored[g].size()) return false;
      if (!Names(r.Var() / "data/claimed" / g).empty()) return false;
    }
    return Count(r, "SELECT count(*) FROM job_events WHERE event IN ('received', 'rejected', 'duplicate')") ==
               static_cast<std::int64_t>(picked) + 1 &&
           Count(r, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == 0;
  };
  bool done = WaitUntil([&] { return !Alive(pid, &status) || settled(); }, kWaitMs);
  const bool alive = Alive(pid, &status);
  {
    INFO(LogTail(r));
    INFO("the daemon " << (WIFSIGNALED(status) ? "died of signal " + std::to_string(WTERMSIG(status))
                                               : "exited with " + std::to_string(WEXITSTATUS(status))));
    REQUIRE(alive);
  }
  {
    std::string left;
    for (const auto& g : kGroups) {
      left += g + ": " + std::to_string(Names(r.Tasks(g)).size()) + " in tasks/ (" + std::to_string(ignored[g].size()) +
              " ignored by design), " + std::to_string(Names(r.Var() / "data/claimed" / g).size()) + " claimed; ";
    }
    INFO(left);
    INFO(Count(r, "SELECT count(*) FROM job_events WHERE event IN ('received', 'rejected', 'duplicate')")
         << " audit rows for " << picked + 1 << " files; "
         << Count(r, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") << " jobs queued or running");
    CHECK(done);
  }

  // Still answering: a new file still becomes a job that runs.
  r.Drop("team", "after.json", {{"prompt", "echo after"}});
  CHECK(WaitUntil([&] { return fs::exists(r.Results("team") / "after.json"); }, kWaitMs));
  CHECK(r.Result("team", "after.json")["result"]["echo"] == "after");
  ::kill(pid, SIGTERM);
  CHECK(WaitProcess(pid, 30'000) == 0);

  // Nothing left: tasks/ holds only the names the watcher ignores by
  // design, as they were dropped; claimed/ is empty.
  for (const auto& g : kGroups) {
    INFO("group " << g);
    auto left = Names(r.Tasks(g));
    CHECK(std::set<std::string>(left.begin(), left.end()) == ignored[g]);
    CHECK(Names(r.Var() / "data/claimed" / g).empty());
  }

  // Every file is exactly one job (found by its content's hash in its
  // group) or one rejection; valid jobs with plain names are jobs.
  std::map<std::pair<std::string, std::string>, int> jobs_by_hash;  // (group, sha256) → jobs
  for (const auto& row : Rows(r, "SELECT group_folder, source_hash FROM jobs")) {
    ++jobs_by_hash[{row[0].value_or(""), row[1].value_or("")}];
  }
  std::map<std::string, std::int64_t> expected_rejections;
  std::int64_t matched = 0;
  for (const auto& p : plan) {
    if (!p.picked_up) continue;
    INFO(p.Describe());
    int jobs = 0;
    if (p.kind == Kind::kRegular) {
      auto it = jobs_by_hash.find({p.group, watcher::Sha256Hex(p.body)});
      jobs = it == jobs_by_hash.end() ? 0 : it->second;
    }
    CHECK(jobs <= 1);
    if (!p.valid) CHECK(jobs == 0);
    if (p.valid && p.plain) CHECK(jobs == 1);
    matched += jobs;
    if (jobs == 0) ++expected_rejections[p.group];
  }
  CHECK(Count(r, "SELECT count(*) FROM jobs") == matched + 2);  // and the two canaries
  CHECK(Count(r, "SELECT count(*) FROM job_events WHERE event = 'duplicate'") == 0);
  for (const auto& g : kGroups) {
    INFO("group " << g);
    CHECK(Count(r, "SELECT count(*) FROM job_events WHERE event = 'rejected' AND job_id IS NULL AND group_folder = '" +
                       g + "'") == expected_rejections[g]);
  }

  // Each rejection has its reason: in the audit row and beside the file in
  // errors/ (<movedTo>.error.json, valid UTF-8 JSON).
  std::int64_t rejected = 0;
  for (const auto& row : Rows(r, "SELECT detail FROM job_events WHERE event = 'rejected'")) {
    ++rejected;
    auto d = json::parse(row[0].value_or(""), nullptr, false);
    INFO(text::ForLog(row[0].value_or("")));
    REQUIRE(d.is_object());
    CHECK_FALSE(d.value("reason", "").empty());
  }
  auto errors = Names(r.Errors());
  std::int64_t reasons = 0;
  for (const auto& e : errors) {
    if (e.size() <= 11 || e.compare(e.size() - 11, 11, ".error.json") != 0) continue;
    ++reasons;
    INFO("errors/" << Quote(e));
    std::string text = ReadFile(r.Errors() / e);
    CHECK(text::IsValidUtf8(text));
    auto why = json::parse(text, nullptr, false);
    REQUIRE(why.is_object());
    CHECK_FALSE(why.value("reason", "").empty());
    const std::string moved = why.value("movedTo", "");
    CHECK(e == moved + ".error.json");
    CHECK(fs::symlink_status(r.Errors() / moved).type() != fs::file_type::not_found);
  }
  CHECK(reasons == rejected);
  CHECK(static_cast<std::int64_t>(errors.size()) == 2 * rejected);

  // Every job is final and its result file, valid UTF-8 JSON, names it.
  CHECK(Count(r, "SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded', 'failed')") == 0);
  std::set<std::string> reported;
  for (const auto& g : kGroups) {
    for (const auto& name : Names(r.Results(g))) {
      std::string text = ReadFile(r.Results(g) / name);
      INFO("results/" << g << "/" << Quote(name));
      CHECK(text::IsValidUtf8(text));
      auto res = json::parse(text, nullptr, false);
      REQUIRE(res.is_object());
      reported.insert(res["jobId"].dump());
    }
  }
  for (const auto& row : Rows(r, "SELECT id, source_group, source_name FROM jobs")) {
    INFO("job " << row[0].value_or("?") << " from " << row[1].value_or("?") << "/" << Quote(row[2].value_or("")) << " ("
                << row[2].value_or("").size() << " bytes)");
    CHECK(reported.count(row[0].value_or("")) == 1);
  }

  // Every text the daemon stored is valid UTF-8.
  for (const char* table : {"jobs", "job_runs", "job_events"}) {
    auto rows = Rows(r, std::string("SELECT * FROM ") + table);
    for (const auto& row : rows) {
      for (const auto& v : row) {
        if (!v) continue;
        INFO(table << ": " << text::ForLog(*v));
        CHECK(text::IsValidUtf8(*v));
      }
    }
  }
}

}  // namespace
}  // namespace dropq::testing
