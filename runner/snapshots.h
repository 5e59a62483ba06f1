#pragma once
// The snapshots an agent reads from /workspace/ipc (NanoClaw's
// writeTasksSnapshot and writeGroupsSnapshot, docs/FILES.md "Snapshots"):
//
//   data/ipc/<group>/current_tasks.json    main: every task; others: their own
//   data/ipc/<group>/available_groups.json main: every group; others: none
//
// Each file is written atomically (base/atomic_file.h) and only when its
// content changed: current_tasks.json byte for byte, available_groups.json
// ignoring its `lastSync` stamp. The existing file is read without following
// links or blocking on a FIFO (the directory is the agent's, mounted rw);
// anything unreadable there is simply replaced.
#include <optional>
#include <span>
#include <string>

#include "jobs/layout.h"
#include "base/status.h"
#include "jobs/store.h"
#include "watcher/authorize.h"

namespace dropq {

// Writes both snapshots for every group in `groups` (or only for `only`, when
// given: e.g. just before that group's job starts). Call after every task or
// group change, and before every run. The first error is returned; the other
// groups are still written. With `refresh` (a refresh_groups file),
// available_groups.json is rewritten even when the list is unchanged, so
// its `lastSync` says the list was just checked.
//
// No file is flushed (Flush::kNever), at start-up or later: they are
// derived from the database, and a crash that leaves one empty or old is
// mended by the next start, which writes every snapshot that differs again
// before any agent runs. Flushing them cost a file and a directory fsync
// before each start whose group's lastActivity changed, and at start-up a
// flush per file (docs/PERFORMANCE.md).
Status WriteSnapshots(const Layout& layout, Store& store, std::span<const watcher::GroupIdentity> groups,
                      const std::optional<std::string>& only = std::nullopt, bool refresh = false);

}  // namespace dropq
