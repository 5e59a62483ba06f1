#include "dashboard/dashboard.h"

#include <httplib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <spdlog/spdlog.h>

#include "dashboard/dashboard_assets.h"
#include "jobs/cron.h"
#include "jobs/queries.h"
#include "dashboard/metrics_text.h"
#include "jobs/store.h"
#include "base/text.h"

namespace dropq::app {
namespace {

using nlohmann::json;

// Four workers: a browser keeps a few connections open, and each holds a
// worker while it is kept alive.
constexpr std::size_t kWorkers = 4;

json Time(std::optional<TimeMs> t) { return t ? json(FormatIsoUtc(*t)) : json(nullptr); }
json Opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
json Opt(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }

// A stored JSON text (result, event detail) as JSON when it parses, else as
// the text itself: the page shows it either way, always as text.
json JsonText(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  json j = json::parse(*s, nullptr, false);
  return j.is_discarded() ? json(*s) : j;
}

json JobJson(const Job& j) {
  json o = {{"id", j.id},
            {"group", j.group},
            {"state", std::string(ToString(j.state))},
            {"prompt", j.prompt},
            {"priority", j.priority},
            {"run_at", FormatIsoUtc(j.run_at)},
            {"attempts", j.attempts},
            {"max_attempts", j.max_attempts},
            {"context_mode", std::string(ToString(j.context_mode))},
            {"source_group", Opt(j.source_group)},
            {"source_name", Opt(j.source_name)},
            {"created_at", FormatIsoUtc(j.created_at)},
            {"started_at", Time(j.started_at)},
            {"finished_at", Time(j.finished_at)},
            {"error", Opt(j.error)}};
  o["duration_ms"] = j.started_at && j.finished_at ? json(*j.finished_at - *j.started_at) : json(nullptr);
  return o;
}

// The jobs at the other end of a job's dependencies.
json LinksJson(const std::vector<deps::Link>& links) {
  json out = json::array();
  for (const auto& l : links) {
    out.push_back({{"id", l.id}, {"group", l.group}, {"client_id", Opt(l.client_id)}, {"state", ToString(l.state)}});
  }
  return out;
}

json RunJson(const JobRun& r) {
  return {{"attempt", r.attempt},
          {"runtime", r.runtime},
          {"container_name", Opt(r.container_name)},
          {"started_at", FormatIsoUtc(r.started_at)},
          {"finished_at", Time(r.finished_at)},
          {"duration_ms", Opt(r.duration_ms)},
          {"status", r.status},
          {"exit_code", Opt(r.exit_code)},
          {"signal", Opt(r.signal)},
          {"stdout_bytes", r.stdout_bytes},
          {"stderr_bytes", r.stderr_bytes},
          {"stdout_truncated", r.stdout_truncated},
          {"stderr_truncated", r.stderr_truncated},
          {"log_file", Opt(r.log_file)},
          {"error", Opt(r.error)},
          {"node", Opt(r.node)},
          {"cluster_state", Opt(r.cluster_state)}};
}

json TaskJson(const Task& t) {
  return {{"id", t.id},
          {"group", t.group_folder},
          {"prompt", t.prompt},
          {"schedule_type", std::string(ToString(t.schedule_type))},
          {"schedule_value", t.schedule_value},
          {"tz", t.tz},
          {"status", std::string(ToString(t.status))},
          {"next_run", Time(t.next_run)},
          // The task's own zone, as `dropq tasks` shows it (docs/CRON.md).
          {"next_run_local", t.next_run ? json(cron::FormatInTaskZone(*t.next_run, t.tz)) : json(nullptr)},
          {"last_run", Time(t.last_run)},
          {"last_result", JsonText(t.last_result)}};
}

void SendJson(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(text::Dump(body), "application/json; charset=utf-8");
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, json{{"error", message}}, status);
}

// Host is "name", "name:port", "[v6]" or "[v6]:port".
std::string HostName(const std::string& host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == std::string::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.find(':');
  return colon == std::string::npos ? host : host.substr(0, colon);
}

bool IsLocalHostName(const std::string& name, const std::string& bound) {
  return name == "localhost" || name == "[::1]" || name.rfind("127.", 0) == 0 || name == bound ||
         name == "[" + bound + "]";
}

// The page and what it loads: no data in them, and the page must load to ask
// for the token. Everything else (API, /metrics, unknown paths) needs it.
bool IsPublicPath(const std::string& path) {
  return path == "/" || path == "/dashboard.js" || path == "/dashboard.css" || path == "/favicon.ico";
}

std::string Sha256(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(md), n);
}

constexpr std::size_t kMinTokenBytes = 16;

std::optional<std::int64_t> ParseInt(const std::string& s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Dashboard::Dashboard(DashboardOptions options, const Clock& clock, const LiveMetrics& live)
    : options_(std::move(options)), clock_(clock), live_(live) {}

Dashboard::~Dashboard() { Stop(); }

// The token file must not be readable or writable by others (group may read
// it: an operator's group can share it); the token is its content without
// surrounding white space, at least kMinTokenBytes long.
Status Dashboard::LoadToken() {
  const std::string& path = options_.token_file;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::IOError("dashboard.token_file " + path + ": cannot read it (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("dashboard.token_file " + path + ": not a regular file");
  if (st.st_mode & (S_IROTH | S_IWOTH)) {
    return Status::InvalidArgument("dashboard.token_file " + path +
                                   ": other users can read or write it; chmod 600 (or 640) it");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in) return Status::IOError("dashboard.token_file " + path + ": cannot read it");
  std::string token = buf.str();
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!token.empty() && space(token.back())) token.pop_back();
  std::size_t lead = 0;
  while (lead < token.size() && space(token[lead])) ++lead;
  token.erase(0, lead);
  if (token.size() < kMinTokenBytes) {
    return Status::InvalidArgument("dashboard.token_file " + path + ": the token must be at least " +
                                   std::to_string(kMinTokenBytes) + " characters (openssl rand -hex 32)");
  }
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return Status::InvalidArgument("dashboard.token_file " + path +
                                     ": the token must be printable ASCII without spaces");
    }
  }
  token_digest_ = Sha256(token);
  OPENSSL_cleanse(token.data(), token.size());
  if (token_digest_.empty()) return Status::IOError("dashboard: SHA-256 unavailable");
  return Status::Ok();
}

// `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 6750).
// Both sides are hashed first, so the compare is over equal lengths and takes
// the same time wherever the first difference is.
bool Dashboard::Authorized(const std::string& authorization) const {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view given(authorization);
  given.remove_prefix(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  const std::string digest = Sha256(given);
  return digest.size() == token_digest_.size() &&
         CRYPTO_memcmp(digest.data(), token_digest_.data(), digest.size()) == 0;
}

Status Dashboard::Start() {
  if (!options_.token_file.empty()) {
    if (Status s = LoadToken(); !s.ok()) return s;
  }
  if (!options_.tls_cert.empty()) {
    for (const auto& [key, path] :
         {std::pair<const char*, const std::string*>{"tls_cert", &options_.tls_cert}, {"tls_key", &options_.tls_key}}) {
      if (!std::ifstream(*path))
        return Status::IOError(std::string("dashboard.") + key + " " + *path + ": cannot read it");
    }
    auto ssl = std::make_unique<httplib::SSLServer>(options_.tls_cert.c_str(), options_.tls_key.c_str());
    if (!ssl->is_valid()) {
      return Status::InvalidArgument("dashboard: cannot use dashboard.tls_cert " + options_.tls_cert +
                                     " with dashboard.tls_key " + options_.tls_key +
                                     " (not PEM, or the key does not belong to the certificate)");
    }
    // cpp-httplib allows TLS 1.1; nothing older than 1.2 here.
    SSL_CTX_set_min_proto_version(ssl->ssl_context(), TLS1_2_VERSION);
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  server_->new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  server_->set_keep_alive_timeout(2);
  Routes();
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ <= 0) return Status::IOError("dashboard: cannot bind " + options_.host + " (any port)");
  } else {
    if (!server_->bind_to_port(options_.host, options_.port)) {
      return Status::IOError("dashboard: cannot bind " + options_.host + ":" + std::to_string(options_.port) +
                             " (in use, or not an address of this machine)");
    }
    port_ = options_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void Dashboard::Stop() {
  if (!thread_.joinable() || !server_) return;
  server_->stop();
  thread_.join();
}

void Dashboard::Routes() {
  auto& s = *server_;
  // Read-only, no cookies; on loopback, refuse a Host
  // header that names another machine, so a web page that rebinds its own
  // name to 127.0.0.1 cannot read the dashboard through the user's browser.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Cache-Control", "no-store");
    if (options_.loopback && !IsLocalHostName(HostName(req.get_header_value("Host")), options_.host)) {
      SendError(res, 403, "this dashboard answers only to localhost names");
      return httplib::Server::HandlerResponse::Handled;
    }
    // With a token: every route but the page and its assets needs it.
    if (!token_digest_.empty() && !IsPublicPath(req.path) && !Authorized(req.get_header_value("Authorization"))) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"dropq\"");
      SendError(res, 401, "this dashboard needs its token: Authorization: Bearer <token>");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every API handler runs with a fresh read-only connection.
  using Handler = std::function<void(DashboardQueries&, const httplib::Request&, httplib::Response&)>;
  auto with_db = [this](Handler h) {
    return [this, h](const httplib::Request& req, httplib::Response& res) {
      auto store = Store::OpenReadOnly(options_.database, clock_);
      if (!store.ok()) {
        SendError(res, 503, store.status().message());
        return;
      }
      DashboardQueries q(**store, clock_, options_.root);
      h(q, req, res);
    };
  };

  auto asset = [](const char* type, std::string_view body) {
    return [type, body](const httplib::Request&, httplib::Response& res) {
      // Scripts and styles only from here: no inline script, nothing remote.
      res.set_header("Content-Security-Policy",
                     "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                     "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      res.set_content(std::string(body), type);
    };
  };
  s.Get("/", asset("text/html; charset=utf-8", DashboardHtml()));
  s.Get("/dashboard.js", asset("text/javascript; charset=utf-8", DashboardJs()));
  s.Get("/dashboard.css", asset("text/css; charset=utf-8", DashboardCss()));
  // Browsers ask for it on their own; no icon, and no 404 in their console.
  s.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });

  s.Get("/api/overview", with_db([this](DashboardQueries& q, const httplib::Request&, httplib::Response& res) {
          auto groups = q.Groups();
          auto counts = q.CountsByGroupAndState();
          auto running = q.Running();
          auto ready = q.ReadyByGroup();
          for (const Status* st : {&groups.status(), &counts.status(), &running.status(), &ready.status()}) {
            if (!st->ok()) return SendError(res, 500, st->message());
          }
          json o;
          o["now"] = FormatIsoUtc(clock_.NowMs());
          o["groups"] = json::array();
          for (const auto& g : *groups)
            o["groups"].push_back({{"folder", g.folder}, {"name", g.name}, {"main", g.is_main}});
          o["counts"] = json::array();
          for (const auto& c : *counts)
            o["counts"].push_back({{"group", c.group}, {"state", c.state}, {"count", c.count}});
          o["running"] = json::array();
          for (const auto& r : *running) {
            o["running"].push_back({{"id", r.id},
                                    {"group", r.group},
                                    {"prompt", r.prompt},
                                    {"attempt", r.attempt},
                                    {"container_name", Opt(r.container_name)},
                                    {"started_at", FormatIsoUtc(r.started_at)},
                                    {"elapsed_ms", r.elapsed_ms}});
          }
          o["ready"] = json::object();
          for (const auto& [g, n] : *ready) o["ready"][g] = n;
          LiveFigures l = live_.Snapshot();
          // Rate limits (docs/CONFIG.md, "Rate limits"): the daemon's limits,
          // their windows counted from the database as `status` does.
          o["rate_limits"] = json::object();
          if (l.rate_limits) {
            auto rates = LoadRateStates(q.store(), *l.rate_limits, clock_.NowMs());
            if (!rates.ok()) return SendError(res, 500, rates.status().message());
            for (const auto& r : *rates) {
              o["rate_limits"][r.group] = {
                  {"limit", FormatRateLimit(r.limit)},
                  {"max", r.limit.max},
                  {"period_ms", r.limit.period_ms},
                  {"starts_in_window", r.state.starts_in_window},
                  {"limited", r.state.limited()},
                  {"next_start_at", r.state.next_start_at ? json(FormatIsoUtc(*r.state.next_start_at)) : json()}};
            }
          }
          o["live"] = {{"containers_running", l.containers_running},
                       {"ingest_rejected", l.ingest_rejected},
                       {"scheduler_lag_ms", Opt(l.scheduler_lag_ms)},
                       {"started_at", Time(l.started_at ? std::optional(l.started_at) : std::nullopt)}};
          SendJson(res, o);
        }));

  s.Get("/api/jobs", with_db([](DashboardQueries& q, const httplib::Request& req, httplib::Response& res) {
          JobFilter f;
          f.limit = 50;
          if (req.has_param("state") && !req.get_param_value("state").empty()) {
            auto st = ParseJobState(req.get_param_value("state"));
            if (!st) return SendError(res, 400, "state must be queued, running, succeeded, failed or cancelled");
            f.state = st;
          }
          if (req.has_param("group") && !req.get_param_value("group").empty()) f.group = req.get_param_value("group");
          if (req.has_param("limit")) {
            auto n = ParseInt(req.get_param_value("limit"));
            if (!n || *n < 1 || *n > DashboardQueries::kMaxJobsListed) {
              return SendError(res, 400,
                               "limit must be an integer 1.." + std::to_string(DashboardQueries::kMaxJobsListed));
            }
            f.limit = static_cast<int>(*n);
          }
          auto jobs = q.Recent(f);
          if (!jobs.ok()) return SendError(res, 500, jobs.status().message());
          json out = json::array();
          for (const auto& j : *jobs) out.push_back(JobJson(j));
          SendJson(res, json{{"jobs", out}});
        }));

  s.Get(R"(/api/jobs/([0-9]{1,18}))",
        with_db([](DashboardQueries& q, const httplib::Request& req, httplib::Response& res) {
          auto id = ParseInt(req.matches[1]);
          if (!id) return SendError(res, 400, "job id must be an integer");
          auto d = q.Detail(*id);
          if (!d.ok()) return SendError(res, 500, d.status().message());
          if (!*d) return SendError(res, 404, "no job " + std::to_string(*id));
          const JobDetail& jd = **d;
          json o = JobJson(jd.job);
          o["result"] = JsonText(jd.job.result);
          o["after_policy"] = jd.job.after_policy ? json(ToString(*jd.job.after_policy)) : json(nullptr);
          o["unique_key"] = Opt(jd.job.unique_key);
          o["after"] = LinksJson(jd.after);
          o["waited_by"] = LinksJson(jd.waited_by);
          o["runs"] = json::array();
          for (const auto& r : jd.runs) o["runs"].push_back(RunJson(r));
          o["events"] = json::array();
          for (const auto& e : jd.events) {
            o["events"].push_back({{"at", FormatIsoUtc(e.at)}, {"event", e.event}, {"detail", JsonText(e.detail)}});
          }
          o["log"] = Opt(jd.log);
          o["log_truncated"] = jd.log_truncated;
          o["log_error"] = Opt(jd.log_error);
          SendJson(res, o);
        }));

  s.Get("/api/tasks", with_db([](DashboardQueries& q, const httplib::Request&, httplib::Response& res) {
          auto tasks = q.Tasks();
          if (!tasks.ok()) return SendError(res, 500, tasks.status().message());
          json out = json::array();
          for (const auto& t : *tasks) out.push_back(TaskJson(t));
          SendJson(res, json{{"tasks", out}});
        }));

  s.Get("/api/throughput", with_db([](DashboardQueries& q, const httplib::Request&, httplib::Response& res) {
          auto buckets = q.FinishedPerMinute();
          if (!buckets.ok()) return SendError(res, 500, buckets.status().message());
          json out = json::array();
          for (const auto& b : *buckets) {
            out.push_back({{"minute", FormatIsoUtc(b.minute)},
                           {"succeeded", b.succeeded},
                           {"failed", b.failed},
                           {"cancelled", b.cancelled}});
          }
          SendJson(res, json{{"minutes", out}});
        }));

  s.Get("/metrics", with_db([this](DashboardQueries& q, const httplib::Request&, httplib::Response& res) {
          MetricsSnapshot m;
          auto groups = q.Groups();
          auto jobs = q.CountsByGroupAndState();
          auto runs = q.RunsByGroupAndStatus();
          auto durations = q.RunDurations();
          auto ready = q.ReadyByGroup();
          for (const Status* st :
               {&groups.status(), &jobs.status(), &runs.status(), &durations.status(), &ready.status()}) {
            if (!st->ok()) {
              res.status = 500;
              res.set_content("# error: " + st->message() + "\n", "text/plain; charset=utf-8");
              return;
            }
          }
          m.groups = std::move(*groups);
          m.jobs = std::move(*jobs);
          m.runs = std::move(*runs);
          m.durations = *durations;
          m.ready = std::move(*ready);
          m.live = live_.Snapshot();
          if (m.live.rate_limits) {
            auto rates = LoadRateStates(q.store(), *m.live.rate_limits, clock_.NowMs());
            if (!rates.ok()) {
              res.status = 500;
              res.set_content("# error: " + rates.status().message() + "\n", "text/plain; charset=utf-8");
              return;
            }
            m.rates = std::move(*rates);
          }
          res.set_content(RenderPrometheus(m), "text/plain; version=0.0.4; charset=utf-8");
        }));

  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) SendError(res, res.status, res.status == 404 ? "not found" : "error");
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("dashboard: {}", what);
    SendError(res, 500, what);
  });
}

}  // namespace dropq::app
