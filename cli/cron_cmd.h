#pragma once
// `dropq cron next EXPR [--tz TZ] [--from ISO-8601] [--count N] [--json]`:
// lets users check an expression before they schedule it (docs/CRON.md).
#include <ostream>
#include <string>

namespace dropq::app {

// Prints the next `count` fire times of `expr` in zone `tz` ("" = the
// system's) after `from_iso` ("" = now) as ISO-8601 UTC instants, one per
// line, or as a JSON array of strings when `json`. A bare `from_iso` without
// an offset is UTC. Returns 0, or 2 with a message on `err` for an invalid
// expression, zone, --from or --count.
int CronNext(const std::string& expr, const std::string& tz, const std::string& from_iso, int count, bool json,
             std::ostream& out, std::ostream& err);

}  // namespace dropq::app
