#pragma once
// The scenarios of `make bench` (docs/PERFORMANCE.md has the method). Each
// runs the real dropq binary against a fresh temporary root, and the
// baselines in the same invocation, and appends rows to the table.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace dropq::bench {

struct Row {
  std::string scenario;
  std::string metric;
  double median = NAN;
  double p99 = NAN;      // NAN: not a distribution (one value per repeat)
  std::string spread;    // over repeats: min–max of the per-repeat values
  std::string baseline;  // what the ratio compares against, with its figure
  double ratio = NAN;    // dropq / baseline (the reading is in `metric`)
  std::string target;
  std::string verdict;  // "met", "MISSED", or "" when there is no target
};

struct Context {
  std::filesystem::path dropq;
  std::filesystem::path agent;
  int repeats = 3;
  std::vector<Row> rows;
};

void BenchCommitLatency(Context& c);
void BenchStartLatency(Context& c);
void BenchIngestBurst(Context& c);
void BenchEndToEnd(Context& c);
void BenchManySlots(Context& c);
void BenchStartup(Context& c);
void BenchBurstMemory(Context& c);
void BenchScheduler(Context& c);
void BenchIdle(Context& c);
void BenchBigOutput(Context& c);

// "12.3" with a sensible number of digits.
std::string Fmt(double v);
std::string Spread(const std::vector<double>& per_repeat);

}  // namespace dropq::bench
