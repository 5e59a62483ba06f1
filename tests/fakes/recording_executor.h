#pragma once
// A recording AttemptExecutor (runner/runner.h) for unit tests of what
// drives attempts: it starts nothing, records every call, and lets the test
// say when an attempt's agent is gone (report through the lifecycle's
// Exited, as the Runner's done callback does).
#include <algorithm>
#include <set>
#include <vector>

#include "runner/runner.h"

namespace dropq::testing {

class RecordingExecutor final : public runner::AttemptExecutor {
 public:
  void Start(runner::Attempt attempt) override {
    running.insert(attempt.job.id);
    started.push_back(std::move(attempt));
  }
  bool Stop(JobId id) override {
    stop_requests.push_back(id);
    return running.count(id) > 0;
  }
  void StopAll() override { ++stop_all_calls; }
  std::size_t active() const override { return running.size(); }

  // The attempt's agent is gone: it no longer counts as active.
  void Gone(JobId id) { running.erase(id); }

  std::vector<runner::Attempt> started;
  std::vector<JobId> stop_requests;
  std::set<JobId> running;
  int stop_all_calls = 0;
};

}  // namespace dropq::testing
