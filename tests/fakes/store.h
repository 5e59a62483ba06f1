#pragma once
// A real SQLite store in a fresh directory, on a clock the test moves, with
// the groups it names: the start of every test of jobs/ and watcher/ that
// writes through the store.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "base/clock.h"
#include "jobs/store.h"
#include "tests/fakes/temp_dir.h"

namespace dropq::testing {

struct StoreFixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  std::unique_ptr<Store> store;

  // `groups`: folders made with UpsertGroup; the first is main when
  // `first_is_main`.
  explicit StoreFixture(const std::vector<std::string>& groups = {"team"}, bool first_is_main = false) {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    for (std::size_t i = 0; i < groups.size(); ++i) {
      REQUIRE(store->UpsertGroup(groups[i], groups[i], std::nullopt, first_is_main && i == 0).ok());
    }
  }
};

}  // namespace dropq::testing
