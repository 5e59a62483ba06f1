#include "base/units.h"
#include "base/clock.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <date/date.h>

using dropq::ParseDurationMs;
using dropq::ParseSizeBytes;

// ---- ParseDurationMs ----------------------------------------------------------

TEST_CASE("a bare integer duration is milliseconds") {
  CHECK(ParseDurationMs("1500") == 1500);
  CHECK(ParseDurationMs("0") == 0);
}

TEST_CASE("each duration unit scales to milliseconds") {
  CHECK(ParseDurationMs("1500ms") == 1500);
  CHECK(ParseDurationMs("30s") == 30'000);
  CHECK(ParseDurationMs("5m") == 300'000);
  CHECK(ParseDurationMs("2h") == 7'200'000);
  CHECK(ParseDurationMs("1d") == 86'400'000);
}

TEST_CASE("negative durations are rejected") {
  CHECK_FALSE(ParseDurationMs("-5"));
  CHECK_FALSE(ParseDurationMs("-5s"));
}

TEST_CASE("fractional durations are rejected") {
  CHECK_FALSE(ParseDurationMs("1.5s"));
  CHECK_FALSE(ParseDurationMs("0.5"));
}

TEST_CASE("unknown or miscased duration units are rejected") {
  CHECK_FALSE(ParseDurationMs("5x"));
  CHECK_FALSE(ParseDurationMs("5sec"));
  CHECK_FALSE(ParseDurationMs("5S"));
  CHECK_FALSE(ParseDurationMs("1w"));
}

TEST_CASE("durations with whitespace, a plus sign or no number are rejected") {
  CHECK_FALSE(ParseDurationMs(""));
  CHECK_FALSE(ParseDurationMs("s"));
  CHECK_FALSE(ParseDurationMs(" 5s"));
  CHECK_FALSE(ParseDurationMs("5 s"));
  CHECK_FALSE(ParseDurationMs("5s "));
  CHECK_FALSE(ParseDurationMs("+5s"));
}

TEST_CASE("a duration that overflows 64 bits is rejected") {
  CHECK(ParseDurationMs("9223372036854775807") == 9223372036854775807);
  CHECK_FALSE(ParseDurationMs("9223372036854775808"));
  CHECK(ParseDurationMs("106751991167d") == 106751991167LL * 86'400'000);
  CHECK_FALSE(ParseDurationMs("106751991168d"));
  CHECK_FALSE(ParseDurationMs("99999999999999999999h"));
}

// ---- ParseSizeBytes -------------------------------------------------------------

TEST_CASE("a bare integer size is bytes") {
  CHECK(ParseSizeBytes("512") == 512);
  CHECK(ParseSizeBytes("512B") == 512);
  CHECK(ParseSizeBytes("0") == 0);
}

TEST_CASE("binary size units are powers of 1024") {
  CHECK(ParseSizeBytes("64KiB") == 64 * 1024);
  CHECK(ParseSizeBytes("10MiB") == 10 * 1024 * 1024);
  CHECK(ParseSizeBytes("1GiB") == 1024LL * 1024 * 1024);
  CHECK(ParseSizeBytes("1TiB") == 1024LL * 1024 * 1024 * 1024);
}

TEST_CASE("the short K, M and G units are binary too") {
  CHECK(ParseSizeBytes("1K") == 1024);
  CHECK(ParseSizeBytes("1M") == 1024 * 1024);
  CHECK(ParseSizeBytes("1G") == 1024LL * 1024 * 1024);
}

TEST_CASE("decimal size units are powers of 1000") {
  CHECK(ParseSizeBytes("64KB") == 64'000);
  CHECK(ParseSizeBytes("10MB") == 10'000'000);
  CHECK(ParseSizeBytes("1GB") == 1'000'000'000);
  CHECK(ParseSizeBytes("2TB") == 2'000'000'000'000);
}

TEST_CASE("unknown or miscased size units are rejected") {
  CHECK_FALSE(ParseSizeBytes("1kb"));
  CHECK_FALSE(ParseSizeBytes("1kib"));
  CHECK_FALSE(ParseSizeBytes("1PiB"));
  CHECK_FALSE(ParseSizeBytes("1 MiB"));
  CHECK_FALSE(ParseSizeBytes("MiB"));
  CHECK_FALSE(ParseSizeBytes(""));
}

TEST_CASE("negative and fractional sizes are rejected") {
  CHECK_FALSE(ParseSizeBytes("-1"));
  CHECK_FALSE(ParseSizeBytes("-1KiB"));
  CHECK_FALSE(ParseSizeBytes("1.5MiB"));
}

TEST_CASE("a size that overflows 64 bits is rejected") {
  CHECK(ParseSizeBytes("8388607TiB") == 8388607LL << 40);
  CHECK_FALSE(ParseSizeBytes("8388608TiB"));
  CHECK_FALSE(ParseSizeBytes("9223372036854775808"));
}

TEST_CASE("an ISO time with a sign but no offset digits is rejected", "[clock]") {
  CHECK_FALSE(dropq::ParseIsoTime("2026-11-27T08:45:5-").has_value());
  CHECK_FALSE(dropq::ParseIsoTime("2026-03-29T02:30:00-").has_value());
  CHECK_FALSE(dropq::ParseIsoTime("2026-03-29T02:30:00-ms01:00").has_value());
  CHECK_FALSE(dropq::ParseIsoTime("2026-03-29T02:30:00+24:00").has_value());
}

TEST_CASE("an ISO time with a negative offset is converted to UTC", "[clock]") {
  CHECK(dropq::ParseIsoTime("2026-11-27T03:45:57-05:00") == dropq::ParseIsoTime("2026-11-27T08:45:57Z"));
}

TEST_CASE("an ISO time with a malformed seconds field is rejected", "[clock]") {
  // Found by the job-file fuzzer: date::parse turned this into NaN.
  CHECK_FALSE(dropq::ParseIsoTime("2026-03-29T02:3/:80.5+01:00").has_value());
  CHECK_FALSE(dropq::ParseIsoTime("2026-02-30T00:00:00Z").has_value());
  CHECK_FALSE(dropq::ParseIsoTime("2026-11-27T24:00:00Z").has_value());
  CHECK_FALSE(dropq::ParseIsoTime("2026-11-27T08:45:57.Z").has_value());
}

TEST_CASE("an ISO time keeps milliseconds and ignores digits beyond them", "[clock]") {
  CHECK(dropq::ParseIsoTime("2026-11-27T08:45:57.5Z") == dropq::ParseIsoTime("2026-11-27T08:45:57.500Z"));
  CHECK(dropq::ParseIsoTime("2026-11-27T08:45:57.123456Z") == dropq::ParseIsoTime("2026-11-27T08:45:57.123Z"));
  CHECK(dropq::ParseIsoTime("2026-11-27T08:45:57") == dropq::ParseIsoTime("2026-11-27T08:45:57Z"));
}

TEST_CASE("FormatIsoUtc prints what date::format prints for the same instant", "[clock]") {
  using namespace std::chrono;
  std::vector<dropq::TimeMs> samples = {0,
                                        -1,                    // 1969-12-31T23:59:59.999Z
                                        951'782'400'000,       // 2000-02-29T00:00:00.000Z
                                        1'798'761'599'999,     // 2026-12-31T23:59:59.999Z
                                        253'402'300'799'999};  // 9999-12-31T23:59:59.999Z
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<dropq::TimeMs> any(-2'208'988'800'000, 4'102'444'800'000);  // 1900..2100
  for (int i = 0; i < 10'000; ++i) samples.push_back(any(rng));
  for (dropq::TimeMs t : samples) {
    sys_time<milliseconds> tp{milliseconds{t}};
    INFO(t);
    REQUIRE(dropq::FormatIsoUtc(t) == date::format("%FT%TZ", tp));
  }
}
