#include "jobs/wait.h"

#include <catch2/catch.hpp>

#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using testing::TempDir;

// The database a daemon keeps open, with one job committed, as WaitForStore
// meets it.
struct OpenDatabase {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  std::unique_ptr<Store> store;
  OpenDatabase() {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
  }
};

TEST_CASE("waiting on a database nobody writes looks only when its timers fire", "[wait]") {
  // Each look opens a read-only connection, which (as root) touches the
  // -wal file's attributes; a wait that answered its own touches looked
  // thousands of times and never reached its timeout.
  OpenDatabase db;
  int looks = 0;
  bool done = WaitForStore(
      db.dir / "dropq.db",
      [&](Store* store) {
        ++looks;
        return store == nullptr;  // never true: the database is there
      },
      300);
  CHECK_FALSE(done);
  // The first look, the look after arming the watches, and the backoff
  // timer's (100 ms, then 200 ms more).
  CHECK(looks <= 5);
}

TEST_CASE("waiting on a database wakes for a commit made while it waits", "[wait]") {
  OpenDatabase db;
  int looks = 0;
  bool done = WaitForStore(
      db.dir / "dropq.db",
      [&](Store* store) {
        if (++looks == 2) {  // committed after this look read the database
          REQUIRE(db.store->AppendEvent(std::nullopt, "main", "ready", "{}").ok());
          return false;
        }
        auto last = store->LastEventId();
        return last.ok() && *last > 0;
      },
      60'000);
  CHECK(done);
}

}  // namespace
}  // namespace dropq
