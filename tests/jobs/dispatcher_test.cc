#include "jobs/dispatcher.h"

#include <catch2/catch.hpp>

namespace dropq {
namespace {

std::vector<JobId> Ids(const std::vector<QueuedJob>& jobs) {
  std::vector<JobId> out;
  for (const auto& j : jobs) out.push_back(j.id);
  return out;
}

TEST_CASE("by default a group runs one job at a time even with free slots", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 5);
  d.Add({1, "a", 0, 0});
  d.Add({2, "a", 0, 0});
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{1});
  CHECK(d.TakeStartable().empty());
  d.Finished(1);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{2});
}

TEST_CASE("jobs queued after the queue emptied by starts are served in order", "[dispatcher]") {
  // The queue's nodes are given back when it empties; the next jobs get new ones.
  ManualClock clock(1000);
  Dispatcher d(clock, 4, 4);
  for (JobId i = 1; i <= 3; ++i) d.Add({i, "a", 0, 0});
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{1, 2, 3});
  CHECK(d.queued() == 0);
  for (JobId i = 1; i <= 3; ++i) d.Finished(i);
  d.Add({4, "a", 0, 0});
  d.Add({5, "a", 7, 0});
  d.Add({6, "a", 0, 0});
  CHECK(d.queued() == 3);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{5, 4, 6});
}

TEST_CASE("jobs queued after the queue emptied by removals are served in order", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 4, 4);
  d.Add({1, "a", 0, 0});
  d.Add({2, "b", 0, 0});
  CHECK(d.Remove(1));
  CHECK(d.Remove(2));
  CHECK(d.queued() == 0);
  d.Add({3, "a", 0, 0});
  d.Add({4, "a", 1, 0});
  CHECK_FALSE(d.Remove(1));
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{4, 3});
}

TEST_CASE("no more jobs run than max_concurrent", "[dispatcher]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 2);
  for (JobId i = 1; i <= 4; ++i) d.Add({i, "g" + std::to_string(i), 0, 0});
  CHECK(d.TakeStartable().size() == 2);
  CHECK(d.running() == 2);
  CHECK(d.TakeStartable().empty());
  d.Finished(1);
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
    d.Finished(s[0].id);
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
    d.Finished(s[0].id);
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
  d.Finished(1);
  CHECK(d.idle());
}


// Rate limits (docs/CONFIG.md, "Rate limits"). Each case runs one group's
// jobs to completion at once, so only the limit holds starts back.
std::vector<JobId> RunAllStartable(Dispatcher& d) {
  std::vector<JobId> out;
  for (auto s = d.TakeStartable(); !s.empty(); s = d.TakeStartable()) {
    for (const auto& j : s) {
      out.push_back(j.id);
      d.Finished(j.id);
    }
  }
  return out;
}

TEST_CASE("a rate-limited group starts no more than its limit within the period", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{2, 60'000});
  for (JobId i = 1; i <= 3; ++i) d.Add({i, "a", 0, 0});
  CHECK(RunAllStartable(d) == std::vector<JobId>{1, 2});
  CHECK(d.queued() == 1);
}

TEST_CASE("a job held by the rate limit starts when the oldest start leaves the window", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{2, 60'000});
  d.Add({1, "a", 0, 0});
  RunAllStartable(d);
  clock.Advance(10'000);
  d.Add({2, "a", 0, 0});
  d.Add({3, "a", 0, 0});
  RunAllStartable(d);
  clock.Advance(49'999);
  CHECK(d.TakeStartable().empty());
  clock.Advance(1);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{3});
}

TEST_CASE("the wake-up time is when a full rate window lets the next start through", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{1, 30'000});
  d.Add({1, "a", 0, 0});
  d.Add({2, "a", 0, 0});
  RunAllStartable(d);
  REQUIRE(d.NextWakeup().has_value());
  CHECK(*d.NextWakeup() == 1'030'000);
}

TEST_CASE("a full rate window with nothing queued asks for no wake-up", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{1, 30'000});
  d.Add({1, "a", 0, 0});
  RunAllStartable(d);
  CHECK_FALSE(d.NextWakeup().has_value());
}

TEST_CASE("a job whose run_at is after the window opens wakes the loop at its run_at", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{1, 30'000});
  d.Add({1, "a", 0, 0});
  RunAllStartable(d);
  d.Add({2, "a", 0, 1'090'000});
  REQUIRE(d.NextWakeup().has_value());
  CHECK(*d.NextWakeup() == 1'090'000);
}

TEST_CASE("a rate-limited group does not hold back other groups", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 1);
  d.SetRateLimit("limited", RateLimit{1, 60'000});
  d.Add({1, "limited", 0, 0});
  d.Add({2, "limited", 0, 0});
  d.Add({3, "other", 0, 0});
  d.Add({4, "other", 0, 0});
  CHECK(RunAllStartable(d) == std::vector<JobId>{1, 3, 4});
}

TEST_CASE("retries count against the rate limit like first attempts", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{2, 60'000});
  d.Add({1, "a", 0, 0});
  RunAllStartable(d);
  d.Add({1, "a", 0, clock.NowMs()});  // its retry, due at once
  RunAllStartable(d);
  d.Add({2, "a", 0, 0});
  CHECK(d.TakeStartable().empty());
}

TEST_CASE("starts recorded from history fill the window as starts taken here do", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{2, 60'000});
  d.RecordStart("a", 950'000);
  d.RecordStart("a", 990'000);
  d.Add({1, "a", 0, 0});
  CHECK(d.TakeStartable().empty());
  REQUIRE(d.NextWakeup().has_value());
  CHECK(*d.NextWakeup() == 1'010'000);
}

TEST_CASE("a start that could not be recorded leaves the rate window as it was", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{1, 60'000});
  d.Add({1, "a", 0, 0});
  auto s = d.TakeStartable();
  REQUIRE(s.size() == 1);
  d.Unstarted(1);
  d.Add(s[0]);
  CHECK(d.RateOf("a")->starts_in_window == 0);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{1});
}

TEST_CASE("the rate state counts the starts in the window and says when the next may start", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{2, 60'000});
  d.RecordStart("a", 930'000);  // out of the window already
  d.RecordStart("a", 970'000);
  auto half = d.RateOf("a");
  REQUIRE(half.has_value());
  CHECK(half->starts_in_window == 1);
  CHECK_FALSE(half->limited());
  d.RecordStart("a", 980'000);
  auto full = d.RateOf("a");
  CHECK(full->starts_in_window == 2);
  CHECK(full->next_start_at == std::optional<TimeMs>(1'030'000));
}

TEST_CASE("a changed rate limit starts an empty window and an unchanged one keeps it", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  CHECK(d.SetRateLimit("a", RateLimit{1, 60'000}));
  d.RecordStart("a", 990'000);
  CHECK_FALSE(d.SetRateLimit("a", RateLimit{1, 60'000}));
  CHECK(d.RateOf("a")->starts_in_window == 1);
  CHECK(d.SetRateLimit("a", RateLimit{5, 60'000}));
  CHECK(d.RateOf("a")->starts_in_window == 0);
}

TEST_CASE("removing a group's rate limit lets its held jobs start", "[dispatcher][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 5);
  d.SetRateLimit("a", RateLimit{1, 60'000});
  d.Add({1, "a", 0, 0});
  d.Add({2, "a", 0, 0});
  RunAllStartable(d);
  CHECK(d.SetRateLimit("a", std::nullopt));
  CHECK_FALSE(d.RateOf("a").has_value());
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{2});
}

// max_concurrent_per_group (docs/CONFIG.md, "Parallel jobs of one group").

TEST_CASE("a group allowed three at once starts three of its jobs and the fourth when one ends",
          "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 10, 3);
  for (JobId i = 1; i <= 5; ++i) d.Add({i, "a", 0, 0});
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{1, 2, 3});
  CHECK(d.RunningIn("a") == 3);
  CHECK(d.TakeStartable().empty());
  d.Finished(2);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{4});
  CHECK(d.RunningIn("a") == 3);
}

TEST_CASE("a group's own limit beats the default for that group only", "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 10);
  d.SetMaxPerGroup(1, {{"wide", 3}});
  for (JobId i = 1; i <= 4; ++i) d.Add({i, "wide", 0, 0});
  for (JobId i = 11; i <= 14; ++i) d.Add({i, "narrow", 0, 0});
  auto started = d.TakeStartable();
  CHECK(started.size() == 4);
  CHECK(d.RunningIn("wide") == 3);
  CHECK(d.RunningIn("narrow") == 1);
  CHECK(d.MaxPerGroupOf("wide") == 3);
  CHECK(d.MaxPerGroupOf("narrow") == 1);
}

TEST_CASE("groups that may each run several share a binding global limit in turns", "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 4, 4);
  for (JobId i = 1; i <= 6; ++i) d.Add({i, "a", 0, 0});
  for (JobId i = 11; i <= 16; ++i) d.Add({i, "b", 0, 0});
  for (JobId i = 21; i <= 26; ++i) d.Add({i, "c", 0, 0});
  std::vector<std::string> served;
  for (const auto& j : d.TakeStartable()) served.push_back(j.group);
  CHECK(served == std::vector<std::string>{"a", "b", "c", "a"});
  // A freed slot goes to the next group in turn, not back to the one that
  // already holds two.
  d.Finished(11);
  auto next = d.TakeStartable();
  REQUIRE(next.size() == 1);
  CHECK(next[0].group == "b");
  CHECK(d.running() == 4);
}

TEST_CASE("the order within a group holds when several of its jobs start at once", "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 10, 2);
  d.Add({1, "a", 0, 0});
  d.Add({2, "a", 5, 0});
  d.Add({3, "a", 9, 0});
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{3, 2});
}

TEST_CASE("a lowered per-group limit lets running jobs finish and holds new starts", "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 10, 3);
  for (JobId i = 1; i <= 5; ++i) d.Add({i, "a", 0, 0});
  REQUIRE(d.TakeStartable().size() == 3);
  d.SetMaxPerGroup(1);
  d.Finished(1);
  CHECK(d.TakeStartable().empty());
  d.Finished(2);
  CHECK(d.TakeStartable().empty());
  d.Finished(3);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{4});
}

TEST_CASE("a setting without a group's own limit returns it to the default", "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 10);
  d.SetMaxPerGroup(1, {{"a", 3}});
  d.SetMaxPerGroup(2);
  CHECK(d.MaxPerGroupOf("a") == 2);
}

TEST_CASE("an end reported twice or for an unknown job frees no other job's slot", "[dispatcher][per_group]") {
  ManualClock clock(1000);
  Dispatcher d(clock, 10, 2);
  for (JobId i = 1; i <= 3; ++i) d.Add({i, "a", 0, 0});
  REQUIRE(d.TakeStartable().size() == 2);
  d.Finished(1);
  d.Finished(1);
  d.Finished(99);
  CHECK(d.RunningIn("a") == 1);
  CHECK(Ids(d.TakeStartable()) == std::vector<JobId>{3});
  CHECK(d.TakeStartable().empty());
}

TEST_CASE("a start taken back removes that start from the rate window, not the group's latest",
          "[dispatcher][per_group][rate]") {
  ManualClock clock(1'000'000);
  Dispatcher d(clock, 10, 3);
  d.SetRateLimit("a", RateLimit{3, 60'000});
  d.Add({1, "a", 0, 0});
  REQUIRE(Ids(d.TakeStartable()) == std::vector<JobId>{1});
  clock.Advance(10);
  d.Add({2, "a", 0, 0});
  REQUIRE(Ids(d.TakeStartable()) == std::vector<JobId>{2});
  d.Unstarted(1);
  // Job 1's start (1,000,000) has left the window; job 2's (1,000,010) has not.
  clock.Set(1'060'005);
  CHECK(d.RateOf("a")->starts_in_window == 1);
}

}  // namespace
}  // namespace dropq
