#pragma once
// The one drop-folder pipeline (docs/DESIGN.md, "Ingest"): the steps every
// dropped file takes, whatever folder it was dropped in, written once for
// tasks/ (watcher/ingest.h) and messages/ (watcher/messages.h):
//   1. names: collected from file events and scans (Add, ScanAll); only
//      "*.json", never a hidden name or one holding a '/'
//   2. claim (Claim): the group's folder must still be a real directory (a
//      group that put a symlink in its place could make dropq move other
//      files); a name that cannot be taken in (DroppedNameProblem) is
//      rejected by its name alone, never claimed; the others are renamed
//      into the kind's claimed directory (watcher/claim.h); a name gone
//      before it could be claimed, and not claimed here lately, is vanished
//   3. reject (Reject): once the kind's audit row (AuditRejection) commits,
//      the file goes to data/ipc/errors/ beside a .error.json with the reason
//   4. start-up (Reconcile): each file left in the claimed directory is
//      either finished by the kind (recorded before the crash) or taken in
//      again by the next Claim.
// What differs per folder — how a claimed file is read, parsed and recorded,
// and what follows its commit — is the kind's own (Ingestor, MessageInbox),
// which owns one DropFolder and calls these steps.
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "watcher/authorize.h"
#include "watcher/claim.h"

namespace dropq::watcher {

// The folders groups drop files into.
enum class DropKind {
  kTasks,     // data/ipc/<g>/tasks/, claimed into data/claimed/<g>/
  kMessages,  // data/ipc/<g>/messages/, claimed into data/claimed/<g>/messages/
              // (a subdirectory, so the tasks' start-up never takes a
              // message for a job file)
};

// A file that is not taken in, and why: it goes to errors/ with the reason.
struct Rejection {
  ClaimedFile file;  // its path is in claimed/, or in the drop folder when its name was the problem
  std::string reason;
};

class DropFolder {
 public:
  DropFolder(DropKind kind, const Layout& layout, const Clock& clock, std::vector<GroupIdentity> groups);

  // The groups served changed (a group was registered while running).
  void SetGroups(std::vector<GroupIdentity> groups) { groups_ = std::move(groups); }
  const std::vector<GroupIdentity>& groups() const { return groups_; }
  // The group whose folder is `folder`; nullptr when it is not served.
  const GroupIdentity* FindGroup(const std::string& folder) const;

  // Where `group` drops files of this kind, and where they are claimed to.
  std::filesystem::path Dir(const std::string& group) const;
  std::filesystem::path ClaimedDir(const std::string& group) const;

  // Step 1: an event says Dir(group)/name may hold a new file. The one
  // event a claim of the last pass made itself is skipped.
  void Add(const std::string& group, const std::string& name);
  // Adds every name currently in each group's Dir().
  void ScanAll();
  // Names to claim, or claimed files not yet recorded.
  bool pending() const { return !names_.empty() || !claimed_.empty(); }

  // Step 2 for every name added since the last pass.
  struct Pass {
    std::vector<ClaimedFile> claimed;                           // now in ClaimedDir(), with the files given back since
    std::vector<Rejection> bad_names;                           // rejected by their names alone, still in Dir()
    std::vector<std::pair<std::string, std::string>> vanished;  // (group, name) gone before the claim
  };
  Pass Claim(TimeMs now);
  // A pass (or one claimed file) the store could not take: its claimed files
  // come again with the next Claim, its bad names are looked at again.
  void GiveBack(std::vector<ClaimedFile> claimed, const std::vector<Rejection>& bad_names = {});

  // Step 3: the audit row of a rejection ({file, reason}, and `type` when
  // given), in the caller's transaction; then, once it is committed, the
  // move to errors/ (logged).
  Status AuditRejection(Store& store, const Rejection& r, std::optional<std::string_view> type = std::nullopt) const;
  void Reject(const Rejection& r) const;

  // Step 4, at start-up (and after a pass that threw): forgets the claimed
  // files it held and looks at each ClaimedDir() afresh. `finish` is called
  // for every file there: true when the kind finished it (it was recorded
  // before the crash), false to take it in again with the next Claim.
  Status Reconcile(const std::function<Result<bool>(const ClaimedFile&)>& finish);

 private:
  std::string_view word() const { return kind_ == DropKind::kTasks ? "tasks" : "messages"; }
  // By NameKey.
  void NoteClaimed(const std::string& key);
  bool RecentlyClaimed(const std::string& key) const;
  static bool Wanted(const std::string& name);
  // "<group>/<name>": the key of recent_ and own_moves_.
  static std::string NameKey(const std::string& group, const std::string& name);

  DropKind kind_;
  const Layout& layout_;
  const Clock& clock_;
  std::vector<GroupIdentity> groups_;
  std::vector<std::pair<std::string, std::string>> names_;  // (group, name) in Dir()
  std::vector<ClaimedFile> claimed_;                        // claimed, not yet recorded
  static constexpr std::size_t kRecentClaims = 4096;
  std::unordered_set<std::string> recent_;  // "<group>/<name>" claimed lately
  std::deque<std::string> recent_order_;    // the same, oldest first
  std::unordered_set<std::string> own_moves_;  // "<group>/<name>" claimed by the last pass, its event not yet seen
};

}  // namespace dropq::watcher
