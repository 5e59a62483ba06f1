#include "watcher/authorize.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

// Every cell of NanoClaw's authorisation table (src/ipc.ts): who may send
// each command, for whom, and what a refusal says.
namespace {

using dropq::RunRequest;
using dropq::Status;
using namespace dropq::watcher;

// main is main; team and other are ordinary groups with jids; solo has no
// jid, so its chat jid is its folder.
const std::vector<GroupIdentity> kGroups = {
    {"main", "main@g.us", true},
    {"team", "team@g.us", false},
    {"other", "other@g.us", false},
    {"solo", std::nullopt, false},
};
const GroupIdentity& kMain = kGroups[0];
const GroupIdentity& kTeam = kGroups[1];
const GroupIdentity& kSolo = kGroups[3];

std::string AllowedFolder(const GroupIdentity& from, const JobCommand& cmd,
                          const std::optional<std::string>& owner = std::nullopt,
                          const std::vector<GroupIdentity>& groups = kGroups) {
  auto r = Authorize(from, groups, cmd, owner);
  INFO("refused: " << r.status().message());
  REQUIRE(r.ok());
  return r->folder;
}

std::string Refusal(const GroupIdentity& from, const JobCommand& cmd,
                    const std::optional<std::string>& owner = std::nullopt,
                    const std::vector<GroupIdentity>& groups = kGroups) {
  auto r = Authorize(from, groups, cmd, owner);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  return r.status().message();
}

RunRequest Run(std::optional<std::string> target_group = std::nullopt,
               std::optional<std::string> target_jid = std::nullopt) {
  RunRequest r;
  r.prompt = "p";
  r.target_group = std::move(target_group);
  r.target_jid = std::move(target_jid);
  return r;
}

ScheduleTask Schedule(std::optional<std::string> target_group = std::nullopt,
                      std::optional<std::string> target_jid = std::nullopt) {
  ScheduleTask t;
  t.prompt = "p";
  t.schedule_value = "* * * * *";
  t.target_group = std::move(target_group);
  t.target_jid = std::move(target_jid);
  return t;
}

RegisterGroup Register(std::string folder, std::string jid) {
  RegisterGroup g;
  g.jid = std::move(jid);
  g.name = "Name";
  g.folder = std::move(folder);
  return g;
}

}  // namespace

// ---- run ---------------------------------------------------------------------

TEST_CASE("a run without a target runs in the group whose folder it was dropped in") {
  CHECK(AllowedFolder(kMain, Run()) == "main");
  CHECK(AllowedFolder(kTeam, Run()) == "team");
}

TEST_CASE("the decision carries the target group's chat jid") {
  auto d = Authorize(kMain, kGroups, Run("team"));
  REQUIRE(d.ok());
  CHECK(d->chat_jid == "team@g.us");
}

TEST_CASE("main may enqueue a run for another group by target_group or targetJid") {
  CHECK(AllowedFolder(kMain, Run("team")) == "team");
  CHECK(AllowedFolder(kMain, Run(std::nullopt, "team@g.us")) == "team");
}

TEST_CASE("a non-main group may name itself as the target, by folder or by jid") {
  CHECK(AllowedFolder(kTeam, Run("team")) == "team");
  CHECK(AllowedFolder(kTeam, Run(std::nullopt, "team@g.us")) == "team");
  CHECK(AllowedFolder(kTeam, Run("team", "team@g.us")) == "team");
}

TEST_CASE("a non-main group may not enqueue a run for another group by target_group") {
  CHECK(Refusal(kTeam, Run("other")) ==
        R"(group "team" may not enqueue for target_group "other": only the main group may target another group)");
  CHECK_THAT(Refusal(kTeam, Run("main")), Catch::Contains("only the main group"));
}

TEST_CASE("a non-main group may not enqueue a run for another group by targetJid") {
  CHECK(Refusal(kTeam, Run(std::nullopt, "other@g.us")) ==
        R"(group "team" may not enqueue for targetJid "other@g.us": only the main group may target another group)");
}

TEST_CASE("a non-main group naming a missing group is refused in the same words as naming a real one") {
  CHECK(Refusal(kTeam, Run("nope")) ==
        R"(group "team" may not enqueue for target_group "nope": only the main group may target another group)");
  CHECK(Refusal(kTeam, Run(std::nullopt, "nope@g.us")) ==
        R"(group "team" may not enqueue for targetJid "nope@g.us": only the main group may target another group)");
}

TEST_CASE("main naming a group that does not exist is told so") {
  CHECK(Refusal(kMain, Run("nope")) == R"(target_group "nope" is not a configured group)");
  CHECK(Refusal(kMain, Run(std::nullopt, "nope@g.us")) == R"(targetJid "nope@g.us" is not any group's jid)");
}

TEST_CASE("target_group and targetJid naming different groups are refused") {
  CHECK(Refusal(kMain, Run("team", "other@g.us")) ==
        R"(target_group "team" and targetJid "other@g.us" name different groups)");
  CHECK(AllowedFolder(kMain, Run("team", "team@g.us")) == "team");
}

TEST_CASE("a group without a jid is addressed by its folder as its jid") {
  CHECK(AllowedFolder(kMain, Run(std::nullopt, "solo")) == "solo");
  CHECK(AllowedFolder(kSolo, Run(std::nullopt, "solo")) == "solo");
  auto d = Authorize(kMain, kGroups, Run("solo"));
  REQUIRE(d.ok());
  CHECK(d->chat_jid == "solo");
}

TEST_CASE("a folder is not an alias for a group that has a jid") {
  CHECK(Refusal(kMain, Run(std::nullopt, "team")) == R"(targetJid "team" is not any group's jid)");
}

TEST_CASE("a jid shared by two groups cannot be targeted") {
  std::vector<GroupIdentity> groups = kGroups;
  groups.push_back({"twin", "team@g.us", false});
  CHECK(Refusal(kMain, Run(std::nullopt, "team@g.us"), std::nullopt, groups) ==
        R"(targetJid "team@g.us" is the jid of more than one group ("team", "twin"))");
}

// ---- schedule_task ----------------------------------------------------------------

TEST_CASE("schedule_task from main for itself, or for another group by folder or jid, is allowed") {
  CHECK(AllowedFolder(kMain, Schedule()) == "main");
  CHECK(AllowedFolder(kMain, Schedule("team")) == "team");
  CHECK(AllowedFolder(kMain, Schedule(std::nullopt, "other@g.us")) == "other");
}

TEST_CASE("schedule_task from a non-main group for itself is allowed") {
  CHECK(AllowedFolder(kTeam, Schedule()) == "team");
  CHECK(AllowedFolder(kTeam, Schedule(std::nullopt, "team@g.us")) == "team");
}

TEST_CASE("schedule_task from a non-main group for another group is refused") {
  CHECK(Refusal(kTeam, Schedule(std::nullopt, "other@g.us")) ==
        R"(group "team" may not schedule a task for targetJid "other@g.us": )"
        R"(only the main group may target another group)");
  CHECK_THAT(Refusal(kTeam, Schedule("main")), Catch::Contains("only the main group may target another group"));
}

TEST_CASE("schedule_task from main for a missing group is refused") {
  CHECK(Refusal(kMain, Schedule("nope")) == R"(target_group "nope" is not a configured group)");
}

// ---- pause_task / resume_task / cancel_task / update_task -----------------------------

namespace {

// The four task commands with their verbs, for table-driven cells.
struct TaskCommand {
  std::string verb;
  JobCommand cmd;
};
const std::vector<TaskCommand> kTaskCommands = {
    {"pause", PauseTask{"t1"}},
    {"resume", ResumeTask{"t1"}},
    {"cancel", CancelTask{"t1"}},
    {"update", UpdateTask{"t1", {}}},
};

}  // namespace

TEST_CASE("main may pause, resume, cancel and update its own tasks") {
  for (const auto& [verb, cmd] : kTaskCommands) {
    INFO(verb);
    CHECK(AllowedFolder(kMain, cmd, "main") == "main");
  }
}

TEST_CASE("main may pause, resume, cancel and update another group's tasks") {
  for (const auto& [verb, cmd] : kTaskCommands) {
    INFO(verb);
    CHECK(AllowedFolder(kMain, cmd, "team") == "team");
  }
}

TEST_CASE("a non-main group may pause, resume, cancel and update its own tasks") {
  for (const auto& [verb, cmd] : kTaskCommands) {
    INFO(verb);
    CHECK(AllowedFolder(kTeam, cmd, "team") == "team");
  }
}

TEST_CASE("a non-main group may not pause, resume, cancel or update another group's tasks") {
  for (const auto& [verb, cmd] : kTaskCommands) {
    INFO(verb);
    CHECK(Refusal(kTeam, cmd, "other") == "no task \"t1\" in group \"team\" (a group may " + verb +
                                              " only its own tasks; the main group may " + verb + " any)");
    CHECK_THAT(Refusal(kTeam, cmd, "main"), Catch::StartsWith("no task \"t1\" in group \"team\""));
  }
}

TEST_CASE("a task that does not exist is refused, to a non-main group in the same words as another group's") {
  for (const auto& [verb, cmd] : kTaskCommands) {
    INFO(verb);
    CHECK(Refusal(kMain, cmd, std::nullopt) == R"(no task "t1")");
    CHECK(Refusal(kTeam, cmd, std::nullopt) == Refusal(kTeam, cmd, "other"));
  }
}

TEST_CASE("main may still cancel a task whose group is no longer configured") {
  auto d = Authorize(kMain, kGroups, CancelTask{"t1"}, std::string("gone"));
  REQUIRE(d.ok());
  CHECK(d->folder == "gone");
  CHECK(d->chat_jid == "gone");
}

// ---- cancel_job -------------------------------------------------------------------------

TEST_CASE("main may cancel its own jobs and another group's") {
  CHECK(AllowedFolder(kMain, CancelJob{7}, "main") == "main");
  CHECK(AllowedFolder(kMain, CancelJob{7}, "team") == "team");
}

TEST_CASE("a non-main group may cancel its own jobs") { CHECK(AllowedFolder(kTeam, CancelJob{7}, "team") == "team"); }

TEST_CASE("a non-main group may not cancel another group's jobs") {
  CHECK(Refusal(kTeam, CancelJob{7}, "other") ==
        R"(no job 7 in group "team" (a group may cancel only its own jobs; the main group may cancel any))");
  CHECK(Refusal(kTeam, CancelJob{7}, "main") == Refusal(kTeam, CancelJob{7}, "other"));
}

TEST_CASE("a job that does not exist is refused") {
  CHECK(Refusal(kMain, CancelJob{7}, std::nullopt) == "no job 7");
  CHECK(Refusal(kTeam, CancelJob{7}, std::nullopt) == Refusal(kTeam, CancelJob{7}, "other"));
}

// ---- register_group / refresh_groups ---------------------------------------------------------

TEST_CASE("main may register a new group") {
  auto d = Authorize(kMain, kGroups, Register("family", "family@g.us"));
  REQUIRE(d.ok());
  CHECK(d->folder == "family");
  CHECK(d->chat_jid == "family@g.us");
}

TEST_CASE("a non-main group may not register groups") {
  CHECK(Refusal(kTeam, Register("family", "family@g.us")) ==
        R"(only the main group may register groups; group "team" is not main)");
  CHECK_THAT(Refusal(kSolo, Register("family", "family@g.us")), Catch::StartsWith("only the main group"));
}

TEST_CASE("main may register an existing non-main group again with its own jid") {
  CHECK(AllowedFolder(kMain, Register("team", "team@g.us")) == "team");
}

TEST_CASE("registering the main group's folder is refused: it would leave no main group") {
  CHECK(Refusal(kMain, Register("main", "x@g.us")) == R"(folder "main" is the main group; it cannot be registered)");
}

TEST_CASE("registering a folder that differs from another only in case is refused") {
  CHECK(Refusal(kMain, Register("Team", "t2@g.us")) == R"(folder "Team" differs only in case from group "team")");
}

TEST_CASE("registering a jid another group already has is refused") {
  CHECK(Refusal(kMain, Register("family", "team@g.us")) == R"(jid "team@g.us" already belongs to group "team")");
  CHECK(Refusal(kMain, Register("family", "solo")) == R"(jid "solo" already belongs to group "solo")");
}

TEST_CASE("main may refresh groups") { CHECK(AllowedFolder(kMain, RefreshGroups{}) == "main"); }

TEST_CASE("a non-main group may not refresh groups") {
  CHECK(Refusal(kTeam, RefreshGroups{}) == R"(only the main group may refresh groups; group "team" is not main)");
}

// ---- messages -----------------------------------------------------------------------------------

namespace {

std::string MessageAllowed(const GroupIdentity& from, std::string chat_jid) {
  auto r = AuthorizeMessage(from, kGroups, {std::move(chat_jid), "hi"});
  INFO("refused: " << r.status().message());
  REQUIRE(r.ok());
  CHECK(r->chat_jid == ChatJid(*std::find_if(kGroups.begin(), kGroups.end(),
                                             [&](const GroupIdentity& g) { return g.folder == r->folder; })));
  return r->folder;
}

std::string MessageRefusal(const GroupIdentity& from, std::string chat_jid) {
  auto r = AuthorizeMessage(from, kGroups, {std::move(chat_jid), "hi"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("main may send a message to its own chat") { CHECK(MessageAllowed(kMain, "main@g.us") == "main"); }

TEST_CASE("main may send a message to any registered group's chat") {
  CHECK(MessageAllowed(kMain, "team@g.us") == "team");
  CHECK(MessageAllowed(kMain, "solo") == "solo");
}

TEST_CASE("main may not send a message to an unregistered chat") {
  CHECK(MessageRefusal(kMain, "stranger@s.whatsapp.net") ==
        R"(chatJid "stranger@s.whatsapp.net" is not any group's jid)");
}

TEST_CASE("a non-main group may send a message to its own chat") {
  CHECK(MessageAllowed(kTeam, "team@g.us") == "team");
  CHECK(MessageAllowed(kSolo, "solo") == "solo");
}

TEST_CASE("a non-main group may not send a message to another group's chat") {
  CHECK(MessageRefusal(kTeam, "other@g.us") ==
        R"(group "team" may send only to its own chat "team@g.us", not chatJid "other@g.us")");
  CHECK_THAT(MessageRefusal(kTeam, "main@g.us"), Catch::StartsWith(R"(group "team" may send only to its own chat)"));
}

TEST_CASE("a non-main group may not send a message to an unregistered chat") {
  CHECK(MessageRefusal(kTeam, "stranger@s.whatsapp.net") ==
        R"(group "team" may send only to its own chat "team@g.us", not chatJid "stranger@s.whatsapp.net")");
}

TEST_CASE("a group with a jid may not use its folder as its chat") {
  CHECK_THAT(MessageRefusal(kTeam, "team"), Catch::StartsWith(R"(group "team" may send only to its own chat)"));
}

TEST_CASE("values quoted in a refusal are escaped and cut short") {
  std::string msg = Refusal(kTeam, Run(std::string(500, 'x') + "\n"));
  CHECK(msg.size() < 200);
  CHECK_THAT(msg, Catch::Contains("…"));
}
