#include "base/guard.h"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

namespace dropq {
namespace {

TEST_CASE("a guarded body that returns reports success and calls no error handler", "[guard]") {
  int ran = 0, errors = 0;
  CHECK(Guard(
      "test", [&] { ++ran; }, [&](const std::string&) { ++errors; }));
  CHECK(ran == 1);
  CHECK(errors == 0);
}

TEST_CASE("an exception in a guarded body reaches the error handler with its reason, not the caller", "[guard]") {
  std::string reason;
  bool ok = true;
  REQUIRE_NOTHROW(
      ok = Guard(
          "ingest", [] { throw std::runtime_error("boom"); }, [&](const std::string& why) { reason = why; }));
  CHECK_FALSE(ok);
  CHECK(reason == "dropq internal error in ingest: boom");
}

TEST_CASE("an exception of no standard type is caught and named as unknown", "[guard]") {
  std::string reason;
  Guard(
      "loop", [] { throw 42; }, [&](const std::string& why) { reason = why; });
  CHECK(reason == "dropq internal error in loop: an exception of unknown type");
}

TEST_CASE("an exception message that is not valid UTF-8 reaches the handler as valid text", "[guard]") {
  std::string reason;
  Guard(
      "x", [] { throw std::runtime_error("bad \xFF"); }, [&](const std::string& why) { reason = why; });
  CHECK(reason == "dropq internal error in x: bad \xEF\xBF\xBD");
}

TEST_CASE("an error handler that throws too is contained", "[guard]") {
  bool ok = true;
  REQUIRE_NOTHROW(
      ok = Guard(
          "x", [] { throw std::runtime_error("one"); }, [](const std::string&) { throw std::runtime_error("two"); }));
  CHECK_FALSE(ok);
}

}  // namespace
}  // namespace dropq
