#include "watcher/watcher.h"
#include "base/guard.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace dropq::watcher {
namespace {

// A pass that queued this many jobs may have lost events to an overflow.
constexpr std::size_t kBurstRescan = 256;

}  // namespace

Watcher::Watcher(uv_loop_t* loop, const Layout& layout, Ingestor& ingestor, std::vector<std::string> groups,
                 JobsCallback on_jobs, std::uint64_t rescan_ms, MessageInbox* messages,
                 std::function<void()> request_pass)
    : loop_(loop),
      layout_(layout),
      ingestor_(ingestor),
      groups_(std::move(groups)),
      on_jobs_(std::move(on_jobs)),
      request_pass_(std::move(request_pass)),
      rescan_ms_(rescan_ms),
      messages_(messages) {}

Watcher::~Watcher() = default;

Status Watcher::Start() {
  uv_idle_init(loop_, &idle_);
  idle_.data = this;
  uv_timer_init(loop_, &rescan_);
  rescan_.data = this;
  uv_timer_init(loop_, &retry_);
  retry_.data = this;
  started_ = true;
  for (const auto& g : groups_) WatchGroup(g);
  if (rescan_ms_ > 0) uv_timer_start(&rescan_, &Watcher::OnRescan, rescan_ms_, rescan_ms_);
  // The rescan timer alone must not keep a `--once` loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&rescan_));
  return Status::Ok();
}

void Watcher::WatchGroup(const std::string& g) {
  for (DropFolder* folder : {&ingestor_.folder(), messages_ ? &messages_->folder() : nullptr}) {
    if (folder == nullptr) continue;
    auto dir = std::make_unique<Dir>();
    dir->self = this;
    dir->group = g;
    dir->folder = folder;
    uv_fs_event_init(loop_, &dir->handle);
    dir->handle.data = dir.get();
    std::string path = folder->Dir(g).string();
    int rc = uv_fs_event_start(&dir->handle, &Watcher::OnFsEvent, path.c_str(), 0);
    dirs_.push_back(std::move(dir));
    // A group whose folder cannot be watched (broken or planted) is
    // logged; the rescan still finds its files, the others are watched.
    if (rc != 0) spdlog::error("cannot watch {}: {}", path, uv_strerror(rc));
  }
}

void Watcher::AddGroup(const std::string& group) {
  if (!started_ || closed_) return;
  for (const auto& g : groups_) {
    if (g == group) return;
  }
  groups_.push_back(group);
  WatchGroup(group);
}

void Watcher::RemoveGroup(const std::string& group) {
  if (closed_) return;  // Close() has closed every handle
  groups_.erase(std::remove(groups_.begin(), groups_.end(), group), groups_.end());
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if ((*it)->group != group) {
      ++it;
      continue;
    }
    // The handle is freed by its close callback, after the loop is done with it.
    Dir* dir = it->release();
    it = dirs_.erase(it);
    uv_close(reinterpret_cast<uv_handle_t*>(&dir->handle), [](uv_handle_t* h) { delete static_cast<Dir*>(h->data); });
  }
}

void Watcher::Kick() {
  if (!started_ || closed_) return;
  pass_requested_ = true;
  if (request_pass_) {
    request_pass_();
  } else {
    uv_idle_start(&idle_, &Watcher::OnIdle);
  }
}

void Watcher::OnFsEvent(uv_fs_event_t* h, const char* filename, int /*events*/, int status) {
  Guard("file event", [&] {
    auto* dir = static_cast<Dir*>(h->data);
    Watcher* self = dir->self;
    if (status < 0 || filename == nullptr) {
      // An error, or a platform that does not name the file: look at the
      // whole directory.
      if (status < 0) spdlog::warn("watch error on {}: {}; rescanning", dir->group, uv_strerror(status));
      dir->folder->ScanAll();
    } else {
      dir->folder->Add(dir->group, filename);
    }
    self->Kick();
  });
}

bool Watcher::TakePass() {
  bool asked = pass_requested_;
  pass_requested_ = false;
  return asked && started_ && !closed_;
}

Status Watcher::FlushMessages() { return messages_ ? messages_->Flush() : Status::Ok(); }

void Watcher::PassDone(const Status& failed, std::size_t queued) {
  if (!failed.ok()) {
    // A full disk, a locked database: the files stay claimed and are tried
    // again with backoff (1 s doubling to 30 s) until the store takes them.
    retry_delay_ms_ = std::min<std::uint64_t>(30'000, retry_delay_ms_ ? retry_delay_ms_ * 2 : 1'000);
    spdlog::error("ingest failed: {}; the files stay claimed and are tried again in {} ms", failed.message(),
                  retry_delay_ms_);
    if (!closed_) uv_timer_start(&retry_, &Watcher::OnRetry, retry_delay_ms_, 0);
    return;
  }
  if (retry_delay_ms_ != 0) spdlog::info("ingest resumed");
  retry_delay_ms_ = 0;
  if (closed_) return;
  if (auto settle = ingestor_.NextSettleDelayMs()) {
    uv_timer_start(&retry_, &Watcher::OnRetry, static_cast<std::uint64_t>(*settle), 0);
  } else {
    uv_timer_stop(&retry_);
  }
  // A burst can overflow the kernel's inotify queue (16,384 events by
  // default, and each file makes two: the drop and our claim), and libuv
  // drops the overflow without a word. After a big pass, look at the
  // folders again at once rather than leave the rest to the 60 s rescan
  // (make bench: 10,000 files dropped at once waited for it).
  if (queued >= kBurstRescan) {
    ingestor_.ScanAll();
    Kick();
  }
}

void Watcher::OnIdle(uv_idle_t* h) {
  Guard("ingest pass", [&] {
    auto* self = static_cast<Watcher*>(h->data);
    uv_idle_stop(h);
    if (!self->TakePass()) return;
    Status messages = self->FlushMessages();
    auto jobs = self->ingestor_.Flush();
    self->PassDone(jobs.ok() ? messages : jobs.status(), jobs.ok() ? jobs->size() : 0);
    // Called even for an empty batch: the daemon's `--once` mode decides
    // whether it is done after every ingest pass.
    if (jobs.ok() && self->on_jobs_) self->on_jobs_(std::move(*jobs));
  });
}

void Watcher::OnRetry(uv_timer_t* h) {
  Guard("ingest retry", [&] { static_cast<Watcher*>(h->data)->Kick(); });
}

void Watcher::OnRescan(uv_timer_t* h) {
  Guard("rescan", [&] {
    auto* self = static_cast<Watcher*>(h->data);
    self->ingestor_.ScanAll();
    if (self->messages_) self->messages_->ScanAll();
    self->Kick();
  });
}

void Watcher::Close() {
  if (!started_ || closed_) return;
  closed_ = true;
  for (auto& d : dirs_) uv_close(reinterpret_cast<uv_handle_t*>(&d->handle), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&rescan_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_), nullptr);
}

}  // namespace dropq::watcher
