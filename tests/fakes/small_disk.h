#pragma once
// A small real filesystem for storage-fault tests: a tmpfs of a few MiB
// mounted on a directory, visible to this test process and the processes
// it starts (a private mount namespace; as an unprivileged user, inside a
// user namespace too). ctest runs each test case in its own process, so the
// namespace ends with the test.
#include <cstdint>
#include <filesystem>
#include <string>

namespace dropq::testing {

class SmallDisk {
 public:
  // Mounts; ok() says whether it worked and why() why not.
  SmallDisk(const std::filesystem::path& where, std::int64_t bytes);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }

  // Writes `path` until the disk is full (ENOSPC); returns the bytes written.
  static std::int64_t Fill(const std::filesystem::path& path);

 private:
  std::filesystem::path where_;
  bool mounted_ = false;
  std::string why_;
};

}  // namespace dropq::testing
