#pragma once
// Running one attempt of a job in its sandbox (docs/FILES.md, "Container protocol").
//
// Start() starts the runtime's argv (base/process.h) in a new session,
// writes the ContainerInput JSON to its stdin and closes it, captures stdout
// and stderr up to `max_output` bytes each (the rest is counted and dropped,
// and the run is flagged truncated), and parses sentinel blocks as they
// stream. At the timeout the whole process group gets SIGTERM, then SIGKILL
// after `kill_grace_ms`. When the agent exits, anything it left in its
// process group is killed, so no stray process outlives its attempt.
//
// When every handle of the attempt is closed, the run log is written
// atomically and `done` is called, exactly once per successful Start().
// Lifecycle: the Runner must outlive its attempts; StopAll() asks each to
// stop and the loop must then run until they have reported.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "jobs/job.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "runner/runtime.h"
#include "runner/sentinel.h"

namespace dropq::runner {

struct RunnerOptions {
  std::vector<std::string> agent;       // argv inside the sandbox
  std::int64_t max_output = 10 << 20;   // bytes kept per stream
  std::int64_t kill_grace_ms = 15'000;  // SIGTERM → SIGKILL
  std::string session_dir = "/home/node/.claude";
};

// Everything one attempt needs beyond the job row.
struct Attempt {
  Job job;     // as started (attempts counted)
  JobRun run;  // the job_runs row StartAttempt made
  bool is_main = false;
  std::optional<std::string> chat_jid;
  std::optional<std::string> session_id;  // passed when context_mode is group
  bool is_scheduled_task = false;
  std::int64_t timeout_ms = 300'000;
  std::map<std::string, std::string> secrets;  // stdin only; never logged
  std::vector<Mount> extra_mounts;             // validated additionalMounts
};

// What starts and stops attempts, as the daemon's attempt lifecycle sees it
// (daemon/attempts.h): the Runner below in the daemon, a recording fake in
// the lifecycle's unit tests (tests/fakes/recording_executor.h). Whoever
// implements it reports each started attempt's end exactly once.
class AttemptExecutor {
 public:
  virtual ~AttemptExecutor() = default;
  virtual void Start(Attempt attempt) = 0;
  // Graceful stop of one job's attempt; false when it is not running.
  virtual bool Stop(JobId id) = 0;
  // Graceful stop of every running attempt.
  virtual void StopAll() = 0;
  virtual std::size_t active() const = 0;
};

class Runner final : public AttemptExecutor {
 public:
  using Done = std::function<void(const Job& job, RunOutcome outcome)>;
  // Each output block as it streams in (before the attempt ends).
  using OutputCallback = std::function<void(const Job& job, std::int64_t attempt, const AgentOutput& out)>;
  // The sandbox of a runtime with a start marker (slurm) runs, `waited_ms`
  // after the attempt was started (its queue wait).
  using StartedCallback = std::function<void(const Job& job, std::int64_t attempt, std::int64_t waited_ms)>;

  Runner(uv_loop_t* loop, const Layout& layout, const Runtime& runtime, RunnerOptions options, const Clock& clock,
         Done done, OutputCallback on_output = {}, StartedCallback on_started = {});
  ~Runner();

  // Starts the attempt. A sandbox that cannot be spawned still reports
  // through `done` (as a failed attempt), so callers have one path.
  void Start(Attempt attempt) override;
  // Graceful stop of every running attempt (shutdown or cancel-all).
  void StopAll() override;
  // Graceful stop of one job's attempt; false when it is not running.
  bool Stop(JobId id) override;
  std::size_t active() const override { return active_.size(); }
  // A reloaded config's agent and limits: attempts started from now on use
  // them; a running one keeps its output cap, and is stopped with the new
  // kill_grace.
  void SetOptions(RunnerOptions options) { options_ = std::move(options); }

 private:
  class Execution;
  friend class Execution;
  void Finished(Execution* e, const Job& job, RunOutcome outcome);
  void StartHelper(const std::vector<std::string>& argv);

  uv_loop_t* loop_;
  const Layout& layout_;
  const Runtime& runtime_;
  RunnerOptions options_;
  const Clock& clock_;
  Done done_;
  OutputCallback on_output_;
  StartedCallback on_started_;
  std::map<JobId, Execution*> active_;
};

// The ContainerInput JSON written to the agent's stdin (NanoClaw's fields plus
// jobId, attempt and secrets). With redact_secrets, secret values become
// "<redacted>" (for run logs).
std::string ContainerInputJson(const Attempt& a, bool redact_secrets);

// The result file's contents: job id, state, attempts, times, exit code, the
// agent's parsed output and the error. The one builder: the result file and
// the on_finish hook's payload (daemon/notifier.h) are both this text.
std::string ResultJson(const Job& job, const RunOutcome& outcome);

// Writes data/ipc/<source group>/results/<source name> (or job-<id>.json when the job
// had no file) atomically, ResultJson's text. Returns the path written.
Result<std::string> WriteResultFile(const Layout& layout, const Job& job, const RunOutcome& outcome);

}  // namespace dropq::runner
