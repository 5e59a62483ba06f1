#include "daemon/reload.h"

#include <tuple>

namespace dropq::app {
namespace {

auto Tie(const BindMount& b) { return std::tie(b.host, b.container); }
auto Tie(const BwrapConfig& b) { return std::tie(b.rootfs, b.network, b.extra_args); }
auto Tie(const ContainerRuntimeConfig& c) { return std::tie(c.image, c.extra_args, c.binary); }
auto Tie(const DashboardConfig& d) {
  return std::tie(d.listen, d.host, d.port, d.allow_remote, d.tls_cert, d.tls_key, d.token_file);
}
auto Tie(const AdditionalMountConfig& m) { return std::tie(m.host_path, m.container_path, m.readonly); }
auto Tie(const GroupConfig& g) {
  return std::tie(g.folder, g.name, g.jid, g.is_main, g.timeout_ms, g.on_finish, g.rate, g.rate_unlimited,
                  g.max_concurrent_per_group);
}
auto Tie(const ScheduleConfig& s) {
  return std::tie(s.id, s.group, s.prompt, s.schedule_type, s.schedule_value, s.tz, s.context_mode, s.overlap,
                  s.catch_up, s.catch_up_max, s.starting_deadline_ms, s.keep_runs);
}

bool Same(const BwrapConfig& a, const BwrapConfig& b);
bool Same(const GroupConfig& a, const GroupConfig& b);

template <typename T>
bool Same(const T& a, const T& b) {
  if constexpr (requires { Tie(a); }) {
    return Tie(a) == Tie(b);
  } else {
    return a == b;
  }
}
template <typename T>
bool Same(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!Same(a[i], b[i])) return false;
  }
  return true;
}
bool Same(const BwrapConfig& a, const BwrapConfig& b) { return Tie(a) == Tie(b) && Same(a.ro_binds, b.ro_binds); }
bool Same(const GroupConfig& a, const GroupConfig& b) {
  return Tie(a) == Tie(b) && Same(a.additional_mounts, b.additional_mounts);
}

}  // namespace

ReloadPlan PlanReload(const Config& running, Config loaded) {
  ReloadPlan plan;
  // Kept: `key` needs a restart; the running value stays.
  auto keep = [&](const char* key, auto member) {
    if (!Same(running.*member, loaded.*member)) {
      plan.restart_needed.push_back(key);
      loaded.*member = running.*member;
    }
  };
  keep("root", &Config::root);
  keep("runtime", &Config::runtime);
  keep("bwrap", &Config::bwrap);
  keep("docker", &Config::docker);
  keep("podman", &Config::podman);
  keep("container", &Config::container);
  keep("kubernetes", &Config::kubernetes);
  keep("slurm", &Config::slurm);
  keep("dashboard", &Config::dashboard);
  keep("on_message", &Config::on_message);
  auto note = [&](const char* key, auto member) {
    if (!Same(running.*member, loaded.*member)) plan.changed.push_back(key);
  };
  note("agent", &Config::agent);
  note("max_concurrent", &Config::max_concurrent);
  note("max_concurrent_per_group", &Config::max_concurrent_per_group);
  note("timeout", &Config::timeout_ms);
  note("kill_grace", &Config::kill_grace_ms);
  note("max_output", &Config::max_output);
  note("max_job_file", &Config::max_job_file);
  note("max_attempts", &Config::max_attempts);
  note("max_interruptions", &Config::max_interruptions);
  note("max_queued_per_group", &Config::max_queued_per_group);
  note("shutdown_grace", &Config::shutdown_grace_ms);
  note("session_dir", &Config::session_dir);
  note("log_level", &Config::log_level);
  note("mount_allowlist", &Config::mount_allowlist);
  note("secrets", &Config::secrets);
  note("env_file", &Config::env_file);
  note("on_finish", &Config::on_finish);
  note("rate", &Config::rate);
  note("groups", &Config::groups);
  note("timezone", &Config::timezone);
  note("schedules", &Config::schedules);
  plan.next = std::move(loaded);
  return plan;
}

}  // namespace dropq::app
