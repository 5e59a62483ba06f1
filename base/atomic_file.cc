#include "base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/self_pid.h"

namespace dropq {
namespace {

Status Fail(const std::string& what, const std::filesystem::path& p) {
  std::string msg = what + " " + p.string() + ": " + std::strerror(errno);
  return errno == ENOSPC || errno == EDQUOT ? Status::NoSpace(std::move(msg)) : Status::IOError(std::move(msg));
}

}  // namespace

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content, Flush flush) {
  static std::atomic<std::uint64_t> counter{0};
  // Hidden and not ending in ".json": a watcher of this directory ignores it.
  std::filesystem::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp-" +
                                                    std::to_string(SelfPid()) + "-" + std::to_string(++counter));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Fail("cannot create", tmp);
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Fail("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (flush == Flush::kNow && ::fsync(fd) != 0) {
    Status s = Fail("cannot fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Fail("cannot rename onto", path);
    ::unlink(tmp.c_str());
    return s;
  }
  if (flush == Flush::kLater) return Status::Ok();
  // The rename itself is durable only once the directory is synced.
  int dfd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status SyncFilesystem(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail("cannot open", path);
  if (::syncfs(fd) != 0) {
    Status s = Fail("cannot flush the filesystem of", path);
    ::close(fd);
    return s;
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace dropq
