#pragma once
// Snapshots written off the loop (docs/DESIGN.md, "Off the loop").
//
// current_tasks.json lists every task for main, so one write is O(tasks): with
// 20,000 active tasks it held the loop for about 180 ms before each run, and
// the scheduler's timer fired that late (docs/PERFORMANCE.md). The writer runs
// WriteSnapshots on libuv's thread pool with a read-only connection of its
// own (WAL: it reads what is committed, without blocking the writer), one
// write at a time; requests made while one runs are folded into one more
// write after it. Agents still see current snapshots: the daemon starts an
// attempt only once the writes requested before it have finished
// (WhenWritten). A write that took under 5 ms of CPU last time is done on
// the loop instead, through the daemon's own connection: for a few tasks the
// trip to the pool and back costs more than it saves (drop -> agent started).
#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/layout.h"
#include "base/status.h"
#include "jobs/store.h"
#include "watcher/authorize.h"

namespace dropq::app {

class SnapshotWriter {
 public:
  // `store` is the loop's own connection, for the writes done on the loop;
  // a write that took less CPU than `on_loop_under_cpu_us` last time is done
  // on the loop (0: always on the pool).
  SnapshotWriter(uv_loop_t* loop, const Layout& layout, Store& store, std::string db_path, const Clock& clock,
                 std::int64_t on_loop_under_cpu_us = 5'000);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // The snapshots of `groups` are stale: they are written now on the loop
  // when that is cheap, else a write starts on the pool (after the running
  // one, if any; several requests meanwhile make one write).
  void Request(std::vector<watcher::GroupIdentity> groups);
  // Runs `fn` on the loop once every write requested so far has finished: at
  // once when none is running or waiting.
  void WhenWritten(std::function<void()> fn);
  // Writes on the calling thread through `store` (start-up, refresh_groups),
  // never at the same time as a write on the pool.
  Status WriteNow(Store& store, const std::vector<watcher::GroupIdentity>& groups,
                  const std::optional<std::string>& only = std::nullopt, bool refresh = false);
  // The last pool write failed (logged): the snapshots may be stale.
  bool failed() const { return failed_; }
  // A write is running or waiting (the loop stays alive until it is done).
  bool busy() const { return running_; }

 private:
  void Start();
  Status Timed(Store& store, const std::vector<watcher::GroupIdentity>& groups, const std::optional<std::string>& only,
               bool refresh);
  static void Work(uv_work_t* req);
  static void After(uv_work_t* req, int status);

  uv_loop_t* loop_;
  const Layout& layout_;
  Store& store_;
  std::string db_path_;
  const Clock& clock_;
  std::mutex write_mu_;            // held while snapshot files are written
  std::unique_ptr<Store> reader_;  // opened on first use; one pool thread at a time
  uv_work_t work_{};
  bool running_ = false, failed_ = false;
  std::int64_t on_loop_under_cpu_us_;
  std::int64_t last_cpu_us_ = 0;                             // CPU the last whole write took
  std::vector<watcher::GroupIdentity> current_;              // what the running write writes
  std::optional<std::vector<watcher::GroupIdentity>> next_;  // requested while it runs
  Status status_;                                            // of the running write
  std::vector<std::function<void()>> after_current_, after_next_;
};

}  // namespace dropq::app
