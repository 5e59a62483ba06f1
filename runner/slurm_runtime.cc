#include "runner/slurm_runtime.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "base/process.h"
#include "base/text.h"
#include "runner/container_runtime.h"

namespace dropq::runner {
namespace {

namespace fs = std::filesystem;

// sinfo, squeue and scancel answer within this or count as failed, so a
// controller that does not answer cannot hang start-up.
constexpr std::int64_t kClientTimeoutMs = 30'000;
// How long start-up waits for cancelled orphans to leave the queue
// (scancel is asynchronous; Slurm's KillWait is 30 s by default).
constexpr std::int64_t kOrphanWaitMs = 120'000;

// The step's wrapper: the marker on stderr the moment the step runs on a
// node, then the inner command in its place ($0 is a name for messages).
// The marker line carries the step's job id, which sacct is asked about
// (runtime.h, the start detail).
constexpr char kWrapper[] =
    "printf '%s\\n' \"$DROPQ_SLURM_MARKER${SLURM_JOB_ID:+ $SLURM_JOB_ID}\" >&2; unset DROPQ_SLURM_MARKER; "
    "exec \"$@\"";
// The longest a sacct field may be to be kept.
constexpr std::size_t kPlacementFieldMax = 256;

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// srun's environment: what it needs to find the controller and nothing of
// dropq's own (its secrets above all). SLURM_* beyond SLURM_CONF are left
// out: a SLURM_JOB_ID inherited from an enclosing job would put every
// step into that job's allocation.
std::vector<std::string> ClientEnv() {
  std::vector<std::string> env = {"PATH=" + EnvOr("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME=" + EnvOr("HOME", "/"),
                                  "LANG=C.UTF-8"};
  for (const char* name : {"SLURM_CONF", "TMPDIR"}) {
    if (const char* v = std::getenv(name); v != nullptr) env.push_back(std::string(name) + "=" + v);
  }
  return env;
}

std::string NameOf(const std::string& env_entry) { return env_entry.substr(0, env_entry.find('=')); }

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// True when `path` is `dir` or below it (both absolute and normal).
bool IsWithin(const fs::path& path, const fs::path& dir) {
  auto rel = path.lexically_normal().lexically_relative(dir.lexically_normal());
  return !rel.empty() && *rel.begin() != "..";
}

class SlurmRuntime final : public Runtime {
 public:
  explicit SlurmRuntime(SlurmOptions o) : o_(std::move(o)), env_(ClientEnv()) {
    if (o_.inner == "bwrap") {
      inner_ = MakeBwrapRuntime(o_.bwrap);
    } else if (o_.inner == "podman") {
      int grace_s = static_cast<int>((o_.kill_grace_ms + 999) / 1000);
      inner_ = MakeDockerRuntime({"podman", o_.image, o_.inner_args, grace_s, o_.instance_id});
    } else if (o_.inner == "bare") {
      inner_ = MakeProcessRuntime(o_.binds);
    }
    accounting_ = o_.accounting == "on";
  }

  std::string_view name() const override { return "slurm"; }
  bool isolates() const override { return o_.inner != "bare"; }

  SpawnSpec Build(const SandboxSpec& spec) const override {
    SpawnSpec s;
    s.env = env_;
    if (spec.container_name.empty()) return s;  // the stop helpers' environment
    std::vector<std::string> a = {"srun", "--job-name", SlurmJobName(o_.instance_id, spec.container_name), "--comment",
                                  Comment(), "-n1"};
    if (spec.timeout_ms > 0) {
      std::int64_t minutes = (spec.timeout_ms + o_.kill_grace_ms + 59'999) / 60'000 + 1;
      a.insert(a.end(), {"--time", std::to_string(minutes)});
    }
    Resources(a);
    a.insert(a.end(), {"/bin/sh", "-c", kWrapper, "dropq-step"});
    SpawnSpec inner = Inner(spec);
    a.insert(a.end(), inner.argv.begin(), inner.argv.end());
    // srun exports its environment to the step: the marker, and for a bare
    // inner command the mounts as variables (the process runtime's).
    s.env.push_back(std::string("DROPQ_SLURM_MARKER=") + kSlurmStartMarker);
    if (o_.inner == "bare") {
      for (const auto& e : inner.env) {
        bool have = false;
        for (const auto& c : s.env) have = have || NameOf(c) == NameOf(e);
        if (!have) s.env.push_back(e);
      }
    }
    s.argv = std::move(a);
    return s;
  }

  Status CheckAvailable() const override {
    if (o_.shared_root.empty()) return Status::InvalidArgument("slurm runtime: no slurm.shared_root configured");
    if (!o_.root.empty() && !IsWithin(o_.root, o_.shared_root)) {
      return Status::InvalidArgument("slurm runtime: the root " + o_.root + " is not inside slurm.shared_root " +
                                     o_.shared_root + ": the nodes would not see the group and IPC folders");
    }
    if ((o_.inner == "podman" || o_.inner == "apptainer") && o_.image.empty()) {
      return Status::InvalidArgument("slurm runtime: inner " + o_.inner + " needs slurm.image");
    }
    auto r = Client({"sinfo", "-h", "-o", "%P %a"});
    if (!r.ok()) {
      std::string conf = EnvOr("SLURM_CONF", "/etc/slurm/slurm.conf");
      if (r.status().code() == Status::Code::kNotFound) {
        return Status::NotFound("slurm runtime: " + r.status().message() +
                                " — install the Slurm client (Debian: apt-get install slurm-client), or choose "
                                "another runtime");
      }
      return Status::IOError("slurm runtime unavailable: " + r.status().message() +
                             " — is slurmctld running and reachable, and munge running here? (config " + conf + ")");
    }
    if (o_.accounting == "auto") {
      auto config = Client({"scontrol", "show", "config"});
      accounting_ = config.ok() && SlurmAccountingConfigured(config->out);
      if (!config.ok()) {
        spdlog::warn("slurm runtime: cannot tell whether accounting is on ({}); sacct is not asked",
                     config.status().message());
      }
      spdlog::info("slurm runtime: accounting {}", accounting_ ? "on: sacct is asked after each step" : "off");
    }
    return Status::Ok();
  }

  std::vector<std::string> AccountingArgv(std::string_view start_detail) const override {
    // The job id from the marker line: digits only, or nothing is asked.
    if (!accounting_ || start_detail.empty() || start_detail.find_first_not_of("0123456789") != std::string::npos) {
      return {};
    }
    return {"sacct", "-j", std::string(start_detail), "-X", "-n", "-P", "-o", "NodeList,State"};
  }
  std::optional<ClusterPlacement> ReadAccounting(std::string_view out) const override {
    return ParseSacctPlacement(out);
  }

  std::vector<std::string> StopArgv(const std::string& container_name) const override {
    return Scancel("TERM", container_name);
  }
  std::vector<std::string> KillArgv(const std::string& container_name) const override {
    return Scancel("KILL", container_name);
  }

  std::string_view StartMarker() const override { return kSlurmStartMarker; }
  std::int64_t StartTimeoutMs() const override { return o_.queue_timeout_ms; }

  Result<int> CleanupOrphans() const override {
    if (o_.instance_id.empty()) {
      return Status::InvalidArgument("slurm runtime: no instance id, so this root's steps cannot be told apart; none "
                                     "cancelled");
    }
    auto ids = OrphanIds();
    if (!ids.ok()) return ids.status();
    if (ids->empty()) return 0;
    std::vector<std::string> cancel = {"scancel"};
    cancel.insert(cancel.end(), ids->begin(), ids->end());
    if (auto r = Client(cancel); !r.ok()) return r.status();
    // scancel only asks: the group folders stay in use until the steps
    // have ended, so no job of this root starts before they are gone.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kOrphanWaitMs);
    for (;;) {
      auto left = OrphanIds();
      if (!left.ok()) return left.status();
      if (left->empty()) break;
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::IOError("slurm runtime: " + std::to_string(left->size()) +
                               " cancelled step(s) of this root are still in the queue after " +
                               std::to_string(kOrphanWaitMs / 1000) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return static_cast<int>(ids->size());
  }

  std::optional<Status> ProbeSharedStorage() const override {
    // A file written here must read back the same on a node.
    fs::path dir = !o_.root.empty() && fs::is_directory(o_.root) ? fs::path(o_.root) : fs::path(o_.shared_root);
    std::string token = std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid());
    fs::path file = dir / (".dropq-slurm-probe-" + token);
    {
      std::ofstream out(file);
      out << token;
      if (!out) return Status::IOError("cannot write the probe file " + file.string());
    }
    std::vector<std::string> a = {"srun", "--job-name", SlurmJobName(o_.instance_id, "dropq-probe-0"), "--comment",
                                  Comment(), "-n1", "--time", "1"};
    Resources(a);
    a.insert(a.end(), {"cat", file.string()});
    auto r = Client(a, 120'000);
    std::error_code ec;
    fs::remove(file, ec);
    if (!r.ok()) return Status::IOError("the probe step failed: " + r.status().message());
    if (r->out != token) {
      return Status::IOError("a node read other contents from " + file.string() +
                             ": it does not see this host's " + dir.string() + " under the same path");
    }
    return Status::Ok();
  }

 private:
  std::string Comment() const { return "dropq:" + o_.instance_id; }

  // partition, account, qos, cpus, mem, gres and extra_args.
  void Resources(std::vector<std::string>& a) const {
    for (const auto& [flag, value] : {std::pair<const char*, const std::string*>{"--partition", &o_.partition},
                                      {"--account", &o_.account},
                                      {"--qos", &o_.qos},
                                      {"--mem", &o_.mem},
                                      {"--gres", &o_.gres}}) {
      if (!value->empty()) a.insert(a.end(), {flag, *value});
    }
    if (o_.cpus > 0) a.insert(a.end(), {"--cpus-per-task", std::to_string(o_.cpus)});
    a.insert(a.end(), o_.extra_args.begin(), o_.extra_args.end());
  }

  SpawnSpec Inner(const SandboxSpec& spec) const {
    if (inner_) return inner_->Build(spec);
    // apptainer: its own namespaces and environment, the mounts as binds.
    std::vector<std::string> a = {"apptainer", "exec", "--containall", "--cleanenv", "--pwd", spec.workdir};
    for (const auto& m : spec.mounts) a.insert(a.end(), {"--bind", m.host + ":" + m.container + (m.readonly ? ":ro" : "")});
    a.insert(a.end(), o_.inner_args.begin(), o_.inner_args.end());
    a.push_back(o_.image);
    a.insert(a.end(), spec.agent.begin(), spec.agent.end());
    return {std::move(a), {}};
  }

  std::vector<std::string> Scancel(const char* signal, const std::string& container_name) const {
    if (container_name.empty()) return {};
    return {"scancel", std::string("--signal=") + signal, "--full", "--name",
            SlurmJobName(o_.instance_id, container_name)};
  }

  // Ids of this instance's jobs in the queue: dropq's name prefix and this
  // instance's comment, among the user's own (`squeue --me`).
  Result<std::vector<std::string>> OrphanIds() const {
    auto r = Client({"squeue", "--me", "-h", "-o", "%i|%j|%k"});
    if (!r.ok()) return r.status();
    std::vector<std::string> ids;
    const std::string prefix = "dropq-" + o_.instance_id + "-";
    std::istringstream in(r->out);
    for (std::string line; std::getline(in, line);) {
      auto a = line.find('|');
      auto b = a == std::string::npos ? a : line.find('|', a + 1);
      if (b == std::string::npos) continue;
      std::string id = line.substr(0, a), name = line.substr(a + 1, b - a - 1), comment = line.substr(b + 1);
      while (!comment.empty() && (comment.back() == '\r' || comment.back() == ' ')) comment.pop_back();
      if (StartsWith(name, prefix) && comment == Comment() && !id.empty() &&
          id.find_first_not_of("0123456789_[]-") == std::string::npos) {
        ids.push_back(id);
      }
    }
    return ids;
  }

  // Runs a Slurm client command to completion: its output, or an error
  // naming the command and what it printed.
  Result<process::RunResult> Client(const std::vector<std::string>& argv,
                                    std::int64_t timeout_ms = kClientTimeoutMs) const {
    process::RunOptions options;
    options.timeout_ms = timeout_ms;
    options.output_cap = 1 << 20;
    auto r = process::Run(argv, env_, options);
    if (!r.ok()) return Status::NotFound("cannot run " + argv[0] + ": " + r.status().message());
    std::string cmd = argv[0] + (argv.size() > 1 ? " " + argv[1] : "");
    if (r->timed_out) {
      return Status::IOError("`" + cmd + "` did not answer within " + std::to_string(timeout_ms / 1000) + " s");
    }
    int code = r->exit.term_signal != 0 ? 128 + r->exit.term_signal : r->exit.exit_code;
    if (code != 0) {
      std::string why = text::LastLine(r->err);
      return Status::IOError("`" + cmd + "` exited with code " + std::to_string(code) + (why.empty() ? "" : ": " + why));
    }
    return r;
  }

  SlurmOptions o_;
  // Whether sacct is asked: `on`, or `auto` found an accounting storage
  // (CheckAvailable, at start-up; read on the loop and the pool thread).
  mutable std::atomic<bool> accounting_{false};
  std::vector<std::string> env_;
  std::unique_ptr<Runtime> inner_;  // null for apptainer
};

}  // namespace

std::string SlurmJobName(const std::string& instance_id, const std::string& container_name) {
  std::string rest = StartsWith(container_name, "dropq-") ? container_name.substr(6) : container_name;
  return "dropq-" + instance_id + "-" + rest;
}

bool SlurmAccountingConfigured(std::string_view scontrol_config) {
  // "AccountingStorageType   = accounting_storage/slurmdbd"
  std::istringstream in{std::string(scontrol_config)};
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto trim = [](std::string v) {
      auto b = v.find_first_not_of(" \t\r"), e = v.find_last_not_of(" \t\r");
      return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
    };
    if (trim(line.substr(0, eq)) != "AccountingStorageType") continue;
    std::string type = trim(line.substr(eq + 1));
    return !type.empty() && type != "accounting_storage/none" && type != "(null)";
  }
  return false;
}

std::optional<ClusterPlacement> ParseSacctPlacement(std::string_view out) {
  // The first line that is not blank; sacct -X prints one per job.
  std::string_view line;
  while (!out.empty()) {
    auto nl = out.find('\n');
    line = out.substr(0, nl);
    out = nl == std::string_view::npos ? std::string_view() : out.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) break;
    line = {};
  }
  auto bar = line.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  std::string_view node = line.substr(0, bar), state = line.substr(bar + 1);
  for (std::string_view field : {node, state}) {
    if (field.empty() || field.size() > kPlacementFieldMax || field.find('|') != std::string_view::npos ||
        !text::IsValidUtf8(field) || text::HasControlCharacter(field)) {
      return std::nullopt;
    }
  }
  return ClusterPlacement{std::string(node), std::string(state)};
}

std::unique_ptr<Runtime> MakeSlurmRuntime(SlurmOptions options) {
  return std::make_unique<SlurmRuntime>(std::move(options));
}

}  // namespace dropq::runner
