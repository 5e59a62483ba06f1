#include "jobs/dispatcher.h"

#include <algorithm>

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
      // A full window passes the group over, as a busy one: it takes no
      // slot, and the others are served meanwhile (NextWakeup says when).
      if (g.rate && !g.rate->Allows(now)) continue;
      const QueuedJob* head = ReadyHead(g, now);
      if (!head) continue;
      QueuedJob job = *head;
      g.jobs.erase(KeyOf(job));
      by_id_.erase(job.id);
      group_of_.erase(job.id);
      g.busy = true;
      if (g.rate) g.rate->Record(now);
      g.last_start = now;
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

void Dispatcher::Unstarted(const std::string& group) {
  auto it = groups_.find(group);
  if (it != groups_.end() && it->second.busy && it->second.rate) it->second.rate->Unrecord(it->second.last_start);
  Finished(group);
}

std::optional<TimeMs> Dispatcher::NextWakeup() const {
  TimeMs now = clock_.NowMs();
  std::optional<TimeMs> best;
  for (const auto& [name, g] : groups_) {
    if (g.busy) continue;  // its Finished() will trigger the next pass anyway
    if (g.jobs.empty()) continue;
    // A full rate window holds every job of the group until it opens.
    const TimeMs open = g.rate ? g.rate->NextAllowed(now).value_or(0) : 0;
    for (const auto& [key, job] : g.jobs) {
      const TimeMs at = std::max(job.run_at, open);
      if (at > now && (!best || at < *best)) best = at;
    }
  }
  return best;
}

bool Dispatcher::SetRateLimit(const std::string& group, std::optional<RateLimit> limit) {
  auto it = groups_.find(group);
  if (!limit) {
    if (it == groups_.end() || !it->second.rate) return false;
    it->second.rate.reset();
    return true;
  }
  GroupQueue& g = it == groups_.end() ? groups_[group] : it->second;
  if (g.rate && g.rate->limit() == *limit) return false;
  g.rate.emplace(*limit);
  return true;
}

void Dispatcher::RecordStart(const std::string& group, TimeMs at) {
  auto it = groups_.find(group);
  if (it != groups_.end() && it->second.rate) it->second.rate->Record(at);
}

std::optional<RateState> Dispatcher::RateOf(const std::string& group) const {
  auto it = groups_.find(group);
  if (it == groups_.end() || !it->second.rate) return std::nullopt;
  return it->second.rate->StateAt(clock_.NowMs());
}

std::vector<std::pair<std::string, RateLimit>> Dispatcher::RateLimits() const {
  std::vector<std::pair<std::string, RateLimit>> out;
  for (const auto& [name, g] : groups_) {
    if (g.rate) out.emplace_back(name, g.rate->limit());
  }
  return out;
}

}  // namespace dropq
