#include "runner/container_runtime.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/process.h"
#include "base/text.h"

namespace dropq::runner {
namespace {

// A helper command (`docker info`, `docker ps`, `docker stop`) that does not
// answer in this time is treated as failed, so a hung daemon cannot hang
// dropq's start-up. Above the stop grace period, which `stop` waits out.
constexpr std::int64_t kHelperTimeoutMs = 60'000;
// Bytes kept per stream: `ps` output is a few names; `info` a page.
constexpr std::size_t kHelperOutputCap = 1 << 20;

// Runs a helper command to completion, its output captured.
Result<process::RunResult> RunHelper(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  process::RunOptions options;
  options.timeout_ms = kHelperTimeoutMs;
  options.output_cap = kHelperOutputCap;
  auto r = process::Run(argv, env, options);
  if (!r.ok()) return Status::NotFound("cannot run " + argv[0] + ": " + r.status().message());
  return r;
}

// 128 + signal when a signal ended it.
int ExitCode(const process::Exit& e) { return e.term_signal != 0 ? 128 + e.term_signal : e.exit_code; }

std::string Joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

std::vector<std::string> ClientEnv() {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin"));
  const char* home = std::getenv("HOME");
  env.push_back(std::string("HOME=") + (home != nullptr && *home != '\0' ? home : "/"));
  env.push_back("LANG=C.UTF-8");
  // How the CLI reaches its daemon (remote or rootless setups): addresses
  // and directories, never credentials.
  for (const char* name :
       {"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONTAINER_HOST",
        "CONTAINER_CONNECTION", "CONTAINERS_CONF", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "TMPDIR"}) {
    if (const char* v = std::getenv(name); v != nullptr) env.push_back(std::string(name) + "=" + v);
  }
  return env;
}

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// obj[key] when obj is an object and that is a string, else "" (json's
// value() would throw on a wrong type).
std::string StringField(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

constexpr std::string_view kOrphanPrefix = "dropq-";

// What the two CLIs share: run's head, stop/kill, helper commands.
class CliRuntime : public Runtime {
 public:
  CliRuntime(std::string binary, std::string image, std::vector<std::string> extra, int grace, std::string instance)
      : binary_(std::move(binary)),
        image_(std::move(image)),
        extra_(std::move(extra)),
        grace_(grace),
        instance_(std::move(instance)),
        env_(ClientEnv()) {}

  bool isolates() const override { return true; }

  SpawnSpec Build(const SandboxSpec& spec) const override {
    std::vector<std::string> a = {binary_, "run", "-i", "--rm"};
    if (!spec.container_name.empty()) a.insert(a.end(), {"--name", spec.container_name});
    if (!instance_.empty()) a.insert(a.end(), {"--label", InstanceLabel()});
    for (const auto& m : spec.mounts) AppendMount(a, m);
    a.insert(a.end(), extra_.begin(), extra_.end());
    a.push_back(image_);
    a.insert(a.end(), spec.agent.begin(), spec.agent.end());
    return {std::move(a), env_};
  }

  std::vector<std::string> StopArgv(const std::string& name) const override {
    if (name.empty()) return {};
    return {binary_, "stop", "-t", std::to_string(grace_), name};
  }

  std::vector<std::string> KillArgv(const std::string& name) const override {
    if (name.empty()) return {};
    return {binary_, "kill", name};
  }

 protected:
  virtual void AppendMount(std::vector<std::string>& a, const Mount& m) const = 0;

  // Runs a helper; a clean exit or an error naming the command and what the
  // CLI printed on stderr.
  Result<process::RunResult> Helper(const std::vector<std::string>& argv) const {
    auto r = RunHelper(argv, env_);
    if (!r.ok()) return r.status();
    if (r->timed_out) {
      return Status::IOError("`" + Joined(argv) + "` did not finish within " + std::to_string(kHelperTimeoutMs / 1000) +
                             " s");
    }
    if (ExitCode(r->exit) != 0) {
      std::string why = text::LastLine(r->err);
      return Status::IOError("`" + Joined(argv) + "` exited with code " + std::to_string(ExitCode(r->exit)) +
                             (why.empty() ? "" : ": " + why));
    }
    return r;
  }

  // Stops each named orphan; one that will not stop (gone already) is not
  // counted and does not stop the others.
  int StopAll(const std::vector<std::string>& names) const {
    int stopped = 0;
    for (const auto& n : names) {
      if (Helper(StopArgv(n)).ok()) ++stopped;
    }
    return stopped;
  }

  // kInstanceLabel=<id>: docker's and Apple's --label syntax, and docker's
  // `ps --filter label=` syntax.
  std::string InstanceLabel() const { return std::string(kInstanceLabel) + "=" + instance_; }

  // Without an instance id this root's containers cannot be told from
  // another root's, so clean-up stops none rather than every dropq-*.
  Status NeedInstance() const {
    if (instance_.empty()) {
      return Status::InvalidArgument(std::string(name()) +
                                     " runtime: no instance id, so this root's containers cannot be told from other "
                                     "dropq roots'; none stopped");
    }
    return Status::Ok();
  }

  Status NeedImage() const {
    if (image_.empty()) return Status::InvalidArgument(std::string(name()) + " runtime: no image configured");
    return Status::Ok();
  }

  const std::string binary_;
  const std::string image_;
  const std::vector<std::string> extra_;
  const int grace_;
  const std::string instance_;
  const std::vector<std::string> env_;
};

class DockerRuntime final : public CliRuntime {
 public:
  explicit DockerRuntime(DockerOptions o)
      : CliRuntime(std::move(o.binary), std::move(o.image), std::move(o.extra_args), o.stop_grace_seconds,
                   std::move(o.instance_id)) {
    name_ = StartsWith(std::filesystem::path(binary_).filename().string(), "podman") ? "podman" : "docker";
  }

  std::string_view name() const override { return name_; }

  Status CheckAvailable() const override {
    if (Status s = NeedImage(); !s.ok()) return s;
    auto r = Helper({binary_, "info"});
    if (r.ok()) return Status::Ok();
    if (r.status().code() == Status::Code::kNotFound) {
      return Status::NotFound(name_ + " runtime: " + r.status().message() + " — install " + name_ +
                              " (or set its binary), or choose another runtime");
    }
    return Status::IOError(name_ + " runtime unavailable: " + r.status().message() + " — is the " + name_ +
                           " daemon running, and may this user reach it?");
  }

  Result<int> CleanupOrphans() const override {
    if (Status s = NeedInstance(); !s.ok()) return s;
    auto r = Helper({binary_, "ps", "--filter", "label=" + InstanceLabel(), "--format", "{{.Names}}"});
    if (!r.ok()) return r.status();
    // Only running containers with this root's label are listed; of those,
    // only names dropq makes are stopped.
    std::vector<std::string> names;
    std::istringstream in(r->out);
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (StartsWith(line, kOrphanPrefix)) names.push_back(line);
    }
    return StopAll(names);
  }

 private:
  void AppendMount(std::vector<std::string>& a, const Mount& m) const override {
    a.insert(a.end(), {"-v", m.host + ":" + m.container + (m.readonly ? ":ro" : "")});
  }

  std::string name_;
};

class AppleContainerRuntime final : public CliRuntime {
 public:
  explicit AppleContainerRuntime(AppleOptions o)
      : CliRuntime(std::move(o.binary), std::move(o.image), std::move(o.extra_args), o.stop_grace_seconds,
                   std::move(o.instance_id)) {}

  std::string_view name() const override { return "container"; }

  Status CheckAvailable() const override {
    if (Status s = NeedImage(); !s.ok()) return s;
    auto r = Helper({binary_, "system", "status"});
    if (r.ok()) return Status::Ok();
    if (r.status().code() == Status::Code::kNotFound) {
      return Status::NotFound("container runtime: " + r.status().message() +
                              " — install Apple's container CLI (macOS 15+ on Apple silicon), or choose another "
                              "runtime");
    }
    return Status::IOError("container runtime unavailable: " + r.status().message() + " — start it with `" + binary_ +
                           " system start`");
  }

  Result<int> CleanupOrphans() const override {
    if (Status s = NeedInstance(); !s.ok()) return s;
    // Apple's `ls` has no --filter: the labels are matched here.
    auto r = Helper({binary_, "ls", "--format", "json"});
    if (!r.ok()) return r.status();
    // [{"status": "running", "configuration": {"id": NAME, "labels": {K: V}, ...}, ...}, ...]
    nlohmann::json list = nlohmann::json::parse(r->out, nullptr, /*allow_exceptions=*/false);
    if (!list.is_array()) {
      return Status::Corruption("`" + binary_ + " ls --format json` did not print a JSON array");
    }
    std::vector<std::string> names;
    for (const auto& c : list) {
      if (StringField(c, "status") != "running") continue;
      auto cfg = c.is_object() ? c.find("configuration") : c.end();
      if (cfg == c.end()) continue;
      std::string id = StringField(*cfg, "id");
      auto labels = cfg->is_object() ? cfg->find("labels") : cfg->end();
      if (labels == cfg->end() || StringField(*labels, kInstanceLabel) != instance_) continue;
      if (StartsWith(id, kOrphanPrefix)) names.push_back(id);
    }
    return StopAll(names);
  }

 private:
  // Apple's -v has no read-only flag; read-only needs --mount.
  void AppendMount(std::vector<std::string>& a, const Mount& m) const override {
    if (m.readonly) {
      a.insert(a.end(), {"--mount", "type=bind,source=" + m.host + ",target=" + m.container + ",readonly"});
    } else {
      a.insert(a.end(), {"-v", m.host + ":" + m.container});
    }
  }
};

}  // namespace

std::unique_ptr<Runtime> MakeDockerRuntime(DockerOptions options) {
  return std::make_unique<DockerRuntime>(std::move(options));
}

std::unique_ptr<Runtime> MakeAppleContainerRuntime(AppleOptions options) {
  return std::make_unique<AppleContainerRuntime>(std::move(options));
}

}  // namespace dropq::runner
