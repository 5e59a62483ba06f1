#include "daemon/group_mounts.h"

#include <filesystem>

#include <spdlog/spdlog.h>

namespace dropq::app {

Status PrepareGroupDirs(const Layout& layout, const std::string& folder, NewDirs* batch) {
  if (Status s = layout.CreateGroup(folder, batch); !s.ok()) return s;
  for (const auto& dir : {layout.ResultsDir(folder), layout.GroupLogsDir(folder)}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos) {
        std::filesystem::remove(e.path(), ec);
      }
    }
  }
  return Status::Ok();
}

void GroupMounts::Load(const GroupConfig& g) {
  mounts_.erase(g.folder);
  if (g.additional_mounts.empty()) return;
  if (!allowlist_loaded_) {
    allowlist_loaded_ = true;
    auto loaded = runner::MountAllowlist::Load(allowlist_path_);
    if (loaded.ok()) {
      allowlist_ = std::move(*loaded);
      allowlist_->Protect(root_);
    } else {
      spdlog::error("mount allowlist: {}; every additional mount is refused", loaded.status().message());
    }
  }
  std::vector<runner::AdditionalMount> req;
  for (const auto& m : g.additional_mounts) req.push_back({m.host_path, m.container_path, m.readonly});
  auto v = runner::ValidateAdditionalMounts(allowlist_ ? &*allowlist_ : nullptr, allowlist_path_, req, g.is_main);
  for (const auto& why : v.refusals) spdlog::warn("group {}: additional mount refused: {}", g.folder, why);
  for (const auto& m : v.mounts) {
    spdlog::info("group {}: additional mount {} -> {}{}", g.folder, m.host, m.container, m.readonly ? " (ro)" : "");
  }
  mounts_[g.folder] = std::move(v.mounts);
}

const std::vector<runner::Mount>& GroupMounts::For(const std::string& folder) const {
  static const std::vector<runner::Mount> none;
  auto it = mounts_.find(folder);
  return it == mounts_.end() ? none : it->second;
}

}  // namespace dropq::app
