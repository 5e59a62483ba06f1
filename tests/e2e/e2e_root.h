#pragma once
// A temporary dropq root for end-to-end tests: a config (bwrap by default,
// the test agent bound at /opt/dropq/test-agent, groups main, team, other),
// helpers to drop files the way the contract asks, run the real binary, read
// results and query the database as the sqlite3 shell would, and wait on the
// daemon's signal (docs/DESIGN.md, "One signal to wait on"): its rows in the
// database, through jobs/wait.h as the CLI waits, never its log wording.
#include <signal.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "jobs/wait.h"
#include "tests/fakes/process.h"
#include "tests/fakes/sqlite_read.h"
#include "tests/fakes/temp_dir.h"

namespace dropq::testing {

namespace fs = std::filesystem;
using nlohmann::json;

struct Root {
  TempDir dir;
  fs::path config = dir / "dropq.yaml";
  fs::path scratch = dir / "scratch";

  explicit Root(const std::string& runtime = "bwrap", const std::string& extra = "",
                const std::string& group_extra = "") {
    fs::create_directories(scratch);
    WriteFile(config,
              "root: var\n"
              "runtime: " +
                  runtime +
                  "\n"
                  "agent: [/opt/dropq/test-agent]\n"
                  "max_concurrent: 2\n"
                  "kill_grace: 500ms\n"
                  "log_level: debug\n"
                  "bwrap:\n"
                  "  ro_binds:\n"
                  "    - host: " DROPQ_TEST_AGENT
                  "\n"
                  "      container: /opt/dropq/test-agent\n"
                  "groups:\n"
                  "  - {folder: main, name: Main, jid: main@x, main: true}\n"
                  "  - {folder: team, name: Team, jid: team@x}\n"
                  "  - {folder: other, name: Other}\n" +
                  group_extra + extra);
    for (const char* g : {"main", "team", "other"}) fs::create_directories(Tasks(g));
  }
  // Leaves `agent` out of the config (docker, podman and container then run
  // the image's entrypoint).
  void RemoveAgent() {
    const std::string line = "agent: [/opt/dropq/test-agent]\n";
    std::string cfg = ReadFile(config);
    auto at = cfg.find(line);
    REQUIRE(at != std::string::npos);
    WriteFile(config, cfg.erase(at, line.size()));
  }
  fs::path Var() const { return dir / "var"; }
  fs::path Tasks(const std::string& g) const { return Var() / "data/ipc" / g / "tasks"; }
  fs::path Results(const std::string& g) const { return Var() / "data/ipc" / g / "results"; }
  fs::path Errors() const { return Var() / "data/ipc/errors"; }

  // Writers write a temporary name and rename, as the contract asks.
  void Drop(const std::string& g, const std::string& name, const json& body) {
    auto tmp = Tasks(g) / (name + ".tmp");
    WriteFile(tmp, body.dump());
    fs::rename(tmp, Tasks(g) / name);
  }
  ProcessResult Dropq(std::vector<std::string> args, int timeout_ms = 60'000) {
    args.insert(args.begin(), DROPQ_BINARY);
    args.push_back("--config");
    args.push_back(config.string());
    return RunProcess(args, scratch, timeout_ms);
  }
  ProcessResult RunOnce() { return Dropq({"run", "--once"}); }
  json Result(const std::string& g, const std::string& name) const { return json::parse(ReadFile(Results(g) / name)); }
  fs::path Database() const { return Var() / "store/dropq.db"; }
  // True once `sql` answers something other than nothing or "0", woken by
  // each commit; false after timeout_ms.
  bool WaitForRow(const std::string& sql, int timeout_ms = 30'000) const {
    return WaitForStore(
        Database(),
        [&](Store* store) {
          if (store == nullptr) return false;
          std::string v = Query(sql);
          return !v.empty() && v != "0";
        },
        timeout_ms);
  }
  // The daemon with this pid has made the root, is watching every group's
  // tasks/ and has scanned them: its `ready` event.
  bool WaitReady(pid_t pid, int timeout_ms = 30'000) const {
    return WaitForRow(
        "SELECT count(*) FROM job_events WHERE event='ready' AND json_extract(detail, '$.pid')=" + std::to_string(pid),
        timeout_ms);
  }
  // The port of the dashboard the daemon with this pid serves, read from
  // its `ready` event (`<scheme>://127.0.0.1:<port>/`); 0 when it names none.
  int DashboardPort(pid_t pid, const std::string& scheme) const {
    const std::string url = Query(
        "SELECT json_extract(detail, '$.dashboard') FROM job_events WHERE event='ready' "
        "AND json_extract(detail, '$.pid')=" +
        std::to_string(pid));
    const std::string prefix = scheme + "://127.0.0.1:";
    if (url.rfind(prefix, 0) != 0 || url.back() != '/') return 0;
    const std::string digits = url.substr(prefix.size(), url.size() - prefix.size() - 1);
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoi(digits);
  }
  // Job `id` has started an attempt (its `started` event).
  bool WaitStarted(std::int64_t id, int timeout_ms = 30'000) const {
    return WaitForRow("SELECT count(*) FROM job_events WHERE event='started' AND job_id=" + std::to_string(id),
                      timeout_ms);
  }
  // The control file `file` that group `g` dropped was applied (its
  // `applied` event, committed with what it changed).
  bool WaitApplied(const std::string& g, const std::string& file, int timeout_ms = 30'000) const {
    return WaitForRow("SELECT count(*) FROM job_events WHERE event='applied' AND group_folder='" + g +
                          "' AND json_extract(detail, '$.file')='" + file + "'",
                      timeout_ms);
  }
  // One value from the database, through the sqlite3 C API as a user's
  // sqlite3 shell would see it.
  std::string Query(const std::string& sql) const { return QueryOne(Var() / "store/dropq.db", sql); }
};

// A daemon running in the background for the length of a test.
struct Daemon {
  Root& r;
  pid_t pid;
  explicit Daemon(Root& root) : r(root), pid(Start(root)) {}
  static pid_t Start(Root& root) {
    // Its own output folder: Root::Dropq captures into root.scratch.
    fs::create_directories(root.dir / "daemon");
    return StartProcess({DROPQ_BINARY, "run", "--config", root.config.string()}, root.dir / "daemon");
  }
  ~Daemon() {
    ::kill(pid, SIGTERM);
    WaitProcess(pid, 30'000);
  }
};

}  // namespace dropq::testing
