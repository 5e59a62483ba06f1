// The `dropq` command line (docs/CLI.md): parsing with CLI11 here, one
// function per command in cli/cli_*.cc.
#include "cli/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/cli_commands.h"
#include "cli/cron_cmd.h"
#include "daemon/daemon.h"
#include "config/logging.h"
#include "cli/progress.h"
#include "base/units.h"

namespace dropq::app {
namespace {

int RunCommand(const Context& ctx, bool once) {
  Config cfg = LoadOrExit(ctx);
  std::string error;
  if (!SetUpLogging(cfg.log_level, &error)) {
    std::cerr << "dropq: " << error << "\n";
    return kExitUsage;
  }
  DaemonOptions opts{once};
  // The progress line is for a person watching: only on a terminal.
  SystemClock clock;
  std::unique_ptr<ProgressLine> progress;
  if (once && ::isatty(STDERR_FILENO) == 1) {
    progress = std::make_unique<ProgressLine>(clock);
    opts.observer = progress.get();
  }
  int rc = RunDaemon(cfg, opts);
  progress.reset();
  return rc;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"dropq: drop JSON files, get durable, audited, isolated work"};
  app.set_version_flag("--version", std::string("dropq ") + DROPQ_VERSION);
  app.require_subcommand(1);
  Context ctx;
  ctx.style = StdoutStyle();
  if (const char* env = std::getenv("DROPQ_CONFIG")) ctx.config_path = env;
  auto add_common = [&](CLI::App* sub, bool json) {
    sub->add_option("-c,--config", ctx.config_path,
                    "config file (default: $DROPQ_CONFIG, else ./dropq.yaml, else /etc/dropq/dropq.yaml)");
    if (json) sub->add_flag("--json", ctx.json, "print JSON instead of a table");
  };

  bool once = false;
  auto* run = app.add_subcommand("run", "run the daemon in the foreground");
  add_common(run, false);
  run->add_flag("--once", once, "ingest what is there, run every ready job, then exit");

  EnqueueOptions enq;
  auto* enqueue = app.add_subcommand("enqueue", "drop a job file into a group's tasks/ (atomically)");
  add_common(enqueue, true);
  enqueue->add_option("-g,--group", enq.group, "the group folder")->required();
  enqueue->add_option("-p,--prompt", enq.prompt, "the prompt")->required();
  enqueue->add_option("--run-at", enq.run_at, "not before this ISO-8601 time");
  enqueue->add_option("--priority", enq.priority, "higher runs first (default 0)")
      ->check(CLI::Range(-1'000'000, 1'000'000));
  enqueue->add_option("--id", enq.client_id, "client key: a second job with the same id in the group is not made");
  enqueue->add_option("--timeout", enq.timeout, "the job's timeout (30s, 5m; default: the config's)");
  enqueue->add_option("--max-attempts", enq.max_attempts, "attempts before the job fails (default: the config's)")
      ->check(CLI::Range(1, 100));
  enqueue->add_option("--after", enq.after, "run after this job (a job id, or a client id); repeatable");
  enqueue->add_option("--after-policy", enq.after_policy, "what --after jobs must do: succeeded (default) or finished")
      ->check(CLI::IsMember({"succeeded", "finished"}));
  enqueue->add_option("--unique-key", enq.unique_key, "no new job while one with this key is active or recent");
  enqueue->add_option("--unique-for", enq.unique_for, "with --unique-key: how long a job counts as recent (1h)");
  enqueue->add_flag("--wait", enq.wait, "wait for the result and print it");
  enqueue->add_option("--wait-timeout", enq.wait_timeout, "with --wait: give up after this long (exit 5)");

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

  auto* events = app.add_subcommand("events", "a job's audit trail, oldest first");
  add_common(events, true);
  events->add_option("ID", id, "job id")->required();

  LogsOptions logs_opts;
  std::string follow_timeout;
  auto* logs = app.add_subcommand("logs", "a job's run logs; --follow waits for it to finish");
  add_common(logs, true);
  logs->add_option("ID", logs_opts.id, "job id")->required();
  logs->add_option("--attempt", logs_opts.attempt, "only this attempt")->check(CLI::PositiveNumber);
  logs->add_flag("-f,--follow", logs_opts.follow, "print events and logs as they come, until the job has finished");
  logs->add_option("--timeout", follow_timeout, "with --follow: give up after this long (exit 5)");

  JobId control_id = 0;
  ControlOptions control;
  bool no_wait = false;
  auto add_control = [&](CLI::App* sub) {
    add_common(sub, true);
    sub->add_flag("--no-wait", no_wait, "drop the control file and exit, without waiting for the daemon's verdict");
    sub->add_option("--timeout", control.timeout, "how long to wait for the verdict (default 30s; then exit 5)");
  };
  auto* cancel = app.add_subcommand("cancel", "cancel a queued job, or stop a running one (graceful, then kill)");
  add_control(cancel);
  cancel->add_option("ID", control_id, "job id")->required();
  auto* retry = app.add_subcommand("retry", "requeue a failed or cancelled job with fresh attempts");
  add_control(retry);
  retry->add_option("ID", control_id, "job id")->required();

  auto* tasks = app.add_subcommand("tasks", "list scheduled tasks with their next run");
  add_common(tasks, true);
  tasks->add_option("--group", group, "only tasks of this group folder");
  auto* task = app.add_subcommand("task", "pause, resume, cancel or update a scheduled task");
  std::string task_action, task_id;
  add_control(task);
  task->add_option("ACTION", task_action, "pause | resume | cancel | update")
      ->required()
      ->check(CLI::IsMember({"pause", "resume", "cancel", "update"}));
  task->add_option("ID", task_id, "task id")->required();
  TaskUpdateOptions task_update;
  std::int64_t keep_runs = 0;
  std::vector<CLI::Option*> update_only = {
      task->add_option("--prompt", task_update.prompt, "update: the new prompt"),
      task->add_option("--cron", task_update.cron, "update: a new cron schedule (next run recomputed from now)"),
      task->add_option("--interval", task_update.interval, "update: a new interval schedule (30s, 5m, 1h)"),
      task->add_option("--once", task_update.once, "update: a new once time (ISO-8601)"),
      task->add_option("--tz", task_update.tz, "update: the IANA zone the schedule is read in"),
      task->add_option("--context-mode", task_update.context_mode, "update: group | isolated"),
      task->add_option("--overlap", task_update.overlap, "update: forbid | allow | replace"),
      task->add_option("--catch-up", task_update.catch_up, "update: run_once | skip | run_all"),
      task->add_option("--starting-deadline", task_update.starting_deadline, "update: skip a slot this late"),
      task->add_option("--keep-runs", keep_runs, "update: task_runs rows kept"),
  };

  auto* status = app.add_subcommand("status", "count jobs by state");
  add_common(status, true);

  std::string older_than;
  bool dry_run = false;
  auto* prune = app.add_subcommand("prune", "remove finished jobs, their runs, events, logs and results");
  add_common(prune, true);
  prune->add_option("--older-than", older_than, "finished longer ago than this (30d, 12h)")->required();
  prune->add_flag("--dry-run", dry_run, "count what would be removed, remove nothing");

  auto* check_config = app.add_subcommand("check-config", "validate the config and print the effective one");
  add_common(check_config, true);

  auto* doctor = app.add_subcommand("doctor", "check runtime, sandboxing, directories, disk and database");
  add_common(doctor, true);

  std::string init_dir;
  auto* init = app.add_subcommand("init", "write a starter config DIR/dropq.yaml and create its root DIR/var");
  init->add_option("DIR", init_dir, "the folder (created if missing)")->required();

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

  if (run->parsed()) return RunCommand(ctx, once);
  if (init->parsed()) return CmdInit(init_dir);
  // Commands other than `run` log only warnings, on stderr, never on stdout
  // (which carries their output).
  // An invalid DROPQ_LOG_LEVEL is reported by `check-config`; here it only
  // means the default.
  if (std::string ignored; !SetUpLogging("warn", &ignored)) spdlog::set_level(spdlog::level::warn);
  if (logs->parsed() && !follow_timeout.empty()) {
    auto d = ParseDurationMs(follow_timeout);
    if (!d || *d <= 0) {
      std::cerr << "dropq: --timeout: invalid duration \"" << follow_timeout << "\" (e.g. 30s, 5m)\n";
      return kExitUsage;
    }
    logs_opts.timeout_ms = *d;
  }
  if (enqueue->parsed()) return CmdEnqueue(ctx, enq);
  if (jobs->parsed()) return CmdJobs(ctx, state, group, limit);
  if (job->parsed()) return CmdJob(ctx, id);
  if (events->parsed()) return CmdEvents(ctx, id);
  if (logs->parsed()) return CmdLogs(ctx, logs_opts);
  if (status->parsed()) return CmdStatus(ctx);
  if (tasks->parsed()) return CmdTasks(ctx, group);
  control.wait = !no_wait;
  if (task->parsed() && task_action == "update") {
    if (update_only.back()->count() > 0) task_update.keep_runs = keep_runs;
    return CmdTaskUpdate(ctx, task_id, task_update, control);
  }
  if (task->parsed()) {
    for (const CLI::Option* o : update_only) {
      if (o->count() > 0) {
        std::cerr << "dropq: task " << task_action << ": " << o->get_name() << " is only for task update\n";
        return kExitUsage;
      }
    }
    return CmdTaskControl(ctx, task_action, task_id, control);
  }
  if (cancel->parsed()) return CmdControl(ctx, "cancel_job", control_id, control);
  if (retry->parsed()) return CmdControl(ctx, "retry_job", control_id, control);
  if (prune->parsed()) return CmdPrune(ctx, older_than, dry_run);
  if (check_config->parsed()) return CmdCheckConfig(ctx);
  if (doctor->parsed()) return CmdDoctor(ctx);
  if (cron_next->parsed()) return CronNext(cron_expr, cron_tz, cron_from, cron_count, ctx.json, std::cout, std::cerr);
  return kExitUsage;
}

}  // namespace dropq::app
