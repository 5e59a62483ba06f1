#include "runner/snapshot_writer.h"

#include <spdlog/spdlog.h>

#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "runner/snapshots.h"
#include "base/guard.h"

namespace dropq::app {

namespace {

std::int64_t ThreadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

}  // namespace

SnapshotWriter::SnapshotWriter(uv_loop_t* loop, const Layout& layout, Store& store, std::string db_path,
                               const Clock& clock, std::int64_t on_loop_under_cpu_us)
    : loop_(loop),
      layout_(layout),
      store_(store),
      db_path_(std::move(db_path)),
      clock_(clock),
      on_loop_under_cpu_us_(on_loop_under_cpu_us) {
  work_.data = this;
}

SnapshotWriter::~SnapshotWriter() = default;

void SnapshotWriter::Request(std::vector<watcher::GroupIdentity> groups) {
  if (running_) {
    next_ = std::move(groups);
    return;
  }
  // CPU time, not wall time: what grows with the tasks is building the
  // JSON; the flushes cost the same for a small file and make the loop wait.
  if (last_cpu_us_ < on_loop_under_cpu_us_) {
    Status s = WriteNow(store_, groups);
    failed_ = !s.ok();
    if (failed_) spdlog::error("cannot write snapshots: {}", s.message());
    return;
  }
  current_ = std::move(groups);
  Start();
}

void SnapshotWriter::WhenWritten(std::function<void()> fn) {
  if (next_) {
    after_next_.push_back(std::move(fn));
  } else if (running_) {
    after_current_.push_back(std::move(fn));
  } else {
    fn();
  }
}

Status SnapshotWriter::WriteNow(Store& store, const std::vector<watcher::GroupIdentity>& groups,
                                const std::optional<std::string>& only, bool refresh) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return Timed(store, groups, only, refresh);
}

Status SnapshotWriter::Timed(Store& store, const std::vector<watcher::GroupIdentity>& groups,
                             const std::optional<std::string>& only, bool refresh) {
  std::int64_t t0 = ThreadCpuUs();
  Status s = WriteSnapshots(layout_, store, groups, only, refresh);
  // Only a whole write says what the next one will cost.
  if (!only) last_cpu_us_ = ThreadCpuUs() - t0;
  return s;
}

void SnapshotWriter::Start() {
  running_ = true;
  uv_queue_work(loop_, &work_, &SnapshotWriter::Work, &SnapshotWriter::After);
}

void SnapshotWriter::Work(uv_work_t* req) {
  Guard("snapshot writer", [&] {
    auto* self = static_cast<SnapshotWriter*>(req->data);
    std::lock_guard<std::mutex> lock(self->write_mu_);
    if (!self->reader_) {
      auto r = Store::OpenReadOnly(self->db_path_, self->clock_);
      if (!r.ok()) {
        self->status_ = r.status();
        return;
      }
      self->reader_ = std::move(*r);
    }
    self->status_ = self->Timed(*self->reader_, self->current_, std::nullopt, false);
#ifdef __GLIBC__
    // A big write leaves its JSON's freed heap in this pool thread's malloc
    // arena, which glibc keeps: with 20,000 tasks that doubled the daemon's
    // resident memory. Worth a trim only when the write was big.
    if (self->last_cpu_us_ >= 5'000) malloc_trim(0);
#endif
  });
}

void SnapshotWriter::After(uv_work_t* req, int) {
  Guard("snapshots written", [&] {
    auto* self = static_cast<SnapshotWriter*>(req->data);
    self->running_ = false;
    self->failed_ = !self->status_.ok();
    // WriteSnapshots logged each file it could not write.
    if (self->failed_) spdlog::error("cannot write snapshots: {}", self->status_.message());
    auto done = std::move(self->after_current_);
    self->after_current_.clear();
    if (self->next_) {
      self->current_ = std::move(*self->next_);
      self->next_.reset();
      self->after_current_ = std::move(self->after_next_);
      self->after_next_.clear();
      self->Start();
    }
    for (auto& fn : done) fn();
  });
}

}  // namespace dropq::app
