#include "watcher/claim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "base/self_pid.h"
#include "base/text.h"
#include "base/unique_fd.h"

namespace dropq::watcher {
namespace {

std::string ErrnoText(int e) { return std::strerror(e); }

using Fd = UniqueFd;

std::string FileTypeName(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISLNK(m)) return "a symlink";
  return "not a regular file";
}

}  // namespace

std::optional<std::string> DroppedNameProblem(std::string_view name) {
  if (!text::IsValidUtf8(name)) return "the file name is not valid UTF-8";
  if (name.size() > kMaxDroppedNameBytes) {
    return "the file name is " + std::to_string(name.size()) + " bytes, over the " +
           std::to_string(kMaxDroppedNameBytes) + "-byte limit";
  }
  if (text::HasControlCharacter(name)) return "the file name holds a control character";
  return std::nullopt;
}

std::string NewClaimToken(TimeMs now) {
  static std::atomic<std::uint64_t> counter{0};
  return std::to_string(now) + "-" + std::to_string(SelfPid()) + "-" + std::to_string(++counter);
}

namespace {

constexpr std::string_view kErrorSuffix = ".error.json";
constexpr std::size_t kNameMax = 255;  // NAME_MAX on Linux and macOS
// The .error.json is written atomically, first as ".<name>.tmp-<pid>-<n>"
// (base/atomic_file.cc): that name must fit too.
constexpr std::size_t kAtomicTmpBytes = 32;

bool FitsErrors(std::size_t moved_name_bytes) {
  return moved_name_bytes + kErrorSuffix.size() + kAtomicTmpBytes <= kNameMax;
}

}  // namespace

bool NeedsSafeErrorsName(const std::string& group, const std::string& name) {
  return DroppedNameProblem(name).has_value() || !FitsErrors(group.size() + 1 + name.size());
}

std::string ErrorsFileName(const std::string& group, const std::string& name, const std::string& token, bool taken) {
  if (!NeedsSafeErrorsName(group, name)) {
    if (!taken) return group + "-" + name;
    std::string with_token = group + "-" + token + "-" + name;
    if (FitsErrors(with_token.size())) return with_token;
  }
  std::string prefix = group + "-" + token + "-";
  const std::size_t budget = kNameMax - kErrorSuffix.size() - kAtomicTmpBytes;
  std::size_t room = budget - std::min(prefix.size(), budget - 1);
  return prefix + text::ForFileName(name, room);
}

void MoveToErrors(const std::filesystem::path& errors_dir, const ClaimedFile& f, const std::string& reason,
                  TimeMs now) {
  std::error_code ec;
  bool taken = std::filesystem::exists(std::filesystem::symlink_status(errors_dir / (f.group + "-" + f.name), ec));
  std::filesystem::path dest = errors_dir / ErrorsFileName(f.group, f.name, f.token, taken);
  nlohmann::json why = {{"file", text::ForLog(f.name)},
                        {"group", f.group},
                        {"reason", reason},
                        {"rejectedAt", FormatIsoUtc(now)},
                        {"movedTo", dest.filename().string()}};
  if (DroppedNameProblem(f.name)) {
    // The exact bytes, since "file" could only show them escaped.
    static const char* kHex = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : f.name) {
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 0xf]);
    }
    why["fileHex"] = hex;
  }
  // The reason first: a file in errors/ always has its explanation beside it.
  if (Status s = WriteFileAtomic(dest.string() + std::string(kErrorSuffix), text::Dump(why, 2) + "\n"); !s.ok()) {
    spdlog::error("cannot write rejection reason: {}", s.message());
  }
  if (::rename(f.path.c_str(), dest.c_str()) != 0) {
    spdlog::error("cannot move {} to {}: {}", f.path.string(), dest.string(), std::strerror(errno));
  }
}

Result<ClaimedFile> ClaimFile(const std::string& group, const std::filesystem::path& tasks_dir, const std::string& name,
                              const std::filesystem::path& claimed_dir, TimeMs now) {
  ClaimedFile c;
  c.group = group;
  c.name = name;
  c.token = NewClaimToken(now);
  c.path = claimed_dir / (c.token + "." + name);
  std::filesystem::path from = tasks_dir / name;
  // rename(2) moves a symlink itself, never its target.
  if (::rename(from.c_str(), c.path.c_str()) != 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound(from.string() + " is gone");
    return Status::IOError("cannot claim " + from.string() + ": " + ErrnoText(e));
  }
  return c;
}

std::optional<ClaimedFile> ParseClaimedName(const std::string& group, const std::filesystem::path& claimed_path) {
  std::string file = claimed_path.filename().string();
  auto dot = file.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == file.size()) return std::nullopt;
  ClaimedFile c;
  c.group = group;
  c.token = file.substr(0, dot);
  c.name = file.substr(dot + 1);
  c.path = claimed_path;
  return c;
}

Result<std::string> ReadClaimed(const std::filesystem::path& path, std::int64_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    int e = errno;
    if (e == ELOOP) return Status::InvalidArgument("is a symlink; dropq never follows links");
    return Status::IOError("cannot open: " + ErrnoText(e));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::IOError("cannot stat: " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("is " + FileTypeName(st.st_mode) + ", not a regular file");
  if (st.st_size > max_bytes) {
    return Status::InvalidArgument("is " + std::to_string(st.st_size) + " bytes, over the " +
                                   std::to_string(max_bytes) + "-byte limit");
  }
  std::string data;
  // Room for one byte past the size fstat gave: a file still growing fills
  // it and is read on. A regular file reads short only at its end, so the
  // usual file takes one read, not a second that returns 0.
  data.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t got = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("cannot read: " + ErrnoText(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (static_cast<std::int64_t>(got) > max_bytes) {
      return Status::InvalidArgument("grew past the " + std::to_string(max_bytes) + "-byte limit while read");
    }
    if (got < data.size()) break;
    data.resize(std::min<std::size_t>(data.size() * 2, static_cast<std::size_t>(max_bytes) + 1));
  }
  data.resize(got);
  return data;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

}  // namespace dropq::watcher
