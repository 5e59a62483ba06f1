#pragma once
// What the runtimes driven through a CLI client (docker, podman, Apple's
// container, kubectl) share: running one of the client's helper commands
// (`docker ps`, `kubectl auth can-i`) to completion at start-up, and the
// small environment the client runs with.
#include <initializer_list>
#include <string>
#include <vector>

#include "base/process.h"
#include "base/status.h"

namespace dropq::runner {

// A helper command that does not answer in this time is treated as failed,
// so a hung daemon or API server cannot hang dropq's start-up. Above the
// stop grace period, which `docker stop` waits out.
inline constexpr std::int64_t kHelperTimeoutMs = 60'000;

// Runs argv to completion, its output captured: the result when it exits 0,
// else an error naming the command and the last line it printed on stderr
// (kNotFound when the binary cannot be started).
Result<process::RunResult> RunCliHelper(const std::vector<std::string>& argv, const std::vector<std::string>& env);

// PATH (dropq's, or a default), HOME, LANG=C.UTF-8, and each of `names`
// that is set in dropq's environment: the variables that say how the client
// reaches its daemon or cluster — addresses and directories, never
// credentials. Nothing else of dropq's environment (its secrets above all).
std::vector<std::string> CliClientEnv(std::initializer_list<const char*> names);

// "a b c": an argv for messages.
std::string JoinArgv(const std::vector<std::string>& argv);

}  // namespace dropq::runner
