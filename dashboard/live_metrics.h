#pragma once
// Figures only the daemon's loop knows (not in SQLite), handed to the
// dashboard thread. The loop publishes a whole LiveFigures after each turn
// (a uv_prepare handle in the daemon); the dashboard copies it out. The mutex
// is held only for that copy, so neither side ever waits on the other's work:
// the loop never blocks on a slow HTTP client.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/guard.h"
#include "jobs/rate_limit.h"

namespace dropq::app {

struct LiveFigures {
  std::int64_t containers_running = 0;           // attempts the runner has in flight
  std::int64_t ingest_accepted = 0;              // files that became jobs, since start
  std::int64_t ingest_duplicates = 0;            // files whose client id was already a job, since start
  std::int64_t ingest_rejected = 0;              // files moved to errors/, since start
  std::int64_t scheduler_fires = 0;              // times the task timer fired, since start
  std::optional<std::int64_t> scheduler_lag_ms;  // how late the last firing was against its slot
  TimeMs started_at = 0;                         // when the daemon started
  TimeMs published_at = 0;                       // when the loop last published (0: never)
  // The rate limit of each group that has one, as the dispatcher applies it
  // (the windows are counted from the database, as `status` does).
  std::shared_ptr<const std::vector<std::pair<std::string, RateLimit>>> rate_limits;
};

class LiveMetrics {
 public:
  void Publish(const LiveFigures& f) {
    std::lock_guard<std::mutex> lock(mu_);
    figures_ = f;
  }
  LiveFigures Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return figures_;
  }

 private:
  mutable std::mutex mu_;
  LiveFigures figures_;
};

}  // namespace dropq::app

#include <uv.h>

#include <functional>

namespace dropq::app {

// The loop side: a uv_prepare handle that collects the figures and publishes
// them each time the loop is about to sleep (redis's beforeSleep), so what it
// sees is final for that turn, close callbacks included (a finished attempt
// leaves the runner in its handle's close callback, after uv_check would have
// run). It runs only when the loop woke for real work (idle stays idle) and
// does not keep the loop alive.
//
// Lifecycle: Start() initialises the handle; Close() closes it, and the loop
// must run the close callback before this is destroyed.
class MetricsPublisher {
 public:
  MetricsPublisher(LiveMetrics& metrics, std::function<LiveFigures()> collect)
      : metrics_(metrics), collect_(std::move(collect)) {}

  void Start(uv_loop_t* loop) {
    uv_prepare_init(loop, &prepare_);
    prepare_.data = this;
    uv_prepare_start(&prepare_, [](uv_prepare_t* h) {
      auto* self = static_cast<MetricsPublisher*>(h->data);
      Guard("metrics", [&] { self->metrics_.Publish(self->collect_()); });
    });
    uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
    started_ = true;
    metrics_.Publish(collect_());
  }
  void Close() {
    if (!started_) return;
    started_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
  }

 private:
  LiveMetrics& metrics_;
  std::function<LiveFigures()> collect_;
  uv_prepare_t prepare_{};
  bool started_ = false;
};

}  // namespace dropq::app
