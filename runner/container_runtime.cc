#include "runner/container_runtime.h"
#include "base/text.h"
#include "base/guard.h"

#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dropq::runner {
namespace {

// A helper command (`docker info`, `docker ps`, `docker stop`) that does not
// answer in this time is treated as failed, so a hung daemon cannot hang
// dropq's start-up. Above the stop grace period, which `stop` waits out.
constexpr std::uint64_t kHelperTimeoutMs = 60'000;
// Bytes kept per stream: `ps` output is a few names; `info` a page.
constexpr std::size_t kHelperOutputCap = 1 << 20;

struct Captured {
  int exit_code = -1;  // 128 + signal when killed
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv to completion on a private loop, capturing stdout and stderr.
// Lifecycle (libuv): every handle initialised here is closed before the loop
// is closed; the process handle only after its exit callback.
class SyncRun {
 public:
  static Result<Captured> Run(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    SyncRun r;
    return r.Go(argv, env);
  }

 private:
  Result<Captured> Go(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    uv_loop_init(&loop_);
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    uv_pipe_init(&loop_, &out_, 0);
    uv_pipe_init(&loop_, &err_, 0);
    uv_timer_init(&loop_, &timer_);
    for (uv_handle_t* h : {H(&out_), H(&err_), H(&timer_), H(&proc_)}) h->data = this;

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&out_);
    stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&err_);
    uv_process_options_t opts{};
    opts.file = args[0];
    opts.args = args.data();
    opts.env = envp.data();
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = &SyncRun::OnExit;
    int rc = uv_spawn(&loop_, &proc_, &opts);
    if (rc != 0) {
      // The handles are initialised all the same and must be closed.
      for (uv_handle_t* h : {H(&out_), H(&err_), H(&timer_), H(&proc_)}) uv_close(h, nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
      return Status::NotFound(std::string("cannot run ") + argv[0] + ": " + uv_strerror(rc));
    }
    uv_read_start(reinterpret_cast<uv_stream_t*>(&out_), &SyncRun::Alloc, &SyncRun::OnRead);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&err_), &SyncRun::Alloc, &SyncRun::OnRead);
    uv_timer_start(&timer_, &SyncRun::OnTimeout, kHelperTimeoutMs, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return std::move(result_);
  }

  static uv_handle_t* H(void* h) { return static_cast<uv_handle_t*>(h); }

  static void Alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* self = static_cast<SyncRun*>(h->data);
    *buf = uv_buf_init(self->buf_, sizeof(self->buf_));
  }

  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<SyncRun*>(s->data);
    if (n < 0) {  // EOF or error: this stream is done
      self->CloseStream(reinterpret_cast<uv_pipe_t*>(s));
      return;
    }
    Guard("runtime CLI output", [&] {
      std::string& dst = reinterpret_cast<uv_pipe_t*>(s) == &self->out_ ? self->result_.out : self->result_.err;
      std::size_t room = kHelperOutputCap - std::min(kHelperOutputCap, dst.size());
      dst.append(buf->base, std::min(room, static_cast<std::size_t>(n)));
    });
  }

  static void OnExit(uv_process_t* p, int64_t status, int sig) {
    auto* self = static_cast<SyncRun*>(p->data);
    self->exited_ = true;
    self->result_.exit_code = sig != 0 ? 128 + sig : static_cast<int>(status);
    uv_close(H(p), nullptr);
    Guard("runtime CLI exit", [&] { self->MaybeFinish(); });
  }

  static void OnTimeout(uv_timer_t* t) {
    auto* self = static_cast<SyncRun*>(t->data);
    self->result_.timed_out = true;
    if (!self->exited_) uv_process_kill(&self->proc_, SIGKILL);
    // A grandchild may hold the pipes open after the client died.
    self->CloseStream(&self->out_);
    self->CloseStream(&self->err_);
  }

  void CloseStream(uv_pipe_t* p) {
    if (uv_is_closing(H(p))) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(p));
    uv_close(H(p), nullptr);
    --open_streams_;
    MaybeFinish();
  }

  // The timer keeps the loop alive; it goes once the process has exited and
  // both streams are closed.
  void MaybeFinish() {
    if (exited_ && open_streams_ == 0 && !uv_is_closing(H(&timer_))) uv_close(H(&timer_), nullptr);
  }

  uv_loop_t loop_;
  uv_process_t proc_;
  uv_pipe_t out_, err_;
  uv_timer_t timer_;
  char buf_[16 * 1024];
  bool exited_ = false;
  int open_streams_ = 2;
  Captured result_;
};

// The last non-empty line of a CLI's stderr: what it says went wrong.
std::string LastLine(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  return last.size() > 300 ? text::Head(last, 300) + "…" : text::MakeValid(last);
}

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
  for (const char* name : {"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                           "CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINERS_CONF", "XDG_RUNTIME_DIR",
                           "XDG_CONFIG_HOME", "XDG_DATA_HOME", "TMPDIR"}) {
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
      : binary_(std::move(binary)), image_(std::move(image)), extra_(std::move(extra)), grace_(grace),
        instance_(std::move(instance)), env_(ClientEnv()) {}

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
  Result<Captured> Helper(const std::vector<std::string>& argv) const {
    auto r = SyncRun::Run(argv, env_);
    if (!r.ok()) return r.status();
    if (r->timed_out) {
      return Status::IOError("`" + Joined(argv) + "` did not finish within " + std::to_string(kHelperTimeoutMs / 1000) +
                             " s");
    }
    if (r->exit_code != 0) {
      std::string why = LastLine(r->err);
      return Status::IOError("`" + Joined(argv) + "` exited with code " + std::to_string(r->exit_code) +
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
    return Status::IOError("container runtime unavailable: " + r.status().message() + " — start it with `" +
                           binary_ + " system start`");
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
