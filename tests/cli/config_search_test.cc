// The CLI's config search: --config / $DROPQ_CONFIG, else the first file of
// the search path that exists; the list is injected, so /etc is not touched.
#include <catch2/catch.hpp>

#include <string>

#include "cli/cli_common.h"
#include "tests/fakes/temp_dir.h"

using dropq::app::FindConfig;

TEST_CASE("An explicit config path is used even when it does not exist") {
  auto p = FindConfig("/nowhere/dropq.yaml", {"/also/nowhere.yaml"});
  REQUIRE(p.ok());
  CHECK(*p == "/nowhere/dropq.yaml");
}

TEST_CASE("Without an explicit path the first existing candidate is used") {
  dropq::testing::TempDir dir;
  dropq::testing::WriteFile(dir / "second.yaml", "");
  dropq::testing::WriteFile(dir / "third.yaml", "");
  auto p =
      FindConfig("", {(dir / "first.yaml").string(), (dir / "second.yaml").string(), (dir / "third.yaml").string()});
  REQUIRE(p.ok());
  CHECK(*p == (dir / "second.yaml").string());
}

TEST_CASE("When no candidate exists the error names each place tried and how to point elsewhere") {
  dropq::testing::TempDir dir;
  auto p = FindConfig("", {(dir / "a.yaml").string(), (dir / "b.yaml").string()});
  REQUIRE_FALSE(p.ok());
  const std::string& m = p.status().message();
  CHECK_THAT(m, Catch::Contains((dir / "a.yaml").string()) && Catch::Contains((dir / "b.yaml").string()) &&
                    Catch::Contains("--config") && Catch::Contains("DROPQ_CONFIG"));
}
