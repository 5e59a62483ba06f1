#include "runner/mounts.h"

#include <filesystem>

namespace dropq::runner {

std::vector<Mount> GroupMounts(const Layout& layout, const std::string& group, bool is_main,
                               const std::string& session_dir) {
  std::vector<Mount> m;
  if (is_main) m.push_back({layout.root().string(), "/workspace/project", false});
  m.push_back({layout.GroupDir(group).string(), "/workspace/group", false});
  std::error_code ec;
  if (!is_main && std::filesystem::is_directory(layout.GlobalDir(), ec)) {
    m.push_back({layout.GlobalDir().string(), "/workspace/global", true});
  }
  m.push_back({layout.SessionDir(group).string(), session_dir, false});
  m.push_back({layout.IpcDir(group).string(), "/workspace/ipc", false});
  return m;
}

}  // namespace dropq::runner
