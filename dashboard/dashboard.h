#pragma once
// The read-only web dashboard and /metrics (docs/DASHBOARD.md), served by
// cpp-httplib on threads of its own — never the daemon's loop thread, so a
// slow or hostile client cannot stall ingest, dispatch or the scheduler.
//
// Each request opens its own read-only SQLite connection (WAL lets it read
// while the daemon writes) and closes it when answered: a long-lived reader
// whose statements are left mid-step would pin one snapshot and stop the
// dashboard from seeing new rows. The loop's own figures come through
// LiveMetrics (a copy under a mutex).
//
// With tls_cert/tls_key it serves HTTPS only; with token_file every route
// but the page and its assets answers 401 unless the request carries
// `Authorization: Bearer <token>` (compared in constant time over SHA-256
// digests). docs/DASHBOARD.md, "Remote access".
//
// Lifecycle: Start() reads the token, loads the certificate, binds (port 0 picks a free one, see port()) and starts
// the server thread; Stop() stops accepting, waits for the requests in flight
// and joins it. The destructor stops a running server.
#include <memory>
#include <string>
#include <thread>

#include "dashboard/live_metrics.h"
#include "base/clock.h"
#include "base/status.h"

namespace httplib {
class Server;
}

namespace dropq::app {

struct DashboardOptions {
  std::string host;        // address to bind, from dashboard.listen
  int port = 0;            // 0: any free port
  bool loopback = true;    // serve only Host headers naming this machine (DNS rebinding)
  std::string database;    // <root>/store/dropq.db
  std::string root;        // dropq's root: run logs are read only from under it
  std::string tls_cert;    // PEM; with tls_key, serve HTTPS (httplib::SSLServer)
  std::string tls_key;     // PEM private key of tls_cert
  std::string token_file;  // bearer token the API asks for; "" = none (loopback only)
};

class Dashboard {
 public:
  Dashboard(DashboardOptions options, const Clock& clock, const LiveMetrics& live);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // IOError naming the address when it cannot be bound.
  Status Start();
  void Stop();
  int port() const { return port_; }
  // "https" when serving TLS, else "http".
  const char* scheme() const { return options_.tls_cert.empty() ? "http" : "https"; }

 private:
  void Routes();
  Status LoadToken();
  bool Authorized(const std::string& authorization) const;

  DashboardOptions options_;
  const Clock& clock_;
  const LiveMetrics& live_;
  std::unique_ptr<httplib::Server> server_;
  std::string token_digest_;  // SHA-256 of the token; "" = no token asked
  std::thread thread_;
  int port_ = 0;
};

}  // namespace dropq::app
