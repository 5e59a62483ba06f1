// SnapshotWriter on a real libuv loop and thread pool, with a real database.
#include "runner/snapshot_writer.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "jobs/tasks.h"
#include "tests/runner/snapshot_fixture.h"

namespace dropq::app {
namespace {

using dropq::testing::ReadFile;

struct Fixture : dropq::testing::SnapshotFixture {
  uv_loop_t loop{};

  Fixture() { uv_loop_init(&loop); }
  ~Fixture() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  void AddTask(const std::string& id) { SnapshotFixture::AddTask(id, "team"); }
  std::size_t MainTasks() {
    return nlohmann::json::parse(ReadFile(layout.IpcDir("main") / "current_tasks.json")).size();
  }
  std::unique_ptr<SnapshotWriter> Writer(std::int64_t on_loop_under_cpu_us) {
    return std::make_unique<SnapshotWriter>(&loop, layout, *store, layout.DatabasePath().string(), clock,
                                            on_loop_under_cpu_us);
  }
};

TEST_CASE("a cheap snapshot write is done at once on the loop", "[snapshots][writer]") {
  Fixture f;
  f.AddTask("a");
  auto w = f.Writer(1'000'000);
  w->Request(f.groups);
  CHECK_FALSE(w->busy());
  CHECK(f.MainTasks() == 1);
}

TEST_CASE("a snapshot write on the pool is waited for before WhenWritten runs", "[snapshots][writer]") {
  Fixture f;
  f.AddTask("a");
  auto w = f.Writer(0);
  w->Request(f.groups);
  CHECK(w->busy());
  bool called = false;
  w->WhenWritten([&] {
    called = true;
    CHECK(f.MainTasks() == 1);  // the file is there when the callback runs
  });
  CHECK_FALSE(called);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  CHECK(called);
  CHECK_FALSE(w->busy());
  CHECK_FALSE(w->failed());
}

TEST_CASE("requests made while a snapshot write runs make one more write that sees the latest state",
          "[snapshots][writer]") {
  Fixture f;
  f.AddTask("a");
  auto w = f.Writer(0);
  w->Request(f.groups);
  f.AddTask("b");
  w->Request(f.groups);
  f.AddTask("c");
  w->Request(f.groups);
  std::vector<std::size_t> seen;
  w->WhenWritten([&] { seen.push_back(f.MainTasks()); });
  uv_run(&f.loop, UV_RUN_DEFAULT);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == 3);
}

TEST_CASE("WhenWritten with no snapshot write pending runs at once", "[snapshots][writer]") {
  Fixture f;
  auto w = f.Writer(0);
  bool called = false;
  w->WhenWritten([&] { called = true; });
  CHECK(called);
}

}  // namespace
}  // namespace dropq::app
