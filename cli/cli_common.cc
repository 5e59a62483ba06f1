#include "cli/cli_common.h"

#include <cstdlib>
#include <filesystem>

#include "jobs/layout.h"

namespace dropq::app {
namespace {

nlohmann::json OptJson(const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json OptTime(const std::optional<TimeMs>& t) {
  return t ? nlohmann::json(FormatIsoUtc(*t)) : nlohmann::json();
}
template <typename T>
nlohmann::json OptNum(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

}  // namespace

Result<std::string> FindConfig(const std::string& explicit_path, const std::vector<std::string>& candidates) {
  if (!explicit_path.empty()) return explicit_path;
  std::string tried;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (std::filesystem::exists(c, ec)) return c;
    tried += "\n  " + std::filesystem::absolute(c, ec).lexically_normal().string();
  }
  return Status::NotFound("no config file found; looked for:" + tried +
                          "\nname one with --config PATH or the DROPQ_CONFIG environment variable");
}

Config LoadOrExit(const Context& ctx) {
  auto path = FindConfig(ctx.config_path, kConfigSearchPath);
  if (!path.ok()) {
    std::cerr << "dropq: " << path.status().message() << "\n";
    std::exit(kExitUsage);
  }
  try {
    return LoadConfigFile(*path);
  } catch (const ConfigError& e) {
    // what() is "file:line:column: key: reason".
    std::cerr << "dropq: config error: " << e.what() << "\n";
    std::exit(kExitUsage);
  } catch (const std::exception& e) {
    std::cerr << "dropq: " << e.what() << "\n";
    std::exit(kExitUsage);
  }
}

std::unique_ptr<Store> OpenReaderOrExit(const Config& cfg, const Clock& clock) {
  auto store = Store::OpenReadOnly(Layout(cfg.root).DatabasePath().string(), clock);
  if (!store.ok()) {
    std::cerr << "dropq: " << store.status().message() << "\n";
    std::exit(kExitFailure);
  }
  return std::move(*store);
}

nlohmann::json ParseOrString(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json(text) : parsed;
}

nlohmann::json JobJson(const Job& j) {
  nlohmann::json r = {
      {"id", j.id},
      {"group", j.group},
      {"type", j.type},
      {"state", ToString(j.state)},
      {"prompt", j.prompt},
      {"priority", j.priority},
      {"run_at", FormatIsoUtc(j.run_at)},
      {"attempts", j.attempts},
      {"max_attempts", j.max_attempts},
      {"interruptions", j.interruptions},
      {"max_interruptions", j.max_interruptions},
      {"context_mode", ToString(j.context_mode)},
      {"client_id", OptJson(j.client_id)},
      {"timeout_ms", OptNum(j.timeout_ms)},
      {"source_name", OptJson(j.source_name)},
      {"source_hash", OptJson(j.source_hash)},
      {"created_at", FormatIsoUtc(j.created_at)},
      {"started_at", OptTime(j.started_at)},
      {"finished_at", OptTime(j.finished_at)},
      {"error", OptJson(j.error)},
      {"after_policy", j.after_policy ? nlohmann::json(ToString(*j.after_policy)) : nlohmann::json()},
      {"unique_key", OptJson(j.unique_key)},
  };
  r["result"] = j.result ? ParseOrString(*j.result) : nlohmann::json();
  return r;
}

nlohmann::json RunJson(const JobRun& r) {
  return {{"attempt", r.attempt},
          {"runtime", r.runtime},
          {"container", OptJson(r.container_name)},
          {"status", r.status},
          {"started_at", FormatIsoUtc(r.started_at)},
          {"finished_at", OptTime(r.finished_at)},
          {"duration_ms", OptNum(r.duration_ms)},
          {"exit_code", OptNum(r.exit_code)},
          {"signal", OptNum(r.signal)},
          {"stdout_bytes", r.stdout_bytes},
          {"stderr_bytes", r.stderr_bytes},
          {"stdout_truncated", r.stdout_truncated},
          {"stderr_truncated", r.stderr_truncated},
          {"log_file", OptJson(r.log_file)},
          {"error", OptJson(r.error)},
          {"node", OptJson(r.node)},
          {"cluster_state", OptJson(r.cluster_state)}};
}

nlohmann::json EventJson(const JobEvent& e) {
  return {{"id", e.id},
          {"job_id", OptNum(e.job_id)},
          {"group", OptJson(e.group)},
          {"at", FormatIsoUtc(e.at)},
          {"event", e.event},
          {"detail", e.detail ? ParseOrString(*e.detail) : nlohmann::json()}};
}

std::optional<Job> FindJob(Store& store, JobId id) {
  auto job = OrExit(store.GetJob(id));
  if (!job) std::cerr << "dropq: no job " << id << "\n";
  return job;
}

}  // namespace dropq::app
