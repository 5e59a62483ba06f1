#pragma once
// What the dashboard and /metrics read from SQLite, on the dashboard's own
// read-only connection (Store::OpenReadOnly), never the daemon's writer.
// Every figure that depends on "now" takes it from the injected Clock, so
// tests pin elapsed times and the per-minute chart without sleeping.
//
// Not thread-safe: the Store's statement cache is shared. The dashboard
// serialises calls with one mutex (every query here is short).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/rate_limit.h"
#include "jobs/dependencies.h"
#include "jobs/store.h"
#include "jobs/tasks.h"

namespace dropq::app {

struct GroupRow {
  std::string folder;
  std::string name;
  bool is_main = false;
};

// Jobs of one group in one state (only pairs with at least one job).
struct StateCount {
  std::string group;
  std::string state;
  std::int64_t count = 0;
};

struct RunningJob {
  JobId id = 0;
  std::string group;
  std::string prompt;
  std::int64_t attempt = 0;
  std::optional<std::string> container_name;
  TimeMs started_at = 0;
  std::int64_t elapsed_ms = 0;  // now - started_at of the running attempt
};

struct JobDetail {
  Job job;
  // What it waits (or waited) for, and what waits (or waited) for it
  // (docs/FILES.md, "Dependencies").
  std::vector<deps::Link> after;
  std::vector<deps::Link> waited_by;
  std::vector<JobRun> runs;
  std::vector<JobEvent> events;
  // The newest attempt's run log (its last kMaxLogBytes), when there is one
  // and it can be read safely; log_error says why not otherwise.
  std::optional<std::string> log;
  bool log_truncated = false;
  std::optional<std::string> log_error;
};

// Jobs that reached a final state in each minute of the last hour, oldest
// minute first; the last bucket is the current (partial) minute.
struct MinuteBucket {
  TimeMs minute = 0;  // start of the minute, UTC
  std::int64_t succeeded = 0, failed = 0, cancelled = 0;
};

// Attempts by group and job_runs.status (running ones included).
struct RunCount {
  std::string group;
  std::string status;
  std::int64_t count = 0;
};

// Finished attempts' durations, cumulative as Prometheus wants them.
struct DurationHistogram {
  static constexpr std::array<double, 12> kBoundsSeconds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
  std::array<std::int64_t, kBoundsSeconds.size()> cumulative{};  // attempts with duration <= bound
  std::int64_t count = 0;
  double sum_seconds = 0;
};

class DashboardQueries {
 public:
  static constexpr std::size_t kMaxLogBytes = 256 * 1024;
  static constexpr int kMaxJobsListed = 500;

  // `root` is dropq's root: run logs are read only from under it.
  DashboardQueries(Store& store, const Clock& clock, std::string root)
      : store_(store), clock_(clock), root_(std::move(root)), tasks_(store) {}

  Result<std::vector<GroupRow>> Groups();
  Result<std::vector<StateCount>> CountsByGroupAndState();
  Result<std::vector<RunningJob>> Running();
  // Newest first; limit is clamped to 1..kMaxJobsListed.
  Result<std::vector<Job>> Recent(const JobFilter& filter);
  // nullopt for an unknown id.
  Result<std::optional<JobDetail>> Detail(JobId id);
  Result<std::vector<Task>> Tasks();
  // 60 buckets ending with the current minute.
  Result<std::vector<MinuteBucket>> FinishedPerMinute();
  Result<std::vector<RunCount>> RunsByGroupAndStatus();
  Result<DurationHistogram> RunDurations();
  // Queued jobs whose run_at has come (ready to start), by group.
  Result<std::vector<std::pair<std::string, std::int64_t>>> ReadyByGroup();

  const Clock& clock() const { return clock_; }
  Store& store() { return store_; }

 private:
  void ReadLog(JobDetail& d);

  Store& store_;
  const Clock& clock_;
  std::string root_;
  TaskStore tasks_;
};

// A group's rate limit and its window now (docs/CONFIG.md, "Rate limits"),
// as `status`, the dashboard and /metrics show it.
struct GroupRate {
  std::string group;
  RateLimit limit;
  RateState state;
};
// The window of each group in `limits` at `now`, counted from the attempts'
// start times in the database, as the daemon rebuilds it after a restart:
// one indexed read of the starts in the longest period. In `limits` order.
Result<std::vector<GroupRate>> LoadRateStates(Store& store, const std::vector<std::pair<std::string, RateLimit>>& limits,
                                              TimeMs now);

// A group's display name (its folder when it has none) and when its newest
// job was made, for main's available_groups.json (runner/snapshots.cc).
struct GroupActivity {
  std::string name;
  std::optional<std::string> last_activity;  // ISO-8601 text as stored
};
Result<GroupActivity> LoadGroupActivity(Store& store, const std::string& folder);

}  // namespace dropq::app
