#include "app/cli.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/config.h"
#include "app/cron_cmd.h"
#include "app/daemon.h"
#include "jobs/atomic_file.h"
#include "jobs/cron.h"
#include "jobs/layout.h"
#include "jobs/tasks.h"

#include <date/tz.h>
#include "jobs/store.h"

namespace dropq::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;

nlohmann::json OptJson(const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json OptTime(const std::optional<TimeMs>& t) {
  return t ? nlohmann::json(FormatIsoUtc(*t)) : nlohmann::json();
}
template <typename T>
nlohmann::json OptNum(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

nlohmann::json JobJson(const Job& j) {
  nlohmann::json r = {
      {"id", j.id},
      {"group", j.group},
      {"type", j.type},
      {"state", ToString(j.state)},
      {"prompt", j.prompt},
      {"priority", j.priority},
      {"run_at", FormatIsoUtc(j.run_at)},
      {"attempts", j.attempts},
      {"max_attempts", j.max_attempts},
      {"context_mode", ToString(j.context_mode)},
      {"client_id", OptJson(j.client_id)},
      {"timeout_ms", OptNum(j.timeout_ms)},
      {"source_name", OptJson(j.source_name)},
      {"source_hash", OptJson(j.source_hash)},
      {"created_at", FormatIsoUtc(j.created_at)},
      {"started_at", OptTime(j.started_at)},
      {"finished_at", OptTime(j.finished_at)},
      {"error", OptJson(j.error)},
  };
  r["result"] = nullptr;
  if (j.result) {
    auto parsed = nlohmann::json::parse(*j.result, nullptr, false);
    r["result"] = parsed.is_discarded() ? nlohmann::json(*j.result) : parsed;
  }
  return r;
}

nlohmann::json RunJson(const JobRun& r) {
  return {{"attempt", r.attempt},        {"runtime", r.runtime},
          {"container", OptJson(r.container_name)},
          {"status", r.status},          {"started_at", FormatIsoUtc(r.started_at)},
          {"finished_at", OptTime(r.finished_at)},
          {"duration_ms", OptNum(r.duration_ms)},
          {"exit_code", OptNum(r.exit_code)},
          {"signal", OptNum(r.signal)},  {"stdout_bytes", r.stdout_bytes},
          {"stderr_bytes", r.stderr_bytes},
          {"stdout_truncated", r.stdout_truncated},
          {"stderr_truncated", r.stderr_truncated},
          {"log_file", OptJson(r.log_file)},
          {"error", OptJson(r.error)}};
}

nlohmann::json EventJson(const JobEvent& e) {
  nlohmann::json d;
  if (e.detail) {
    d = nlohmann::json::parse(*e.detail, nullptr, false);
    if (d.is_discarded()) d = *e.detail;
  }
  return {{"id", e.id}, {"job_id", OptNum(e.job_id)}, {"group", OptJson(e.group)}, {"at", FormatIsoUtc(e.at)},
          {"event", e.event}, {"detail", d}};
}

// A plain aligned table: columns as wide as their widest cell.
void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (std::size_t i = 0; i < r.size(); ++i) {
      s += r[i];
      if (i + 1 < r.size()) s += std::string(w[i] - r[i].size() + 2, ' ');
    }
    std::cout << s << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

std::string Shorten(std::string s, std::size_t n) {
  for (auto& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

void SetUpLogging(const std::string& level_from_config) {
  auto logger = spdlog::stderr_color_mt("dropq");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  std::string level = level_from_config;
  if (const char* env = std::getenv("DROPQ_LOG_LEVEL")) level = env;
  spdlog::set_level(spdlog::level::from_str(level));
}

struct Context {
  std::string config_path = "dropq.yaml";
  bool json = false;
};

Config LoadOrExit(const Context& ctx) {
  try {
    return LoadConfigFile(ctx.config_path);
  } catch (const ConfigError& e) {
    std::cerr << "dropq: config error in " << ctx.config_path << ": " << e.what() << "\n";
    std::exit(kExitUsage);
  } catch (const std::exception& e) {
    std::cerr << "dropq: " << e.what() << "\n";
    std::exit(kExitUsage);
  }
}

std::unique_ptr<Store> OpenReaderOrExit(const Config& cfg, const Clock& clock) {
  auto store = Store::OpenReadOnly(Layout(cfg.root).DatabasePath().string(), clock);
  if (!store.ok()) {
    std::cerr << "dropq: " << store.status().message() << "\n";
    std::exit(kExitFailure);
  }
  return std::move(*store);
}

template <typename T>
T OrExit(Result<T> r) {
  if (!r.ok()) {
    std::cerr << "dropq: " << r.status().message() << "\n";
    std::exit(kExitFailure);
  }
  return std::move(*r);
}

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
    std::cout << arr.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : jobs) {
    rows.push_back({std::to_string(j.id), j.group, std::string(ToString(j.state)),
                    std::to_string(j.attempts) + "/" + std::to_string(j.max_attempts), FormatIsoUtc(j.created_at),
                    j.source_name.value_or("-"), Shorten(j.prompt, 40)});
  }
  PrintTable({"ID", "GROUP", "STATE", "ATTEMPTS", "CREATED", "FILE", "PROMPT"}, rows);
  return kExitOk;
}

int CmdJob(const Context& ctx, JobId id) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto job = OrExit(store->GetJob(id));
  if (!job) {
    std::cerr << "dropq: no job " << id << "\n";
    return kExitNotFound;
  }
  auto runs = OrExit(store->ListRuns(id));
  auto events = OrExit(store->ListEvents(id));
  nlohmann::json j = JobJson(*job);
  j["runs"] = nlohmann::json::array();
  for (const auto& r : runs) j["runs"].push_back(RunJson(r));
  j["events"] = nlohmann::json::array();
  for (const auto& e : events) j["events"].push_back(EventJson(e));
  if (ctx.json) {
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  for (const char* k : {"id", "group", "state", "attempts", "max_attempts", "priority", "run_at", "context_mode",
                        "client_id", "source_name", "source_hash", "created_at", "started_at", "finished_at",
                        "error"}) {
    const auto& v = j[k];
    std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  }
  std::cout << "prompt: " << job->prompt << "\n";
  std::cout << "result: " << j["result"].dump() << "\n";
  std::cout << "\nruns:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs) {
    rows.push_back({std::to_string(r.attempt), r.status, r.exit_code ? std::to_string(*r.exit_code) : "-",
                    r.duration_ms ? std::to_string(*r.duration_ms) + "ms" : "-", r.log_file.value_or("-")});
  }
  PrintTable({"ATTEMPT", "STATUS", "EXIT", "DURATION", "LOG"}, rows);
  std::cout << "\nevents:\n";
  rows.clear();
  for (const auto& e : events) rows.push_back({FormatIsoUtc(e.at), e.event, e.detail.value_or("")});
  PrintTable({"AT", "EVENT", "DETAIL"}, rows);
  return kExitOk;
}

int CmdStatus(const Context& ctx) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto counts = OrExit(store->CountByState());
  nlohmann::json by_state = nlohmann::json::object();
  for (const char* s : {"queued", "running", "succeeded", "failed", "cancelled"}) by_state[s] = 0;
  for (const auto& [s, n] : counts) by_state[s] = n;
  nlohmann::json out = {{"root", cfg.root}, {"runtime", cfg.runtime}, {"jobs", by_state}};
  if (ctx.json) {
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  std::cout << "root: " << cfg.root << "\nruntime: " << cfg.runtime << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [k, v] : by_state.items()) rows.push_back({k, std::to_string(v.get<std::int64_t>())});
  PrintTable({"STATE", "JOBS"}, rows);
  return kExitOk;
}

// cancel and retry go through the daemon's own front door: a control file in
// the main group's tasks/ (main may act for any group), written atomically.
// So the change is authorised, audited and applied by the one process that
// owns the queue — now if it runs, at its next start otherwise.
int CmdControl(const Context& ctx, const std::string& type, JobId id) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto job = OrExit(store->GetJob(id));
  if (!job) {
    std::cerr << "dropq: no job " << id << "\n";
    return kExitNotFound;
  }
  Layout layout(cfg.root);
  auto path = layout.TasksDir(cfg.MainGroup().folder) /
              ("dropq-" + type + "-" + std::to_string(id) + "-" + std::to_string(clock.NowMs()) + ".json");
  nlohmann::json body = {{"type", type}, {"jobId", id}, {"createdBy", "dropq cli"}};
  if (Status s = WriteFileAtomic(path, body.dump() + "\n"); !s.ok()) {
    std::cerr << "dropq: " << s.message() << "\n";
    return kExitFailure;
  }
  if (ctx.json) {
    std::cout << nlohmann::json{{"job", id}, {"file", path.string()}}.dump() << "\n";
  } else {
    std::cout << "dropped " << path.string() << "\n";
  }
  return kExitOk;
}

int CmdTasks(const Context& ctx, const std::string& group) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  TaskStore tasks(*store);
  auto list = OrExit(tasks.List(group.empty() ? std::nullopt : std::optional<std::string>(group)));
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
                     {"next_run", OptTime(t.next_run)},
                     {"last_run", OptTime(t.last_run)},
                     {"overlap", ToString(t.overlap)},
                     {"catch_up", ToString(t.catch_up)},
                     {"source", ToString(t.source)}});
    }
    std::cout << arr.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : list) {
    // Next run in the task's own zone, as the people who wrote it think of it.
    std::string next = "-";
    if (t.next_run) {
      next = FormatIsoUtc(*t.next_run);
      if (auto z = cron::LoadTimeZone(t.tz); z.ok() && *z != nullptr) {
        using namespace std::chrono;
        auto local = date::make_zoned(*z, sys_time<milliseconds>(milliseconds(*t.next_run)));
        next = date::format("%F %H:%M:%S ", floor<seconds>(local.get_local_time())) + t.tz;
      }
    }
    rows.push_back({t.id, t.group_folder, std::string(ToString(t.status)),
                    std::string(ToString(t.schedule_type)) + " " + t.schedule_value, next, Shorten(t.prompt, 30)});
  }
  PrintTable({"ID", "GROUP", "STATUS", "SCHEDULE", "NEXT RUN", "PROMPT"}, rows);
  return kExitOk;
}

int CmdTaskControl(const Context& ctx, const std::string& action, const std::string& id) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  Layout layout(cfg.root);
  auto path = layout.TasksDir(cfg.MainGroup().folder) /
              ("dropq-" + action + "_task-" + std::to_string(clock.NowMs()) + ".json");
  nlohmann::json body = {{"type", action + "_task"}, {"taskId", id}, {"createdBy", "dropq cli"}};
  if (Status s = WriteFileAtomic(path, body.dump() + "\n"); !s.ok()) {
    std::cerr << "dropq: " << s.message() << "\n";
    return kExitFailure;
  }
  std::cout << (ctx.json ? nlohmann::json{{"task", id}, {"file", path.string()}}.dump() : "dropped " + path.string())
            << "\n";
  return kExitOk;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"dropq: drop JSON files, get durable, audited, isolated work"};
  app.set_version_flag("--version", std::string("dropq ") + DROPQ_VERSION);
  app.require_subcommand(1);
  Context ctx;
  if (const char* env = std::getenv("DROPQ_CONFIG")) ctx.config_path = env;
  auto add_common = [&](CLI::App* sub, bool json) {
    sub->add_option("-c,--config", ctx.config_path, "config file (default: $DROPQ_CONFIG or ./dropq.yaml)");
    if (json) sub->add_flag("--json", ctx.json, "print JSON instead of a table");
  };

  bool once = false;
  auto* run = app.add_subcommand("run", "run the daemon in the foreground");
  add_common(run, false);
  run->add_flag("--once", once, "ingest what is there, run every ready job, then exit");

  std::string state, group;
  int limit = 100;
  auto* jobs = app.add_subcommand("jobs", "list jobs, newest first");
  add_common(jobs, true);
  jobs->add_option("--state", state, "only jobs in this state");
  jobs->add_option("--group", group, "only jobs of this group folder");
  jobs->add_option("--limit", limit, "at most this many (default 100)")->check(CLI::PositiveNumber);

  JobId id = 0;
  auto* job = app.add_subcommand("job", "show one job with its runs and audit events");
  add_common(job, true);
  job->add_option("ID", id, "job id")->required();

  JobId control_id = 0;
  auto* cancel = app.add_subcommand("cancel", "cancel a queued job, or stop a running one (graceful, then kill)");
  add_common(cancel, true);
  cancel->add_option("ID", control_id, "job id")->required();
  auto* retry = app.add_subcommand("retry", "requeue a failed or cancelled job with fresh attempts");
  add_common(retry, true);
  retry->add_option("ID", control_id, "job id")->required();

  auto* tasks = app.add_subcommand("tasks", "list scheduled tasks with their next run");
  add_common(tasks, true);
  tasks->add_option("--group", group, "only tasks of this group folder");
  auto* task = app.add_subcommand("task", "pause, resume or cancel a scheduled task");
  std::string task_action, task_id;
  add_common(task, true);
  task->add_option("ACTION", task_action, "pause | resume | cancel")
      ->required()
      ->check(CLI::IsMember({"pause", "resume", "cancel"}));
  task->add_option("ID", task_id, "task id")->required();

  auto* status = app.add_subcommand("status", "count jobs by state");
  add_common(status, true);

  auto* cron = app.add_subcommand("cron", "check cron expressions");
  cron->require_subcommand(1);
  auto* cron_next = cron->add_subcommand("next", "print the next fire times of EXPR as ISO-8601 UTC instants");
  std::string cron_expr, cron_tz, cron_from;
  int cron_count = 5;
  cron_next->add_option("EXPR", cron_expr, "5- or 6-field cron expression, or a macro (@daily)")->required();
  cron_next->add_option("--tz", cron_tz, "IANA time zone (default: the system's)");
  cron_next->add_option("--from", cron_from, "start after this ISO-8601 instant (default: now)");
  cron_next->add_option("--count", cron_count, "how many fire times (default 5)");
  cron_next->add_flag("--json", ctx.json, "print a JSON array of strings");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (run->parsed()) {
    Config cfg = LoadOrExit(ctx);
    SetUpLogging(cfg.log_level);
    return RunDaemon(cfg, {once});
  }
  if (jobs->parsed()) return CmdJobs(ctx, state, group, limit);
  if (job->parsed()) return CmdJob(ctx, id);
  if (status->parsed()) return CmdStatus(ctx);
  if (tasks->parsed()) return CmdTasks(ctx, group);
  if (task->parsed()) return CmdTaskControl(ctx, task_action, task_id);
  if (cancel->parsed()) return CmdControl(ctx, "cancel_job", control_id);
  if (retry->parsed()) return CmdControl(ctx, "retry_job", control_id);
  if (cron_next->parsed()) return CronNext(cron_expr, cron_tz, cron_from, cron_count, ctx.json, std::cout, std::cerr);
  return kExitUsage;
}

}  // namespace dropq::app
