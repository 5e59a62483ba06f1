#pragma once
// Waiting on the daemon from another process (the CLI's enqueue --wait and
// logs --follow, the end-to-end tests): the one signal is the database
// (docs/DESIGN.md, "One signal to wait on": a job's events, a control file's
// `applied` or `rejected` event, the daemon's `ready` event), plus the files
// the daemon writes (results/, errors/, logs/).
//
// By watching, not by busy polling: `ready` is checked at once, then again
// whenever something changes in one of the watched folders (libuv fs events:
// store/, where every commit touches dropq.db-wal, or a group's results/ and
// errors/). As a safety net for a missed event or a folder that did not
// exist yet, it is also re-checked on a backoff timer: 100 ms, doubling up
// to 2 s.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "jobs/store.h"

namespace dropq {

// True once `ready()` returned true; false when timeout_ms (> 0) passed
// first. timeout_ms <= 0 waits for as long as it takes.
bool WaitUntilReady(const std::vector<std::filesystem::path>& dirs, const std::function<bool()>& ready,
                    std::int64_t timeout_ms);

// The database as the signal: `ready(store)` on a fresh read-only
// connection of the database at `db_path`, re-checked after every change in
// its folder (each commit) and in `also`. `store` is null while there is no
// database it can read (not made yet, being migrated, a schema it does not
// know): a caller that also waits on files still sees them then.
bool WaitForStore(const std::filesystem::path& db_path, const std::function<bool(Store* store)>& ready,
                  std::int64_t timeout_ms, const std::vector<std::filesystem::path>& also = {});

}  // namespace dropq
