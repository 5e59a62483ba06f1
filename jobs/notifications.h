#pragma once
// The outbox of completion hooks (`on_finish`, docs/CONFIG.md; table
// `notifications`, docs/SCHEMA.md): the SQL of daemon/notifier.h.
//
// A delivery is one row from the moment its job's final state is recorded
// (Enqueue, inside that same transaction: a crash can neither lose it nor
// make two) until it is delivered or given up; each try's outcome is an
// audit row in job_events (`notified`, `notify_failed`) committed with the
// row's change. The row holds the target and the payload, so nothing is
// needed from the config or the result file to try it again after a
// restart.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "jobs/job.h"
#include "jobs/store.h"

namespace dropq {

struct Notification {
  std::int64_t id = 0;
  JobId job_id = 0;
  std::string group;
  std::string target;  // JSON: {"command": [argv...]} or {"url": "..."}
  std::int64_t timeout_ms = 0;
  std::int64_t max_attempts = 1;
  std::string payload;        // what the target receives: the job's result file
  std::int64_t attempts = 0;  // tries made so far
  TimeMs next_try_at = 0;
  std::optional<std::string> last_error;
};

// The wait before try `attempts + 1`, after `attempts` failed tries (>= 1):
// 1 s, 2 s, 4 s, ... doubling, capped at 10 minutes. No jitter: deliveries
// go one at a time, so they cannot stampede a target.
std::int64_t NotifyBackoffMs(std::int64_t attempts);

class NotificationStore {
 public:
  explicit NotificationStore(Store& store) : store_(store) {}

  // A pending delivery due at `due`, in the caller's transaction (the one
  // that makes its job final); sets n.id.
  Status Enqueue(Notification& n, TimeMs due);
  // The pending delivery due first, if any (whatever its time).
  Result<std::optional<Notification>> NextDue();
  // How many are pending.
  Result<std::int64_t> CountPending();

  // The outcome of try n.attempts + 1, with its audit row, in one
  // transaction of its own. Delivered: the row goes, with a `notified`
  // event. Failed: `notify_failed` with the reason and either the next try
  // (NotifyBackoffMs later) or, when that was the last of max_attempts,
  // gave_up (the row goes). Returns the next try's time when there is one.
  Result<std::optional<TimeMs>> RecordTry(const Notification& n, const Status& outcome, TimeMs now);

 private:
  Store& store_;
};

}  // namespace dropq
