#include "jobs/queries.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "jobs/layout.h"
#include "base/text.h"

namespace dropq::app {
namespace {

constexpr TimeMs kMinuteMs = 60'000;
constexpr int kChartMinutes = 60;

// The histogram's SQL: one pass over job_runs, a SUM per bucket bound.
const char* HistogramSql() {
  static const std::string sql = [] {
    std::string s = "SELECT count(*), coalesce(sum(duration_ms), 0)";
    for (double b : DurationHistogram::kBoundsSeconds) {
      s += ", coalesce(sum(duration_ms <= " + std::to_string(static_cast<std::int64_t>(b * 1000)) + "), 0)";
    }
    return s + " FROM job_runs WHERE duration_ms IS NOT NULL AND status <> 'running'";
  }();
  return sql.c_str();
}

}  // namespace

Result<std::vector<GroupRow>> DashboardQueries::Groups() {
  auto& q = store_.Prepare("SELECT folder, name, is_main FROM groups ORDER BY is_main DESC, folder");
  std::vector<GroupRow> out;
  if (Status s = ForEachRow(q,
                            [&](const SqlStmt& r) {
                              out.push_back({r.Text(0), r.Text(1), r.Int(2) != 0});
                            });
      !s.ok()) {
    return s;
  }
  return out;
}

Result<std::vector<StateCount>> DashboardQueries::CountsByGroupAndState() {
  auto& q = store_.Prepare(
      "SELECT group_folder, state, count(*) FROM jobs GROUP BY group_folder, state ORDER BY group_folder, state");
  std::vector<StateCount> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back({r.Text(0), r.Text(1), r.Int(2)}); }); !s.ok()) {
    return s;
  }
  return out;
}

Result<std::vector<RunningJob>> DashboardQueries::Running() {
  auto& q = store_.Prepare(
      "SELECT j.id, j.group_folder, j.prompt, r.attempt, r.container_name, r.started_at FROM jobs j "
      "JOIN job_runs r ON r.job_id = j.id AND r.attempt = j.attempts "
      "WHERE j.state = 'running' ORDER BY r.started_at, j.id");
  const TimeMs now = clock_.NowMs();
  std::vector<RunningJob> out;
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    RunningJob j;
    j.id = r.Int(0);
    j.group = r.Text(1);
    j.prompt = r.Text(2);
    j.attempt = r.Int(3);
    j.container_name = r.OptText(4);
    j.started_at = r.Time(5);
    j.elapsed_ms = std::max<std::int64_t>(0, now - j.started_at);
    out.push_back(std::move(j));
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Job>> DashboardQueries::Recent(const JobFilter& filter) {
  JobFilter f = filter;
  f.limit = std::clamp(f.limit, 1, kMaxJobsListed);
  return store_.ListJobs(f);
}

Result<std::optional<JobDetail>> DashboardQueries::Detail(JobId id) {
  auto job = store_.GetJob(id);
  if (!job.ok()) return job.status();
  if (!*job) return std::optional<JobDetail>();
  JobDetail d;
  d.job = **job;
  auto after = deps::DependenciesOf(store_, id);
  if (!after.ok()) return after.status();
  d.after = std::move(*after);
  auto waited_by = deps::DependentsOf(store_, id);
  if (!waited_by.ok()) return waited_by.status();
  d.waited_by = std::move(*waited_by);
  auto runs = store_.ListRuns(id);
  if (!runs.ok()) return runs.status();
  d.runs = std::move(*runs);
  auto events = store_.ListEvents(id);
  if (!events.ok()) return events.status();
  d.events = std::move(*events);
  ReadLog(d);
  return std::optional<JobDetail>(std::move(d));
}

// The run log lives in the group's own folder, which the group's sandbox can
// write: it could have replaced logs/ or the file with a symlink to anything
// the daemon's user can read. So the path must be <root>/groups/<group>/logs/
// <name>, logs/ is opened without following a link, and the file is opened
// relative to that directory, again without following one, and must be a
// regular file. Only the last kMaxLogBytes are read.
void DashboardQueries::ReadLog(JobDetail& d) {
  const JobRun* last = nullptr;
  for (const auto& r : d.runs) {
    if (r.log_file) last = &r;
  }
  if (last == nullptr) return;
  namespace fs = std::filesystem;
  const fs::path logs = Layout(root_).GroupLogsDir(d.job.group);
  const fs::path file = fs::path(*last->log_file).lexically_normal();
  if (file.parent_path() != logs || file.filename().empty()) {
    d.log_error = "the run log is not in the group's logs folder";
    return;
  }
  int dir = ::open(logs.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) {
    d.log_error = "the group's logs folder cannot be opened safely";
    return;
  }
  int fd = ::openat(dir, file.filename().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  ::close(dir);
  if (fd < 0) {
    d.log_error = "the run log cannot be opened (removed, or not a regular file)";
    return;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    d.log_error = "the run log is not a regular file";
    return;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  const std::size_t want = std::min(size, kMaxLogBytes);
  std::string bytes(want, '\0');
  std::size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd, bytes.data() + got, want - got, static_cast<off_t>(size - want + got));
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(got);
  // The tail of a file may start inside a character; the page gets text.
  d.log = text::Tail(bytes, bytes.size());
  d.log_truncated = size > want;
}

Result<std::vector<Task>> DashboardQueries::Tasks() { return tasks_.List(); }

Result<std::vector<MinuteBucket>> DashboardQueries::FinishedPerMinute() {
  const TimeMs now = clock_.NowMs();
  const TimeMs current = now - (now % kMinuteMs);
  const TimeMs from = current - (kChartMinutes - 1) * kMinuteMs;
  std::vector<MinuteBucket> out(kChartMinutes);
  for (int i = 0; i < kChartMinutes; ++i) out[static_cast<std::size_t>(i)].minute = from + i * kMinuteMs;
  // finished_at is fixed-width ISO text, so a text comparison is a time one.
  auto& q = store_.Prepare(
      "SELECT state, finished_at FROM jobs WHERE finished_at >= ?1 AND state IN ('succeeded','failed','cancelled')");
  q.BindTime(1, from);
  Status s = ForEachRow(q, [&](const SqlStmt& r) {
    TimeMs at = r.Time(1);
    if (at < from) return;
    auto i = static_cast<std::size_t>((at - from) / kMinuteMs);
    if (i >= out.size()) i = out.size() - 1;  // finished "in the future": a clock step back
    std::string state = r.Text(0);
    auto& b = out[i];
    (state == "succeeded" ? b.succeeded : state == "failed" ? b.failed : b.cancelled) += 1;
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<RunCount>> DashboardQueries::RunsByGroupAndStatus() {
  auto& q = store_.Prepare(
      "SELECT j.group_folder, r.status, count(*) FROM job_runs r JOIN jobs j ON j.id = r.job_id "
      "GROUP BY j.group_folder, r.status ORDER BY j.group_folder, r.status");
  std::vector<RunCount> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.push_back({r.Text(0), r.Text(1), r.Int(2)}); }); !s.ok()) {
    return s;
  }
  return out;
}

Result<DurationHistogram> DashboardQueries::RunDurations() {
  auto& q = store_.Prepare(HistogramSql());
  DurationHistogram h;
  auto r = q.Step();
  if (!r.ok()) return r.status();
  if (*r) {
    h.count = q.Int(0);
    h.sum_seconds = static_cast<double>(q.Int(1)) / 1000.0;
    for (std::size_t i = 0; i < h.cumulative.size(); ++i) h.cumulative[i] = q.Int(static_cast<int>(i + 2));
  }
  return h;
}

Result<std::vector<std::pair<std::string, std::int64_t>>> DashboardQueries::ReadyByGroup() {
  auto& q = store_.Prepare(
      "SELECT group_folder, count(*) FROM jobs WHERE state = 'queued' AND run_at <= ?1 "
      "GROUP BY group_folder ORDER BY group_folder");
  q.BindTime(1, clock_.NowMs());
  std::vector<std::pair<std::string, std::int64_t>> out;
  if (Status s = ForEachRow(q, [&](const SqlStmt& r) { out.emplace_back(r.Text(0), r.Int(1)); }); !s.ok()) return s;
  return out;
}

Result<GroupActivity> LoadGroupActivity(Store& store, const std::string& folder) {
  GroupActivity info{folder, std::nullopt};
  auto& n = StoreSql::Prepare(store, "SELECT name FROM groups WHERE folder = ?").Bind(1, folder);
  Status s = ForEachRow(n, [&](const SqlStmt& r) {
    if (!r.IsNull(0)) info.name = r.Text(0);
  });
  if (!s.ok()) return s;
  // The newest job's creation (jobs_group index: newest id first).
  auto& j = StoreSql::Prepare(store, "SELECT created_at FROM jobs WHERE group_folder = ? ORDER BY id DESC LIMIT 1")
                .Bind(1, folder);
  s = ForEachRow(j, [&](const SqlStmt& r) { info.last_activity = r.Text(0); });
  if (!s.ok()) return s;
  return info;
}

Result<std::vector<GroupRate>> LoadRateStates(Store& store, const std::vector<std::pair<std::string, RateLimit>>& limits,
                                              TimeMs now) {
  std::vector<GroupRate> out;
  if (limits.empty()) return out;
  TimeMs longest = 0;
  for (const auto& [group, limit] : limits) longest = std::max(longest, limit.period_ms);
  auto starts = store.StartsSince(now - longest);
  if (!starts.ok()) return starts.status();
  std::map<std::string, std::vector<TimeMs>> by_group;
  for (const auto& st : *starts) by_group[st.group].push_back(st.started_at);
  for (const auto& [group, limit] : limits) {
    auto it = by_group.find(group);
    out.push_back({group, limit, RateStateOf(limit, it == by_group.end() ? std::vector<TimeMs>() : it->second, now)});
  }
  return out;
}

}  // namespace dropq::app
