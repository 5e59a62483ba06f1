#include "watcher/messages.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/fakes/temp_dir.h"

namespace dropq {
namespace {

using dropq::testing::ReadFile;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;
namespace fs = std::filesystem;

struct Row {
  std::string group, chat_jid, text, state;
  std::optional<std::string> error;
};

struct Fixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  Layout layout{dir.path()};
  uv_loop_t loop{};
  std::unique_ptr<Store> store;
  std::unique_ptr<MessageInbox> inbox;

  explicit Fixture(std::vector<std::string> on_message = {}, int hook_timeout_ms = 10'000) {
    uv_loop_init(&loop);
    REQUIRE(layout.CreateCommon().ok());
    REQUIRE(layout.CreateGroup("main").ok());
    REQUIRE(layout.CreateGroup("team").ok());
    store = std::move(*Store::Open(layout.DatabasePath().string(), clock));
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup("team", "Team", std::string("team@x"), false).ok());
    MessageOptions o;
    o.groups = {{"main", "main@x", true}, {"team", "team@x", false}};
    o.on_message = std::move(on_message);
    o.hook_timeout_ms = hook_timeout_ms;
    inbox = std::make_unique<MessageInbox>(&loop, *store, layout, o, clock);
  }
  ~Fixture() {
    Deliver();
    inbox.reset();
    uv_loop_close(&loop);
  }

  // Deliveries run on the loop's thread pool: the loop runs until none is left.
  void Deliver() { uv_run(&loop, UV_RUN_DEFAULT); }

  void Drop(const std::string& group, const std::string& name, const std::string& content) {
    WriteFile(layout.MessagesDir(group) / name, content);
  }
  void Send(const std::string& group, const std::string& chat, const std::string& text,
            const std::string& name = "m.json") {
    Drop(group, name, nlohmann::json{{"type", "message"}, {"chatJid", chat}, {"text", text}}.dump());
  }
  void FlushAll() {
    inbox->ScanAll();
    REQUIRE(inbox->Flush().ok());
    Deliver();
  }

  std::vector<Row> Messages() {
    std::vector<Row> out;
    auto& q = StoreSql::Prepare(*store,
                                "SELECT group_folder, chat_jid, text, delivery_state, error FROM messages ORDER BY id")
                  .Use();
    while (*q.Step()) out.push_back({q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.OptText(4)});
    return out;
  }
  std::vector<JobEvent> Events(const std::string& event) {
    std::vector<JobEvent> out;
    for (auto& e : *store->ListEvents(std::nullopt))
      if (e.event == event) out.push_back(e);
    return out;
  }
  std::vector<nlohmann::json> Outbox(const std::string& group) {
    std::vector<nlohmann::json> out;
    auto p = layout.root() / "outbox" / (group + ".jsonl");
    if (!fs::exists(p)) return out;
    std::string all = ReadFile(p), line;
    for (char c : all) {
      if (c == '\n') {
        out.push_back(nlohmann::json::parse(line));
        line.clear();
      } else {
        line += c;
      }
    }
    REQUIRE(line.empty());  // every line complete
    return out;
  }
  bool Empty(const fs::path& d) { return !fs::exists(d) || fs::is_empty(d); }
  std::string Reason(const std::string& moved) {
    return nlohmann::json::parse(ReadFile(layout.ErrorsDir() / (moved + ".error.json")))["reason"];
  }
};

TEST_CASE("a message to the group's own chat is recorded and appended to its outbox", "[messages]") {
  Fixture f;
  f.Send("team", "team@x", "report ready");
  f.FlushAll();
  auto lines = f.Outbox("team");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["text"] == "report ready");
  CHECK(lines[0]["chatJid"] == "team@x");
  CHECK(lines[0]["groupFolder"] == "team");
  CHECK(lines[0]["id"] == 1);
  auto rows = f.Messages();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].group == "team");
  CHECK(rows[0].state == "delivered");
  REQUIRE(f.Events("message").size() == 1);
  CHECK_FALSE(f.Events("message")[0].job_id.has_value());
  CHECK(f.Empty(f.layout.MessagesDir("team")));
  CHECK(f.Empty(f.inbox->ClaimedDir("team")));
}

TEST_CASE("a message to another group's chat is rejected to errors with an audit row", "[messages]") {
  Fixture f;
  f.Send("team", "main@x", "hi main", "sneaky.json");
  f.FlushAll();
  CHECK(f.Outbox("main").empty());
  CHECK(fs::exists(f.layout.ErrorsDir() / "team-sneaky.json"));
  CHECK_THAT(f.Reason("team-sneaky.json"), Catch::Contains("may send only to its own chat"));
  auto rejected = f.Events("rejected");
  REQUIRE(rejected.size() == 1);
  CHECK_FALSE(rejected[0].job_id.has_value());
  CHECK(rejected[0].group == std::optional<std::string>("team"));
  auto rows = f.Messages();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "rejected");
  CHECK(f.Empty(f.inbox->ClaimedDir("team")));
}

TEST_CASE("main may send to another registered group's chat", "[messages]") {
  Fixture f;
  f.Send("main", "team@x", "from main");
  f.FlushAll();
  auto lines = f.Outbox("team");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["groupFolder"] == "main");
  CHECK(lines[0]["targetGroup"] == "team");
  CHECK(f.Messages().at(0).state == "delivered");
}

TEST_CASE("a message to an unregistered chat is rejected, even from main", "[messages]") {
  Fixture f;
  f.Send("main", "stranger@x", "hello?");
  f.FlushAll();
  CHECK(fs::exists(f.layout.ErrorsDir() / "main-m.json"));
  CHECK(f.Events("rejected").size() == 1);
  CHECK(f.Empty(f.layout.root() / "outbox"));
}

TEST_CASE("a malformed message file is rejected to errors", "[messages]") {
  Fixture f;
  f.Drop("team", "bad.json", R"({"type":"message","chatJid":)");
  f.Drop("team", "notext.json", R"({"type":"message","chatJid":"team@x"})");
  f.FlushAll();
  CHECK(fs::exists(f.layout.ErrorsDir() / "team-bad.json"));
  CHECK(fs::exists(f.layout.ErrorsDir() / "team-notext.json"));
  CHECK_THAT(f.Reason("team-notext.json"), Catch::Contains("text"));
  CHECK(f.Events("rejected").size() == 2);
  CHECK(f.Messages().empty());
}

TEST_CASE("message files not ending in .json are left alone", "[messages]") {
  Fixture f;
  f.Send("team", "team@x", "half written", "m.json.tmp");
  f.FlushAll();
  CHECK(fs::exists(f.layout.MessagesDir("team") / "m.json.tmp"));
  CHECK(f.Messages().empty());
}

TEST_CASE("the on_message hook receives the message JSON on stdin", "[messages]") {
  TempDir out;
  auto got = out / "got.json";
  // A shell in the test only, to capture stdin; the product never uses one.
  Fixture f({"/bin/sh", "-c", "cat > '" + got.string() + "'"});
  f.Send("team", "team@x", "via hook");
  f.FlushAll();
  auto j = nlohmann::json::parse(ReadFile(got));
  CHECK(j["type"] == "message");
  CHECK(j["text"] == "via hook");
  CHECK(j["chatJid"] == "team@x");
  CHECK(j["id"] == 1);
  CHECK(f.Messages().at(0).state == "delivered");
  CHECK_FALSE(fs::exists(f.layout.root() / "outbox"));
}

TEST_CASE("a failing on_message hook marks the message failed with its error", "[messages]") {
  Fixture f({"/bin/sh", "-c", "cat >/dev/null; echo boom >&2; exit 3"});
  f.Send("team", "team@x", "x");
  f.FlushAll();
  auto row = f.Messages().at(0);
  CHECK(row.state == "failed");
  REQUIRE(row.error);
  CHECK(*row.error == "on_message exited with code 3: boom");
  CHECK(f.Empty(f.layout.MessagesDir("team")));
  CHECK(f.Empty(f.inbox->ClaimedDir("team")));
}

TEST_CASE("an on_message hook that outlives its timeout is killed and the message failed", "[messages]") {
  Fixture f({"/bin/sleep", "30"}, 200);
  f.Send("team", "team@x", "x");
  auto start = std::chrono::steady_clock::now();
  f.FlushAll();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  auto row = f.Messages().at(0);
  CHECK(row.state == "failed");
  CHECK(row.error == std::optional<std::string>("on_message timed out after 200 ms"));
}

TEST_CASE("a message recorded before a crash is delivered at the next start, its file removed", "[messages]") {
  Fixture f;
  // The state a crash between COMMIT and delivery leaves behind.
  REQUIRE(StoreSql::Prepare(*f.store,
                            "INSERT INTO messages (group_folder, chat_jid, text, created_at) "
                            "VALUES ('team', 'team@x', 'recorded', '2027-01-15T08:00:00.000Z')")
              .Use()
              .Run()
              .ok());
  REQUIRE(f.store
              ->AppendEvent(std::nullopt, std::string("team"), "message",
                            R"({"file":"a.json","claim":"tok1","message_id":1,"to_group":"team"})")
              .ok());
  fs::create_directories(f.inbox->ClaimedDir("team"));
  WriteFile(f.inbox->ClaimedDir("team") / "tok1.a.json", "{}");
  // And one claimed but never committed: handled afresh.
  WriteFile(f.inbox->ClaimedDir("team") / "tok2.b.json", R"({"type":"message","chatJid":"team@x","text":"fresh"})");
  REQUIRE(f.inbox->Reconcile().ok());
  REQUIRE(f.inbox->Flush().ok());
  f.Deliver();
  auto lines = f.Outbox("team");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["text"] == "recorded");
  CHECK(lines[1]["text"] == "fresh");
  auto rows = f.Messages();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].state == "delivered");
  CHECK(rows[1].state == "delivered");
  CHECK(f.Events("reconciled").size() == 1);
  CHECK(f.Empty(f.inbox->ClaimedDir("team")));
}

TEST_CASE("at shutdown the delivery in flight is recorded and the ones not started wait for the next start",
          "[messages]") {
  Fixture f;
  f.Send("team", "team@x", "first", "a.json");
  f.Send("team", "team@x", "second", "b.json");
  f.inbox->ScanAll();
  REQUIRE(f.inbox->Flush().ok());
  REQUIRE(f.inbox->in_flight());  // one at a time: the first is out, the second waits
  f.inbox->StopDelivering();
  f.Deliver();
  auto rows = f.Messages();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].state == "delivered");
  CHECK(rows[1].state == "pending");
  CHECK(f.Outbox("team").size() == 1);

  // The next start delivers the one left, and removes its claimed file.
  MessageOptions o;
  o.groups = {{"main", "main@x", true}, {"team", "team@x", false}};
  f.inbox = std::make_unique<MessageInbox>(&f.loop, *f.store, f.layout, o, f.clock);
  REQUIRE(f.inbox->Reconcile().ok());
  f.Deliver();
  auto lines = f.Outbox("team");
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["text"] == "second");
  CHECK(f.Messages().at(1).state == "delivered");
  CHECK(f.Empty(f.inbox->ClaimedDir("team")));
  auto reconciled = f.Events("reconciled");
  REQUIRE(reconciled.size() == 1);
  CHECK(nlohmann::json::parse(*reconciled[0].detail)["action"] == "delivered");
}

TEST_CASE("messages are delivered one at a time in the order they were recorded", "[messages]") {
  TempDir out;
  auto got = out / "got.jsonl";
  // A shell in the test only: each delivery appends its message and a newline.
  Fixture f({"/bin/sh", "-c", "cat >> '" + got.string() + "'; echo >> '" + got.string() + "'"});
  f.Send("team", "team@x", "one", "a.json");
  f.Send("main", "main@x", "two", "b.json");
  f.Send("team", "team@x", "three", "c.json");
  f.FlushAll();
  std::vector<std::int64_t> ids;
  std::string all = ReadFile(got), line;
  for (char c : all) {
    if (c != '\n') {
      line += c;
      continue;
    }
    ids.push_back(nlohmann::json::parse(line)["id"]);
    line.clear();
  }
  CHECK(ids == std::vector<std::int64_t>{1, 2, 3});
}

TEST_CASE("a messages folder replaced by a symlink is not read through", "[messages]") {
  Fixture f;
  auto elsewhere = f.dir / "elsewhere";
  fs::create_directories(elsewhere);
  WriteFile(elsewhere / "m.json", R"({"type":"message","chatJid":"team@x","text":"x"})");
  fs::remove_all(f.layout.MessagesDir("team"));
  fs::create_directory_symlink(elsewhere, f.layout.MessagesDir("team"));
  f.FlushAll();
  CHECK(fs::exists(elsewhere / "m.json"));
  CHECK(f.Messages().empty());
}

TEST_CASE("a message file whose name is not valid UTF-8 goes to errors with the reason", "[messages][names]") {
  Fixture f;
  f.Send("team", "team@x", "hi", "\xFE\xFF.json");
  f.FlushAll();
  CHECK(fs::is_empty(f.layout.MessagesDir("team")));
  CHECK(f.Messages().empty());
  auto rejected = f.Events("rejected");
  REQUIRE(rejected.size() == 1);
  auto d = nlohmann::json::parse(*rejected[0].detail);
  CHECK(d["reason"] == "the file name is not valid UTF-8");
  CHECK(d["file"] == "\xEF\xBF\xBD\xEF\xBF\xBD.json");
  int with_reason = 0;
  for (const auto& e : fs::directory_iterator(f.layout.ErrorsDir())) {
    std::string n = e.path().filename().string();
    if (n.size() > 11 && n.compare(n.size() - 11, 11, ".error.json") == 0) {
      ++with_reason;
      CHECK(nlohmann::json::parse(ReadFile(e.path()))["fileHex"] == "feff2e6a736f6e");
    }
  }
  CHECK(with_reason == 1);
}

TEST_CASE("a message file with a name over the limit goes to errors, not stuck in messages", "[messages][names]") {
  Fixture f;
  f.Send("team", "team@x", "hi", std::string(240, 'm') + ".json");
  f.FlushAll();
  CHECK(fs::is_empty(f.layout.MessagesDir("team")));
  CHECK(f.Events("rejected").size() == 1);
}

}  // namespace
}  // namespace dropq
