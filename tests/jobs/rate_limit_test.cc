#include "jobs/rate_limit.h"

#include <catch2/catch.hpp>

namespace dropq {
namespace {

TEST_CASE("a rate is a count per unit of time", "[rate]") {
  struct Case {
    const char* text;
    std::int64_t max;
    std::int64_t period_ms;
  };
  for (const Case& c : {Case{"10/min", 10, 60'000}, Case{"1/s", 1, 1'000}, Case{"600/h", 600, 3'600'000},
                        Case{"100/day", 100, 86'400'000}, Case{"3/minute", 3, 60'000}, Case{"2/hours", 2, 3'600'000},
                        Case{"4/sec", 4, 1'000}, Case{"5/d", 5, 86'400'000}}) {
    INFO(c.text);
    auto r = ParseRateLimit(c.text);
    REQUIRE(r.has_value());
    CHECK(r->max == c.max);
    CHECK(r->period_ms == c.period_ms);
  }
}

TEST_CASE("a rate's period may be a duration with a unit", "[rate]") {
  auto r = ParseRateLimit("5/30s");
  REQUIRE(r.has_value());
  CHECK(*r == RateLimit{5, 30'000});
  CHECK(ParseRateLimit("1/90m") == std::optional<RateLimit>(RateLimit{1, 5'400'000}));
}

TEST_CASE("a rate without a count, a unit or a sane range is refused with the reason", "[rate]") {
  for (const char* bad : {"", "10", "10/", "/min", "0/min", "-1/min", "x/min", "10/fortnight", "10/60", "10/500ms",
                          "100001/s", "1.5/min", "10 /min", "10/ss"}) {
    INFO(bad);
    std::string why;
    CHECK_FALSE(ParseRateLimit(bad, &why).has_value());
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("a rate is written back in the shortest unit that divides its period", "[rate]") {
  CHECK(FormatRateLimit({10, 60'000}) == "10/min");
  CHECK(FormatRateLimit({1, 1'000}) == "1/s");
  CHECK(FormatRateLimit({2, 3'600'000}) == "2/h");
  CHECK(FormatRateLimit({3, 86'400'000}) == "3/day");
  CHECK(FormatRateLimit({5, 30'000}) == "5/30s");
  CHECK(FormatRateLimit({1, 5'400'000}) == "1/90m");
  CHECK(FormatRateLimit({1, 1'500}) == "1/1500ms");
}

TEST_CASE("a window allows starts up to its limit and then waits for its oldest to age out", "[rate]") {
  RateWindow w({2, 10'000});
  CHECK(w.Allows(0));
  w.Record(0);
  w.Record(4'000);
  CHECK_FALSE(w.Allows(9'999));
  CHECK(w.NextAllowed(5'000) == std::optional<TimeMs>(10'000));
  CHECK(w.Allows(10'000));
}

TEST_CASE("a window is sliding so no span of the period ever holds more than the limit", "[rate]") {
  // A fixed per-minute bucket would let 2 through at 59 s and 2 more at 61 s.
  RateWindow w({2, 60'000});
  w.Record(58'000);
  w.Record(59'000);
  CHECK_FALSE(w.Allows(61'000));
  CHECK(w.NextAllowed(61'000) == std::optional<TimeMs>(118'000));
}

TEST_CASE("a window keeps only as many start times as its limit", "[rate]") {
  RateWindow w({3, 60'000});
  for (TimeMs t = 0; t < 100; ++t) w.Record(t);
  // Only the newest three (97, 98, 99) are kept: the window opens at 97 + 60 s.
  CHECK(w.NextAllowed(100) == std::optional<TimeMs>(60'097));
}

TEST_CASE("a start recorded out of order is placed by its time", "[rate]") {
  RateWindow w({2, 60'000});
  w.Record(50'000);
  w.Record(10'000);
  CHECK(w.NextAllowed(55'000) == std::optional<TimeMs>(70'000));
}

TEST_CASE("the state of starts read back from the database matches the window that saw them", "[rate]") {
  RateState s = RateStateOf({2, 60'000}, {70'000, 10'000, 50'000}, 80'000);
  CHECK(s.starts_in_window == 2);
  CHECK(s.next_start_at == std::optional<TimeMs>(110'000));
}

TEST_CASE("starts older than the period are not counted in the window", "[rate]") {
  RateState s = RateStateOf({5, 60'000}, {0, 10'000, 30'000}, 65'000);
  CHECK(s.starts_in_window == 2);
  CHECK_FALSE(s.limited());
}

}  // namespace
}  // namespace dropq
