#include "runner/runtime.h"

#include <filesystem>

#include "base/process.h"

namespace dropq::runner {
namespace {

// The environment every sandbox starts from: nothing of the daemon's own
// (its secrets least of all) leaks into it.
std::vector<std::string> BaseEnv() {
  return {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/node", "LANG=C.UTF-8", "TZ=UTC"};
}

// Runs a start-up probe to completion; its exit status (128 + signal when
// a signal ended it). Bounded, so a wedged probe cannot hang start-up.
// `err`, when given, receives the probe's stderr (trailing newlines cut).
Result<int> RunProbe(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     std::string* err = nullptr) {
  process::RunOptions options;
  options.timeout_ms = 60'000;
  options.output_cap = 4096;
  auto r = process::Run(argv, env, options);
  if (!r.ok()) return Status::NotFound("cannot run " + argv[0] + ": " + r.status().message());
  if (err) {
    *err = r->err;
    while (!err->empty() && (err->back() == '\n' || err->back() == '\r')) err->pop_back();
  }
  if (r->exit.term_signal != 0) return 128 + r->exit.term_signal;
  return r->exit.exit_code;
}

// bwrap's own words for "this kernel or container refuses user namespaces".
bool SaysNamespacesRefused(const std::string& err) {
  for (const char* s : {"Operation not permitted", "No permissions to create new namespace",
                        "Creating new namespace failed", "setting up uid map"}) {
    if (err.find(s) != std::string::npos) return true;
  }
  return false;
}

bool IsSymlink(const char* p) {
  std::error_code ec;
  return std::filesystem::is_symlink(p, ec);
}

class BwrapRuntime final : public Runtime {
 public:
  explicit BwrapRuntime(BwrapOptions o) : o_(std::move(o)) {}
  std::string_view name() const override { return "bwrap"; }
  bool isolates() const override { return true; }

  SpawnSpec Build(const SandboxSpec& spec) const override {
    std::vector<std::string> a = {"bwrap", "--unshare-all"};
    if (o_.network) a.push_back("--share-net");
    a.insert(a.end(), {"--die-with-parent", "--clearenv"});
    if (!o_.rootfs.empty()) {
      a.insert(a.end(), {"--ro-bind", o_.rootfs, "/"});
    } else {
      a.insert(a.end(), {"--ro-bind", "/usr", "/usr"});
      // Merged-/usr hosts (Debian 12) have /bin → usr/bin and friends; the
      // dynamic loader is found through /lib64, so these must exist.
      for (const char* d : {"bin", "sbin", "lib", "lib64", "lib32", "libx32"}) {
        std::string host = std::string("/") + d;
        if (IsSymlink(host.c_str())) {
          a.insert(a.end(), {"--symlink", std::filesystem::read_symlink(host).string(), host});
        } else if (std::filesystem::is_directory(host)) {
          a.insert(a.end(), {"--ro-bind", host, host});
        }
      }
      // Debian resolves awk, editor, etc. through /etc/alternatives.
      if (std::filesystem::is_directory("/etc/alternatives")) {
        a.insert(a.end(), {"--ro-bind", "/etc/alternatives", "/etc/alternatives"});
      }
    }
    a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
    for (const auto& m : spec.mounts) {
      a.insert(a.end(), {m.readonly ? "--ro-bind" : "--bind", m.host, m.container});
    }
    for (const auto& m : o_.ro_binds) a.insert(a.end(), {"--ro-bind", m.host, m.container});
    for (const auto& e : BaseEnv()) {
      auto eq = e.find('=');
      a.insert(a.end(), {"--setenv", e.substr(0, eq), e.substr(eq + 1)});
    }
    a.insert(a.end(), {"--chdir", spec.workdir});
    a.insert(a.end(), o_.extra_args.begin(), o_.extra_args.end());
    a.push_back("--");
    a.insert(a.end(), spec.agent.begin(), spec.agent.end());
    return {std::move(a), BaseEnv()};
  }

  Status CheckAvailable() const override {
    auto version = RunProbe({"/usr/bin/bwrap", "--version"}, BaseEnv());
    if (!version.ok() || *version != 0) {
      return Status::NotFound(
          "bubblewrap is not installed (Debian: apt-get install bubblewrap), or use runtime: process");
    }
    // A real sandbox with the same namespaces a job gets.
    SandboxSpec probe;
    probe.agent = {"/usr/bin/true"};
    probe.workdir = "/";
    auto spec = Build(probe);
    spec.argv[0] = "/usr/bin/bwrap";
    std::string err;
    auto rc = RunProbe(spec.argv, spec.env, &err);
    if (!rc.ok()) return Status::IOError("the bubblewrap probe sandbox did not start: " + rc.status().message());
    if (*rc != 0) {
      // bwrap's own message names what is wrong (a missing bind source, a
      // bad rootfs); the namespace hint only when that is what it says.
      std::string msg = "the probe sandbox (the argv a job gets, running /usr/bin/true) failed, exit " +
                        std::to_string(*rc) + (err.empty() ? std::string() : ": " + err);
      if (err.empty() || SaysNamespacesRefused(err)) {
        msg +=
            " — user namespaces may be disabled here; try `sysctl kernel.unprivileged_userns_clone=1` "
            "(or run outside this container), or use runtime: process";
      }
      return Status::IOError(msg);
    }
    return Status::Ok();
  }

 private:
  BwrapOptions o_;
};

std::string EnvNameFor(const std::string& container_path) {
  std::string out;
  for (char c : container_path) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) {
      out.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c));
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

class ProcessRuntime final : public Runtime {
 public:
  explicit ProcessRuntime(std::vector<Mount> binds) : binds_(std::move(binds)) {}
  std::string_view name() const override { return "process"; }
  bool isolates() const override { return false; }

  SpawnSpec Build(const SandboxSpec& spec) const override {
    SpawnSpec s;
    s.argv = spec.agent;
    for (const auto& b : binds_) {
      if (!s.argv.empty() && s.argv[0] == b.container) s.argv[0] = b.host;
    }
    s.env = BaseEnv();
    for (const auto& m : spec.mounts) s.env.push_back(EnvNameFor(m.container) + "=" + m.host);
    return s;
  }

  Status CheckAvailable() const override { return Status::Ok(); }

 private:
  std::vector<Mount> binds_;
};

}  // namespace

std::unique_ptr<Runtime> MakeBwrapRuntime(BwrapOptions options) {
  return std::make_unique<BwrapRuntime>(std::move(options));
}

std::unique_ptr<Runtime> MakeProcessRuntime(std::vector<Mount> binds) {
  return std::make_unique<ProcessRuntime>(std::move(binds));
}

std::string ContainerName(const std::string& group, std::int64_t now_ms) {
  std::string safe;
  for (char c : group) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    safe.push_back(ok ? c : '-');
  }
  return "dropq-" + safe + "-" + std::to_string(now_ms);
}

std::string ContainerNames::Next(const std::string& group, std::int64_t now_ms) {
  if (now_ms != ms_) {
    ms_ = now_ms;
    given_.clear();
  }
  std::string name = ContainerName(group, now_ms);
  const int n = ++given_[name];
  return n == 1 ? name : name + "-" + std::to_string(n);
}

}  // namespace dropq::runner
