#pragma once
// The CLI's commands, one function each (docs/CLI.md); cli/cli.cc parses the
// command line and calls them. Each returns the process exit code.
#include <cstdint>
#include <optional>
#include <string>

#include "cli/cli_common.h"

namespace dropq::app {

// cli/cli_jobs.cc: reading the queue and steering jobs and tasks.
int CmdJobs(const Context& ctx, const std::string& state, const std::string& group, int limit);
int CmdJob(const Context& ctx, JobId id);
int CmdEvents(const Context& ctx, JobId id);
int CmdStatus(const Context& ctx);
int CmdTasks(const Context& ctx, const std::string& group);

// cli/cli_control.cc: cancel, retry and task pause|resume|cancel, which wait
// for the daemon's verdict on their control file.
struct ControlOptions {
  bool wait = true;     // false: --no-wait, print the file dropped and exit 0
  std::string timeout;  // how long to wait for the verdict ("30s"); empty: 30 s
};
int CmdControl(const Context& ctx, const std::string& type, JobId id, const ControlOptions& opts);
int CmdTaskControl(const Context& ctx, const std::string& action, const std::string& id, const ControlOptions& opts);
// `task update ID`: what to change, as the update_task file's fields
// (FILES.md); an empty string or an unset keep_runs is not given. The
// daemon checks the values and rejects the file with the reason (exit 6).
struct TaskUpdateOptions {
  std::string prompt;
  std::string cron, interval, once;  // at most one: the new schedule
  std::string tz;
  std::string context_mode;
  std::string overlap;
  std::string catch_up;
  std::string starting_deadline;
  std::optional<std::int64_t> keep_runs;
};
int CmdTaskUpdate(const Context& ctx, const std::string& id, const TaskUpdateOptions& update,
                  const ControlOptions& opts);

// cli/cli_logs.cc
struct LogsOptions {
  JobId id = 0;
  std::int64_t attempt = 0;  // 0: every attempt
  bool follow = false;
  std::int64_t timeout_ms = 0;  // --timeout with --follow; 0: none
};
int CmdLogs(const Context& ctx, const LogsOptions& opts);

// cli/cli_enqueue.cc
struct EnqueueOptions {
  std::string group;
  std::string prompt;
  std::string run_at;  // ISO-8601; empty: now
  std::int64_t priority = 0;
  std::string client_id;          // the file's `id` (dedupe); empty: none
  std::string timeout;            // the job's timeout ("30s"); empty: the config's
  std::int64_t max_attempts = 0;  // 0: the config's
  // Dependencies and unique jobs (docs/FILES.md): `after` entries of digits
  // only are job ids, the others client ids.
  std::vector<std::string> after;
  std::string after_policy;  // succeeded | finished; empty: the default
  std::string unique_key;
  std::string unique_for;  // a duration; empty: none
  bool wait = false;
  std::string wait_timeout;  // a duration; empty: wait as long as it takes
};
int CmdEnqueue(const Context& ctx, const EnqueueOptions& opts);

// cli/cli_admin.cc
int CmdPrune(const Context& ctx, const std::string& older_than, bool dry_run);
int CmdCheckConfig(const Context& ctx);
int CmdDoctor(const Context& ctx);

// cli/cli_init.cc: a starter config DIR/dropq.yaml and its root DIR/var.
int CmdInit(const std::string& dir);

}  // namespace dropq::app
