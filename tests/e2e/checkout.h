#pragma once
// A folder laid out like a checkout after `make` (examples/<config>, build/
// with the real binary and agents, the example jobs dropped as `make run`
// does on a fresh root), for the tests that run README's and the examples'
// commands as a user would.
#include <signal.h>

#include "jobs/wait.h"
#include "tests/e2e/e2e_root.h"

namespace dropq::testing {

// The root is ./var.
struct Checkout {
  TempDir dir;
  fs::path scratch = dir / "scratch";
  std::string config;  // examples/<config>
  explicit Checkout(const std::string& config_name = "dropq.yaml") : config("examples/" + config_name) {
    fs::create_directories(dir / "examples");
    fs::create_directories(scratch);
    fs::copy_file(fs::path(DROPQ_SOURCE_DIR) / config, dir / config);
    fs::create_directory_symlink(fs::path(DROPQ_BINARY).parent_path(), dir / "build");
    // As `make run` does on a fresh root.
    for (const auto& g : fs::directory_iterator(fs::path(DROPQ_SOURCE_DIR) / "examples/jobs")) {
      fs::path tasks = dir / "var/data/ipc" / g.path().filename() / "tasks";
      fs::create_directories(tasks);
      for (const auto& f : fs::directory_iterator(g.path())) fs::copy_file(f.path(), tasks / f.path().filename());
    }
  }
  ProcessResult Sh(const std::string& command) {
    // stderr into stdout, in the order a terminal shows them.
    return RunProcess(
        {"/bin/sh", "-c", "cd '" + dir.str() + "' && C='--config " + config + "'; { " + command + "\n} 2>&1"},
        scratch, 60'000);
  }
  pid_t daemon = 0;
  void StartDaemon() {
    fs::create_directories(dir / "daemon");
    daemon =
        StartProcess({"/bin/sh", "-c", "cd '" + dir.str() + "' && exec ./build/dropq run --config " + config},
                     dir / "daemon");
  }
  // SIGTERM and its exit code; 0 when no daemon runs.
  int StopDaemon() {
    if (daemon <= 0) return 0;
    ::kill(daemon, SIGTERM);
    int rc = WaitProcess(daemon, 30'000);
    daemon = 0;
    return rc;
  }
  ~Checkout() { StopDaemon(); }  // also when a REQUIRE left the test early
  // Nothing left to do: no file waiting in a tasks/, no job running or due.
  bool WaitIdle() {
    fs::path db = dir / "var/store/dropq.db";
    return WaitForStore(
        db,
        [&](Store* store) {
          if (store == nullptr) return false;
          for (const auto& g : fs::directory_iterator(dir / "var/data/ipc")) {
            if (!fs::is_directory(g.path() / "tasks")) continue;
            for (const auto& f : fs::directory_iterator(g.path() / "tasks")) {
              if (f.path().extension() == ".json") return false;
            }
          }
          // A claimed file is out of tasks/ but not yet a job.
          std::error_code ec;
          for (const auto& g : fs::directory_iterator(dir / "var/data/claimed", ec)) {
            if (!fs::is_empty(g.path(), ec)) return false;
          }
          auto counts = store->CountByState();
          if (!counts.ok()) return false;
          for (const auto& [state, n] : *counts) {
            if (state == "running" && n > 0) return false;
          }
          auto queued = store->ListQueued();
          if (!queued.ok()) return false;
          for (const auto& j : *queued) {
            if (j.run_at <= store->clock().NowMs()) return false;
          }
          return true;
        },
        30'000);
  }
};

}  // namespace dropq::testing
