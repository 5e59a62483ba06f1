#pragma once
// Time for the whole core comes through a Clock, injected into constructors,
// so scheduling, retry and timeout logic is tested without sleeping.
// Times are milliseconds since the Unix epoch (UTC) — what SQLite stores
// (as ISO-8601 text) and what job files carry.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dropq {

using TimeMs = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for records and run_at comparisons.
  virtual TimeMs NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimeMs NowMs() const override;
};

// A clock tests move by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 1'800'000'000'000) : now_(start) {}
  TimeMs NowMs() const override { return now_; }
  void Set(TimeMs t) { now_ = t; }
  void Advance(TimeMs d) { now_ += d; }

 private:
  TimeMs now_;
};

// "2026-11-27T08:45:57.123Z": fixed width, so text order is time order.
std::string FormatIsoUtc(TimeMs t);
// Accepts ISO-8601 / RFC 3339 date-times with a 'Z' or ±HH:MM offset, with or
// without fractional seconds ("2026-11-27T08:45:57Z", "...57.5+01:00"), and a
// bare date-time without an offset, read as UTC. Returns nullopt otherwise.
std::optional<TimeMs> ParseIsoTime(std::string_view s);

}  // namespace dropq
