// runtime: kubernetes (runner/kubernetes_runtime.h) through a recording
// kubectl shim (no cluster runs here): the argv of every kubectl command,
// the pod each attempt asks for — validated against the Kubernetes Pod
// schema by tests/runner/kubernetes/validate_pod.py — and one attempt
// through the Runner, whose output comes from `kubectl logs`.
#include "runner/kubernetes_runtime.h"

#include <signal.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/process.h"
#include "runner/runner.h"
#include "tests/fakes/fake_cli.h"
#include "tests/fakes/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using dropq::Status;
using dropq::runner::KubernetesOptions;
using dropq::runner::LabelValue;
using dropq::runner::MakeKubernetesRuntime;
using dropq::runner::PodName;
using dropq::runner::SandboxSpec;
using dropq::testing::FakeCli;
using dropq::testing::ReadFile;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;
using json = nlohmann::json;
using Strings = std::vector<std::string>;

const std::string kInstance = "aaaaaaaaaaaa";

KubernetesOptions Options(std::string binary = "kubectl") {
  KubernetesOptions o;
  o.binary = std::move(binary);
  o.image = "registry.example/agent:1";
  o.volumes = {{"dropq-root", "/srv/dropq", ""}};
  o.grace_seconds = 15;
  o.instance_id = kInstance;
  return o;
}

// What the daemon gives a non-main group: its folder, the global folder
// read-only, its session and IPC dirs.
SandboxSpec Spec(const std::string& group = "team") {
  SandboxSpec s;
  s.container_name = "dropq-" + group + "-1700000000000";
  s.group = group;
  s.job_id = 42;
  s.timeout_ms = 300'000;
  s.mounts = {{"/srv/dropq/groups/" + group, "/workspace/group", false},
              {"/srv/dropq/groups/global", "/workspace/global", true},
              {"/srv/dropq/data/sessions/" + group + "/.claude", "/home/node/.claude", false},
              {"/srv/dropq/data/ipc/" + group, "/workspace/ipc", false}};
  return s;
}

// The value of `--overrides=` in a kubectl run argv, parsed.
json Overrides(const Strings& argv) {
  for (const auto& a : argv) {
    if (a.rfind("--overrides=", 0) == 0) return json::parse(a.substr(12));
  }
  FAIL("no --overrides in the argv");
  return {};
}

json BuiltPod(const KubernetesOptions& o, const SandboxSpec& spec) {
  auto rt = MakeKubernetesRuntime(o);
  auto built = rt->Build(spec);
  REQUIRE(built.error.empty());
  return Overrides(built.argv);
}

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  auto ok = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok(s.front()) || !ok(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return ok(c) || c == '-'; });
}

// Group folders the config accepts (config/config.cc IsValidGroupFolder)
// that are not valid Kubernetes names or label values as they are.
const Strings kNastyGroups = {
    "Team_Alpha",
    "9lives",
    "UPPER",
    "trailing_",
    "trailing-",
    std::string(64, 'A'),
    "a" + std::string(62, '_') + "b",
    std::string(40, 'x') + "_" + std::string(23, 'Y'),
};

}  // namespace

TEST_CASE("kubernetes starts each attempt with kubectl run -i --restart=Never and the pod in --overrides") {
  KubernetesOptions o = Options();
  o.kubeconfig = "/etc/dropq/kubeconfig";
  o.context = "prod";
  o.k8s_namespace = "dropq";
  auto argv = MakeKubernetesRuntime(o)->Build(Spec()).argv;
  REQUIRE(argv.size() == 13);
  CHECK(Strings(argv.begin(), argv.end() - 1) ==
        Strings{"kubectl", "--kubeconfig=/etc/dropq/kubeconfig", "--context=prod", "--namespace=dropq", "run",
                "dropq-team-1700000000000", "--image=registry.example/agent:1", "--restart=Never", "--stdin",
                "--quiet", "--pod-running-timeout=315s", "--override-type=merge"});
  json pod = Overrides(argv);
  CHECK(pod["metadata"]["name"] == "dropq-team-1700000000000");
  CHECK(pod["spec"]["restartPolicy"] == "Never");
}

TEST_CASE("the pod's one container reads its stdin once, runs the image, and the agent argv when there is one") {
  KubernetesOptions o = Options();
  SandboxSpec spec = Spec();
  json c = BuiltPod(o, spec)["spec"]["containers"];
  REQUIRE(c.size() == 1);
  CHECK(c[0]["name"] == "agent");
  CHECK(c[0]["image"] == "registry.example/agent:1");
  CHECK(c[0]["stdin"] == true);
  CHECK(c[0]["stdinOnce"] == true);
  CHECK_FALSE(c[0].contains("command"));
  spec.agent = {"/usr/local/bin/agent", "--json"};
  CHECK(BuiltPod(o, spec)["spec"]["containers"][0]["command"] == json::array({"/usr/local/bin/agent", "--json"}));
}

TEST_CASE("a pod is labelled with the instance, group and job, and keeps the exact folder in an annotation") {
  json meta = BuiltPod(Options(), Spec("Team_Alpha"))["metadata"];
  CHECK(meta["labels"]["dropq.instance"] == kInstance);
  CHECK(meta["labels"]["dropq.group"] == "Team_Alpha");
  CHECK(meta["labels"]["dropq.job"] == "42");
  CHECK(meta["annotations"]["dropq.group"] == "Team_Alpha");
  CHECK(meta["annotations"]["dropq.container"] == "dropq-Team_Alpha-1700000000000");
}

TEST_CASE("each mount is a subPath of its claim's volume, read-only where the sandbox mounts read-only") {
  json pod = BuiltPod(Options(), Spec());
  CHECK(pod["spec"]["volumes"] ==
        json::parse(R"([{"name":"claim-0","persistentVolumeClaim":{"claimName":"dropq-root"}}])"));
  CHECK(pod["spec"]["containers"][0]["volumeMounts"] == json::parse(R"([
    {"name":"claim-0","mountPath":"/workspace/group","subPath":"groups/team"},
    {"name":"claim-0","mountPath":"/workspace/global","subPath":"groups/global","readOnly":true},
    {"name":"claim-0","mountPath":"/home/node/.claude","subPath":"data/sessions/team/.claude"},
    {"name":"claim-0","mountPath":"/workspace/ipc","subPath":"data/ipc/team"}])"));
}

TEST_CASE("a mount goes on the claim with the deepest host path that holds it, below the claim's sub_path") {
  KubernetesOptions o = Options();
  o.volumes = {{"dropq-root", "/srv/dropq", "tenants/a"}, {"dropq-ipc", "/srv/dropq/data/ipc", ""}};
  json pod = BuiltPod(o, Spec());
  CHECK(pod["spec"]["volumes"].size() == 2);
  const json& mounts = pod["spec"]["containers"][0]["volumeMounts"];
  CHECK(mounts[0] == json::parse(R"({"name":"claim-0","mountPath":"/workspace/group","subPath":"tenants/a/groups/team"})"));
  CHECK(mounts[3] == json::parse(R"({"name":"claim-1","mountPath":"/workspace/ipc","subPath":"team"})"));
}

TEST_CASE("main's whole root is the claim itself, with no subPath") {
  SandboxSpec spec = Spec("main");
  spec.mounts.insert(spec.mounts.begin(), {"/srv/dropq", "/workspace/project", false});
  json mount = BuiltPod(Options(), spec)["spec"]["containers"][0]["volumeMounts"][0];
  CHECK(mount == json::parse(R"({"name":"claim-0","mountPath":"/workspace/project"})"));
}

TEST_CASE("a mount on no configured claim fails the attempt's build with the reason, and nothing is run") {
  SandboxSpec spec = Spec();
  spec.mounts.push_back({"/home/alice/data", "/workspace/extra/data", true});
  auto built = MakeKubernetesRuntime(Options())->Build(spec);
  CHECK(built.argv.empty());
  CHECK_THAT(built.error, Contains("/home/alice/data") && Contains("kubernetes.volumes"));
}

TEST_CASE("a claim's host path does not hold a sibling that merely shares its prefix") {
  SandboxSpec spec = Spec();
  spec.mounts = {{"/srv/dropq-other/groups/team", "/workspace/group", false}};
  CHECK_FALSE(MakeKubernetesRuntime(Options())->Build(spec).error.empty());
}

TEST_CASE("the pod's deadline is the timeout plus the grace, its termination grace the grace") {
  KubernetesOptions o = Options();
  o.grace_seconds = 20;
  SandboxSpec spec = Spec();
  spec.timeout_ms = 60'500;
  json pod = BuiltPod(o, spec);
  CHECK(pod["spec"]["activeDeadlineSeconds"] == 81);
  CHECK(pod["spec"]["terminationGracePeriodSeconds"] == 20);
}

TEST_CASE("the configured requests and limits are the container's resources") {
  KubernetesOptions o = Options();
  o.requests = {{"cpu", "500m"}, {"memory", "1Gi"}};
  o.limits = {{"memory", "4Gi"}, {"nvidia.com/gpu", "1"}};
  CHECK(BuiltPod(o, Spec())["spec"]["containers"][0]["resources"] ==
        json::parse(R"({"requests":{"cpu":"500m","memory":"1Gi"},"limits":{"memory":"4Gi","nvidia.com/gpu":"1"}})"));
  CHECK_FALSE(BuiltPod(Options(), Spec())["spec"]["containers"][0].contains("resources"));
}

TEST_CASE("the pod gets no service-account token, no env and no args beyond the agent's") {
  json pod = BuiltPod(Options(), Spec());
  CHECK(pod["spec"]["automountServiceAccountToken"] == false);
  CHECK_FALSE(pod["spec"]["containers"][0].contains("env"));
  CHECK_FALSE(pod["spec"]["containers"][0].contains("args"));
}

TEST_CASE("a pod name is the sandbox name when that is a DNS-1123 label of at most 63 characters") {
  CHECK(PodName("dropq-team-1700000000000") == "dropq-team-1700000000000");
}

TEST_CASE("every group folder gets a pod name that is a DNS-1123 label of at most 63 characters") {
  for (const auto& group : kNastyGroups) {
    const std::string name = PodName("dropq-" + group + "-1700000000000");
    INFO(group << " -> " << name);
    CHECK(IsDnsLabel(name));
  }
}

TEST_CASE("groups that differ only in case or in '_' against '-' get different pod names") {
  CHECK(PodName("dropq-Team-1") != PodName("dropq-team-1"));
  CHECK(PodName("dropq-a_b-1") != PodName("dropq-a-b-1"));
  CHECK(PodName("dropq-Team-1") == PodName("dropq-Team-1"));
}

TEST_CASE("a label value is the value itself when valid, else at most 63 characters with alphanumeric ends") {
  CHECK(LabelValue("Team_Alpha") == "Team_Alpha");
  for (const auto& group : kNastyGroups) {
    const std::string v = LabelValue(group);
    INFO(group << " -> " << v);
    CHECK(v.size() <= 63);
    CHECK(std::isalnum(static_cast<unsigned char>(v.front())));
    CHECK(std::isalnum(static_cast<unsigned char>(v.back())));
  }
  CHECK(LabelValue(std::string(64, 'A')) != LabelValue(std::string(63, 'A') + "B"));
}

TEST_CASE("kubernetes stops a pod by deleting it with the grace, then forced with none") {
  auto rt = MakeKubernetesRuntime(Options());
  CHECK(rt->StopArgv("dropq-team-1") ==
        Strings{"kubectl", "delete", "pod", "dropq-team-1", "--grace-period=15", "--wait=false", "--ignore-not-found"});
  CHECK(rt->KillArgv("dropq-team-1") == Strings{"kubectl", "delete", "pod", "dropq-team-1", "--grace-period=0",
                                                "--force", "--wait=false", "--ignore-not-found"});
}

TEST_CASE("kubernetes collects the output with kubectl logs and then deletes the pod, both by its pod name") {
  KubernetesOptions o = Options();
  o.k8s_namespace = "dropq";
  auto rt = MakeKubernetesRuntime(o);
  const std::string pod = PodName("dropq-Team_A-1");
  CHECK(rt->CollectArgv("dropq-Team_A-1") == Strings{"kubectl", "--namespace=dropq", "logs", pod, "--container=agent"});
  CHECK(rt->CleanupArgv("dropq-Team_A-1") ==
        Strings{"kubectl", "--namespace=dropq", "delete", "pod", pod, "--wait=false", "--ignore-not-found"});
}

TEST_CASE("kubernetes deletes the pods labelled with its instance at start-up and counts them") {
  FakeCli fake("kubectl", R"(case "$2" in delete) printf 'pod/dropq-team-1\npod/dropq-ops-2\n' ;; esac)");
  KubernetesOptions o = Options(fake.bin.string());
  o.context = "prod";
  auto deleted = MakeKubernetesRuntime(o)->CleanupOrphans();
  REQUIRE(deleted.ok());
  CHECK(*deleted == 2);
  CHECK(fake.Calls() == Strings{"--context=prod|delete|pods|--selector=dropq.instance=aaaaaaaaaaaa|--grace-period=15|"
                                "--wait=false|--output=name|"});
}

TEST_CASE("kubernetes without an instance id deletes no pods and says why") {
  FakeCli fake("kubectl", "exit 0");
  KubernetesOptions o = Options(fake.bin.string());
  o.instance_id.clear();
  auto deleted = MakeKubernetesRuntime(o)->CleanupOrphans();
  REQUIRE_FALSE(deleted.ok());
  CHECK_THAT(deleted.status().message(), Contains("no instance id"));
  CHECK(fake.Calls().empty());
}

TEST_CASE("kubernetes orphan clean-up reports kubectl's complaint as an error") {
  FakeCli fake("kubectl", "echo 'error: You must be logged in to the server (Unauthorized)' >&2; exit 1");
  auto deleted = MakeKubernetesRuntime(Options(fake.bin.string()))->CleanupOrphans();
  REQUIRE_FALSE(deleted.ok());
  CHECK_THAT(deleted.status().message(), Contains("Unauthorized"));
}

TEST_CASE("kubernetes is available when this user may run, attach to, read and delete pods and the claims exist") {
  FakeCli fake("kubectl", "exit 0");
  KubernetesOptions o = Options(fake.bin.string());
  o.k8s_namespace = "dropq";
  CHECK(MakeKubernetesRuntime(o)->CheckAvailable().ok());
  CHECK(fake.Calls() == Strings{"version|--client|", "--namespace=dropq|auth|can-i|create|pods|",
                                "--namespace=dropq|auth|can-i|create|pods/attach|",
                                "--namespace=dropq|auth|can-i|get|pods/log|",
                                "--namespace=dropq|auth|can-i|delete|pods|", "--namespace=dropq|auth|can-i|list|pods|",
                                "--namespace=dropq|get|persistentvolumeclaim|dropq-root|-o|name|"});
}

TEST_CASE("kubernetes is unavailable, naming the permission, when kubectl auth can-i says no") {
  FakeCli fake("kubectl", R"(case "$*" in *"pods/attach"*) echo no; exit 1 ;; esac)");
  Status s = MakeKubernetesRuntime(Options(fake.bin.string()))->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Contains("create pods/attach"));
}

TEST_CASE("kubernetes is unavailable, naming the claim, when a configured claim is not there") {
  FakeCli fake("kubectl", R"(case "$1" in get) echo 'Error from server (NotFound): persistentvolumeclaims "dropq-root" not found' >&2; exit 1 ;; esac)");
  Status s = MakeKubernetesRuntime(Options(fake.bin.string()))->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Contains("dropq-root") && Contains("not found"));
}

TEST_CASE("kubernetes is unavailable, saying to install kubectl, when there is none") {
  Status s = MakeKubernetesRuntime(Options("/nonexistent/kubectl"))->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Status::Code::kNotFound);
  CHECK_THAT(s.message(), Contains("install kubectl"));
}

// Offline schema validation (no cluster): every pod the runtime builds for
// these groups and options, checked by validate_pod.py against the vendored
// Kubernetes Pod schema (tests/runner/kubernetes/README.md) made strict, and
// against the API server's name and label rules the schema leaves out.
namespace {

struct Validation {
  int exit_code;
  std::string output;
};

Validation Validate(const std::vector<fs::path>& files) {
  const std::string dir = std::string(DROPQ_SOURCE_DIR) + "/tests/runner/kubernetes";
  Strings argv = {"/usr/bin/python3", dir + "/validate_pod.py", dir + "/pod-v1.json"};
  for (const auto& f : files) argv.push_back(f.string());
  auto r = dropq::process::Run(argv, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"});
  REQUIRE(r.ok());
  return {r->exit.term_signal != 0 ? 128 + r->exit.term_signal : r->exit.exit_code, r->out + r->err};
}

// The pods of every nasty group (and main, with the root), under options
// that set every field the runtime can set.
std::vector<fs::path> WritePods(const fs::path& dir) {
  KubernetesOptions o = Options();
  o.volumes = {{"dropq-root", "/srv/dropq", "tenants/a"}, {"dropq.ipc.claim", "/srv/dropq/data/ipc", ""}};
  o.requests = {{"cpu", "500m"}, {"memory", "1Gi"}};
  o.limits = {{"memory", "4Gi"}, {"nvidia.com/gpu", "1"}, {"ephemeral-storage", "2e9"}};
  std::vector<fs::path> files;
  Strings groups = kNastyGroups;
  groups.push_back("team");
  groups.push_back("main");
  for (std::size_t i = 0; i < groups.size(); ++i) {
    SandboxSpec spec = Spec(groups[i]);
    if (groups[i] == "main") spec.mounts.insert(spec.mounts.begin(), {"/srv/dropq", "/workspace/project", false});
    if (i % 2 == 0) spec.agent = {"/usr/local/bin/agent", "--stdin"};
    if (i == 1) spec.timeout_ms = 0;  // no deadline given
    files.push_back(dir / ("pod-" + std::to_string(i) + ".json"));
    WriteFile(files.back(), BuiltPod(o, spec).dump(2));
  }
  return files;
}

}  // namespace

TEST_CASE("every pod kubernetes builds, for every kind of group folder, is valid against the Pod schema") {
  TempDir tmp;
  auto files = WritePods(tmp.path());
  Validation v = Validate(files);
  INFO(v.output);
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.output, Contains(std::to_string(files.size()) + " valid"));
}

TEST_CASE("the pod schema check rejects a misspelt field, a bad pod name and a bad label value") {
  TempDir tmp;
  json good = BuiltPod(Options(), Spec());
  json misspelt = good, name = good, label = good;
  misspelt["spec"]["containers"][0]["volumeMounts"][0]["subpath"] = "groups/team";
  name["metadata"]["name"] = "dropq-Team_A-1";
  label["metadata"]["labels"]["dropq.group"] = std::string(64, 'a');
  for (const auto& [file, pod] : {std::pair{"misspelt.json", misspelt}, {"name.json", name}, {"label.json", label}}) {
    WriteFile(tmp.path() / file, pod.dump());
    Validation v = Validate({tmp.path() / file});
    INFO(file << ": " << v.output);
    CHECK(v.exit_code == 1);
    CHECK_THAT(v.output, Contains("invalid"));
  }
}

// One attempt through the Runner (runner/runner.h) with the kubernetes
// runtime and a fake kubectl that, like `kubectl run -i` at its worst, loses
// what the agent printed before it attached.
namespace {

using dropq::Layout;
using dropq::ManualClock;
using dropq::JobState;
using dropq::RunOutcome;
using dropq::runner::Attempt;
using dropq::runner::Runner;
using dropq::runner::RunnerOptions;

// run: saves its stdin, prints a cut-off block; logs: the whole block;
// delete: nothing. Every call is in argv.log.
constexpr const char* kLossyKubectl = R"sh(dir="$(dirname "$0")"
for a in "$@"; do case "$a" in run) cat > "$dir/stdin"; printf '%s\n' '{"status":"success","res' ;;
  logs) printf '%s\n' '---NANOCLAW_OUTPUT_START---' '{"status":"success","result":"from the log"}' '---NANOCLAW_OUTPUT_END---' ;;
esac; done)sh";

}  // namespace

TEST_CASE("a kubernetes attempt takes its result from kubectl logs and deletes the pod only after that") {
  ::signal(SIGPIPE, SIG_IGN);
  FakeCli fake("kubectl", kLossyKubectl);
  TempDir dir;
  Layout layout(dir / "root");
  REQUIRE(layout.CreateCommon().ok());
  REQUIRE(layout.CreateGroup("Team_A").ok());
  KubernetesOptions o = Options(fake.bin.string());
  o.volumes = {{"dropq-root", layout.root().string(), ""}};
  auto rt = MakeKubernetesRuntime(o);
  ManualClock clock;
  uv_loop_t loop{};
  uv_loop_init(&loop);
  std::vector<RunOutcome> outcomes;
  RunnerOptions ro;
  ro.kill_grace_ms = 200;
  {
    Runner runner(&loop, layout, *rt, ro, clock, [&](const dropq::Job&, RunOutcome out) { outcomes.push_back(out); });
    Attempt a;
    a.job.id = 7;
    a.job.group = "Team_A";
    a.job.prompt = "say hi";
    a.run.job_id = 7;
    a.run.attempt = 1;
    a.run.container_name = "dropq-Team_A-1";
    a.secrets = {{"ANTHROPIC_API_KEY", "sk-secret-value"}};
    runner.Start(std::move(a));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0].job_state == JobState::kSucceeded);
  REQUIRE(outcomes[0].result);
  CHECK(*outcomes[0].result == "\"from the log\"");
  Strings calls = fake.Calls();
  REQUIRE(calls.size() == 3);
  const std::string pod = PodName("dropq-Team_A-1");
  CHECK(calls[0].rfind("run|" + pod + "|", 0) == 0);
  CHECK(calls[1] == "logs|" + pod + "|--container=agent|");
  CHECK(calls[2] == "delete|pod|" + pod + "|--wait=false|--ignore-not-found|");
  // The secret went in on stdin, and nowhere in any argv.
  CHECK_THAT(ReadFile(fake.bin.parent_path() / "stdin"), Contains("sk-secret-value"));
  CHECK_THAT(ReadFile(fake.log), !Contains("sk-secret-value"));
}
