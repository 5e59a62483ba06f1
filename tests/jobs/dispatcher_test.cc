#include "jobs/dispatcher.h"

#include <catch2/catch.hpp>

namespace dropq {
namespace {

std::vector<JobId> Ids(const std::vector<QueuedJob>& jobs) {
  std::vector<JobId> out;
  for (const auto& j : jobs) out.push_back(j.id);
  return out;
}

TEST_CASE("a group runs one job at a time even with free slots", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 5);
  d.Add({1, "a", 0, 0});
  d.Add({2, "a", 0, 0});
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{1});
  CHECK(d.TakeStartable().empty());
  d.Finished("a");
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{2});
}

TEST_CASE("no more jobs run than max_concurrent", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 2);
  for (JobId i = 1; i <= 4; ++i) d.Add({i, "g" + std::to_string(i), 0, 0});
  CHECK(d.TakeStartable().size() == 2);
  CHECK(d.running() == 2);
  CHECK(d.TakeStartable().empty());
  d.Finished("g1");
  CHECK(d.TakeStartable().size() == 1);
}

TEST_CASE("within a group higher priority runs first, then earlier run_at, then arrival", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 1);
  d.Add({1, "a", 0, 500});
  d.Add({2, "a", 0, 100});
  d.Add({3, "a", 7, 900});
  d.Add({4, "a", 0, 100});
  std::vector<JobId> order;
  for (int i = 0; i < 4; ++i) {
    auto s = d.TakeStartable();
    REQUIRE(s.size() == 1);
    order.push_back(s[0].id);
    d.Finished("a");
  }
  CHECK(order == std::vector<JobId>{3, 2, 4, 1});
}

TEST_CASE("groups take turns so a busy group cannot starve another", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 1);
  for (JobId i = 1; i <= 5; ++i) d.Add({i, "busy", 0, 0});
  d.Add({10, "quiet", 0, 0});
  d.Add({11, "other", 0, 0});
  std::vector<std::string> served;
  for (int i = 0; i < 4; ++i) {
    auto s = d.TakeStartable();
    REQUIRE(s.size() == 1);
    served.push_back(s[0].group);
    d.Finished(s[0].group);
  }
  CHECK(served == std::vector<std::string>{"busy", "other", "quiet", "busy"});
}

TEST_CASE("a job with a future run_at waits and the wake-up time says when", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 2);
  d.Add({1, "a", 0, 5000});
  CHECK(d.TakeStartable().empty());
  REQUIRE(d.NextWakeup().has_value());
  CHECK(*d.NextWakeup() == 5000);
  clock.Set(5000);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{1});
  CHECK_FALSE(d.NextWakeup().has_value());
}

TEST_CASE("a ready lower-priority job is not held back by a higher one waiting for its time", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 1);
  d.Add({1, "a", 9, 60'000});
  d.Add({2, "a", 0, 0});
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{2});
}

TEST_CASE("a removed job never starts", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 1);
  d.Add({1, "a", 0, 0});
  d.Add({2, "a", 0, 0});
  CHECK(d.Remove(1));
  CHECK_FALSE(d.Remove(1));
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{2});
}

TEST_CASE("the dispatcher is idle only with nothing queued and nothing running", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 1);
  CHECK(d.idle());
  d.Add({1, "a", 0, 0});
  CHECK_FALSE(d.idle());
  d.TakeStartable();
  CHECK_FALSE(d.idle());
  d.Finished("a");
  CHECK(d.idle());
}

}  // namespace
}  // namespace dropq
