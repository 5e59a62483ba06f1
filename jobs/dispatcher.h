#pragma once
// Which queued job runs next (docs/DESIGN.md, "Dispatch").
//
// Rules: at most `max_concurrent` jobs run at once, and at most
// `max_concurrent_per_group` of one group (default 1: a group's jobs share
// its workspace and session, so by default they are serialised; a group
// may have its own limit). Within a group: higher priority first, then
// earlier run_at, then arrival (id). Across groups: round-robin, starting
// after the group served last, each pass giving every group with room at
// most one job, so one busy group cannot starve another even when it may
// run many at once. A job whose run_at is in the future
// is not ready; NextWakeup() says when the earliest one becomes ready so the
// loop arms one timer instead of polling.
//
// Rate limits (docs/CONFIG.md, "Rate limits"): a group with one starts at
// most `max` attempts in any `period` (jobs/rate_limit.h). Each start the
// dispatcher hands out is counted, retries included; a group whose window
// is full is passed over like a full group, so it holds no slot and blocks no
// other group, and its jobs stay queued. NextWakeup() includes the instant
// its window lets the next start through. After a restart the daemon feeds
// the attempts' start times back (RecordStart), so a restart does not reset
// a window.
//
// Pure bookkeeping: no I/O, time from the injected Clock. The store remains
// the source of truth; the daemon loads queued jobs into this at start and
// feeds it every change.
#include <cstdint>
#include <map>
#include <memory_resource>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "jobs/job.h"
#include "jobs/rate_limit.h"

namespace dropq {

struct QueuedJob {
  JobId id = 0;
  std::string group;
  std::int64_t priority = 0;
  TimeMs run_at = 0;
};

class Dispatcher {
 public:
  Dispatcher(const Clock& clock, int max_concurrent, int max_per_group = 1)
      : clock_(clock), max_concurrent_(max_concurrent), max_per_group_(max_per_group) {}

  // A job became queued (ingested, recovered or requeued for a retry).
  void Add(const QueuedJob& job);
  // A queued job left the queue without running (cancelled). False if unknown.
  bool Remove(JobId id);
  // Marks the next startable jobs running and returns them, in start order.
  std::vector<QueuedJob> TakeStartable();
  // The running job `id` ended; its slot, and its place in its group, are
  // free again. A job TakeStartable did not start (or already finished) is
  // ignored, so a stray call never frees another job's slot.
  void Finished(JobId id);
  // The start TakeStartable gave job `id` could not be recorded (the turn's
  // transaction failed): as Finished, and its group's rate window forgets
  // that start. The caller Adds the job back when it still exists.
  void Unstarted(JobId id);
  // The earliest future instant at which a queued job whose group has room
  // becomes startable: its run_at, or its group's rate window opening,
  // whichever is later; nullopt when nothing waits on time.
  std::optional<TimeMs> NextWakeup() const;

  // The group's rate limit; nullopt removes it. A changed limit starts an
  // empty window (the caller feeds the history back with RecordStart);
  // returns true when the limit changed.
  bool SetRateLimit(const std::string& group, std::optional<RateLimit> limit);
  // An attempt of `group` that started at `at` outside TakeStartable (the
  // history loaded at start-up or after a changed limit).
  void RecordStart(const std::string& group, TimeMs at);
  // The group's window at the clock's now; nullopt without a limit.
  std::optional<RateState> RateOf(const std::string& group) const;
  // Every group with a limit, and the limit.
  std::vector<std::pair<std::string, RateLimit>> RateLimits() const;

  // A reloaded config's limit (docs/CONFIG.md, "Reload"): running jobs keep
  // their slots; starts wait until fewer than `n` run.
  void SetMaxConcurrent(int n) { max_concurrent_ = n; }
  // How many jobs of one group may run at once (`max_concurrent_per_group`,
  // docs/CONFIG.md): `default_n` for every group not in `own`, which gives
  // groups their own; replaces every earlier setting. Lowered, running jobs
  // keep their slots, as with SetMaxConcurrent.
  void SetMaxPerGroup(int default_n, const std::map<std::string, int>& own = {});
  // The limit that applies to `group` now.
  int MaxPerGroupOf(const std::string& group) const;

  std::size_t queued() const { return by_id_.size(); }
  int running() const { return static_cast<int>(running_.size()); }
  // When TakeStartable took this running job: the instant its group's rate
  // window counts, and so the attempt's recorded start.
  std::optional<TimeMs> TakenAt(JobId id) const {
    auto it = running_.find(id);
    if (it == running_.end()) return std::nullopt;
    return it->second.started;
  }
  // Jobs of `group` running now.
  int RunningIn(const std::string& group) const;
  bool idle() const { return by_id_.empty() && running_.empty(); }

 private:
  // Order within a group: priority desc, run_at asc, id asc.
  using Key = std::tuple<std::int64_t, TimeMs, JobId>;  // (-priority, run_at, id)
  static Key KeyOf(const QueuedJob& j) { return {-j.priority, j.run_at, j.id}; }

  struct GroupQueue {
    explicit GroupQueue(std::pmr::memory_resource* nodes) : jobs(nodes) {}
    std::pmr::map<Key, QueuedJob> jobs;
    int running = 0;                 // its jobs TakeStartable started that have not finished
    std::optional<int> max_running;  // its own max_concurrent_per_group; nullopt: the default
    std::optional<RateWindow> rate;  // set when the group has a limit
  };
  // A running job: its group, and when TakeStartable started it (for
  // Unstarted to take back exactly that start from the rate window).
  struct Running {
    std::string group;
    TimeMs started = 0;
  };
  // The best job of `g` that is ready now, if any.
  const QueuedJob* ReadyHead(const GroupQueue& g, TimeMs now) const;
  GroupQueue& Group(const std::string& name);
  // The last queued job left: every node of the pool is free.
  void ReleaseIfEmpty();
  bool Full(const GroupQueue& g) const { return g.running >= g.max_running.value_or(max_per_group_); }
  bool AtCapacity() const { return static_cast<int>(running_.size()) >= max_concurrent_; }

  const Clock& clock_;
  int max_concurrent_;
  int max_per_group_;
  std::map<JobId, Running> running_;
  // The queued jobs' nodes (three per job) come from a pool of their own,
  // in chunks, not from the heap among whatever the ingest pass that queued
  // them allocated meanwhile: a burst of 100,000 jobs otherwise left pages
  // that held a few nodes each and could not be given back
  // (docs/PERFORMANCE.md, "Memory after a burst"). Declared before the maps
  // that draw from it; given back whole when the queue empties.
  std::pmr::unsynchronized_pool_resource nodes_;
  std::map<std::string, GroupQueue> groups_;
  std::pmr::map<JobId, Key> by_id_{&nodes_};
  std::pmr::map<JobId, std::string> group_of_{&nodes_};
  std::string last_served_;
};

}  // namespace dropq
