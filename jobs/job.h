#pragma once
// The job model: what a `run` command asks for and what the store keeps.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace dropq {

using JobId = std::int64_t;

// The default of the config's `max_interruptions` (and of the column).
inline constexpr std::int64_t kDefaultMaxInterruptions = 3;

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view ToString(JobState s);
std::optional<JobState> ParseJobState(std::string_view s);

enum class ContextMode { kIsolated, kGroup };
std::string_view ToString(ContextMode m);

// A validated `run` command, as parsed from a dropped file. The group is never
// a field of the file: it is the directory the file was dropped in (or, for
// main only, `target_group`).
struct RunRequest {
  std::string prompt;
  std::optional<std::string> client_id;    // "id": dedupe key within the group
  std::int64_t priority = 0;               // higher runs first
  std::optional<TimeMs> run_at;            // not before this instant
  std::optional<std::int64_t> timeout_ms;  // overrides the group/global timeout
  std::optional<std::int64_t> max_attempts;
  std::optional<std::int64_t> max_interruptions;  // attempts dropq's own stops may cut short
  ContextMode context_mode = ContextMode::kIsolated;
  std::optional<std::string> target_group;  // folder, or a jid resolved by the caller
  std::optional<std::string> target_jid;
};

// Where a job came from: the dropped file's name, its content hash and the
// unique claim token the watcher gave it (see watcher/claim.h).
struct JobSource {
  std::string group;  // whose tasks/ it was dropped in (main may target another group)
  std::string name;
  std::string sha256;
  std::string claim;
};

struct Job {
  JobId id = 0;
  std::string group;
  std::string type = "run";
  std::optional<std::string> client_id;
  JobState state = JobState::kQueued;
  std::string prompt;
  std::int64_t priority = 0;
  TimeMs run_at = 0;
  std::optional<std::int64_t> timeout_ms;
  ContextMode context_mode = ContextMode::kIsolated;
  std::int64_t attempts = 0;
  std::int64_t max_attempts = 1;
  // Attempts that ended because dropq stopped (a kill, a crash, its own
  // shutdown): not the job's fault, so they do not count against
  // max_attempts. Start-up recovery fails a job whose interruptions would
  // exceed max_interruptions (a crash loop).
  std::int64_t interruptions = 0;
  std::int64_t max_interruptions = kDefaultMaxInterruptions;
  std::optional<std::string> source_group;
  std::optional<std::string> source_name;
  std::optional<std::string> source_hash;
  TimeMs created_at = 0;
  std::optional<TimeMs> started_at;
  std::optional<TimeMs> finished_at;
  std::optional<std::string> result;  // JSON text of the agent's final output
  std::optional<std::string> error;

  // The attempts that count against max_attempts.
  std::int64_t CountedAttempts() const { return attempts - interruptions; }
};

}  // namespace dropq
