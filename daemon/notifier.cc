#include "daemon/notifier.h"

#include <uv.h>

#include <memory>
#include <utility>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/guard.h"
#include "base/text.h"
#include "runner/runner.h"
#include "watcher/messages.h"

namespace dropq::app {

Status QueueFinishNotice(Store& store, const Config& cfg, const GroupConfig* group, const Job& job,
                         const RunOutcome& outcome) {
  const FinishHook* hook = cfg.FinishHookFor(group);
  if (hook == nullptr) return Status::Ok();
  // `when: failed` is about jobs that failed for good; a cancelled job was
  // stopped on purpose by someone who knows.
  if (hook->failures_only && outcome.job_state != JobState::kFailed) return Status::Ok();
  Notification n;
  n.job_id = job.id;
  n.group = job.group;
  n.target =
      text::Dump(hook->url.empty() ? nlohmann::json{{"command", hook->command}} : nlohmann::json{{"url", hook->url}});
  n.timeout_ms = hook->timeout_ms;
  n.max_attempts = hook->max_attempts;
  n.payload = runner::ResultJson(job, outcome);
  return NotificationStore(store).Enqueue(n, store.clock().NowMs());
}

namespace {

// POSTs the payload. The URL was checked by the config (http or https, a
// host); what follows the host is the request's path and query.
Status Post(const std::string& url, const std::string& payload, std::int64_t timeout_ms, std::string* output) {
  const std::size_t host = url.find("://") + 3;
  const std::size_t path_at = url.find_first_of("/?", host);
  const std::string base = url.substr(0, path_at);
  std::string path = path_at == std::string::npos ? "/" : url.substr(path_at);
  if (path.front() == '?') path.insert(0, "/");
  httplib::Client client(base);
  if (!client.is_valid()) return Status::InvalidArgument("on_finish: cannot use " + base);
  client.enable_server_certificate_verification(true);  // the default, said aloud: results are private
  const time_t sec = static_cast<time_t>(timeout_ms / 1000);
  const time_t usec = static_cast<time_t>((timeout_ms % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  auto res = client.Post(path, payload, "application/json");
  if (!res) return Status::IOError("on_finish: POST " + base + ": " + httplib::to_string(res.error()));
  std::string body = HookOutputTail(res->body);
  if (output) *output = body;
  if (res->status < 200 || res->status > 299) {
    std::string why = "on_finish: " + base + " answered " + std::to_string(res->status);
    return Status::IOError(body.empty() ? why : why + ": " + body);
  }
  return Status::Ok();
}

}  // namespace

Status DeliverNow(const Notification& n, std::string* output) {
  auto target = nlohmann::json::parse(n.target, nullptr, false);
  if (target.is_object() && target.contains("url") && target["url"].is_string()) {
    return Post(target["url"].get<std::string>(), n.payload, n.timeout_ms, output);
  }
  if (target.is_object() && target.contains("command") && target["command"].is_array() && !target["command"].empty()) {
    std::vector<std::string> argv;
    for (const auto& a : target["command"]) {
      if (!a.is_string()) return Status::InvalidArgument("on_finish: the stored command is not a list of strings");
      argv.push_back(a.get<std::string>());
    }
    return RunHook("on_finish", argv, n.payload, n.timeout_ms, output);
  }
  return Status::InvalidArgument("on_finish: the stored target is neither a command nor a url");
}

void PoolNoticeSender::Send(const Notification& n, std::function<void(Status)> done) {
  struct Work {
    uv_work_t req{};
    Notification n;
    std::function<void(Status)> done;
    Status outcome;
    std::string output;
  };
  auto w = std::make_unique<Work>();
  w->n = n;
  w->done = std::move(done);
  w->req.data = w.get();
  int rc = uv_queue_work(
      loop_, &w->req,
      [](uv_work_t* req) {
        auto* w = static_cast<Work*>(req->data);
        Guard(
            "on_finish delivery", [&] { w->outcome = DeliverNow(w->n, &w->output); },
            [&](const std::string& why) { w->outcome = Status::IOError("on_finish: " + why); });
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Work> w(static_cast<Work*>(req->data));
        Guard("on_finish delivered", [&] {
          if (!w->output.empty()) spdlog::debug("job {}: on_finish answered: {}", w->n.job_id, w->output);
          w->done(std::move(w->outcome));
        });
      });
  if (rc != 0) {
    // Not started: recorded as a failed try, so the backoff applies.
    w->done(Status::IOError(std::string("on_finish: cannot start the delivery: ") + uv_strerror(rc)));
    return;
  }
  w.release();  // the after-work callback owns it
}

Notifier::Notifier(Store& store, const Clock& clock, NoticeSender& sender, Hooks hooks)
    : store_(store), clock_(clock), sender_(sender), hooks_(std::move(hooks)), rows_(store) {}

void Notifier::Kick() {
  if (in_flight_ || stopped_) return;
  auto next = rows_.NextDue();
  if (!next.ok()) {
    // The rows stay; look again in a while rather than spin.
    spdlog::error("on_finish: cannot read the pending deliveries: {}", next.status().message());
    hooks_.arm(5'000);
    return;
  }
  if (!*next) {
    hooks_.disarm();
    return;
  }
  const TimeMs now = clock_.NowMs();
  if ((*next)->next_try_at > now) {
    hooks_.arm((*next)->next_try_at - now);
    return;
  }
  hooks_.disarm();
  in_flight_ = true;
  Notification n = std::move(**next);
  sender_.Send(n, [this, n](Status outcome) { Done(n, outcome); });
}

void Notifier::Done(const Notification& n, const Status& outcome) {
  in_flight_ = false;
  auto next = rows_.RecordTry(n, outcome, clock_.NowMs());
  if (!next.ok()) {
    // The row is as it was, still due: the next look tries it again (at
    // least once), after a pause so a failing database is not hammered.
    spdlog::error("job {}: cannot record its on_finish try: {}", n.job_id, next.status().message());
    if (!stopped_) hooks_.arm(5'000);
  } else if (outcome.ok()) {
    spdlog::info("job {}: on_finish delivered (try {})", n.job_id, n.attempts + 1);
  } else if (*next) {
    spdlog::warn("job {}: on_finish try {} of {} failed: {}; next try at {}", n.job_id, n.attempts + 1, n.max_attempts,
                 outcome.message(), FormatIsoUtc(**next));
  } else {
    spdlog::error("job {}: on_finish given up after {} tries: {}", n.job_id, n.attempts + 1, outcome.message());
  }
  if (next.ok()) Kick();
  if (hooks_.settled) hooks_.settled();
}

void Notifier::Stop() {
  if (stopped_) return;
  stopped_ = true;
  hooks_.disarm();
}

}  // namespace dropq::app
