// `dropq init DIR` (docs/CLI.md): a starter config and its root.
#include <filesystem>
#include <iostream>
#include <system_error>

#include "base/atomic_file.h"
#include "cli/cli_commands.h"

namespace dropq::app {
namespace {

// Relative paths in a config are relative to its folder (docs/CONFIG.md), so
// DIR can be moved as a whole.
constexpr const char* kStarterConfig = R"(# dropq starter config, written by `dropq init`. Every key is documented in
# docs/CONFIG.md. Relative paths are relative to this file's folder.

root: ./var                   # groups/, data/ (drop job files in data/ipc/<folder>/tasks/), store/
runtime: bwrap                # every agent in a bubblewrap sandbox (Debian: bubblewrap)

# The agent's argv inside the sandbox. This one only answers "hello" in the
# container protocol (docs/FILES.md); put your own agent here and bind it in
# with bwrap.ro_binds.
agent:
  - /bin/sh
  - -c
  - |
    cat >/dev/null
    echo '---NANOCLAW_OUTPUT_START---'
    echo '{"status":"success","result":"hello from dropq"}'
    echo '---NANOCLAW_OUTPUT_END---'

max_concurrent: 2
timeout: 5m
log_level: info

bwrap:
  network: false

groups:
  - folder: main
    name: Main
    jid: main@dropq
    main: true
)";

}  // namespace

int CmdInit(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path base(dir);
  const fs::path config = base / "dropq.yaml";
  std::error_code ec;
  if (fs::exists(config, ec) || fs::is_symlink(config, ec)) {
    std::cerr << "dropq: " << config.string()
              << " already exists; not overwriting it (remove it, or init another folder)\n";
    return kExitUsage;
  }
  const fs::path root = base / "var";
  for (const fs::path& d : {root / "groups" / "main" / "logs", root / "data" / "ipc" / "main" / "tasks",
                            root / "data" / "ipc" / "main" / "messages", root / "data" / "ipc" / "main" / "results",
                            root / "data" / "ipc" / "errors", root / "store"}) {
    fs::create_directories(d, ec);
    if (ec) {
      std::cerr << "dropq: cannot create " << d.string() << ": " << ec.message() << "\n";
      return kExitFailure;
    }
  }
  if (Status st = WriteFileAtomic(config.string(), kStarterConfig); !st.ok()) {
    std::cerr << "dropq: cannot write " << config.string() << ": " << st.message() << "\n";
    return kExitFailure;
  }
  std::cout << "wrote " << config.string() << "\n"
            << "created " << root.string() << "/ (groups/main, data/ipc/main/tasks, store)\n"
            << "next: dropq run --config " << config.string() << "\n"
            << "then: dropq enqueue --config " << config.string() << " --group main --prompt hello\n";
  return kExitOk;
}

}  // namespace dropq::app
