#include "jobs/clock.h"

#include <chrono>
#include <sstream>

// GCC 12 reports a maybe-uninitialized false positive inside date::parse
// (date.h's seconds field, with the ONLY_C_LOCALE the date-tz package sets);
// the template is instantiated at the end of this file, so the pragma covers
// the whole file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
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
  // The offset is split off and checked by hand ("Z", or exactly [+-]HH:MM):
  // date::parse's %Ez negates an unset placeholder when the digits after a
  // sign are missing (undefined behaviour the fuzzer found).
  std::string text(s);
  minutes offset{0};
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) {
    text.pop_back();
  } else if (text.size() > 6 && (text[text.size() - 6] == '+' || text[text.size() - 6] == '-') &&
             text[text.size() - 3] == ':') {
    std::string_view off(text.data() + text.size() - 5, 5);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!digit(off[0]) || !digit(off[1]) || !digit(off[3]) || !digit(off[4])) return std::nullopt;
    int hh = (off[0] - '0') * 10 + (off[1] - '0'), mm = (off[3] - '0') * 10 + (off[4] - '0');
    if (hh > 23 || mm > 59) return std::nullopt;
    offset = minutes(hh * 60 + mm);
    if (text[text.size() - 6] == '-') offset = -offset;
    text.resize(text.size() - 6);
  }
  std::istringstream in(text);
  sys_time<milliseconds> tp;
  in >> date::parse("%FT%T", tp);
  if (in.fail() || in.peek() != std::char_traits<char>::eof()) return std::nullopt;
  return (tp - offset).time_since_epoch().count();
}

}  // namespace dropq
