// The slurm runtime's argv and stop commands, without a cluster (the e2e
// tests in tests/e2e/slurm_test.cc run them through a real one).
#include "runner/slurm_runtime.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/fakes/env.h"

namespace {

using dropq::runner::MakeSlurmRuntime;
using dropq::runner::SandboxSpec;
using dropq::runner::SlurmJobName;
using dropq::runner::SlurmOptions;
using dropq::testing::ScopedEnv;
using Strings = std::vector<std::string>;

SlurmOptions Options() {
  SlurmOptions o;
  o.instance_id = "0123456789ab";
  o.shared_root = "/srv/shared";
  o.root = "/srv/shared/dropq";
  o.kill_grace_ms = 15'000;
  return o;
}

SandboxSpec Spec() {
  SandboxSpec s;
  s.container_name = "dropq-team-1700000000000";
  s.mounts = {{"/srv/shared/dropq/groups/team", "/workspace/group", false}};
  s.agent = {"/opt/agent", "--flag"};
  s.timeout_ms = 300'000;
  return s;
}

// The argv up to the wrapper (srun's own options).
Strings SrunPart(const Strings& argv) {
  auto sh = std::find(argv.begin(), argv.end(), "/bin/sh");
  REQUIRE(sh != argv.end());
  return Strings(argv.begin(), sh);
}

bool Has(const Strings& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("a slurm step is named after the instance, the group and the start") {
  CHECK(SlurmJobName("0123456789ab", "dropq-team-1700000000000") == "dropq-0123456789ab-team-1700000000000");
  auto argv = MakeSlurmRuntime(Options())->Build(Spec()).argv;
  CHECK(SrunPart(argv) == Strings{"srun", "--job-name", "dropq-0123456789ab-team-1700000000000", "--comment",
                                  "dropq:0123456789ab", "-n1", "--time", "7"});
}

TEST_CASE("slurm's time limit is the timeout and the grace in whole minutes, plus one") {
  auto spec = Spec();
  spec.timeout_ms = 60'000;
  auto o = Options();
  o.kill_grace_ms = 1;  // 60.001 s: two minutes, plus one
  auto argv = MakeSlurmRuntime(o)->Build(spec).argv;
  auto at = std::find(argv.begin(), argv.end(), "--time");
  REQUIRE(at != argv.end());
  CHECK(*(at + 1) == "3");
}

TEST_CASE("slurm resources and extra arguments go to srun before the inner command") {
  auto o = Options();
  o.partition = "batch";
  o.account = "proj";
  o.qos = "high";
  o.mem = "2G";
  o.gres = "gpu:1";
  o.cpus = 4;
  o.extra_args = {"--exclusive"};
  auto srun = SrunPart(MakeSlurmRuntime(o)->Build(Spec()).argv);
  for (const Strings& pair : {Strings{"--partition", "batch"}, Strings{"--account", "proj"}, Strings{"--qos", "high"},
                              Strings{"--mem", "2G"}, Strings{"--gres", "gpu:1"}, Strings{"--cpus-per-task", "4"}}) {
    auto at = std::search(srun.begin(), srun.end(), pair.begin(), pair.end());
    INFO(pair[0]);
    CHECK(at != srun.end());
  }
  CHECK(srun.back() == "--exclusive");
}

TEST_CASE("a slurm step's inner bwrap sandbox has the group's mounts and ends with the agent") {
  auto argv = MakeSlurmRuntime(Options())->Build(Spec()).argv;
  auto bwrap = std::find(argv.begin(), argv.end(), "bwrap");
  REQUIRE(bwrap != argv.end());
  Strings inner(bwrap, argv.end());
  Strings bind = {"--bind", "/srv/shared/dropq/groups/team", "/workspace/group"};
  CHECK(std::search(inner.begin(), inner.end(), bind.begin(), bind.end()) != inner.end());
  CHECK(Strings(argv.end() - 3, argv.end()) == Strings{"--", "/opt/agent", "--flag"});
}

TEST_CASE("a bare slurm step gets its mounts as environment variables and the start marker") {
  auto o = Options();
  o.inner = "bare";
  auto spawn = MakeSlurmRuntime(o)->Build(Spec());
  CHECK(Strings(spawn.argv.end() - 2, spawn.argv.end()) == Strings{"/opt/agent", "--flag"});
  CHECK(Has(spawn.env, "WORKSPACE_GROUP=/srv/shared/dropq/groups/team"));
  CHECK(Has(spawn.env, std::string("DROPQ_SLURM_MARKER=") + dropq::runner::kSlurmStartMarker));
}

TEST_CASE("srun's environment carries SLURM_CONF and no other inherited SLURM variable") {
  ScopedEnv conf("SLURM_CONF", "/etc/slurm-test/slurm.conf");
  ScopedEnv job("SLURM_JOB_ID", "42");
  ScopedEnv secret("ANTHROPIC_API_KEY", "sk-secret");
  auto env = MakeSlurmRuntime(Options())->Build(Spec()).env;
  CHECK(Has(env, "SLURM_CONF=/etc/slurm-test/slurm.conf"));
  for (const auto& e : env) {
    INFO(e);
    CHECK(e.rfind("SLURM_JOB_ID=", 0) != 0);
    CHECK(e.find("sk-secret") == std::string::npos);
  }
}

TEST_CASE("a slurm step is stopped with scancel TERM, then KILL, by its job name") {
  auto rt = MakeSlurmRuntime(Options());
  CHECK(rt->StopArgv("dropq-team-1") ==
        Strings{"scancel", "--signal=TERM", "--full", "--name", "dropq-0123456789ab-team-1"});
  CHECK(rt->KillArgv("dropq-team-1") ==
        Strings{"scancel", "--signal=KILL", "--full", "--name", "dropq-0123456789ab-team-1"});
  CHECK(rt->StopArgv("").empty());
}

TEST_CASE("the slurm runtime refuses a root outside its shared root") {
  auto o = Options();
  o.root = "/var/lib/dropq";
  auto s = MakeSlurmRuntime(o)->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("not inside slurm.shared_root") != std::string::npos);
}

TEST_CASE("the slurm runtime says what to install when sinfo is missing") {
  ScopedEnv path("PATH", "/nonexistent");
  auto s = MakeSlurmRuntime(Options())->CheckAvailable();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("slurm-client") != std::string::npos);
}
