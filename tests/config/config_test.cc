#include "config/config.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "daemon/daemon.h"
#include "runner/runtime.h"
#include "tests/fakes/temp_dir.h"

using dropq::app::Config;
using dropq::app::ConfigError;
using dropq::app::IsValidGroupFolder;
using dropq::app::LoadConfigFile;
using dropq::app::LoadConfigString;

namespace {

// The smallest valid config; tests append top-level keys to it (YAML does not
// care about key order) or write a whole document when they need to replace
// agent or groups.
const std::string kAgent = "agent: [/opt/dropq/agent]\n";
const std::string kGroups = "groups:\n  - folder: main\n    main: true\n";
const std::string kMinimal = kAgent + kGroups;
const std::string kBase = "/srv/dropq";

Config Load(const std::string& yaml) { return LoadConfigString(yaml, kBase); }

// The ConfigError the text raises, so a test can check both key and reason;
// fails the test when loading succeeds or throws something else.
ConfigError ErrorOf(const std::string& yaml) {
  try {
    Load(yaml);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for:\n" << yaml);
  return ConfigError("", "");
}

std::string ErrorKey(const std::string& yaml) { return ErrorOf(yaml).key(); }

}  // namespace

TEST_CASE("A minimal config gets every documented default") {
  Config c = Load(kMinimal);
  CHECK(c.config_path.empty());
  CHECK(c.root == "/srv/dropq/var");
  CHECK(c.runtime == "bwrap");
  CHECK(c.agent == std::vector<std::string>{"/opt/dropq/agent"});
  CHECK(c.max_concurrent == 5);
  CHECK(c.timeout_ms == 300'000);
  CHECK(c.kill_grace_ms == 15'000);
  CHECK(c.max_output == 10 << 20);
  CHECK(c.max_job_file == 1 << 20);
  CHECK(c.max_attempts == 1);
  CHECK(c.session_dir == "/home/node/.claude");
  CHECK(c.log_level == "info");
  CHECK_FALSE(c.bwrap.rootfs);
  CHECK_FALSE(c.bwrap.network);
  CHECK(c.bwrap.extra_args.empty());
  CHECK(c.bwrap.ro_binds.empty());
  REQUIRE(c.groups.size() == 1);
  CHECK(c.groups[0].folder == "main");
  CHECK(c.groups[0].name == "main");
  CHECK_FALSE(c.groups[0].jid);
  CHECK(c.groups[0].is_main);
  CHECK_FALSE(c.groups[0].timeout_ms);
}

TEST_CASE("Every top-level key loads its valid form") {
  Config c = Load(kMinimal +
                  "root: /data/q\n"
                  "runtime: process\n"
                  "max_concurrent: 3\n"
                  "timeout: 60000\n"
                  "kill_grace: 0\n"
                  "max_output: 2048\n"
                  "max_job_file: 4096\n"
                  "max_attempts: 4\n"
                  "session_dir: /home/agent/.claude\n"
                  "log_level: debug\n");
  CHECK(c.root == "/data/q");
  CHECK(c.runtime == "process");
  CHECK(c.max_concurrent == 3);
  CHECK(c.timeout_ms == 60'000);
  CHECK(c.kill_grace_ms == 0);
  CHECK(c.max_output == 2048);
  CHECK(c.max_job_file == 4096);
  CHECK(c.max_attempts == 4);
  CHECK(c.session_dir == "/home/agent/.claude");
  CHECK(c.log_level == "debug");
}

TEST_CASE("A relative root resolves against the config directory in normal form") {
  CHECK(Load(kMinimal + "root: ../data/./q/\n").root == "/srv/data/q");
  CHECK(Load(kMinimal + "root: state\n").root == "/srv/dropq/state");
}

TEST_CASE("An absolute root is kept, only normalised") {
  CHECK(Load(kMinimal + "root: /var/lib//dropq/\n").root == "/var/lib/dropq");
}

TEST_CASE("A relative base directory is taken from the working directory") {
  Config c = LoadConfigString(kMinimal, "conf");
  CHECK(c.root == (std::filesystem::current_path() / "conf/var").lexically_normal().string());
}

TEST_CASE("An empty root is rejected") { CHECK(ErrorKey(kMinimal + "root: ''\n") == "root"); }

TEST_CASE("Durations accept milliseconds and strings with a unit") {
  CHECK(Load(kMinimal + "timeout: 300s\n").timeout_ms == 300'000);
  CHECK(Load(kMinimal + "timeout: 5m\n").timeout_ms == 300'000);
  CHECK(Load(kMinimal + "timeout: 1500ms\n").timeout_ms == 1500);
  CHECK(Load(kMinimal + "timeout: 2h\n").timeout_ms == 7'200'000);
  CHECK(Load(kMinimal + "kill_grace: 10s\n").kill_grace_ms == 10'000);
}

TEST_CASE("An invalid timeout is rejected naming the key and the accepted forms") {
  auto bad = GENERATE(as<std::string>{}, "0", "-1", "1.5s", "5 minutes", "5x", "[1]", "{a: 1}", "''", "~");
  ConfigError e = ErrorOf(kMinimal + "timeout: " + bad + "\n");
  CHECK(e.key() == "timeout");
  CHECK_THAT(e.reason(), Catch::Contains("must be a duration >= 1ms"));
}

TEST_CASE("A negative or malformed kill_grace is rejected") {
  auto bad = GENERATE(as<std::string>{}, "-1", "abc", "1.0");
  CHECK(ErrorKey(kMinimal + "kill_grace: " + bad + "\n") == "kill_grace");
}

TEST_CASE("Sizes accept bytes and strings with a unit") {
  CHECK(Load(kMinimal + "max_output: 10MiB\n").max_output == 10 << 20);
  CHECK(Load(kMinimal + "max_output: 64KB\n").max_output == 64'000);
  CHECK(Load(kMinimal + "max_job_file: 1\n").max_job_file == 1);
  CHECK(Load(kMinimal + "max_job_file: 2KiB\n").max_job_file == 2048);
}

TEST_CASE("max_output below 1 KiB or not a size is rejected") {
  auto bad = GENERATE(as<std::string>{}, "1023", "0", "-1", "10XB", "1.5MiB", "[1]");
  ConfigError e = ErrorOf(kMinimal + "max_output: " + bad + "\n");
  CHECK(e.key() == "max_output");
  CHECK_THAT(e.reason(), Catch::Contains("must be a size >= 1024 bytes"));
}

TEST_CASE("max_job_file of zero or not a size is rejected") {
  auto bad = GENERATE(as<std::string>{}, "0", "lots", "99999999999999999999");
  CHECK(ErrorKey(kMinimal + "max_job_file: " + bad + "\n") == "max_job_file");
}

TEST_CASE("max_concurrent must be an integer from one to 100000") {
  auto bad = GENERATE(as<std::string>{}, "0", "-3", "1.5", "abc", "0x10", "[]", "''", "5s", "100001");
  ConfigError e = ErrorOf(kMinimal + "max_concurrent: " + bad + "\n");
  CHECK(std::string(e.what()) == "max_concurrent: must be an integer from 1 to 100000");
}

// max_concurrent_per_group (docs/CONFIG.md, "Parallel jobs of one group").

TEST_CASE("without max_concurrent_per_group every group runs one job at a time") {
  Config c = Load(kMinimal);
  CHECK(c.max_concurrent_per_group == 1);
  CHECK_FALSE(c.groups[0].max_concurrent_per_group);
  CHECK(c.MaxConcurrentPerGroupFor("main") == 1);
}

TEST_CASE("the top-level max_concurrent_per_group applies to every group without its own") {
  Config c = Load(kMinimal + "max_concurrent_per_group: 4\n");
  CHECK(c.MaxConcurrentPerGroupFor("main") == 4);
  // A group registered at run time is not in the config: the default too.
  CHECK(c.MaxConcurrentPerGroupFor("registered-later") == 4);
}

TEST_CASE("a group's own max_concurrent_per_group beats the top-level one") {
  Config c = Load(kAgent +
                  "max_concurrent_per_group: 2\n"
                  "groups:\n"
                  "  - {folder: main, main: true}\n"
                  "  - {folder: batch, max_concurrent_per_group: 8}\n"
                  "  - {folder: serial, max_concurrent_per_group: 1}\n");
  CHECK(c.MaxConcurrentPerGroupFor("main") == 2);
  CHECK(c.MaxConcurrentPerGroupFor("batch") == 8);
  CHECK(c.MaxConcurrentPerGroupFor("serial") == 1);
}

TEST_CASE("max_concurrent in the hundreds, as a cluster runtime needs, loads") {
  Config c = Load(kMinimal + "max_concurrent: 500\nmax_concurrent_per_group: 500\n");
  CHECK(c.max_concurrent == 500);
  CHECK(c.max_concurrent_per_group == 500);
  CHECK(Load(kMinimal + "max_concurrent: 100000\n").max_concurrent == 100'000);
}

TEST_CASE("max_concurrent_per_group must be an integer from one to 100000") {
  auto bad = GENERATE(as<std::string>{}, "0", "-1", "2.5", "many", "100001", "[]");
  CHECK(std::string(ErrorOf(kMinimal + "max_concurrent_per_group: " + bad + "\n").what()) ==
        "max_concurrent_per_group: must be an integer from 1 to 100000");
}

TEST_CASE("a group's bad max_concurrent_per_group is rejected naming the group") {
  ConfigError e = ErrorOf(kAgent + "groups:\n  - {folder: main, main: true, max_concurrent_per_group: 0}\n");
  CHECK(e.key() == "groups[0].max_concurrent_per_group");
  CHECK(e.reason() == "must be an integer from 1 to 100000");
}

TEST_CASE("max_attempts must be an integer of at least one") {
  auto bad = GENERATE(as<std::string>{}, "0", "-1", "two", "2.0");
  CHECK(std::string(ErrorOf(kMinimal + "max_attempts: " + bad + "\n").what()) ==
        "max_attempts: must be an integer >= 1");
}

TEST_CASE("max_interruptions defaults to three") { CHECK(Load(kMinimal).max_interruptions == 3); }

TEST_CASE("max_interruptions accepts zero and more") {
  CHECK(Load(kMinimal + "max_interruptions: 0\n").max_interruptions == 0);
  CHECK(Load(kMinimal + "max_interruptions: 12\n").max_interruptions == 12);
}

TEST_CASE("max_interruptions must be an integer of at least zero") {
  auto bad = GENERATE(as<std::string>{}, "-1", "three", "1.5");
  CHECK(std::string(ErrorOf(kMinimal + "max_interruptions: " + bad + "\n").what()) ==
        "max_interruptions: must be an integer >= 0");
}

TEST_CASE("runtime accepts bwrap and process") {
  CHECK(Load(kMinimal + "runtime: bwrap\n").runtime == "bwrap");
  CHECK(Load(kMinimal + "runtime: process\n").runtime == "process");
}

TEST_CASE("runtime rejects anything but bwrap, process, docker, podman, container and kubernetes") {
  auto bad = GENERATE(as<std::string>{}, "k8s", "Bwrap", "''", "[bwrap]");
  CHECK(ErrorKey(kMinimal + "runtime: " + bad + "\n") == "runtime");
}

TEST_CASE("a container runtime needs an image") {
  CHECK(ErrorKey(kMinimal + "runtime: docker\n") == "docker.image");
  Config c = Load(kMinimal + "runtime: podman\npodman: {image: agent:1, extra_args: [--network, none]}\n");
  CHECK(c.podman.image == "agent:1");
  CHECK(c.podman.binary == "podman");
  CHECK(c.podman.extra_args == std::vector<std::string>{"--network", "none"});
}

TEST_CASE("containerConfig carries a group's timeout and additional mounts") {
  Config c = Load(kAgent +
                  "groups:\n  - folder: main\n    main: true\n    containerConfig:\n"
                  "      timeout: 2m\n      additionalMounts:\n"
                  "        - {hostPath: ~/src, containerPath: src, readonly: false}\n");
  REQUIRE(c.groups[0].timeout_ms == std::optional<std::int64_t>(120'000));
  REQUIRE(c.groups[0].additional_mounts.size() == 1);
  CHECK(c.groups[0].additional_mounts[0].host_path == "~/src");
  CHECK(c.groups[0].additional_mounts[0].readonly == std::optional<bool>(false));
}

TEST_CASE("an unknown key inside containerConfig is rejected with its path") {
  CHECK(ErrorKey(kAgent + "groups:\n  - folder: main\n    main: true\n    containerConfig: {timout: 5}\n") ==
        "groups[0].containerConfig.timout");
}

TEST_CASE("secrets must be environment variable names") {
  CHECK(ErrorKey(kMinimal + "secrets: [GOOD_NAME, 'bad-name']\n") == "secrets[1]");
  Config c = Load(kMinimal + "secrets: [A_TOKEN]\n");
  CHECK(c.secrets == std::vector<std::string>{"A_TOKEN"});
}

TEST_CASE("agent keeps every argv element in order") {
  Config c = Load(kGroups + "agent: [/usr/bin/env, '', --flag=1]\n");
  CHECK(c.agent == std::vector<std::string>{"/usr/bin/env", "", "--flag=1"});
}

TEST_CASE("agent must be a non-empty list of strings") {
  CHECK(ErrorKey(kGroups) == "agent");
  auto bad = GENERATE(as<std::string>{}, "/opt/agent", "[]", "~", "{a: b}");
  CHECK(ErrorKey(kGroups + "agent: " + bad + "\n") == "agent");
}

TEST_CASE("docker, podman and container may leave agent out, so the image's entrypoint runs the agent") {
  const std::string runtime = GENERATE(as<std::string>{}, "docker", "podman", "container");
  Config c = Load(kGroups + "runtime: " + runtime + "\n" + runtime + ": {image: nanoclaw-agent:latest}\n");
  CHECK(c.agent.empty());
}

TEST_CASE("bwrap and process refuse a config without agent, saying which runtimes may leave it out") {
  const std::string runtime = GENERATE(as<std::string>{}, "bwrap", "process");
  ConfigError e = ErrorOf(kGroups + "runtime: " + runtime + "\n");
  CHECK(e.key() == "agent");
  CHECK_THAT(e.reason(), Catch::Contains("required with runtime: " + runtime) &&
                             Catch::Contains("only docker, podman, container and kubernetes may leave it out"));
}

TEST_CASE("without an agent, the docker, podman and container run argv ends with the image") {
  const std::string runtime = GENERATE(as<std::string>{}, "docker", "podman", "container");
  Config c = Load(kGroups + "runtime: " + runtime + "\n" + runtime + ": {image: nanoclaw-agent:latest}\n");
  dropq::runner::SandboxSpec spec;
  spec.container_name = "dropq-main-1700000000000";
  spec.mounts = {{"/srv/dropq/groups/main", "/workspace/group", false}};
  spec.agent = c.agent;
  auto argv = dropq::app::MakeRuntime(c, "0123456789ab")->Build(spec).argv;
  REQUIRE_FALSE(argv.empty());
  CHECK(argv.back() == "nanoclaw-agent:latest");
}

TEST_CASE("agent elements must be strings and the program non-empty") {
  CHECK(ErrorKey(kGroups + "agent: [a, [b]]\n") == "agent[1]");
  CHECK(ErrorKey(kGroups + "agent: ['', x]\n") == "agent[0]");
}

TEST_CASE("session_dir must be an absolute path") {
  auto bad = GENERATE(as<std::string>{}, "home/node/.claude", "''", "[/x]");
  ConfigError e = ErrorOf(kMinimal + "session_dir: " + bad + "\n");
  CHECK(e.key() == "session_dir");
}

TEST_CASE("log_level accepts each known level") {
  auto good = GENERATE(as<std::string>{}, "trace", "debug", "info", "warn", "error", "critical", "off");
  CHECK(Load(kMinimal + "log_level: " + good + "\n").log_level == good);
}

TEST_CASE("log_level rejects unknown levels") {
  auto bad = GENERATE(as<std::string>{}, "warning", "INFO", "verbose");
  CHECK(ErrorKey(kMinimal + "log_level: " + bad + "\n") == "log_level");
}

TEST_CASE("bwrap settings load with relative host paths resolved beside the config") {
  Config c = Load(kMinimal +
                  "bwrap:\n"
                  "  rootfs: rootfs/\n"
                  "  network: true\n"
                  "  extra_args: [--setenv, A, b]\n"
                  "  ro_binds:\n"
                  "    - {host: ../build/demo-agent, container: /opt/dropq/agent}\n"
                  "    - {host: /etc/ssl, container: /etc/ssl}\n");
  CHECK(c.bwrap.rootfs == "/srv/dropq/rootfs");
  CHECK(c.bwrap.network);
  CHECK(c.bwrap.extra_args == std::vector<std::string>{"--setenv", "A", "b"});
  REQUIRE(c.bwrap.ro_binds.size() == 2);
  CHECK(c.bwrap.ro_binds[0].host == "/srv/build/demo-agent");
  CHECK(c.bwrap.ro_binds[0].container == "/opt/dropq/agent");
  CHECK(c.bwrap.ro_binds[1].host == "/etc/ssl");
}

TEST_CASE("An empty bwrap section or empty lists keep the defaults") {
  CHECK_FALSE(Load(kMinimal + "bwrap:\n").bwrap.network);
  Config c = Load(kMinimal + "bwrap:\n  extra_args:\n  ro_binds: []\n");
  CHECK(c.bwrap.extra_args.empty());
  CHECK(c.bwrap.ro_binds.empty());
}

TEST_CASE("bwrap must be a mapping") {
  CHECK(ErrorKey(kMinimal + "bwrap: [a]\n") == "bwrap");
  CHECK(ErrorKey(kMinimal + "bwrap: on\n") == "bwrap");
}

TEST_CASE("bwrap.network accepts only true or false") {
  CHECK_FALSE(Load(kMinimal + "bwrap: {network: false}\n").bwrap.network);
  auto bad = GENERATE(as<std::string>{}, "yes", "on", "1", "[true]", "~");
  CHECK(ErrorKey(kMinimal + "bwrap: {network: " + bad + "}\n") == "bwrap.network");
}

TEST_CASE("bwrap.extra_args must be a list of strings") {
  CHECK(ErrorKey(kMinimal + "bwrap: {extra_args: --x}\n") == "bwrap.extra_args");
  CHECK(ErrorKey(kMinimal + "bwrap: {extra_args: [a, {b: c}]}\n") == "bwrap.extra_args[1]");
}

TEST_CASE("A ro_binds container path must be absolute") {
  ConfigError e = ErrorOf(kMinimal + "bwrap: {ro_binds: [{host: /a, container: opt/agent}]}\n");
  CHECK(e.key() == "bwrap.ro_binds[0].container");
  CHECK(e.reason() == "must be an absolute path");
}

TEST_CASE("A ro_binds entry needs both host and container") {
  CHECK(ErrorKey(kMinimal + "bwrap: {ro_binds: [{container: /a}]}\n") == "bwrap.ro_binds[0].host");
  CHECK(ErrorKey(kMinimal + "bwrap: {ro_binds: [{host: /a, container: /a}, {host: /b}]}\n") ==
        "bwrap.ro_binds[1].container");
  CHECK(ErrorKey(kMinimal + "bwrap: {ro_binds: [/a]}\n") == "bwrap.ro_binds[0]");
  CHECK(ErrorKey(kMinimal + "bwrap: {ro_binds: /a}\n") == "bwrap.ro_binds");
}

TEST_CASE("An unknown top-level key is rejected by name") {
  ConfigError e = ErrorOf(kMinimal + "max_concurrency: 3\n");
  CHECK(e.key() == "max_concurrency");
  CHECK(e.reason() == "unknown key; did you mean `max_concurrent`?");
}

TEST_CASE("An unknown key inside bwrap is rejected with its path") {
  CHECK(std::string(ErrorOf(kMinimal + "bwrap:\n  netwrok: true\n").what()) ==
        "bwrap.netwrok: unknown key; did you mean `network`?");
}

TEST_CASE("An unknown key inside a ro_binds entry is rejected with its path") {
  CHECK(ErrorKey(kMinimal + "bwrap: {ro_binds: [{host: /a, container: /a, mode: rw}]}\n") == "bwrap.ro_binds[0].mode");
}

TEST_CASE("An unknown key inside a group is rejected with the group's index") {
  ConfigError e = ErrorOf(kAgent + "groups:\n  - {folder: main, main: true}\n  - {folder: b, folderx: c}\n");
  CHECK(e.key() == "groups[1].folderx");
  CHECK(e.reason() == "unknown key; did you mean `folder`?");
}

TEST_CASE("A key given twice is rejected") {
  CHECK(ErrorOf(kMinimal + "timeout: 1s\ntimeout: 2s\n").reason() == "duplicate key");
}

TEST_CASE("A group's name defaults to its folder and its other keys load") {
  Config c = Load(kAgent +
                  "groups:\n"
                  "  - {folder: main, main: true, name: Main room, jid: 'main@g.us'}\n"
                  "  - {folder: team-a_1, timeout: 5m, main: false}\n");
  REQUIRE(c.groups.size() == 2);
  CHECK(c.groups[0].name == "Main room");
  CHECK(c.groups[0].jid == "main@g.us");
  CHECK(c.groups[1].folder == "team-a_1");
  CHECK(c.groups[1].name == "team-a_1");
  CHECK_FALSE(c.groups[1].is_main);
  CHECK(c.groups[1].timeout_ms == 300'000);
}

TEST_CASE("A group timeout must be a positive duration") {
  CHECK(Load(kAgent + "groups:\n  - {folder: m, main: true, timeout: 1500}\n").groups[0].timeout_ms == 1500);
  auto bad = GENERATE(as<std::string>{}, "0", "soon", "-5s");
  CHECK(ErrorKey(kAgent + "groups:\n  - {folder: m, main: true, timeout: " + bad + "}\n") == "groups[0].timeout");
}

TEST_CASE("A group's name and jid must be non-empty strings") {
  CHECK(ErrorKey(kAgent + "groups:\n  - {folder: m, main: true, name: ''}\n") == "groups[0].name");
  CHECK(ErrorKey(kAgent + "groups:\n  - {folder: m, main: true, jid: [x]}\n") == "groups[0].jid");
}

TEST_CASE("A group's main must be true or false") {
  CHECK(ErrorKey(kAgent + "groups:\n  - {folder: m, main: yes}\n") == "groups[0].main");
}

TEST_CASE("A bad group folder is rejected naming the group") {
  auto bad = GENERATE(as<std::string>{}, "global", "GLOBAL", "Global", "../x", "a b", "", "-lead", "_lead", "a/b",
                      ".hidden", "caf\xc3\xa9", std::string(65, 'a'), "[x]");
  CAPTURE(bad);
  ConfigError e = ErrorOf(kAgent + "groups:\n  - {folder: '" + bad + "', main: true}\n");
  CHECK(e.key() == "groups[0].folder");
}

TEST_CASE("The reserved folder global is rejected with its own reason") {
  ConfigError e = ErrorOf(kAgent + "groups:\n  - {folder: main, main: true}\n  - {folder: global}\n");
  CHECK(e.key() == "groups[1].folder");
  CHECK_THAT(e.reason(), Catch::Contains("reserved"));
}

TEST_CASE("A group without a folder is rejected") {
  CHECK(ErrorKey(kAgent + "groups:\n  - {main: true}\n") == "groups[0].folder");
  CHECK(ErrorKey(kAgent + "groups:\n  - main\n") == "groups[0]");
}

TEST_CASE("A 64-character folder is accepted") {
  const std::string folder(64, 'z');
  CHECK(Load(kAgent + "groups:\n  - {folder: " + folder + ", main: true}\n").groups[0].folder == folder);
}

TEST_CASE("Two main groups are rejected at the second") {
  ConfigError e = ErrorOf(kAgent + "groups:\n  - {folder: a, main: true}\n  - {folder: b, main: true}\n");
  CHECK(e.key() == "groups[1].main");
  CHECK_THAT(e.reason(), Catch::Contains("groups[0]"));
}

TEST_CASE("A config without a main group is rejected") {
  ConfigError e = ErrorOf(kAgent + "groups:\n  - {folder: a}\n  - {folder: b, main: false}\n");
  CHECK(e.key() == "groups");
  CHECK_THAT(e.reason(), Catch::Contains("main: true"));
}

TEST_CASE("Duplicate folders are rejected, also when they differ only in case") {
  CHECK(ErrorKey(kAgent + "groups:\n  - {folder: a, main: true}\n  - {folder: b}\n  - {folder: a}\n") ==
        "groups[2].folder");
  CHECK(ErrorKey(kAgent + "groups:\n  - {folder: team, main: true}\n  - {folder: Team}\n") == "groups[1].folder");
}

TEST_CASE("groups must be a non-empty list") {
  CHECK(ErrorKey(kAgent) == "groups");
  auto bad = GENERATE(as<std::string>{}, "[]", "~", "main", "{folder: main}");
  CHECK(ErrorKey(kAgent + "groups: " + bad + "\n") == "groups");
}

TEST_CASE("A YAML syntax error is reported with its line") {
  ConfigError e = ErrorOf("agent: [a]\ngroups:\n  - {folder: main\n");
  CHECK(e.key() == "(yaml)");
  CHECK(e.line() > 0);
  ConfigError tab = ErrorOf("agent: [a]\nruntime: bwrap\n  bad: indent\n");
  CHECK(tab.key() == "(yaml)");
  CHECK(tab.line() == 3);
}

TEST_CASE("An empty file is rejected for its first missing required key") {
  CHECK(ErrorKey("") == "agent");
  CHECK(ErrorKey("# only a comment\n") == "agent");
  CHECK(ErrorOf("").reason().find("required") != std::string::npos);
}

TEST_CASE("A document that is not a mapping is rejected") {
  CHECK(ErrorKey("- a\n- b\n") == "(document)");
  CHECK(ErrorKey("just text\n") == "(document)");
}

TEST_CASE("More than one YAML document is rejected") { CHECK(ErrorKey(kMinimal + "---\n" + kMinimal) == "(yaml)"); }

TEST_CASE("IsValidGroupFolder follows NanoClaw's folder rule") {
  CHECK(IsValidGroupFolder("main"));
  CHECK(IsValidGroupFolder("A"));
  CHECK(IsValidGroupFolder("0-team_x"));
  CHECK(IsValidGroupFolder(std::string(64, 'a')));
  CHECK_FALSE(IsValidGroupFolder(""));
  CHECK_FALSE(IsValidGroupFolder(std::string(65, 'a')));
  CHECK_FALSE(IsValidGroupFolder("global"));
  CHECK_FALSE(IsValidGroupFolder("gLoBaL"));
  CHECK_FALSE(IsValidGroupFolder("-x"));
  CHECK_FALSE(IsValidGroupFolder(".."));
  CHECK_FALSE(IsValidGroupFolder("a.b"));
  CHECK_FALSE(IsValidGroupFolder(std::string("a\0b", 3)));
}

TEST_CASE("FindGroup matches the exact folder and MainGroup returns the main group") {
  Config c = Load(kAgent + "groups:\n  - {folder: a}\n  - {folder: boss, main: true}\n");
  REQUIRE(c.FindGroup("a") != nullptr);
  CHECK(c.FindGroup("a")->folder == "a");
  CHECK(c.FindGroup("A") == nullptr);
  CHECK(c.FindGroup("missing") == nullptr);
  CHECK(c.MainGroup().folder == "boss");
}

TEST_CASE("ConfigError's message is the key and the reason") {
  ConfigError e("groups[1].folder", "unknown key");
  CHECK(std::string(e.what()) == "groups[1].folder: unknown key");
}

TEST_CASE("LoadConfigFile resolves paths beside the file and records its absolute path") {
  dropq::testing::TempDir dir;
  std::filesystem::create_directories(dir / "etc");
  dropq::testing::WriteFile(dir / "etc/dropq.yaml",
                            kMinimal + "root: ../state\nbwrap: {ro_binds: [{host: agent, container: /a}]}\n");
  Config c = LoadConfigFile((dir / "etc/../etc/dropq.yaml").string());
  CHECK(c.config_path == (dir / "etc/dropq.yaml").string());
  CHECK(c.root == (dir / "state").string());
  CHECK(c.bwrap.ro_binds.at(0).host == (dir / "etc/agent").string());
}

TEST_CASE("LoadConfigFile reports an unreadable file as a plain runtime_error") {
  dropq::testing::TempDir dir;
  for (const std::string& path : {(dir / "missing.yaml").string(), dir.str()}) {
    try {
      LoadConfigFile(path);
      FAIL("no error for " << path);
    } catch (const ConfigError&) {
      FAIL("ConfigError for an unreadable file " << path);
    } catch (const std::runtime_error& e) {
      CHECK_THAT(e.what(), Catch::Contains("cannot read config"));
    }
  }
}

TEST_CASE("LoadConfigFile rejects an invalid file with a ConfigError") {
  dropq::testing::TempDir dir;
  dropq::testing::WriteFile(dir / "dropq.yaml", "");
  CHECK_THROWS_AS(LoadConfigFile((dir / "dropq.yaml").string()), ConfigError);
}

TEST_CASE("a group's rate limits its starts per period") {
  Config c = Load(kAgent + "groups:\n  - folder: main\n    main: true\n    rate: 10/min\n");
  REQUIRE(c.groups[0].rate.has_value());
  CHECK(*c.groups[0].rate == dropq::RateLimit{10, 60'000});
  CHECK(c.RateFor("main") == std::optional<dropq::RateLimit>(dropq::RateLimit{10, 60'000}));
}

TEST_CASE("no rate anywhere means no rate limit") {
  Config c = Load(kMinimal);
  CHECK_FALSE(c.rate.has_value());
  CHECK_FALSE(c.RateFor("main").has_value());
}

TEST_CASE("the top-level rate applies to every group without its own, registered ones included") {
  Config c = Load(kMinimal + "rate: 5/30s\n");
  CHECK(c.RateFor("main") == std::optional<dropq::RateLimit>(dropq::RateLimit{5, 30'000}));
  CHECK(c.RateFor("registered-later") == std::optional<dropq::RateLimit>(dropq::RateLimit{5, 30'000}));
}

TEST_CASE("a group's own rate wins over the top-level one, and rate none lifts it") {
  Config c = Load(kAgent + "rate: 1/h\ngroups:\n  - folder: main\n    main: true\n    rate: 3/min\n"
                           "  - folder: free\n    rate: none\n");
  CHECK(c.RateFor("main") == std::optional<dropq::RateLimit>(dropq::RateLimit{3, 60'000}));
  CHECK_FALSE(c.RateFor("free").has_value());
}

TEST_CASE("an unreadable rate names the group's key and what a rate looks like") {
  ConfigError e = ErrorOf(kAgent + "groups:\n  - folder: main\n    main: true\n    rate: 10 per minute\n");
  CHECK(e.key() == "groups[0].rate");
  CHECK(e.reason().find("<count>/<period>") != std::string::npos);
  CHECK(ErrorKey(kMinimal + "rate: 0/min\n") == "rate");
  CHECK(ErrorKey(kMinimal + "rate: 5/60\n") == "rate");
}
