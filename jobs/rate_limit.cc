#include "jobs/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "base/units.h"

namespace dropq {
namespace {

std::optional<std::int64_t> UnitMs(std::string_view u) {
  struct Unit {
    std::string_view name;
    std::int64_t ms;
  };
  static constexpr Unit kUnits[] = {
      {"s", 1'000},        {"sec", 1'000},       {"second", 1'000},    {"m", 60'000},        {"min", 60'000},
      {"minute", 60'000},  {"h", 3'600'000},     {"hour", 3'600'000},  {"d", 86'400'000},    {"day", 86'400'000},
  };
  for (const auto& unit : kUnits) {
    if (u == unit.name) return unit.ms;
    // A plural: "secs", "minutes", "hours", "days" (not "ss" or "ms").
    if (unit.name.size() > 1 && u.size() == unit.name.size() + 1 && u.back() == 's' &&
        u.substr(0, unit.name.size()) == unit.name) {
      return unit.ms;
    }
  }
  return std::nullopt;
}

bool Fail(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return false;
}

}  // namespace

std::optional<RateLimit> ParseRateLimit(std::string_view text, std::string* why) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    Fail(why, "must be <count>/<period>, e.g. 10/min, 600/h, 5/30s");
    return std::nullopt;
  }
  const std::string_view count = text.substr(0, slash);
  const std::string_view period = text.substr(slash + 1);
  RateLimit r;
  auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), r.max);
  if (count.empty() || ec != std::errc() || end != count.data() + count.size() || r.max < 1 ||
      r.max > kMaxRateStarts) {
    Fail(why, "the count before `/` must be an integer from 1 to " + std::to_string(kMaxRateStarts));
    return std::nullopt;
  }
  if (auto unit = UnitMs(period)) {
    r.period_ms = *unit;
  } else {
    // A bare number would be milliseconds to ParseDurationMs; as a rate's
    // period it reads as seconds just as well, so neither is guessed.
    const bool bare = !period.empty() && std::all_of(period.begin(), period.end(), [](char c) {
      return c >= '0' && c <= '9';
    });
    auto ms = bare ? std::nullopt : ParseDurationMs(period);
    if (!ms) {
      Fail(why, "the period after `/` must be a unit (s, min, h, day) or a duration with one (30s, 5m, 2h)");
      return std::nullopt;
    }
    r.period_ms = *ms;
  }
  if (r.period_ms < 1'000) {
    Fail(why, "the period must be at least 1s");
    return std::nullopt;
  }
  return r;
}

std::string FormatRateLimit(const RateLimit& limit) {
  const std::string n = std::to_string(limit.max) + "/";
  const std::int64_t p = limit.period_ms;
  if (p == 1'000) return n + "s";
  if (p == 60'000) return n + "min";
  if (p == 3'600'000) return n + "h";
  if (p == 86'400'000) return n + "day";
  static constexpr std::pair<std::int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1'000, "s"}};
  for (const auto& [ms, unit] : kUnits) {
    if (p % ms == 0) return n + std::to_string(p / ms) + unit;
  }
  return n + std::to_string(p) + "ms";
}

void RateWindow::Record(TimeMs t) {
  // Starts come from one clock in order; a wall-clock step backwards may
  // still hand an earlier one, which is placed where it belongs.
  starts_.insert(std::upper_bound(starts_.begin(), starts_.end(), t), t);
  while (static_cast<std::int64_t>(starts_.size()) > limit_.max) starts_.pop_front();
}

void RateWindow::Unrecord(TimeMs t) {
  for (auto it = starts_.rbegin(); it != starts_.rend(); ++it) {
    if (*it == t) {
      starts_.erase(std::next(it).base());
      return;
    }
  }
}

std::optional<TimeMs> RateWindow::NextAllowed(TimeMs now) const {
  if (static_cast<std::int64_t>(starts_.size()) < limit_.max) return std::nullopt;
  const TimeMs at = starts_.front() + limit_.period_ms;
  if (at <= now) return std::nullopt;
  return at;
}

bool RateWindow::Allows(TimeMs now) const { return !NextAllowed(now).has_value(); }

RateState RateWindow::StateAt(TimeMs now) const {
  RateState s;
  const TimeMs since = now - limit_.period_ms;
  // Starts newer than `since` are in the window: the newest are at the back.
  for (auto it = starts_.rbegin(); it != starts_.rend() && *it > since; ++it) ++s.starts_in_window;
  s.next_start_at = NextAllowed(now);
  return s;
}

RateState RateStateOf(const RateLimit& limit, std::vector<TimeMs> starts, TimeMs now) {
  std::sort(starts.begin(), starts.end());
  RateWindow w(limit);
  // Only the newest `max` matter.
  const std::size_t keep = static_cast<std::size_t>(limit.max);
  for (std::size_t i = starts.size() > keep ? starts.size() - keep : 0; i < starts.size(); ++i) w.Record(starts[i]);
  return w.StateAt(now);
}

}  // namespace dropq
