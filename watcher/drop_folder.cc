#include "watcher/drop_folder.h"

#include <sys/stat.h>

#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/text.h"

namespace dropq::watcher {
namespace {

namespace fs = std::filesystem;

bool EndsWithJson(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 && name[0] != '.';
}

}  // namespace

DropFolder::DropFolder(DropKind kind, const Layout& layout, const Clock& clock, std::vector<GroupIdentity> groups)
    : kind_(kind), layout_(layout), clock_(clock), groups_(std::move(groups)) {}

const GroupIdentity* DropFolder::FindGroup(const std::string& folder) const {
  for (const auto& g : groups_) {
    if (g.folder == folder) return &g;
  }
  return nullptr;
}

fs::path DropFolder::Dir(const std::string& group) const {
  return kind_ == DropKind::kTasks ? layout_.TasksDir(group) : layout_.MessagesDir(group);
}

fs::path DropFolder::ClaimedDir(const std::string& group) const {
  return kind_ == DropKind::kTasks ? layout_.ClaimedDir(group) : layout_.ClaimedDir(group) / "messages";
}

void DropFolder::Add(const std::string& group, const std::string& name) {
  if (!Wanted(name)) return;
  // The event of this folder's own claim (rename out of Dir) of a name the
  // last pass took: nothing is there to claim, and the attempt was one more
  // rename and claim token per file. Each claim expects one such event; a
  // later event for the name (the writer dropping it again) is claimed as
  // usual.
  if (!own_moves_.empty() && own_moves_.erase(NameKey(group, name)) > 0) return;
  names_.emplace_back(group, name);
}

std::string DropFolder::NameKey(const std::string& group, const std::string& name) { return group + "/" + name; }

bool DropFolder::Wanted(const std::string& name) { return EndsWithJson(name) && name.find('/') == std::string::npos; }

void DropFolder::ScanAll() {
  for (const auto& g : groups_) {
    std::error_code ec;
    // A listed name is there now: it never counts as a claim's own event.
    for (const auto& entry : fs::directory_iterator(Dir(g.folder), ec)) {
      std::string name = entry.path().filename().string();
      if (Wanted(name)) names_.emplace_back(g.folder, std::move(name));
    }
    if (ec) spdlog::warn("cannot scan {}: {}", Dir(g.folder).string(), ec.message());
  }
}

DropFolder::Pass DropFolder::Claim(TimeMs now) {
  Pass pass;
  pass.claimed = std::move(claimed_);
  claimed_.clear();
  struct Dirs {
    bool usable;
    fs::path drop, claimed;
  };
  std::map<std::string, Dirs> dirs;                    // one lstat and one path each per group per pass
  std::unordered_set<std::string> seen;   // a name noticed twice in a pass is claimed once
  std::unordered_set<std::string> moved;  // claimed now: each makes one event of its own
  seen.reserve(names_.size());
  for (const auto& [group, name] : names_) {
    auto [at, fresh] = seen.insert(NameKey(group, name));
    if (!fresh) continue;
    const std::string& key = *at;
    auto u = dirs.find(group);
    if (u == dirs.end()) {
      Dirs d{false, Dir(group), ClaimedDir(group)};
      Status s = Layout::CheckRealDir(d.drop);
      if (s.ok()) {
        std::error_code ec;
        fs::create_directories(d.claimed, ec);
        if (ec) s = Status::IOError("cannot create " + d.claimed.string() + ": " + ec.message());
      }
      if (!s.ok()) spdlog::error("group {}: not reading {}/: {}", group, word(), s.message());
      d.usable = s.ok();
      u = dirs.emplace(group, std::move(d)).first;
    }
    if (!u->second.usable) continue;
    if (auto problem = DroppedNameProblem(name)) {
      // Never claimed: "<token>.<name>" may not even fit. It goes from the
      // drop folder to errors/ under a safe name once its audit row commits.
      fs::path path = u->second.drop / name;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        // Already moved (the move's own event), or removed by the writer.
        if (!RecentlyClaimed(key)) pass.vanished.emplace_back(group, name);
        continue;
      }
      NoteClaimed(key);
      pass.bad_names.push_back({{group, name, NewClaimToken(now), path}, *problem});
      continue;
    }
    auto c = ClaimFile(group, u->second.drop, name, u->second.claimed, now);
    if (c.ok()) {
      NoteClaimed(key);
      moved.insert(key);
      pass.claimed.push_back(std::move(*c));
    } else if (c.status().code() != Status::Code::kNotFound) {
      spdlog::error("{}", c.status().message());
    } else if (!RecentlyClaimed(key)) {
      pass.vanished.emplace_back(group, name);
    }
  }
  names_.clear();
  // The events of this pass's renames are read before the next pass (the
  // loop polls between passes); one not seen by then (an inotify overflow)
  // is not waited for, so a stale expectation never hides a later drop.
  own_moves_ = std::move(moved);
  return pass;
}

void DropFolder::GiveBack(std::vector<ClaimedFile> claimed, const std::vector<Rejection>& bad_names) {
  for (auto& f : claimed) claimed_.push_back(std::move(f));
  for (const auto& r : bad_names) names_.emplace_back(r.file.group, r.file.name);
}

Status DropFolder::AuditRejection(Store& store, const Rejection& r, std::optional<std::string_view> type) const {
  nlohmann::json d = {{"file", text::ForLog(r.file.name)}};
  if (type) d["type"] = *type;
  d["reason"] = r.reason;
  return store.AppendEvent(std::nullopt, r.file.group, "rejected", text::Dump(d));
}

void DropFolder::Reject(const Rejection& r) const {
  spdlog::warn("{}/{}/{} rejected: {}", r.file.group, word(), r.file.name, r.reason);
  MoveToErrors(layout_.ErrorsDir(), r.file, r.reason, clock_.NowMs());
}

Status DropFolder::Reconcile(const std::function<Result<bool>(const ClaimedFile&)>& finish) {
  claimed_.clear();
  for (const auto& g : groups_) {
    std::error_code ec;
    fs::path dir = ClaimedDir(g.folder);
    if (!fs::exists(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      // data/claimed/<g>/messages/ sits in the tasks' claimed directory.
      if (kind_ == DropKind::kTasks && entry.path() == layout_.ClaimedDir(g.folder) / "messages") continue;
      auto claimed = ParseClaimedName(g.folder, entry.path());
      if (!claimed) {
        spdlog::warn("ignoring {}: not a name dropq gives claimed files", entry.path().string());
        continue;
      }
      auto finished = finish(*claimed);
      if (!finished.ok()) return finished.status();
      if (!*finished) claimed_.push_back(std::move(*claimed));
    }
    if (ec) return Status::IOError("cannot scan " + dir.string() + ": " + ec.message());
  }
  return Status::Ok();
}

// Names claimed lately, so a second event for a name already taken (a file
// written in place makes several) is not taken for a file someone removed
// before it could be claimed.
void DropFolder::NoteClaimed(const std::string& key) {
  if (!recent_.insert(key).second) return;
  recent_order_.push_back(key);
  if (recent_order_.size() > kRecentClaims) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

bool DropFolder::RecentlyClaimed(const std::string& key) const { return recent_.count(key) > 0; }

}  // namespace dropq::watcher
