#pragma once
// run --once's progress line on a terminal:
//   "3/10 done · 2 running · 1 failed · 12.4s"
// The daemon reports through DaemonObserver (on its loop thread); a small
// thread redraws the line once a second so the elapsed time moves while a
// long job runs, and the line is redrawn under the log lines
// (SetStatusLine). Only used when stderr is a terminal.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/daemon.h"
#include "base/clock.h"

namespace dropq::app {

struct ProgressCounts {
  std::int64_t total = 0;  // jobs queued at start or ingested during the run
  std::int64_t done = 0;   // reached a final state
  std::int64_t running = 0;
  std::int64_t failed = 0;  // failed or cancelled
};

// The line for `c` after `elapsed_ms`. Pure, for tests.
std::string FormatProgress(const ProgressCounts& c, std::int64_t elapsed_ms);

class ProgressLine final : public DaemonObserver {
 public:
  explicit ProgressLine(const Clock& clock);
  ~ProgressLine() override;  // stops the redraw thread and clears the line
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void JobsQueued(std::size_t n) override;
  void JobStarted(JobId id) override;
  void AttemptEnded(JobId id, JobState state, bool final) override;

  ProgressCounts counts() const;

 private:
  void Draw();

  const Clock& clock_;
  TimeMs start_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ProgressCounts c_;
  bool stop_ = false;
  std::thread ticker_;
};

}  // namespace dropq::app
