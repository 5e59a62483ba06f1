// Container names (docs/RUNTIMES.md): unique per attempt even when a group
// that may run several jobs at once starts two in one millisecond.
#include <catch2/catch.hpp>

#include <string>

#include "runner/runtime.h"

namespace dropq::runner {
namespace {

TEST_CASE("the first attempt of a group in a millisecond gets the plain name", "[runtime]") {
  ContainerNames names;
  CHECK(names.Next("team", 1'700'000'000'000) == "dropq-team-1700000000000");
}

TEST_CASE("later attempts of a group in the same millisecond get a numbered suffix", "[runtime]") {
  ContainerNames names;
  CHECK(names.Next("team", 1'700'000'000'000) == "dropq-team-1700000000000");
  CHECK(names.Next("team", 1'700'000'000'000) == "dropq-team-1700000000000-2");
  CHECK(names.Next("team", 1'700'000'000'000) == "dropq-team-1700000000000-3");
  CHECK(names.Next("other", 1'700'000'000'000) == "dropq-other-1700000000000");
}

TEST_CASE("a new millisecond starts the names afresh", "[runtime]") {
  ContainerNames names;
  names.Next("team", 1'700'000'000'000);
  names.Next("team", 1'700'000'000'000);
  CHECK(names.Next("team", 1'700'000'000'001) == "dropq-team-1700000000001");
}

TEST_CASE("folders that differ only in replaced characters still get distinct names", "[runtime]") {
  ContainerNames names;
  CHECK(names.Next("a_b", 5) == "dropq-a-b-5");
  CHECK(names.Next("a-b", 5) == "dropq-a-b-5-2");
}

}  // namespace
}  // namespace dropq::runner
