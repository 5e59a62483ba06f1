#pragma once
// A fake CLI at the seam of the runtimes driven through a client (docker,
// podman, container, kubectl): a shell script that appends its argv (each
// argument followed by '|') as one line to argv.log beside it, then runs
// `body`, which sees the arguments as $1, $2, ...
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/fakes/temp_dir.h"

namespace dropq::testing {

struct FakeCli {
  TempDir tmp;
  std::filesystem::path bin;
  std::filesystem::path log;

  FakeCli(const std::string& name, const std::string& body)
      : bin(std::filesystem::canonical(tmp.path()) / name),
        log(std::filesystem::canonical(tmp.path()) / "argv.log") {
    WriteFile(bin, "#!/bin/sh\n{ printf '%s|' \"$@\"; printf '\\n'; } >> '" + log.string() + "'\n" + body + "\n");
    chmod(bin.c_str(), 0755);
  }

  // One entry per invocation, in order.
  std::vector<std::string> Calls() const {
    std::vector<std::string> calls;
    if (!std::filesystem::exists(log)) return calls;
    std::string text = ReadFile(log), line;
    for (char c : text) {
      if (c == '\n') {
        calls.push_back(line);
        line.clear();
      } else {
        line.push_back(c);
      }
    }
    return calls;
  }
};

}  // namespace dropq::testing
