// Resolving one pass's `after` references (watcher/after.h): real SQLite.
#include "watcher/after.h"

#include <catch2/catch.hpp>

#include "tests/fakes/store.h"

namespace dropq::watcher {
namespace {

struct Fixture : testing::StoreFixture {
  std::vector<GroupIdentity> groups = {{"main", std::nullopt, true}, {"team", std::nullopt, false}};
  std::vector<RunRequest> reqs;
  Fixture() : StoreFixture({"main", "team"}, true) {
    reqs.reserve(16);  // AfterItem points into it
  }
  JobId Existing(const std::string& group, const std::string& client_id) {
    RunRequest req;
    req.prompt = "p";
    req.client_id = client_id;
    auto r = store->InsertJob(group, req, {group, "x.json", "abc", "c-" + group + client_id}, 1);
    REQUIRE(r.ok());
    return r->id;
  }
  // A file of the pass: its client id (empty: none) and what it names.
  void File(const std::string& id, std::vector<std::string> after, std::vector<JobId> after_ids = {}) {
    RunRequest req;
    req.prompt = "p";
    if (!id.empty()) req.client_id = id;
    for (auto& a : after) req.after.push_back({std::nullopt, a, a});
    for (JobId j : after_ids) req.after.push_back({j, "", std::to_string(j)});
    reqs.push_back(std::move(req));
  }
  AfterPlan Plan(const std::string& group = "team", bool from_main = false) {
    std::vector<AfterItem> items;
    for (const auto& r : reqs) items.push_back({group, from_main, &r});
    auto plan = PlanAfter(*store, groups, items);
    REQUIRE(plan.ok());
    return *plan;
  }
};

TEST_CASE("a file naming a later file of the same pass is placed after it", "[after]") {
  Fixture f;
  f.File("then", {"first"});
  f.File("first", {});
  AfterPlan p = f.Plan();
  CHECK(p.rejected.empty());
  CHECK(p.order == std::vector<std::size_t>{1, 0});
  REQUIRE(p.deps[0].size() == 1);
  CHECK(std::get<std::size_t>(p.deps[0][0]) == 1);
}

TEST_CASE("a file naming an earlier file of the same pass keeps the order", "[after]") {
  Fixture f;
  f.File("first", {});
  f.File("then", {"first"});
  AfterPlan p = f.Plan();
  CHECK(p.rejected.empty());
  CHECK(p.order == std::vector<std::size_t>{0, 1});
}

TEST_CASE("a file naming an earlier file keeps its place before later files of the pass", "[after]") {
  // Name order decides which of two files with one unique key makes the
  // job (FILES.md): a dependency must not send a file behind later ones.
  Fixture f;
  f.File("first", {});
  f.File("then", {"first"});
  f.File("later", {});
  AfterPlan p = f.Plan();
  CHECK(p.rejected.empty());
  CHECK(p.order == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("a client id already in the database names that job", "[after]") {
  Fixture f;
  JobId earlier = f.Existing("team", "build");
  f.File("", {"build"});
  AfterPlan p = f.Plan();
  REQUIRE(p.deps[0].size() == 1);
  CHECK(std::get<JobId>(p.deps[0][0]) == earlier);
}

TEST_CASE("a name no job has is rejected with the reason", "[after]") {
  Fixture f;
  f.File("", {"nope"});
  AfterPlan p = f.Plan();
  CHECK(p.order.empty());
  REQUIRE(p.rejected.size() == 1);
  CHECK(p.rejected[0].second == "field \"after\": no job with id \"nope\" in group \"team\"");
}

TEST_CASE("a group cannot name another group's job by its id", "[after]") {
  Fixture f;
  JobId mains = f.Existing("main", "m");
  f.File("", {}, {mains});
  AfterPlan p = f.Plan();
  REQUIRE(p.rejected.size() == 1);
  CHECK(p.rejected[0].second == "field \"after\": no job " + std::to_string(mains) + " in group \"team\"");
}

TEST_CASE("main names another group's job as group:id", "[after]") {
  Fixture f;
  JobId teams = f.Existing("team", "t");
  f.File("", {"team:t"});
  AfterPlan p = f.Plan("main", true);
  CHECK(p.rejected.empty());
  CHECK(std::get<JobId>(p.deps[0][0]) == teams);
}

TEST_CASE("a group's group:id is an ordinary client id of its own group", "[after]") {
  Fixture f;
  f.Existing("main", "t");
  f.File("", {"main:t"});
  AfterPlan p = f.Plan("team", false);
  REQUIRE(p.rejected.size() == 1);
  CHECK(p.rejected[0].second == "field \"after\": no job with id \"main:t\" in group \"team\"");
}

TEST_CASE("files of one pass that name each other are all rejected", "[after]") {
  Fixture f;
  f.File("a", {"b"});
  f.File("b", {"a"});
  f.File("c", {});
  AfterPlan p = f.Plan();
  CHECK(p.order == std::vector<std::size_t>{2});
  REQUIRE(p.rejected.size() == 2);
  CHECK(p.rejected[0].second.find("dependency cycle") != std::string::npos);
}

TEST_CASE("a file naming itself is a cycle", "[after]") {
  Fixture f;
  f.File("a", {"a"});
  AfterPlan p = f.Plan();
  CHECK(p.order.empty());
  CHECK(p.rejected.size() == 1);
}

TEST_CASE("a file naming a rejected file of the pass is rejected, naming it", "[after]") {
  Fixture f;
  f.File("a", {"nope"});
  f.File("b", {"a"});
  AfterPlan p = f.Plan();
  CHECK(p.order.empty());
  REQUIRE(p.rejected.size() == 2);
  CHECK(p.rejected[1].second == "field \"after\": names \"a\", which was rejected");
}

}  // namespace
}  // namespace dropq::watcher
