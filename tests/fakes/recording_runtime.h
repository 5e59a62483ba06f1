#pragma once
// A recording runner::Runtime for unit tests of the Runner: it isolates
// nothing, records every sandbox it is asked to build and every stop it is
// asked for, and runs the agent argv it is given as it is (so a test names a
// real program, e.g. /bin/sh -c '...').
#include <string>
#include <vector>

#include "runner/runtime.h"

namespace dropq::testing {

class RecordingRuntime final : public runner::Runtime {
 public:
  std::string_view name() const override { return "recording"; }
  bool isolates() const override { return false; }
  runner::SpawnSpec Build(const runner::SandboxSpec& spec) const override {
    built.push_back(spec);
    if (!build_error.empty()) return {{}, {}, build_error};
    return {spec.agent, {"PATH=/usr/bin:/bin"}};
  }
  Status CheckAvailable() const override { return Status::Ok(); }
  // With stop_argv set, the Runner runs it to stop a sandbox (as docker
  // stop) instead of signalling the process group.
  std::vector<std::string> StopArgv(const std::string& container_name) const override {
    stops.push_back(container_name);
    return stop_argv;
  }

  // With collect_argv set, its stdout is the attempt's output (as
  // kubernetes' `kubectl logs`); cleanup_argv runs after it.
  std::vector<std::string> CollectArgv(const std::string& container_name) const override {
    if (!collect_argv.empty()) collects.push_back(container_name);
    return collect_argv;
  }
  std::vector<std::string> CleanupArgv(const std::string&) const override { return cleanup_argv; }
  // With start_marker set, it is a runtime whose sandbox may wait for
  // resources (slurm): the runner waits for that stderr line.
  std::string_view StartMarker() const override { return start_marker; }
  std::int64_t StartTimeoutMs() const override { return start_timeout_ms; }

  std::vector<std::string> stop_argv;
  std::vector<std::string> collect_argv, cleanup_argv;
  std::string build_error;  // non-empty: Build fails with it
  std::string start_marker;
  std::int64_t start_timeout_ms = 0;
  mutable std::vector<runner::SandboxSpec> built;
  mutable std::vector<std::string> stops;
  mutable std::vector<std::string> collects;
};

}  // namespace dropq::testing
