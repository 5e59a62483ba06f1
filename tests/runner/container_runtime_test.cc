#include "runner/container_runtime.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/fakes/env.h"
#include "tests/fakes/fake_cli.h"
#include "tests/fakes/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using dropq::Status;
using dropq::runner::AppleOptions;
using dropq::runner::DockerOptions;
using dropq::runner::MakeAppleContainerRuntime;
using dropq::runner::MakeDockerRuntime;
using dropq::runner::Mount;
using dropq::runner::SandboxSpec;
using dropq::testing::FakeCli;
using dropq::testing::ReadFile;
using dropq::testing::ScopedEnv;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;
using Strings = std::vector<std::string>;

// Two dropq roots' instance ids (Store::InstanceId makes 12 hex characters).
const std::string kInstanceA = "aaaaaaaaaaaa";
const std::string kInstanceB = "bbbbbbbbbbbb";

SandboxSpec Spec(Strings agent = {}) {
  SandboxSpec s;
  s.container_name = "dropq-team-1700000000000";
  s.mounts = {{"/srv/dropq/groups/team", "/workspace/group", false},
              {"/srv/dropq/groups/global", "/workspace/global", true}};
  s.agent = std::move(agent);
  return s;
}

}  // namespace

TEST_CASE("docker run: -i --rm --name, -v host:ctr for rw and host:ctr:ro for ro, extra args, image, agent") {
  auto rt = MakeDockerRuntime({"docker", "nanoclaw-agent:latest", {"--network", "none"}});
  auto spec = rt->Build(Spec({"node", "/app/dist/index.js"}));
  CHECK(spec.argv == Strings{"docker", "run", "-i", "--rm", "--name", "dropq-team-1700000000000", "-v",
                             "/srv/dropq/groups/team:/workspace/group", "-v",
                             "/srv/dropq/groups/global:/workspace/global:ro", "--network", "none",
                             "nanoclaw-agent:latest", "node", "/app/dist/index.js"});
  CHECK(rt->name() == "docker");
  CHECK(rt->isolates());
}

TEST_CASE("docker run without an agent argv ends with the image, whose entrypoint runs the agent") {
  auto rt = MakeDockerRuntime({"docker", "nanoclaw-agent:latest", {}});
  auto argv = rt->Build(Spec()).argv;
  CHECK(argv.back() == "nanoclaw-agent:latest");
}

TEST_CASE("podman gets docker's argv with its own binary and is named podman") {
  auto rt = MakeDockerRuntime({"podman", "img", {}});
  CHECK(rt->Build(Spec()).argv == Strings{"podman", "run", "-i", "--rm", "--name", "dropq-team-1700000000000", "-v",
                                          "/srv/dropq/groups/team:/workspace/group", "-v",
                                          "/srv/dropq/groups/global:/workspace/global:ro", "img"});
  CHECK(rt->name() == "podman");
  CHECK(MakeDockerRuntime({"/usr/bin/podman", "img", {}})->name() == "podman");
}

TEST_CASE("Apple container: rw mounts use -v and read-only mounts use --mount type=bind,...,readonly") {
  auto rt = MakeAppleContainerRuntime({"img", {"--cpus", "2"}});
  CHECK(rt->Build(Spec({"agent"})).argv ==
        Strings{"container", "run", "-i", "--rm", "--name", "dropq-team-1700000000000", "-v",
                "/srv/dropq/groups/team:/workspace/group", "--mount",
                "type=bind,source=/srv/dropq/groups/global,target=/workspace/global,readonly", "--cpus", "2", "img",
                "agent"});
  CHECK(rt->name() == "container");
}

TEST_CASE("docker stop waits the grace period before the daemon kills; docker kill is immediate") {
  auto rt = MakeDockerRuntime({"docker", "img", {}});
  CHECK(rt->StopArgv("dropq-a-1") == Strings{"docker", "stop", "-t", "15", "dropq-a-1"});
  CHECK(rt->KillArgv("dropq-a-1") == Strings{"docker", "kill", "dropq-a-1"});
  DockerOptions quick{"podman", "img", {}};
  quick.stop_grace_seconds = 3;
  CHECK(MakeDockerRuntime(quick)->StopArgv("dropq-a-1") == Strings{"podman", "stop", "-t", "3", "dropq-a-1"});
}

TEST_CASE("Apple container stop and kill name the container") {
  auto rt = MakeAppleContainerRuntime({"img", {}});
  CHECK(rt->StopArgv("dropq-a-1") == Strings{"container", "stop", "-t", "15", "dropq-a-1"});
  CHECK(rt->KillArgv("dropq-a-1") == Strings{"container", "kill", "dropq-a-1"});
}

TEST_CASE("without a container name there is no stop command, so the runner signals the client") {
  auto rt = MakeDockerRuntime({"docker", "img", {}});
  CHECK(rt->StopArgv("").empty());
  CHECK(rt->KillArgv("").empty());
}

TEST_CASE("the client's environment carries none of dropq's own variables") {
  ScopedEnv key("ANTHROPIC_API_KEY", "sk-ant-test-secret");
  ScopedEnv token("CLAUDE_CODE_OAUTH_TOKEN", "oauth-test-secret");
  ScopedEnv host("DOCKER_HOST", "unix:///run/user/1000/docker.sock");
  std::vector<std::unique_ptr<dropq::runner::Runtime>> runtimes;
  runtimes.push_back(MakeDockerRuntime({"docker", "img", {}}));
  runtimes.push_back(MakeAppleContainerRuntime({"img", {}}));
  for (const auto& rt : runtimes) {
    auto spec = rt->Build(Spec());
    const Strings allowed = {"PATH",
                             "HOME",
                             "LANG",
                             "DOCKER_HOST",
                             "DOCKER_CONTEXT",
                             "DOCKER_CONFIG",
                             "DOCKER_CERT_PATH",
                             "DOCKER_TLS_VERIFY",
                             "CONTAINER_HOST",
                             "CONTAINER_CONNECTION",
                             "CONTAINERS_CONF",
                             "XDG_RUNTIME_DIR",
                             "XDG_CONFIG_HOME",
                             "XDG_DATA_HOME",
                             "TMPDIR"};
    for (const auto& e : spec.env) {
      INFO(e);
      CHECK(std::find(allowed.begin(), allowed.end(), e.substr(0, e.find('='))) != allowed.end());
      CHECK(e.find("secret") == std::string::npos);
    }
    CHECK(std::find(spec.env.begin(), spec.env.end(), "DOCKER_HOST=unix:///run/user/1000/docker.sock") !=
          spec.env.end());
    for (const auto& a : spec.argv) CHECK(a.find("secret") == std::string::npos);
  }
}

TEST_CASE("docker's availability check runs `docker info`") {
  FakeCli fake("docker", "exit 0");
  auto rt = MakeDockerRuntime({fake.bin.string(), "img", {}});
  CHECK(rt->CheckAvailable().ok());
  CHECK(fake.Calls() == Strings{"info|"});
}

TEST_CASE("docker's availability check fails with the CLI's complaint when the daemon is down") {
  FakeCli fake("docker", "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2; exit 1");
  auto s = MakeDockerRuntime({fake.bin.string(), "img", {}})->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Status::Code::kIOError);
  CHECK_THAT(s.message(), Contains(fake.bin.string() + " info") && Contains("exited with code 1") &&
                              Contains("Cannot connect to the Docker daemon") && Contains("daemon running"));
}

TEST_CASE("docker's availability check fails naming the binary when it is not installed") {
  TempDir tmp;
  const std::string missing = (tmp.path() / "podman").string();
  auto s = MakeDockerRuntime({missing, "img", {}})->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Status::Code::kNotFound);
  CHECK_THAT(s.message(), Contains(missing) && Contains("install podman"));
}

TEST_CASE("a container runtime without an image is not available, and no CLI is run") {
  FakeCli fake("docker", "exit 0");
  auto s = MakeDockerRuntime({fake.bin.string(), "", {}})->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Contains("no image configured"));
  CHECK(fake.Calls().empty());
}

TEST_CASE("docker orphan clean-up stops every listed container of its instance whose name starts with dropq-") {
  FakeCli fake("docker", R"(case "$1" in ps) printf 'dropq-team-1\nnot-dropq-2\ndropq-x-3\n' ;; esac)");
  auto stopped = MakeDockerRuntime({fake.bin.string(), "img", {}, 15, kInstanceA})->CleanupOrphans();
  REQUIRE(stopped.ok());
  CHECK(*stopped == 2);
  CHECK(fake.Calls() == Strings{"ps|--filter|label=dropq.instance=" + kInstanceA + "|--format|{{.Names}}|",
                                "stop|-t|15|dropq-team-1|", "stop|-t|15|dropq-x-3|"});
}

TEST_CASE("docker orphan clean-up counts only the containers that stopped") {
  FakeCli fake("docker",
               R"(case "$1" in ps) printf 'dropq-a-1\ndropq-b-2\n' ;; stop) [ "$4" = dropq-a-1 ] || exit 1 ;; esac)");
  auto stopped = MakeDockerRuntime({fake.bin.string(), "img", {}, 15, kInstanceA})->CleanupOrphans();
  REQUIRE(stopped.ok());
  CHECK(*stopped == 1);
  CHECK(fake.Calls().size() == 3);
}

TEST_CASE("docker orphan clean-up reports a failing listing as an error") {
  FakeCli fake("docker", "echo 'daemon gone' >&2; exit 1");
  auto stopped = MakeDockerRuntime({fake.bin.string(), "img", {}, 15, kInstanceA})->CleanupOrphans();
  REQUIRE_FALSE(stopped.ok());
  CHECK_THAT(stopped.status().message(), Contains("daemon gone"));
}

TEST_CASE("Apple container's availability check runs `container system status`") {
  FakeCli fake("container", R"([ "$1 $2" = "system status" ] || exit 2)");
  AppleOptions o{"img", {}};
  o.binary = fake.bin.string();
  CHECK(MakeAppleContainerRuntime(o)->CheckAvailable().ok());
  CHECK(fake.Calls() == Strings{"system|status|"});
}

TEST_CASE("Apple container's availability check says how to start the system when it is stopped") {
  FakeCli fake("container", "echo 'apiserver is not running' >&2; exit 1");
  AppleOptions o{"img", {}};
  o.binary = fake.bin.string();
  auto s = MakeAppleContainerRuntime(o)->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Contains("apiserver is not running") && Contains("system start"));
}

TEST_CASE("Apple container orphan clean-up stops only running containers of its instance whose id starts with dropq-") {
  FakeCli fake("container", R"(case "$1" in ls) cat <<'EOF'
[{"status":"running","configuration":{"id":"dropq-team-1","labels":{"dropq.instance":"aaaaaaaaaaaa"}}},
 {"status":"stopped","configuration":{"id":"dropq-old-2","labels":{"dropq.instance":"aaaaaaaaaaaa"}}},
 {"status":"running","configuration":{"id":"buildkit","labels":{"dropq.instance":"aaaaaaaaaaaa"}}},
 {"status":"running","configuration":{"id":7,"labels":{"dropq.instance":"aaaaaaaaaaaa"}}},
 {"status":"running","configuration":{"id":"dropq-x-3","labels":{"dropq.instance":"aaaaaaaaaaaa"}}}]
EOF
;; esac)");
  AppleOptions o{"img", {}};
  o.binary = fake.bin.string();
  o.instance_id = kInstanceA;
  auto stopped = MakeAppleContainerRuntime(o)->CleanupOrphans();
  REQUIRE(stopped.ok());
  CHECK(*stopped == 2);
  CHECK(fake.Calls() == Strings{"ls|--format|json|", "stop|-t|15|dropq-team-1|", "stop|-t|15|dropq-x-3|"});
}

TEST_CASE("Apple container orphan clean-up refuses a listing that is not JSON") {
  FakeCli fake("container", "echo 'ID IMAGE STATE'");
  AppleOptions o{"img", {}};
  o.binary = fake.bin.string();
  o.instance_id = kInstanceA;
  auto stopped = MakeAppleContainerRuntime(o)->CleanupOrphans();
  REQUIRE_FALSE(stopped.ok());
  CHECK_THAT(stopped.status().message(), Contains("JSON"));
  CHECK(fake.Calls().size() == 1);
}

TEST_CASE("docker and podman run label the container with the root's instance id, after its name") {
  const std::string binary = GENERATE(as<std::string>{}, "docker", "podman");
  auto argv = MakeDockerRuntime({binary, "img", {}, 15, kInstanceA})->Build(Spec()).argv;
  REQUIRE(argv.size() > 7);
  CHECK(Strings(argv.begin() + 4, argv.begin() + 8) ==
        Strings{"--name", "dropq-team-1700000000000", "--label", "dropq.instance=aaaaaaaaaaaa"});
}

TEST_CASE("Apple container run labels the container with the root's instance id, after its name") {
  AppleOptions o{"img", {}};
  o.instance_id = kInstanceA;
  auto argv = MakeAppleContainerRuntime(o)->Build(Spec()).argv;
  REQUIRE(argv.size() > 7);
  CHECK(Strings(argv.begin() + 4, argv.begin() + 8) ==
        Strings{"--name", "dropq-team-1700000000000", "--label", "dropq.instance=aaaaaaaaaaaa"});
}

// A fake docker (or podman) daemon shared by two roots: `running` beside it
// holds one line per running container, "NAME INSTANCE"; `ps --filter`
// answers as docker does (label=KEY=VALUE exactly, name=TEXT anywhere in the
// name), and `stop -t N NAME` removes the container's line.
constexpr const char* kSharedDaemon = R"(state="$(dirname "$0")/running"
case "$1" in
  ps) while read -r name inst; do
        case "$3" in
          "label=dropq.instance=$inst") echo "$name" ;;
          name=*) case "$name" in *"${3#name=}"*) echo "$name" ;; esac ;;
        esac
      done < "$state" ;;
  stop) grep -v "^$4 " "$state" > "$state.new"; mv "$state.new" "$state" ;;
esac)";

TEST_CASE("two roots on one docker or podman daemon each stop only their own containers at start-up") {
  const std::string binary = GENERATE(as<std::string>{}, "docker", "podman");
  FakeCli fake(binary, kSharedDaemon);
  const fs::path running = fake.bin.parent_path() / "running";
  WriteFile(running, "dropq-team-1 aaaaaaaaaaaa\ndropq-team-2 bbbbbbbbbbbb\ndropq-ops-3 aaaaaaaaaaaa\n");
  auto a = MakeDockerRuntime({fake.bin.string(), "img", {}, 15, kInstanceA})->CleanupOrphans();
  REQUIRE(a.ok());
  CHECK(*a == 2);
  CHECK(ReadFile(running) == "dropq-team-2 bbbbbbbbbbbb\n");
  auto b = MakeDockerRuntime({fake.bin.string(), "img", {}, 15, kInstanceB})->CleanupOrphans();
  REQUIRE(b.ok());
  CHECK(*b == 1);
  CHECK(ReadFile(running).empty());
}

TEST_CASE("two roots on one Apple container system each stop only their own containers at start-up") {
  FakeCli fake("container", R"(case "$1" in ls) cat <<'EOF'
[{"status":"running","configuration":{"id":"dropq-team-1","labels":{"dropq.instance":"aaaaaaaaaaaa"}}},
 {"status":"running","configuration":{"id":"dropq-team-2","labels":{"dropq.instance":"bbbbbbbbbbbb"}}},
 {"status":"running","configuration":{"id":"dropq-old-3"}},
 {"status":"running","configuration":{"id":"dropq-ops-4","labels":{"dropq.instance":"aaaaaaaaaaaa"}}}]
EOF
;; esac)");
  AppleOptions o{"img", {}};
  o.binary = fake.bin.string();
  o.instance_id = kInstanceA;
  auto a = MakeAppleContainerRuntime(o)->CleanupOrphans();
  o.instance_id = kInstanceB;
  auto b = MakeAppleContainerRuntime(o)->CleanupOrphans();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a == 2);
  CHECK(*b == 1);
  CHECK(fake.Calls() == Strings{"ls|--format|json|", "stop|-t|15|dropq-team-1|", "stop|-t|15|dropq-ops-4|",
                                "ls|--format|json|", "stop|-t|15|dropq-team-2|"});
}

TEST_CASE("orphan clean-up without an instance id stops nothing and says why") {
  FakeCli fake("docker", R"(case "$1" in ps) printf 'dropq-team-1\n' ;; esac)");
  auto stopped = MakeDockerRuntime({fake.bin.string(), "img", {}})->CleanupOrphans();
  REQUIRE_FALSE(stopped.ok());
  CHECK_THAT(stopped.status().message(), Contains("no instance id"));
  CHECK(fake.Calls().empty());
}
