// Cron engine. Design:
//
// Parse turns each field into a bitset (plus the L / nL / n#k flags), so
// matching a value is one bit test and finding the next allowed value is a
// short scan, never a list walk.
//
// NextFire works on the zone's offset segments (date::sys_info: a span of UTC
// with one offset). Inside a segment local time is UTC plus a constant, so we
// search local wall-clock time field by field (next matching month, then day,
// then hour, minute, second) and convert back; if nothing fires before the
// segment ends we jump to the next segment. A zone without DST is one
// segment; a DST zone adds two per year. The two DST rules live at segment
// starts:
//  - after a spring-forward, local times in the gap fire at (local - offset
//    before the gap), i.e. shifted later by the gap's length (cron-parser's
//    behaviour: "30 2" on Berlin's spring-forward day fires at 03:30 CEST);
//  - after a fall-back, the repeated local times are skipped in the second
//    occurrence unless the hour field allows all 24 hours (cron-parser's
//    behaviour: only then does it fire in both occurrences).
// Considered and discarded: stepping minute by minute (years of work for rare
// schedules) and tz->to_sys per candidate (needs choose::earliest/latest
// case analysis per candidate and still has to deduplicate shifted times).
#include "jobs/cron.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <exception>
#include <string>

#if !defined(USE_OS_TZDB) || !USE_OS_TZDB || !defined(HAS_STRING_VIEW) || !HAS_STRING_VIEW
// Debian's libdate-tz is built with these; a mismatch changes date::time_zone's
// layout and locate_zone's signature. CMake's date::date-tz target sets both.
#error "compile with -DUSE_OS_TZDB=1 -DHAS_STRING_VIEW=1 (link date::date-tz)"
#endif
#include <date/date.h>
#include <date/tz.h>

namespace dropq::cron {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;
using LocalSec = date::local_seconds;

// ---- parsing -----------------------------------------------------------------

enum class Field { kSecond, kMinute, kHour, kDayOfMonth, kMonth, kDayOfWeek };

struct FieldSpec {
  Field field;
  const char* name;
  int min;
  int max;
};

constexpr FieldSpec kSpecs[] = {
    {Field::kSecond, "second", 0, 59}, {Field::kMinute, "minute", 0, 59},
    {Field::kHour, "hour", 0, 23},     {Field::kDayOfMonth, "day-of-month", 1, 31},
    {Field::kMonth, "month", 1, 12},   {Field::kDayOfWeek, "day-of-week", 0, 7},
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// cron-parser's predefined expressions (seconds first), plus @midnight from
// Vixie cron.
struct Macro {
  const char* name;
  const char* fields;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 0 1 1 *"},     {"@annually", "0 0 0 1 1 *"},   {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"},     {"@daily", "0 0 0 * * *"},      {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},     {"@minutely", "0 * * * * *"},   {"@secondly", "* * * * * *"},
    {"@weekdays", "0 0 0 * * 1-5"}, {"@weekends", "0 0 0 * * 0,6"},
};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Status FieldError(const FieldSpec& spec, const std::string& reason) {
  return Status::InvalidArgument(std::string(spec.name) + ": " + reason);
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// A number or (month / day-of-week only) a three-letter name. Range checks
// happen here so every caller reports `N is out of range MIN-MAX` alike.
Result<int> ParseValue(const FieldSpec& spec, std::string_view tok, std::string_view item) {
  if (tok.empty()) return FieldError(spec, "bad value " + Quoted(item));
  int v = 0;
  if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
    auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (end != tok.data() + tok.size()) return FieldError(spec, "bad value " + Quoted(item));
    if (ec != std::errc() || v < spec.min || v > spec.max) {
      return FieldError(
          spec, std::string(tok) + " is out of range " + std::to_string(spec.min) + "-" + std::to_string(spec.max));
    }
    return v;
  }
  const std::string up = Upper(tok);
  if (spec.field == Field::kMonth) {
    for (int i = 0; i < 12; ++i)
      if (up == kMonthNames[i]) return i + 1;
  } else if (spec.field == Field::kDayOfWeek) {
    for (int i = 0; i < 7; ++i)
      if (up == kDayNames[i]) return i;
  }
  if (std::all_of(tok.begin(), tok.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }) &&
      (spec.field == Field::kMonth || spec.field == Field::kDayOfWeek)) {
    return FieldError(spec, "unknown name " + Quoted(tok));
  }
  return FieldError(spec, "bad value " + Quoted(item));
}

// Sets the bits for one list item. Day-of-week values are folded mod 7 so 7
// is Sunday like 0.
Status ParseItem(const FieldSpec& spec, std::string_view item, Schedule& s, std::bitset<64>& bits) {
  const bool dow = spec.field == Field::kDayOfWeek;
  if (spec.field == Field::kDayOfMonth && (item == "L" || item == "l")) {
    s.last_day_of_month = true;
    return Status::Ok();
  }
  if (dow) {
    if (auto hash = item.find('#'); hash != std::string_view::npos) {
      auto day = ParseValue(spec, item.substr(0, hash), item);
      if (!day.ok()) return day.status();
      std::string_view nth = item.substr(hash + 1);
      if (nth.size() != 1 || nth[0] < '1' || nth[0] > '5') {
        return FieldError(spec, "bad occurrence " + Quoted(item) + " (the number after # is 1-5)");
      }
      s.nth_weekday[nth[0] - '1'].set(*day % 7);
      return Status::Ok();
    }
    if (item == "L" || item == "l") return FieldError(spec, "\"L\" needs a weekday, e.g. \"5L\" for the last Friday");
    // "5L" or "FRIL"; a bare name ending in l ("JUL") is left to ParseValue.
    std::string_view before_l = item.substr(0, item.size() - 1);
    const bool digits = !before_l.empty() && std::all_of(before_l.begin(), before_l.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    if ((item.back() == 'L' || item.back() == 'l') && (digits || before_l.size() == 3)) {
      auto day = ParseValue(spec, before_l, item);
      if (!day.ok()) return day.status();
      s.last_weekday.set(*day % 7);
      return Status::Ok();
    }
  }

  std::string_view base = item;
  int step = 1;
  bool stepped = false;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    base = item.substr(0, slash);
    std::string_view st = item.substr(slash + 1);
    auto [end, ec] = std::from_chars(st.data(), st.data() + st.size(), step);
    if (st.empty() || end != st.data() + st.size() || ec != std::errc() || step < 1) {
      return FieldError(spec, "bad step " + Quoted(item));
    }
    stepped = true;
  }
  int lo = 0;
  int hi = 0;
  if (base == "*" || base == "?") {
    lo = spec.min;
    hi = spec.max;
  } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
    auto a = ParseValue(spec, base.substr(0, dash), item);
    if (!a.ok()) return a.status();
    auto b = ParseValue(spec, base.substr(dash + 1), item);
    if (!b.ok()) return b.status();
    lo = *a;
    hi = *b;
    if (lo > hi) {
      std::string why = "range " + std::string(base) + " goes backwards";
      if (dow) why += " (write 7 for Sunday at the end of a range)";
      return FieldError(spec, why);
    }
  } else {
    auto a = ParseValue(spec, base, item);
    if (!a.ok()) return a.status();
    lo = *a;
    hi = stepped ? spec.max : *a;  // "5/15" means 5-max/15, as in cron-parser
  }
  // Stop before adding a step that would pass hi: a huge step must not
  // overflow int.
  for (int v = lo;; v += step) {
    bits.set(dow ? v % 7 : v);
    if (hi - v < step) break;
  }
  return Status::Ok();
}

template <std::size_t N>
std::bitset<N> Narrow(const std::bitset<64>& wide) {
  std::bitset<N> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = wide[i];
  return out;
}

Status ParseField(const FieldSpec& spec, std::string_view text, Schedule& s) {
  std::bitset<64> bits;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) return FieldError(spec, "empty list item in " + Quoted(text));
    if (Status st = ParseItem(spec, item, s, bits); !st.ok()) return st;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  switch (spec.field) {
    case Field::kSecond:
      s.seconds = Narrow<60>(bits);
      break;
    case Field::kMinute:
      s.minutes = Narrow<60>(bits);
      break;
    case Field::kHour:
      s.hours = Narrow<24>(bits);
      break;
    case Field::kDayOfMonth:
      s.days_of_month = Narrow<32>(bits);
      break;
    case Field::kMonth:
      s.months = Narrow<13>(bits);
      break;
    case Field::kDayOfWeek:
      s.days_of_week = Narrow<7>(bits);
      break;
  }
  return Status::Ok();
}

// cron-parser rejects a day-of-month that no selected month has ("0 0 30 2 *")
// instead of accepting a task that never fires; so do we. With day-of-week
// restricted too, the OR rule still lets the weekdays fire, so no error.
Status CheckDaysExist(const Schedule& s, std::string_view dom_text) {
  if (!s.dom_restricted || s.dow_restricted || s.last_day_of_month) return Status::Ok();
  static constexpr int kMaxDays[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int first_day = 1;
  while (first_day <= 31 && !s.days_of_month[first_day]) ++first_day;
  std::string months;
  for (int m = 1; m <= 12; ++m) {
    if (!s.months[m]) continue;
    if (first_day <= kMaxDays[m]) return Status::Ok();
    months += (months.empty() ? "" : ",") + std::string(kMonthNames[m - 1]);
  }
  return FieldError(kSpecs[3], Quoted(dom_text) + " never occurs in " + months);
}

// ---- matching ----------------------------------------------------------------

bool DayMatches(const Schedule& s, const date::year_month_day& ymd) {
  const unsigned d = static_cast<unsigned>(ymd.day());
  const unsigned last = static_cast<unsigned>((ymd.year() / ymd.month() / date::last).day());
  const unsigned wd = date::weekday(date::sys_days(ymd)).c_encoding();
  const bool dom = s.days_of_month[d] || (s.last_day_of_month && d == last);
  const bool dow = s.days_of_week[wd] || (s.last_weekday[wd] && d + 7 > last) || s.nth_weekday[(d - 1) / 7][wd];
  if (s.dom_restricted && s.dow_restricted) return dom || dow;
  return dom && dow;  // an unrestricted field has every bit set
}

// Index of the first set bit at or after `from`, or -1.
template <std::size_t N>
int NextSet(const std::bitset<N>& bits, int from) {
  for (int i = from; i < static_cast<int>(N); ++i)
    if (bits[i]) return i;
  return -1;
}

// The earliest local time in [from, limit) that matches every field.
std::optional<LocalSec> NextLocal(const Schedule& s, LocalSec from, LocalSec limit) {
  while (from < limit) {
    const date::local_days day = date::floor<date::days>(from);
    const date::year_month_day ymd(day);
    if (!s.months[static_cast<unsigned>(ymd.month())]) {
      from = date::local_days((ymd.year() / ymd.month() / 1) + date::months(1));
      continue;
    }
    if (!DayMatches(s, ymd)) {
      from = day + date::days(1);
      continue;
    }
    const auto tod = (from - day).count();
    int h = static_cast<int>(tod / 3600);
    int m = static_cast<int>(tod / 60 % 60);
    int sec = static_cast<int>(tod % 60);
    const int nh = NextSet(s.hours, h);
    if (nh < 0) {
      from = day + date::days(1);
      continue;
    }
    if (nh != h) h = nh, m = 0, sec = 0;
    const int nm = NextSet(s.minutes, m);
    if (nm < 0) {
      from = day + hours(h + 1);
      continue;
    }
    if (nm != m) m = nm, sec = 0;
    const int ns = NextSet(s.seconds, sec);
    if (ns < 0) {
      from = day + hours(h) + minutes(m + 1);
      continue;
    }
    const LocalSec found = day + hours(h) + minutes(m) + seconds(ns);
    if (found < limit) return found;
    return std::nullopt;
  }
  return std::nullopt;
}

// A span of UTC [begin, end) during which the zone's offset is constant.
struct Segment {
  sys_seconds begin;
  sys_seconds end;
  seconds offset;
};

Segment SegmentAt(const date::time_zone* tz, sys_seconds t) {
  if (tz == nullptr) return {sys_seconds::min(), sys_seconds::max(), seconds(0)};
  const date::sys_info info = tz->get_info(t);
  return {info.begin, info.end, info.offset};
}

LocalSec ToLocal(sys_seconds t, seconds offset) { return LocalSec(t.time_since_epoch() + offset); }
sys_seconds ToSys(LocalSec l, seconds offset) { return sys_seconds(l.time_since_epoch() - offset); }

}  // namespace

Result<Schedule> Parse(std::string_view expr) {
  std::vector<std::string_view> fields;
  std::string expanded;
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  for (std::size_t i = 0; i < expr.size();) {
    if (is_space(expr[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < expr.size() && !is_space(expr[j])) ++j;
    fields.push_back(expr.substr(i, j - i));
    i = j;
  }
  if (fields.empty()) return Status::InvalidArgument("empty cron expression");
  if (fields[0].front() == '@') {
    if (fields.size() != 1) return Status::InvalidArgument("a macro stands alone: " + Quoted(expr));
    std::string name = Upper(fields[0]);
    for (const Macro& m : kMacros) {
      if (name == Upper(m.name)) {
        expanded = m.fields;
        break;
      }
    }
    if (expanded.empty()) return Status::InvalidArgument("unknown macro " + Quoted(fields[0]));
    return Parse(expanded);
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return Status::InvalidArgument("expected 5 or 6 fields, got " + std::to_string(fields.size()) + " in " +
                                   Quoted(expr));
  }
  if (fields.size() == 5) fields.insert(fields.begin(), "0");  // 5 fields fire at second 0

  Schedule s;
  for (int i = 0; i < 6; ++i) {
    if (Status st = ParseField(kSpecs[i], fields[i], s); !st.ok()) return st;
  }
  s.dom_restricted = !(fields[3] == "*" || fields[3] == "?");
  s.dow_restricted = !(fields[5] == "*" || fields[5] == "?");
  if (Status st = CheckDaysExist(s, fields[3]); !st.ok()) return st;
  return s;
}

std::optional<TimeMs> NextFire(const Schedule& s, const date::time_zone* tz, TimeMs after) {
  using std::chrono::sys_time;
  // Fire times are whole seconds; "strictly after" a fractional instant is
  // the next whole second.
  sys_seconds t = date::floor<seconds>(sys_time<milliseconds>(milliseconds(after))) + seconds(1);
  const sys_seconds horizon = t + date::years(kHorizonYears);
  // Zones' first segment starts at year -32767; there is nothing before it.
  const sys_seconds earliest = date::sys_days(date::year(1800) / 1 / 1);

  while (t < horizon) {
    const Segment seg = SegmentAt(tz, t);
    const sys_seconds end = std::min(seg.end, horizon);
    std::optional<Segment> prev;
    if (tz != nullptr && seg.begin > earliest) prev = SegmentAt(tz, seg.begin - seconds(1));

    std::optional<sys_seconds> best;
    LocalSec from = ToLocal(t, seg.offset);
    if (prev && prev->offset > seg.offset) {
      // Fall-back: [begin+offset, begin+prev offset) local already happened
      // in the previous segment; that first occurrence was the fire.
      from = std::max(from, ToLocal(seg.begin, prev->offset));
    }
    if (auto l = NextLocal(s, from, ToLocal(end, seg.offset))) best = ToSys(*l, seg.offset);

    if (prev && prev->offset < seg.offset) {
      // Spring-forward: local times in [begin+prev offset, begin+offset) never
      // exist; each fires at its instant under the offset before the gap.
      const LocalSec gap_from = ToLocal(t, prev->offset);
      const LocalSec gap_end = ToLocal(seg.begin, seg.offset);
      if (gap_from < gap_end) {
        if (auto l = NextLocal(s, gap_from, gap_end)) {
          const sys_seconds shifted = ToSys(*l, prev->offset);
          if (shifted < end && (!best || shifted < *best)) best = shifted;
        }
      }
    }
    if (best) return std::chrono::duration_cast<milliseconds>(best->time_since_epoch()).count();
    t = end;
  }
  return std::nullopt;
}

std::vector<TimeMs> NextFires(const Schedule& s, const date::time_zone* tz, TimeMs after, int count) {
  std::vector<TimeMs> out;
  for (int i = 0; i < count; ++i) {
    std::optional<TimeMs> next = NextFire(s, tz, after);
    if (!next) break;
    out.push_back(*next);
    after = *next;
  }
  return out;
}

Result<const date::time_zone*> LoadTimeZone(std::string_view name) {
  // date throws std::runtime_error for unknown zones and a missing
  // /etc/localtime; errors are values here.
  if (name.empty()) {
    try {
      return date::current_zone();
    } catch (const std::exception&) {
      name = "Etc/UTC";  // no /etc/localtime: POSIX treats the system as UTC
    }
  }
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return Status::InvalidArgument("unknown time zone " + Quoted(name));
  }
}

std::string FormatInTaskZone(TimeMs t, std::string_view tz) {
  auto z = LoadTimeZone(tz);
  if (!z.ok() || *z == nullptr) return FormatIsoUtc(t);
  using namespace std::chrono;
  try {
    auto local = date::make_zoned(*z, sys_time<milliseconds>(milliseconds(t)));
    return date::format("%F %H:%M:%S ", floor<seconds>(local.get_local_time())) + std::string((*z)->name());
  } catch (const std::exception&) {
    return FormatIsoUtc(t);
  }
}

}  // namespace dropq::cron
