// dropq jobs | job | events | status | tasks.

#include "cli/cli_commands.h"
#include "base/atomic_file.h"
#include "jobs/cron.h"
#include "jobs/layout.h"
#include "jobs/queries.h"
#include "jobs/rate_limit.h"
#include "jobs/tasks.h"
#include "base/text.h"

namespace dropq::app {
namespace {

std::string When(const Style& st, TimeMs now, std::optional<TimeMs> t) {
  return t ? RelativeTime(now, *t) : st.Dim("-");
}

std::string DetailText(const std::optional<std::string>& detail) {
  if (!detail) return "";
  auto j = ParseOrString(*detail);
  if (j.is_object()) {
    // key=value pairs read better in a table than JSON punctuation.
    std::string s;
    for (const auto& [k, v] : j.items()) {
      if (!s.empty()) s += " ";
      s += k + "=" + (v.is_string() ? v.get<std::string>() : text::Dump(v));
    }
    return s;
  }
  return j.is_string() ? j.get<std::string>() : text::Dump(j);
}

std::vector<std::vector<std::string>> EventRows(const Style& st, TimeMs now, const std::vector<JobEvent>& events) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : events) {
    rows.push_back({FormatIsoUtc(e.at), st.Dim(RelativeTime(now, e.at)), e.event, Shorten(DetailText(e.detail), 100)});
  }
  return rows;
}

}  // namespace

int CmdJobs(const Context& ctx, const std::string& state, const std::string& group, int limit) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  JobFilter f;
  if (!state.empty()) {
    f.state = ParseJobState(state);
    if (!f.state) {
      std::cerr << "dropq: unknown state \"" << state << "\" (queued, running, succeeded, failed, cancelled)\n";
      return kExitUsage;
    }
  }
  if (!group.empty()) f.group = group;
  f.limit = limit;
  auto jobs = OrExit(store->ListJobs(f));
  if (ctx.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& j : jobs) arr.push_back(JobJson(j));
    std::cout << text::Dump(arr) << "\n";
    return kExitOk;
  }
  TimeMs now = clock.NowMs();
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : jobs) {
    std::string took = "-";
    if (j.started_at) took = HumanDuration(j.finished_at.value_or(now) - *j.started_at);
    rows.push_back({std::to_string(j.id), j.group, ctx.style.State(std::string(ToString(j.state))),
                    std::to_string(j.CountedAttempts()) + "/" + std::to_string(j.max_attempts),
                    RelativeTime(now, j.created_at), took, text::ForLog(j.source_name.value_or("-")),
                    Shorten(j.prompt, 40)});
  }
  PrintTable(std::cout, ctx.style, {"ID", "GROUP", "STATE", "ATTEMPTS", "CREATED", "TOOK", "FILE", "PROMPT"}, rows);
  return kExitOk;
}

int CmdJob(const Context& ctx, JobId id) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto job = FindJob(*store, id);
  if (!job) return kExitNotFound;
  auto runs = OrExit(store->ListRuns(id));
  auto events = OrExit(store->ListEvents(id));
  auto after = OrExit(deps::DependenciesOf(*store, id));
  auto waited_by = OrExit(deps::DependentsOf(*store, id));
  nlohmann::json j = JobJson(*job);
  auto links_json = [](const std::vector<deps::Link>& links) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& l : links) {
      out.push_back({{"id", l.id}, {"group", l.group}, {"client_id", l.client_id ? nlohmann::json(*l.client_id) : nlohmann::json()}, {"state", ToString(l.state)}});
    }
    return out;
  };
  j["after"] = links_json(after);
  j["waited_by"] = links_json(waited_by);
  j["runs"] = nlohmann::json::array();
  for (const auto& r : runs) j["runs"].push_back(RunJson(r));
  j["events"] = nlohmann::json::array();
  for (const auto& e : events) j["events"].push_back(EventJson(e));
  if (ctx.json) {
    std::cout << text::Dump(j) << "\n";
    return kExitOk;
  }
  TimeMs now = clock.NowMs();
  const Style& st = ctx.style;
  auto field = [](const std::string& k, const std::string& v) { std::cout << k << ": " << v << "\n"; };
  field("id", std::to_string(job->id));
  field("group", job->group);
  field("state", st.State(std::string(ToString(job->state))));
  // Attempts dropq's own stops cut short are interruptions: not counted
  // against max_attempts.
  field("attempts", std::to_string(job->CountedAttempts()) + "/" + std::to_string(job->max_attempts) +
                        (job->interruptions > 0 ? " (" + std::to_string(job->attempts) + " started)" : ""));
  field("interruptions", std::to_string(job->interruptions) + "/" + std::to_string(job->max_interruptions));
  field("priority", std::to_string(job->priority));
  field("run_at", FormatIsoUtc(job->run_at) + " (" + RelativeTime(now, job->run_at) + ")");
  field("context_mode", std::string(ToString(job->context_mode)));
  // What came in a dropped file or from an agent is escaped for the terminal.
  field("client_id", text::ForLog(job->client_id.value_or("-")));
  field("file", text::ForLog(job->source_name.value_or("-")));
  field("created", FormatIsoUtc(job->created_at) + " (" + RelativeTime(now, job->created_at) + ")");
  field("started",
        job->started_at ? FormatIsoUtc(*job->started_at) + " (" + RelativeTime(now, *job->started_at) + ")" : "-");
  field("finished",
        job->finished_at ? FormatIsoUtc(*job->finished_at) + " (" + RelativeTime(now, *job->finished_at) + ")" : "-");
  // "3 succeeded, 4 running": each job at the other end and its state.
  auto links = [&](const std::vector<deps::Link>& ls) {
    std::string out;
    for (const auto& l : ls) {
      if (!out.empty()) out += ", ";
      out += std::to_string(l.id) + (l.group != job->group ? " (" + l.group + ")" : "") + " " +
             st.State(std::string(ToString(l.state)));
    }
    return out;
  };
  if (job->after_policy) field("after", links(after) + " (must " + (*job->after_policy == AfterPolicy::kFinished ? "finish" : "succeed") + ")");
  if (!waited_by.empty()) field("waited_by", links(waited_by));
  if (job->unique_key) field("unique_key", text::ForLog(*job->unique_key));
  if (job->error) field("error", st.Red(text::ForLog(*job->error)));
  field("prompt", text::ForTerminal(job->prompt));
  field("result", text::Dump(j["result"]));
  std::cout << "\nruns:\n";
  // Where a cluster ran each attempt (runtime: slurm with accounting on):
  // the columns appear only when some attempt has them.
  bool placed = false;
  for (const auto& r : runs) placed = placed || r.node || r.cluster_state;
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs) {
    std::vector<std::string> row = {std::to_string(r.attempt), st.State(r.status),
                                    r.exit_code ? std::to_string(*r.exit_code) : "-",
                                    r.duration_ms ? HumanDuration(*r.duration_ms) : "-", When(st, now, r.started_at)};
    if (placed) {
      row.push_back(text::ForLog(r.node.value_or("-")));
      row.push_back(text::ForLog(r.cluster_state.value_or("-")));
    }
    row.push_back(r.log_file.value_or("-"));
    rows.push_back(std::move(row));
  }
  std::vector<std::string> headers = {"ATTEMPT", "STATUS", "EXIT", "DURATION", "STARTED"};
  if (placed) headers.insert(headers.end(), {"NODE", "CLUSTER STATE"});
  headers.push_back("LOG");
  PrintTable(std::cout, st, headers, rows);
  std::cout << "\nevents:\n";
  PrintTable(std::cout, st, {"AT", "AGO", "EVENT", "DETAIL"}, EventRows(st, now, events));
  return kExitOk;
}

int CmdEvents(const Context& ctx, JobId id) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto job = FindJob(*store, id);
  if (!job) return kExitNotFound;
  auto events = OrExit(store->ListEvents(id));
  if (ctx.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : events) arr.push_back(EventJson(e));
    std::cout << text::Dump(arr) << "\n";
    return kExitOk;
  }
  PrintTable(std::cout, ctx.style, {"AT", "AGO", "EVENT", "DETAIL"}, EventRows(ctx.style, clock.NowMs(), events));
  return kExitOk;
}

// Each group's rate limit (docs/CONFIG.md, "Rate limits") as the config
// sets it, the configured groups first and then the registered ones (which
// have the top-level `rate` only), with its window counted from the
// database as the daemon counts it.
static std::vector<GroupRate> RateStates(const Config& cfg, Store& store, TimeMs now) {
  std::vector<std::pair<std::string, RateLimit>> limits;
  for (const auto& g : cfg.groups) {
    if (auto r = cfg.RateFor(g.folder)) limits.emplace_back(g.folder, *r);
  }
  if (cfg.rate) {
    for (const auto& g : OrExit(store.ListRegisteredGroups())) {
      if (!cfg.FindGroup(g.folder)) limits.emplace_back(g.folder, *cfg.rate);
    }
  }
  return OrExit(LoadRateStates(store, limits, now));
}

int CmdStatus(const Context& ctx) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto counts = OrExit(store->CountByState());
  const TimeMs now = clock.NowMs();
  auto rates = RateStates(cfg, *store, now);
  nlohmann::json by_state = nlohmann::json::object();
  for (const char* s : {"waiting", "queued", "running", "succeeded", "failed", "cancelled"}) by_state[s] = 0;
  for (const auto& [s, n] : counts) by_state[s] = n;
  nlohmann::json out = {{"root", cfg.root}, {"runtime", cfg.runtime}, {"jobs", by_state}};
  out["rate_limits"] = nlohmann::json::array();
  for (const auto& r : rates) {
    out["rate_limits"].push_back(
        {{"group", r.group},
         {"limit", FormatRateLimit(r.limit)},
         {"max", r.limit.max},
         {"period_ms", r.limit.period_ms},
         {"starts_in_window", r.state.starts_in_window},
         {"limited", r.state.limited()},
         {"next_start_at",
          r.state.next_start_at ? nlohmann::json(FormatIsoUtc(*r.state.next_start_at)) : nlohmann::json()}});
  }
  if (ctx.json) {
    std::cout << text::Dump(out) << "\n";
    return kExitOk;
  }
  std::cout << "root: " << cfg.root << "\nruntime: " << cfg.runtime << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const char* s : {"waiting", "queued", "running", "succeeded", "failed", "cancelled"}) {
    rows.push_back({ctx.style.State(s), std::to_string(by_state[s].get<std::int64_t>())});
  }
  PrintTable(std::cout, ctx.style, {"STATE", "JOBS"}, rows);
  if (!rates.empty()) {
    std::cout << "\nrate limits:\n";
    rows.clear();
    for (const auto& r : rates) {
      std::string next = r.state.next_start_at ? ctx.style.Yellow(FormatIsoUtc(*r.state.next_start_at) + " (" +
                                                                  RelativeTime(now, *r.state.next_start_at) + ")")
                                               : "now";
      rows.push_back({r.group, FormatRateLimit(r.limit),
                      std::to_string(r.state.starts_in_window) + "/" + std::to_string(r.limit.max), next});
    }
    PrintTable(std::cout, ctx.style, {"GROUP", "RATE", "STARTS IN WINDOW", "NEXT START"}, rows);
  }
  return kExitOk;
}

int CmdTasks(const Context& ctx, const std::string& group) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  TaskStore tasks(*store);
  auto list = OrExit(tasks.List(group.empty() ? std::nullopt : std::optional<std::string>(group)));
  auto opt_time = [](const std::optional<TimeMs>& t) {
    return t ? nlohmann::json(FormatIsoUtc(*t)) : nlohmann::json();
  };
  if (ctx.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& t : list) {
      arr.push_back({{"id", t.id},
                     {"group", t.group_folder},
                     {"prompt", t.prompt},
                     {"schedule_type", ToString(t.schedule_type)},
                     {"schedule_value", t.schedule_value},
                     {"tz", t.tz},
                     {"status", ToString(t.status)},
                     {"next_run", opt_time(t.next_run)},
                     {"last_run", opt_time(t.last_run)},
                     {"overlap", ToString(t.overlap)},
                     {"catch_up", ToString(t.catch_up)},
                     {"source", ToString(t.source)}});
    }
    std::cout << text::Dump(arr) << "\n";
    return kExitOk;
  }
  TimeMs now = clock.NowMs();
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : list) {
    // Next run in the task's own zone, as the people who wrote it think of it.
    std::string next = "-";
    if (t.next_run) {
      next = cron::FormatInTaskZone(*t.next_run, t.tz) + " (" + RelativeTime(now, *t.next_run) + ")";
    }
    std::string status(ToString(t.status));
    rows.push_back({text::ForLog(t.id), t.group_folder,
                    status == "active" ? ctx.style.Green(status) : ctx.style.Dim(status),
                    std::string(ToString(t.schedule_type)) + " " + text::ForLog(t.schedule_value), next,
                    When(ctx.style, now, t.last_run), Shorten(t.prompt, 30)});
  }
  PrintTable(std::cout, ctx.style, {"ID", "GROUP", "STATUS", "SCHEDULE", "NEXT RUN", "LAST RUN", "PROMPT"}, rows);
  return kExitOk;
}

}  // namespace dropq::app
