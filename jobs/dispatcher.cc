#include "jobs/dispatcher.h"

#include <algorithm>

namespace dropq {

void Dispatcher::Add(const QueuedJob& job) {
  if (by_id_.count(job.id)) return;
  Key k = KeyOf(job);
  Group(job.group).jobs.emplace(k, job);
  by_id_.emplace(job.id, k);
  group_of_.emplace(job.id, job.group);
}

bool Dispatcher::Remove(JobId id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  auto g = group_of_.find(id);
  Group(g->second).jobs.erase(it->second);
  group_of_.erase(g);
  by_id_.erase(it);
  ReleaseIfEmpty();
  return true;
}

Dispatcher::GroupQueue& Dispatcher::Group(const std::string& name) {
  return groups_.try_emplace(name, &nodes_).first->second;
}

void Dispatcher::ReleaseIfEmpty() {
  if (by_id_.empty()) nodes_.release();
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
  if (AtCapacity() || groups_.empty()) return out;
  TimeMs now = clock_.NowMs();
  // Round-robin: visit groups in name order starting after the one served
  // last, wrapping around; each pass gives every group with room at most
  // one job, so a group that may run several takes its second only after
  // every other ready group has had its first.
  bool progressed = true;
  while (!AtCapacity() && progressed) {
    progressed = false;
    auto start = groups_.upper_bound(last_served_);
    for (std::size_t n = 0; n < groups_.size() && !AtCapacity(); ++n) {
      if (start == groups_.end()) start = groups_.begin();
      auto& [name, g] = *start;
      ++start;
      if (Full(g)) continue;
      // A full window passes the group over, as a full group: it takes no
      // slot, and the others are served meanwhile (NextWakeup says when).
      if (g.rate && !g.rate->Allows(now)) continue;
      const QueuedJob* head = ReadyHead(g, now);
      if (!head) continue;
      QueuedJob job = *head;
      g.jobs.erase(KeyOf(job));
      by_id_.erase(job.id);
      group_of_.erase(job.id);
      ++g.running;
      if (g.rate) g.rate->Record(now);
      running_[job.id] = {name, now};
      last_served_ = name;
      out.push_back(std::move(job));
      progressed = true;
    }
  }
  ReleaseIfEmpty();
  return out;
}

void Dispatcher::Finished(JobId id) {
  auto r = running_.find(id);
  if (r == running_.end()) return;
  auto g = groups_.find(r->second.group);
  if (g != groups_.end() && g->second.running > 0) --g->second.running;
  running_.erase(r);
}

void Dispatcher::Unstarted(JobId id) {
  auto r = running_.find(id);
  if (r == running_.end()) return;
  auto g = groups_.find(r->second.group);
  if (g != groups_.end() && g->second.rate) g->second.rate->Unrecord(r->second.started);
  Finished(id);
}

void Dispatcher::SetMaxPerGroup(int default_n, const std::map<std::string, int>& own) {
  max_per_group_ = default_n;
  for (auto& [name, g] : groups_) g.max_running.reset();
  for (const auto& [name, n] : own) Group(name).max_running = n;
}

int Dispatcher::MaxPerGroupOf(const std::string& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? max_per_group_ : it->second.max_running.value_or(max_per_group_);
}

int Dispatcher::RunningIn(const std::string& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : it->second.running;
}

std::optional<TimeMs> Dispatcher::NextWakeup() const {
  TimeMs now = clock_.NowMs();
  std::optional<TimeMs> best;
  for (const auto& [name, g] : groups_) {
    if (Full(g)) continue;  // its Finished() will trigger the next pass anyway
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
  GroupQueue& g = it == groups_.end() ? Group(group) : it->second;
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
