#pragma once
// Files dropq writes for others (results, snapshots, logs, rejection reasons)
// appear whole or not at all: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory.
#include <filesystem>
#include <string_view>

#include "base/status.h"

namespace dropq {

// Flush::kLater leaves out both fsyncs: the file is still replaced whole by
// the rename (readers never see a partial one), but it is durable only after
// a SyncFilesystem. For many derived files written together (the snapshots
// of every group at start-up): one flush at the end, not two per file.
enum class Flush { kNow, kLater };
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content, Flush flush = Flush::kNow);

// Flushes the filesystem holding `path` (syncfs): every file written and
// directory created on it so far is durable after it returns.
Status SyncFilesystem(const std::filesystem::path& path);

}  // namespace dropq
