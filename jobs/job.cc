#include "jobs/job.h"

namespace dropq {

std::string_view ToString(JobState s) {
  switch (s) {
    case JobState::kWaiting:
      return "waiting";
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<JobState> ParseJobState(std::string_view s) {
  for (JobState st : {JobState::kWaiting, JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                      JobState::kFailed, JobState::kCancelled}) {
    if (ToString(st) == s) return st;
  }
  return std::nullopt;
}

std::string_view ToString(ContextMode m) { return m == ContextMode::kGroup ? "group" : "isolated"; }

std::string_view ToString(AfterPolicy p) { return p == AfterPolicy::kFinished ? "finished" : "succeeded"; }

}  // namespace dropq
