#pragma once
// Messages agents send through data/ipc/<group>/messages/ (docs/FILES.md,
// "Message files"): the messages/ kind of the drop-folder pipeline
// (watcher/drop_folder.h), which collects names, claims them into
// data/claimed/<group>/messages/, rejects and reconciles. What is the
// inbox's own is what a message file becomes:
//   1. claim (the pipeline)
//   2. read (no links, no FIFOs, size cap), parse, authorise
//   3. BEGIN; per message a `messages` row (pending) and a `message` audit
//      event whose detail carries the claim token, per refused file its
//      `rejected` row (and, when it parsed, a `messages` row `rejected`);
//      COMMIT — one transaction per pass, as for job files
//   4. refused files to data/ipc/errors/ beside their reason (the pipeline)
//   5. deliver (outbox line or on_message hook) OFF the loop, on libuv's
//      thread pool; back on the loop, delivery_state becomes delivered or
//      failed (+ error), and the claimed file is removed
// Deliveries go one at a time, in the order messages were recorded (by
// id, across groups): a consumer sees them in order, and a slow hook holds
// at most one pool thread.
//
// Crashes: before 3, the claimed file is handled afresh by Reconcile() at
// the next start. After 3, Reconcile() finds the claim token in the
// `message` event: a message still `pending` is delivered then (so a crash
// between delivery and its record delivers it twice — at least once, never
// lost; every delivery carries the message `id` so a consumer can drop the
// repeat), one already delivered or failed just has its file removed.
// StopDelivering() (shutdown) lets the delivery in flight finish and be
// recorded; those still waiting stay pending, their files claimed, for the
// next start.
//
// Lifecycle (libuv's rule): the loop must run until no delivery is in flight
// (in_flight() false) before the inbox is destroyed.
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "jobs/layout.h"
#include "jobs/messages.h"
#include "jobs/store.h"
#include "watcher/authorize.h"
#include "watcher/claim.h"
#include "watcher/drop_folder.h"
#include "watcher/job_file.h"

namespace dropq {

// Runs a host hook (the on_message and on_finish commands): argv, never a
// shell, with a small environment (PATH, HOME, LANG), `input` on stdin, its
// process group killed after timeout_ms. Ok when it exits 0; otherwise an
// error that names `what` and quotes the tail of its stderr. `output`, when
// given, receives the tail of its stdout and stderr as text (base/text.h).
Status RunHook(const std::string& what, const std::vector<std::string>& argv, const std::string& input,
               std::int64_t timeout_ms, std::string* output = nullptr);

// What a hook printed (or an on_finish URL answered), as it is quoted in
// errors, events and logs: the last 200 bytes, trailing newlines dropped,
// as one log line (text::ForLog), so a hook cannot forge log lines.
std::string HookOutputTail(std::string_view bytes);

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
  // Called on the loop once a delivery's outcome is recorded (the daemon's
  // `--once` looks again whether anything is left).
  std::function<void()> after_delivery;
};

class MessageInbox {
 public:
  // Deliveries run on `loop`'s thread pool.
  MessageInbox(uv_loop_t* loop, Store& store, const Layout& layout, MessageOptions options, const Clock& clock);

  // A group was registered (or the set changed): authorisation and scans use
  // the new list from now on.
  void SetGroups(std::vector<watcher::GroupIdentity> groups) { folder_.SetGroups(std::move(groups)); }

  // The pipeline's messages/ folder (the watcher adds names to it).
  watcher::DropFolder& folder() { return folder_; }
  // Notes that messages/<name> of `group` may hold a new file. Names not
  // ending in ".json", hidden names and names with a '/' are ignored.
  void Add(const std::string& group, const std::string& name) { folder_.Add(group, name); }
  // Adds every *.json currently in each group's messages/.
  void ScanAll() { folder_.ScanAll(); }
  // Start-up: finishes what a crash interrupted in data/claimed/<g>/messages/
  // (see above); messages to deliver again are queued in id order. Call
  // before the first Flush().
  Status Reconcile();
  // Files to take in, or messages not yet delivered.
  bool pending() const { return folder_.pending() || in_flight_ || !waiting_.empty(); }
  bool in_flight() const { return in_flight_; }

  // Steps 1-4 for everything pending, and queues the deliveries. On a store
  // error the files stay claimed and are tried again on the next Flush().
  Status Flush();
  // Shutdown: starts no more deliveries (see above).
  void StopDelivering();

  struct Stats {
    std::uint64_t delivered = 0, failed = 0, rejected = 0;
  };
  const Stats& stats() const { return stats_; }

  // data/claimed/<group>/messages/
  std::filesystem::path ClaimedDir(const std::string& group) const { return folder_.ClaimedDir(group); }

  using Message = dropq::Message;

 private:
  // A recorded message on its way out, and the claimed file it came from.
  struct Delivery {
    Message message;
    watcher::ClaimedFile file;
    bool again = false;  // a start-up redelivery (its `reconciled` row follows)
  };
  struct Refused {
    watcher::Rejection rejection;
    std::optional<watcher::MessageCommand> parsed;
  };
  struct Work;  // one delivery on the pool
  void Examine(const watcher::ClaimedFile& f, std::vector<Delivery>& accepted, std::vector<Refused>& refused);
  void StartNext();
  static void DeliverOnPool(uv_work_t* req);
  static void Delivered(uv_work_t* req, int status);
  // Records a delivery's outcome and removes its file.
  void Finish(const Delivery& d, const Status& outcome);

  uv_loop_t* loop_;
  Store& store_;
  MessageStore messages_;
  const Layout& layout_;
  MessageOptions options_;
  const Clock& clock_;
  watcher::DropFolder folder_;
  std::deque<Delivery> waiting_;  // recorded, in id order, not yet started
  bool in_flight_ = false;
  bool stopping_ = false;
  Stats stats_;
};

}  // namespace dropq
