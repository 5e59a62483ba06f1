// /metrics text, checked by parsing it as Prometheus would (prometheus_text.h).
#include "dashboard/metrics_text.h"

#include <catch2/catch.hpp>

#include "tests/dashboard/prometheus_text.h"

namespace dropq::app {
namespace {

using testing::ParsePrometheus;

MetricsSnapshot Sample() {
  MetricsSnapshot m;
  m.groups = {{"main", "Main", true}, {"team", "Team", false}};
  m.jobs = {{"main", "succeeded", 3}, {"team", "failed", 1}, {"team", "queued", 2}};
  m.runs = {{"main", "succeeded", 3}, {"team", "failed", 1}, {"team", "timed_out", 1}, {"team", "running", 1}};
  m.durations.count = 5;
  m.durations.sum_seconds = 12.5;
  for (std::size_t i = 0; i < m.durations.cumulative.size(); ++i) {
    m.durations.cumulative[i] = DurationHistogram::kBoundsSeconds[i] < 1 ? 2 : 5;
  }
  m.ready = {{"team", 2}};
  m.live.containers_running = 1;
  m.live.ingest_rejected = 4;
  m.live.started_at = 1'800'000'000'000;
  m.live.published_at = 1'800'000'001'500;
  return m;
}

TEST_CASE("every metrics line parses and each sample belongs to a declared family", "[metrics]") {
  auto p = ParsePrometheus(RenderPrometheus(Sample()));
  CHECK(p.types.at("dropq_jobs") == "gauge");
  CHECK(p.types.at("dropq_job_runs_total") == "counter");
  CHECK(p.types.at("dropq_job_run_duration_seconds") == "histogram");
  for (const auto& [family, type] : p.types) {
    INFO(family);
    CHECK(p.help.count(family) == 1);
  }
}

TEST_CASE("jobs are reported for every group and state, zeros included", "[metrics]") {
  auto p = ParsePrometheus(RenderPrometheus(Sample()));
  CHECK(p.All("dropq_jobs").size() == 12);  // 2 groups x 6 states
  CHECK(p.Value("dropq_jobs", {{"group", "main"}, {"state", "succeeded"}}) == 3);
  CHECK(p.Value("dropq_jobs", {{"group", "team"}, {"state", "queued"}}) == 2);
  CHECK(p.Value("dropq_jobs", {{"group", "main"}, {"state", "failed"}}) == 0);
  CHECK(p.Value("dropq_jobs", {{"group", "team"}, {"state", "waiting"}}) == 0);
}

TEST_CASE("failures count failed, timed out and lost attempts but not running ones", "[metrics]") {
  auto p = ParsePrometheus(RenderPrometheus(Sample()));
  CHECK(p.Value("dropq_job_run_failures_total", {{"group", "team"}}) == 2);
  CHECK(p.Value("dropq_job_run_failures_total", {{"group", "main"}}) == 0);
  CHECK(p.Value("dropq_job_runs_total", {{"group", "team"}, {"status", "timed_out"}}) == 1);
  CHECK_FALSE(p.Value("dropq_job_runs_total", {{"group", "team"}, {"status", "running"}}).has_value());
}

TEST_CASE("the run duration histogram is cumulative and its +Inf bucket equals its count", "[metrics]") {
  auto p = ParsePrometheus(RenderPrometheus(Sample()));
  auto buckets = p.All("dropq_job_run_duration_seconds_bucket");
  REQUIRE(buckets.size() == DurationHistogram::kBoundsSeconds.size() + 1);
  double prev_le = -1, prev_count = 0;
  for (const auto& b : buckets) {
    double le = b.labels.at("le") == "+Inf" ? 1e300 : std::stod(b.labels.at("le"));
    CHECK(le > prev_le);
    CHECK(b.value >= prev_count);
    prev_le = le;
    prev_count = b.value;
  }
  CHECK(buckets.back().labels.at("le") == "+Inf");
  CHECK(buckets.back().value == p.Value("dropq_job_run_duration_seconds_count"));
  CHECK(p.Value("dropq_job_run_duration_seconds_sum") == 12.5);
  CHECK(p.Value("dropq_job_run_duration_seconds_bucket", {{"le", "0.5"}}) == 2);
}

TEST_CASE("queue depth, containers, ingest rejects and loop times come from the snapshot", "[metrics]") {
  auto p = ParsePrometheus(RenderPrometheus(Sample()));
  CHECK(p.Value("dropq_queue_depth", {{"group", "team"}}) == 2);
  CHECK(p.Value("dropq_queue_depth", {{"group", "main"}}) == 0);
  CHECK(p.Value("dropq_containers_running") == 1);
  CHECK(p.Value("dropq_ingest_rejected_total") == 4);
  CHECK(p.Value("dropq_start_time_seconds") == 1'800'000'000.0);
  CHECK(p.Value("dropq_loop_published_timestamp_seconds") == 1'800'000'001.5);
}

TEST_CASE("scheduler lag is absent before the first firing and in seconds after it", "[metrics]") {
  MetricsSnapshot m = Sample();
  CHECK_FALSE(ParsePrometheus(RenderPrometheus(m)).Value("dropq_scheduler_lag_seconds").has_value());
  m.live.scheduler_lag_ms = 1250;
  CHECK(ParsePrometheus(RenderPrometheus(m)).Value("dropq_scheduler_lag_seconds") == 1.25);
}

TEST_CASE("a rate-limited group reports its limit, its starts in the window and whether it waits", "[metrics]") {
  MetricsSnapshot m = Sample();
  m.rates = {{"team", {2, 60'000}, {2, 1'800'000'030'000}}, {"main", {10, 3'600'000}, {3, std::nullopt}}};
  auto p = ParsePrometheus(RenderPrometheus(m));
  CHECK(p.types.at("dropq_group_rate_limited") == "gauge");
  CHECK(p.Value("dropq_group_rate_limit", {{"group", "team"}}) == 2);
  CHECK(p.Value("dropq_group_rate_period_seconds", {{"group", "main"}}) == 3600);
  CHECK(p.Value("dropq_group_rate_starts_in_window", {{"group", "main"}}) == 3);
  CHECK(p.Value("dropq_group_rate_limited", {{"group", "team"}}) == 1);
  CHECK(p.Value("dropq_group_rate_limited", {{"group", "main"}}) == 0);
  CHECK(p.Value("dropq_group_rate_next_start_timestamp_seconds", {{"group", "team"}}) == 1'800'000'030.0);
  CHECK_FALSE(p.Value("dropq_group_rate_next_start_timestamp_seconds", {{"group", "main"}}).has_value());
}

TEST_CASE("without rate limits no rate series is reported", "[metrics]") {
  auto p = ParsePrometheus(RenderPrometheus(Sample()));
  CHECK(p.types.count("dropq_group_rate_limited") == 0);
}

TEST_CASE("metric label values with quotes, backslashes and newlines are escaped", "[metrics]") {
  MetricsSnapshot m;
  m.jobs = {{"we\"ird\\gr\noup", "queued", 1}};
  auto text = RenderPrometheus(m);
  CHECK_THAT(text, Catch::Contains(R"(group="we\"ird\\gr\noup")"));
  auto p = ParsePrometheus(text);
  CHECK(p.Value("dropq_jobs", {{"group", "we\"ird\\gr\noup"}, {"state", "queued"}}) == 1);
}

}  // namespace
}  // namespace dropq::app
