// The Runner (runner/runner.h) on a real libuv loop with real processes,
// driven through a recording runtime and a manual clock: what it asks the
// runtime for, what it writes to the agent, and what one attempt reports.
#include "runner/runner.h"

#include <signal.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include <optional>

#include "tests/fakes/recording_runtime.h"
#include "tests/fakes/temp_dir.h"

namespace dropq::runner {
namespace {

using testing::RecordingRuntime;
using testing::TempDir;

struct RunnerFixture {
  TempDir dir;
  Layout layout{dir / "root"};
  RecordingRuntime runtime;
  ManualClock clock;
  uv_loop_t loop{};
  std::vector<RunOutcome> outcomes;
  std::vector<AgentOutput> blocks;
  int sandbox_starts = 0;  // the runtime's start marker was seen
  std::unique_ptr<Runner> runner;

  explicit RunnerFixture(std::vector<std::string> agent, std::int64_t max_output = 1 << 20) {
    // As the daemon does (daemon.cc, Setup): an agent that exits without
    // reading its stdin makes the input's write fail with EPIPE, which must
    // not kill the process that runs it.
    ::signal(SIGPIPE, SIG_IGN);
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("team").ok());
    uv_loop_init(&loop);
    RunnerOptions o;
    o.agent = std::move(agent);
    o.max_output = max_output;
    o.kill_grace_ms = 200;
    runner = std::make_unique<Runner>(
        &loop, layout, runtime, o, clock, [this](const Job&, RunOutcome out) { outcomes.push_back(std::move(out)); },
        [this](const Job&, std::int64_t, const AgentOutput& out) { blocks.push_back(out); },
        [this](const Job&, std::int64_t, std::int64_t) { ++sandbox_starts; });
  }
  ~RunnerFixture() {
    runner.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  static Attempt MakeAttempt(std::int64_t timeout_ms = 30'000) {
    Attempt a;
    a.job.id = 7;
    a.job.group = "team";
    a.job.prompt = "say hi";
    a.job.attempts = 1;
    a.run.job_id = 7;
    a.run.attempt = 1;
    a.run.container_name = "dropq-team-1";
    a.timeout_ms = timeout_ms;
    a.chat_jid = "team@x";
    return a;
  }
  // Runs one attempt to its report.
  const RunOutcome& Run(Attempt a = MakeAttempt()) {
    runner->Start(std::move(a));
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(outcomes.size() == 1);
    return outcomes[0];
  }
};

std::vector<std::string> Sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

const std::string kBlock =
    "printf '%s\\n' '---NANOCLAW_OUTPUT_START---' '{\"status\":\"success\",\"result\":\"hi\"}' "
    "'---NANOCLAW_OUTPUT_END---'";

}  // namespace

TEST_CASE("the runner builds the sandbox through the runtime with the group's mounts and the agent") {
  RunnerFixture f(Sh(kBlock));
  f.Run();
  REQUIRE(f.runtime.built.size() == 1);
  const SandboxSpec& spec = f.runtime.built[0];
  CHECK(spec.container_name == "dropq-team-1");
  CHECK(spec.agent == Sh(kBlock));
  bool group_mount = false;
  for (const auto& m : spec.mounts) group_mount = group_mount || m.container == "/workspace/group";
  CHECK(group_mount);
}

TEST_CASE("an agent's output block becomes the attempt's result and an output report") {
  RunnerFixture f(Sh(kBlock));
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kSucceeded);
  REQUIRE(o.result);
  CHECK(*o.result == "\"hi\"");
  REQUIRE(f.blocks.size() == 1);
  CHECK(f.blocks[0].status == "success");
}

TEST_CASE("the agent reads the container input on its stdin") {
  // The agent echoes its input back as the result.
  RunnerFixture f(
      Sh("in=$(cat); printf '%s\\n' '---NANOCLAW_OUTPUT_START---'; "
         "printf '{\"status\":\"success\",\"result\":%s}\\n' \"$in\"; "
         "printf '%s\\n' '---NANOCLAW_OUTPUT_END---'"));
  const RunOutcome& o = f.Run();
  REQUIRE(o.result);
  CHECK_THAT(*o.result, Catch::Contains("\"prompt\":\"say hi\""));
  CHECK_THAT(*o.result, Catch::Contains("\"groupFolder\":\"team\""));
  CHECK_THAT(*o.result, Catch::Contains("\"chatJid\":\"team@x\""));
}

TEST_CASE("an agent that exits non-zero fails the attempt naming the exit code") {
  RunnerFixture f(Sh("echo oops >&2; exit 3"));
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kFailed);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::StartsWith("Container exited with code 3"));
  CHECK_THAT(*o.error, Catch::Contains("oops"));
}

TEST_CASE("an agent that cannot be started still reports once, failed with the reason") {
  RunnerFixture f({"/nonexistent/agent"});
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kFailed);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("/nonexistent/agent"));
}

TEST_CASE("at its timeout an agent is stopped through the runtime's stop command") {
  RunnerFixture f(Sh("sleep 30"));
  f.runtime.stop_argv = {"/bin/true"};
  const RunOutcome& o = f.Run(RunnerFixture::MakeAttempt(/*timeout_ms=*/50));
  CHECK(f.runtime.stops == std::vector<std::string>{"dropq-team-1"});
  CHECK(o.job_state == JobState::kFailed);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("timed out"));
}

TEST_CASE("stopping a running attempt ends it and it still reports once") {
  RunnerFixture f(Sh("sleep 30"));
  f.runner->Start(RunnerFixture::MakeAttempt());
  CHECK(f.runner->active() == 1);
  CHECK(f.runner->Stop(7));
  CHECK_FALSE(f.runner->Stop(8));
  uv_run(&f.loop, UV_RUN_DEFAULT);
  REQUIRE(f.outcomes.size() == 1);
  CHECK(f.outcomes[0].job_state == JobState::kFailed);
  CHECK(f.runner->active() == 0);
}

TEST_CASE("an attempt's times come from the injected clock") {
  RunnerFixture f(Sh(kBlock));
  const RunOutcome& o = f.Run();
  REQUIRE(o.run.finished_at);
  CHECK(*o.run.finished_at == f.clock.NowMs());
}


TEST_CASE("a runtime's start marker is cut from stderr even when it arrives in pieces") {
  // As srun: its own message, then the wrapper's marker (split across two
  // writes), then the agent's stderr.
  RunnerFixture f(Sh("printf 'srun: queued\\nSTEP-' >&2; sleep 0.2; printf 'STARTED\\nagent says\\n' >&2; exit 2"));
  f.runtime.start_marker = "STEP-STARTED";
  const RunOutcome& o = f.Run();
  CHECK(f.sandbox_starts == 1);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("srun: queued"));
  CHECK_THAT(*o.error, Catch::Contains("agent says"));
  CHECK_THAT(*o.error, !Catch::Contains("STEP-STARTED"));
}

TEST_CASE("until its start marker an attempt is bounded by the start timeout, not its own") {
  RunnerFixture f(Sh("sleep 30"));
  f.runtime.start_marker = "STEP-STARTED";
  f.runtime.start_timeout_ms = 50;
  f.runtime.stop_argv = {"/bin/true"};
  const RunOutcome& o = f.Run(RunnerFixture::MakeAttempt(/*timeout_ms=*/30'000));
  CHECK(f.sandbox_starts == 0);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("queue timeout"));
  // Stopped by SIGTERM to the client, which withdraws its request, not by
  // the runtime's stop command (there is no sandbox yet).
  CHECK(f.runtime.stops.empty());
}

TEST_CASE("after its start marker an attempt's own timeout runs") {
  RunnerFixture f(Sh("printf 'STEP-STARTED\\n' >&2; sleep 30"));
  f.runtime.start_marker = "STEP-STARTED";
  f.runtime.start_timeout_ms = 30'000;
  f.runtime.stop_argv = {"/bin/true"};
  const RunOutcome& o = f.Run(RunnerFixture::MakeAttempt(/*timeout_ms=*/100));
  CHECK(f.sandbox_starts == 1);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("timed out"));
  CHECK(f.runtime.stops == std::vector<std::string>{"dropq-team-1"});
}

}  // namespace dropq::runner

// Runtimes whose stream can lose output (kubernetes) name a collect command
// (runtime.h, CollectArgv): its stdout, not the stream, is what is parsed.
namespace dropq::runner {
namespace {

const std::string kOtherBlock =
    "printf '%s\\n' '---NANOCLAW_OUTPUT_START---' '{\"status\":\"success\",\"result\":\"collected\"}' "
    "'---NANOCLAW_OUTPUT_END---'";

}  // namespace

TEST_CASE("with a collect command the attempt's output is what that command prints, not the stream") {
  RunnerFixture f(Sh("echo 'lost before attach'"));
  f.runtime.collect_argv = Sh(kOtherBlock);
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kSucceeded);
  REQUIRE(o.result);
  CHECK(*o.result == "\"collected\"");
  CHECK(f.runtime.collects == std::vector<std::string>{"dropq-team-1"});
}

TEST_CASE("with a collect command a result in the stream alone is not taken") {
  RunnerFixture f(Sh(kBlock));
  f.runtime.collect_argv = Sh("echo 'no block here'");
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kFailed);
  CHECK_FALSE(o.result);
}

TEST_CASE("a collect command that fails fails the attempt with its complaint") {
  RunnerFixture f(Sh(kBlock));
  f.runtime.collect_argv = Sh("echo 'pods \"dropq-team-1\" not found' >&2; exit 1");
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kFailed);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("output not collected") && Catch::Contains("not found") &&
                           Catch::Contains("exited with code 1"));
}

TEST_CASE("the clean-up command runs once the collect command has ended") {
  RunnerFixture f(Sh("exit 0"));
  const auto marker = f.dir / "collected";
  const auto cleaned = f.dir / "cleaned";
  f.runtime.collect_argv = Sh(kOtherBlock + "; touch '" + marker.string() + "'");
  f.runtime.cleanup_argv = Sh("test -e '" + marker.string() + "' && touch '" + cleaned.string() + "'");
  f.Run();
  CHECK(std::filesystem::exists(cleaned));
}

TEST_CASE("a sandbox the runtime cannot build fails the attempt with its reason, and nothing runs") {
  RunnerFixture f(Sh("touch should-not-exist"));
  f.runtime.build_error = "mount /x is on none of the configured volumes";
  f.runtime.collect_argv = Sh(kOtherBlock);
  const RunOutcome& o = f.Run();
  CHECK(o.job_state == JobState::kFailed);
  REQUIRE(o.error);
  CHECK_THAT(*o.error, Catch::Contains("none of the configured volumes"));
  CHECK(f.runtime.collects.empty());
}

}  // namespace dropq::runner
