// Hostile file *names* dropped into tasks/ (issue 12): every one ends as a
// job or in errors/ with its reason, and nothing it holds reaches a sink as
// invalid text. The group folder is 64 characters, the longest a config
// allows, so the names of claimed and rejected files are at their longest.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <nlohmann/json.hpp>

#include "base/text.h"
#include "tests/fakes/temp_dir.h"
#include "watcher/ingest.h"

namespace dropq::watcher {
namespace {

using dropq::testing::ReadFile;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;
namespace fs = std::filesystem;

const std::string kGroup(64, 'g');
constexpr const char* kJob = R"({"type":"run","prompt":"hi"})";

struct Fixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  Layout layout{dir.path()};
  std::unique_ptr<Store> store;
  std::unique_ptr<Ingestor> ingestor;

  Fixture() {
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("main").ok());
    REQUIRE(layout.CreateGroup(kGroup).ok());
    store = std::move(*Store::Open(layout.DatabasePath().string(), clock));
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup(kGroup, "Long", std::string("long@x"), false).ok());
    IngestOptions o;
    o.groups = {{"main", "main@x", true}, {kGroup, "long@x", false}};
    ingestor = std::make_unique<Ingestor>(*store, layout, o, clock);
  }

  void Drop(const std::string& name, const std::string& content = kJob) {
    WriteFile(layout.TasksDir(kGroup) / name, content);
  }
  std::vector<QueuedJob> Flush() {
    ingestor->ScanAll();
    auto r = ingestor->Flush();
    REQUIRE(r.ok());
    return *r;
  }
  std::vector<JobEvent> Events(const std::string& kind) {
    std::vector<JobEvent> out;
    for (auto& e : *store->ListEvents(std::nullopt))
      if (e.event == kind) out.push_back(e);
    return out;
  }
  // The one rejection in errors/: the moved file's name and its reason.
  std::pair<std::string, nlohmann::json> OnlyRejection() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(layout.ErrorsDir())) names.push_back(e.path().filename().string());
    REQUIRE(names.size() == 2);
    std::sort(names.begin(), names.end());  // "<x>" sorts before "<x>.error.json"
    REQUIRE(names[1] == names[0] + ".error.json");
    std::string raw = ReadFile(layout.ErrorsDir() / names[1]);
    REQUIRE(text::IsValidUtf8(raw));
    return {names[0], nlohmann::json::parse(raw)};
  }
  bool TasksEmpty() { return fs::is_empty(layout.TasksDir(kGroup)) && fs::is_empty(layout.ClaimedDir(kGroup)); }
};

TEST_CASE("a job file whose name is not valid UTF-8 goes to errors with its name escaped and its bytes",
          "[ingest][names]") {
  Fixture f;
  f.Drop("\xFF.json");
  CHECK(f.Flush().empty());
  CHECK(f.TasksEmpty());
  auto [moved, why] = f.OnlyRejection();
  CHECK(text::IsValidUtf8(moved));
  CHECK(why["file"] == "\xEF\xBF\xBD.json");
  CHECK(why["fileHex"] == "ff2e6a736f6e");
  CHECK(why["reason"] == "the file name is not valid UTF-8");
  CHECK(why["movedTo"] == moved);
  auto rejected = f.Events("rejected");
  REQUIRE(rejected.size() == 1);
  CHECK(text::IsValidUtf8(*rejected[0].detail));
  CHECK(nlohmann::json::parse(*rejected[0].detail)["file"] == "\xEF\xBF\xBD.json");
}

TEST_CASE("a name cut inside a character is rejected like any invalid UTF-8", "[ingest][names]") {
  Fixture f;
  f.Drop("r\xC3\xA9sum\xC3.json");
  f.Flush();
  CHECK(f.TasksEmpty());
  CHECK(f.OnlyRejection().second["reason"] == "the file name is not valid UTF-8");
}

TEST_CASE("a name holding an escape sequence or a newline is rejected with the characters escaped", "[ingest][names]") {
  Fixture f;
  f.Drop("a\x1b[31mred\nb.json");
  f.Flush();
  CHECK(f.TasksEmpty());
  auto [moved, why] = f.OnlyRejection();
  CHECK(why["file"] == "a\\x1b[31mred\\nb.json");
  CHECK(why["reason"] == "the file name holds a control character");
  CHECK(moved.find('\x1b') == std::string::npos);
  CHECK(moved.find('\n') == std::string::npos);
}

TEST_CASE("a name of exactly the limit becomes a job with its result name intact", "[ingest][names]") {
  Fixture f;
  std::string name = std::string(kMaxDroppedNameBytes - 5, 'n') + ".json";
  REQUIRE(name.size() == kMaxDroppedNameBytes);
  f.Drop(name);
  auto jobs = f.Flush();
  REQUIRE(jobs.size() == 1);
  CHECK((**f.store->GetJob(jobs[0].id)).source_name == name);
  CHECK(f.TasksEmpty());
  CHECK(fs::is_empty(f.layout.ErrorsDir()));
}

TEST_CASE("a name one byte over the limit goes to errors under a name that fits", "[ingest][names]") {
  Fixture f;
  std::string name = std::string(kMaxDroppedNameBytes - 4, 'n') + ".json";
  f.Drop(name);
  CHECK(f.Flush().empty());
  CHECK(f.TasksEmpty());
  auto [moved, why] = f.OnlyRejection();
  CHECK((moved + ".error.json").size() <= 255);
  CHECK(why["file"] == name);
  CHECK(why["reason"] == "the file name is 201 bytes, over the 200-byte limit");
}

TEST_CASE("a name of NAME_MAX bytes goes to errors and leaves tasks empty", "[ingest][names]") {
  Fixture f;
  f.Drop(std::string(250, 'z') + ".json");
  f.Flush();
  CHECK(f.TasksEmpty());
  CHECK((f.OnlyRejection().first + ".error.json").size() <= 255);
}

TEST_CASE("a clean name whose rejection would overflow NAME_MAX is moved under a shortened name", "[ingest][names]") {
  Fixture f;
  // 64 + 1 + 190 + 11 bytes would be 266: too long for "<group>-<name>.error.json".
  std::string name = std::string(185, 'c') + ".json";
  f.Drop(name, "{not json");
  f.Flush();
  CHECK(f.TasksEmpty());
  auto [moved, why] = f.OnlyRejection();
  CHECK((moved + ".error.json").size() <= 255);
  CHECK(moved.rfind(kGroup + "-", 0) == 0);
  CHECK(why["file"] == name);
}

TEST_CASE("a short clean name keeps NanoClaw's errors name in a 64-character group", "[ingest][names]") {
  Fixture f;
  f.Drop("broken.json", "{not json");
  f.Flush();
  CHECK(f.OnlyRejection().first == kGroup + "-broken.json");
}

TEST_CASE("a rejected name noticed again after its move makes no second rejection", "[ingest][names]") {
  Fixture f;
  f.Drop("\xFF.json");
  f.Flush();
  f.ingestor->Add(kGroup, "\xFF.json");  // the event of its own move out of tasks/
  REQUIRE(f.ingestor->Flush().ok());
  CHECK(f.Events("rejected").size() == 1);
  CHECK(f.Events("vanished").empty());
  f.OnlyRejection();
}

// A CommandHandler whose Apply throws, as a bug in the daemon's handling
// of a control file would.
struct ThrowingCommands : CommandHandler {
  Result<std::string> Apply(const IngestGroup&, const ClaimedFile&, const JobCommand&) override {
    throw std::runtime_error("boom");
  }
};

TEST_CASE("a control file whose handling throws is rejected with the reason and the pass goes on", "[ingest][guard]") {
  Fixture f;
  ThrowingCommands commands;
  IngestOptions o;
  o.groups = {{"main", "main@x", true}, {kGroup, "long@x", false}};
  f.ingestor = std::make_unique<Ingestor>(*f.store, f.layout, o, f.clock, &commands);
  f.Drop("pause.json", R"({"type":"pause_task","taskId":"t1"})");
  f.Drop("job.json");
  CHECK(f.Flush().size() == 1);
  CHECK(f.TasksEmpty());
  auto [moved, why] = f.OnlyRejection();
  CHECK(moved == kGroup + "-pause.json");
  CHECK(why["reason"] == "dropq internal error in applying a control file: boom");
  REQUIRE(f.Events("rejected").size() == 1);
}

// A CommandHandler that writes an audit row, then says `ok` or fails.
struct WritingCommands : CommandHandler {
  Store* store = nullptr;
  bool fail = false;
  Result<std::string> Apply(const IngestGroup& from, const ClaimedFile&, const JobCommand&) override {
    if (Status s = store->AppendEvent(std::nullopt, from.folder, "handled", "{}"); !s.ok()) return s;
    if (fail) return Status::InvalidArgument("no such task");
    return std::string(R"({"action":"paused"})");
  }
};

TEST_CASE("an applied control file leaves an applied event committed with what it wrote", "[ingest][signal]") {
  Fixture f;
  WritingCommands commands;
  commands.store = f.store.get();
  IngestOptions o;
  o.groups = {{"main", "main@x", true}, {kGroup, "long@x", false}};
  f.ingestor = std::make_unique<Ingestor>(*f.store, f.layout, o, f.clock, &commands);
  f.Drop("pause.json", R"({"type":"pause_task","taskId":"t1"})");
  f.Flush();
  CHECK(f.TasksEmpty());
  CHECK_FALSE(f.store->InTransaction());
  REQUIRE(f.Events("handled").size() == 1);
  auto applied = f.Events("applied");
  REQUIRE(applied.size() == 1);
  CHECK(applied[0].group == kGroup);
  auto d = nlohmann::json::parse(*applied[0].detail);
  CHECK(d["file"] == "pause.json");
  CHECK(d["type"] == "pause_task");
  CHECK(d["result"]["action"] == "paused");
}

TEST_CASE("a control file that fails to apply leaves a rejected event and nothing it wrote", "[ingest][signal]") {
  Fixture f;
  WritingCommands commands;
  commands.store = f.store.get();
  commands.fail = true;
  IngestOptions o;
  o.groups = {{"main", "main@x", true}, {kGroup, "long@x", false}};
  f.ingestor = std::make_unique<Ingestor>(*f.store, f.layout, o, f.clock, &commands);
  f.Drop("pause.json", R"({"type":"pause_task","taskId":"t1"})");
  f.Flush();
  CHECK_FALSE(f.store->InTransaction());
  CHECK(f.Events("handled").empty());
  CHECK(f.Events("applied").empty());
  REQUIRE(f.Events("rejected").size() == 1);
  CHECK(f.OnlyRejection().second["reason"] == "no such task");
}

TEST_CASE("a name that is gone before it can be claimed leaves a vanished audit row", "[ingest][names]") {
  Fixture f;
  f.ingestor->Add(kGroup, "gone.json");
  REQUIRE(f.ingestor->Flush().ok());
  auto vanished = f.Events("vanished");
  REQUIRE(vanished.size() == 1);
  CHECK(nlohmann::json::parse(*vanished[0].detail)["file"] == "gone.json");
}

TEST_CASE("a name noticed again after its file was claimed leaves no vanished row", "[ingest][names]") {
  Fixture f;
  f.Drop("a.json");
  REQUIRE(f.Flush().size() == 1);
  f.ingestor->Add(kGroup, "a.json");  // a late second event for the same file
  REQUIRE(f.ingestor->Flush().ok());
  CHECK(f.Events("vanished").empty());
}

TEST_CASE("the event of a claim's own rename leaves nothing to claim", "[ingest][names]") {
  Fixture f;
  f.Drop("a.json");
  REQUIRE(f.Flush().size() == 1);
  REQUIRE_FALSE(f.ingestor->pending());
  f.ingestor->Add(kGroup, "a.json");  // the event of the claim's own rename out of tasks/
  CHECK_FALSE(f.ingestor->pending());
}

TEST_CASE("a file dropped again under a name just claimed is claimed after the claim's own event", "[ingest][names]") {
  Fixture f;
  f.Drop("a.json");
  REQUIRE(f.Flush().size() == 1);
  f.ingestor->Add(kGroup, "a.json");  // the event of the claim's own rename out of tasks/
  f.Drop("a.json");
  f.ingestor->Add(kGroup, "a.json");  // the writer's drop
  auto again = f.ingestor->Flush();
  REQUIRE(again.ok());
  CHECK(again->size() == 1);
  CHECK(fs::is_empty(f.layout.TasksDir(kGroup)));
}

TEST_CASE("a claim expects its own event for one pass only, so a later drop of the name is claimed",
          "[ingest][names]") {
  Fixture f;
  f.Drop("a.json");
  REQUIRE(f.Flush().size() == 1);
  REQUIRE(f.ingestor->Flush().ok());  // a pass in which the claim's event never came
  f.Drop("a.json");
  f.ingestor->Add(kGroup, "a.json");
  auto again = f.ingestor->Flush();
  REQUIRE(again.ok());
  CHECK(again->size() == 1);
}

TEST_CASE("random hostile names each end as a job or a rejection, never left in tasks", "[ingest][names]") {
  Fixture f;
  std::mt19937 rng(12);
  int dropped = 0;
  for (int i = 0; i < 300; ++i) {
    std::string name;
    std::size_t len = 1 + rng() % 240;
    for (std::size_t k = 0; k < len; ++k) {
      char c = static_cast<char>(rng() % 256);
      if (c == '/' || c == '\0') c = 'x';
      name.push_back(c);
    }
    name[0] = name[0] == '.' ? 'x' : name[0];
    name += ".json";
    if (name.size() > 255) continue;
    std::error_code ec;
    if (fs::exists(f.layout.TasksDir(kGroup) / name, ec)) continue;
    f.Drop(name, rng() % 2 ? kJob : "\xFF{");
    ++dropped;
  }
  auto jobs = f.Flush();
  CHECK(f.TasksEmpty());
  std::size_t errors = 0;
  for (const auto& e : fs::directory_iterator(f.layout.ErrorsDir())) {
    std::string n = e.path().filename().string();
    if (n.size() > 11 && n.compare(n.size() - 11, 11, ".error.json") == 0) {
      ++errors;
      CHECK(text::IsValidUtf8(ReadFile(e.path())));
    }
  }
  CHECK(jobs.size() + errors == static_cast<std::size_t>(dropped));
  CHECK(f.Events("rejected").size() == errors);
  for (const auto& e : *f.store->ListEvents(std::nullopt)) {
    if (e.detail) CHECK(text::IsValidUtf8(*e.detail));
  }
}

}  // namespace
}  // namespace dropq::watcher
