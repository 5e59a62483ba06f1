#include "jobs/dispatcher.h"

namespace dropq {

void Dispatcher::Add(const QueuedJob& job) {
  if (by_id_.count(job.id)) return;
  Key k = KeyOf(job);
  groups_[job.group].jobs.emplace(k, job);
  by_id_.emplace(job.id, k);
  group_of_.emplace(job.id, job.group);
}

bool Dispatcher::Remove(JobId id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  auto g = group_of_.find(id);
  groups_[g->second].jobs.erase(it->second);
  group_of_.erase(g);
  by_id_.erase(it);
  return true;
}

const QueuedJob* Dispatcher::ReadyHead(const GroupQueue& g, TimeMs now) const {
  // Priority outranks run_at, so the best-ranked job may still be waiting for
  // its time while a lower one is ready: take the first ready one in order.
  for (const auto& [key, job] : g.jobs) {
    if (job.run_at <= now) return &job;
  }
  return nullptr;
}

std::vector<QueuedJob> Dispatcher::TakeStartable() {
  std::vector<QueuedJob> out;
  if (running_ >= max_concurrent_ || groups_.empty()) return out;
  TimeMs now = clock_.NowMs();
  // Round-robin: visit groups in name order starting after the one served
  // last, wrapping around; each pass gives every free group at most one job.
  bool progressed = true;
  while (running_ < max_concurrent_ && progressed) {
    progressed = false;
    auto start = groups_.upper_bound(last_served_);
    for (std::size_t n = 0; n < groups_.size() && running_ < max_concurrent_; ++n) {
      if (start == groups_.end()) start = groups_.begin();
      auto& [name, g] = *start;
      ++start;
      if (g.busy) continue;
      const QueuedJob* head = ReadyHead(g, now);
      if (!head) continue;
      QueuedJob job = *head;
      g.jobs.erase(KeyOf(job));
      by_id_.erase(job.id);
      group_of_.erase(job.id);
      g.busy = true;
      ++running_;
      last_served_ = name;
      out.push_back(std::move(job));
      progressed = true;
    }
  }
  return out;
}

void Dispatcher::Finished(const std::string& group) {
  auto it = groups_.find(group);
  if (it == groups_.end() || !it->second.busy) return;
  it->second.busy = false;
  --running_;
}

std::optional<TimeMs> Dispatcher::NextWakeup() const {
  TimeMs now = clock_.NowMs();
  std::optional<TimeMs> best;
  for (const auto& [name, g] : groups_) {
    if (g.busy) continue;  // its Finished() will trigger the next pass anyway
    for (const auto& [key, job] : g.jobs) {
      if (job.run_at > now && (!best || job.run_at < *best)) best = job.run_at;
    }
  }
  return best;
}

}  // namespace dropq
