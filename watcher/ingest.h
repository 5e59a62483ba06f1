#pragma once
// Turning dropped files into queued jobs, durably and exactly once
// (docs/DESIGN.md, "Ingest"): the tasks/ kind of the drop-folder pipeline
// (watcher/drop_folder.h), which collects names, claims, rejects and
// reconciles; what is the Ingestor's own is what a job file becomes.
//
// Flush() handles every pending name in ONE transaction (group commit):
//   1. claim: rename tasks/<name> into data/claimed/<group>/ (the pipeline)
//   2. read (no links, no FIFOs, size cap), parse and validate, authorise
//   3. BEGIN; insert each job + `received` event, each rejection's audit row,
//      each vanished name's; COMMIT
//   4. only after COMMIT: unlink the accepted files; move rejected ones to
//      data/ipc/errors/ beside a <name>.error.json that says why
// A name that cannot be claimed (DroppedNameProblem) is rejected in step 3
// without being claimed and moved from tasks/ to errors/ in step 4. A name
// that is gone before it can be claimed gets a `vanished` audit row.
// A crash before 3 leaves the file in claimed/, ingested at the next start;
// a crash between 3 and 4 leaves a file whose token is in the database,
// which Reconcile() removes without making a second job.
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "watcher/authorize.h"
#include "watcher/claim.h"
#include "watcher/drop_folder.h"
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
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  virtual Result<std::string> Apply(const IngestGroup& from, const ClaimedFile& file, const JobCommand& cmd) = 0;
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
  void SetGroups(std::vector<IngestGroup> groups) { folder_.SetGroups(std::move(groups)); }
  // A reloaded config's limits for the files ingested from now on (groups
  // and settle_ms are left as they are).
  void SetLimits(const IngestOptions& o) {
    options_.max_file_bytes = o.max_file_bytes;
    options_.default_max_attempts = o.default_max_attempts;
    options_.default_max_interruptions = o.default_max_interruptions;
    options_.max_queued_per_group = o.max_queued_per_group;
  }

  // The pipeline's tasks/ folder (the watcher adds names to it).
  DropFolder& folder() { return folder_; }
  // Notes that tasks/<name> of `group` may hold a new file. Names not ending
  // in ".json" are ignored (writers write "x.json.tmp" and rename).
  void Add(const std::string& group, const std::string& name) { folder_.Add(group, name); }
  // Adds every *.json currently in each group's tasks/.
  void ScanAll() { folder_.ScanAll(); }
  // Start-up: removes claimed files whose job exists, queues the others.
  Status Reconcile();
  bool pending() const { return folder_.pending() || !settling_.empty(); }
  // When a file left to settle is due to be read again: ms from now (0 when
  // already due), or nullopt when none is settling.
  std::optional<std::int64_t> NextSettleDelayMs() const;

  // An ingest pass in two halves around a transaction the caller owns (the
  // daemon's turn, docs/DESIGN.md "One loop"). Stage() claims and reads
  // what is pending and writes its rows inside the open transaction, under
  // a savepoint of its own: on a store error the savepoint is undone, the
  // files are given back for the next pass and the error is returned (the
  // caller's other writes stand). staged() are the jobs it queued. After
  // the caller's COMMIT, Settle() removes the accepted files, moves the
  // rejected ones to errors/, applies the control files and returns the
  // queued jobs; when the commit failed, Abandon() gives the files back.
  Status Stage();
  const std::vector<QueuedJob>& staged() const;
  // The staged jobs that wait for others (not in `staged()`): the daemon
  // settles them in the same transaction (daemon/dependencies.h).
  std::vector<JobId> staged_waiting() const { return staged_ ? staged_->waiting : std::vector<JobId>(); }
  std::vector<QueuedJob> Settle();
  void Abandon();
  // Stage, commit and settle in a transaction of its own (tests, tools).
  // On a store error nothing of the batch is lost: the claimed files stay in
  // claimed/ and are tried again on the next pass.
  Result<std::vector<QueuedJob>> Flush();

  struct Stats {
    std::uint64_t accepted = 0, duplicates = 0, rejected = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Accepted {
    const ClaimedFile* file;
    std::string target;
    RunRequest req;
    std::string sha256;
  };
  // What became of an accepted file: its job, or the earlier job it repeats.
  struct Inserted {
    JobId id = 0;
    bool duplicate = false;
    JobState state = JobState::kQueued;
    const char* by = nullptr;  // a duplicate: "id" or "unique_key"
  };
  // The result file of a file that made no job (docs/FILES.md, "Unique
  // jobs"): named after it, saying which job it repeats.
  void WriteDuplicateResult(const Accepted& a, const Inserted& ins);
  Status StageBatch();
  void UndoSavepoint();
  void Examine(const ClaimedFile& f, TimeMs now, std::vector<Accepted>& accepted, std::vector<Rejection>& rejected,
               std::vector<std::pair<const ClaimedFile*, JobCommand>>& controls);
  // A file that failed to parse: true when it was left to settle.
  bool MaySettle(const ClaimedFile& f, TimeMs now);
  void ApplyControl(const ClaimedFile& file, const JobCommand& cmd);

  Store& store_;
  const Layout& layout_;
  IngestOptions options_;
  const Clock& clock_;
  CommandHandler* commands_;
  DropFolder folder_;
  struct Settling {
    ClaimedFile file;
    TimeMs due;
  };
  std::vector<Settling> settling_;  // half-written files given one more look
  std::set<std::string> settled_;   // claim tokens that had it
  // A pass staged inside the caller's transaction, waiting for its commit.
  struct Staged {
    std::vector<ClaimedFile> batch;
    std::vector<Rejection> bad_names;
    std::vector<Accepted> accepted;  // point into batch
    std::vector<Inserted> inserted;  // per accepted file
    std::vector<Rejection> rejected;
    std::vector<std::pair<const ClaimedFile*, JobCommand>> controls;
    std::vector<QueuedJob> queued;
    std::vector<JobId> waiting;  // new jobs that wait for others
  };
  std::optional<Staged> staged_;
  bool savepoint_ = false;  // the ingest savepoint is open
  Stats stats_;
};

}  // namespace dropq::watcher
