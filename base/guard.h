#pragma once
// No exception crosses a libuv callback or a thread-pool job: every entry
// point the loop (or the pool) calls runs its body through Guard. The fix
// for what threw is always elsewhere (bytes from outside become text in
// base/text.h); this is the backstop that keeps the daemon up. An exception
// that concerns a job or a file is turned into that job's failure or that
// file's rejection by the caller's `on_error`, with the reason recorded; one
// that concerns nothing in particular is logged and the loop goes on.
#include <exception>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/text.h"

namespace dropq {

// What the exception in flight says (call only inside a catch block).
inline std::string CurrentExceptionText() {
  try {
    throw;
  } catch (const std::exception& e) {
    return text::MakeValid(e.what());
  } catch (...) {
    return "an exception of unknown type";
  }
}

// Runs `body()`. If it throws, logs "<where>: unexpected exception: ..." and
// calls `on_error(reason)` (itself guarded). True when the body returned.
template <typename Body, typename OnError>
bool Guard(const char* where, Body&& body, OnError&& on_error) noexcept {
  std::string reason;
  try {
    std::forward<Body>(body)();
    return true;
  } catch (...) {
    reason = CurrentExceptionText();
  }
  try {
    spdlog::critical("{}: unexpected exception: {}; carrying on", where, reason);
    std::forward<OnError>(on_error)("dropq internal error in " + std::string(where) + ": " + reason);
  } catch (...) {
    try {
      spdlog::critical("{}: the handler of an unexpected exception threw too: {}", where, CurrentExceptionText());
    } catch (...) {
    }
  }
  return false;
}

template <typename Body>
bool Guard(const char* where, Body&& body) noexcept {
  return Guard(where, std::forward<Body>(body), [](const std::string&) {});
}

}  // namespace dropq
