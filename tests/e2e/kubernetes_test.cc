// runtime: kubernetes end to end: the real daemon with a stand-in kubectl
// that plays a cluster of one node. `run` reads the pod from --overrides and
// runs its container as a bubblewrap sandbox whose binds are the pod's
// volumeMounts resolved through the claims (claim → host directory, as a
// PersistentVolumeClaim would hold them, subPath and readOnly included); like
// `kubectl run -i` at its worst (kubernetes #27264) it prints none of the
// container's output, which goes to the pod's log, served by `logs` until
// `delete` removes the pod.
#include <sstream>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

void WriteKubectl(const fs::path& path) {
  WriteFile(path, R"PY(#!/usr/bin/python3
import json, os, subprocess, sys
here = os.path.dirname(os.path.abspath(sys.argv[0]))
with open(os.path.join(here, "kubectl.log"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
args = [a for a in sys.argv[1:] if not a.startswith(("--kubeconfig=", "--context=", "--namespace="))]
with open(os.path.join(here, "claims.json")) as f:
    claims = json.load(f)
pods = os.path.join(here, "pods")
os.makedirs(pods, exist_ok=True)
verb = args[0]
if verb in ("version", "auth", "get"):
    sys.exit(0)
if verb == "delete":
    if args[1] == "pod" and os.path.exists(os.path.join(pods, args[2])):
        os.remove(os.path.join(pods, args[2]))
    sys.exit(0)
if verb == "logs":
    try:
        with open(os.path.join(pods, args[1]), "rb") as f:
            sys.stdout.buffer.write(f.read())
    except FileNotFoundError:
        print('Error from server (NotFound): pods "%s" not found' % args[1], file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
if verb != "run":
    print("kubectl shim: unexpected " + verb, file=sys.stderr)
    sys.exit(64)
pod = json.loads(next(a[len("--overrides="):] for a in args if a.startswith("--overrides=")))
volumes = {v["name"]: claims[v["persistentVolumeClaim"]["claimName"]] for v in pod["spec"]["volumes"]}
container = pod["spec"]["containers"][0]
bwrap = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
         "--tmpfs", "/tmp", "--ro-bind", ")PY" DROPQ_TEST_AGENT R"PY(", "/opt/dropq/test-agent", "--chdir", "/"]
for m in container["volumeMounts"]:
    host = os.path.join(volumes[m["name"]], m.get("subPath", ""))
    os.makedirs(host, exist_ok=True)  # the kubelet makes a missing subPath
    bwrap += ["--ro-bind" if m.get("readOnly") else "--bind", host, m["mountPath"]]
command = container.get("command", ["/opt/dropq/test-agent"])
with open(os.path.join(pods, pod["metadata"]["name"]), "wb") as log:
    done = subprocess.run(bwrap + ["--"] + command, stdin=sys.stdin, stdout=log)
sys.exit(done.returncode)
)PY");
  fs::permissions(path, fs::perms::owner_all);
}

// A root whose runtime is kubernetes through the stand-in, its one claim
// holding the root; returns the file the stand-in records its calls in.
fs::path UseKubectl(Root& r) {
  WriteKubectl(r.dir / "kubectl");
  WriteFile(r.dir / "claims.json", "{\"dropq-root\": \"" + r.Var().string() + "\"}");
  std::string cfg = ReadFile(r.config);
  cfg.replace(cfg.find("SHIM"), 4, (r.dir / "kubectl").string());
  WriteFile(r.config, cfg);
  return r.dir / "kubectl.log";
}

const std::string kKubernetes =
    "kubernetes:\n  image: dropq/agent:test\n  binary: SHIM\n  namespace: dropq\n"
    "  volumes:\n    - {claim: dropq-root, host_path: var}\n";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("a kubernetes job runs in a pod on the claims and takes its result from the pod's log", "[e2e][runner]") {
  Root r("kubernetes", kKubernetes);
  auto log = UseKubectl(r);
  fs::create_directories(r.Var() / "groups/global");
  r.Drop("team", "k.json", {{"prompt", "probe /workspace/group; probe /workspace/global; probe /workspace/ipc; "
                                       "echo via a pod"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto res = r.Result("team", "k.json");
  CHECK(res["state"] == "succeeded");
  CHECK(res["result"]["echo"] == "via a pod");
  CHECK(res["result"]["probes"][0]["writable"] == true);
  CHECK(res["result"]["probes"][1]["exists"] == true);
  CHECK(res["result"]["probes"][1]["writable"] == false);
  CHECK(res["result"]["probes"][2]["writable"] == true);
}

TEST_CASE("a kubernetes pod is deleted only after its log was read, and orphans are deleted by label at start-up",
          "[e2e][runner]") {
  Root r("kubernetes", kKubernetes);
  auto log = UseKubectl(r);
  r.Drop("team", "o.json", {{"prompt", "echo ordered"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  const std::string id = r.Query("SELECT instance_id FROM instance");
  std::vector<std::string> calls;
  for (const auto& line : Lines(ReadFile(log))) {
    if (line.find("auth can-i") == std::string::npos) calls.push_back(line);
  }
  REQUIRE(calls.size() >= 6);
  CHECK(calls[0] == "version --client");
  CHECK(calls[1] == "--namespace=dropq get persistentvolumeclaim dropq-root -o name");
  CHECK(calls[2] == "--namespace=dropq delete pods --selector=dropq.instance=" + id +
                        " --grace-period=1 --wait=false --output=name");
  CHECK(calls[3].rfind("--namespace=dropq run dropq-team-", 0) == 0);
  const std::string pod = calls[3].substr(22, calls[3].find(' ', 22) - 22);
  CHECK(calls[4] == "--namespace=dropq logs " + pod + " --container=agent");
  CHECK(calls[5] == "--namespace=dropq delete pod " + pod + " --wait=false --ignore-not-found");
  CHECK_FALSE(fs::exists(r.dir / "pods" / pod));
}

}  // namespace dropq::testing
