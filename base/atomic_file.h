#pragma once
// Files dropq writes for others (results, snapshots, logs, rejection reasons)
// appear whole or not at all: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory.
#include <filesystem>
#include <set>
#include <string_view>

#include "base/status.h"

namespace dropq {

// Flush::kNever leaves out both fsyncs: the file is still replaced whole by
// the rename (readers never see a partial one), but a crash may leave it
// empty or old. Only for derived files that start-up rebuilds whatever it
// finds (the snapshots, runner/snapshots.h).
enum class Flush { kNow, kNever };
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content, Flush flush = Flush::kNow);

// Directories made durable together. Create() makes a directory and any
// missing parents (like create_directories) and notes the parent of each
// one it made; Flush() fsyncs each noted parent once. Made in a batch and
// flushed after the last, many directories cost one journal commit and a
// cheap fsync per parent, not a commit each; a directory that already
// existed costs nothing, and nothing else on the filesystem is flushed (a
// syncfs would also write back every file a writer dropped, and whatever
// other programs have pending). A parent that cannot be opened for want of
// read permission is left unflushed.
class NewDirs {
 public:
  NewDirs() = default;
  NewDirs(const NewDirs&) = delete;
  NewDirs& operator=(const NewDirs&) = delete;

  Status Create(const std::filesystem::path& dir);
  Status Flush();
  // The parents waiting for Flush(), in order (tests).
  const std::set<std::filesystem::path>& pending() const { return parents_; }

 private:
  std::set<std::filesystem::path> parents_;
};

}  // namespace dropq
