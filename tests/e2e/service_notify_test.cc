// `dropq run` under systemd's Type=notify (docs/SERVICE.md): the real daemon
// tells the $NOTIFY_SOCKET it inherits when it is ready, reloading and
// stopping. Built without libsystemd the daemon sends nothing, so the test
// is compiled only with it (as tests/base/service_notify_test.cc).
#ifdef DROPQ_HAVE_SYSTEMD
#include <optional>

#include "tests/e2e/e2e_root.h"
#include "tests/fakes/env.h"
#include "tests/fakes/notify_socket.h"

namespace dropq::testing {
namespace {

struct NotifiedDaemon {
  Root root;
  NotifySocket sock;
  pid_t pid;
  NotifiedDaemon() : pid(Start(root, sock)) {}
  static pid_t Start(Root& r, NotifySocket& s) {
    ScopedEnv env("NOTIFY_SOCKET", s.path);
    fs::create_directories(r.dir / "daemon");
    return StartProcess({DROPQ_BINARY, "run", "--config", r.config.string()}, r.dir / "daemon");
  }
  ~NotifiedDaemon() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    WaitProcess(pid, 30'000);
  }
};

TEST_CASE("dropq run tells systemd READY=1 once its ready event is recorded", "[e2e][service_notify]") {
  NotifiedDaemon d;
  REQUIRE(d.sock.Next() == std::optional<std::string>("READY=1"));
  CHECK(d.root.Query("SELECT count(*) FROM job_events WHERE event='ready'") == "1");
}

TEST_CASE("a SIGHUP reload is told to systemd as RELOADING=1 then READY=1", "[e2e][service_notify]") {
  NotifiedDaemon d;
  REQUIRE(d.sock.Next() == std::optional<std::string>("READY=1"));
  REQUIRE(::kill(d.pid, SIGHUP) == 0);
  auto reloading = d.sock.Next();
  REQUIRE(reloading);
  // systemd 253 and later want the monotonic time the reload began with it.
  CHECK(reloading->rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
  CHECK(d.sock.Next() == std::optional<std::string>("READY=1"));
  CHECK(d.root.Query("SELECT count(*) FROM job_events WHERE event='reloaded'") == "1");
}

TEST_CASE("a refused reload still ends with READY=1, the old config running", "[e2e][service_notify]") {
  NotifiedDaemon d;
  REQUIRE(d.sock.Next() == std::optional<std::string>("READY=1"));
  WriteFile(d.root.config, "groups: [not a mapping\n");
  REQUIRE(::kill(d.pid, SIGHUP) == 0);
  auto reloading = d.sock.Next();
  REQUIRE(reloading);
  CHECK(reloading->rfind("RELOADING=1", 0) == 0);
  CHECK(d.sock.Next() == std::optional<std::string>("READY=1"));
  CHECK(d.root.Query("SELECT count(*) FROM job_events WHERE event='reload_refused'") == "1");
}

TEST_CASE("a stop signal is told to systemd as STOPPING=1", "[e2e][service_notify]") {
  NotifiedDaemon d;
  REQUIRE(d.sock.Next() == std::optional<std::string>("READY=1"));
  REQUIRE(::kill(d.pid, SIGTERM) == 0);
  CHECK(d.sock.Next() == std::optional<std::string>("STOPPING=1"));
  int code = WaitProcess(d.pid, 30'000);
  d.pid = 0;  // reaped
  CHECK(code == 0);
}

}  // namespace
}  // namespace dropq::testing
#endif
