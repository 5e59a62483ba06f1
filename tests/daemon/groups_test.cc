#include "daemon/groups.h"

#include <catch2/catch.hpp>

namespace dropq::app {
namespace {

std::vector<GroupConfig> Configured() {
  GroupConfig main;
  main.folder = "main";
  main.name = "Main";
  main.jid = "main@x";
  main.is_main = true;
  GroupConfig team;
  team.folder = "team";
  team.name = "Team";
  team.jid = "team@x";
  return {main, team};
}

RegisteredGroup Row(const std::string& folder, const std::string& jid,
                    std::optional<std::string> container_config = std::nullopt) {
  return RegisteredGroup{folder, folder, jid, std::nullopt, std::nullopt, std::move(container_config)};
}

std::string ErrorOf(const RegisteredGroup& row) {
  auto g = ToGroupConfig(row);
  REQUIRE_FALSE(g.ok());
  return g.status().message();
}

TEST_CASE("a registration's containerConfig gives the group its timeout and mounts", "[groups]") {
  auto g = ToGroupConfig(
      Row("newbie", "new@x",
          R"({"timeout":60000,"additionalMounts":[{"hostPath":"~/src","containerPath":"src","readonly":false}]})"));
  REQUIRE(g.ok());
  CHECK_FALSE(g->is_main);
  CHECK(g->timeout_ms == std::optional<std::int64_t>(60000));
  REQUIRE(g->additional_mounts.size() == 1);
  CHECK(g->additional_mounts[0].host_path == "~/src");
  CHECK(g->additional_mounts[0].container_path == std::optional<std::string>("src"));
  CHECK(g->additional_mounts[0].readonly == std::optional<bool>(false));
}

TEST_CASE("an unknown containerConfig key is rejected naming it", "[groups]") {
  CHECK(ErrorOf(Row("newbie", "new@x", R"({"privileged":true})")) == "containerConfig.privileged: unknown key");
}

TEST_CASE("a mount without hostPath is rejected naming its index", "[groups]") {
  CHECK(ErrorOf(Row("newbie", "new@x", R"({"additionalMounts":[{"hostPath":"/a"},{"readonly":true}]})")) ==
        "containerConfig.additionalMounts[1].hostPath: required, a non-empty string");
}

TEST_CASE("a containerConfig timeout that is not a positive integer is rejected", "[groups]") {
  CHECK(ErrorOf(Row("newbie", "new@x", R"({"timeout":"5m"})")).rfind("containerConfig.timeout:", 0) == 0);
  CHECK(ErrorOf(Row("newbie", "new@x", R"({"timeout":0})")).rfind("containerConfig.timeout:", 0) == 0);
}

TEST_CASE("registered groups are served after the config's and never as main", "[groups]") {
  Groups groups(Configured());
  auto skipped = groups.AddRegistered({Row("newbie", "new@x")});
  CHECK(skipped.empty());
  REQUIRE(groups.identities().size() == 3);
  CHECK(groups.identities()[2].folder == "newbie");
  CHECK_FALSE(groups.identities()[2].is_main);
  REQUIRE(groups.Find("newbie") != nullptr);
  CHECK(groups.Find("newbie")->jid == std::optional<std::string>("new@x"));
}

TEST_CASE("a stored registration the config now contradicts is not served", "[groups]") {
  Groups groups(Configured());
  auto skipped = groups.AddRegistered({Row("Team", "other@x"), Row("dup", "team@x"), Row("ok", "ok@x")});
  REQUIRE(skipped.size() == 2);
  CHECK(skipped[0].find("config's group team") != std::string::npos);
  CHECK(skipped[1].find("jid team@x belongs to group team") != std::string::npos);
  CHECK(groups.Find("ok") != nullptr);
  CHECK(groups.Find("dup") == nullptr);
}

TEST_CASE("a config group cannot be registered but a registered one can be updated", "[groups]") {
  Groups groups(Configured());
  CHECK_FALSE(groups.CheckRegistrable("team").ok());
  CHECK(groups.CheckRegistrable("newbie").ok());
  auto first = ToGroupConfig(Row("newbie", "new@x"));
  REQUIRE(first.ok());
  groups.Put(*first);
  auto second = ToGroupConfig(Row("newbie", "renamed@x"));
  REQUIRE(second.ok());
  groups.Put(*second);
  CHECK(groups.all().size() == 3);
  CHECK(groups.Find("newbie")->jid == std::optional<std::string>("renamed@x"));
  CHECK(groups.CheckRegistrable("newbie").ok());
}

}  // namespace
}  // namespace dropq::app
