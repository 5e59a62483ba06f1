#include "cli/progress.h"

#include <chrono>

#include "cli/cli_format.h"
#include "config/logging.h"

namespace dropq::app {

std::string FormatProgress(const ProgressCounts& c, std::int64_t elapsed_ms) {
  return std::to_string(c.done) + "/" + std::to_string(c.total) + " done, " + std::to_string(c.running) + " running, " +
         std::to_string(c.failed) + " failed, " + HumanDuration(elapsed_ms);
}

ProgressLine::ProgressLine(const Clock& clock) : clock_(clock), start_(clock.NowMs()) {
  ticker_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (stop_) break;
      std::string line = FormatProgress(c_, clock_.NowMs() - start_);
      lock.unlock();
      SetStatusLine(line);
      lock.lock();
    }
  });
}

ProgressLine::~ProgressLine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  ticker_.join();
  // Leave the final figures on screen, then a newline so the shell prompt
  // starts clean.
  SetStatusLine(FormatProgress(counts(), clock_.NowMs() - start_) + "\n");
  SetStatusLine("");
}

void ProgressLine::JobsQueued(std::size_t n) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    c_.total += static_cast<std::int64_t>(n);
  }
  Draw();
}

void ProgressLine::JobStarted(JobId) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++c_.running;
  }
  Draw();
}

void ProgressLine::AttemptEnded(JobId, JobState state, bool final) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (c_.running > 0) --c_.running;
    if (final) {
      ++c_.done;
      if (state != JobState::kSucceeded) ++c_.failed;
    }
  }
  Draw();
}

ProgressCounts ProgressLine::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return c_;
}

void ProgressLine::Draw() { SetStatusLine(FormatProgress(counts(), clock_.NowMs() - start_)); }

}  // namespace dropq::app
