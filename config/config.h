#pragma once
// dropq's configuration, loaded from YAML (yaml-cpp). The contract is
// docs/CONFIG.md. Loading is strict: an unknown key, a value of the wrong
// type or out of range, or an invalid group folder throws ConfigError naming
// the key path (e.g. "groups[1].folder") and the reason; `dropq` turns that
// into exit code 2.
//
// Relative paths (root, bwrap.rootfs, bwrap.ro_binds[].host) are resolved
// against the directory holding the config file, so a config works from any
// working directory; they come out absolute, lexically normal and without a
// trailing slash. Durations are integer milliseconds or strings with a unit
// ("300s", "5m"); sizes integer bytes or strings with a unit ("10MiB"); see
// base/units.h. An empty `bwrap:` or list key counts as empty.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobs/job.h"
#include "jobs/rate_limit.h"

namespace dropq::app {

// Where a config error is: `line` and `column` are 1-based (0: unknown, e.g.
// a required key that is absent everywhere); `file` is set by LoadConfigFile.
// what() is "key: reason" from LoadConfigString and
// "file:line:column: key: reason" (docs/CONFIG.md) from LoadConfigFile.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& key, const std::string& reason, int line = 0, int column = 0,
              const std::string& file = "")
      : std::runtime_error(Format(key, reason, line, column, file)),
        key_(key),
        reason_(reason),
        line_(line),
        column_(column),
        file_(file) {}
  const std::string& key() const { return key_; }
  const std::string& reason() const { return reason_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& file() const { return file_; }

 private:
  static std::string Format(const std::string& key, const std::string& reason, int line, int column,
                            const std::string& file) {
    std::string where;
    if (!file.empty()) {
      where = file;
      if (line > 0) where += ":" + std::to_string(line) + ":" + std::to_string(column);
      where += ": ";
    }
    // YAML syntax errors have no key: "file:3:5: illegal map value".
    return where + (key == "(yaml)" && !file.empty() ? "" : key + ": ") + reason;
  }
  std::string key_;
  std::string reason_;
  int line_ = 0;
  int column_ = 0;
  std::string file_;
};

// One of a group's containerConfig.additionalMounts (NanoClaw's fields),
// validated against the mount allowlist at start-up.
struct AdditionalMountConfig {
  std::string host_path;                      // as written; `~` expands to $HOME
  std::optional<std::string> container_path;  // relative, under /workspace/extra/
  std::optional<bool> readonly;
};

// A completion hook (`on_finish`, docs/CONFIG.md): told when a job reaches
// its final state (succeeded, failed for good, cancelled), with the job's
// result file as the payload. Only ever from the config: it runs on the
// host, so nothing a group writes can set one.
struct FinishHook {
  std::vector<std::string> command;  // an argv (no shell), the payload on stdin; or
  std::string url;                   // http:// or https:// (certificate verified), the payload POSTed
  bool failures_only = true;         // `when: failed` (the default); `when: always`: every final state
  std::int64_t timeout_ms = 30'000;  // per try: then the command's group is killed, the request abandoned
  std::int64_t max_attempts = 5;     // tries before it is given up (1 s, 2 s, 4 s, ... apart)
  // False for `on_finish: null`, which turns a global hook off for a group.
  bool enabled() const { return !command.empty() || !url.empty(); }
  bool operator==(const FinishHook&) const = default;
};

// The largest max_concurrent and max_concurrent_per_group: jobs in flight
// on a cluster runtime may be hundreds; each running attempt holds a child
// process and its pipes on this host, so a limit beyond this is a typo.
inline constexpr std::int64_t kMaxConcurrentLimit = 100'000;

struct GroupConfig {
  std::string folder;  // ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, not "global", unique ignoring case
  std::string name;    // defaults to folder
  std::optional<std::string> jid;
  bool is_main = false;                    // YAML key `main`
  std::optional<std::int64_t> timeout_ms;  // overrides the global timeout (`timeout` or containerConfig.timeout)
  std::vector<AdditionalMountConfig> additional_mounts;  // containerConfig.additionalMounts
  std::optional<FinishHook> on_finish;                   // replaces the global one; nullopt: the global one
  // `rate: 10/min` (docs/CONFIG.md, "Rate limits"): at most that many
  // attempt starts in any window of the period. Unset: the top-level
  // `rate`; `rate: none` (rate_unlimited) opts out of it.
  std::optional<RateLimit> rate;
  bool rate_unlimited = false;
  // How many of its jobs may run at once; unset: the top-level
  // max_concurrent_per_group (docs/CONFIG.md, "Parallel jobs of one group").
  std::optional<std::int64_t> max_concurrent_per_group;
};

// docker / podman / Apple container: the image the agent runs in.
struct ContainerRuntimeConfig {
  std::string image;
  std::vector<std::string> extra_args;  // before the image
  std::string binary;                   // default: docker, podman or container
};

// runtime: kubernetes (docs/RUNTIMES.md): a PersistentVolumeClaim holding
// the host directory host_path at sub_path within the claim.
struct KubernetesVolumeConfig {
  std::string claim;
  std::string host_path;  // absolute after loading
  std::string sub_path;   // relative, normal; "" = the claim's top
  bool operator==(const KubernetesVolumeConfig&) const = default;
};

struct KubernetesConfig {
  std::string binary = "kubectl";
  std::string image;
  std::string kubeconfig;     // absolute after loading; "" = kubectl's default
  std::string context;        // "" = the kubeconfig's current context
  std::string k8s_namespace;  // `namespace:`; "" = the context's
  std::vector<KubernetesVolumeConfig> volumes;
  std::map<std::string, std::string> requests, limits;  // resource name → quantity
  bool operator==(const KubernetesConfig&) const = default;
};

struct BindMount {
  std::string host;       // absolute after loading
  std::string container;  // absolute path inside the sandbox
};

struct BwrapConfig {
  std::optional<std::string> rootfs;    // a directory used as / instead of the host's /usr
  bool network = false;                 // share the host network namespace
  std::vector<std::string> extra_args;  // appended before the agent argv
  std::vector<BindMount> ro_binds;      // operator-trusted read-only binds (e.g. the agent binary)
};

// runtime: slurm (docs/RUNTIMES.md): srun's options and the sandbox the
// agent runs in on the node.
struct SlurmConfig {
  std::string shared_root;  // absolute: storage every node sees, holding root
  std::string inner = "bwrap";  // bwrap | podman | apptainer | bare
  std::string image;            // podman and apptainer
  std::string partition, account, qos, mem, gres;  // "" = not passed
  std::int64_t cpus = 0;                           // --cpus-per-task; 0 = not passed
  std::vector<std::string> extra_args;             // srun's, before the inner command
  std::vector<std::string> inner_args;             // the inner sandbox's
  std::int64_t queue_timeout_ms = 3'600'000;       // longest wait for an allocation
  std::string accounting = "auto";                 // auto | on | off: whether sacct is asked after each step
  bool operator==(const SlurmConfig&) const = default;
};

// A recurring task declared in the config (docs/SCHEDULER.md): upserted at
// every start; tasks removed from the file are removed.
struct ScheduleConfig {
  std::string id;
  std::string group;
  std::string prompt;
  std::string schedule_type;  // cron | interval | once (the key used)
  std::string schedule_value;
  std::optional<std::string> tz;  // default: config timezone
  std::string context_mode = "isolated";
  std::optional<std::string> overlap;   // forbid | allow | replace
  std::optional<std::string> catch_up;  // run_once | skip | run_all
  std::optional<std::int64_t> catch_up_max;
  std::optional<std::int64_t> starting_deadline_ms;
  std::optional<std::int64_t> keep_runs;
  std::optional<std::string> unique_key;  // docs/FILES.md, "Unique jobs"
  std::optional<std::int64_t> unique_for_ms;
};

// The read-only web dashboard and /metrics (docs/DASHBOARD.md). Off unless
// `listen` is set; a non-loopback address needs allow_remote: true, and
// allow_remote needs all of tls_cert, tls_key and token_file.
struct DashboardConfig {
  std::string listen;  // "" = off; "127.0.0.1:8080", "[::1]:8080", "localhost:0"
  std::string host;    // parsed from listen
  int port = 0;        // 0 = any free port (logged at start)
  bool allow_remote = false;
  std::string tls_cert;    // PEM certificate (chain); "" = plain HTTP (loopback only)
  std::string tls_key;     // PEM private key of tls_cert
  std::string token_file;  // bearer token; "" = no token asked (loopback only)
};

struct Config {
  std::string config_path;        // absolute path of the file loaded; empty from LoadConfigString
  std::string root;               // absolute; default "./var" beside the config
  std::string runtime = "bwrap";  // bwrap | process | docker | podman | container | kubernetes | slurm
  // argv run inside the sandbox; non-empty. Required for bwrap and process;
  // docker, podman and container may leave it out (empty): the image's
  // entrypoint runs the agent.
  std::vector<std::string> agent;
  std::int64_t max_concurrent = 5;      // 1..kMaxConcurrentLimit
  // Jobs of one group running at once, unless the group sets its own;
  // 1..kMaxConcurrentLimit. 1: NanoClaw's one container per group.
  std::int64_t max_concurrent_per_group = 1;
  std::int64_t timeout_ms = 300'000;    // > 0
  std::int64_t kill_grace_ms = 15'000;  // SIGTERM → SIGKILL; >= 0
  std::int64_t max_output = 10 << 20;   // bytes captured per stream; >= 1024
  std::int64_t max_job_file = 1 << 20;  // bytes; larger dropped files are rejected unread
  std::int64_t max_attempts = 1;        // default attempts per job; >= 1
  // Default interruptions per job (attempts dropq's own stop cut short); >= 0.
  std::int64_t max_interruptions = kDefaultMaxInterruptions;
  std::int64_t max_queued_per_group = 10'000;      // queued jobs a group may have; over it, files are rejected
  std::int64_t shutdown_grace_ms = 30'000;         // on SIGTERM: how long running jobs may finish
  std::string session_dir = "/home/node/.claude";  // container path of the group's session dir
  std::string log_level = "info";                  // trace|debug|info|warn|error|critical|off
  BwrapConfig bwrap;
  ContainerRuntimeConfig docker, podman, container;
  KubernetesConfig kubernetes;
  SlurmConfig slurm;
  std::string mount_allowlist;  // absolute; default ~/.config/dropq/mount-allowlist.json
  // Names of secrets passed to agents in the stdin JSON only; values come
  // from dropq's environment, or else from env_file.
  std::vector<std::string> secrets = {"CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY"};
  std::optional<std::string> env_file;  // KEY=value lines (NanoClaw's .env)
  // Delivery of messages agents write to messages/: an argv run with the
  // message JSON on stdin. Empty: a line in <root>/outbox/<group>.jsonl.
  std::vector<std::string> on_message;
  // The completion hook of every group's jobs, unless a group sets its own.
  std::optional<FinishHook> on_finish;
  // The default rate limit of every group without a `rate` of its own,
  // registered groups included; nullopt: none.
  std::optional<RateLimit> rate;
  std::vector<GroupConfig> groups;  // non-empty; exactly one is_main
  std::string timezone;             // IANA zone for schedules; "" = the system's
  std::vector<ScheduleConfig> schedules;
  DashboardConfig dashboard;

  const GroupConfig* FindGroup(const std::string& folder) const;
  const GroupConfig& MainGroup() const;
  // The hook for a job of `group` (a group's own, else the global one), or
  // null when there is none. `group` null: a group registered at run time,
  // which has only the global one.
  const FinishHook* FinishHookFor(const GroupConfig* group) const;
  // The limit that applies to `folder`: its own `rate`, else the top-level
  // one (a group registered at run time has only that); nullopt: none.
  std::optional<RateLimit> RateFor(const std::string& folder) const;
  // How many jobs of `folder` may run at once: its own
  // max_concurrent_per_group, else the top-level one.
  std::int64_t MaxConcurrentPerGroupFor(const std::string& folder) const;
};

// Throws ConfigError for every invalid input, std::runtime_error only when the
// file cannot be read.
Config LoadConfigFile(const std::string& path);
// Same rules, from text; relative paths resolve against `base_dir`.
Config LoadConfigString(const std::string& yaml, const std::string& base_dir);

// The known key closest to `unknown` (edit distance <= 2, ties: the first in
// `known`), for "did you mean" hints; empty when none is close.
std::string ClosestKey(const std::string& unknown, const std::vector<std::string>& known);

// NanoClaw's folder rule.
bool IsValidGroupFolder(const std::string& folder);

}  // namespace dropq::app
