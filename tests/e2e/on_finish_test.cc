// Completion hooks end to end (docs/CONFIG.md, "Completion hooks"): the real
// daemon, a hook command on the host, and a restart between its tries.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

// A hook that fails its first two calls and keeps its stdin from the third
// on: each call appends a line to `calls`.
fs::path FlakyHook(const Root& r) {
  fs::path script = r.dir / "flaky-hook";
  WriteFile(script,
            "#!/bin/sh\n"
            "echo call >> '" +
                (r.dir / "calls").string() +
                "'\n"
                "n=$(wc -l < '" +
                (r.dir / "calls").string() +
                "')\n"
                "if [ \"$n\" -le 2 ]; then echo \"not yet ($n)\" >&2; exit 1; fi\n"
                "cat > '" +
                (r.dir / "payload").string() + "'\n");
  REQUIRE(::chmod(script.c_str(), 0755) == 0);
  return script;
}

TEST_CASE("a hook that fails twice is delivered after a restart, each try audited", "[e2e][on_finish]") {
  Root r;
  const fs::path hook = FlakyHook(r);
  WriteFile(r.config, ReadFile(r.config) + "on_finish: {command: ['" + hook.string() + "'], when: always}\n");
  r.Drop("team", "a.json", {{"prompt", "echo hi"}});

  // The first run: the job succeeds, its hook fails twice (1 s apart), and
  // dropq is killed before the third try (due 2 s later).
  pid_t pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
  const bool two_failures =
      r.WaitForRow("SELECT count(*) >= 2 FROM job_events WHERE event='notify_failed' AND job_id=1");
  ::kill(pid, SIGKILL);
  WaitProcess(pid, 30'000);
  REQUIRE(two_failures);
  CHECK(r.Query("SELECT attempts FROM notifications WHERE job_id=1") == "2");
  CHECK(r.Query("SELECT last_error FROM notifications WHERE job_id=1") == "on_finish exited with code 1: not yet (2)");
  CHECK(r.Query("SELECT count(*) FROM job_events WHERE event='notified'") == "0");

  // The second run tries the pending delivery again when it is due.
  {
    Daemon d(r);
    REQUIRE(r.WaitForRow("SELECT count(*) FROM job_events WHERE event='notified' AND job_id=1"));
  }
  CHECK(r.Query("SELECT count(*) FROM notifications") == "0");
  CHECK(r.Query("SELECT group_concat(event, ',') FROM (SELECT event FROM job_events WHERE job_id=1 AND event "
                "LIKE 'notif%' ORDER BY id)") == "notify_failed,notify_failed,notified");
  CHECK(r.Query("SELECT json_extract(detail, '$.attempt') FROM job_events WHERE event='notified'") == "3");
  CHECK(ReadFile(r.dir / "calls") == "call\ncall\ncall\n");
  // The payload is the job's result file, byte for byte.
  CHECK(ReadFile(r.dir / "payload") == ReadFile(r.Results("team") / "a.json"));
}

TEST_CASE("with when failed a job that succeeds runs no hook", "[e2e][on_finish]") {
  Root r;
  const fs::path hook = FlakyHook(r);
  WriteFile(r.config, ReadFile(r.config) + "on_finish: {command: ['" + hook.string() + "']}\n");
  r.Drop("team", "ok.json", {{"prompt", "echo hi"}});
  r.Drop("team", "bad.json", {{"prompt", "fail broken"}});
  auto run = r.RunOnce();
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  // Only the failed job's delivery: tried once before --once stopped, the
  // rest left for the next start.
  CHECK(r.Query("SELECT group_concat(DISTINCT job_id) FROM job_events WHERE event LIKE 'notif%'") ==
        r.Query("SELECT id FROM jobs WHERE source_name='bad.json'"));
  CHECK(r.Query("SELECT count(*) FROM notifications") == "1");
}

TEST_CASE("cancelling a queued job delivers its cancelled result with when always", "[e2e][on_finish]") {
  Root r;
  fs::path hook = r.dir / "keep-hook";
  WriteFile(hook, "#!/bin/sh\ncat > '" + (r.dir / "payload").string() + "'\n");
  REQUIRE(::chmod(hook.c_str(), 0755) == 0);
  WriteFile(r.config, ReadFile(r.config) + "on_finish: {command: ['" + hook.string() + "'], when: always}\n");
  r.Drop("team", "later.json", {{"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  auto out = r.Dropq({"cancel", "1"});
  INFO(out.out << out.err);
  REQUIRE(out.exit_code == 0);
  REQUIRE(r.WaitForRow("SELECT count(*) FROM job_events WHERE event='notified' AND job_id=1"));
  CHECK(json::parse(ReadFile(r.dir / "payload"))["state"] == "cancelled");
  CHECK(ReadFile(r.dir / "payload") == ReadFile(r.Results("team") / "later.json"));
}

}  // namespace
}  // namespace dropq::testing
