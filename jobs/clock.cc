#include "jobs/clock.h"

#include <chrono>
#include <sstream>

#include <date/date.h>

namespace dropq {

TimeMs SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string FormatIsoUtc(TimeMs t) {
  using namespace std::chrono;
  sys_time<milliseconds> tp{milliseconds{t}};
  return date::format("%FT%TZ", tp);
}

std::optional<TimeMs> ParseIsoTime(std::string_view s) {
  using namespace std::chrono;
  // date::parse understands %Ez as "+01:00"; a trailing 'Z' is UTC and is
  // handled by stripping it. Fractional seconds are read by %T into ms.
  std::string text(s);
  bool utc_z = false;
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) {
    utc_z = true;
    text.pop_back();
  }
  for (const char* fmt : {"%FT%T%Ez", "%FT%T"}) {
    if (utc_z && std::string_view(fmt) == "%FT%T%Ez") continue;
    std::istringstream in(text);
    sys_time<milliseconds> tp;
    minutes offset{0};
    in >> date::parse(fmt, tp, offset);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof()) {
      // date::parse already applied the parsed offset to the sys_time.
      return tp.time_since_epoch().count();
    }
  }
  return std::nullopt;
}

}  // namespace dropq
