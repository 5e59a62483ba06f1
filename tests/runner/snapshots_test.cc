#include "runner/snapshots.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "jobs/tasks.h"
#include "tests/runner/snapshot_fixture.h"
#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using dropq::testing::ReadFile;
using dropq::testing::TempDir;
namespace fs = std::filesystem;

struct Fixture : dropq::testing::SnapshotFixture {
  void Write() { REQUIRE(WriteSnapshots(layout, *store, groups).ok()); }
  nlohmann::json Read(const std::string& group, const std::string& file) {
    return nlohmann::json::parse(ReadFile(layout.IpcDir(group) / file));
  }
  struct stat Stat(const std::string& group, const std::string& file) {
    struct stat st {};
    REQUIRE(::stat((layout.IpcDir(group) / file).c_str(), &st) == 0);
    return st;
  }
};

TEST_CASE("main's snapshots show every task and group, another group's only its own tasks and no groups",
          "[snapshots]") {
  Fixture f;
  f.AddTask("m1", "main");
  f.AddTask("t1", "team", "team work");
  RunRequest req;
  req.prompt = "job";
  REQUIRE(f.store->InsertJob("team", req, {"team", "a.json", "h", "tok"}, 1).ok());
  f.Write();

  auto main_tasks = f.Read("main", "current_tasks.json");
  REQUIRE(main_tasks.size() == 2);
  auto team_tasks = f.Read("team", "current_tasks.json");
  REQUIRE(team_tasks.size() == 1);
  CHECK(team_tasks[0]["id"] == "t1");
  CHECK(team_tasks[0]["groupFolder"] == "team");
  CHECK(team_tasks[0]["prompt"] == "team work");
  CHECK(team_tasks[0]["schedule_type"] == "interval");
  CHECK(team_tasks[0]["schedule_value"] == "60000");
  CHECK(team_tasks[0]["status"] == "active");
  CHECK(team_tasks[0]["next_run"] == FormatIsoUtc(f.clock.NowMs() + 60000));

  auto main_groups = f.Read("main", "available_groups.json");
  CHECK(main_groups["lastSync"] == FormatIsoUtc(f.clock.NowMs()));
  REQUIRE(main_groups["groups"].size() == 2);
  auto team = main_groups["groups"][1];
  CHECK(team["folder"] == "team");
  CHECK(team["jid"] == "team");  // no jid: the folder is its chat jid
  CHECK(team["name"] == "Team");
  CHECK(team["isRegistered"] == true);
  CHECK(team["lastActivity"] == FormatIsoUtc(f.clock.NowMs()));
  CHECK(main_groups["groups"][0]["lastActivity"].is_null());
  CHECK(f.Read("team", "available_groups.json")["groups"].empty());
}

TEST_CASE("an unchanged snapshot is not rewritten", "[snapshots]") {
  Fixture f;
  f.AddTask("t1", "team");
  f.Write();
  auto tasks_before = f.Stat("team", "current_tasks.json");
  auto groups_before = f.Stat("main", "available_groups.json");
  auto sync_before = f.Read("main", "available_groups.json")["lastSync"];
  f.clock.Advance(60'000);
  f.Write();
  auto tasks_after = f.Stat("team", "current_tasks.json");
  auto groups_after = f.Stat("main", "available_groups.json");
  CHECK(tasks_after.st_ino == tasks_before.st_ino);
  CHECK(tasks_after.st_mtim.tv_nsec == tasks_before.st_mtim.tv_nsec);
  CHECK(groups_after.st_ino == groups_before.st_ino);
  CHECK(f.Read("main", "available_groups.json")["lastSync"] == sync_before);
}

TEST_CASE("a changed task rewrites the snapshots that show it", "[snapshots]") {
  Fixture f;
  f.AddTask("t1", "team");
  f.Write();
  auto main_before = f.Stat("main", "current_tasks.json");
  REQUIRE(TaskStore(*f.store).SetStatus("t1", TaskStatus::kPaused).ok());
  f.Write();
  CHECK(f.Stat("main", "current_tasks.json").st_ino != main_before.st_ino);
  CHECK(f.Read("team", "current_tasks.json")[0]["status"] == "paused");
}

TEST_CASE("a symlink planted as a snapshot is replaced and its target left alone", "[snapshots]") {
  Fixture f;
  auto target = f.dir / "secret.txt";
  dropq::testing::WriteFile(target, "secret");
  fs::create_symlink(target, f.layout.IpcDir("team") / "current_tasks.json");
  f.Write();
  CHECK_FALSE(fs::is_symlink(f.layout.IpcDir("team") / "current_tasks.json"));
  CHECK(f.Read("team", "current_tasks.json").empty());
  CHECK(ReadFile(target) == "secret");
}

TEST_CASE("current_tasks.json is byte for byte the array's dump, awkward prompts and empty lists included",
          "[snapshots]") {
  Fixture f;
  f.Write();  // no tasks yet
  CHECK(ReadFile(f.layout.IpcDir("main") / "current_tasks.json") == "[]\n");
  f.AddTask("a", "main", "line one\nline \"two\"\t\u00e9");
  f.AddTask("b", "team", std::string("bad utf-8: \xff\xfe end"));
  f.AddTask("c", "team", "{\"nested\": [1, 2]}");
  f.Write();
  using Json = nlohmann::ordered_json;
  auto expected = [&](const std::string& folder, bool is_main) {
    Json all = Json::array();
    for (const auto& t : *TaskStore(*f.store).List()) {
      if (!is_main && t.group_folder != folder) continue;
      all.push_back(Json{{"id", t.id},
                         {"groupFolder", t.group_folder},
                         {"prompt", t.prompt},
                         {"schedule_type", ToString(t.schedule_type)},
                         {"schedule_value", t.schedule_value},
                         {"status", ToString(t.status)},
                         {"next_run", t.next_run ? Json(FormatIsoUtc(*t.next_run)) : Json(nullptr)}});
    }
    return all.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  };
  CHECK(ReadFile(f.layout.IpcDir("main") / "current_tasks.json") == expected("main", true));
  CHECK(ReadFile(f.layout.IpcDir("team") / "current_tasks.json") == expected("team", false));
}

}  // namespace
}  // namespace dropq
