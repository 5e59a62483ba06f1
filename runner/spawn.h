#pragma once
// Starting an agent without copying the daemon: posix_spawn (glibc runs it
// as clone(CLONE_VM|CLONE_VFORK), so no page tables are copied and nothing
// is faulted in copy-on-write), where libuv 1.44's uv_spawn forks. With
// hundreds of jobs a second the fork of a daemon with a SQLite cache, a
// libuv loop and a dashboard's threads was most of the cost of a trivial
// job (docs/PERFORMANCE.md).
//
// The child gets its own session (setsid, so a stop reaches its whole
// process group), every signal at its default disposition (glibc leaves its
// two internal real-time signals, 32 and 33, ignored) and an empty mask, stdin/stdout/stderr on fresh pipes, and no other descriptor.
// Its exit is watched through a pidfd (Linux ≥ 5.3): readable once the child
// has exited; the caller reaps it with Reap().
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace dropq::runner {

struct SpawnedChild {
  pid_t pid = -1;
  int pidfd = -1;      // readable when the child has exited
  int stdin_fd = -1;   // write end of the child's stdin
  int stdout_fd = -1;  // read end of its stdout
  int stderr_fd = -1;  // read end of its stderr
};

// argv[0] without a '/' is looked up in the PATH of `env` (the sandbox's
// environment, as execvpe would), not the daemon's. On failure nothing is
// left open and no child runs; the message is the errno text.
Result<SpawnedChild> SpawnWithPipes(const std::vector<std::string>& argv, const std::vector<std::string>& env);

// How a child ended.
struct ChildExit {
  int exit_code = 0;    // when it exited
  int term_signal = 0;  // when a signal ended it (then exit_code is 0)
};

// Reaps `pid` if it has exited (never blocks); nullopt while it runs.
std::optional<ChildExit> Reap(pid_t pid);

}  // namespace dropq::runner
