#pragma once
// A root with groups main and team, their database rows, and tasks to add:
// what the snapshot tests (snapshots_test.cc, snapshot_writer_test.cc) share.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "jobs/tasks.h"
#include "tests/fakes/temp_dir.h"
#include "watcher/authorize.h"

namespace dropq::testing {

struct SnapshotFixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  Layout layout{dir.path()};
  std::unique_ptr<Store> store;
  std::vector<watcher::GroupIdentity> groups = {{"main", "main@x", true}, {"team", std::nullopt, false}};

  SnapshotFixture() {
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("main").ok());
    REQUIRE(layout.CreateGroup("team").ok());
    store = std::move(*Store::Open(layout.DatabasePath().string(), clock));
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup("team", "Team", std::nullopt, false).ok());
  }

  void AddTask(const std::string& id, const std::string& group, const std::string& prompt = "p") {
    Task t;
    t.id = id;
    t.group_folder = group;
    t.prompt = prompt;
    t.schedule_type = ScheduleType::kInterval;
    t.schedule_value = "60000";
    t.tz = "UTC";
    t.next_run = clock.NowMs() + 60000;
    t.created_at = t.updated_at = clock.NowMs();
    REQUIRE(TaskStore(*store).Upsert(t).ok());
  }
};

}  // namespace dropq::testing
