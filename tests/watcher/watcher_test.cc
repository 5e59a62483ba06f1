#include "watcher/watcher.h"

#include <uv.h>

#include <catch2/catch.hpp>

#include "tests/fakes/temp_dir.h"
#include "watcher/ingest.h"

namespace dropq::watcher {
namespace {

using dropq::testing::TempDir;
using dropq::testing::WriteFile;
namespace fs = std::filesystem;

TEST_CASE("after an ingest pass that queued 256 jobs the watcher looks at tasks/ again at once") {
  TempDir dir;
  ManualClock clock;
  Layout layout{dir.path()};
  REQUIRE(layout.CreateCommon().ok());
  REQUIRE(layout.CreateGroup("main").ok());
  auto store = std::move(*Store::Open(layout.DatabasePath().string(), clock));
  REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
  IngestOptions o;
  o.groups = {{"main", "main@x", true}};
  o.max_file_bytes = 4096;
  Ingestor ingestor(*store, layout, o, clock);
  const std::string job = R"({"type":"run","prompt":"x"})";

  // A file already there when watching starts makes no event, as a file
  // whose event an overflowing inotify queue dropped: only a scan finds it.
  WriteFile(layout.TasksDir("main") / "unannounced.json", job);
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  std::size_t queued = 0;
  std::unique_ptr<Watcher> w;
  auto stop = [&] {
    w->Close();
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&guard))) uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  };
  // The safety rescan is an hour away: it cannot be what finds the file.
  w = std::make_unique<Watcher>(&loop, layout, ingestor, std::vector<std::string>{"main"},
                                [&](std::vector<QueuedJob> jobs) {
                                  queued += jobs.size();
                                  if (queued >= 257) stop();
                                },
                                3'600'000);
  REQUIRE(w->Start().ok());
  // 256 drops before the loop runs, so their events arrive in one turn and
  // make one pass, written aside and renamed in as writers do.
  fs::create_directories(dir / "stage");
  for (int i = 0; i < 256; ++i) {
    std::string name = "burst-" + std::to_string(i) + ".json";
    WriteFile(dir / "stage" / name, job);
    fs::rename(dir / "stage" / name, layout.TasksDir("main") / name);
  }
  // Ends the loop if the file is never found, so a regression fails here
  // instead of hanging; not a measure of time.
  guard.data = &stop;
  uv_timer_start(&guard, [](uv_timer_t* t) { (*static_cast<decltype(stop)*>(t->data))(); }, 30'000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  CHECK(queued == 257);
  CHECK(fs::is_empty(layout.TasksDir("main")));
}

}  // namespace
}  // namespace dropq::watcher
