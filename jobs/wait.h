#pragma once
// Waiting on another process's effects from the CLI (enqueue --wait, logs
// --follow) by watching, not by busy polling: `ready` is checked at once, then
// again whenever something changes in one of `dirs` (libuv fs events: the
// group's results/ and errors/, or store/ where every database commit touches
// dropq.db-wal). As a safety net for a missed event or a directory that did
// not exist yet, it is also re-checked on a backoff timer: 100 ms, doubling
// up to 2 s.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

namespace dropq::app {

// True once `ready()` returned true; false when timeout_ms (> 0) passed
// first. timeout_ms <= 0 waits for as long as it takes.
bool WaitUntilReady(const std::vector<std::filesystem::path>& dirs, const std::function<bool()>& ready,
                    std::int64_t timeout_ms);

}  // namespace dropq::app
