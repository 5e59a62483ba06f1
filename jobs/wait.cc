#include "jobs/wait.h"

#include "base/clock.h"
#include "base/guard.h"

#include <uv.h>

#include <algorithm>
#include <memory>

namespace dropq {
namespace {

constexpr std::uint64_t kFirstRecheckMs = 100;
constexpr std::uint64_t kMaxRecheckMs = 2000;

struct Waiter {
  uv_loop_t loop;
  uv_timer_t timeout;
  uv_timer_t recheck;
  std::vector<std::unique_ptr<uv_fs_event_t>> watches;
  const std::function<bool()>* ready = nullptr;
  bool done = false;
  bool running = false;  // inside the waiting uv_run
  std::uint64_t backoff = kFirstRecheckMs;

  void Check() {
    if (done) return;
    if ((*ready)()) {
      done = true;
      // Only a running loop may be stopped: a stop left pending makes the
      // uv_run that closes the handles return at once, and the loop then
      // cannot be closed (LeakSanitizer saw it when the answer arrived
      // between the first look and arming the watches).
      if (running) uv_stop(&loop);
    }
  }
};

}  // namespace

bool WaitUntilReady(const std::vector<std::filesystem::path>& dirs, const std::function<bool()>& ready,
                    std::int64_t timeout_ms) {
  if (ready()) return true;
  Waiter w;
  w.ready = &ready;
  uv_loop_init(&w.loop);
  w.loop.data = &w;
  for (const auto& d : dirs) {
    auto h = std::make_unique<uv_fs_event_t>();
    uv_fs_event_init(&w.loop, h.get());
    int rc = uv_fs_event_start(
        h.get(),
        [](uv_fs_event_t* e, const char*, int, int) {
          Guard("waiting for a file", [&] { static_cast<Waiter*>(e->loop->data)->Check(); });
        },
        d.c_str(), 0);
    // A directory that does not exist yet is covered by the recheck timer.
    (void)rc;
    w.watches.push_back(std::move(h));
  }
  // The watches are armed: check once more so a change between the first
  // check and arming them is not missed.
  w.Check();
  uv_timer_init(&w.loop, &w.recheck);
  uv_timer_init(&w.loop, &w.timeout);
  if (!w.done) {
    uv_timer_start(
        &w.recheck,
        [](uv_timer_t* t) {
          auto* self = static_cast<Waiter*>(t->loop->data);
          Guard("waiting for a file", [&] { self->Check(); });
          self->backoff = std::min(self->backoff * 2, kMaxRecheckMs);
          uv_timer_start(t, t->timer_cb, self->backoff, 0);
        },
        w.backoff, 0);
    if (timeout_ms > 0) {
      uv_timer_start(
          &w.timeout, [](uv_timer_t* t) { uv_stop(t->loop); }, static_cast<std::uint64_t>(timeout_ms), 0);
    }
    w.running = true;
    uv_run(&w.loop, UV_RUN_DEFAULT);
    w.running = false;
  }
  for (auto& h : w.watches) uv_close(reinterpret_cast<uv_handle_t*>(h.get()), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&w.recheck), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&w.timeout), nullptr);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  uv_loop_close(&w.loop);
  return w.done;
}

bool WaitForStore(const std::filesystem::path& db_path, const std::function<bool(Store* store)>& ready,
                  std::int64_t timeout_ms, const std::vector<std::filesystem::path>& also) {
  SystemClock clock;
  std::vector<std::filesystem::path> dirs{db_path.parent_path()};
  dirs.insert(dirs.end(), also.begin(), also.end());
  return WaitUntilReady(
      dirs,
      [&] {
        std::error_code ec;
        if (!std::filesystem::exists(db_path, ec)) return ready(nullptr);
        // A fresh connection for each look: a Store's cached statements may keep
        // a read transaction open, and with it a snapshot that never sees the
        // daemon's later commits.
        auto store = Store::OpenReadOnly(db_path.string(), clock);
        return ready(store.ok() ? store->get() : nullptr);
      },
      timeout_ms);
}

}  // namespace dropq
