#pragma once
// What a served group needs on disk and in its sandbox: its directories
// (docs/FILES.md) and its validated additional mounts (docs/SECURITY.md).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "jobs/layout.h"
#include "runner/allowlist.h"
#include "runner/mounts.h"

namespace dropq::app {

// A group's directories, and no temporary files of atomic writes a crash
// cut short. The directories it makes are durable on return, or after
// `batch`'s Flush (Layout::CreateGroup).
Status PrepareGroupDirs(const Layout& layout, const std::string& folder, NewDirs* batch = nullptr);

// containerConfig.additionalMounts, checked against the mount allowlist
// (kept outside root, never mounted; read once, when a group first needs
// it). A refused mount is logged and left out; the group still runs.
class GroupMounts {
 public:
  GroupMounts(std::string allowlist_path, std::string root)
      : allowlist_path_(std::move(allowlist_path)), root_(std::move(root)) {}
  // (Re)validates `g`'s mounts; called when a group is first served.
  void Load(const GroupConfig& g);
  // The validated mounts of `folder` (none for an unknown one).
  const std::vector<runner::Mount>& For(const std::string& folder) const;

 private:
  std::string allowlist_path_, root_;
  std::map<std::string, std::vector<runner::Mount>> mounts_;
  std::optional<runner::MountAllowlist> allowlist_;
  bool allowlist_loaded_ = false;
};

}  // namespace dropq::app
