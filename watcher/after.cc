#include "watcher/after.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <queue>
#include <map>
#include <optional>

#include "watcher/job_file.h"

namespace dropq::watcher {
namespace {

constexpr std::string_view kField = "field \"after\": ";

}  // namespace

Result<AfterPlan> PlanAfter(Store& store, const std::vector<GroupIdentity>& groups,
                            const std::vector<AfterItem>& items) {
  AfterPlan plan;
  const std::size_t n = items.size();
  plan.deps.resize(n);
  // The pass's client ids, first file first: (group, id) → item.
  std::map<std::pair<std::string, std::string>, std::size_t> in_pass;
  for (std::size_t i = 0; i < n; ++i) {
    if (items[i].req->client_id) in_pass.emplace(std::make_pair(items[i].group, *items[i].req->client_id), i);
  }
  std::vector<std::string> refused(n);
  for (std::size_t i = 0; i < n; ++i) {
    const AfterItem& it = items[i];
    for (const AfterRef& ref : it.req->after) {
      if (ref.job_id) {
        auto job = store.GetJob(*ref.job_id);
        if (!job.ok()) return job.status();
        // A group learns nothing of another's jobs: the same words as for
        // a job that does not exist.
        if (!*job || (!it.from_main && (*job)->group != it.group)) {
          refused[i] = std::string(kField) + "no job " + ref.text + " in group " + QuoteValue(it.group);
          break;
        }
        plan.deps[i].emplace_back(*ref.job_id);
        continue;
      }
      std::string group = it.group;
      std::string id = ref.client_id;
      if (it.from_main) {
        auto colon = id.find(':');
        if (colon != std::string::npos && colon > 0) {
          std::string prefix = id.substr(0, colon);
          if (std::any_of(groups.begin(), groups.end(), [&](const GroupIdentity& g) { return g.folder == prefix; })) {
            group = prefix;
            id = id.substr(colon + 1);
          }
        }
      }
      auto found = store.FindByClientId(group, id);
      if (!found.ok()) return found.status();
      if (*found) {
        plan.deps[i].emplace_back(**found);
        continue;
      }
      auto p = in_pass.find({group, id});
      if (p == in_pass.end()) {
        refused[i] = std::string(kField) + "no job with id " + QuoteValue(id) + " in group " + QuoteValue(group);
        break;
      }
      plan.deps[i].emplace_back(p->second);
    }
  }
  // Kahn's order over the pass's own edges; what is left is refused or in
  // a cycle.
  std::vector<std::vector<std::size_t>> dependents(n);
  std::vector<std::size_t> pending(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& d : plan.deps[i]) {
      if (const auto* j = std::get_if<std::size_t>(&d)) {
        dependents[*j].push_back(i);
        ++pending[i];
      }
    }
  }
  // Of the files ready, the first in the pass (by name) goes first: a file
  // is placed after what it names and otherwise keeps its name's place, so
  // a later file with the same unique key never overtakes it (the chaos
  // suite: a file naming an earlier one went behind every file ready before
  // it, and a later duplicate made the job).
  std::vector<bool> placed(n, false);
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < n; ++i) {
    if (pending[i] == 0 && refused[i].empty()) ready.push(i);
  }
  while (!ready.empty()) {
    std::size_t i = ready.top();
    ready.pop();
    placed[i] = true;
    plan.order.push_back(i);
    for (std::size_t d : dependents[i]) {
      if (--pending[d] == 0 && refused[d].empty()) ready.push(d);
    }
  }
  // Refusals travel down the pass's edges: a file naming a refused file is
  // refused, naming it.
  std::deque<std::size_t> spread;
  for (std::size_t i = 0; i < n; ++i) {
    if (!refused[i].empty()) spread.push_back(i);
  }
  while (!spread.empty()) {
    std::size_t i = spread.front();
    spread.pop_front();
    for (std::size_t d : dependents[i]) {
      if (!refused[d].empty()) continue;
      std::string name = items[i].req->client_id ? QuoteValue(*items[i].req->client_id) : "a file";
      refused[d] = std::string(kField) + "names " + name + ", which was rejected";
      spread.push_back(d);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (placed[i]) continue;
    if (refused[i].empty()) refused[i] = std::string(kField) + "dependency cycle: files of this pass name each other (this one or one it names)";
    plan.rejected.emplace_back(i, refused[i]);
  }
  return plan;
}

}  // namespace dropq::watcher
