#include "cli/cron_cmd.h"

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "jobs/cron.h"
#include "base/text.h"

namespace dropq::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
// Enough to eyeball a schedule; a typo like --count 1000000 should not spin.
constexpr int kMaxCount = 1000;

}  // namespace

int CronNext(const std::string& expr, const std::string& tz, const std::string& from_iso, int count, bool json,
             std::ostream& out, std::ostream& err) {
  auto schedule = cron::Parse(expr);
  if (!schedule.ok()) {
    err << "invalid cron expression: " << schedule.status().message() << "\n";
    return kExitUsage;
  }
  auto zone = cron::LoadTimeZone(tz);
  if (!zone.ok()) {
    err << zone.status().message() << "\n";
    return kExitUsage;
  }
  TimeMs from = 0;
  if (from_iso.empty()) {
    from = SystemClock().NowMs();
  } else if (auto parsed = ParseIsoTime(from_iso)) {
    from = *parsed;
  } else {
    err << "invalid --from \"" << from_iso << "\": expected ISO-8601 like 2026-03-29T00:00:00Z\n";
    return kExitUsage;
  }
  if (count < 1 || count > kMaxCount) {
    err << "--count must be between 1 and " << kMaxCount << ", got " << count << "\n";
    return kExitUsage;
  }

  const std::vector<TimeMs> fires = cron::NextFires(*schedule, *zone, from, count);
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (TimeMs t : fires) arr.push_back(FormatIsoUtc(t));
    out << text::Dump(arr) << "\n";
  } else {
    for (TimeMs t : fires) out << FormatIsoUtc(t) << "\n";
  }
  if (static_cast<int>(fires.size()) < count) {
    // Defensive: every expression Parse accepts fires within the horizon.
    err << "only " << fires.size() << " fire times within " << cron::kHorizonYears << " years\n";
  }
  return kExitOk;
}

}  // namespace dropq::app
