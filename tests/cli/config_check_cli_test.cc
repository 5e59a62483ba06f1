// check-config and doctor, on the real binary, with a config copied into a
// folder of its own (its relative paths resolve against that folder).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "tests/fakes/process.h"
#include "tests/fakes/temp_dir.h"

using dropq::testing::RunProcess;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;

namespace {

// bwrap, with the agent bound from beside the config: ./bin/agent is absent.
std::string ConfigWithMissingAgent() {
  return "runtime: bwrap\n"
         "agent: [/opt/dropq/agent]\n"
         "root: ./var\n"
         "mount_allowlist: ./mount-allowlist.json\n"
         "bwrap:\n"
         "  ro_binds:\n"
         "    - {host: ./bin/agent, container: /opt/dropq/agent}\n"
         "groups:\n"
         "  - folder: main\n"
         "    main: true\n";
}

}  // namespace

TEST_CASE("check-config fails and names the missing agent of a copied config", "[process]") {
  TempDir dir;
  std::filesystem::create_directories(dir / "elsewhere");
  WriteFile(dir / "elsewhere/dropq.yaml", ConfigWithMissingAgent());
  auto r = RunProcess({DROPQ_BINARY, "check-config", "--config", (dir / "elsewhere/dropq.yaml").string()}, dir.path());
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains((dir / "elsewhere/bin/agent").string() + " does not exist"));
}

TEST_CASE("check-config --json lists its findings", "[process]") {
  TempDir dir;
  std::filesystem::create_directories(dir / "elsewhere");
  WriteFile(dir / "elsewhere/dropq.yaml", ConfigWithMissingAgent());
  auto r = RunProcess({DROPQ_BINARY, "check-config", "--json", "--config", (dir / "elsewhere/dropq.yaml").string()},
                      dir.path());
  CHECK(r.exit_code == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["ok"] == false);
  bool agent_failed = false;
  for (const auto& f : j["findings"]) agent_failed = agent_failed || (f["check"] == "agent" && f["status"] == "fail");
  CHECK(agent_failed);
}

TEST_CASE("check-config passes when the agent it binds exists and is executable", "[process]") {
  TempDir dir;
  std::filesystem::create_directories(dir / "elsewhere");
  WriteFile(dir / "elsewhere/dropq.yaml", ConfigWithMissingAgent());
  std::filesystem::create_directories(dir / "elsewhere/bin");
  std::filesystem::copy_file(DROPQ_DEMO_AGENT, dir / "elsewhere/bin/agent");
  auto r = RunProcess({DROPQ_BINARY, "check-config", "--config", (dir / "elsewhere/dropq.yaml").string()}, dir.path());
  CHECK(r.exit_code == 0);
}

TEST_CASE("A config error names file, line and column and suggests the key meant", "[process]") {
  TempDir dir;
  WriteFile(dir / "dropq.yaml", ConfigWithMissingAgent() + "max_concurent: 2\n");
  auto r = RunProcess({DROPQ_BINARY, "check-config", "--config", (dir / "dropq.yaml").string()}, dir.path());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains((dir / "dropq.yaml").string() +
                                    ":11:1: max_concurent: unknown key; did you mean `max_concurrent`?"));
}

TEST_CASE("doctor shows bwrap's own error when the probe sandbox fails", "[process]") {
  TempDir dir;
  std::filesystem::create_directories(dir / "elsewhere");
  WriteFile(dir / "elsewhere/dropq.yaml", ConfigWithMissingAgent());
  auto r = RunProcess({DROPQ_BINARY, "doctor", "--config", (dir / "elsewhere/dropq.yaml").string()}, dir.path());
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("Can't find source path " + (dir / "elsewhere/bin/agent").string()));
  CHECK_THAT(r.out, !Catch::Contains("user namespaces may be disabled"));
}
