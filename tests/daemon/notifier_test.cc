// The on_finish delivery loop (daemon/notifier.h): the outbox rows, the
// backoff on the injected clock, the audit rows, and the two real targets.
#include "daemon/notifier.h"

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <deque>
#include <fstream>
#include <thread>

#include "runner/runner.h"
#include "tests/fakes/process.h"
#include "tests/fakes/temp_dir.h"

namespace dropq::app {
namespace {

using nlohmann::json;
using testing::TempDir;

// Records each delivery and leaves it open until the test answers it, as
// the pool would later, on the loop.
class RecordingSender final : public NoticeSender {
 public:
  struct Sent {
    Notification n;
    std::function<void(Status)> done;
  };
  void Send(const Notification& n, std::function<void(Status)> done) override { sent.push_back({n, std::move(done)}); }
  // Answers the oldest open delivery.
  void Answer(const Status& outcome) {
    REQUIRE_FALSE(sent.empty());
    auto s = std::move(sent.front());
    sent.pop_front();
    ++answered;
    s.done(outcome);
  }
  std::deque<Sent> sent;
  int answered = 0;
};

struct Fixture {
  TempDir dir;
  ManualClock clock{1'800'000'000'000};
  std::unique_ptr<Store> store;
  RecordingSender sender;
  std::optional<std::int64_t> armed;  // the timer's delay, nullopt when disarmed
  Config cfg;

  Fixture() {
    auto s = Store::Open((dir / "dropq.db").string(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    REQUIRE(store->UpsertGroup("main", "Main", std::string("main@x"), true).ok());
    REQUIRE(store->UpsertGroup("team", "Team", std::nullopt, false).ok());
    for (const char* folder : {"main", "team"}) {
      GroupConfig g;
      g.folder = g.name = folder;
      g.is_main = g.folder == "main";
      cfg.groups.push_back(g);
    }
    FinishHook h;
    h.command = {"/usr/local/bin/notify"};
    h.max_attempts = 3;
    cfg.on_finish = h;
  }
  std::unique_ptr<Notifier> MakeNotifier() {
    Notifier::Hooks h;
    h.arm = [this](std::int64_t d) { armed = d; };
    h.disarm = [this] { armed.reset(); };
    return std::make_unique<Notifier>(*store, clock, sender, std::move(h));
  }
  Job InsertJob(const std::string& group) {
    RunRequest req;
    req.prompt = "p";
    auto r = store->InsertJob(group, req, {group, "x.json", "abc", "claim-" + std::to_string(++claims)}, 1);
    REQUIRE(r.ok());
    auto job = store->GetJob(r->id);
    REQUIRE(job.ok());
    REQUIRE(job->has_value());
    return **job;
  }
  // A job of `group` that ended in `state`, its delivery queued as the
  // daemon's pump does.
  Job Finish(const std::string& group, JobState state) {
    Job job = InsertJob(group);
    RunOutcome o;
    o.job_state = state;
    o.error = state == JobState::kSucceeded ? std::nullopt : std::optional<std::string>("boom");
    REQUIRE(QueueFinishNotice(*store, cfg, cfg.FindGroup(group), job, o).ok());
    last_payload = runner::ResultJson(job, o);
    return job;
  }
  std::int64_t Pending() {
    auto n = NotificationStore(*store).CountPending();
    REQUIRE(n.ok());
    return *n;
  }
  std::vector<JobEvent> Events(JobId id, const std::string& name) {
    auto events = store->ListEvents(id);
    REQUIRE(events.ok());
    std::vector<JobEvent> out;
    for (auto& e : *events) {
      if (e.event == name) out.push_back(e);
    }
    return out;
  }
  int claims = 0;
  std::string last_payload;
};

TEST_CASE("the backoff between tries doubles from one second and stops at ten minutes", "[notifier]") {
  CHECK(NotifyBackoffMs(1) == 1'000);
  CHECK(NotifyBackoffMs(2) == 2'000);
  CHECK(NotifyBackoffMs(3) == 4'000);
  CHECK(NotifyBackoffMs(10) == 512'000);
  CHECK(NotifyBackoffMs(11) == 600'000);
  CHECK(NotifyBackoffMs(1'000'000) == 600'000);
}

TEST_CASE("a job that failed for good is delivered its result file's JSON at once", "[notifier]") {
  Fixture f;
  Job job = f.Finish("team", JobState::kFailed);
  auto n = f.MakeNotifier();
  n->Kick();
  REQUIRE(f.sender.sent.size() == 1);
  CHECK(f.sender.sent[0].n.job_id == job.id);
  CHECK(f.sender.sent[0].n.payload == f.last_payload);
  CHECK(json::parse(f.sender.sent[0].n.target) == json{{"command", json::array({"/usr/local/bin/notify"})}});
}

TEST_CASE("with when failed a succeeded or cancelled job queues no delivery", "[notifier]") {
  Fixture f;
  f.Finish("team", JobState::kSucceeded);
  f.Finish("team", JobState::kCancelled);
  CHECK(f.Pending() == 0);
}

TEST_CASE("with when always every final state queues a delivery", "[notifier]") {
  Fixture f;
  f.cfg.on_finish->failures_only = false;
  f.Finish("team", JobState::kSucceeded);
  f.Finish("team", JobState::kCancelled);
  f.Finish("team", JobState::kFailed);
  CHECK(f.Pending() == 3);
}

TEST_CASE("a group's on_finish replaces the global one and null turns it off for that group", "[notifier]") {
  Fixture f;
  FinishHook mine;
  mine.url = "https://hooks.example/team";
  f.cfg.groups[1].on_finish = mine;
  f.cfg.groups[0].on_finish = FinishHook{};  // on_finish: null
  f.Finish("main", JobState::kFailed);
  Job team = f.Finish("team", JobState::kFailed);
  auto next = NotificationStore(*f.store).NextDue();
  REQUIRE(next.ok());
  REQUIRE(next->has_value());
  CHECK((*next)->job_id == team.id);
  CHECK(json::parse((*next)->target) == json{{"url", "https://hooks.example/team"}});
  CHECK(f.Pending() == 1);
}

TEST_CASE("a delivered notification leaves the outbox with a notified event", "[notifier]") {
  Fixture f;
  Job job = f.Finish("team", JobState::kFailed);
  auto n = f.MakeNotifier();
  n->Kick();
  f.sender.Answer(Status::Ok());
  CHECK(f.Pending() == 0);
  auto notified = f.Events(job.id, "notified");
  REQUIRE(notified.size() == 1);
  auto d = json::parse(*notified[0].detail);
  CHECK(d["attempt"] == 1);
  CHECK(d["target"] == "command");
  CHECK_FALSE(f.armed.has_value());
}

TEST_CASE("a failed delivery is tried again after one, then two seconds", "[notifier]") {
  Fixture f;
  Job job = f.Finish("team", JobState::kFailed);
  auto n = f.MakeNotifier();
  n->Kick();
  f.sender.Answer(Status::IOError("on_finish exited with code 1"));
  REQUIRE(f.armed == std::optional<std::int64_t>(1'000));
  CHECK(f.sender.sent.empty());
  f.clock.Advance(1'000);
  n->Kick();  // the timer fires
  REQUIRE(f.sender.sent.size() == 1);
  CHECK(f.sender.sent[0].n.attempts == 1);
  f.sender.Answer(Status::IOError("on_finish exited with code 1"));
  CHECK(f.armed == std::optional<std::int64_t>(2'000));
  auto failed = f.Events(job.id, "notify_failed");
  REQUIRE(failed.size() == 2);
  auto d = json::parse(*failed[1].detail);
  CHECK(d["attempt"] == 2);
  CHECK(d["error"] == "on_finish exited with code 1");
  CHECK(d["next_try_at"] == FormatIsoUtc(f.clock.NowMs() + 2'000));
  CHECK(d["gave_up"] == false);
}

TEST_CASE("a timer that fires early starts nothing and is armed again for the rest", "[notifier]") {
  Fixture f;
  f.Finish("team", JobState::kFailed);
  auto n = f.MakeNotifier();
  n->Kick();
  f.sender.Answer(Status::IOError("down"));
  f.clock.Advance(400);
  n->Kick();
  CHECK(f.sender.sent.empty());
  CHECK(f.armed == std::optional<std::int64_t>(600));
}

TEST_CASE("a delivery is given up after max_attempts tries with an audit row that says so", "[notifier]") {
  Fixture f;
  Job job = f.Finish("team", JobState::kFailed);  // max_attempts: 3
  auto n = f.MakeNotifier();
  n->Kick();
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.sender.sent.size() == 1);
    f.sender.Answer(Status::IOError("down"));
    if (f.armed) f.clock.Advance(*f.armed);
    n->Kick();
  }
  CHECK(f.sender.sent.empty());
  CHECK(f.Pending() == 0);
  auto failed = f.Events(job.id, "notify_failed");
  REQUIRE(failed.size() == 3);
  auto d = json::parse(*failed[2].detail);
  CHECK(d["gave_up"] == true);
  CHECK(d["next_try_at"].is_null());
  CHECK(f.Events(job.id, "notified").empty());
}

TEST_CASE("a pending delivery left by an earlier run is tried when its time comes after a restart", "[notifier]") {
  Fixture f;
  Job job = f.Finish("team", JobState::kFailed);
  {
    auto before = f.MakeNotifier();
    before->Kick();
    f.sender.Answer(Status::IOError("down"));
  }  // the daemon stops: the row stays, due in 1 s
  f.clock.Advance(300);
  auto after = f.MakeNotifier();
  after->Kick();
  CHECK(f.sender.sent.empty());
  REQUIRE(f.armed == std::optional<std::int64_t>(700));
  f.clock.Advance(700);
  after->Kick();
  REQUIRE(f.sender.sent.size() == 1);
  CHECK(f.sender.sent[0].n.job_id == job.id);
  CHECK(f.sender.sent[0].n.attempts == 1);
}

TEST_CASE("deliveries go one at a time in the order they fell due", "[notifier]") {
  Fixture f;
  Job first = f.Finish("team", JobState::kFailed);
  f.clock.Advance(1);
  Job second = f.Finish("main", JobState::kFailed);
  auto n = f.MakeNotifier();
  n->Kick();
  n->Kick();  // the second waits for the first
  REQUIRE(f.sender.sent.size() == 1);
  CHECK(f.sender.sent[0].n.job_id == first.id);
  f.sender.Answer(Status::Ok());
  REQUIRE(f.sender.sent.size() == 1);
  CHECK(f.sender.sent[0].n.job_id == second.id);
}

TEST_CASE("after the shutdown no try starts and the one in flight is still recorded", "[notifier]") {
  Fixture f;
  Job job = f.Finish("team", JobState::kFailed);
  f.Finish("team", JobState::kFailed);
  auto n = f.MakeNotifier();
  n->Kick();
  n->Stop();
  f.sender.Answer(Status::Ok());
  CHECK(f.sender.sent.empty());
  CHECK(f.Events(job.id, "notified").size() == 1);
  CHECK(f.Pending() == 1);
}

Notification CommandNotice(std::vector<std::string> argv, std::int64_t timeout_ms = 10'000) {
  Notification n;
  n.target = json{{"command", argv}}.dump();
  n.timeout_ms = timeout_ms;
  n.payload = "{\"jobId\": 7}\n";
  return n;
}

TEST_CASE("a command target gets the payload on its stdin", "[notifier][process]") {
  TempDir dir;
  const std::string out = (dir / "got").string();
  // A shell in the test only: the product never runs one.
  Status s = DeliverNow(CommandNotice({"/bin/sh", "-c", "cat > \"$0\"", out}), nullptr);
  REQUIRE(s.ok());
  std::ifstream in(out);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(got == "{\"jobId\": 7}\n");
}

TEST_CASE("a command target that exits non-zero fails with its code and the tail of its stderr",
          "[notifier][process]") {
  Status s = DeliverNow(CommandNotice({"/bin/sh", "-c", "echo nope >&2; exit 4"}), nullptr);
  CHECK(s.message() == "on_finish exited with code 4: nope");
}

TEST_CASE("a command target's stderr is quoted as one line, its control characters escaped", "[notifier][process]") {
  // A newline and a terminal escape: neither may start a log line or
  // drive the terminal of whoever reads the log or the event.
  Status s = DeliverNow(CommandNotice({"/bin/sh", "-c", "printf 'first\\nsecond\\033[31m\\n' >&2; exit 1"}), nullptr);
  CHECK(s.message() == "on_finish exited with code 1: first\\nsecond\\x1b[31m");
}

TEST_CASE("a command target over its time limit is killed and the try failed", "[notifier][process]") {
  Status s = DeliverNow(CommandNotice({"/bin/sh", "-c", "exec sleep 30"}, 200), nullptr);
  CHECK(s.message() == "on_finish timed out after 200 ms");
}

// A local HTTP server on a free port, for the length of a test.
struct LocalServer {
  httplib::Server server;
  int port = 0;
  std::thread thread;
  std::string body, content_type;
  explicit LocalServer(int status) {
    server.Post("/hook", [this, status](const httplib::Request& req, httplib::Response& res) {
      body = req.body;
      content_type = req.get_header_value("Content-Type");
      res.status = status;
      res.set_content(status == 200 ? "thanks" : "overloaded", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~LocalServer() {
    server.stop();
    thread.join();
  }
};

Notification UrlNotice(const std::string& url) {
  Notification n;
  n.target = json{{"url", url}}.dump();
  n.timeout_ms = 5'000;
  n.payload = "{\"jobId\": 7}\n";
  return n;
}

TEST_CASE("a url target receives the payload as a JSON POST", "[notifier]") {
  LocalServer server(200);
  std::string answer;
  Status s = DeliverNow(UrlNotice("http://127.0.0.1:" + std::to_string(server.port) + "/hook"), &answer);
  REQUIRE(s.ok());
  CHECK(server.body == "{\"jobId\": 7}\n");
  CHECK(server.content_type == "application/json");
  CHECK(answer == "thanks");
}

TEST_CASE("a url target that answers outside 2xx fails with the status", "[notifier]") {
  LocalServer server(503);
  Status s = DeliverNow(UrlNotice("http://127.0.0.1:" + std::to_string(server.port) + "/hook"), nullptr);
  CHECK(s.message() == "on_finish: http://127.0.0.1:" + std::to_string(server.port) + " answered 503: overloaded");
}

TEST_CASE("an https target whose certificate is not trusted gets nothing", "[notifier]") {
  TempDir dir;
  // A self-signed certificate for 127.0.0.1, valid for a day: no CA of the
  // system's signed it.
  auto made = testing::RunProcess(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
       "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout",
       (dir / "key.pem").string(), "-out", (dir / "cert.pem").string()},
      dir.path(), 30'000);
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  httplib::SSLServer server((dir / "cert.pem").c_str(), (dir / "key.pem").c_str());
  bool posted = false;
  server.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    posted = true;
    res.status = 200;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  Status s = DeliverNow(UrlNotice("https://127.0.0.1:" + std::to_string(port) + "/hook"), nullptr);
  server.stop();
  thread.join();
  CHECK_FALSE(s.ok());
  CHECK_FALSE(posted);
}

}  // namespace
}  // namespace dropq::app
