#pragma once
// The dashboard's `dashboard.listen` value: "HOST:PORT" where HOST is an IPv4
// literal, a bracketed IPv6 literal ("[::1]:8080") or `localhost`, and PORT
// 0..65535 (0: any free port, logged at start). Hostnames other than
// localhost are refused: what they resolve to can change, and whether the
// dashboard is reachable from other machines must be decided here, once.
#include <string>
#include <string_view>

#include "base/status.h"

namespace dropq::app {

struct ListenAddress {
  std::string host;  // as httplib binds it: "127.0.0.1", "::1", "0.0.0.0", "localhost"
  int port = 0;
  bool loopback = false;  // 127.0.0.0/8, ::1 or localhost
};

// InvalidArgument with the reason for anything else.
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace dropq::app
