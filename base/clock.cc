#include "base/clock.h"

#include <cstdio>

#include <chrono>
#include <sstream>

#include <date/date.h>

namespace dropq {

TimeMs SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

TimeMs SystemClock::MonotonicMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string FormatIsoUtc(TimeMs t) {
  using namespace std::chrono;
  // date does the calendar; the fixed shape is printed with snprintf:
  // date::format goes through an ostringstream, and every timestamp bound
  // into SQLite came through here (about 5 % of the loop per job, PERFORMANCE.md).
  sys_time<milliseconds> tp{milliseconds{t}};
  auto day = date::floor<date::days>(tp);
  date::year_month_day ymd{day};
  date::hh_mm_ss<milliseconds> tod{tp - day};
  char buf[40];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                        static_cast<int>(tod.hours().count()), static_cast<int>(tod.minutes().count()),
                        static_cast<int>(tod.seconds().count()), static_cast<int>(tod.subseconds().count()));
  return std::string(buf, static_cast<std::size_t>(n));
}

std::optional<TimeMs> ParseIsoTime(std::string_view s) {
  using namespace std::chrono;
  // The fixed ISO-8601 shape is checked digit by digit here, and the calendar
  // arithmetic left to date (year_month_day, sys_days). date::parse itself is
  // not used on untrusted text: the fuzzer found two inputs on which it has
  // undefined behaviour (a sign with no offset digits; a malformed seconds
  // field it turns into NaN).
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t k = pos; k < pos + n; ++k) {
      if (s[k] < '0' || s[k] > '9') return std::nullopt;
      v = v * 10 + (s[k] - '0');
    }
    return v;
  };
  // YYYY-MM-DDTHH:MM:SS
  auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
       sec = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !sec || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  if (*h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  date::year_month_day ymd{date::year(*y), date::month(static_cast<unsigned>(*mo)),
                           date::day(static_cast<unsigned>(*d))};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 19;
  TimeMs ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    std::size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 9) {
      if (pos - start < 3) ms = ms * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (std::size_t k = pos - start; k < 3; ++k) ms *= 10;
  }
  minutes offset{0};
  std::string_view rest = s.substr(pos);
  if (rest == "Z" || rest == "z") {
    // UTC
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = minutes(*oh * 60 + *om);
    if (rest[0] == '-') offset = -offset;
  } else if (!rest.empty()) {
    return std::nullopt;  // a bare date-time (no offset) is read as UTC
  }
  sys_time<milliseconds> tp = date::sys_days(ymd) + hours(*h) + minutes(*mi) + seconds(*sec) + milliseconds(ms);
  return (tp - offset).time_since_epoch().count();
}

}  // namespace dropq
