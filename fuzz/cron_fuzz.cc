// libFuzzer target: dropq::cron::Parse, then NextFire / NextFires on what
// parses, in UTC and in a fuzzer-chosen zone with awkward DST rules.
//
// Checked against jobs/cron.h: errors are InvalidArgument with a message;
// fire times are whole seconds, strictly increasing, strictly after `after`
// and within the horizon, and an accepted expression does fire; NextFire skips no fire (asking again from any
// instant between `after` and the fire gives the same fire); and in UTC each
// fire matches every field of the schedule, judged by a small independent
// matcher written from the header's rules.
//
// Input layout:
//   byte 0      the zone, an index into kZones
//   bytes 1-4   `after` in seconds since the epoch (little-endian, unsigned:
//               1970 to 2106, so the horizon stays well in date's range)
//   byte 5      milliseconds added to `after` (4 * byte), for the
//               "strictly after a fractional instant" rule
//   the rest    the cron expression
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <date/date.h>
#include <date/tz.h>

#include "jobs/cron.h"

namespace {

using dropq::TimeMs;
using dropq::cron::Schedule;

// UTC first; then zones whose transitions stress the DST rules: Lord Howe
// moves by 30 minutes, Santiago and Sao Paulo switch at midnight (a day can
// start at 01:00), Casablanca has a negative DST around Ramadan, Kathmandu
// has a +05:45 offset and no DST.
constexpr const char* kZones[] = {"UTC",
                                  "Europe/Berlin",
                                  "America/New_York",
                                  "Australia/Lord_Howe",
                                  "America/Santiago",
                                  "America/Sao_Paulo",
                                  "Africa/Casablanca",
                                  "Asia/Kathmandu"};
constexpr std::size_t kZoneCount = sizeof(kZones) / sizeof(kZones[0]);
const date::time_zone* g_zones[kZoneCount];  // [0] stays nullptr: UTC

// NextFire searches kHorizonYears from the second after `after`.
constexpr TimeMs kHorizonMs =
    std::chrono::duration_cast<std::chrono::milliseconds>(date::years(dropq::cron::kHorizonYears)).count() + 1000;

[[noreturn]] void Fail(const char* what, TimeMs after, TimeMs fire) {
  std::fprintf(stderr, "cron_fuzz: broken invariant: %s (after=%lld fire=%lld)\n", what, static_cast<long long>(after),
               static_cast<long long>(fire));
  std::abort();
}

// The day rules of jobs/cron.h, restated: L is the month's last day, "5L" its
// last Friday, "d#k" its k-th weekday d; with both day fields restricted
// either may match, otherwise both must (an unrestricted field has all bits).
bool DayMatches(const Schedule& s, date::year_month_day ymd) {
  const unsigned d = static_cast<unsigned>(ymd.day());
  const unsigned last = static_cast<unsigned>((ymd.year() / ymd.month() / date::last).day());
  const unsigned wd = date::weekday(date::sys_days(ymd)).c_encoding();
  const bool dom = s.days_of_month[d] || (s.last_day_of_month && d == last);
  const bool dow = s.days_of_week[wd] || (s.last_weekday[wd] && last - d < 7) || s.nth_weekday[(d - 1) / 7][wd];
  return s.dom_restricted && s.dow_restricted ? dom || dow : dom && dow;
}

bool MatchesUtc(const Schedule& s, TimeMs fire) {
  const date::sys_seconds t{std::chrono::seconds(fire / 1000)};
  const date::sys_days day = date::floor<date::days>(t);
  const date::year_month_day ymd(day);
  const date::hh_mm_ss<std::chrono::seconds> tod(t - day);
  return s.months[static_cast<unsigned>(ymd.month())] && DayMatches(s, ymd) && s.hours[tod.hours().count()] &&
         s.minutes[tod.minutes().count()] && s.seconds[tod.seconds().count()];
}

void CheckFires(const Schedule& s, const date::time_zone* tz, TimeMs after) {
  const std::vector<TimeMs> fires = dropq::cron::NextFires(s, tz, after, 3);
  // cron.h: every expression Parse accepts fires within the horizon, so
  // nullopt means "never". (Checked in UTC; zones only move fires by hours.)
  if (tz == nullptr && fires.empty()) Fail("an accepted expression fires within the horizon", after, 0);
  TimeMs prev = after;
  for (TimeMs fire : fires) {
    if (fire <= prev) Fail("fires are strictly increasing and after `after`", prev, fire);
    if (fire % 1000 != 0) Fail("fires are whole seconds", prev, fire);
    if (fire - prev > kHorizonMs) Fail("a fire lies within the horizon", prev, fire);
    if (tz == nullptr && !MatchesUtc(s, fire)) Fail("a UTC fire matches every field", prev, fire);
    // Nothing fires in (prev, fire), so asking from inside it finds `fire`.
    for (TimeMs from : {fire - 1, prev + (fire - prev) / 2}) {
      std::optional<TimeMs> again = dropq::cron::NextFire(s, tz, from);
      if (!again || *again != fire) Fail("NextFire from between two fires finds the second", from, fire);
    }
    prev = fire;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (std::size_t i = 1; i < kZoneCount; ++i) {
    auto tz = dropq::cron::LoadTimeZone(kZones[i]);
    if (!tz.ok()) {
      std::fprintf(stderr, "cron_fuzz: %s (is tzdata installed?)\n", tz.status().message().c_str());
      std::abort();
    }
    g_zones[i] = *tz;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 6) return 0;
  const date::time_zone* tz = g_zones[data[0] % kZoneCount];
  const std::uint32_t secs = data[1] | data[2] << 8 | data[3] << 16 | static_cast<std::uint32_t>(data[4]) << 24;
  const TimeMs after = TimeMs{secs} * 1000 + 4 * data[5];
  const std::string_view expr(reinterpret_cast<const char*>(data) + 6, size - 6);

  auto parsed = dropq::cron::Parse(expr);
  if (!parsed.ok()) {
    if (parsed.status().code() != dropq::Status::Code::kInvalidArgument || parsed.status().message().empty()) {
      Fail("an error is InvalidArgument with a message", after, 0);
    }
    return 0;
  }
  CheckFires(*parsed, nullptr, after);
  if (tz != nullptr) CheckFires(*parsed, tz, after);
  return 0;
}
