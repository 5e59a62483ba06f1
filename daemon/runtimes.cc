#include <spdlog/spdlog.h>

#include "daemon/daemon.h"
#include "runner/container_runtime.h"
#include "runner/kubernetes_runtime.h"
#include "runner/runtime.h"
#include "runner/slurm_runtime.h"

namespace dropq::app {

std::unique_ptr<runner::Runtime> MakeRuntime(const Config& cfg, const std::string& instance_id) {
  std::vector<runner::Mount> binds;
  for (const auto& b : cfg.bwrap.ro_binds) binds.push_back({b.host, b.container, true});
  // docker/podman/Apple stop waits this long before killing: the grace.
  int grace_s = static_cast<int>((cfg.kill_grace_ms + 999) / 1000);
  if (cfg.runtime == "bwrap") {
    return runner::MakeBwrapRuntime({cfg.bwrap.rootfs.value_or(""), cfg.bwrap.network, cfg.bwrap.extra_args, binds});
  }
  if (cfg.runtime == "docker" || cfg.runtime == "podman") {
    const auto& c = cfg.runtime == "docker" ? cfg.docker : cfg.podman;
    return runner::MakeDockerRuntime({c.binary, c.image, c.extra_args, grace_s, instance_id});
  }
  if (cfg.runtime == "slurm") {
    const auto& c = cfg.slurm;
    runner::SlurmOptions o;
    o.instance_id = instance_id;
    o.shared_root = c.shared_root;
    o.root = cfg.root;
    o.inner = c.inner;
    o.image = c.image;
    o.partition = c.partition;
    o.account = c.account;
    o.qos = c.qos;
    o.mem = c.mem;
    o.gres = c.gres;
    o.cpus = static_cast<int>(c.cpus);
    o.extra_args = c.extra_args;
    o.inner_args = c.inner_args;
    o.queue_timeout_ms = c.queue_timeout_ms;
    o.accounting = c.accounting;
    o.kill_grace_ms = cfg.kill_grace_ms;
    o.bwrap = {cfg.bwrap.rootfs.value_or(""), cfg.bwrap.network, cfg.bwrap.extra_args, binds};
    o.binds = binds;
    return runner::MakeSlurmRuntime(std::move(o));
  }
  if (cfg.runtime == "container") {
    const auto& c = cfg.container;
    return runner::MakeAppleContainerRuntime({c.image, c.extra_args, grace_s, c.binary, instance_id});
  }
  if (cfg.runtime == "kubernetes") {
    const auto& k = cfg.kubernetes;
    runner::KubernetesOptions o;
    o.binary = k.binary;
    o.image = k.image;
    o.kubeconfig = k.kubeconfig;
    o.context = k.context;
    o.k8s_namespace = k.k8s_namespace;
    for (const auto& v : k.volumes) o.volumes.push_back({v.claim, v.host_path, v.sub_path});
    o.requests = k.requests;
    o.limits = k.limits;
    o.grace_seconds = grace_s;
    o.instance_id = instance_id;
    return runner::MakeKubernetesRuntime(std::move(o));
  }
  spdlog::warn(
      "runtime 'process' does NOT isolate jobs: agents run as this user with full access. "
      "Use it for development and tests only.");
  return runner::MakeProcessRuntime(binds);
}

}  // namespace dropq::app
