#pragma once
// Files dropq writes for others (results, snapshots, logs, rejection reasons)
// appear whole or not at all: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory.
#include <filesystem>
#include <string_view>

#include "base/status.h"

namespace dropq {

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content);

}  // namespace dropq
