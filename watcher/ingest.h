#pragma once
// Turning dropped files into queued jobs, durably and exactly once
// (docs/DESIGN.md, "Ingest").
//
// Names noticed by the watcher (or a scan) are collected with Add(); Flush()
// handles every pending name in ONE transaction (group commit):
//   1. claim: rename tasks/<name> into data/claimed/<group>/ (watcher/claim.h)
//   2. read (no links, no FIFOs, size cap), parse and validate, authorise
//   3. BEGIN; insert each job + `received` event, each rejection's audit row;
//      COMMIT
//   4. only after COMMIT: unlink the accepted files; move rejected ones to
//      data/ipc/errors/ beside a <name>.error.json that says why
// A name that cannot be claimed (not valid UTF-8, a control character, too
// long: DroppedNameProblem) is rejected in step 3 without being claimed and
// moved from tasks/ to errors/ in step 4. A name that is gone before it can
// be claimed, and was not claimed here lately, gets a `vanished` audit row.
// A crash before 3 leaves the file in claimed/, ingested at the next start;
// a crash between 3 and 4 leaves a file whose token is in the database,
// which Reconcile() removes without making a second job.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "watcher/authorize.h"
#include "watcher/claim.h"
#include "watcher/job_file.h"

namespace dropq::watcher {

using IngestGroup = GroupIdentity;

// Applies the control commands groups drop (cancel_job, schedule_task, ...):
// the daemon implements it. Apply runs after the batch's jobs commit, inside
// a transaction of its own that the Ingestor opens and commits together with
// the file's `applied` event (so Apply nests its writes in savepoints, never
// Begin/Commit), and must be idempotent: a crash before the file is removed
// applies it again at the next start. It returns the audit detail (JSON) of
// what it did, or InvalidArgument with the reason to reject the file (its
// writes are then rolled back and a `rejected` event recorded).
//
// It is also told of the jobs a batch queues while the batch's transaction
// is still open (Queuing), so it can record their starts in that same
// transaction: one flush from a dropped file to its running job. When that
// transaction then fails to commit, Unqueued says the jobs do not exist
// after all (nor anything Queuing recorded).
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  virtual Result<std::string> Apply(const IngestGroup& from, const ClaimedFile& file, const JobCommand& cmd) = 0;
  virtual void Queuing(const std::vector<QueuedJob>& /*jobs*/) {}
  virtual void Unqueued(const std::vector<QueuedJob>& /*jobs*/) {}
};

struct IngestOptions {
  std::vector<IngestGroup> groups;
  std::int64_t max_file_bytes = 1 << 20;
  std::int64_t default_max_attempts = 1;
  std::int64_t default_max_interruptions = kDefaultMaxInterruptions;
  // A group's queued jobs at most; files over it are rejected with the
  // reason, so one group cannot fill the queue.
  std::int64_t max_queued_per_group = 10'000;
  // A file that is not JSON (yet) and was modified less than settle_ms ago may
  // still be being written in place: it is kept claimed and read once more
  // settle_ms later, and rejected only if it still does not parse.
  std::int64_t settle_ms = 500;
};

class Ingestor {
 public:
  Ingestor(Store& store, const Layout& layout, IngestOptions options, const Clock& clock,
           CommandHandler* commands = nullptr);

  // The groups served changed (a group was registered while running).
  void SetGroups(std::vector<IngestGroup> groups) { options_.groups = std::move(groups); }

  // Notes that tasks/<name> of `group` may hold a new file. Names not ending
  // in ".json" are ignored (writers write "x.json.tmp" and rename).
  void Add(const std::string& group, const std::string& name);
  // Adds every *.json currently in each group's tasks/.
  void ScanAll();
  // Start-up: removes claimed files whose job exists, queues the others.
  Status Reconcile();
  bool pending() const { return !pending_.empty() || !claimed_.empty() || !settling_.empty(); }
  // When a file left to settle is due to be read again: ms from now (0 when
  // already due), or nullopt when none is settling.
  std::optional<std::int64_t> NextSettleDelayMs() const;

  // Ingests everything pending; returns the jobs that became queued.
  // On a store error nothing of the batch is lost: the claimed files stay in
  // claimed/ and are tried again on the next Flush().
  Result<std::vector<QueuedJob>> Flush();

  struct Stats {
    std::uint64_t accepted = 0, duplicates = 0, rejected = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Rejection {
    ClaimedFile file;
    std::string reason;
  };
  struct Accepted {
    const ClaimedFile* file;
    std::string target;
    RunRequest req;
    std::string sha256;
  };
  Result<std::vector<QueuedJob>> FlushBatch();
  void Examine(const ClaimedFile& f, TimeMs now, std::vector<Accepted>& accepted, std::vector<Rejection>& rejected,
               std::vector<std::pair<const ClaimedFile*, JobCommand>>& controls);
  const IngestGroup* FindGroup(const std::string& folder) const;
  // A file that failed to parse: true when it was left to settle.
  bool MaySettle(const ClaimedFile& f, TimeMs now);
  void MoveToErrors(const Rejection& r);
  void NoteClaimed(const std::string& group, const std::string& name);
  bool RecentlyClaimed(const std::string& group, const std::string& name) const;
  void ApplyControl(const ClaimedFile& file, const JobCommand& cmd);

  Store& store_;
  const Layout& layout_;
  IngestOptions options_;
  const Clock& clock_;
  CommandHandler* commands_;
  std::vector<std::pair<std::string, std::string>> pending_;  // (group, name) in tasks/
  std::vector<ClaimedFile> claimed_;                          // already in claimed/, not yet committed
  struct Settling {
    ClaimedFile file;
    TimeMs due;
  };
  std::vector<Settling> settling_;     // half-written files given one more look
  std::set<std::string> settled_;      // claim tokens that had it
  Stats stats_;
  static constexpr std::size_t kRecentClaims = 4096;
  std::unordered_set<std::string> recent_;  // "<group>/<name>" claimed lately
  std::deque<std::string> recent_order_;    // the same, oldest first
};

}  // namespace dropq::watcher
