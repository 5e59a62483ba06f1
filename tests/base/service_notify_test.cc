// base/service_notify.h: sd_notify through $NOTIFY_SOCKET.
//
// Debian 12 ships Catch2 v2, which has no SKIP: built without libsystemd
// (DROPQ_SYSTEMD=OFF) this test is not compiled in at all, so it does not
// show up in ctest's list rather than passing without checking anything.
#ifdef DROPQ_HAVE_SYSTEMD
#include "base/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "tests/fakes/env.h"
#include "tests/fakes/temp_dir.h"

TEST_CASE("ServiceNotify delivers its state to the NOTIFY_SOCKET datagram socket", "[service_notify]") {
  dropq::testing::TempDir tmp;
  const std::string path = (tmp / "notify.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  {
    dropq::testing::ScopedEnv env("NOTIFY_SOCKET", path);
    dropq::ServiceNotify("READY=1");
  }
  char buf[256];
  // The datagram is queued before sd_notify returns; MSG_DONTWAIT never blocks.
  ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  ::close(fd);
  REQUIRE(n > 0);
  CHECK(std::string(buf, static_cast<std::size_t>(n)) == "READY=1");
}
#endif
