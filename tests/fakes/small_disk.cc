#include "tests/fakes/small_disk.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace dropq::testing {
namespace {

bool WriteProcFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f.flush());
}

// A mount namespace of our own: directly when privileged, else inside a
// new user namespace where we are root.
std::string EnterMountNamespace() {
  if (::unshare(CLONE_NEWNS) == 0) return "";
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    return std::string("cannot unshare a user and mount namespace: ") + std::strerror(errno);
  }
  WriteProcFile("/proc/self/setgroups", "deny");
  if (!WriteProcFile("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
      !WriteProcFile("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) {
    return "cannot write uid_map/gid_map";
  }
  return "";
}

}  // namespace

SmallDisk::SmallDisk(const std::filesystem::path& where, std::int64_t bytes) : where_(where) {
  std::filesystem::create_directories(where_);
  why_ = EnterMountNamespace();
  if (!why_.empty()) return;
  // Mounts made here must not leak back to the host's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    why_ = std::string("cannot make mounts private: ") + std::strerror(errno);
    return;
  }
  std::string opts = "size=" + std::to_string(bytes);
  if (::mount("tmpfs", where_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
    why_ = std::string("cannot mount a tmpfs: ") + std::strerror(errno);
    return;
  }
  mounted_ = true;
}

SmallDisk::~SmallDisk() {
  if (mounted_) ::umount2(where_.c_str(), MNT_DETACH);
}

std::int64_t SmallDisk::Fill(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 0;
  std::vector<char> block(64 * 1024, 'x');
  std::int64_t total = 0;
  for (;;) {
    ssize_t n = ::write(fd, block.data(), block.size());
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      // A short write leaves the last partial block; try byte-sized writes
      // until nothing at all fits.
      if (block.size() > 1) {
        block.resize(block.size() / 2);
        continue;
      }
      break;
    }
    total += n;
  }
  ::close(fd);
  return total;
}

}  // namespace dropq::testing
