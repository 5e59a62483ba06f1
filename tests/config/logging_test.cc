// Structured logs (config/logging.h): the JSON sink writes to a real file
// descriptor and its lines are read back.
#include "config/logging.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "base/clock.h"
#include "base/text.h"
#include "tests/fakes/env.h"

namespace dropq::app {
namespace {

using testing::ScopedEnv;

std::vector<nlohmann::json> LogThrough(spdlog::level::level_enum level, const std::vector<std::string>& messages) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    spdlog::logger logger("test", MakeLogSink(fds[1], LogFormat::kJson));
    logger.set_level(spdlog::level::trace);
    for (const auto& m : messages) logger.log(level, "{}", m);
  }
  ::close(fds[1]);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  std::vector<nlohmann::json> lines;
  std::istringstream in(all);
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
  return lines;
}

std::string LogPretty(const std::string& message) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    spdlog::logger logger("test", MakeLogSink(fds[1], LogFormat::kPretty));
    logger.info("{}", message);
  }
  ::close(fds[1]);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  return all;
}

TEST_CASE("a text log line shows what an agent printed escaped and on one line", "[logging][text]") {
  std::string line = LogPretty(
      "stderr: \x1b]0;pwned\x07line\nbreak \xC3\xA9\xFF \xC2\x9B"
      "2J");
  CHECK(text::IsValidUtf8(line));
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  CHECK_THAT(line, Catch::Contains("stderr: \\x1b]0;pwned\\x07line\\nbreak \xC3\xA9\xEF\xBF\xBD \\u009b2J"));
}

TEST_CASE("a JSON log line holds valid UTF-8 whatever the message carries", "[logging][text]") {
  auto lines = LogThrough(spdlog::level::warn, {"name \xFF\xE6\x97 cut"});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["msg"] == "name \xEF\xBF\xBD\xEF\xBF\xBD cut");
}

TEST_CASE("a JSON log line carries the time, the level and the message", "[logging]") {
  auto lines = LogThrough(spdlog::level::warn, {"job 4 failed"});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["level"] == "warn");
  CHECK(lines[0]["msg"] == "job 4 failed");
  CHECK(ParseIsoTime(lines[0]["ts"].get<std::string>()).has_value());
}

TEST_CASE("a message with quotes, newlines and control characters stays one valid JSON line", "[logging]") {
  std::string nasty = "say \"hi\"\nback\\slash\ttab\x01";
  auto lines = LogThrough(spdlog::level::info, {nasty});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["msg"] == nasty);
}

TEST_CASE("a message that is not UTF-8 is logged with replacement characters, not dropped", "[logging]") {
  auto lines = LogThrough(spdlog::level::err, {"bad \xff byte"});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["level"] == "error");
  CHECK(lines[0]["msg"] == "bad \xEF\xBF\xBD byte");
}

TEST_CASE("the log level comes from DROPQ_LOG_LEVEL before the config", "[logging]") {
  {
    ScopedEnv env("DROPQ_LOG_LEVEL", nullptr);
    CHECK(EffectiveLogLevel("debug") == std::optional<std::string>("debug"));
  }
  {
    ScopedEnv env("DROPQ_LOG_LEVEL", "error");
    CHECK(EffectiveLogLevel("debug") == std::optional<std::string>("error"));
  }
}

TEST_CASE("an unknown level name is refused rather than read as off", "[logging]") {
  ScopedEnv env("DROPQ_LOG_LEVEL", "verbose");
  CHECK_FALSE(EffectiveLogLevel("info").has_value());
  std::string error;
  CHECK_FALSE(SetUpLogging("info", &error));
  CHECK_THAT(error, Catch::Contains("DROPQ_LOG_LEVEL \"verbose\""));
}

}  // namespace
}  // namespace dropq::app
