#include "cli/cli_format.h"
#include "base/text.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ostream>

namespace dropq::app {
namespace {

std::string Wrap(bool on, const char* sgr, const std::string& s) {
  return on ? std::string("\033[") + sgr + "m" + s + "\033[0m" : s;
}

// Visible width: escape sequences (ESC [ ... m) take no room, and UTF-8
// continuation bytes do not start a character.
std::size_t VisibleWidth(const std::string& s) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\033') {
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++w;
  }
  return w;
}

}  // namespace

std::string RelativeTime(TimeMs now, TimeMs t) {
  TimeMs d = now - t;
  bool future = d < 0;
  TimeMs a = future ? -d : d;
  if (a < 1000) return "just now";
  std::string n;
  if (a < 60'000) {
    n = std::to_string(a / 1000) + "s";
  } else if (a < 3'600'000) {
    n = std::to_string(a / 60'000) + "m";
  } else if (a < 86'400'000) {
    n = std::to_string(a / 3'600'000) + "h";
  } else {
    n = std::to_string(a / 86'400'000) + "d";
  }
  return future ? "in " + n : n + " ago";
}

std::string HumanDuration(std::int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms < 60'000) {
    std::int64_t tenths = ms / 100;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "s";
  }
  auto two = [](std::int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  if (ms < 3'600'000) return std::to_string(ms / 60'000) + "m" + two(ms / 1000 % 60) + "s";
  return std::to_string(ms / 3'600'000) + "h" + two(ms / 60'000 % 60) + "m";
}

std::string Style::State(const std::string& s) const {
  if (s == "succeeded") return Wrap(colour, "32", s);
  if (s == "failed" || s == "timed_out" || s == "lost") return Wrap(colour, "31", s);
  if (s == "running") return Wrap(colour, "33", s);
  if (s == "queued") return Wrap(colour, "36", s);
  return Wrap(colour, "2", s);
}
std::string Style::Dim(const std::string& s) const { return Wrap(colour, "2", s); }
std::string Style::Bold(const std::string& s) const { return Wrap(colour, "1", s); }
std::string Style::Red(const std::string& s) const { return Wrap(colour, "31", s); }
std::string Style::Green(const std::string& s) const { return Wrap(colour, "32", s); }
std::string Style::Yellow(const std::string& s) const { return Wrap(colour, "33", s); }

Style StdoutStyle() {
  const char* no_colour = std::getenv("NO_COLOR");
  return Style{::isatty(STDOUT_FILENO) == 1 && !(no_colour && *no_colour)};
}

void PrintTable(std::ostream& out, const Style& style, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) w[i] = VisibleWidth(header[i]);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], VisibleWidth(r[i]));
  auto line = [&](const std::vector<std::string>& r, bool bold) {
    std::string s;
    for (std::size_t i = 0; i < r.size(); ++i) {
      s += bold ? style.Bold(r[i]) : r[i];
      if (i + 1 < r.size()) s += std::string(w[i] - VisibleWidth(r[i]) + 2, ' ');
    }
    out << s << "\n";
  };
  line(header, true);
  for (const auto& r : rows) line(r, false);
}

std::string Shorten(std::string s, std::size_t n) {
  for (auto& c : s)
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  // Text from outside (a prompt, an agent's error): nothing in it may drive
  // the terminal.
  s = text::ForLog(s);
  if (s.size() > n) s = text::Head(s, n - 3) + "...";
  return s;
}

}  // namespace dropq::app
