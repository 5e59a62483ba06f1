#pragma once
// Watching each group's drop folders — tasks/, and messages/ when a
// MessageInbox is given — with libuv (inotify on Linux, FSEvents/kqueue on
// macOS) and feeding names to their drop folders (watcher/drop_folder.h).
//
// Events only add names; the batch is taken in from a uv_idle callback, so
// every file noticed in one loop turn commits in one transaction (group
// commit). A slow safety rescan (default once a minute) catches anything an
// overflowing event queue dropped; nothing else wakes the loop when idle.
//
// Lifecycle (libuv's rule): Start() initialises the handles; Close() closes
// every one of them, and the loop must run until their close callbacks have
// fired before the Watcher is destroyed.
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "watcher/drop_folder.h"
#include "watcher/ingest.h"
#include "watcher/messages.h"

namespace dropq::watcher {

class Watcher {
 public:
  using JobsCallback = std::function<void(std::vector<QueuedJob>)>;

  // `messages`, when given, is flushed in the same idle pass as the jobs'
  // ingest, just before it.
  //
  // Without `request_pass` the watcher runs each pass itself, in a
  // transaction of its own, and hands the queued jobs to `on_jobs`. With it
  // (`on_jobs` is then unused and may be empty),
  // the pass belongs to the owner of the loop turn's transaction (the
  // daemon): Kick() calls `request_pass`, and the owner runs TakePass(),
  // FlushMessages() before its BEGIN, Ingestor::Stage() inside it, then
  // Ingestor::Settle() or Abandon() and PassDone() after its COMMIT.
  Watcher(uv_loop_t* loop, const Layout& layout, Ingestor& ingestor, std::vector<std::string> groups,
          JobsCallback on_jobs, std::uint64_t rescan_ms = 60'000, MessageInbox* messages = nullptr,
          std::function<void()> request_pass = {});
  ~Watcher();

  Status Start();
  // Starts watching a group registered while running (no-op when watched).
  // Files already in its directories are found by the caller's scan.
  void AddGroup(const std::string& group);
  // Stops watching a group's folders (a reload removed it); files already
  // claimed are still ingested.
  void RemoveGroup(const std::string& group);
  // Schedules an ingest pass on the next loop turn (used after a scan).
  void Kick();
  // The turn owner's side: whether a pass was asked for since the last
  // (clearing the request), the messages' own pass, and what the ingest
  // pass came to: `failed` when the store refused it (the files stay
  // claimed and are tried again with backoff), else how many jobs it queued.
  bool TakePass();
  Status FlushMessages();
  void PassDone(const Status& failed, std::size_t queued);
  // Stops watching; pending names are dropped (they are still in tasks/ and
  // are found by the next start's scan).
  void Close();

 private:
  struct Dir {
    Watcher* self;
    std::string group;
    DropFolder* folder;  // whose names its events are
    uv_fs_event_t handle;
  };
  void WatchGroup(const std::string& group);
  static void OnFsEvent(uv_fs_event_t* h, const char* filename, int events, int status);
  static void OnIdle(uv_idle_t* h);
  static void OnRescan(uv_timer_t* h);
  static void OnRetry(uv_timer_t* h);

  uv_loop_t* loop_;
  const Layout& layout_;
  Ingestor& ingestor_;
  std::vector<std::string> groups_;
  JobsCallback on_jobs_;
  std::function<void()> request_pass_;
  bool pass_requested_ = false;
  std::uint64_t rescan_ms_;
  MessageInbox* messages_;
  std::vector<std::unique_ptr<Dir>> dirs_;
  uv_idle_t idle_{};
  uv_timer_t rescan_{};
  uv_timer_t retry_{};                // a failed ingest again, or a settling file's second look
  std::uint64_t retry_delay_ms_ = 0;  // current backoff after failed ingests; 0 when the last one worked
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace dropq::watcher
