// Rate limits against the real binary (docs/CONFIG.md, "Rate limits"): the
// limit holds starts back, the wake timer lets the held job through when
// the window opens, a restart counts the window from the database, and a
// reload applies a changed limit. Every check reads the database.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

using nlohmann::json;

const std::string kTeam = "{folder: team, name: Team, jid: team@x}";

// Gives group team the rate `rate` in the config.
void LimitTeam(Root& r, const std::string& rate) {
  std::string cfg = ReadFile(r.config);
  auto at = cfg.find(kTeam);
  REQUIRE(at != std::string::npos);
  WriteFile(r.config, cfg.replace(at, kTeam.size(), "{folder: team, name: Team, jid: team@x, rate: " + rate + "}"));
}

std::string Count(Root& r, const std::string& state) {
  return r.Query("SELECT count(*) FROM jobs WHERE group_folder='team' AND state='" + state + "'");
}

TEST_CASE("a group limited to 2 starts a minute runs two of three jobs and holds the third queued",
          "[e2e][rate]") {
  Root r;
  LimitTeam(r, "2/min");
  for (const char* name : {"a.json", "b.json", "c.json"}) r.Drop("team", name, {{"prompt", "echo hi"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(Count(r, "succeeded") == "2");
  CHECK(Count(r, "queued") == "1");
  CHECK(r.Query("SELECT count(*) FROM job_runs") == "2");
}

TEST_CASE("a restart counts the rate window from the attempts already started", "[e2e][rate]") {
  Root r;
  LimitTeam(r, "2/min");
  for (const char* name : {"a.json", "b.json", "c.json"}) r.Drop("team", name, {{"prompt", "echo hi"}});
  REQUIRE(r.RunOnce().exit_code == 0);
  REQUIRE(Count(r, "queued") == "1");
  // A second start within the minute: the window still holds two starts.
  REQUIRE(r.RunOnce().exit_code == 0);
  CHECK(Count(r, "queued") == "1");
  CHECK(r.Query("SELECT count(*) FROM job_runs") == "2");
  auto status = r.Dropq({"status", "--json"});
  REQUIRE(status.exit_code == 0);
  json rates = json::parse(status.out)["rate_limits"];
  REQUIRE(rates.size() == 1);
  CHECK(rates[0]["group"] == "team");
  CHECK(rates[0]["limit"] == "2/min");
  CHECK(rates[0]["starts_in_window"] == 2);
  CHECK(rates[0]["limited"] == true);
  CHECK(rates[0]["next_start_at"].is_string());
}

TEST_CASE("a job held by the rate limit starts when the window opens, without a new file", "[e2e][rate]") {
  Root r;
  LimitTeam(r, "1/2s");
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  r.Drop("team", "a.json", {{"prompt", "echo a"}});
  r.Drop("team", "b.json", {{"prompt", "echo b"}});
  REQUIRE(r.WaitForRow("SELECT count(*) = 2 FROM jobs WHERE group_folder='team' AND state='succeeded'"));
  // The second start waited the whole period after the first. The stamps
  // are whole milliseconds and a start exactly 2000 ms later is on time:
  // round, since julianday's floating point makes 2000 ms read 1999.99...
  CHECK(r.Query("SELECT round((julianday(max(started_at)) - julianday(min(started_at))) * 86400000) >= 2000 "
                "FROM job_runs") == "1");
}

TEST_CASE("a reload that raises a group's rate lets its held job start", "[e2e][rate][reload]") {
  Root r;
  LimitTeam(r, "1/h");
  Daemon d(r);
  REQUIRE(r.WaitReady(d.pid));
  r.Drop("team", "a.json", {{"prompt", "echo a"}});
  r.Drop("team", "b.json", {{"prompt", "echo b"}});
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE group_folder='team' AND state='succeeded'"));
  REQUIRE(r.WaitForRow("SELECT count(*) FROM jobs WHERE group_folder='team' AND state='queued'"));
  std::string cfg = ReadFile(r.config);
  auto at = cfg.find("rate: 1/h");
  REQUIRE(at != std::string::npos);
  WriteFile(r.config, cfg.replace(at, 9, "rate: 5/h"));
  REQUIRE(::kill(d.pid, SIGHUP) == 0);
  CHECK(r.WaitForRow("SELECT count(*) = 2 FROM jobs WHERE group_folder='team' AND state='succeeded'"));
  CHECK(r.Query("SELECT json_extract(detail, '$.changed') FROM job_events WHERE event='reloaded'") == "[\"groups\"]");
}

}  // namespace
}  // namespace dropq::testing
