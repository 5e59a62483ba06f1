#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

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
  if (flush == Flush::kNever) return Status::Ok();
  // The rename itself is durable only once the directory is synced.
  int dfd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status NewDirs::Create(const std::filesystem::path& dir) {
  // The missing levels, deepest first.
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0) break;
    if (errno != ENOENT) return Fail("cannot look at", p);
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0777) != 0 && errno != EEXIST) return Fail("cannot create", *it);
    // Made now, by this call or by another at the same time: either way
    // its entry in the parent is not known to be durable.
    std::filesystem::path parent = it->parent_path();
    parents_.insert(parent.empty() ? std::filesystem::path(".") : parent);
  }
  return Status::Ok();
}

Status NewDirs::Flush() {
  Status first;
  for (const auto& p : parents_) {
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    // A parent dropq may write in but not list (mode -wx) cannot be
    // opened to be flushed; that is no reason to stop.
    if (fd < 0 && (errno == EACCES || errno == EPERM)) continue;
    Status s = fd < 0 ? Fail("cannot open", p) : Status::Ok();
    if (fd >= 0 && ::fsync(fd) != 0) s = Fail("cannot fsync", p);
    if (fd >= 0) ::close(fd);
    if (first.ok() && !s.ok()) first = s;
  }
  parents_.clear();
  return first;
}

}  // namespace dropq
