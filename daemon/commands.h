#pragma once
// Control commands (docs/FILES.md, "Control files"): what the daemon does
// with a control file the watcher has claimed, parsed and handed over.
// Authorisation is watcher/authorize.h's table; each command is idempotent
// (a crash before the file's removal applies it again at the next start).
// Returns the audit detail of what was done, or the reason to reject.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/status.h"
#include "daemon/attempts.h"
#include "daemon/dependencies.h"
#include "daemon/groups.h"
#include "daemon/task_timer.h"
#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "runner/snapshot_writer.h"
#include "watcher/ingest.h"

namespace dropq::app {

class ControlCommands {
 public:
  // What the commands act on: the daemon's parts, owned by the daemon.
  struct Parts {
    Store& store;
    const Layout& layout;
    const Clock& clock;
    Groups& groups;
    Dispatcher& dispatcher;
    TaskTimer& tasks;
    Attempts& attempts;
    SnapshotWriter& snapshots;
    Dependencies& deps;
  };
  struct Hooks {
    std::function<void()> snapshots_changed;  // tasks or groups changed: rewrite the snapshots
    std::function<void()> queue_changed;      // a job was queued: the pump may start it
    // A group's directories, before it is registered.
    std::function<Status(const std::string& folder)> prepare_group;
    // A group was registered (committed): serve it. Called during the
    // ingest pass that applied the command; the daemon defers the work.
    std::function<void(const GroupConfig& group)> group_registered;
    // A queued job was cancelled (its final state): in the transaction that
    // records it, before its commit (the on_finish outbox row).
    std::function<Status(const Job& job, const RunOutcome& outcome)> finished;
  };

  ControlCommands(Parts parts, Hooks hooks) : p_(parts), hooks_(std::move(hooks)) {}

  Result<std::string> Apply(const watcher::IngestGroup& from, const watcher::ClaimedFile& file,
                            const watcher::JobCommand& cmd);

  // Cancelling is idempotent: a queued job is cancelled at once, a running
  // one is stopped (graceful, then kill) and recorded cancelled when it
  // ends, a finished one is left as it is. Also the task timer's
  // `overlap: replace`.
  Result<std::string> CancelJob(const Job& job, nlohmann::json detail);

 private:
  Result<std::string> RetryJob(const Job& job, nlohmann::json detail);
  Result<std::string> RegisterGroup(const watcher::IngestGroup& from, const watcher::JobCommand& command,
                                    const watcher::RegisterGroup& cmd);
  Result<std::string> RefreshGroups(const watcher::IngestGroup& from, const watcher::JobCommand& cmd);
  std::optional<Result<std::string>> ApplyTaskCommand(const watcher::IngestGroup& from,
                                                      const watcher::ClaimedFile& file, const watcher::JobCommand& cmd);

  Parts p_;
  Hooks hooks_;
};

}  // namespace dropq::app
