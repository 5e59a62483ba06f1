#pragma once
// Messages agents send through data/ipc/<group>/messages/ (docs/FILES.md,
// "Message files"), recorded in the `messages` table and delivered.
//
// Names noticed by the watcher (or a scan) are collected with Add(); Flush()
// handles each pending file on its own, in the order of the job-file ingest
// (watcher/ingest.h):
//   1. claim: rename messages/<name> into data/claimed/<group>/messages/
//      (a subdirectory, so the job Ingestor's start-up reconciliation never
//      mistakes a message for a job file)
//   2. read (no links, no FIFOs, size cap), parse, authorise
//   3. BEGIN; a `messages` row (pending) and a `message` audit event whose
//      detail carries the claim token; COMMIT
//   4. deliver (outbox line or on_message hook); delivery_state becomes
//      delivered or failed (+ error)
//   5. unlink the claimed file
// A refused or invalid file is moved to data/ipc/errors/ beside its reason,
// with a `rejected` audit row (and, when it parsed, a `messages` row in state
// `rejected`).
//
// Crashes: before 3, the claimed file is handled afresh by Reconcile() at the
// next start. After 3, Reconcile() finds the claim token in the `message`
// event: a message still `pending` is delivered then (so a crash between
// delivery and the state update delivers it twice — at least once, never
// lost; every delivery carries the message `id` so a consumer can drop the
// repeat), one already delivered or failed just has its file removed.
//
// Delivery runs synchronously on the caller's thread: the outbox append is a
// write and an fsync; the hook is bounded by `hook_timeout_ms`.
#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/layout.h"
#include "base/status.h"
#include "jobs/store.h"
#include "watcher/authorize.h"
#include "watcher/claim.h"
#include "watcher/job_file.h"

namespace dropq {

struct MessageOptions {
  std::vector<watcher::GroupIdentity> groups;
  // The on_message hook: an argv (never a shell) run with the message JSON
  // on stdin. Empty: append the JSON as one line to <root>/outbox/<group>.jsonl,
  // <group> being the folder of the group whose chat the message is for.
  std::vector<std::string> on_message;
  // JSON escapes can double the text's size (a text of 64 KiB of newlines
  // is 128 KiB of JSON); the text's own limit is checked by the parser.
  std::int64_t max_file_bytes = 2 * static_cast<std::int64_t>(watcher::kMaxMessageTextBytes) + 4096;
  int hook_timeout_ms = 10'000;
};

class MessageInbox {
 public:
  MessageInbox(Store& store, const Layout& layout, MessageOptions options, const Clock& clock);

  // A group was registered (or the set changed): authorisation and scans use
  // the new list from now on.
  void SetGroups(std::vector<watcher::GroupIdentity> groups) { options_.groups = std::move(groups); }

  // Notes that messages/<name> of `group` may hold a new file. Names not
  // ending in ".json", hidden names and names with a '/' are ignored.
  void Add(const std::string& group, const std::string& name);
  // Adds every *.json currently in each group's messages/.
  void ScanAll();
  // Start-up: finishes what a crash interrupted in data/claimed/<g>/messages/
  // (see above). Call before the first Flush().
  Status Reconcile();
  bool pending() const { return !pending_.empty() || !claimed_.empty(); }

  // Handles everything pending. On a store error the claimed files stay and
  // are tried again on the next Flush(); the first such error is returned.
  Status Flush();

  struct Stats {
    std::uint64_t delivered = 0, failed = 0, rejected = 0;
  };
  const Stats& stats() const { return stats_; }

  // data/claimed/<group>/messages/
  std::filesystem::path ClaimedDir(const std::string& group) const;

  // A recorded message: `from` sent it, `to` is the folder of the group whose
  // chat `chat_jid` is.
  struct Message {
    std::int64_t id = 0;
    std::string from, to, chat_jid, text;
    TimeMs created_at = 0;
  };

 private:
  const watcher::GroupIdentity* FindGroup(const std::string& folder) const;
  // Steps 2-5 for one claimed file; a store error leaves the file claimed.
  Status Handle(const watcher::ClaimedFile& f);
  Status Reject(const watcher::ClaimedFile& f, const std::string& reason,
                const watcher::MessageCommand* parsed);
  // Delivers a recorded message and records the outcome (delivered or
  // failed); the Status is the store's, a failed delivery is not an error.
  Status Deliver(const Message& m);
  void MoveToErrors(const watcher::ClaimedFile& f, const std::string& reason);

  Store& store_;
  const Layout& layout_;
  MessageOptions options_;
  const Clock& clock_;
  std::vector<std::pair<std::string, std::string>> pending_;  // (group, name) in messages/
  std::vector<watcher::ClaimedFile> claimed_;                 // claimed, not yet committed
  Stats stats_;
};

}  // namespace dropq
