#include "runner/cli_helper.h"

#include <cstdlib>

#include "base/text.h"

namespace dropq::runner {
namespace {

// Bytes kept per stream: `ps` output is a few names; `info` a page.
constexpr std::size_t kHelperOutputCap = 1 << 20;

// 128 + signal when a signal ended it.
int ExitCode(const process::Exit& e) { return e.term_signal != 0 ? 128 + e.term_signal : e.exit_code; }

}  // namespace

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

Result<process::RunResult> RunCliHelper(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  process::RunOptions options;
  options.timeout_ms = kHelperTimeoutMs;
  options.output_cap = kHelperOutputCap;
  auto r = process::Run(argv, env, options);
  if (!r.ok()) return Status::NotFound("cannot run " + argv[0] + ": " + r.status().message());
  if (r->timed_out) {
    return Status::IOError("`" + JoinArgv(argv) + "` did not finish within " + std::to_string(kHelperTimeoutMs / 1000) +
                           " s");
  }
  if (ExitCode(r->exit) != 0) {
    std::string why = text::LastLine(r->err);
    return Status::IOError("`" + JoinArgv(argv) + "` exited with code " + std::to_string(ExitCode(r->exit)) +
                           (why.empty() ? "" : ": " + why));
  }
  return r;
}

std::vector<std::string> CliClientEnv(std::initializer_list<const char*> names) {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin"));
  const char* home = std::getenv("HOME");
  env.push_back(std::string("HOME=") + (home != nullptr && *home != '\0' ? home : "/"));
  env.push_back("LANG=C.UTF-8");
  for (const char* name : names) {
    if (const char* v = std::getenv(name); v != nullptr) env.push_back(std::string(name) + "=" + v);
  }
  return env;
}

}  // namespace dropq::runner
