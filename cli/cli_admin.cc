// dropq prune | check-config | doctor: the operator's housekeeping.
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "cli/cli_commands.h"
#include "daemon/daemon.h"
#include "config/logging.h"
#include "jobs/layout.h"
#include "jobs/retention.h"
#include "base/units.h"
#include "runner/allowlist.h"
#include "runner/runtime.h"
#include "base/text.h"

namespace dropq::app {
namespace {

namespace fs = std::filesystem;

// A file prune may remove: a regular file (not a link) directly inside `dir`.
bool IsPlainFileIn(const fs::path& file, const fs::path& dir) {
  std::error_code ec;
  if (file.lexically_normal().parent_path() != dir.lexically_normal()) return false;
  return fs::is_regular_file(fs::symlink_status(file, ec));
}

std::optional<std::int64_t> JobIdOfResultFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  auto j = nlohmann::json::parse(s.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("jobId") || !j["jobId"].is_number_integer()) {
    return std::nullopt;
  }
  return j["jobId"].get<std::int64_t>();
}

nlohmann::json ConfigJson(const Config& c) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : c.groups) {
    nlohmann::json mounts = nlohmann::json::array();
    for (const auto& m : g.additional_mounts) {
      mounts.push_back({{"hostPath", m.host_path},
                        {"containerPath", m.container_path ? nlohmann::json(*m.container_path) : nlohmann::json()},
                        {"readonly", m.readonly ? nlohmann::json(*m.readonly) : nlohmann::json()}});
    }
    groups.push_back({{"folder", g.folder},
                      {"name", g.name},
                      {"jid", g.jid ? nlohmann::json(*g.jid) : nlohmann::json()},
                      {"main", g.is_main},
                      {"timeout_ms", g.timeout_ms ? nlohmann::json(*g.timeout_ms) : nlohmann::json()},
                      {"max_concurrent_per_group", c.MaxConcurrentPerGroupFor(g.folder)},
                      {"additional_mounts", mounts}});
  }
  nlohmann::json ro_binds = nlohmann::json::array();
  for (const auto& b : c.bwrap.ro_binds) ro_binds.push_back({{"host", b.host}, {"container", b.container}});
  auto container = [](const ContainerRuntimeConfig& r) {
    return nlohmann::json{{"image", r.image}, {"extra_args", r.extra_args}, {"binary", r.binary}};
  };
  nlohmann::json kube_volumes = nlohmann::json::array();
  for (const auto& v : c.kubernetes.volumes) {
    kube_volumes.push_back({{"claim", v.claim}, {"host_path", v.host_path}, {"sub_path", v.sub_path}});
  }
  nlohmann::json kubernetes = {
      {"binary", c.kubernetes.binary},
      {"image", c.kubernetes.image},
      {"kubeconfig", c.kubernetes.kubeconfig},
      {"context", c.kubernetes.context},
      {"namespace", c.kubernetes.k8s_namespace},
      {"volumes", kube_volumes},
      {"resources", {{"requests", c.kubernetes.requests}, {"limits", c.kubernetes.limits}}},
  };
  nlohmann::json schedules = nlohmann::json::array();
  for (const auto& s : c.schedules) {
    nlohmann::json j = {{"id", s.id},
                        {"group", s.group},
                        {"prompt", s.prompt},
                        {s.schedule_type, s.schedule_value},
                        {"tz", s.tz ? *s.tz : c.timezone},
                        {"context_mode", s.context_mode}};
    if (s.overlap) j["overlap"] = *s.overlap;
    if (s.catch_up) j["catch_up"] = *s.catch_up;
    if (s.catch_up_max) j["catch_up_max"] = *s.catch_up_max;
    if (s.starting_deadline_ms) j["starting_deadline_ms"] = *s.starting_deadline_ms;
    if (s.keep_runs) j["keep_runs"] = *s.keep_runs;
    schedules.push_back(j);
  }
  auto level = EffectiveLogLevel(c.log_level);
  return {{"config_path", c.config_path},
          {"root", c.root},
          {"runtime", c.runtime},
          {"agent", c.agent},
          {"max_concurrent", c.max_concurrent},
          {"max_concurrent_per_group", c.max_concurrent_per_group},
          {"timeout_ms", c.timeout_ms},
          {"kill_grace_ms", c.kill_grace_ms},
          {"shutdown_grace_ms", c.shutdown_grace_ms},
          {"max_output", c.max_output},
          {"max_job_file", c.max_job_file},
          {"max_attempts", c.max_attempts},
          {"max_interruptions", c.max_interruptions},
          {"max_queued_per_group", c.max_queued_per_group},
          {"session_dir", c.session_dir},
          {"log_level", level ? *level : c.log_level},
          {"bwrap",
           {{"rootfs", c.bwrap.rootfs ? nlohmann::json(*c.bwrap.rootfs) : nlohmann::json()},
            {"network", c.bwrap.network},
            {"extra_args", c.bwrap.extra_args},
            {"ro_binds", ro_binds}}},
          {"docker", container(c.docker)},
          {"podman", container(c.podman)},
          {"container", container(c.container)},
          {"kubernetes", kubernetes},
          {"slurm",
           {{"shared_root", c.slurm.shared_root},
            {"inner", c.slurm.inner},
            {"image", c.slurm.image},
            {"partition", c.slurm.partition},
            {"account", c.slurm.account},
            {"qos", c.slurm.qos},
            {"cpus", c.slurm.cpus},
            {"mem", c.slurm.mem},
            {"gres", c.slurm.gres},
            {"extra_args", c.slurm.extra_args},
            {"inner_args", c.slurm.inner_args},
            {"queue_timeout_ms", c.slurm.queue_timeout_ms},
            {"accounting", c.slurm.accounting}}},
          {"mount_allowlist", c.mount_allowlist},
          {"secrets", c.secrets},  // names only: values are never printed
          {"env_file", c.env_file ? nlohmann::json(*c.env_file) : nlohmann::json()},
          {"on_message", c.on_message},
          {"timezone", c.timezone},
          {"groups", groups},
          {"schedules", schedules}};
}

void EmitYaml(YAML::Emitter& out, const nlohmann::json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      EmitYaml(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    bool scalars = true;
    for (const auto& v : j) scalars = scalars && !v.is_structured();
    out << (scalars ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
    for (const auto& v : j) EmitYaml(out, v);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    out << j.get<std::string>();
  } else if (j.is_null()) {
    out << YAML::Null;
  } else {
    out << text::Dump(j);
  }
}

struct Check {
  std::string name;
  std::string status;  // ok | warn | fail
  std::string detail;
};

// Creates and removes a hidden file (ignored by the watcher: no .json).
std::string ProbeWritable(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return "missing";
  if (Status s = Layout::CheckRealDir(dir); !s.ok()) return s.message();
  fs::path probe = dir / (".dropq-doctor-" + std::to_string(::getpid()));
  std::ofstream f(probe);
  if (!f) return "not writable";
  f.close();
  fs::remove(probe, ec);
  return "";
}

Check DiskCheck(const std::string& root) {
  fs::path p = root;
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec) && p != p.root_path()) p = p.parent_path();
  struct statvfs v {};
  if (::statvfs(p.c_str(), &v) != 0) return {"disk space", "fail", "cannot statvfs " + p.string()};
  auto free_b = static_cast<std::int64_t>(v.f_bavail) * static_cast<std::int64_t>(v.f_frsize);
  auto total_b = static_cast<std::int64_t>(v.f_blocks) * static_cast<std::int64_t>(v.f_frsize);
  double pct = total_b > 0 ? 100.0 * static_cast<double>(free_b) / static_cast<double>(total_b) : 0;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.1f GiB free (%.0f%%) on %s", static_cast<double>(free_b) / (1 << 30), pct,
                p.c_str());
  constexpr std::int64_t kFailBelow = 64LL << 20, kWarnBelow = 1LL << 30;
  return {"disk space", free_b < kFailBelow ? "fail" : free_b < kWarnBelow ? "warn" : "ok", buf};
}

Check DatabaseCheck(const Layout& layout, const Clock& clock) {
  auto path = layout.DatabasePath();
  std::error_code ec;
  if (!fs::exists(path, ec)) return {"database", "warn", path.string() + " does not exist yet (the daemon creates it)"};
  auto store = Store::OpenReadOnly(path.string(), clock);
  if (!store.ok()) return {"database", "fail", store.status().message()};
  auto v = (*store)->SchemaVersion();
  auto checked = (*store)->IntegrityCheck();
  if (!checked.ok()) return {"database", "fail", "integrity check: " + checked.status().message()};
  const std::string& verdict = *checked;
  if (verdict != "ok") return {"database", "fail", "integrity check: " + verdict};
  return {"database", "ok",
          path.string() + ": integrity ok, schema version " + (v.ok() ? std::to_string(*v) : std::string("?"))};
}

// Where a sandbox path comes from on the host: through the longest bwrap
// ro_bind whose container path holds it, else the rootfs, else the host's
// own (bwrap binds /usr, /bin, ... from the host).
fs::path HostPathOf(const Config& cfg, const std::string& inside) {
  const BindMount* best = nullptr;
  for (const auto& b : cfg.bwrap.ro_binds) {
    const bool under = inside == b.container || (inside.rfind(b.container + "/", 0) == 0) || b.container == "/";
    if (under && (!best || b.container.size() > best->container.size())) best = &b;
  }
  if (best && inside == best->container) return best->host;
  if (best) return fs::path(best->host) / fs::path(inside).lexically_relative(best->container);
  if (cfg.runtime == "bwrap" && cfg.bwrap.rootfs) return fs::path(*cfg.bwrap.rootfs) / fs::path(inside).relative_path();
  return inside;
}

// What check-config can check without running anything: each finding says
// what to change. Docker, podman and container check their image at start.
std::vector<Check> ConfigFindings(const Config& cfg) {
  std::vector<Check> out;
  std::error_code ec;
  const bool host_agent = cfg.runtime == "bwrap" || cfg.runtime == "process";
  if (host_agent && !cfg.agent.empty()) {
    const std::string& a = cfg.agent.front();
    std::vector<fs::path> candidates;
    if (a.front() == '/') {
      candidates.push_back(HostPathOf(cfg, a));
    } else if (a.find('/') == std::string::npos) {
      for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"})
        candidates.push_back(HostPathOf(cfg, std::string(dir) + "/" + a));
    }
    if (candidates.empty()) {
      out.push_back(
          {"agent", "warn",
           "\"" + a +
               "\" is relative: it resolves against the job's working directory at run time; give an absolute path"});
    } else {
      const fs::path* found = nullptr;
      for (const auto& c : candidates) {
        if (fs::is_regular_file(c, ec)) {
          found = &c;
          break;
        }
      }
      if (!found) {
        out.push_back(
            {"agent", "fail",
             "agent[0] \"" + a + "\": " + candidates.front().string() + " does not exist; fix `agent` in the config" +
                 (cfg.runtime == "bwrap"
                      ? std::string(" (a path inside the sandbox: bind the host file there with bwrap.ro_binds)")
                      : std::string())});
      } else if (::access(found->c_str(), X_OK) != 0) {
        out.push_back({"agent", "fail", "agent[0] " + found->string() + " is not executable; chmod +x it"});
      } else {
        out.push_back({"agent", "ok", found->string()});
      }
    }
  }
  for (std::size_t i = 0; i < cfg.bwrap.ro_binds.size(); ++i) {
    const auto& b = cfg.bwrap.ro_binds[i];
    const std::string key = "bwrap.ro_binds[" + std::to_string(i) + "].host";
    if (fs::exists(b.host, ec)) {
      out.push_back({key, "ok", b.host});
    } else {
      out.push_back(
          {key, "fail", b.host + " does not exist; fix " + key + " (relative paths are relative to the config file)"});
    }
  }
  for (std::size_t gi = 0; gi < cfg.groups.size(); ++gi) {
    const auto& g = cfg.groups[gi];
    for (std::size_t i = 0; i < g.additional_mounts.size(); ++i) {
      const std::string key =
          "groups[" + std::to_string(gi) + "].containerConfig.additionalMounts[" + std::to_string(i) + "].hostPath";
      const std::string host = runner::ExpandHome(g.additional_mounts[i].host_path);
      if (fs::exists(host, ec)) {
        out.push_back({key, "ok", host});
      } else {
        out.push_back({key, "fail", host + " does not exist; create it or fix " + key});
      }
    }
  }
  if (cfg.bwrap.rootfs && cfg.runtime == "bwrap") {
    if (fs::is_directory(*cfg.bwrap.rootfs, ec)) {
      out.push_back({"bwrap.rootfs", "ok", *cfg.bwrap.rootfs});
    } else {
      out.push_back({"bwrap.rootfs", "fail",
                     *cfg.bwrap.rootfs + " is not a directory; fix bwrap.rootfs or remove it to use the host's /usr"});
    }
  }
  {
    // The root, or the nearest existing parent the daemon would create it in.
    fs::path p = cfg.root;
    while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
    const bool writable = fs::is_directory(p, ec) && ::access(p.c_str(), W_OK | X_OK) == 0;
    if (writable) {
      out.push_back({"root", "ok", p == fs::path(cfg.root) ? cfg.root : cfg.root + " (created in " + p.string() + ")"});
    } else {
      out.push_back({"root", "fail",
                     p.string() + " is not a writable directory, so " + cfg.root +
                         " cannot be used; fix `root` or the permissions"});
    }
  }
  {
    bool mounts = false;
    for (const auto& g : cfg.groups) mounts = mounts || !g.additional_mounts.empty();
    auto allow = runner::MountAllowlist::Load(cfg.mount_allowlist);
    if (allow.ok()) {
      out.push_back({"mount_allowlist", "ok", cfg.mount_allowlist});
    } else if (allow.status().code() == Status::Code::kNotFound && !mounts) {
      out.push_back({"mount_allowlist", "ok", cfg.mount_allowlist + " absent (no group has additionalMounts)"});
    } else {
      out.push_back({"mount_allowlist", "fail",
                     allow.status().message() + (mounts ? "; every additionalMounts entry would be refused" : "") +
                         "; fix the file or `mount_allowlist`"});
    }
  }
  {
    // Loading already refused unknown zones; listed so the reader sees them.
    std::set<std::string> zones;
    if (!cfg.timezone.empty()) zones.insert(cfg.timezone);
    for (const auto& t : cfg.schedules) {
      if (t.tz) zones.insert(*t.tz);
    }
    std::string list;
    for (const auto& z : zones) list += (list.empty() ? "" : ", ") + z;
    out.push_back({"time zones", "ok", zones.empty() ? "the system's" : list});
  }
  return out;
}

}  // namespace

int CmdPrune(const Context& ctx, const std::string& older_than, bool dry_run) {
  auto age = ParseDurationMs(older_than);
  if (!age || *age <= 0) {
    std::cerr << "dropq: --older-than: invalid duration \"" << older_than << "\" (e.g. 30d, 12h)\n";
    return kExitUsage;
  }
  Config cfg = LoadOrExit(ctx);
  Layout layout(cfg.root);
  std::error_code ec;
  if (!fs::exists(layout.DatabasePath(), ec)) {
    std::cerr << "dropq: no database at " << layout.DatabasePath().string() << " (has the daemon run?)\n";
    return kExitFailure;
  }
  SystemClock clock;
  // The writer connection, beside a running daemon: SQLite's busy timeout
  // waits for its short transactions, and ours is one transaction too.
  auto store = OrExit(Store::Open(layout.DatabasePath().string(), clock));
  TimeMs cutoff = clock.NowMs() - *age;
  auto rep = PruneFinished(*store, cutoff, dry_run);
  if (!rep.ok()) {
    std::cerr << "dropq: prune failed, nothing was removed: " << rep.status().message() << "\n";
    return kExitFailure;
  }
  // Files only after the commit. A result file is removed only when it still
  // belongs to the pruned job: the same file name dropped again later wrote
  // its own result over it.
  std::int64_t logs = 0, results = 0;
  for (const auto& j : rep->jobs) {
    for (const auto& f : j.log_files) {
      if (!IsPlainFileIn(f, layout.GroupLogsDir(j.group))) continue;
      if (dry_run || fs::remove(f, ec)) ++logs;
    }
    std::string group = j.source_group.value_or(j.group);
    fs::path result = layout.ResultsDir(group) / j.source_name.value_or("job-" + std::to_string(j.id) + ".json");
    if (IsPlainFileIn(result, layout.ResultsDir(group)) && JobIdOfResultFile(result) == j.id) {
      if (dry_run || fs::remove(result, ec)) ++results;
    }
  }
  nlohmann::json out = {{"cutoff", FormatIsoUtc(cutoff)},
                        {"dry_run", dry_run},
                        {"jobs", rep->jobs.size()},
                        {"runs", rep->runs},
                        {"events", rep->events},
                        {"task_runs", rep->task_runs},
                        {"log_files", logs},
                        {"result_files", results}};
  if (ctx.json) {
    std::cout << text::Dump(out) << "\n";
    return kExitOk;
  }
  std::cout << (dry_run ? "would remove" : "removed") << " what finished before " << FormatIsoUtc(cutoff) << " ("
            << older_than << " ago):\n";
  std::vector<std::vector<std::string>> rows;
  for (const char* k : {"jobs", "runs", "events", "task_runs", "log_files", "result_files"}) {
    rows.push_back({k, text::Dump(out[k])});
  }
  PrintTable(std::cout, ctx.style, {"WHAT", "COUNT"}, rows);
  return kExitOk;
}

int CmdCheckConfig(const Context& ctx) {
  Config cfg = LoadOrExit(ctx);
  std::string level_error;
  if (!EffectiveLogLevel(cfg.log_level)) {
    std::cerr << "dropq: DROPQ_LOG_LEVEL \"" << std::getenv("DROPQ_LOG_LEVEL")
              << "\" is not a level (trace, debug, info, warn, error, critical, off)\n";
    return kExitUsage;
  }
  nlohmann::json j = ConfigJson(cfg);
  const std::vector<Check> findings = ConfigFindings(cfg);
  bool failed = false;
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& f : findings) {
    failed = failed || f.status == "fail";
    arr.push_back({{"check", f.name}, {"status", f.status}, {"detail", f.detail}});
  }
  if (ctx.json) {
    j["ok"] = !failed;
    j["findings"] = arr;
    std::cout << text::Dump(j) << "\n";
    return failed ? kExitFailure : kExitOk;
  }
  YAML::Emitter out;
  EmitYaml(out, j);
  std::cout << "# " << cfg.config_path << ": valid. The effective configuration (defaults filled in, paths "
            << "absolute, durations in ms):\n"
            << out.c_str() << "\n";
  std::cout << "\n# checks (nothing was run):\n";
  std::vector<std::vector<std::string>> rows;
  const Style& st = ctx.style;
  for (const auto& f : findings) {
    rows.push_back({f.name,
                    f.status == "ok"     ? st.Green(f.status)
                    : f.status == "warn" ? st.Yellow(f.status)
                                         : st.Red(f.status),
                    f.detail});
  }
  PrintTable(std::cout, ctx.style, {"CHECK", "STATUS", "DETAIL"}, rows);
  if (failed) std::cerr << "dropq: " << cfg.config_path << " loads, but a check failed (see above)\n";
  return failed ? kExitFailure : kExitOk;
}

int CmdDoctor(const Context& ctx) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  Layout layout(cfg.root);
  std::vector<Check> checks;
  checks.push_back({"config", "ok", cfg.config_path});

  // Quiet the runtime's own warnings (process: "does NOT isolate"): doctor
  // reports in its table.
  spdlog::set_level(spdlog::level::err);
  // No instance id: doctor only checks availability and starts no container.
  auto runtime = MakeRuntime(cfg, "");
  const Status available = runtime->CheckAvailable();
  if (!available.ok()) {
    checks.push_back({"runtime " + cfg.runtime, "fail", available.message()});
  } else if (!runtime->isolates()) {
    checks.push_back({"runtime " + cfg.runtime, "warn", "available, but it does NOT isolate jobs"});
  } else {
    checks.push_back(
        {"runtime " + cfg.runtime, "ok",
         cfg.runtime == "bwrap" ? "a test sandbox with its own namespaces (--unshare-all) ran" : "available"});
  }
  // Cluster runtimes: a node must see the root under the same path.
  if (auto seen = available.ok() ? runtime->ProbeSharedStorage() : std::nullopt) {
    checks.push_back({"shared storage", seen->ok() ? "ok" : "fail",
                      seen->ok() ? "a node read a file written here (one probe step)" : seen->message()});
  }
  if (cfg.runtime == "bwrap") {
    std::ifstream f("/proc/sys/user/max_user_namespaces");
    std::int64_t n = -1;
    f >> n;
    if (!f) {
      checks.push_back({"user namespaces", "warn", "cannot read /proc/sys/user/max_user_namespaces"});
    } else {
      checks.push_back({"user namespaces", n > 0 ? "ok" : "fail", "max_user_namespaces = " + std::to_string(n)});
    }
  }

  std::vector<std::pair<std::string, fs::path>> dirs = {
      {"root", layout.root()}, {"store/", layout.StoreDir()}, {"errors/", layout.ErrorsDir()}};
  for (const auto& g : cfg.groups) {
    dirs.push_back({g.folder + " tasks/", layout.TasksDir(g.folder)});
    dirs.push_back({g.folder + " results/", layout.ResultsDir(g.folder)});
    dirs.push_back({g.folder + " logs/", layout.GroupLogsDir(g.folder)});
  }
  for (const auto& [label, dir] : dirs) {
    std::string why = ProbeWritable(dir);
    if (why.empty()) {
      checks.push_back({"writable " + label, "ok", dir.string()});
    } else if (why == "missing") {
      checks.push_back({"writable " + label, "warn", dir.string() + " is missing (the daemon creates it)"});
    } else {
      checks.push_back({"writable " + label, "fail", dir.string() + ": " + why});
    }
  }
  checks.push_back(DiskCheck(cfg.root));
  checks.push_back(DatabaseCheck(layout, clock));

  bool failed = false;
  nlohmann::json arr = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : checks) {
    failed = failed || c.status == "fail";
    arr.push_back({{"check", c.name}, {"status", c.status}, {"detail", c.detail}});
    const Style& st = ctx.style;
    rows.push_back({c.name,
                    c.status == "ok"     ? st.Green(c.status)
                    : c.status == "warn" ? st.Yellow(c.status)
                                         : st.Red(c.status),
                    c.detail});
  }
  if (ctx.json) {
    std::cout << text::Dump(nlohmann::json{{"ok", !failed}, {"checks", arr}}) << "\n";
  } else {
    PrintTable(std::cout, ctx.style, {"CHECK", "STATUS", "DETAIL"}, rows);
  }
  return failed ? kExitFailure : kExitOk;
}

}  // namespace dropq::app
