#include "jobs/cron.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "base/clock.h"

namespace cron = dropq::cron;
using dropq::FormatIsoUtc;
using dropq::ParseIsoTime;
using dropq::TimeMs;

namespace {

const date::time_zone* Zone(const char* name) {
  auto z = cron::LoadTimeZone(name);
  REQUIRE(z.ok());
  return *z;
}

TimeMs At(const std::string& iso) {
  auto t = ParseIsoTime(iso);
  REQUIRE(t);
  return *t;
}

// Expected instants are written with their local offset (readable next to
// the DST rule they pin) and compared as UTC strings, so a failure prints
// ISO times rather than milliseconds.
std::vector<std::string> Utc(const std::vector<std::string>& isos) {
  std::vector<std::string> out;
  for (const auto& s : isos) out.push_back(FormatIsoUtc(At(s)));
  return out;
}

std::vector<std::string> Next(const std::string& expr, const date::time_zone* tz, const std::string& from, int n) {
  auto s = cron::Parse(expr);
  INFO(expr << ": " << s.status().ToString());
  REQUIRE(s.ok());
  std::vector<std::string> out;
  for (TimeMs t : cron::NextFires(*s, tz, At(from), n)) out.push_back(FormatIsoUtc(t));
  return out;
}

std::string ParseError(const std::string& expr) {
  auto s = cron::Parse(expr);
  if (s.ok()) return "(parsed)";
  CHECK(s.status().code() == dropq::Status::Code::kInvalidArgument);
  return s.status().message();
}

constexpr const date::time_zone* kUtc = nullptr;
const char* const kFrom = "2026-01-01T00:00:00Z";  // a Thursday

}  // namespace

// ---- syntax --------------------------------------------------------------------

TEST_CASE("a five-field expression fires at second zero of each matching minute") {
  CHECK(Next("*/15 * * * *", kUtc, kFrom, 4) ==
        Utc({"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"}));
}

TEST_CASE("a six-field expression starts with seconds") {
  CHECK(Next("*/20 * * * * *", kUtc, kFrom, 3) ==
        Utc({"2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z", "2026-01-01T00:01:00Z"}));
  CHECK(Next("30 0 12 * * *", kUtc, kFrom, 1) == Utc({"2026-01-01T12:00:30Z"}));
}

TEST_CASE("a list fires at each listed value") {
  CHECK(Next("0 9,12,18 * * *", kUtc, "2026-01-01T10:00:00Z", 3) ==
        Utc({"2026-01-01T12:00:00Z", "2026-01-01T18:00:00Z", "2026-01-02T09:00:00Z"}));
}

TEST_CASE("a range fires at every value in it") {
  CHECK(Next("10-12 8 * * *", kUtc, kFrom, 4) ==
        Utc({"2026-01-01T08:10:00Z", "2026-01-01T08:11:00Z", "2026-01-01T08:12:00Z", "2026-01-02T08:10:00Z"}));
}

TEST_CASE("a stepped range takes every nth value from the range's start") {
  CHECK(Next("0 1-10/3 * * *", kUtc, kFrom, 5) ==
        Utc({"2026-01-01T01:00:00Z", "2026-01-01T04:00:00Z", "2026-01-01T07:00:00Z", "2026-01-01T10:00:00Z",
             "2026-01-02T01:00:00Z"}));
}

TEST_CASE("a value with a step runs from that value to the field's maximum") {
  CHECK(Next("5/15 * * * *", kUtc, kFrom, 5) ==
        Utc({"2026-01-01T00:05:00Z", "2026-01-01T00:20:00Z", "2026-01-01T00:35:00Z", "2026-01-01T00:50:00Z",
             "2026-01-01T01:05:00Z"}));
}

TEST_CASE("a star step counts from the field's minimum") {
  // day-of-month starts at 1, so */10 is 1,11,21,31
  CHECK(Next("0 0 */10 * *", kUtc, kFrom, 5) ==
        Utc({"2026-01-11T00:00:00Z", "2026-01-21T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z",
             "2026-02-11T00:00:00Z"}));
}

TEST_CASE("a step larger than the range fires once at the range's start") {
  CHECK(Next("*/90 * * * *", kUtc, kFrom, 2) == Utc({"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}));
  CHECK(Next("5/2147483647 * * * *", kUtc, kFrom, 2) == Utc({"2026-01-01T00:05:00Z", "2026-01-01T01:05:00Z"}));
}

TEST_CASE("month and weekday names are case-insensitive and mean their numbers") {
  CHECK(Next("0 0 * jan-Mar MON-fri", kUtc, kFrom, 40) == Next("0 0 * 1-3 1-5", kUtc, kFrom, 40));
  CHECK(Next("0 0 * * sun", kUtc, kFrom, 1) == Utc({"2026-01-04T00:00:00Z"}));
  CHECK(Next("0 0 1 DEC *", kUtc, kFrom, 1) == Utc({"2026-12-01T00:00:00Z"}));
}

TEST_CASE("0 and 7 both mean Sunday") {
  const auto sundays = Utc({"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z"});
  CHECK(Next("0 0 * * 0", kUtc, kFrom, 3) == sundays);
  CHECK(Next("0 0 * * 7", kUtc, kFrom, 3) == sundays);
  CHECK(Next("0 0 * * 5-7", kUtc, kFrom, 4) ==
        Utc({"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"}));
}

TEST_CASE("each macro fires like the expression it stands for") {
  const std::vector<std::pair<std::string, std::string>> table = {
      {"@yearly", "0 0 1 1 *"},     {"@annually", "0 0 1 1 *"},   {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},     {"@daily", "0 0 * * *"},      {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},     {"@minutely", "* * * * *"},   {"@secondly", "* * * * * *"},
      {"@weekdays", "0 0 * * 1-5"}, {"@weekends", "0 0 * * 0,6"}, {"@DAILY", "0 0 * * *"},
  };
  for (const auto& [macro, expr] : table) {
    INFO(macro);
    CHECK(Next(macro, kUtc, kFrom, 5) == Next(expr, kUtc, kFrom, 5));
  }
  CHECK(Next("@yearly", kUtc, kFrom, 1) == Utc({"2027-01-01T00:00:00Z"}));
}

TEST_CASE("a question mark means any value, like a star") {
  CHECK(Next("? ? * * *", kUtc, kFrom, 3) == Next("* * * * *", kUtc, kFrom, 3));
  CHECK(Next("0 0 ? * 1", kUtc, kFrom, 3) == Next("0 0 * * 1", kUtc, kFrom, 3));
  CHECK(Next("0 0 13 * ?", kUtc, kFrom, 3) == Next("0 0 13 * *", kUtc, kFrom, 3));
}

TEST_CASE("L in day-of-month is the last day of each month") {
  CHECK(Next("0 0 L * *", kUtc, kFrom, 4) ==
        Utc({"2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"}));
  CHECK(Next("0 0 L 2 *", kUtc, kFrom, 3) ==
        Utc({"2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z"}));
  CHECK(Next("0 0 1,L * *", kUtc, kFrom, 3) ==
        Utc({"2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-28T00:00:00Z"}));
}

TEST_CASE("a weekday followed by L is its last occurrence in the month") {
  const auto last_fridays = Utc({"2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z",
                                 "2026-04-24T00:00:00Z", "2026-05-29T00:00:00Z"});
  CHECK(Next("0 0 * * 5L", kUtc, kFrom, 5) == last_fridays);
  CHECK(Next("0 0 * * FRIL", kUtc, kFrom, 5) == last_fridays);
  // cron-parser's README example: every Monday and the last Wednesday
  CHECK(Next("0 0 * * 1,3L", kUtc, "2026-01-24T00:00:00Z", 3) ==
        Utc({"2026-01-26T00:00:00Z", "2026-01-28T00:00:00Z", "2026-02-02T00:00:00Z"}));
}

TEST_CASE("weekday#k is the k-th such weekday of the month") {
  CHECK(Next("0 0 * * 1#2", kUtc, kFrom, 3) ==
        Utc({"2026-01-12T00:00:00Z", "2026-02-09T00:00:00Z", "2026-03-09T00:00:00Z"}));
  CHECK(Next("0 0 * * MON#5", kUtc, kFrom, 2) == Utc({"2026-03-30T00:00:00Z", "2026-06-29T00:00:00Z"}));
}

TEST_CASE("when both day fields are restricted a day matching either one fires") {
  // the 13th or any Friday (Vixie cron's rule, and cron-parser's)
  CHECK(Next("0 0 13 * 5", kUtc, "2026-03-01T00:00:00Z", 8) ==
        Utc({"2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z", "2026-03-27T00:00:00Z",
             "2026-04-03T00:00:00Z", "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z"}));
}

TEST_CASE("the either-day rule also applies to L, weekday L and weekday#k") {
  // the 15th or the first Monday
  CHECK(Next("0 0 15 * 1#1", kUtc, kFrom, 3) ==
        Utc({"2026-01-05T00:00:00Z", "2026-01-15T00:00:00Z", "2026-02-02T00:00:00Z"}));
  CHECK(Next("0 0 L * 1#1", kUtc, kFrom, 3) ==
        Utc({"2026-01-05T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-02T00:00:00Z"}));
}

TEST_CASE("a day field is unrestricted only when written exactly * or ?") {
  // "*/1" lists every weekday but counts as restricted, so the OR rule fires daily
  CHECK(Next("0 0 1 * */1", kUtc, kFrom, 2) == Utc({"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}));
}

TEST_CASE("Feb 29 fires only in leap years, skipping 2100") {
  CHECK(Next("0 12 29 2 *", kUtc, kFrom, 3) ==
        Utc({"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z", "2036-02-29T12:00:00Z"}));
  CHECK(Next("0 12 29 2 *", kUtc, "2096-03-01T00:00:00Z", 1) == Utc({"2104-02-29T12:00:00Z"}));
}

TEST_CASE("a schedule crosses month and year ends") {
  CHECK(Next("0 0 31 * *", kUtc, "2026-11-15T00:00:00Z", 3) ==
        Utc({"2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z", "2027-03-31T00:00:00Z"}));
}

// ---- errors --------------------------------------------------------------------

TEST_CASE("invalid expressions are rejected naming the field and the reason") {
  const std::vector<std::pair<std::string, std::string>> table = {
      {"", "empty cron expression"},
      {"   ", "empty cron expression"},
      {"* * * *", "expected 5 or 6 fields, got 4 in \"* * * *\""},
      {"* * * * * * *", "expected 5 or 6 fields, got 7 in \"* * * * * * *\""},
      {"60 * * * * *", "second: 60 is out of range 0-59"},
      {"60 * * * *", "minute: 60 is out of range 0-59"},
      {"* 24 * * *", "hour: 24 is out of range 0-23"},
      {"0 0 32 * *", "day-of-month: 32 is out of range 1-31"},
      {"0 0 0 * *", "day-of-month: 0 is out of range 1-31"},
      {"0 0 * 13 *", "month: 13 is out of range 1-12"},
      {"0 0 * * 8", "day-of-week: 8 is out of range 0-7"},
      {"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
      {"*/0 * * * *", "minute: bad step \"*/0\""},
      {"*/x * * * *", "minute: bad step \"*/x\""},
      {"*/99999999999 * * * *", "minute: bad step \"*/99999999999\""},
      {"0 1-10/ * * *", "hour: bad step \"1-10/\""},
      {"0 20-4 * * *", "hour: range 20-4 goes backwards"},
      {"0 0 * * FRI-SUN", "day-of-week: range FRI-SUN goes backwards (write 7 for Sunday at the end of a range)"},
      {"0 0 * FOO *", "month: unknown name \"FOO\""},
      {"0 0 * MON *", "month: unknown name \"MON\""},
      {"0 0 * * JAN", "day-of-week: unknown name \"JAN\""},
      {"0 0 * * JUL", "day-of-week: unknown name \"JUL\""},
      {"JAN * * * *", "minute: bad value \"JAN\""},
      {"1.5 * * * *", "minute: bad value \"1.5\""},
      {"0 0 -5 * *", "day-of-month: bad value \"-5\""},
      {"0 0 1,,2 * *", "day-of-month: empty list item in \"1,,2\""},
      {"0 0 1, * *", "day-of-month: empty list item in \"1,\""},
      {"0 0 15W * *", "day-of-month: bad value \"15W\""},
      {"0 0 5L * *", "day-of-month: bad value \"5L\""},
      {"0 0 * * L", "day-of-week: \"L\" needs a weekday, e.g. \"5L\" for the last Friday"},
      {"0 0 * * 1#6", "day-of-week: bad occurrence \"1#6\" (the number after # is 1-5)"},
      {"0 0 * * 1#0", "day-of-week: bad occurrence \"1#0\" (the number after # is 1-5)"},
      {"0 0 * * 8#1", "day-of-week: 8 is out of range 0-7"},
      {"@reboot", "unknown macro \"@reboot\""},
      {"@daily 5", "a macro stands alone: \"@daily 5\""},
  };
  for (const auto& [expr, message] : table) {
    INFO("expression: \"" << expr << "\"");
    CHECK(ParseError(expr) == message);
  }
}

TEST_CASE("a day of month that no selected month has is rejected") {
  CHECK(ParseError("0 0 30 2 *") == "day-of-month: \"30\" never occurs in FEB");
  CHECK(ParseError("0 0 31 4,6 *") == "day-of-month: \"31\" never occurs in APR,JUN");
  CHECK(ParseError("0 0 30,31 FEB *") == "day-of-month: \"30,31\" never occurs in FEB");
}

TEST_CASE("a day of month missing from some selected months fires in the others") {
  CHECK(Next("0 0 31 2,3 *", kUtc, kFrom, 2) == Utc({"2026-03-31T00:00:00Z", "2027-03-31T00:00:00Z"}));
}

TEST_CASE("an impossible day of month is accepted when day-of-week can still fire") {
  // Vixie's OR: Fridays in February
  CHECK(Next("0 0 30 2 5", kUtc, kFrom, 2) == Utc({"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z"}));
}

// ---- next-fire contract --------------------------------------------------------

TEST_CASE("the next fire is strictly after the given instant") {
  CHECK(Next("0 12 * * *", kUtc, "2026-01-01T12:00:00Z", 1) == Utc({"2026-01-02T12:00:00Z"}));
  CHECK(Next("0 12 * * *", kUtc, "2026-01-01T11:59:59.999Z", 1) == Utc({"2026-01-01T12:00:00Z"}));
}

TEST_CASE("fire times are whole seconds even after a fractional instant") {
  CHECK(Next("* * * * * *", kUtc, "2026-01-01T12:00:00.500Z", 2) ==
        Utc({"2026-01-01T12:00:01Z", "2026-01-01T12:00:02Z"}));
}

TEST_CASE("the rarest schedule Parse accepts still finds its next fire") {
  // The fifth Monday of February needs a leap year whose Feb 1 is a Monday:
  // 2072, then 2112 (2100 is not a leap year) - inside the 50-year horizon.
  CHECK(Next("0 0 * 2 1#5", kUtc, "2072-03-01T00:00:00Z", 1) == Utc({"2112-02-29T00:00:00Z"}));
}

TEST_CASE("a schedule that matches nothing never fires") {
  const cron::Schedule nothing;  // no bits set: only reachable by hand, Parse rejects such fields
  CHECK_FALSE(cron::NextFire(nothing, kUtc, At(kFrom)));
  CHECK_FALSE(cron::NextFire(nothing, Zone("Australia/Lord_Howe"), At(kFrom)));
  CHECK(cron::NextFires(nothing, Zone("Europe/Berlin"), At(kFrom), 3).empty());
}

TEST_CASE("NextFires is strictly increasing across DST in every zone") {
  for (const char* zone :
       {"America/New_York", "Europe/Berlin", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"}) {
    for (const char* expr : {"*/7 * * * *", "30 1,2 * * *", "0 */5 * * * *", "0 0 L * *", "15 2 * * 0"}) {
      INFO(zone << " " << expr);
      auto s = cron::Parse(expr);
      REQUIRE(s.ok());
      auto fires = cron::NextFires(*s, Zone(zone), At("2026-03-01T00:00:00Z"), 300);
      CHECK(fires.size() == 300);
      for (std::size_t i = 1; i < fires.size(); ++i) CHECK(fires[i - 1] < fires[i]);
    }
  }
}

// ---- time zones ----------------------------------------------------------------

TEST_CASE("fields are wall-clock times in the given zone") {
  const auto* ny = Zone("America/New_York");
  CHECK(Next("0 9 * * *", ny, "2026-01-10T00:00:00Z", 1) == Utc({"2026-01-10T09:00:00-05:00"}));
  CHECK(Next("0 9 * * *", ny, "2026-07-10T00:00:00Z", 1) == Utc({"2026-07-10T09:00:00-04:00"}));
  // a half-hour offset without DST
  CHECK(Next("0 0 * * *", Zone("Asia/Kolkata"), kFrom, 2) == Utc({"2026-01-01T18:30:00Z", "2026-01-02T18:30:00Z"}));
}

TEST_CASE("a null zone is UTC") {
  CHECK(Next("0 9 * * *", kUtc, kFrom, 1) == Next("0 9 * * *", Zone("UTC"), kFrom, 1));
}

TEST_CASE("an unknown time zone is rejected by name") {
  auto z = cron::LoadTimeZone("Mars/Olympus_Mons");
  REQUIRE_FALSE(z.ok());
  CHECK(z.status().code() == dropq::Status::Code::kInvalidArgument);
  CHECK(z.status().message() == "unknown time zone \"Mars/Olympus_Mons\"");
}

TEST_CASE("an empty time zone name is the system's zone") {
  auto z = cron::LoadTimeZone("");
  REQUIRE(z.ok());
  CHECK(*z != nullptr);
}

// ---- DST: spring forward -------------------------------------------------------

TEST_CASE("a local time in a spring-forward gap fires shifted by the gap's length") {
  // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST.
  CHECK(Next("30 2 * * *", Zone("Europe/Berlin"), "2026-03-28T00:00:00Z", 3) ==
        Utc({"2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"}));
  // New York 2026-03-08: 02:00 EST jumps to 03:00 EDT.
  CHECK(Next("30 2 * * *", Zone("America/New_York"), "2026-03-07T00:00:00Z", 3) ==
        Utc({"2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"}));
  // London 2026-03-29: 01:00 GMT jumps to 02:00 BST.
  CHECK(Next("30 1 * * *", Zone("Europe/London"), "2026-03-28T00:00:00Z", 3) ==
        Utc({"2026-03-28T01:30:00+00:00", "2026-03-29T02:30:00+01:00", "2026-03-30T01:30:00+01:00"}));
}

TEST_CASE("every slot inside a spring-forward gap still fires, in order") {
  // cron-parser's Athens test, here in Berlin: */20 in the missing hour
  CHECK(Next("*/20 2 * * *", Zone("Europe/Berlin"), "2026-03-28T23:00:00Z", 4) ==
        Utc({"2026-03-29T03:00:00+02:00", "2026-03-29T03:20:00+02:00", "2026-03-29T03:40:00+02:00",
             "2026-03-30T02:00:00+02:00"}));
}

TEST_CASE("a shifted gap time that lands on a real scheduled time fires once") {
  const auto* berlin = Zone("Europe/Berlin");
  CHECK(Next("30 2,3 * * *", berlin, "2026-03-28T23:00:00Z", 3) ==
        Utc({"2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-30T03:30:00+02:00"}));
  CHECK(Next("0 * * * *", berlin, "2026-03-28T23:30:00Z", 3) ==
        Utc({"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}));
}

TEST_CASE("a half-hour spring-forward gap shifts by half an hour") {
  // Lord Howe 2026-10-04: 02:00 (+10:30) jumps to 02:30 (+11).
  const auto* lh = Zone("Australia/Lord_Howe");
  CHECK(Next("15 2 * * *", lh, "2026-10-02T00:00:00Z", 3) ==
        Utc({"2026-10-03T02:15:00+10:30", "2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"}));
  CHECK(Next("*/15 * * * *", lh, "2026-10-03T15:00:00Z", 4) ==
        Utc({"2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00",
             "2026-10-04T03:00:00+11:00"}));
}

// ---- DST: fall back ------------------------------------------------------------

TEST_CASE("a local time repeated by a fall-back fires only at its first occurrence") {
  // Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET.
  CHECK(Next("30 2 * * *", Zone("Europe/Berlin"), "2026-10-24T00:00:00Z", 3) ==
        Utc({"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}));
  // New York 2026-11-01: 02:00 EDT falls back to 01:00 EST.
  CHECK(Next("*/30 1 * * *", Zone("America/New_York"), "2026-11-01T04:00:00Z", 3) ==
        Utc({"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:00:00-05:00"}));
  // London 2026-10-25: 02:00 BST falls back to 01:00 GMT.
  CHECK(Next("30 1 * * *", Zone("Europe/London"), "2026-10-24T00:00:00Z", 3) ==
        Utc({"2026-10-24T01:30:00+01:00", "2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"}));
  // Lord Howe 2026-04-05: 02:00 (+11) falls back to 01:30 (+10:30).
  CHECK(Next("45 1 * * *", Zone("Australia/Lord_Howe"), "2026-04-03T00:00:00Z", 3) ==
        Utc({"2026-04-04T01:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}));
}

TEST_CASE("asking from inside the repeated hour does not fire the first occurrence again") {
  // 01:10 EST is the second 01:10 of the night; 01:30 already fired at EDT.
  CHECK(Next("30 1 * * *", Zone("America/New_York"), "2026-11-01T06:10:00Z", 1) == Utc({"2026-11-02T01:30:00-05:00"}));
}

TEST_CASE("an hourly or finer job fires each repeated local minute only once in a fall-back") {
  // Issue 4: a job never fires twice for one scheduled minute, even when the
  // hour field covers all 24 hours (cron-parser and Vixie cron fire twice).
  CHECK(Next("0 * * * *", Zone("Europe/Berlin"), "2026-10-24T22:30:00Z", 4) ==
        Utc({"2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00",
             "2026-10-25T04:00:00+01:00"}));
  CHECK(Next("*/15 * * * *", Zone("America/New_York"), "2026-11-01T05:30:00Z", 5) ==
        Utc({"2026-11-01T01:45:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T02:15:00-05:00",
             "2026-11-01T02:30:00-05:00", "2026-11-01T02:45:00-05:00"}));
  CHECK(Next("*/15 * * * *", Zone("Australia/Lord_Howe"), "2026-04-04T14:20:00Z", 5) ==
        Utc({"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T02:00:00+10:30",
             "2026-04-05T02:15:00+10:30", "2026-04-05T02:30:00+10:30"}));
}

TEST_CASE("a daily job fires once on every local day of a year with DST changes") {
  for (const char* zone : {"Europe/Berlin", "America/New_York", "Europe/London", "Australia/Lord_Howe"}) {
    for (const char* expr : {"30 2 * * *", "0 1 * * *", "45 1 * * *"}) {
      INFO(zone << " " << expr);
      auto s = cron::Parse(expr);
      REQUIRE(s.ok());
      auto fires = cron::NextFires(*s, Zone(zone), At("2025-12-31T00:00:00Z"), 366);
      REQUIRE(fires.size() == 366);
      for (std::size_t i = 1; i < fires.size(); ++i) {
        const TimeMs gap = fires[i] - fires[i - 1];
        CHECK(gap >= 23 * 3'600'000);  // never twice a day
        CHECK(gap <= 25 * 3'600'000);  // never a day skipped
      }
    }
  }
}

// The one rule for showing a task's times (docs/CRON.md), used by `dropq
// tasks` and the dashboard alike.
TEST_CASE("a task's time is shown on the wall clock of the task's own zone, named") {
  TimeMs t = *ParseIsoTime("2026-12-05T08:00:00Z");
  CHECK(cron::FormatInTaskZone(t, "Europe/Paris") == "2026-12-05 09:00:00 Europe/Paris");
  CHECK(cron::FormatInTaskZone(t, "America/New_York") == "2026-12-05 03:00:00 America/New_York");
  CHECK(cron::FormatInTaskZone(t, "UTC") == "2026-12-05 08:00:00 UTC");
}

TEST_CASE("a task's time in a zone this machine does not know is shown in UTC") {
  TimeMs t = *ParseIsoTime("2026-12-05T08:00:00Z");
  CHECK(cron::FormatInTaskZone(t, "Mars/Olympus_Mons") == FormatIsoUtc(t));
}
