#pragma once
// The cron engine: parse an expression once, then ask for the next fire time
// after any instant, in any IANA time zone. Pure: no clock reads, no I/O apart
// from LoadTimeZone (which reads the OS tz database once). docs/CRON.md is the
// contract; the behaviour follows cron-parser (the npm library NanoClaw used)
// so schedules moved from NanoClaw fire at the same instants, and every
// deliberate difference is listed there.
//
// Fire times are whole seconds. Fields are wall-clock times in the zone:
//  - a local time skipped by a spring-forward gap fires at the instant it
//    would have had under the offset before the gap ("02:30" on Berlin's
//    spring-forward day fires at 03:30 CEST), like cron-parser;
//  - a local time repeated by a fall-back fires once, at its first occurrence,
//    whatever the hour field: a job never fires twice for one scheduled
//    minute (cron-parser and Vixie cron fire hourly jobs in both).
#include <array>
#include <bitset>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace date {
class time_zone;
}

namespace dropq::cron {

// A parsed expression: one bit per allowed value of each field.
struct Schedule {
  std::bitset<60> seconds;
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;              // bit d is day d (1-31)
  bool last_day_of_month = false;             // "L" in day-of-month
  std::bitset<13> months;                     // bit m is month m (1-12)
  std::bitset<7> days_of_week;                // bit 0 is Sunday
  std::bitset<7> last_weekday;                // "5L": the last Friday of the month
  std::array<std::bitset<7>, 5> nth_weekday;  // [k-1] holds "d#k": the k-th d of the month
  // A day field is unrestricted only when written exactly "*" or "?". When
  // both day fields are restricted a day matches if EITHER matches (Vixie).
  bool dom_restricted = false;
  bool dow_restricted = false;
};

// Parses a 5-field ("min hour dom month dow") or 6-field (leading seconds)
// expression, or a macro (@daily ...). Errors are InvalidArgument naming the
// field and the reason: `day-of-month: 32 is out of range 1-31`.
Result<Schedule> Parse(std::string_view expr);

// How far NextFire looks (date::years: 365.2425 days each) before it calls a
// schedule "never". The longest real gap of an expression Parse accepts is 40
// years ("0 0 * 2 1#5", the fifth Monday of February: 2072, then 2112), so for
// a parsed expression nullopt cannot happen; the bound stops hand-built ones.
inline constexpr int kHorizonYears = 50;

// The first fire time strictly after `after` (ms since the epoch), in `tz`
// (nullptr means UTC). nullopt when nothing fires within kHorizonYears.
std::optional<TimeMs> NextFire(const Schedule& s, const date::time_zone* tz, TimeMs after);

// Up to `count` successive fire times after `after`, strictly increasing;
// fewer when the schedule stops firing within the horizon.
std::vector<TimeMs> NextFires(const Schedule& s, const date::time_zone* tz, TimeMs after, int count);

// An IANA zone by name ("Europe/Berlin"). "" is the system's zone
// (/etc/localtime; UTC when it is missing). Unknown names are InvalidArgument.
// The pointer stays valid for the life of the process.
Result<const date::time_zone*> LoadTimeZone(std::string_view name);

// The one rule for showing a task's time (docs/CRON.md, "Showing a task's
// times"), shared by `dropq tasks` and the dashboard: the wall clock of the
// task's own zone, then the zone's name — "2026-12-05 09:00:00 Europe/Paris".
// "" is the system's zone, named as the tz database names it. A zone this
// machine does not know falls back to UTC ISO ("2026-12-05T08:00:00.000Z").
std::string FormatInTaskZone(TimeMs t, std::string_view tz);

}  // namespace dropq::cron
