// `dropq init DIR` (docs/CLI.md), through the real binary.
#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/fakes/process.h"
#include "tests/fakes/temp_dir.h"

namespace fs = std::filesystem;
using dropq::testing::ReadFile;
using dropq::testing::RunProcess;
using dropq::testing::TempDir;

TEST_CASE("init writes a config that check-config accepts", "[process][init]") {
  TempDir tmp;
  const fs::path dir = tmp / "site";
  auto init = RunProcess({DROPQ_BINARY, "init", dir.string()}, tmp.path());
  REQUIRE(init.exit_code == 0);
  CHECK(init.out.find("dropq run --config " + (dir / "dropq.yaml").string()) != std::string::npos);
  auto check = RunProcess({DROPQ_BINARY, "check-config", "--config", (dir / "dropq.yaml").string()}, tmp.path());
  INFO(check.err);
  CHECK(check.exit_code == 0);
}

TEST_CASE("init creates the root's layout next to the config", "[process][init]") {
  TempDir tmp;
  const fs::path dir = tmp / "site";
  REQUIRE(RunProcess({DROPQ_BINARY, "init", dir.string()}, tmp.path()).exit_code == 0);
  CHECK(fs::is_directory(dir / "var/data/ipc/main/tasks"));
  CHECK(fs::is_directory(dir / "var/groups/main"));
  CHECK(fs::is_directory(dir / "var/store"));
}

TEST_CASE("init refuses to overwrite an existing config", "[process][init]") {
  TempDir tmp;
  const fs::path dir = tmp / "site";
  fs::create_directories(dir);
  dropq::testing::WriteFile(dir / "dropq.yaml", "root: ./mine\n");
  auto init = RunProcess({DROPQ_BINARY, "init", dir.string()}, tmp.path());
  CHECK(init.exit_code == 2);
  CHECK(init.err.find("already exists") != std::string::npos);
  CHECK(ReadFile(dir / "dropq.yaml") == "root: ./mine\n");
}

TEST_CASE("a job dropped into an init'ed root runs with run --once", "[process][init][bwrap]") {
  TempDir tmp;
  const fs::path dir = tmp / "site";
  REQUIRE(RunProcess({DROPQ_BINARY, "init", dir.string()}, tmp.path()).exit_code == 0);
  const std::string config = (dir / "dropq.yaml").string();
  REQUIRE(RunProcess({DROPQ_BINARY, "enqueue", "--config", config, "-g", "main", "-p", "hi"}, tmp.path()).exit_code ==
          0);
  auto run = RunProcess({DROPQ_BINARY, "run", "--once", "--config", config}, tmp.path());
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto jobs = RunProcess({DROPQ_BINARY, "jobs", "--config", config}, tmp.path());
  INFO(jobs.out);
  CHECK(jobs.out.find("succeeded") != std::string::npos);
}
