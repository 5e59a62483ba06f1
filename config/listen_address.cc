#include "config/listen_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace dropq::app {

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::string shape = "\"" + std::string(text) + "\" must be HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)";
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument(shape);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return Status::InvalidArgument(shape);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Status::InvalidArgument("\"" + std::string(text) +
                                     "\": an IPv6 address goes in brackets, e.g. [::1]:8080");
    }
  }
  ListenAddress out;
  int p = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 0 || p > 65535) {
    return Status::InvalidArgument("\"" + std::string(text) + "\": port must be an integer 0..65535");
  }
  out.port = p;
  out.host = std::string(host);
  if (host == "localhost") {
    out.loopback = true;
    return out;
  }
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, out.host.c_str(), &v4) == 1) {
    out.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, out.host.c_str(), &v6) == 1) {
    out.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\": host must be an IP address or localhost (other names are not resolved)");
  }
  return out;
}

}  // namespace dropq::app
