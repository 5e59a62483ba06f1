#pragma once
// Human output of the CLI: aligned tables, relative times, colour. Colour is
// used only when stdout is a terminal and NO_COLOR is unset; tables and
// times are plain text otherwise, so pipes and tests see no escape codes.
#include <iosfwd>
#include <string>
#include <vector>

#include "base/clock.h"

namespace dropq::app {

// "just now", "12s ago", "5m ago", "3h ago", "2d ago"; for instants after
// `now` (a future run_at): "in 12s", "in 5m", ... Each unit is truncated.
std::string RelativeTime(TimeMs now, TimeMs t);

// "850ms", "12.4s", "3m05s", "2h10m".
std::string HumanDuration(std::int64_t ms);

struct Style {
  bool colour = false;
  // The SGR colour of a job or run state: green succeeded, red failed,
  // yellow running, cyan queued, dim cancelled/other.
  std::string State(const std::string& state) const;
  std::string Dim(const std::string& s) const;
  std::string Bold(const std::string& s) const;
  std::string Red(const std::string& s) const;
  std::string Green(const std::string& s) const;
  std::string Yellow(const std::string& s) const;
};

// True when stdout is a terminal and $NO_COLOR is unset.
Style StdoutStyle();

// Columns as wide as their widest cell (escape codes do not count), two
// spaces apart, the header in bold when colour is on.
void PrintTable(std::ostream& out, const Style& style, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// One line: newlines and tabs become spaces, cut to n characters with "...".
std::string Shorten(std::string s, std::size_t n);

}  // namespace dropq::app
