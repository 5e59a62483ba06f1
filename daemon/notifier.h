#pragma once
// Completion hooks (`on_finish`, docs/CONFIG.md): the delivery loop.
//
// When a job reaches its final state, the transaction that records it also
// inserts a row into the outbox (QueueFinishNotice → jobs/notifications.h),
// so a crash can neither lose a delivery nor make two. The Notifier then
// delivers the rows one at a time, oldest due first, off the loop (the
// NoticeSender: a command through the hook runner of base/process.h, a URL
// through cpp-httplib's client, both on libuv's thread pool), and records
// each try with its audit row: `notified` (the row goes), or `notify_failed`
// with the reason and the next try (1 s, 2 s, 4 s, ... capped at 10 min),
// until max_attempts when it is given up (the row goes too).
//
// Nothing polls: after each change the Notifier looks at the row due first
// and either starts it or asks for one timer at its time (Hooks::arm). At
// start-up Kick() finds the rows a previous run left. Delivery is at least
// once: a crash after a hook ran but before its outcome was recorded runs it
// again at the next start.
//
// No loop, clock or thread is touched here: the sender, the clock and the
// timer are injected, and tests/daemon/notifier_test.cc drives the backoff
// with a ManualClock and a recording sender.
#include <cstdint>
#include <functional>

#include "base/clock.h"
#include "base/status.h"
#include "config/config.h"
#include "jobs/notifications.h"
#include "jobs/store.h"

struct uv_loop_s;

namespace dropq::app {

// When `group`'s hook (Config::FinishHookFor) wants this end — every final
// state, or only `failed` with `when: failed` — a pending delivery of the
// job's result JSON (runner::ResultJson), due now, in the caller's
// transaction: the one that makes the job final.
Status QueueFinishNotice(Store& store, const Config& cfg, const GroupConfig* group, const Job& job,
                         const RunOutcome& outcome);

// Delivers one notification; the seam the tests replace.
class NoticeSender {
 public:
  virtual ~NoticeSender() = default;
  // Calls `done` once, on the loop thread, with the outcome.
  virtual void Send(const Notification& n, std::function<void(Status)> done) = 0;
};

// The real sender: each delivery on libuv's thread pool (uv_queue_work).
// A command runs as the on_message hook does (watcher::RunHook: no shell, a
// small environment, the payload on stdin, killed after the timeout); a URL
// gets the payload as an HTTP POST (application/json) through
// httplib::Client, the server's certificate verified against the system's
// CAs for https. Any 2xx answer or exit code 0 is delivered.
class PoolNoticeSender final : public NoticeSender {
 public:
  explicit PoolNoticeSender(uv_loop_s* loop) : loop_(loop) {}
  void Send(const Notification& n, std::function<void(Status)> done) override;

 private:
  uv_loop_s* loop_;
};

// Runs a delivery's target on the calling thread (the pool's): Ok when
// delivered; `output` receives the tail of what the target answered.
Status DeliverNow(const Notification& n, std::string* output);

class Notifier {
 public:
  struct Hooks {
    std::function<void(std::int64_t delay_ms)> arm;  // call Kick() in delay_ms (replaces an earlier arm)
    std::function<void()> disarm;
    std::function<void()> settled;  // optional: a try's outcome was recorded
  };

  Notifier(Store& store, const Clock& clock, NoticeSender& sender, Hooks hooks);

  // Looks at the row due first: starts it when due, else arms the timer for
  // it. Call at start-up, after a commit that queued deliveries, and when
  // the timer fires. Does nothing while a delivery is in flight (its end
  // looks again) or after Stop.
  void Kick();
  // The shutdown: no try starts any more; the one in flight is recorded
  // when it ends. The rows left wait for the next start.
  void Stop();
  bool busy() const { return in_flight_; }

 private:
  void Done(const Notification& n, const Status& outcome);

  Store& store_;
  const Clock& clock_;
  NoticeSender& sender_;
  Hooks hooks_;
  NotificationStore rows_;
  bool in_flight_ = false;
  bool stopped_ = false;
};

}  // namespace dropq::app
