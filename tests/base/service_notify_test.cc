// base/service_notify.h: sd_notify through $NOTIFY_SOCKET.
//
// Debian 12 ships Catch2 v2, which has no SKIP: built without libsystemd
// (DROPQ_SYSTEMD=OFF) this test is not compiled in at all, so it does not
// show up in ctest's list rather than passing without checking anything.
#ifdef DROPQ_HAVE_SYSTEMD
#include "base/service_notify.h"

#include <catch2/catch.hpp>

#include "tests/fakes/env.h"
#include "tests/fakes/notify_socket.h"

TEST_CASE("ServiceNotify delivers its state to the NOTIFY_SOCKET datagram socket", "[service_notify]") {
  dropq::testing::NotifySocket sock;
  {
    dropq::testing::ScopedEnv env("NOTIFY_SOCKET", sock.path);
    dropq::ServiceNotify("READY=1");
  }
  CHECK(sock.Next() == std::optional<std::string>("READY=1"));
}
#endif
