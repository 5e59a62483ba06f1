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
  // The earliest future run_at among queued jobs whose group could otherwise
  // start one; nullopt when nothing waits on time.
  std::optional<TimeMs> NextWakeup() const;

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
