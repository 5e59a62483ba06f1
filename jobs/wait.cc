#include "jobs/wait.h"

#include "base/clock.h"
#include "base/guard.h"

#include <uv.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

namespace dropq {
namespace {

constexpr std::uint64_t kFirstRecheckMs = 100;
constexpr std::uint64_t kMaxRecheckMs = 2000;

struct Waiter {
  uv_loop_t loop;
  uv_timer_t timeout;
  uv_timer_t recheck;
  std::vector<std::unique_ptr<uv_fs_event_t>> watches;
  // Asked with true when a watched folder changed, false from the timers.
  const std::function<bool(bool)>* ready = nullptr;
  bool done = false;
  bool running = false;  // inside the waiting uv_run
  std::uint64_t backoff = kFirstRecheckMs;

  void Check(bool from_event) {
    if (done) return;
    if ((*ready)(from_event)) {
      done = true;
      // Only a running loop may be stopped: a stop left pending makes the
      // uv_run that closes the handles return at once, and the loop then
      // cannot be closed (LeakSanitizer saw it when the answer arrived
      // between the first look and arming the watches).
      if (running) uv_stop(&loop);
    }
  }
};

bool WaitUntil(const std::vector<std::filesystem::path>& dirs, const std::function<bool(bool)>& ready,
               std::int64_t timeout_ms) {
  if (ready(false)) return true;
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
          Guard("waiting for a file", [&] { static_cast<Waiter*>(e->loop->data)->Check(true); });
        },
        d.c_str(), 0);
    // A directory that does not exist yet is covered by the recheck timer.
    (void)rc;
    w.watches.push_back(std::move(h));
  }
  // The watches are armed: check once more so a change between the first
  // check and arming them is not missed.
  w.Check(false);
  uv_timer_init(&w.loop, &w.recheck);
  uv_timer_init(&w.loop, &w.timeout);
  if (!w.done) {
    uv_timer_start(
        &w.recheck,
        [](uv_timer_t* t) {
          auto* self = static_cast<Waiter*>(t->loop->data);
          Guard("waiting for a file", [&] { self->Check(false); });
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

// What a commit or a new file changes: each path's size and mtime.
// Opening a read-only connection changes neither (as root, SQLite fchown()s
// the -wal and -shm files at each open: an attribute event that a look
// without this test would answer by opening again, for ever).
using Signature = std::vector<std::pair<std::uintmax_t, std::filesystem::file_time_type>>;
Signature Sign(const std::vector<std::filesystem::path>& paths) {
  Signature sig;
  for (const auto& p : paths) {
    std::error_code ec;
    auto size = std::filesystem::is_regular_file(p, ec) ? std::filesystem::file_size(p, ec) : 0;
    auto mtime = std::filesystem::last_write_time(p, ec);
    sig.emplace_back(ec ? 0 : size, ec ? std::filesystem::file_time_type{} : mtime);
  }
  return sig;
}

}  // namespace

bool WaitUntilReady(const std::vector<std::filesystem::path>& dirs, const std::function<bool()>& ready,
                    std::int64_t timeout_ms) {
  return WaitUntil(dirs, [&](bool) { return ready(); }, timeout_ms);
}

bool WaitForStore(const std::filesystem::path& db_path, const std::function<bool(Store* store)>& ready,
                  std::int64_t timeout_ms, const std::vector<std::filesystem::path>& also) {
  SystemClock clock;
  std::vector<std::filesystem::path> dirs{db_path.parent_path()};
  dirs.insert(dirs.end(), also.begin(), also.end());
  // A change event is looked into only when it changed something a look
  // reads; the timers always look (the safety net stays whole).
  std::vector<std::filesystem::path> signed_paths{db_path, db_path.string() + "-wal"};
  signed_paths.insert(signed_paths.end(), also.begin(), also.end());
  std::optional<Signature> last;
  return WaitUntil(
      dirs,
      [&](bool from_event) {
        Signature now = Sign(signed_paths);
        if (from_event && last && now == *last) return false;
        last = std::move(now);
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
