#pragma once
// Resolving the `after` of one ingest pass's job files (docs/FILES.md,
// "Dependencies"), before any of them is inserted.
//
// An entry names a job that exists (by job id, or by client id in the
// job's group; main may write `<group>:<id>`) or another file of the same
// pass (by its client id), whatever order the directory listed them in.
// A file naming anything else is rejected with the reason, and so is a file
// that names a rejected file of the pass; files of the pass that name each
// other in a circle are all rejected ("dependency cycle"), so no cycle ever
// reaches the database: an existing job cannot name a job made after it.
#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include "jobs/job.h"
#include "jobs/store.h"
#include "watcher/authorize.h"

namespace dropq::watcher {

struct AfterItem {
  std::string group;        // the job's group (the file's target)
  bool from_main = false;   // dropped in main's tasks/
  const RunRequest* req = nullptr;
};

struct AfterPlan {
  // One dependency: a job that exists, or the item of the pass at this index.
  using Dep = std::variant<JobId, std::size_t>;
  std::vector<std::vector<Dep>> deps;  // per item
  // The items to insert, every item after the items it names.
  std::vector<std::size_t> order;
  // Items refused, with the reason (for the file's .error.json).
  std::vector<std::pair<std::size_t, std::string>> rejected;
};

// `groups`: the groups served (a `<group>:` prefix must name one of them).
Result<AfterPlan> PlanAfter(Store& store, const std::vector<GroupIdentity>& groups,
                            const std::vector<AfterItem>& items);

}  // namespace dropq::watcher
