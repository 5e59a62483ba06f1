#pragma once
// Which queued job runs next (docs/DESIGN.md, "Dispatch").
//
// Rules: at most `max_concurrent` jobs run at once and at most one per group
// (a group's jobs share its workspace and session, so they are serialised).
// Within a group: higher priority first, then earlier run_at, then arrival
// (id). Across groups: round-robin, starting after the group served last, so
// one busy group cannot starve another. A job whose run_at is in the future
// is not ready; NextWakeup() says when the earliest one becomes ready so the
// loop arms one timer instead of polling.
//
// Rate limits (docs/CONFIG.md, "Rate limits"): a group with one starts at
// most `max` attempts in any `period` (jobs/rate_limit.h). Each start the
// dispatcher hands out is counted, retries included; a group whose window
// is full is passed over like a busy one, so it holds no slot and blocks no
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
  Dispatcher(const Clock& clock, int max_concurrent) : clock_(clock), max_concurrent_(max_concurrent) {}

  // A job became queued (ingested, recovered or requeued for a retry).
  void Add(const QueuedJob& job);
  // A queued job left the queue without running (cancelled). False if unknown.
  bool Remove(JobId id);
  // Marks the next startable jobs running and returns them, in start order.
  std::vector<QueuedJob> TakeStartable();
  // The running job of `group` ended; its slot and the group are free again.
  void Finished(const std::string& group);
  // The start TakeStartable just gave `group` could not be recorded (the
  // turn's transaction failed): as Finished, and its rate window forgets
  // the start. The caller Adds the job back when it still exists.
  void Unstarted(const std::string& group);
  // The earliest future instant at which a queued job whose group is not
  // busy becomes startable: its run_at, or its group's rate window opening,
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

  std::size_t queued() const { return by_id_.size(); }
  int running() const { return running_; }
  bool idle() const { return by_id_.empty() && running_ == 0; }

 private:
  // Order within a group: priority desc, run_at asc, id asc.
  using Key = std::tuple<std::int64_t, TimeMs, JobId>;  // (-priority, run_at, id)
  static Key KeyOf(const QueuedJob& j) { return {-j.priority, j.run_at, j.id}; }

  struct GroupQueue {
    std::map<Key, QueuedJob> jobs;
    bool busy = false;
    std::optional<RateWindow> rate;  // set when the group has a limit
    TimeMs last_start = 0;           // when TakeStartable last started one of its jobs
  };
  // The best job of `g` that is ready now, if any.
  const QueuedJob* ReadyHead(const GroupQueue& g, TimeMs now) const;

  const Clock& clock_;
  int max_concurrent_;
  int running_ = 0;
  std::map<std::string, GroupQueue> groups_;
  std::map<JobId, Key> by_id_;
  std::map<JobId, std::string> group_of_;
  std::string last_served_;
};

}  // namespace dropq
