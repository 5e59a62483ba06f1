// The CLI's human formatting (cli/cli_format.h) and run --once's progress
// line (cli/progress.h): pure functions, tables of inputs.
#include "cli/cli_format.h"

#include <catch2/catch.hpp>

#include <sstream>

#include "cli/progress.h"

namespace dropq::app {
namespace {

constexpr TimeMs kNow = 1'800'000'000'000;

TEST_CASE("relative times name the largest whole unit, past and future", "[cli_format]") {
  struct Case {
    TimeMs delta;
    const char* text;
  };
  for (auto c : std::vector<Case>{{0, "just now"},
                                  {999, "just now"},
                                  {1'000, "1s ago"},
                                  {59'999, "59s ago"},
                                  {60'000, "1m ago"},
                                  {3'599'999, "59m ago"},
                                  {3'600'000, "1h ago"},
                                  {86'399'999, "23h ago"},
                                  {86'400'000, "1d ago"},
                                  {40 * 86'400'000LL, "40d ago"},
                                  {-5'000, "in 5s"},
                                  {-2 * 3'600'000, "in 2h"}}) {
    INFO(c.delta);
    CHECK(RelativeTime(kNow, kNow - c.delta) == c.text);
  }
}

TEST_CASE("durations read as a person would write them", "[cli_format]") {
  CHECK(HumanDuration(0) == "0ms");
  CHECK(HumanDuration(850) == "850ms");
  CHECK(HumanDuration(12'450) == "12.4s");
  CHECK(HumanDuration(185'000) == "3m05s");
  CHECK(HumanDuration(7'800'000) == "2h10m");
}

TEST_CASE("a shortened cell shows control characters escaped and never cuts a character", "[cli_format][text]") {
  CHECK(Shorten("a\nb\x1b[2J", 100) == "a b\\x1b[2J");
  CHECK(Shorten("\xFF", 100) == "\xEF\xBF\xBD");
  CHECK(Shorten("ab\xE6\x97\xA5\xE6\x97\xA5", 7) == "ab...");
}

TEST_CASE("a table aligns each column to its widest cell ignoring colour codes", "[cli_format]") {
  std::ostringstream out;
  Style colour{true};
  PrintTable(out, colour, {"ID", "STATE"}, {{"7", colour.State("succeeded")}, {"12", colour.State("queued")}});
  std::string s = out.str();
  CHECK(s.find("\033[1mID\033[0m  \033[1mSTATE\033[0m\n") == 0);
  CHECK(s.find("7   \033[32msucceeded\033[0m\n") != std::string::npos);
  CHECK(s.find("12  \033[36mqueued\033[0m\n") != std::string::npos);
}

TEST_CASE("without colour a table is plain text", "[cli_format]") {
  std::ostringstream out;
  PrintTable(out, Style{false}, {"ID", "STATE"}, {{"7", Style{false}.State("failed")}});
  CHECK(out.str() == "ID  STATE\n7   failed\n");
}

TEST_CASE("the progress line counts done of total, running, failed and the elapsed time", "[cli_format]") {
  CHECK(FormatProgress({10, 3, 2, 1}, 12'400) == "3/10 done, 2 running, 1 failed, 12.4s");
}

TEST_CASE("the progress line follows the daemon's reports, a retry staying not done", "[cli_format]") {
  ManualClock clock;
  ProgressLine p(clock);
  p.JobsQueued(2);
  p.JobStarted(1);
  p.JobStarted(2);
  p.AttemptEnded(1, JobState::kFailed, false);  // will be retried
  p.AttemptEnded(2, JobState::kSucceeded, true);
  auto c = p.counts();
  CHECK(c.total == 2);
  CHECK(c.done == 1);
  CHECK(c.running == 0);
  CHECK(c.failed == 0);
  p.JobStarted(1);
  p.AttemptEnded(1, JobState::kFailed, true);
  c = p.counts();
  CHECK(c.done == 2);
  CHECK(c.failed == 1);
}

}  // namespace
}  // namespace dropq::app
