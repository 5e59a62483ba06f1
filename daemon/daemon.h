#pragma once
// The daemon: one libuv loop that owns the SQLite writer and wires the
// watcher, the dispatcher, the attempt lifecycle and the runner together
// (docs/DESIGN.md):
//   fs event → Ingestor::Flush (one transaction: the jobs, and the starts of
//              those that can start at once) → Attempts::Launch
//   Pump → Store::StartAttempt → Attempts::Launch → (snapshots written) → Runner::Start
//   Runner done → Attempts::Exited → DecideEnd → result file (thread pool)
//              → Pump: Store::FinishAttempt (+ retry) and the starts it made
//              possible, in one transaction
// Control files are applied by ControlCommands (daemon/commands.h).
// Nothing polls: the loop sleeps in epoll until a file event, a child's
// output or exit, a signal, or the one timer armed at the earliest run_at.
#include <memory>
#include <string>

#include "config/config.h"
#include "jobs/job.h"

namespace dropq::runner {
class Runtime;
}

namespace dropq::app {

// Told what the loop does, on the loop thread (run --once's progress line).
// Each call must be quick and must not throw.
class DaemonObserver {
 public:
  virtual ~DaemonObserver() = default;
  virtual void JobsQueued(std::size_t /*n*/) {}
  virtual void JobStarted(JobId /*id*/) {}
  // An attempt ended; `final` when the job reached its final state (not a
  // retry, not requeued by a shutdown).
  virtual void AttemptEnded(JobId /*id*/, JobState /*state*/, bool /*final*/) {}
};

struct DaemonOptions {
  // Ingest what is there, run every job that is ready, exit when no job is
  // running and none is ready (jobs waiting on a future run_at stay queued).
  bool once = false;
  DaemonObserver* observer = nullptr;  // not owned; may be null
};

// The runtime the config names (bwrap, process, docker, podman, container),
// not yet checked: the daemon and `dropq doctor` build it the same way.
// `instance_id` (Store::InstanceId) labels the containers of docker, podman
// and container and limits their orphan clean-up to this root's; empty: no
// label, and CleanupOrphans refuses.
std::unique_ptr<runner::Runtime> MakeRuntime(const Config& cfg, const std::string& instance_id);

// Runs until SIGINT/SIGTERM (or, with once, until done). Returns the process
// exit code: 0 on a clean stop, 1 when start-up failed (the reason is logged).
int RunDaemon(const Config& config, const DaemonOptions& options);

}  // namespace dropq::app
