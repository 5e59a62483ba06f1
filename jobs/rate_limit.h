#pragma once
// Per-group rate limits (docs/CONFIG.md, "Rate limits"): at most `max`
// attempt starts in any window of `period_ms`.
//
// A sliding window over start times, not a fixed bucket per minute: a fixed
// bucket lets 2N starts through across a bucket's edge (N at 59 s, N at
// 61 s), which is what a limit on a downstream API must not do. The window
// keeps only the newest `max` start times, so its memory is bounded by the
// limit and every question is O(1): a start is allowed when fewer than `max`
// are kept or the oldest kept is at least `period_ms` old; otherwise the next
// start is allowed at oldest + period_ms.
//
// Pure: no clock of its own, `now` is passed in, so tests pin every instant.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace dropq {

struct RateLimit {
  std::int64_t max = 0;        // starts allowed per window, 1..kMaxRateStarts
  std::int64_t period_ms = 0;  // the window's length, >= 1 s
  bool operator==(const RateLimit&) const = default;
};

// The window keeps `max` start times per group: bounded so a typo (`rate:
// 10000000/day`) cannot make the dispatcher hold millions of them.
inline constexpr std::int64_t kMaxRateStarts = 100'000;

// "10/min", "600/h", "5/30s", "1/90m": a count, a slash, and a period
// that is either a unit alone (s, sec, second, m, min, minute, h, hour,
// d, day; a plural `s` allowed) or a duration with a unit (base/units.h:
// "30s", "5m", "1h"). A bare number as the period is refused (seconds or
// milliseconds? the reader cannot tell). nullopt, with `why` filled when
// given, for anything else, a count outside 1..kMaxRateStarts or a period
// under one second.
std::optional<RateLimit> ParseRateLimit(std::string_view text, std::string* why = nullptr);

// "10/min" for the units above when the period is exactly one of them,
// otherwise "<count>/<period>" with the period as base/units.h writes it
// ("5/30s", "3/90m").
std::string FormatRateLimit(const RateLimit& limit);

// What a window says at `now`: how many starts it counts and when the next
// one may happen (nullopt: now).
struct RateState {
  std::int64_t starts_in_window = 0;
  std::optional<TimeMs> next_start_at;  // set only while the window is full
  bool limited() const { return next_start_at.has_value(); }
};

class RateWindow {
 public:
  explicit RateWindow(RateLimit limit) : limit_(limit) {}

  const RateLimit& limit() const { return limit_; }
  // A start at `t` (times arrive in order; an earlier one is placed in order).
  void Record(TimeMs t);
  // Forgets the newest start at `t` (a start recorded and then undone).
  void Unrecord(TimeMs t);
  // True when a start at `now` keeps the limit.
  bool Allows(TimeMs now) const;
  // When a start is allowed again; nullopt when it is allowed at `now`.
  std::optional<TimeMs> NextAllowed(TimeMs now) const;
  RateState StateAt(TimeMs now) const;

 private:
  RateLimit limit_;
  std::deque<TimeMs> starts_;  // oldest first, at most limit_.max
};

// The state of a window fed `starts` (any order) under `limit` at `now`: for
// readers (status, the dashboard) that rebuild it from the database.
RateState RateStateOf(const RateLimit& limit, std::vector<TimeMs> starts, TimeMs now);

}  // namespace dropq
