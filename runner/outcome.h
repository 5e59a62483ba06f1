#pragma once
// How an attempt ended, from what the runner captured: a pure function, so
// the mapping from an agent's bytes and exit status to the job's outcome (the
// stored error, the result, the outputs) can be fuzzed without spawning
// anything (fuzz/agent_output_fuzz.cc). Runner::Execution fills a
// CapturedRun when the attempt's handles are closed and calls MakeOutcome.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "jobs/store.h"
#include "runner/sentinel.h"

namespace dropq::runner {

struct CapturedRun {
  JobRun run;  // the job_runs row StartAttempt made
  TimeMs started_ms = 0;
  TimeMs now = 0;                // when the attempt ended
  std::string_view stderr_text;  // as captured (at most max_output bytes)
  std::int64_t stdout_bytes = 0, stderr_bytes = 0;
  bool stdout_truncated = false, stderr_truncated = false;
  std::optional<std::string> spawn_error;  // the sandbox could not be started
  bool timed_out = false;
  std::int64_t timeout_ms = 0;
  std::int64_t exit_status = 0;
  int term_signal = 0;                        // 0: exited, else the signal that killed it
  const SentinelParser* parser = nullptr;     // stdout, after Finish()
  std::optional<std::string> internal_error;  // a runner callback threw (base/guard.h)
  // The runtime's collect command (runtime.h, CollectArgv) gave no output;
  // then `parser` has seen none.
  std::optional<std::string> collect_error = std::nullopt;
};

// The outcome: job state, the finished job_runs fields, result, error,
// new session id and every output block (as JSON text).
RunOutcome MakeOutcome(const CapturedRun& c);

}  // namespace dropq::runner
