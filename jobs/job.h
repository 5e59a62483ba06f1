#pragma once
// The job model: what a `run` command asks for and what the store keeps.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace dropq {

using JobId = std::int64_t;

// The default of the config's `max_interruptions` (and of the column).
inline constexpr std::int64_t kDefaultMaxInterruptions = 3;

// `waiting`: the job names jobs it runs after (RunRequest::after) and they
// have not all ended yet; it is not in the dispatcher's queue until they do.
enum class JobState { kWaiting, kQueued, kRunning, kSucceeded, kFailed, kCancelled };
// True for succeeded, failed and cancelled: the job will not run again
// unless retried.
inline bool IsFinal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}
std::string_view ToString(JobState s);
std::optional<JobState> ParseJobState(std::string_view s);

enum class ContextMode { kIsolated, kGroup };
std::string_view ToString(ContextMode m);

// What a job's dependencies must do before it runs: succeed (the default;
// one that fails or is cancelled cancels the job), or just end.
enum class AfterPolicy { kSucceeded, kFinished };
std::string_view ToString(AfterPolicy p);

// One entry of a job file's `after`, as written: an integer is a job id; a
// string is a client `id` of the job's group, or (main only) `<group>:<id>`.
// Resolved to job ids when the file is ingested (watcher/ingest.h).
struct AfterRef {
  std::optional<JobId> job_id;
  std::string client_id;
  // The entry as it reads in the file, for messages.
  std::string text;
};

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
  // Dependencies (docs/FILES.md, "Dependencies"): empty for none.
  std::vector<AfterRef> after;
  AfterPolicy after_policy = AfterPolicy::kSucceeded;
  // Unique jobs (docs/FILES.md, "Unique jobs"): no new job while an earlier
  // one of the group with this key is waiting, queued or running, or was
  // created less than unique_for_ms ago.
  std::optional<std::string> unique_key;
  std::optional<std::int64_t> unique_for_ms;
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
  // Set when the job waits for (or waited for) other jobs (job_deps).
  std::optional<AfterPolicy> after_policy;
  std::optional<std::string> unique_key;

  // The attempts that count against max_attempts.
  std::int64_t CountedAttempts() const { return attempts - interruptions; }
};

}  // namespace dropq
