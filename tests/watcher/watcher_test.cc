#include "watcher/watcher.h"

#include <uv.h>

#include <catch2/catch.hpp>

#include "tests/fakes/temp_dir.h"
#include "watcher/ingest.h"
#include "watcher/messages.h"

namespace dropq::watcher {
namespace {

using dropq::testing::TempDir;
using dropq::testing::WriteFile;
namespace fs = std::filesystem;

// A root with one group, main, and its store.
struct Root {
  TempDir dir;
  ManualClock clock;
  Layout layout{dir.path()};
  std::unique_ptr<Store> store;
  std::vector<GroupIdentity> groups = {{"main", "main@x", true}};

  Root() {
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("main").ok());
    store = std::move(*Store::Open(layout.DatabasePath().string(), clock));
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
  }
};

// A loop that runs until Stop() closes the watcher. Its guard timer ends a
// run whose awaited event never comes, so a regression fails instead of
// hanging; not a measure of time.
struct Loop {
  uv_loop_t loop{};
  uv_timer_t guard{};
  std::unique_ptr<Watcher> watcher;

  Loop() {
    uv_loop_init(&loop);
    uv_timer_init(&loop, &guard);
    guard.data = this;
  }
  void Stop() {
    watcher->Close();
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&guard)))
      uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  }
  void Run() {
    uv_timer_start(
        &guard, [](uv_timer_t* t) { static_cast<Loop*>(t->data)->Stop(); }, 30'000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

TEST_CASE("after an ingest pass that queued 256 jobs the watcher looks at tasks/ again at once") {
  Root r;
  auto& layout = r.layout;
  IngestOptions o;
  o.groups = r.groups;
  o.max_file_bytes = 4096;
  Ingestor ingestor(*r.store, layout, o, r.clock);
  const std::string job = R"({"type":"run","prompt":"x"})";

  // A file already there when watching starts makes no event, as a file
  // whose event an overflowing inotify queue dropped: only a scan finds it.
  WriteFile(layout.TasksDir("main") / "unannounced.json", job);
  Loop l;
  std::size_t queued = 0;
  // The safety rescan is an hour away: it cannot be what finds the file.
  l.watcher = std::make_unique<Watcher>(
      &l.loop, layout, ingestor, std::vector<std::string>{"main"},
      [&](std::vector<QueuedJob> jobs) {
        queued += jobs.size();
        if (queued >= 257) l.Stop();
      },
      3'600'000);
  REQUIRE(l.watcher->Start().ok());
  // 256 drops before the loop runs, so their events arrive in one turn and
  // make one pass, written aside and renamed in as writers do.
  fs::create_directories(r.dir / "stage");
  for (int i = 0; i < 256; ++i) {
    std::string name = "burst-" + std::to_string(i) + ".json";
    WriteFile(r.dir / "stage" / name, job);
    fs::rename(r.dir / "stage" / name, layout.TasksDir("main") / name);
  }
  l.Run();

  CHECK(queued == 257);
  CHECK(fs::is_empty(layout.TasksDir("main")));
}

TEST_CASE("a slow on_message hook does not hold up the ingest of tasks/ in the same loop", "[messages]") {
  Root r;
  auto& layout = r.layout;
  IngestOptions io;
  io.groups = r.groups;
  Ingestor ingestor(*r.store, layout, io, r.clock);

  // The hook drops a job file (written aside, renamed in) and then blocks
  // until the gate file appears; only the job's ingest opens the gate. A
  // hook run on the loop would block the loop and so the ingest: it would
  // be killed at its timeout, the message failed, before the job came.
  fs::create_directories(r.dir / "stage");
  WriteFile(r.dir / "stage" / "job.json", R"({"type":"run","prompt":"x"})");
  auto gate = r.dir / "gate";
  auto tasks = layout.TasksDir("main");
  std::string script = "cat >/dev/null; cp '" + (r.dir / "stage" / "job.json").string() + "' '" +
                       (tasks / ".job.tmp").string() + "' && mv '" + (tasks / ".job.tmp").string() + "' '" +
                       (tasks / "job.json").string() + "'; while [ ! -e '" + gate.string() + "' ]; do sleep 0.01; done";

  Loop l;
  std::vector<std::string> seen;  // what happened, in order
  MessageOptions mo;
  mo.groups = r.groups;
  mo.on_message = {"/bin/sh", "-c", script};  // a shell in the test only
  mo.hook_timeout_ms = 20'000;
  mo.after_delivery = [&] {
    seen.push_back("delivered");
    l.Stop();
  };
  MessageInbox inbox(&l.loop, *r.store, layout, mo, r.clock);
  l.watcher = std::make_unique<Watcher>(
      &l.loop, layout, ingestor, std::vector<std::string>{"main"},
      [&](std::vector<QueuedJob> jobs) {
        if (jobs.empty()) return;
        seen.push_back("job queued");
        WriteFile(gate, "");
      },
      3'600'000, &inbox);
  REQUIRE(l.watcher->Start().ok());
  WriteFile(layout.MessagesDir("main") / "m.json", R"({"type":"message","chatJid":"main@x","text":"slow"})");
  inbox.ScanAll();
  l.watcher->Kick();
  l.Run();

  CHECK(seen == std::vector<std::string>{"job queued", "delivered"});
  CHECK(inbox.stats().delivered == 1);
  CHECK(ingestor.stats().accepted == 1);
}

}  // namespace
}  // namespace dropq::watcher
