// Slurm accounting without a cluster: the Runner on a real libuv loop runs
// the real slurm runtime (inner: bare) through recording shims of srun,
// sinfo, scontrol and sacct on PATH (tests/fakes/fake_cli.h). The fake srun
// runs the step's wrapper itself with SLURM_JOB_ID=4242, so the marker line
// and the job id sacct is asked about are the runtime's own. Nothing here
// talks to a slurmdbd: tests/e2e/slurm_test.cc runs a real cluster, which
// has no accounting.
#include <signal.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "runner/runner.h"
#include "runner/slurm_runtime.h"
#include "tests/fakes/env.h"
#include "tests/fakes/fake_cli.h"
#include "tests/fakes/temp_dir.h"

namespace dropq::runner {
namespace {

using testing::FakeCli;
using testing::ScopedEnv;
using testing::TempDir;

const std::string kBlock =
    "printf '%s\\n' '---NANOCLAW_OUTPUT_START---' '{\"status\":\"success\",\"result\":\"hi\"}' "
    "'---NANOCLAW_OUTPUT_END---'";

// The scontrol lines that say whether accounting is on.
const std::string kWithAccounting = "printf '%s\\n' 'AccountingStorageType   = accounting_storage/slurmdbd'";
const std::string kWithoutAccounting = "printf '%s\\n' 'AccountingStorageType   = accounting_storage/none'";

struct AccountingFixture {
  TempDir dir;
  Layout layout{dir / "root"};
  // srun: drops its own options and runs the wrapper (/bin/sh -c ...) as
  // the step would, with the step's job id.
  FakeCli srun{"srun", "while [ \"$#\" -gt 0 ] && [ \"$1\" != /bin/sh ]; do shift; done\n"
                       "SLURM_JOB_ID=4242 exec \"$@\""};
  FakeCli sinfo{"sinfo", "echo 'debug up'"};
  std::unique_ptr<FakeCli> scontrol, sacct;
  ManualClock clock;
  uv_loop_t loop{};
  std::vector<RunOutcome> outcomes;

  AccountingFixture(const std::string& scontrol_body, const std::string& sacct_body)
      : scontrol(std::make_unique<FakeCli>("scontrol", scontrol_body)),
        sacct(std::make_unique<FakeCli>("sacct", sacct_body)) {
    ::signal(SIGPIPE, SIG_IGN);
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("team").ok());
    uv_loop_init(&loop);
  }
  ~AccountingFixture() { uv_loop_close(&loop); }

  // Runs one attempt of an agent that prints one block, through the slurm
  // runtime made (and checked, as the daemon does at start-up) with
  // `accounting`.
  const RunOutcome& Run(const std::string& accounting = "auto") {
    std::string path;
    for (const FakeCli* cli : {&srun, &sinfo, scontrol.get(), sacct.get()}) path += cli->bin.parent_path().string() + ":";
    ScopedEnv env("PATH", path + "/usr/bin:/bin");
    SlurmOptions o;
    o.instance_id = "0123456789ab";
    o.shared_root = dir.path().string();
    o.root = layout.root().string();
    o.inner = "bare";
    o.accounting = accounting;
    auto runtime = MakeSlurmRuntime(o);
    REQUIRE(runtime->CheckAvailable().ok());
    RunnerOptions ro;
    ro.agent = {"/bin/sh", "-c", kBlock};
    ro.kill_grace_ms = 200;
    {
      Runner runner(&loop, layout, *runtime, ro, clock,
                    [this](const Job&, RunOutcome out) { outcomes.push_back(std::move(out)); });
      Attempt a;
      a.job.id = 7;
      a.job.group = "team";
      a.job.prompt = "say hi";
      a.job.attempts = 1;
      a.run.job_id = 7;
      a.run.attempt = 1;
      a.run.container_name = "dropq-team-1";
      a.timeout_ms = 30'000;
      runner.Start(std::move(a));
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(outcomes.size() == 1);
    return outcomes[0];
  }
};

}  // namespace

TEST_CASE("with slurm accounting on, sacct's node and state land on the attempt's run", "[process]") {
  AccountingFixture f(kWithAccounting, "printf '%s\\n' 'node7|COMPLETED'");
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kSucceeded);
  CHECK(o.run.node == std::optional<std::string>("node7"));
  CHECK(o.run.cluster_state == std::optional<std::string>("COMPLETED"));
}

TEST_CASE("sacct is asked about the step's own job id from its marker line", "[process]") {
  AccountingFixture f(kWithAccounting, "printf '%s\\n' 'node7|COMPLETED'");
  f.Run();
  CHECK(f.sacct->Calls() == std::vector<std::string>{"-j|4242|-X|-n|-P|-o|NodeList,State|"});
}

TEST_CASE("when scontrol shows no accounting storage, sacct is never asked", "[process]") {
  AccountingFixture f(kWithoutAccounting, "printf '%s\\n' 'node7|COMPLETED'");
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kSucceeded);
  CHECK(f.sacct->Calls().empty());
  CHECK_FALSE(o.run.node);
  CHECK_FALSE(o.run.cluster_state);
}

TEST_CASE("with slurm accounting off, neither scontrol nor sacct is asked", "[process]") {
  AccountingFixture f(kWithAccounting, "printf '%s\\n' 'node7|COMPLETED'");
  const RunOutcome& o = f.Run("off");
  CHECK(f.scontrol->Calls().empty());
  CHECK(f.sacct->Calls().empty());
  CHECK_FALSE(o.run.node);
}

TEST_CASE("with slurm accounting on, sacct is asked without asking scontrol", "[process]") {
  AccountingFixture f(kWithoutAccounting, "printf '%s\\n' 'node7|COMPLETED'");
  const RunOutcome& o = f.Run("on");
  CHECK(f.scontrol->Calls().empty());
  CHECK(o.run.node == std::optional<std::string>("node7"));
}

TEST_CASE("a sacct that fails leaves the job succeeded, with no node or state", "[process]") {
  AccountingFixture f(kWithAccounting, "echo 'sacct: error: Problem talking to the database' >&2; exit 1");
  const RunOutcome& o = f.Run();
  CHECK(f.sacct->Calls().size() == 1);
  CHECK(o.job_state == JobState::kSucceeded);
  CHECK(o.run.status == "succeeded");
  CHECK_FALSE(o.run.node);
  CHECK_FALSE(o.run.cluster_state);
}

TEST_CASE("garbage from sacct leaves the job succeeded, with no node or state", "[process]") {
  AccountingFixture f(kWithAccounting, "printf '\\377\\001|\\033]0;pwned\\007\\n'");
  const RunOutcome& o = f.Run();
  CHECK(f.sacct->Calls().size() == 1);
  CHECK(o.job_state == JobState::kSucceeded);
  CHECK_FALSE(o.run.node);
  CHECK_FALSE(o.run.cluster_state);
}

TEST_CASE("a scontrol that fails turns slurm accounting off, and the job still runs", "[process]") {
  AccountingFixture f("exit 1", "printf '%s\\n' 'node7|COMPLETED'");
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kSucceeded);
  CHECK(f.sacct->Calls().empty());
}

TEST_CASE("sacct's line gives its node list and state, a state with words kept whole") {
  auto p = ParseSacctPlacement("node[1-3]|CANCELLED by 0\n");
  REQUIRE(p);
  CHECK(p->node == "node[1-3]");
  CHECK(p->state == "CANCELLED by 0");
}

TEST_CASE("sacct's first non-blank line is the one read") {
  auto p = ParseSacctPlacement("\n  \r\nnode1|FAILED\r\nnode2|COMPLETED\n");
  REQUIRE(p);
  CHECK(p->node == "node1");
  CHECK(p->state == "FAILED");
}

TEST_CASE("sacct output that is not two plain fields gives no placement") {
  for (const char* out : {"", "\n", "node1 COMPLETED\n", "node1|COMPLETED|extra\n", "|COMPLETED\n", "node1|\n",
                          "node\xFF|COMPLETED\n", "node1|COMP\x1b[2JLETED\n", "node1|\xC2\x9b" "2J\n"}) {
    INFO(out);
    CHECK_FALSE(ParseSacctPlacement(out));
  }
  CHECK_FALSE(ParseSacctPlacement(std::string(300, 'n') + "|COMPLETED\n"));
}

TEST_CASE("scontrol's config says accounting is on only for a storage other than none") {
  CHECK(SlurmAccountingConfigured("ClusterName = c\nAccountingStorageType   = accounting_storage/slurmdbd\n"));
  CHECK_FALSE(SlurmAccountingConfigured("AccountingStorageType   = accounting_storage/none\n"));
  CHECK_FALSE(SlurmAccountingConfigured("AccountingStorageHost = (null)\nClusterName = c\n"));
  CHECK_FALSE(SlurmAccountingConfigured(""));
}

}  // namespace dropq::runner
