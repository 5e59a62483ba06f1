#pragma once
// The daemon: one libuv loop that owns the SQLite writer and wires the
// watcher, the dispatcher and the runner together (docs/DESIGN.md in short):
//   fs event → Ingestor::Flush (one transaction) → Dispatcher::Add → Pump
//   Pump → Store::StartAttempt → Runner::Start → ... → OnDone
//   OnDone → Store::FinishAttempt (+ retry) → result file → Pump
// Nothing polls: the loop sleeps in epoll until a file event, a child's
// output or exit, a signal, or the one timer armed at the earliest run_at.
#include <string>

#include "app/config.h"

namespace dropq::app {

struct DaemonOptions {
  // Ingest what is there, run every job that is ready, exit when no job is
  // running and none is ready (jobs waiting on a future run_at stay queued).
  bool once = false;
};

// Runs until SIGINT/SIGTERM (or, with once, until done). Returns the process
// exit code: 0 on a clean stop, 1 when start-up failed (the reason is logged).
int RunDaemon(const Config& config, const DaemonOptions& options);

}  // namespace dropq::app
