#pragma once
// Running the real dropq binary from end-to-end tests.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace dropq::testing {

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it had to be killed for running too long
  std::string out;
  std::string err;
};

// Runs argv (no shell) to completion, with stdout/stderr captured through
// files under `scratch`. A run longer than timeout_ms is killed.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::filesystem::path& scratch,
                         int timeout_ms = 60'000);

// Starts argv in the background with output to files under `scratch`.
pid_t StartProcess(const std::vector<std::string>& argv, const std::filesystem::path& scratch);
// Waits for pid; returns its exit code (128+signal), or -1 after timeout_ms
// (the process is then killed).
int WaitProcess(pid_t pid, int timeout_ms);

// Polls `done` every 10 ms until it holds or timeout_ms passes. For waiting
// on a real daemon's effects only; unit tests use the injected clock.
bool WaitUntil(const std::function<bool()>& done, int timeout_ms);

}  // namespace dropq::testing
