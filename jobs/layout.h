#pragma once
// The on-disk layout under `root`, NanoClaw-compatible (docs/FILES.md).
// Every path dropq touches is built here, so no other code concatenates
// user-influenced names into paths. Group folders are validated by config
// before they reach this class.
#include <filesystem>
#include <string>

#include "base/status.h"

namespace dropq {

class NewDirs;  // base/atomic_file.h

class Layout {
 public:
  explicit Layout(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path GroupDir(const std::string& g) const { return root_ / "groups" / g; }
  std::filesystem::path GroupLogsDir(const std::string& g) const { return GroupDir(g) / "logs"; }
  std::filesystem::path GlobalDir() const { return root_ / "groups" / "global"; }
  std::filesystem::path IpcDir(const std::string& g) const { return root_ / "data" / "ipc" / g; }
  std::filesystem::path TasksDir(const std::string& g) const { return IpcDir(g) / "tasks"; }
  std::filesystem::path MessagesDir(const std::string& g) const { return IpcDir(g) / "messages"; }
  std::filesystem::path ResultsDir(const std::string& g) const { return IpcDir(g) / "results"; }
  std::filesystem::path ErrorsDir() const { return root_ / "data" / "ipc" / "errors"; }
  std::filesystem::path SessionDir(const std::string& g) const { return root_ / "data" / "sessions" / g / ".claude"; }
  std::filesystem::path ClaimedDir(const std::string& g) const { return root_ / "data" / "claimed" / g; }
  std::filesystem::path StoreDir() const { return root_ / "store"; }
  std::filesystem::path DatabasePath() const { return StoreDir() / "dropq.db"; }
  // Held with flock(2) by the one daemon of this root (daemon/instance_lock.h).
  std::filesystem::path LockPath() const { return StoreDir() / "dropq.lock"; }

  // Creates every directory of the layout for group `g` (idempotent). The
  // ones it makes are durable when it returns, or, given a `batch`, after
  // the batch's Flush (many groups at start-up: base/atomic_file.h).
  Status CreateGroup(const std::string& g, NewDirs* batch = nullptr) const;
  // A directory a group can write into (tasks/, results/, logs/) must still
  // be a real directory when dropq uses it: a group that replaced it with a
  // symlink would otherwise make dropq read or write outside the group.
  // lstat, so the link itself is seen; IOError naming the path otherwise.
  static Status CheckRealDir(const std::filesystem::path& dir);

  // Creates the directories shared by all groups (store/, errors/,
  // groups/), durable when it returns.
  Status CreateCommon() const;

 private:
  std::filesystem::path root_;
};

}  // namespace dropq
