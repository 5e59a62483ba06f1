#pragma once
// What the CLI's commands share (cli/cli_*.cc): the parsed global options,
// exit codes (docs/CLI.md), loading config and opening the database with a
// clear message, and the JSON shapes of jobs, runs and events.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_format.h"
#include "config/config.h"
#include "base/clock.h"
#include "jobs/store.h"

namespace dropq::app {

// Exit codes, documented in docs/CLI.md.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;    // runtime failure; `doctor`: a check failed
constexpr int kExitUsage = 2;      // usage or configuration error
constexpr int kExitNotFound = 3;   // the job (or attempt) named does not exist
constexpr int kExitJobFailed = 4;  // the job waited for failed, was cancelled, or its file was rejected
constexpr int kExitTimeout = 5;    // --wait / --follow gave up after its timeout; a control command had no verdict
constexpr int kExitRejected = 6;   // the daemon rejected a control command (the reason is printed)

struct Context {
  std::string config_path;  // --config or $DROPQ_CONFIG; empty: search kConfigSearchPath
  bool json = false;
  Style style;  // stdout's (colour only on a terminal)
};

// Where the CLI looks for a config when neither --config nor $DROPQ_CONFIG
// names one (docs/CONFIG.md), in order.
inline const std::vector<std::string> kConfigSearchPath = {"./dropq.yaml", "/etc/dropq/dropq.yaml"};

// The config file to load: `explicit_path` when given (whether or not it
// exists: loading then says why it cannot be read), else the first of
// `candidates` that exists. None: an error naming every place tried and how
// to point dropq elsewhere.
Result<std::string> FindConfig(const std::string& explicit_path, const std::vector<std::string>& candidates);

// Exits with kExitUsage and the config error on stderr.
Config LoadOrExit(const Context& ctx);
// The read-only connection readers use; exits with kExitFailure when there is
// no usable database.
std::unique_ptr<Store> OpenReaderOrExit(const Config& cfg, const Clock& clock);

template <typename T>
T OrExit(Result<T> r) {
  if (!r.ok()) {
    std::cerr << "dropq: " << r.status().message() << "\n";
    std::exit(kExitFailure);
  }
  return std::move(*r);
}

// The job, or nullopt after saying "no job ID" on stderr (the caller then
// returns kExitNotFound); exits on a database error.
std::optional<Job> FindJob(Store& store, JobId id);

nlohmann::json JobJson(const Job& j);
nlohmann::json RunJson(const JobRun& r);
nlohmann::json EventJson(const JobEvent& e);

// A stored JSON text as JSON, or as a string when it does not parse.
nlohmann::json ParseOrString(const std::string& text);

}  // namespace dropq::app
