#include "watcher/ingest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/fakes/temp_dir.h"

namespace dropq::watcher {
namespace {

using dropq::testing::ReadFile;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;
namespace fs = std::filesystem;

struct Fixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  Layout layout{dir.path()};
  std::unique_ptr<Store> store;
  std::unique_ptr<Ingestor> ingestor;

  Fixture() {
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("main").ok());
    REQUIRE(layout.CreateGroup("team").ok());
    store = std::move(*Store::Open(layout.DatabasePath().string(), clock));
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup("team", "Team", std::string("team@x"), false).ok());
    IngestOptions o;
    o.groups = {{"main", "main@x", true}, {"team", "team@x", false}};
    o.max_file_bytes = 4096;
    ingestor = std::make_unique<Ingestor>(*store, layout, o, clock);
  }

  fs::path Drop(const std::string& group, const std::string& name, const std::string& content) {
    auto p = layout.TasksDir(group) / name;
    WriteFile(p, content);
    return p;
  }

  std::vector<QueuedJob> FlushAll() {
    ingestor->ScanAll();
    auto r = ingestor->Flush();
    REQUIRE(r.ok());
    return *r;
  }

  std::vector<JobEvent> Rejections() {
    std::vector<JobEvent> out;
    for (auto& e : *store->ListEvents(std::nullopt))
      if (e.event == "rejected") out.push_back(e);
    return out;
  }

  bool Empty(const fs::path& d) { return fs::is_empty(d); }
};

TEST_CASE("a valid file becomes a queued job and is removed", "[ingest]") {
  Fixture f;
  f.Drop("team", "a.json", R"({"type":"run","prompt":"hi"})");
  auto jobs = f.FlushAll();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].group == "team");
  auto job = **f.store->GetJob(jobs[0].id);
  CHECK(job.prompt == "hi");
  CHECK(job.source_name == std::optional<std::string>("a.json"));
  CHECK(job.source_hash->size() == 64);
  CHECK(f.Empty(f.layout.TasksDir("team")));
  CHECK(f.Empty(f.layout.ClaimedDir("team")));
}

TEST_CASE("a job keeps its file's max_interruptions, else gets the configured default", "[ingest]") {
  Fixture f;
  IngestOptions o;
  o.groups = {{"main", "main@x", true}, {"team", "team@x", false}};
  o.default_max_interruptions = 7;
  f.ingestor = std::make_unique<Ingestor>(*f.store, f.layout, o, f.clock);
  f.Drop("team", "a.json", R"({"prompt":"hi","max_interruptions":0})");
  f.Drop("team", "b.json", R"({"prompt":"hi"})");
  auto jobs = f.FlushAll();
  REQUIRE(jobs.size() == 2);
  std::map<std::string, std::int64_t> by_file;
  for (const auto& q : jobs) {
    auto job = **f.store->GetJob(q.id);
    by_file[job.source_name.value_or("")] = job.max_interruptions;
  }
  CHECK(by_file == std::map<std::string, std::int64_t>{{"a.json", 0}, {"b.json", 7}});
}

TEST_CASE("files in one pass are committed together and all become jobs", "[ingest]") {
  Fixture f;
  for (int i = 0; i < 20; ++i) f.Drop(i % 2 ? "main" : "team", "j" + std::to_string(i) + ".json", R"({"prompt":"p"})");
  CHECK(f.FlushAll().size() == 20);
  CHECK(f.store->ListJobs({})->size() == 20);
}

TEST_CASE("names not ending in .json are left alone", "[ingest]") {
  Fixture f;
  auto p = f.Drop("team", "a.json.tmp", R"({"prompt":"hi"})");
  CHECK(f.FlushAll().empty());
  CHECK(fs::exists(p));
}

TEST_CASE("a malformed file moves to errors with a reason and an audit row", "[ingest]") {
  Fixture f;
  f.Drop("team", "bad.json", "{not json");
  CHECK(f.FlushAll().empty());
  auto moved = f.layout.ErrorsDir() / "team-bad.json";
  CHECK(ReadFile(moved) == "{not json");
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-bad.json.error.json"));
  CHECK(why["group"] == "team");
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("invalid JSON"));
  auto rej = f.Rejections();
  REQUIRE(rej.size() == 1);
  CHECK(rej[0].group == std::optional<std::string>("team"));
  CHECK(f.Empty(f.layout.TasksDir("team")));
  CHECK(f.Empty(f.layout.ClaimedDir("team")));
}

// The file's modification time as the ingestor's clock reads it.
TimeMs MtimeMs(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<TimeMs>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

TEST_CASE("a file still being written in place is read again once it settles", "[ingest][settle]") {
  Fixture f;
  auto path = f.layout.TasksDir("team") / "slow.json";
  // A writer that writes in place, in two steps, through one descriptor:
  // the claim renames the file, the second write still reaches it.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string head = R"({"prompt":"hel)", tail = R"(lo"})";
  REQUIRE(::write(fd, head.data(), head.size()) == static_cast<ssize_t>(head.size()));
  f.clock.Set(MtimeMs(path) + 10);
  CHECK(f.FlushAll().empty());
  CHECK(f.Rejections().empty());
  CHECK(f.ingestor->pending());
  CHECK(f.ingestor->NextSettleDelayMs() == std::optional<std::int64_t>(500));
  REQUIRE(::write(fd, tail.data(), tail.size()) == static_cast<ssize_t>(tail.size()));
  ::close(fd);
  f.clock.Advance(500);
  auto jobs = f.ingestor->Flush();
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 1);
  CHECK((**f.store->GetJob((*jobs)[0].id)).prompt == "hello");
  CHECK_FALSE(f.ingestor->pending());
  CHECK(f.Empty(f.layout.ClaimedDir("team")));
}

TEST_CASE("a just-written file that still does not parse after settling is rejected", "[ingest][settle]") {
  Fixture f;
  auto path = f.Drop("team", "half.json", R"({"prompt":)");
  f.clock.Set(MtimeMs(path) + 10);
  CHECK(f.FlushAll().empty());
  CHECK(f.Rejections().empty());
  f.clock.Advance(499);
  REQUIRE(f.ingestor->Flush().ok());
  CHECK(f.Rejections().empty());  // not due yet
  f.clock.Advance(1);
  REQUIRE(f.ingestor->Flush().ok());
  REQUIRE(f.Rejections().size() == 1);
  CHECK(fs::exists(f.layout.ErrorsDir() / "team-half.json.error.json"));
  CHECK_FALSE(f.ingestor->pending());
}

TEST_CASE("a just-written whole document with a bad field is rejected at once without settling", "[ingest][settle]") {
  Fixture f;
  auto path = f.Drop("team", "typed.json", R"({"prompt":42})");
  f.clock.Set(MtimeMs(path) + 10);
  CHECK(f.FlushAll().empty());
  REQUIRE(f.Rejections().size() == 1);
  CHECK_FALSE(f.ingestor->pending());
}

TEST_CASE("an old malformed file is rejected at once without settling", "[ingest][settle]") {
  Fixture f;
  auto path = f.Drop("team", "old.json", R"({"prompt":)");
  f.clock.Set(MtimeMs(path) + 10'000);
  CHECK(f.FlushAll().empty());
  CHECK(f.Rejections().size() == 1);
  CHECK_FALSE(f.ingestor->pending());
}

TEST_CASE("a second rejection of the same name does not overwrite the first", "[ingest]") {
  Fixture f;
  f.Drop("team", "bad.json", "first");
  f.FlushAll();
  f.Drop("team", "bad.json", "second");
  f.FlushAll();
  int files = 0;
  for (auto& e : fs::directory_iterator(f.layout.ErrorsDir())) {
    if (e.path().filename().string().find(".error.json") == std::string::npos) ++files;
  }
  CHECK(files == 2);
}

TEST_CASE("a symlink to a host file is rejected without reading its target", "[ingest]") {
  Fixture f;
  auto secret = f.dir / "secret.txt";
  WriteFile(secret, R"({"prompt":"stolen"})");
  fs::create_symlink(secret, f.layout.TasksDir("team") / "link.json");
  CHECK(f.FlushAll().empty());
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-link.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("symlink"));
  CHECK(fs::is_symlink(f.layout.ErrorsDir() / "team-link.json"));
  CHECK(ReadFile(secret) == R"({"prompt":"stolen"})");
}

TEST_CASE("a FIFO is rejected without blocking", "[ingest]") {
  Fixture f;
  auto p = f.layout.TasksDir("team") / "pipe.json";
  REQUIRE(::mkfifo(p.c_str(), 0644) == 0);
  CHECK(f.FlushAll().empty());
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-pipe.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("FIFO"));
}

TEST_CASE("a directory named like a job file is rejected", "[ingest]") {
  Fixture f;
  fs::create_directory(f.layout.TasksDir("team") / "dir.json");
  CHECK(f.FlushAll().empty());
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-dir.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("directory"));
}

TEST_CASE("a file over the size cap is rejected by its size", "[ingest]") {
  Fixture f;
  f.Drop("team", "big.json", R"({"prompt":")" + std::string(5000, 'x') + R"("})");
  CHECK(f.FlushAll().empty());
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-big.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("over the 4096-byte limit"));
}

TEST_CASE("a sparse huge file is refused before any read", "[ingest]") {
  Fixture f;
  auto p = f.layout.TasksDir("team") / "sparse.json";
  WriteFile(p, "");
  fs::resize_file(p, 1ULL << 30);
  CHECK(f.FlushAll().empty());
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-sparse.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("1073741824 bytes"));
}

TEST_CASE("a non-main group may not enqueue for another group", "[ingest]") {
  Fixture f;
  f.Drop("team", "x.json", R"({"prompt":"p","target_group":"main"})");
  CHECK(f.FlushAll().empty());
  auto why = nlohmann::json::parse(ReadFile(f.layout.ErrorsDir() / "team-x.json.error.json"));
  CHECK_THAT(why["reason"].get<std::string>(), Catch::Contains("only the main group"));
}

TEST_CASE("the main group may enqueue for another group by folder or jid", "[ingest]") {
  Fixture f;
  f.Drop("main", "a.json", R"({"prompt":"p","target_group":"team"})");
  f.Drop("main", "b.json", R"({"prompt":"p","targetJid":"team@x"})");
  auto jobs = f.FlushAll();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].group == "team");
  CHECK(jobs[1].group == "team");
}

TEST_CASE("a target that is not a configured group is rejected", "[ingest]") {
  Fixture f;
  f.Drop("main", "a.json", R"({"prompt":"p","target_group":"nope"})");
  CHECK(f.FlushAll().empty());
  CHECK(f.Rejections().size() == 1);
}

TEST_CASE("a file with a client id already seen is removed without a second job", "[ingest]") {
  Fixture f;
  f.Drop("team", "a.json", R"({"prompt":"p","id":"k1"})");
  CHECK(f.FlushAll().size() == 1);
  f.Drop("team", "a.json", R"({"prompt":"p","id":"k1"})");
  CHECK(f.FlushAll().empty());
  CHECK(f.store->ListJobs({})->size() == 1);
  CHECK(f.Empty(f.layout.TasksDir("team")));
}

TEST_CASE("dropping the same file again later is a new job", "[ingest]") {
  Fixture f;
  f.Drop("team", "a.json", R"({"prompt":"p"})");
  f.FlushAll();
  f.Drop("team", "a.json", R"({"prompt":"p"})");
  f.FlushAll();
  CHECK(f.store->ListJobs({})->size() == 2);
}

TEST_CASE("a claimed file whose job was committed is removed at start-up without a second job", "[ingest]") {
  Fixture f;
  // The crash window: COMMIT done, unlink not yet.
  RunRequest r;
  r.prompt = "p";
  REQUIRE(f.store->InsertJob("team", r, {"team", "a.json", "h", "111-1-1"}, 1).ok());
  WriteFile(f.layout.ClaimedDir("team") / "111-1-1.a.json", R"({"prompt":"p"})");
  REQUIRE(f.ingestor->Reconcile().ok());
  auto jobs = f.ingestor->Flush();
  REQUIRE(jobs.ok());
  CHECK(jobs->empty());
  CHECK(f.store->ListJobs({})->size() == 1);
  CHECK(f.Empty(f.layout.ClaimedDir("team")));
}

TEST_CASE("a claimed file that never became a job is ingested at start-up", "[ingest]") {
  Fixture f;
  // The crash window: renamed into claimed/, never committed.
  WriteFile(f.layout.ClaimedDir("team") / "222-1-1.a.json", R"({"prompt":"p"})");
  REQUIRE(f.ingestor->Reconcile().ok());
  auto jobs = f.ingestor->Flush();
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 1);
  CHECK((**f.store->GetJob((*jobs)[0].id)).source_name == std::optional<std::string>("a.json"));
  CHECK(f.Empty(f.layout.ClaimedDir("team")));
}

TEST_CASE("a name seen twice in one pass becomes one job", "[ingest]") {
  Fixture f;
  f.Drop("team", "a.json", R"({"prompt":"p"})");
  f.ingestor->Add("team", "a.json");
  f.ingestor->Add("team", "a.json");
  auto jobs = f.ingestor->Flush();
  REQUIRE(jobs.ok());
  CHECK(jobs->size() == 1);
}

}  // namespace
}  // namespace dropq::watcher
