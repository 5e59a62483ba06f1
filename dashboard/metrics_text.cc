#include "dashboard/metrics_text.h"

#include <charconv>
#include <map>
#include <set>

namespace dropq::app {
namespace {

constexpr const char* kJobStates[] = {"waiting", "queued", "running", "succeeded", "failed", "cancelled"};
// job_runs.status values that end an attempt (running is not a finished run).
constexpr const char* kRunStatuses[] = {"succeeded", "failed", "timed_out", "lost", "cancelled"};
// The attempts that count as failures: the job's own doing, or a lost one.
constexpr const char* kFailureStatuses[] = {"failed", "timed_out", "lost"};

std::string Num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

class Writer {
 public:
  void Family(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels,
              const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += "{";
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i) out_ += ",";
        out_ += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
      }
      out_ += "}";
    }
    out_ += " " + value + "\n";
  }
  void Sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels,
              std::int64_t value) {
    Sample(name, labels, std::to_string(value));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Every configured group, plus any group that only the jobs table still
// names, so each series is there (as 0) from the start.
std::set<std::string> AllGroups(const MetricsSnapshot& m) {
  std::set<std::string> g;
  for (const auto& r : m.groups) g.insert(r.folder);
  for (const auto& r : m.jobs) g.insert(r.group);
  for (const auto& r : m.runs) g.insert(r.group);
  for (const auto& r : m.ready) g.insert(r.first);
  return g;
}

}  // namespace

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderPrometheus(const MetricsSnapshot& m) {
  Writer w;
  const auto groups = AllGroups(m);

  std::map<std::pair<std::string, std::string>, std::int64_t> jobs;
  for (const auto& r : m.jobs) jobs[{r.group, r.state}] = r.count;
  w.Family("dropq_jobs", "gauge", "Jobs in the database by group and state.");
  for (const auto& g : groups) {
    for (const char* s : kJobStates) w.Sample("dropq_jobs", {{"group", g}, {"state", s}}, jobs[{g, s}]);
  }

  std::map<std::pair<std::string, std::string>, std::int64_t> runs;
  for (const auto& r : m.runs) runs[{r.group, r.status}] = r.count;
  w.Family("dropq_job_runs_total", "counter", "Finished attempts (job_runs rows) by group and status.");
  for (const auto& g : groups) {
    for (const char* s : kRunStatuses) w.Sample("dropq_job_runs_total", {{"group", g}, {"status", s}}, runs[{g, s}]);
  }
  w.Family("dropq_job_run_failures_total", "counter", "Attempts that failed, timed out or were lost, by group.");
  for (const auto& g : groups) {
    std::int64_t n = 0;
    for (const char* s : kFailureStatuses) n += runs[{g, s}];
    w.Sample("dropq_job_run_failures_total", {{"group", g}}, n);
  }

  const auto& h = m.durations;
  w.Family("dropq_job_run_duration_seconds", "histogram", "Duration of finished attempts.");
  for (std::size_t i = 0; i < h.cumulative.size(); ++i) {
    w.Sample("dropq_job_run_duration_seconds_bucket", {{"le", Num(DurationHistogram::kBoundsSeconds[i])}},
             h.cumulative[i]);
  }
  w.Sample("dropq_job_run_duration_seconds_bucket", {{"le", "+Inf"}}, h.count);
  w.Sample("dropq_job_run_duration_seconds_sum", {}, Num(h.sum_seconds));
  w.Sample("dropq_job_run_duration_seconds_count", {}, h.count);

  std::map<std::string, std::int64_t> ready(m.ready.begin(), m.ready.end());
  w.Family("dropq_queue_depth", "gauge", "Queued jobs whose run_at has come (ready to start), by group.");
  for (const auto& g : groups) w.Sample("dropq_queue_depth", {{"group", g}}, ready[g]);

  if (!m.rates.empty()) {
    w.Family("dropq_group_rate_limit", "gauge", "Attempt starts a group's rate limit allows per period.");
    for (const auto& r : m.rates) w.Sample("dropq_group_rate_limit", {{"group", r.group}}, r.limit.max);
    w.Family("dropq_group_rate_period_seconds", "gauge", "The period of a group's rate limit.");
    for (const auto& r : m.rates) {
      w.Sample("dropq_group_rate_period_seconds", {{"group", r.group}},
               Num(static_cast<double>(r.limit.period_ms) / 1000.0));
    }
    w.Family("dropq_group_rate_starts_in_window", "gauge",
             "Attempts a rate-limited group started within the last period (retries included).");
    for (const auto& r : m.rates) {
      w.Sample("dropq_group_rate_starts_in_window", {{"group", r.group}}, r.state.starts_in_window);
    }
    w.Family("dropq_group_rate_limited", "gauge",
             "1 while a group's rate window is full: its next start waits for the window to open.");
    for (const auto& r : m.rates) {
      w.Sample("dropq_group_rate_limited", {{"group", r.group}}, std::int64_t{r.state.limited() ? 1 : 0});
    }
    w.Family("dropq_group_rate_next_start_timestamp_seconds", "gauge",
             "When a rate-limited group may start again, in seconds since the Unix epoch (only while limited).");
    for (const auto& r : m.rates) {
      if (r.state.next_start_at) {
        w.Sample("dropq_group_rate_next_start_timestamp_seconds", {{"group", r.group}},
                 Num(static_cast<double>(*r.state.next_start_at) / 1000.0));
      }
    }
  }

  const auto& l = m.live;
  w.Family("dropq_containers_running", "gauge", "Sandboxes or containers running an attempt now.");
  w.Sample("dropq_containers_running", {}, l.containers_running);
  w.Family("dropq_ingest_accepted_total", "counter", "Dropped files that became jobs since the daemon started.");
  w.Sample("dropq_ingest_accepted_total", {}, l.ingest_accepted);
  w.Family("dropq_ingest_duplicates_total", "counter",
           "Dropped files whose client id was already a job, since the daemon started.");
  w.Sample("dropq_ingest_duplicates_total", {}, l.ingest_duplicates);
  w.Family("dropq_ingest_rejected_total", "counter",
           "Dropped files rejected (moved to data/ipc/errors/) since the daemon started.");
  w.Sample("dropq_ingest_rejected_total", {}, l.ingest_rejected);
  w.Family("dropq_scheduler_fires_total", "counter", "Scheduled-task slots fired since the daemon started.");
  w.Sample("dropq_scheduler_fires_total", {}, l.scheduler_fires);
  if (l.scheduler_lag_ms) {
    w.Family("dropq_scheduler_lag_seconds", "gauge",
             "How late the last scheduled-task slot fired against its scheduled time.");
    w.Sample("dropq_scheduler_lag_seconds", {}, Num(static_cast<double>(*l.scheduler_lag_ms) / 1000.0));
  }
  w.Family("dropq_start_time_seconds", "gauge", "When the daemon started, in seconds since the Unix epoch.");
  w.Sample("dropq_start_time_seconds", {}, Num(static_cast<double>(l.started_at) / 1000.0));
  w.Family("dropq_loop_published_timestamp_seconds", "gauge",
           "When the daemon's loop last published its figures; a stalled loop stops advancing it.");
  w.Sample("dropq_loop_published_timestamp_seconds", {}, Num(static_cast<double>(l.published_at) / 1000.0));
  return w.Take();
}

}  // namespace dropq::app
