#include "cli/cron_cmd.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "base/clock.h"

using dropq::app::CronNext;

namespace {

struct Run {
  int rc;
  std::string out;
  std::string err;
};

Run Cron(const std::string& expr, const std::string& tz, const std::string& from, int count, bool json = false) {
  std::ostringstream out;
  std::ostringstream err;
  int rc = CronNext(expr, tz, from, count, json, out, err);
  return {rc, out.str(), err.str()};
}

}  // namespace

TEST_CASE("cron next prints the next fire times as UTC instants, one per line") {
  Run r = Cron("0 12 * * *", "UTC", "2026-01-01T00:00:00Z", 3);
  CHECK(r.rc == 0);
  CHECK(r.out == "2026-01-01T12:00:00.000Z\n2026-01-02T12:00:00.000Z\n2026-01-03T12:00:00.000Z\n");
  CHECK(r.err.empty());
}

TEST_CASE("cron next --json prints an array of strings") {
  Run r = Cron("0 12 * * *", "UTC", "2026-01-01T00:00:00Z", 2, true);
  CHECK(r.rc == 0);
  CHECK(r.out == "[\"2026-01-01T12:00:00.000Z\",\"2026-01-02T12:00:00.000Z\"]\n");
}

TEST_CASE("cron next reads the expression in the --tz zone") {
  Run r = Cron("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2);
  CHECK(r.rc == 0);
  // 02:30 does not exist on 2026-03-29 in Berlin; it fires at 03:30 CEST
  CHECK(r.out == "2026-03-29T01:30:00.000Z\n2026-03-30T00:30:00.000Z\n");
}

TEST_CASE("cron next --from accepts an offset") {
  Run r = Cron("0 0 * * *", "UTC", "2026-01-01T22:30:00-01:00", 1);
  CHECK(r.out == "2026-01-02T00:00:00.000Z\n");
  CHECK(r.rc == 0);
}

TEST_CASE("cron next without --from starts from now") {
  const dropq::TimeMs before = dropq::SystemClock().NowMs();
  Run r = Cron("* * * * * *", "UTC", "", 1);
  REQUIRE(r.rc == 0);
  auto first = dropq::ParseIsoTime(r.out.substr(0, r.out.size() - 1));
  REQUIRE(first);
  CHECK(*first > before);
  CHECK(*first <= before + 60'000);
}

TEST_CASE("cron next rejects an invalid expression with exit code 2") {
  Run r = Cron("60 * * * *", "UTC", "2026-01-01T00:00:00Z", 5);
  CHECK(r.rc == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "invalid cron expression: minute: 60 is out of range 0-59\n");
}

TEST_CASE("cron next rejects an unknown zone with exit code 2") {
  Run r = Cron("0 0 * * *", "Nowhere/Special", "2026-01-01T00:00:00Z", 5);
  CHECK(r.rc == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "unknown time zone \"Nowhere/Special\"\n");
}

TEST_CASE("cron next rejects an unreadable --from with exit code 2") {
  Run r = Cron("0 0 * * *", "UTC", "next tuesday", 5);
  CHECK(r.rc == 2);
  CHECK(r.err.find("invalid --from \"next tuesday\"") == 0);
}

TEST_CASE("cron next rejects a count outside 1-1000 with exit code 2") {
  CHECK(Cron("0 0 * * *", "UTC", "2026-01-01T00:00:00Z", 0).rc == 2);
  CHECK(Cron("0 0 * * *", "UTC", "2026-01-01T00:00:00Z", 1001).rc == 2);
}
