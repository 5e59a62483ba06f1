#pragma once
// This process's id. glibc makes every getpid() a system call; claim tokens
// and temporary file names ask for it once per file, so it is read once
// (and again in the child of a fork). Header-only, so the fuzz targets that
// compile a few of base's sources need nothing more.
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>

namespace dropq {

inline pid_t SelfPid() {
  static std::atomic<pid_t> pid{0};
  static const bool registered = [] {
    pid.store(::getpid());
    ::pthread_atfork(nullptr, nullptr, [] { pid.store(::getpid()); });
    return true;
  }();
  (void)registered;
  return pid.load(std::memory_order_relaxed);
}

}  // namespace dropq
