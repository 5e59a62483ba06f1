#include "runner/outcome.h"

#include <nlohmann/json.hpp>

#include "base/text.h"

namespace dropq::runner {
namespace {

// The last `n` bytes of captured stderr, trimmed, as text, for error
// messages (NanoClaw's "Container exited with code N: <last 200 chars of
// stderr>"); never starts inside a character.
std::string Tail(std::string_view bytes, std::size_t n) {
  std::size_t end = bytes.find_last_not_of("\r\n \t");
  if (end == std::string_view::npos) return "";
  return text::Tail(bytes.substr(0, end + 1), n);
}

std::string OutputJson(const AgentOutput& out) {
  nlohmann::json o = {{"status", out.status}};
  o["result"] = nullptr;
  if (out.result_json) {
    auto parsed = nlohmann::json::parse(*out.result_json, nullptr, false);
    o["result"] = parsed.is_discarded() ? nlohmann::json(*out.result_json) : parsed;
  }
  if (out.new_session_id) o["newSessionId"] = *out.new_session_id;
  if (out.error) o["error"] = *out.error;
  return text::Dump(o);
}

}  // namespace

// Moved verbatim from Runner::Execution::Outcome (runner.cc); the members it
// read are now the fields of `c`.
RunOutcome MakeOutcome(const CapturedRun& c) {
  RunOutcome o;
  JobRun& run = o.run;
  run = c.run;
  run.finished_at = c.now;
  run.duration_ms = c.now - c.started_ms;
  run.stdout_bytes = c.stdout_bytes;
  run.stderr_bytes = c.stderr_bytes;
  run.stdout_truncated = c.stdout_truncated;
  run.stderr_truncated = c.stderr_truncated;
  if (!c.spawn_error) {
    if (c.term_signal != 0) {
      run.signal = c.term_signal;
    } else {
      run.exit_code = c.exit_status;
    }
  }
  static const SentinelParser kNoOutput;
  const SentinelParser& parser = c.parser ? *c.parser : kNoOutput;
  const auto& outs = parser.outputs();
  const AgentOutput* last = outs.empty() ? nullptr : &outs.back();
  for (const auto& out : outs) {
    if (out.new_session_id) o.new_session_id = out.new_session_id;
  }
  if (last) o.result = last->result_json;
  for (const auto& out : outs) o.outputs.push_back(OutputJson(out));
  o.dropped_outputs = parser.dropped_outputs();

  auto fail = [&](std::string status, std::string error) {
    error = text::MakeValid(error);  // an agent's own error text is its bytes
    run.status = std::move(status);
    run.error = error;
    o.error = std::move(error);
    o.job_state = JobState::kFailed;
  };
  std::string tail = Tail(c.stderr_text, 200);
  if (c.spawn_error) {
    fail("failed", "Container spawn error: " + *c.spawn_error);
  } else if (c.internal_error) {
    fail("failed", *c.internal_error);
  } else if (c.timed_out && last && last->status == "success") {
    // NanoClaw's lesson: an agent that delivered its answer and then idled
    // until the deadline did its job.
    run.status = "succeeded";
    run.error = "timed_out_after_output";
    o.job_state = JobState::kSucceeded;
  } else if (c.timed_out) {
    fail("timed_out", "timed out after " + std::to_string(c.timeout_ms) + " ms");
  } else if (c.term_signal != 0) {
    fail("failed", "Container killed by signal " + std::to_string(c.term_signal) + (tail.empty() ? "" : ": " + tail));
  } else if (c.exit_status != 0) {
    fail("failed", "Container exited with code " + std::to_string(c.exit_status) + (tail.empty() ? "" : ": " + tail));
  } else if (c.collect_error) {
    fail("failed", "Container output not collected: " + *c.collect_error);
  } else if (!last) {
    std::string why = parser.malformed().empty() ? "no output block" : parser.malformed().back();
    fail("failed", "Failed to parse container output: " + why);
  } else if (last->status != "success") {
    fail("failed", last->error.value_or("agent reported an error"));
  } else {
    run.status = "succeeded";
    o.job_state = JobState::kSucceeded;
  }
  return o;
}

}  // namespace dropq::runner
