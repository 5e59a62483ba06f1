// The dashboard and /metrics of a real daemon: real bwrap jobs, a real SQLite
// file, HTTP over loopback (cpp-httplib's client). The browser test in
// tests/browser/ drives the page itself in Chromium.
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <regex>
#include <thread>

#include "tests/dashboard/prometheus_text.h"
#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

using nlohmann::json;

// A daemon with dashboard.listen 127.0.0.1:0; the port it picked is read
// from its `ready` event.
struct DashboardDaemon {
  Root r;
  pid_t pid = -1;
  int port = 0;

  explicit DashboardDaemon(const std::string& extra = "")
      : r("bwrap", "shutdown_grace: 0\ndashboard:\n  listen: 127.0.0.1:0\n" + extra) {
    pid = StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.scratch);
    // The daemon's `ready` event names where its dashboard listens.
    bool up = r.WaitReady(pid);
    if (up) port = r.DashboardPort(pid, "http");
    up = up && port > 0;
    INFO(ReadFile(r.scratch / "stderr"));
    REQUIRE(up);
  }
  ~DashboardDaemon() {
    ::kill(pid, SIGTERM);
    WaitProcess(pid, 30'000);
  }
  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    return c.Get(path.c_str(), headers);
  }
  json GetJson(const std::string& path) {
    auto res = Get(path);
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    return json::parse(res->body);
  }
  PromText Metrics() {
    auto res = Get("/metrics");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK_THAT(res->get_header_value("Content-Type"), Catch::StartsWith("text/plain; version=0.0.4"));
    return ParsePrometheus(res->body);
  }
  bool AllFinished(int n) {
    return r.Query("SELECT count(*) FROM jobs WHERE state IN ('succeeded','failed')") == std::to_string(n);
  }
};

TEST_CASE("the daemon's /metrics reports the jobs it ran, read as Prometheus text", "[e2e][dashboard]") {
  DashboardDaemon d;
  d.r.Drop("team", "a.json", {{"prompt", "echo one"}});
  d.r.Drop("team", "b.json", {{"prompt", "echo two"}});
  d.r.Drop("team", "c.json", {{"prompt", "fail on purpose"}});
  d.r.Drop("main", "m.json", {{"prompt", "echo main"}});
  WriteFile(d.r.Tasks("team") / "bad.json", "{not json");
  REQUIRE(WaitUntil([&] { return d.AllFinished(4); }, 60'000));
  // The loop publishes its own figures after the turn that committed.
  REQUIRE(WaitUntil([&] { return d.Metrics().Value("dropq_ingest_rejected_total") == 1; }, 10'000));
  auto p = d.Metrics();
  CHECK(p.Value("dropq_jobs", {{"group", "team"}, {"state", "succeeded"}}) == 2);
  CHECK(p.Value("dropq_jobs", {{"group", "team"}, {"state", "failed"}}) == 1);
  CHECK(p.Value("dropq_jobs", {{"group", "main"}, {"state", "succeeded"}}) == 1);
  CHECK(p.Value("dropq_jobs", {{"group", "other"}, {"state", "queued"}}) == 0);
  CHECK(p.Value("dropq_job_runs_total", {{"group", "team"}, {"status", "succeeded"}}) == 2);
  CHECK(p.Value("dropq_job_run_failures_total", {{"group", "team"}}) == 1);
  CHECK(p.Value("dropq_job_run_duration_seconds_count") == 4);
  CHECK(p.Value("dropq_job_run_duration_seconds_bucket", {{"le", "+Inf"}}) == 4);
  CHECK(p.Value("dropq_queue_depth", {{"group", "team"}}) == 0);
  CHECK(p.Value("dropq_containers_running") == 0);
  CHECK(p.Value("dropq_ingest_accepted_total") == 4);
}

TEST_CASE("/metrics counts a job that is running now as a running container", "[e2e][dashboard]") {
  DashboardDaemon d;
  d.r.Drop("team", "slow.json", {{"prompt", "sleep 60000"}});
  REQUIRE(WaitUntil([&] { return d.Metrics().Value("dropq_containers_running") == 1; }, 30'000));
  auto p = d.Metrics();
  CHECK(p.Value("dropq_jobs", {{"group", "team"}, {"state", "running"}}) == 1);
  auto o = d.GetJson("/api/overview");
  REQUIRE(o["running"].size() == 1);
  CHECK(o["running"][0]["prompt"] == "sleep 60000");
  CHECK(o["running"][0]["elapsed_ms"].get<std::int64_t>() >= 0);
}

TEST_CASE("the dashboard API gives a job's events, output and run log", "[e2e][dashboard]") {
  DashboardDaemon d;
  d.r.Drop("team", "hello.json", {{"prompt", "echo hello there"}});
  REQUIRE(WaitUntil([&] { return d.AllFinished(1); }, 60'000));
  std::string id = d.r.Query("SELECT id FROM jobs");
  auto j = d.GetJson("/api/jobs/" + id);
  CHECK(j["state"] == "succeeded");
  CHECK(j["group"] == "team");
  CHECK(j["result"]["echo"] == "hello there");
  std::vector<std::string> events;
  for (const auto& e : j["events"]) events.push_back(e["event"]);
  CHECK(events == std::vector<std::string>{"received", "started", "output", "succeeded"});
  REQUIRE(j["runs"].size() == 1);
  CHECK(j["runs"][0]["status"] == "succeeded");
  REQUIRE(j["log"].is_string());
  CHECK_THAT(j["log"].get<std::string>(), Catch::Contains("hello there"));
  auto list = d.GetJson("/api/jobs?state=succeeded&group=team");
  REQUIRE(list["jobs"].size() == 1);
  CHECK(list["jobs"][0]["id"].dump() == id);
  CHECK(d.GetJson("/api/jobs?state=failed")["jobs"].empty());
}

TEST_CASE("the dashboard shows what a waiting job waits for and what waits for it", "[e2e][dashboard][workflows]") {
  DashboardDaemon d;
  d.r.Drop("team", "later.json", {{"id", "later"}, {"prompt", "echo later"}, {"run_at", "2999-01-01T00:00:00Z"}});
  REQUIRE(d.r.WaitForRow("SELECT count(*) FROM jobs"));
  d.r.Drop("team", "then.json", {{"after", "later"}, {"prompt", "echo then"}, {"unique_key", "then"}});
  REQUIRE(d.r.WaitForRow("SELECT count(*) FROM jobs WHERE state='waiting'"));
  const std::string later = d.r.Query("SELECT id FROM jobs WHERE source_name='later.json'");
  const std::string then = d.r.Query("SELECT id FROM jobs WHERE source_name='then.json'");
  auto j = d.GetJson("/api/jobs/" + then);
  CHECK(j["state"] == "waiting");
  CHECK(j["after_policy"] == "succeeded");
  CHECK(j["unique_key"] == "then");
  REQUIRE(j["after"].size() == 1);
  CHECK(j["after"][0]["id"].dump() == later);
  CHECK(j["after"][0]["client_id"] == "later");
  CHECK(j["after"][0]["state"] == "queued");
  auto k = d.GetJson("/api/jobs/" + later);
  REQUIRE(k["waited_by"].size() == 1);
  CHECK(k["waited_by"][0]["id"].dump() == then);
  CHECK(d.GetJson("/api/jobs?state=waiting")["jobs"].size() == 1);
  CHECK(d.Metrics().Value("dropq_jobs", {{"group", "team"}, {"state", "waiting"}}) == std::optional<double>(1));
}

TEST_CASE("the dashboard gives a task's next run in the task's own zone, as dropq tasks shows it", "[e2e][dashboard]") {
  DashboardDaemon d("schedules:\n  - {id: paris, group: main, cron: \"0 9 * * *\", tz: Europe/Paris, prompt: echo}\n");
  json tasks = d.GetJson("/api/tasks");
  REQUIRE(tasks["tasks"].size() == 1);
  const json& t = tasks["tasks"][0];
  INFO(t.dump());
  CHECK(
      std::regex_match(t["next_run_local"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\d 09:00:00 Europe/Paris)")));
  // The same text `dropq tasks` prints in its NEXT RUN column.
  auto cli = d.r.Dropq({"tasks"});
  CHECK_THAT(cli.out, Catch::Contains(t["next_run_local"].get<std::string>()));
}

TEST_CASE("the dashboard answers an unknown job with 404 and a bad filter with 400 and the reason",
          "[e2e][dashboard]") {
  DashboardDaemon d;
  auto missing = d.Get("/api/jobs/999");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  auto bad = d.Get("/api/jobs?state=exploded");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK_THAT(json::parse(bad->body)["error"].get<std::string>(), Catch::Contains("state must be"));
  auto limit = d.Get("/api/jobs?limit=0");
  REQUIRE(limit);
  CHECK(limit->status == 400);
}

TEST_CASE("the dashboard refuses a Host header that names another machine", "[e2e][dashboard][security]") {
  DashboardDaemon d;
  auto evil = d.Get("/api/overview", {{"Host", "attacker.example:8080"}});
  REQUIRE(evil);
  CHECK(evil->status == 403);
  auto local = d.Get("/api/overview", {{"Host", "localhost:" + std::to_string(d.port)}});
  REQUIRE(local);
  CHECK(local->status == 200);
}

TEST_CASE("the dashboard page loads nothing from other hosts and forbids inline script", "[e2e][dashboard][security]") {
  DashboardDaemon d;
  for (const char* path : {"/", "/dashboard.js", "/dashboard.css"}) {
    INFO(path);
    auto res = d.Get(path);
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK_THAT(res->get_header_value("Content-Security-Policy"), Catch::Contains("script-src 'self'"));
    // What the page, script or style could load from elsewhere (the browser
    // test also watches every request the page makes).
    CHECK_THAT(res->body, !Catch::Contains("src=\"http") && !Catch::Contains("href=\"http") &&
                              !Catch::Contains("fetch('http") && !Catch::Contains("url(") &&
                              !Catch::Contains("import "));
  }
}

TEST_CASE("a client that holds connections open does not stall the daemon's jobs", "[e2e][dashboard]") {
  DashboardDaemon d;
  // More idle connections than the dashboard has workers, each sending half
  // a request and then nothing.
  std::vector<std::thread> stuck;
  for (int i = 0; i < 8; ++i) {
    stuck.emplace_back([port = d.port] {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const char half[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        (void)::write(fd, half, sizeof half - 1);
        std::this_thread::sleep_for(std::chrono::seconds(3));
      }
      ::close(fd);
    });
  }
  d.r.Drop("team", "go.json", {{"prompt", "echo still running"}});
  CHECK(WaitUntil([&] { return d.AllFinished(1); }, 60'000));
  for (auto& t : stuck) t.join();
  CHECK(d.r.Result("team", "go.json")["state"] == "succeeded");
}

}  // namespace
}  // namespace dropq::testing
