// dropq cancel | retry | task pause|resume|cancel|update: control commands through
// the daemon's own front door, with its verdict.
//
// The command is a control file in the main group's tasks/ (main may act for
// any group), written atomically, so the change is authorised, audited and
// applied by the one process that owns the queue. The daemon records the
// file's verdict — an `applied` or `rejected` event naming the file,
// committed with what it changed (docs/DESIGN.md, "One signal to wait on") —
// and the command waits for it, prints it and exits with its code
// (docs/CLI.md, "Control commands").
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/text.h"
#include "base/units.h"
#include "cli/cli_commands.h"
#include "daemon/instance_lock.h"
#include "jobs/layout.h"
#include "jobs/tasks.h"
#include "jobs/wait.h"

namespace dropq::app {
namespace {

constexpr std::int64_t kDefaultVerdictWaitMs = 30'000;

// What `applied` did, in words: "job 4 cancelled", "task t1 paused".
std::string Describe(const nlohmann::json& result) {
  if (!result.is_object()) return text::Dump(result);
  std::string what;
  if (result.contains("job")) what = "job " + text::Dump(result["job"]);
  if (result.contains("task") && result["task"].is_string()) what = "task " + result["task"].get<std::string>();
  std::string action = result.value("action", std::string("applied"));
  if (action == "stopping") return what + ": stopping (graceful stop, then kill after kill_grace)";
  if (action == "updated" && result.contains("changed") && result["changed"].is_array()) {
    // "task digest updated (prompt, schedule_value); active, next run ..."
    std::string changed;
    for (const auto& f : result["changed"]) {
      if (!changed.empty()) changed += ", ";
      changed += f.is_string() ? f.get<std::string>() : text::Dump(f);
    }
    std::string line = what + " updated" + (changed.empty() ? " (nothing changed)" : " (" + changed + ")");
    if (result.contains("status") && result["status"].is_string()) line += "; " + result["status"].get<std::string>();
    if (result.contains("next_run") && result["next_run"].is_string()) {
      line += ", next run " + result["next_run"].get<std::string>();
    }
    return line;
  }
  return what.empty() ? action : what + " " + action;
}

// Drops `body` as `name` into main's tasks/, then waits for its verdict.
// `subject` is what the JSON output names ({"job": 4} or {"task": "t1"}).
int DropAndWait(const Context& ctx, const ControlOptions& opts, const Config& cfg, const std::string& name,
                const nlohmann::json& body, nlohmann::json out) {
  std::int64_t wait_ms = kDefaultVerdictWaitMs;
  if (!opts.timeout.empty()) {
    auto d = ParseDurationMs(opts.timeout);
    if (!d || *d <= 0) {
      std::cerr << "dropq: --timeout: invalid duration \"" << opts.timeout << "\" (e.g. 30s, 5m)\n";
      return kExitUsage;
    }
    wait_ms = *d;
  }
  SystemClock clock;
  Layout layout(cfg.root);
  const std::string main = cfg.MainGroup().folder;
  // Only events newer than this can be the new file's verdict.
  std::int64_t after = 0;
  if (opts.wait) after = OrExit(OpenReaderOrExit(cfg, clock)->LastEventId());

  auto path = layout.TasksDir(main) / name;
  if (Status s = WriteFileAtomic(path, text::Dump(body) + "\n"); !s.ok()) {
    std::cerr << "dropq: " << s.message() << "\n";
    return kExitFailure;
  }
  out["file"] = path.string();
  auto print = [&](const std::string& verdict, const std::string& line) {
    out["verdict"] = verdict;
    if (ctx.json) {
      std::cout << text::Dump(out) << "\n";
    } else {
      std::cout << line << "\n";
    }
  };
  if (!opts.wait) {
    print("dropped", "dropped " + path.string());
    return kExitOk;
  }
  if (!InstanceLock::IsHeld(layout.LockPath().string())) {
    print("queued",
          "queued: no dropq is running on " + cfg.root + "; applies when dropq next starts (" + path.string() + ")");
    return kExitOk;
  }

  std::optional<JobEvent> verdict;
  auto look = [&](Store* store) {
    if (store == nullptr) return false;
    auto v = store->FindVerdict(main, name, after);
    if (v.ok() && *v) verdict = std::move(*v);
    return verdict.has_value();
  };
  if (!WaitForStore(layout.DatabasePath(), look, wait_ms)) {
    print("pending", "no verdict after " + HumanDuration(wait_ms) + "; " + path.string() +
                         " stays in tasks/ and applies when the daemon reaches it");
    return kExitTimeout;
  }
  nlohmann::json detail = verdict->detail ? ParseOrString(*verdict->detail) : nlohmann::json::object();
  if (verdict->event == "rejected") {
    std::string reason = detail.is_object() ? detail.value("reason", std::string("?")) : "?";
    out["reason"] = reason;
    print("rejected", "rejected: " + reason);
    return kExitRejected;
  }
  nlohmann::json result = detail.is_object() && detail.contains("result") ? detail["result"] : nlohmann::json();
  out["result"] = result;
  print("applied", Describe(result));
  return kExitOk;
}

// A name no other writer uses: the command, its subject, the time, this pid.
std::string ControlFileName(const std::string& type, const std::string& subject, TimeMs now) {
  return "dropq-" + type + "-" + subject + "-" + std::to_string(now) + "-" + std::to_string(::getpid()) + ".json";
}

}  // namespace

int CmdControl(const Context& ctx, const std::string& type, JobId id, const ControlOptions& opts) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  {
    auto store = OpenReaderOrExit(cfg, clock);
    if (!FindJob(*store, id)) return kExitNotFound;
  }
  nlohmann::json body = {{"type", type}, {"jobId", id}, {"createdBy", "dropq cli"}};
  return DropAndWait(ctx, opts, cfg, ControlFileName(type, std::to_string(id), clock.NowMs()), body, {{"job", id}});
}

int CmdTaskControl(const Context& ctx, const std::string& action, const std::string& id, const ControlOptions& opts) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  {
    auto store = OpenReaderOrExit(cfg, clock);
    TaskStore tasks(*store);
    if (!OrExit(tasks.Get(id))) {
      std::cerr << "dropq: no task " << text::ForLog(id) << "\n";
      return kExitNotFound;
    }
  }
  const std::string type = action + "_task";
  nlohmann::json body = {{"type", type}, {"taskId", id}, {"createdBy", "dropq cli"}};
  // The task id is the group's text: it stays out of the file name.
  return DropAndWait(ctx, opts, cfg, ControlFileName(type, "task", clock.NowMs()), body, {{"task", id}});
}

int CmdTaskUpdate(const Context& ctx, const std::string& id, const TaskUpdateOptions& u, const ControlOptions& opts) {
  nlohmann::json body = {{"type", "update_task"}, {"taskId", id}, {"createdBy", "dropq cli"}};
  auto put = [&](const char* field, const std::string& value) {
    if (!value.empty()) body[field] = value;
  };
  put("prompt", u.prompt);
  int schedules = 0;
  for (const auto& [type, value] :
       {std::pair<const char*, const std::string&>{"cron", u.cron}, {"interval", u.interval}, {"once", u.once}}) {
    if (value.empty()) continue;
    ++schedules;
    body["schedule_type"] = type;
    body["schedule_value"] = value;
  }
  if (schedules > 1) {
    std::cerr << "dropq: task update: give at most one of --cron, --interval, --once\n";
    return kExitUsage;
  }
  put("tz", u.tz);
  put("context_mode", u.context_mode);
  put("overlap", u.overlap);
  put("catch_up", u.catch_up);
  put("starting_deadline", u.starting_deadline);
  if (u.keep_runs) body["keep_runs"] = *u.keep_runs;
  if (body.size() == 3) {
    std::cerr << "dropq: task update: nothing to update (--prompt, --cron, --interval, --once, --tz, "
                 "--context-mode, --overlap, --catch-up, --starting-deadline, --keep-runs)\n";
    return kExitUsage;
  }
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  {
    auto store = OpenReaderOrExit(cfg, clock);
    TaskStore tasks(*store);
    if (!OrExit(tasks.Get(id))) {
      std::cerr << "dropq: no task " << text::ForLog(id) << "\n";
      return kExitNotFound;
    }
  }
  return DropAndWait(ctx, opts, cfg, ControlFileName("update_task", "task", clock.NowMs()), body, {{"task", id}});
}

}  // namespace dropq::app
