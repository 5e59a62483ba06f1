#pragma once
// runtime: kubernetes (docs/RUNTIMES.md, "kubernetes"). Each attempt is one
// pod, started and watched through kubectl:
//
//   kubectl [--kubeconfig K] [--context C] [--namespace N] run POD -i
//           --restart=Never --quiet --image IMAGE --pod-running-timeout Ts
//           --override-type=merge --overrides POD-JSON
//
// with the ContainerInput JSON on kubectl's stdin, which it attaches to the
// container's (stdin + stdinOnce). POD-JSON is the whole Pod (PodJson):
// labels dropq.instance / dropq.group / dropq.job, restartPolicy Never,
// activeDeadlineSeconds (the attempt's timeout + the grace, a backstop
// behind dropq's own timer), terminationGracePeriodSeconds (the grace), the
// configured resources, no service-account token, and one volume per
// configured PersistentVolumeClaim with each of the group's mounts on it as
// a subPath — read-only where the other runtimes mount read-only. Secrets
// travel only on stdin: nothing of them is in the pod, its env or its args.
//
// `kubectl run -i` can lose what the container printed before kubectl
// attached (kubernetes #27264), so the output parsed is `kubectl logs` of
// the ended pod (CollectArgv); after that the pod is deleted (CleanupArgv).
// Stop: `kubectl delete pod --grace-period=G --wait=false`; forced:
// `--grace-period=0 --force`. Orphans: at start-up every pod labelled
// dropq.instance=<this root's id> is deleted, running or ended.
//
// Names: a group folder may hold uppercase letters and '_' and be 64
// characters long; a pod name must be a lowercase DNS-1123 label of at most
// 63 characters (kubectl run also makes it the value of the pod's `run`
// label), and a label value at most 63 characters of [A-Za-z0-9._-] that
// begins and ends alphanumeric. PodName and LabelValue map any name onto
// those rules, adding a short hash of the original whenever they change it,
// so two groups never share a name; the group's exact folder is also in the
// dropq.group annotation.
//
// CheckAvailable and CleanupOrphans run kubectl synchronously (bounded);
// they are for start-up only.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/runtime.h"

namespace dropq::runner {

// A PersistentVolumeClaim that holds the host directory `host_path` (the
// dropq root, or a directory above it) at `sub_path` within the claim ("":
// its top). A mount's host path under `host_path` becomes that claim's
// volume with the rest of the path as its subPath.
struct KubernetesVolume {
  std::string claim;
  std::string host_path;  // absolute, lexically normal
  std::string sub_path = "";
};

struct KubernetesOptions {
  std::string binary = "kubectl";
  std::string image;  // required
  std::string kubeconfig = "";
  std::string context = "";
  std::string k8s_namespace = "";  // "": the context's
  std::vector<KubernetesVolume> volumes;
  std::map<std::string, std::string> requests = {};  // resource → quantity ("cpu" → "500m")
  std::map<std::string, std::string> limits = {};
  int grace_seconds = 15;        // terminationGracePeriodSeconds and the stop's --grace-period
  std::string instance_id = "";  // labels every pod; empty: none, and no orphan clean-up
};

// name(): "kubernetes".
std::unique_ptr<Runtime> MakeKubernetesRuntime(KubernetesOptions options);

// The pod name for a sandbox name (runner/runtime.h ContainerName): the name
// itself when it is already a DNS-1123 label of at most 63 characters; else
// lowercased, each other character outside [a-z0-9-] made '-', cut to 54
// characters and ended with '-' and 8 hex digits of a hash of the original.
std::string PodName(const std::string& container_name);
// A valid label value for `value` (at most 63 characters of [A-Za-z0-9._-],
// alphanumeric at both ends, or empty): `value` itself when it is one.
std::string LabelValue(const std::string& value);

// The Pod kubectl is asked to create for `spec` (the --overrides JSON), or
// the reason it cannot be made (a mount on no configured volume).
Result<std::string> PodJson(const KubernetesOptions& options, const SandboxSpec& spec);

}  // namespace dropq::runner
