#pragma once
// What a group's sandbox sees (NanoClaw's model; docs/FILES.md, "Mounts"):
//   main:       root rw at /workspace/project, its folder rw at /workspace/group
//   any other:  its folder rw at /workspace/group, groups/global ro at
//               /workspace/global when it exists
//   every one:  its own session dir rw at `session_dir` (default
//               /home/node/.claude) and its own IPC dir rw at /workspace/ipc
// No group ever sees another group's folder, IPC dir or session, nor
// data/claimed/ (main sees root, which holds it: main is trusted, as in
// NanoClaw).
#include <string>
#include <vector>

#include "jobs/layout.h"

namespace dropq::runner {

struct Mount {
  std::string host;       // absolute host path
  std::string container;  // absolute path inside the sandbox
  bool readonly = false;
};

std::vector<Mount> GroupMounts(const Layout& layout, const std::string& group, bool is_main,
                               const std::string& session_dir);

}  // namespace dropq::runner
