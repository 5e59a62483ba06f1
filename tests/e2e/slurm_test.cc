// End-to-end tests of runtime: slurm (docs/RUNTIMES.md, "slurm") through a
// real single-node cluster: tests/slurm/cluster.sh, started by the ctest
// fixture slurm_cluster, reached through SLURM_CONF. Tagged [.slurm]:
// hidden from a bare dropq_tests run, registered by tests/CMakeLists.txt
// with the fixture. Without SLURM_CONF they fail saying so.
#include <signal.h>

#include <cstdlib>
#include <sstream>

#include "runner/slurm_runtime.h"
#include "tests/e2e/checkout.h"
#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

// A root whose jobs run as srun steps. The temporary directory is the
// shared root: the cluster's one node is this machine.
struct SlurmRoot : Root {
  explicit SlurmRoot(const std::string& slurm_extra = "", const std::string& extra = "",
                     const std::string& group_extra = "")
      : Root("slurm", "slurm:\n  shared_root: .\n" + slurm_extra + extra, group_extra) {
    const char* conf = std::getenv("SLURM_CONF");
    INFO("the Slurm tests need the test cluster: run them through ctest (-L slurm), which starts it");
    REQUIRE(conf != nullptr);
  }
  std::string Instance() const { return Query("SELECT instance_id FROM instance"); }
  // srun's --job-name of job `id`'s attempt 1.
  std::string JobName(std::int64_t id) const {
    std::string container =
        Query("SELECT container_name FROM job_runs WHERE attempt=1 AND job_id=" + std::to_string(id));
    REQUIRE(container.rfind("dropq-", 0) == 0);
    return "dropq-" + Instance() + "-" + container.substr(6);
  }
  // The states squeue lists for jobs named `name` ("" when none is queued).
  std::string Squeue(const std::string& name) {
    auto r = RunProcess({"/usr/bin/squeue", "-h", "--name", name, "-o", "%T"}, scratch, 30'000);
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
};

TEST_CASE("slurm runs each job as a step and its result comes back", "[.slurm]") {
  SlurmRoot r;
  r.Drop("team", "a.json", {{"prompt", "echo from the cluster"}});
  r.Drop("other", "b.json", {{"prompt", "blocks 2"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(r.Result("team", "a.json")["state"] == "succeeded");
  CHECK(r.Result("team", "a.json")["result"]["echo"] == "from the cluster");
  CHECK(r.Result("other", "b.json")["outputs"].size() == 3);  // two blocks and the final one
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE runtime='slurm' AND status='succeeded'") == "2");
  // Each step said when it ran on the node: its own audit event.
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='allocated' AND json_extract(detail,'$.attempt')=1") ==
        "2");
  // The test cluster has no accounting (accounting_storage/none): sacct is
  // not asked, and no run has a node or cluster state.
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE node IS NULL AND cluster_state IS NULL") == "2");
}

TEST_CASE("with slurm accounting forced on a cluster without it, the failing sacct leaves jobs succeeded",
          "[.slurm]") {
  SlurmRoot r("  accounting: on\n");
  r.Drop("team", "a.json", {{"prompt", "echo from the cluster"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(r.Result("team", "a.json")["state"] == "succeeded");
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE status='succeeded' AND node IS NULL AND cluster_state IS NULL") ==
        "1");
}

TEST_CASE("a bare slurm step runs under srun with this instance's name and comment", "[.slurm]") {
  SlurmRoot r("  inner: bare\n");
  r.Drop("team", "env.json", {{"prompt", "env SLURM_JOB_NAME; env SLURM_JOB_ID; env WORKSPACE_GROUP"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto env = r.Result("team", "env.json")["result"]["env"];
  CHECK(env["SLURM_JOB_NAME"] == r.JobName(1));
  REQUIRE(env["SLURM_JOB_ID"].is_string());
  // Slurm's own record of the job carries the instance's comment.
  std::string id = env["SLURM_JOB_ID"];
  auto show = RunProcess({"/usr/bin/scontrol", "show", "job", id}, r.scratch, 30'000);
  // The job may have left scontrol's memory already (MinJobAge); when it
  // is still there, its comment is the mark.
  if (show.exit_code == 0) CHECK(show.out.find("Comment=dropq:" + r.Instance()) != std::string::npos);
  CHECK(env["WORKSPACE_GROUP"] == (r.Var() / "groups/team").string());
}

// Bare steps run the agent on the node, which is this machine: it sees the
// release file at its host path (the test agent's `await`).
TEST_CASE("a group allowed eight keeps eight slurm steps in flight", "[.slurm]") {
  SlurmRoot r("  inner: bare\n", "", "  - {folder: wide, name: Wide, max_concurrent_per_group: 8}\n");
  std::string cfg = ReadFile(r.config);
  const std::string two = "max_concurrent: 2\n";
  const auto at = cfg.find(two);
  REQUIRE(at != std::string::npos);
  WriteFile(r.config, cfg.replace(at, two.size(), "max_concurrent: 20\n"));
  const fs::path go = r.dir / "go";
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  for (int i = 0; i < 10; ++i) {
    r.Drop("wide", "held-" + std::to_string(i) + ".json", {{"prompt", "await " + go.string()}});
  }
  // Eight steps run on the cluster (each said so: `allocated`), two wait.
  REQUIRE(r.WaitForRow("SELECT count(DISTINCT job_id) = 8 FROM job_events WHERE event='allocated'", 120'000));
  CHECK(r.Query("SELECT count(*) FROM jobs WHERE group_folder='wide' AND state='running'") == "8");
  CHECK(r.Query("SELECT count(*) FROM jobs WHERE group_folder='wide' AND state='queued'") == "2");
  auto q = RunProcess({"/usr/bin/squeue", "--me", "-h", "-t", "RUNNING", "-o", "%j"}, r.scratch, 30'000);
  REQUIRE(q.exit_code == 0);
  std::istringstream lines(q.out);
  int steps = 0;
  for (std::string line; std::getline(lines, line);) steps += line.rfind("dropq-" + r.Instance() + "-wide-", 0) == 0;
  CHECK(steps == 8);
  WriteFile(go, "");
  REQUIRE(r.WaitForRow("SELECT count(*) = 10 FROM jobs WHERE group_folder='wide' AND state='succeeded'", 120'000));
  CHECK(r.Query("SELECT count(*) FROM job_runs WHERE runtime='slurm' AND status='succeeded'") == "10");
}

TEST_CASE("a failing agent's exit code comes back through srun", "[.slurm]") {
  SlurmRoot r;
  r.Drop("team", "fails.json", {{"prompt", "exit 3"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(r.Result("team", "fails.json")["state"] == "failed");
  CHECK(r.Result("team", "fails.json")["exitCode"] == 3);
  CHECK(r.Query("SELECT exit_code FROM job_runs WHERE job_id=1") == "3");
  // The failed run's log shows stderr whole, without the wrapper's start
  // marker, which the runner cut out.
  std::string log = ReadFile(r.Query("SELECT log_file FROM job_runs WHERE job_id=1"));
  CHECK(log.find("=== Stderr ===") != std::string::npos);
  CHECK(log.find(runner::kSlurmStartMarker) == std::string::npos);
}

TEST_CASE("a slurm step that ignores SIGTERM is stopped at its timeout by scancel", "[.slurm]") {
  SlurmRoot r;
  r.Drop("team", "slow.json", {{"prompt", "ignore-term; sleep 600000"}, {"timeout", "2s"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(r.Result("team", "slow.json")["state"] == "failed");
  CHECK(r.Query("SELECT status FROM job_runs WHERE job_id=1") == "timed_out");
  // Not only srun: the step itself is gone from the cluster (scancel
  // --signal=KILL), though it ignored TERM and Slurm's --time is minutes.
  std::string name = r.JobName(1);
  CHECK(WaitUntil([&] { return r.Squeue(name).empty(); }, 60'000));
}

TEST_CASE("slurm steps a killed daemon left are cancelled before the next start serves jobs", "[.slurm]") {
  // max_interruptions 0: the interrupted job fails at recovery rather than
  // running again.
  SlurmRoot r("", "max_interruptions: 0\n");
  pid_t first = Daemon::Start(r);
  REQUIRE(r.WaitReady(first));
  r.Drop("team", "long.json", {{"prompt", "ignore-term; sleep 600000"}});
  REQUIRE(r.WaitForRow("SELECT count(*) FROM job_events WHERE event='allocated' AND job_id=1", 60'000));
  std::string name = r.JobName(1);
  ::kill(first, SIGKILL);
  WaitProcess(first, 30'000);
  // The step outlives the daemon: an orphan.
  CHECK(r.Squeue(name).find("RUNNING") != std::string::npos);

  Daemon second(r);
  REQUIRE(r.WaitReady(second.pid, 150'000));
  // Cancelled, and waited for: gone before the daemon said it was ready.
  CHECK(r.Squeue(name).empty());
  CHECK(r.Query("SELECT status FROM job_runs WHERE job_id=1") == "lost");
}

TEST_CASE("a slurm step that gets no allocation fails at the queue timeout", "[.slurm]") {
  // --begin in an hour: the job stays pending; srun withdraws it when
  // dropq stops it.
  SlurmRoot r("  queue_timeout: 2s\n  extra_args: [--begin=now+3600]\n");
  r.Drop("team", "waits.json", {{"prompt", "echo never"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto result = r.Result("team", "waits.json");
  CHECK(result["state"] == "failed");
  CHECK(result["error"].get<std::string>().find("queue timeout") != std::string::npos);
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='allocated'") == "0");
  std::string name = r.JobName(1);
  CHECK(WaitUntil([&] { return r.Squeue(name).empty(); }, 60'000));
}

TEST_CASE("dropq doctor checks that a node reads the root through one slurm step", "[.slurm]") {
  SlurmRoot r;
  auto doctor = r.Dropq({"doctor"});
  INFO(doctor.out << doctor.err);
  std::string row;
  std::istringstream lines(doctor.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("shared storage", 0) == 0) row = line;
  }
  CHECK(row.find(" ok ") != std::string::npos);
  // Its probe file is gone again.
  for (const auto& e : fs::directory_iterator(r.dir.path())) {
    CHECK(e.path().filename().string().find("probe") == std::string::npos);
  }
}

TEST_CASE("examples/slurm.yaml runs the demo jobs through the cluster", "[.slurm]") {
  REQUIRE(std::getenv("SLURM_CONF") != nullptr);
  Checkout c("slurm.yaml");
  auto run = c.Sh("./build/dropq run --once $C");
  INFO(run.out);
  REQUIRE(run.exit_code == 0);
  int succeeded = 0;
  for (const char* g : {"main", "team"}) {
    for (const auto& f : fs::directory_iterator(c.dir / "var/data/ipc" / g / "results")) {
      auto result = json::parse(ReadFile(f.path()));
      INFO(f.path());
      CHECK(result["state"] == "succeeded");
      ++succeeded;
    }
  }
  CHECK(succeeded >= 2);
}

}  // namespace
}  // namespace dropq::testing
