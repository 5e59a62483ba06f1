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
  // Monotonic time from an arbitrary origin: what elapsed, whatever the
  // wall clock did meanwhile (the task timer notices a wall-clock step by
  // comparing the two).
  virtual TimeMs MonotonicMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimeMs NowMs() const override;
  TimeMs MonotonicMs() const override;
};

// A clock tests move by hand: Advance() is time passing (both clocks move),
// Set() is a step of the wall clock alone (NTP, a suspended laptop).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 1'800'000'000'000) : now_(start) {}
  TimeMs NowMs() const override {
    if (per_read_ != 0) {  // never a write otherwise: other threads may read it
      now_ += per_read_;
      mono_ += per_read_;
    }
    return now_;
  }
  TimeMs MonotonicMs() const override { return mono_; }
  void Set(TimeMs t) { now_ = t; }
  void Advance(TimeMs d) {
    now_ += d;
    mono_ += d;
  }
  // Every NowMs() first moves both clocks this much (0, the default: never):
  // time passing while the code under test waits on the clock.
  void AdvancePerRead(TimeMs d) { per_read_ = d; }

 private:
  mutable TimeMs now_;
  mutable TimeMs mono_ = 1'000'000;
  TimeMs per_read_ = 0;
};

// "2026-11-27T08:45:57.123Z": fixed width, so text order is time order.
std::string FormatIsoUtc(TimeMs t);
// Accepts ISO-8601 / RFC 3339 date-times with a 'Z' or ±HH:MM offset, with or
// without fractional seconds ("2026-11-27T08:45:57Z", "...57.5+01:00"), and a
// bare date-time without an offset, read as UTC. Returns nullopt otherwise.
std::optional<TimeMs> ParseIsoTime(std::string_view s);

}  // namespace dropq
