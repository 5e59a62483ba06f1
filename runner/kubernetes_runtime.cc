#include "runner/kubernetes_runtime.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/text.h"
#include "runner/cli_helper.h"

namespace dropq::runner {
namespace {

namespace fs = std::filesystem;

// The one container of every pod; `kubectl logs` names it.
constexpr char kContainer[] = "agent";
constexpr std::size_t kMaxName = 63;
// What is kept of a name that had to change, before "-" and the hash.
constexpr std::size_t kKeptChars = kMaxName - 9;

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// 8 hex digits of FNV-1a: the same name always gets the same pod.
std::string Hash8(const std::string& s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>((h >> 32) ^ (h & 0xffffffffu)));
  return buf;
}

// `kept` cut to kKeptChars, without non-alphanumeric characters at either
// end, then "-" and the hash of `original` (just the hash when nothing is
// left).
std::string WithHash(std::string kept, const std::string& original) {
  if (kept.size() > kKeptChars) kept.resize(kKeptChars);
  std::size_t first = 0;
  while (first < kept.size() && !IsAlnum(kept[first])) ++first;
  kept.erase(0, first);
  while (!kept.empty() && !IsAlnum(kept.back())) kept.pop_back();
  return kept.empty() ? Hash8(original) : kept + "-" + Hash8(original);
}

bool IsLabelValue(const std::string& v) {
  if (v.empty()) return true;
  if (v.size() > kMaxName || !IsAlnum(v.front()) || !IsAlnum(v.back())) return false;
  for (char c : v) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::vector<std::string> KubectlEnv() {
  // Where kubectl finds its config and caches, and how cloud auth plugins
  // find theirs: paths, never credentials.
  return CliClientEnv({"KUBECONFIG", "KUBECACHEDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TMPDIR",
                       "CLOUDSDK_CONFIG", "AWS_PROFILE", "AWS_CONFIG_FILE", "AZURE_CONFIG_DIR"});
}

// `path` below `base` (both lexically normal, absolute): the rest, "" when
// equal; nullopt when it is not below.
std::optional<std::string> Below(const std::string& base, const std::string& path) {
  if (path == base) return std::string();
  std::string prefix = base == "/" ? base : base + "/";
  if (path.rfind(prefix, 0) != 0) return std::nullopt;
  return path.substr(prefix.size());
}

std::string JoinSub(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

class KubernetesRuntime final : public Runtime {
 public:
  explicit KubernetesRuntime(KubernetesOptions o) : o_(std::move(o)), env_(KubectlEnv()) {}

  std::string_view name() const override { return "kubernetes"; }
  bool isolates() const override { return true; }

  SpawnSpec Build(const SandboxSpec& spec) const override {
    SpawnSpec s;
    s.env = env_;
    if (spec.container_name.empty()) return s;  // only the environment is asked for (a helper's)
    auto pod = PodJson(o_, spec);
    if (!pod.ok()) {
      s.error = pod.status().message();
      return s;
    }
    s.argv = Kubectl({"run", PodName(spec.container_name), "--image=" + o_.image, "--restart=Never", "--stdin",
                      "--quiet"});
    if (spec.timeout_ms > 0) {
      // Scheduling and the image pull count against the attempt's time;
      // kubectl waits as long for the pod to run as dropq lets it live.
      s.argv.push_back("--pod-running-timeout=" + std::to_string(DeadlineSeconds(spec)) + "s");
    }
    s.argv.insert(s.argv.end(), {"--override-type=merge", "--overrides=" + *pod});
    return s;
  }

  Status CheckAvailable() const override {
    if (o_.image.empty()) return Status::InvalidArgument("kubernetes runtime: no image configured");
    if (o_.volumes.empty()) {
      return Status::InvalidArgument(
          "kubernetes runtime: no volumes configured (kubernetes.volumes: the PersistentVolumeClaims that hold the "
          "dropq root)");
    }
    auto version = RunCliHelper({o_.binary, "version", "--client"}, env_);
    if (!version.ok() && version.status().code() == Status::Code::kNotFound) {
      return Status::NotFound("kubernetes runtime: " + version.status().message() +
                              " — install kubectl (or set kubernetes.binary), or choose another runtime");
    }
    // What an attempt does: create a pod and attach to it, read its log,
    // delete it; start-up lists this root's pods.
    for (auto [verb, resource] : {std::pair{"create", "pods"}, {"create", "pods/attach"}, {"get", "pods/log"},
                                  {"delete", "pods"}, {"list", "pods"}}) {
      auto r = RunCliHelper(Kubectl({"auth", "can-i", verb, resource}), env_);
      if (!r.ok()) {
        return Status::IOError("kubernetes runtime unavailable: " + r.status().message() +
                               " — does the context reach the cluster, and may this user " + verb + " " + resource +
                               " in the namespace?");
      }
    }
    for (const auto& v : o_.volumes) {
      auto r = RunCliHelper(Kubectl({"get", "persistentvolumeclaim", v.claim, "-o", "name"}), env_);
      if (!r.ok()) {
        return Status::IOError("kubernetes runtime: PersistentVolumeClaim " + v.claim +
                               " (kubernetes.volumes) is not there: " + r.status().message());
      }
    }
    return Status::Ok();
  }

  std::vector<std::string> StopArgv(const std::string& name) const override {
    if (name.empty()) return {};
    return Kubectl({"delete", "pod", PodName(name), "--grace-period=" + std::to_string(o_.grace_seconds),
                    "--wait=false", "--ignore-not-found"});
  }

  std::vector<std::string> KillArgv(const std::string& name) const override {
    if (name.empty()) return {};
    return Kubectl({"delete", "pod", PodName(name), "--grace-period=0", "--force", "--wait=false",
                    "--ignore-not-found"});
  }

  std::vector<std::string> CollectArgv(const std::string& name) const override {
    if (name.empty()) return {};
    return Kubectl({"logs", PodName(name), std::string("--container=") + kContainer});
  }

  std::vector<std::string> CleanupArgv(const std::string& name) const override {
    if (name.empty()) return {};
    return Kubectl({"delete", "pod", PodName(name), "--wait=false", "--ignore-not-found"});
  }

  Result<int> CleanupOrphans() const override {
    if (o_.instance_id.empty()) {
      return Status::InvalidArgument(
          "kubernetes runtime: no instance id, so this root's pods cannot be told from other dropq roots'; none "
          "deleted");
    }
    // Running and ended pods alike: an ended one was never collected.
    auto r = RunCliHelper(Kubectl({"delete", "pods", "--selector=dropq.instance=" + o_.instance_id,
                                   "--grace-period=" + std::to_string(o_.grace_seconds), "--wait=false",
                                   "--output=name"}),
                          env_);
    if (!r.ok()) return r.status();
    int deleted = 0;
    std::istringstream in(r->out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("pod/", 0) == 0) ++deleted;
    }
    return deleted;
  }

 private:
  // kubectl, its connection flags, then `args`.
  std::vector<std::string> Kubectl(std::vector<std::string> args) const {
    std::vector<std::string> a = {o_.binary};
    if (!o_.kubeconfig.empty()) a.push_back("--kubeconfig=" + o_.kubeconfig);
    if (!o_.context.empty()) a.push_back("--context=" + o_.context);
    if (!o_.k8s_namespace.empty()) a.push_back("--namespace=" + o_.k8s_namespace);
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }

  std::int64_t DeadlineSeconds(const SandboxSpec& spec) const {
    return (spec.timeout_ms + 999) / 1000 + o_.grace_seconds;
  }

  const KubernetesOptions o_;
  const std::vector<std::string> env_;
};

}  // namespace

std::string PodName(const std::string& container_name) {
  std::string s;
  for (char c : container_name) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    s.push_back(IsLowerAlnum(l) || l == '-' ? l : '-');
  }
  bool valid = !s.empty() && s.size() <= kMaxName && IsLowerAlnum(s.front()) && IsLowerAlnum(s.back());
  if (valid && s == container_name) return s;
  return WithHash(std::move(s), container_name);
}

std::string LabelValue(const std::string& value) {
  if (IsLabelValue(value)) return value;
  std::string s;
  for (char c : value) s.push_back(IsAlnum(c) || c == '-' || c == '_' || c == '.' ? c : '_');
  return WithHash(std::move(s), value);
}

Result<std::string> PodJson(const KubernetesOptions& o, const SandboxSpec& spec) {
  // Each mount is a subPath of the volume of the claim whose host_path
  // holds it (the deepest, when several do).
  nlohmann::json mounts = nlohmann::json::array();
  std::vector<bool> used(o.volumes.size(), false);
  for (const auto& m : spec.mounts) {
    std::string host = fs::path(m.host).lexically_normal().string();
    while (host.size() > 1 && host.back() == '/') host.pop_back();
    std::optional<std::size_t> best;
    std::string rest;
    for (std::size_t i = 0; i < o.volumes.size(); ++i) {
      auto below = Below(o.volumes[i].host_path, host);
      if (below && (!best || o.volumes[i].host_path.size() > o.volumes[*best].host_path.size())) {
        best = i;
        rest = *below;
      }
    }
    if (!best) {
      return Status::InvalidArgument("kubernetes runtime: mount " + m.host + " (" + m.container +
                                     ") is on none of the configured volumes (kubernetes.volumes)");
    }
    used[*best] = true;
    nlohmann::json vm = {{"name", "claim-" + std::to_string(*best)}, {"mountPath", m.container}};
    std::string sub = JoinSub(o.volumes[*best].sub_path, rest);
    if (!sub.empty()) vm["subPath"] = sub;
    if (m.readonly) vm["readOnly"] = true;
    mounts.push_back(std::move(vm));
  }
  nlohmann::json volumes = nlohmann::json::array();
  for (std::size_t i = 0; i < o.volumes.size(); ++i) {
    if (!used[i]) continue;
    volumes.push_back(
        {{"name", "claim-" + std::to_string(i)}, {"persistentVolumeClaim", {{"claimName", o.volumes[i].claim}}}});
  }

  nlohmann::json container = {
      {"name", kContainer}, {"image", o.image}, {"stdin", true}, {"stdinOnce", true}, {"tty", false},
      {"volumeMounts", mounts},
  };
  if (!spec.agent.empty()) container["command"] = spec.agent;
  nlohmann::json resources = nlohmann::json::object();
  if (!o.requests.empty()) resources["requests"] = o.requests;
  if (!o.limits.empty()) resources["limits"] = o.limits;
  if (!resources.empty()) container["resources"] = resources;

  nlohmann::json labels = nlohmann::json::object();
  if (!o.instance_id.empty()) labels["dropq.instance"] = LabelValue(o.instance_id);
  labels["dropq.group"] = LabelValue(spec.group);
  labels["dropq.job"] = std::to_string(spec.job_id);

  nlohmann::json pod_spec = {
      {"restartPolicy", "Never"},
      // The agent has no business with the cluster's API.
      {"automountServiceAccountToken", false},
      {"terminationGracePeriodSeconds", o.grace_seconds},
      {"containers", nlohmann::json::array({container})},
      {"volumes", volumes},
  };
  if (spec.timeout_ms > 0) {
    // A backstop behind dropq's own timer (which stops the pod at the
    // timeout): the cluster ends the pod even when dropq is gone.
    pod_spec["activeDeadlineSeconds"] = (spec.timeout_ms + 999) / 1000 + o.grace_seconds;
  }
  nlohmann::json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", PodName(spec.container_name)},
        {"labels", labels},
        {"annotations", {{"dropq.group", spec.group}, {"dropq.container", spec.container_name}}}}},
      {"spec", pod_spec},
  };
  return text::Dump(pod);
}

std::unique_ptr<Runtime> MakeKubernetesRuntime(KubernetesOptions options) {
  return std::make_unique<KubernetesRuntime>(std::move(options));
}

}  // namespace dropq::runner
