#pragma once
// One daemon per root: store/dropq.lock is held with flock(2) for the
// daemon's lifetime and holds its pid. A second `dropq run` on the same root
// refuses to start, naming the holder, instead of corrupting the first's
// work. The kernel drops the lock when the process dies, kill -9 included,
// so a stale file never blocks a restart.
#include <string>

#include "base/status.h"

namespace dropq::app {

class InstanceLock {
 public:
  InstanceLock() = default;
  ~InstanceLock();
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // Conflict (with the holder's pid) when another process holds it.
  Status Acquire(const std::string& path);

  // Whether a daemon holds the lock at `path` now (the CLI's control
  // commands ask before waiting for a verdict). It takes a shared lock for
  // an instant when none does, so Acquire tries again for a moment before it
  // calls a held lock a conflict.
  static bool IsHeld(const std::string& path);

 private:
  int fd_ = -1;
};

}  // namespace dropq::app
