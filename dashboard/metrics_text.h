#pragma once
// /metrics in the Prometheus text exposition format (version 0.0.4): a pure
// function from the figures read (SQLite + the loop's LiveFigures) to text,
// so the format is tested without a server. The metric names and their
// meaning are the contract in docs/DASHBOARD.md.
#include <string>
#include <utility>
#include <vector>

#include "jobs/queries.h"
#include "dashboard/live_metrics.h"

namespace dropq::app {

struct MetricsSnapshot {
  std::vector<GroupRow> groups;
  std::vector<StateCount> jobs;
  std::vector<RunCount> runs;
  DurationHistogram durations;
  std::vector<std::pair<std::string, std::int64_t>> ready;  // queue depth by group
  std::vector<GroupRate> rates;  // groups with a rate limit (docs/CONFIG.md, "Rate limits")
  LiveFigures live;
};

std::string RenderPrometheus(const MetricsSnapshot& m);

// A label value with \, " and newline escaped as the format asks.
std::string EscapeLabelValue(const std::string& v);

}  // namespace dropq::app
