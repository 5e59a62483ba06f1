#pragma once
// Container runtimes: how one attempt's sandbox is started and stopped
// (docs/RUNTIMES.md). Each runtime turns a SandboxSpec into an argv and an
// environment to start (base/process.h) — never a shell command line.
//
//   bwrap    bubblewrap: host /usr read-only (or a rootfs dir) with the
//            merged-/usr symlinks, /etc/alternatives read-only, the group's
//            mounts, tmpfs /tmp, fresh /proc and /dev, every namespace new
//            (no network unless configured), --die-with-parent, a clean
//            environment. Linux only.
//   process  the agent runs directly on the host; each mount is passed as an
//            environment variable named after its container path
//            (/workspace/group → WORKSPACE_GROUP). Does NOT isolate: for
//            development and tests.
//
// Stopping: runtimes whose sandbox is our own child (bwrap, process) are
// stopped by SIGTERM to the attempt's process group, SIGKILL after the grace
// period. Daemon-backed runtimes (docker, podman, Apple container) name a
// stop command instead (StopArgv/KillArgv).
//
// Output: the client's stdout is the attempt's output, parsed as it
// streams — unless the runtime names a collect command (CollectArgv:
// kubernetes, whose `kubectl run -i` can lose what the agent printed before
// it attached). Then the stream only feeds the caps and the run log while
// the attempt runs, and once the client has exited the collect command's
// stdout (`kubectl logs`) is the authoritative output, parsed whole; then
// the runtime's clean-up command (CleanupArgv: `kubectl delete pod`) runs.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runner/mounts.h"

namespace dropq::runner {

struct SandboxSpec {
  std::string container_name;  // dropq-<group>-<ms>[-<n>] (ContainerNames)
  std::vector<Mount> mounts;
  std::vector<std::string> agent;  // argv inside the sandbox
  std::string workdir = "/workspace/group";
  // Whom the sandbox is for: runtimes that label it (kubernetes) use these.
  std::string group;
  std::int64_t job_id = 0;
  // The attempt's timeout; runtimes that hand a deadline to a scheduler
  // (kubernetes) derive theirs from it. 0: none given.
  std::int64_t timeout_ms = 0;
};

struct SpawnSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // complete environment, "NAME=value"
  // Non-empty: this sandbox cannot be started as asked (e.g. a mount that
  // no configured volume holds); the attempt fails with this as its spawn
  // error, and nothing is started.
  std::string error = "";
};

struct BwrapOptions {
  std::string rootfs;  // empty: bind the host's /usr
  bool network = false;
  std::vector<std::string> extra_args;
  std::vector<Mount> ro_binds;  // operator-trusted (e.g. the agent binary)
};

// What a cluster's accounting says about one attempt's sandbox (slurm:
// sacct's NodeList and State), valid UTF-8 without control characters.
struct ClusterPlacement {
  std::string node;
  std::string state;
};

inline constexpr std::size_t kStartDetailMax = 64;
inline constexpr std::int64_t kAccountingTimeoutMs = 15'000;

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string_view name() const = 0;
  virtual bool isolates() const = 0;
  virtual SpawnSpec Build(const SandboxSpec& spec) const = 0;
  // Start-up check: the runtime exists and can start a sandbox. The error
  // says what to install or fix.
  virtual Status CheckAvailable() const = 0;

  // Graceful stop of a running sandbox. Empty (the default): the runner sends
  // SIGTERM to the attempt's process group. Otherwise an argv the runner
  // starts, e.g. {"docker", "stop", NAME} — the client process in the
  // attempt's group is not the container.
  virtual std::vector<std::string> StopArgv(const std::string& /*container_name*/) const { return {}; }
  // Forced stop after the grace period; the runner also SIGKILLs the
  // process group. Empty (the default): the SIGKILL alone.
  virtual std::vector<std::string> KillArgv(const std::string& /*container_name*/) const { return {}; }
  // Start-up: stops the sandboxes this root's earlier dropq left running
  // (container runtimes: those labelled with its instance id; bwrap and
  // process have none that outlive dropq). Returns how many it stopped.
  virtual Result<int> CleanupOrphans() const { return 0; }
  // After the client has exited: an argv whose stdout is the attempt's
  // authoritative output (see above). Empty (the default): the streamed
  // stdout is.
  virtual std::vector<std::string> CollectArgv(const std::string& /*container_name*/) const { return {}; }
  // After the collect command has ended (or failed): an argv that removes
  // what the sandbox left behind. Empty (the default): nothing to remove.
  virtual std::vector<std::string> CleanupArgv(const std::string& /*container_name*/) const { return {}; }

  // Runtimes whose sandbox may wait for resources before it runs (slurm:
  // the allocation). Non-empty: the line the sandbox prints on stderr the
  // moment it runs; the runner cuts it from stderr, records `allocated`,
  // and starts the attempt's timeout only then. Until then
  // StartTimeoutMs() bounds the wait (0: unbounded), and a stop is SIGTERM
  // to the client (which withdraws its request), not StopArgv.
  // The marker line may carry more after a space ("<marker> 4242": slurm's
  // job id), at most kStartDetailMax bytes: the start detail, handed to
  // AccountingArgv.
  virtual std::string_view StartMarker() const { return {}; }
  virtual std::int64_t StartTimeoutMs() const { return 0; }
  // Cluster runtimes with accounting (slurm: sacct): once the attempt has
  // ended, an argv whose stdout says where and how its sandbox ran, given
  // the start detail; the runner runs it off the loop within
  // kAccountingTimeoutMs and hands its stdout to ReadAccounting. Empty (the
  // default): nothing is asked. A failure of either never fails the attempt.
  virtual std::vector<std::string> AccountingArgv(std::string_view /*start_detail*/) const { return {}; }
  // The node and state in the accounting command's stdout (bytes from
  // outside: any bytes); nullopt when it holds nothing usable.
  virtual std::optional<ClusterPlacement> ReadAccounting(std::string_view /*out*/) const { return std::nullopt; }
  // `dropq doctor`: whether the machines that run jobs see the root
  // (cluster runtimes with shared storage); nullopt: nothing to check.
  virtual std::optional<Status> ProbeSharedStorage() const { return std::nullopt; }
};

std::unique_ptr<Runtime> MakeBwrapRuntime(BwrapOptions options);
// `binds` maps container paths of the agent argv to host paths, so one
// config works with both runtimes.
std::unique_ptr<Runtime> MakeProcessRuntime(std::vector<Mount> binds);

// "dropq-<group with [^A-Za-z0-9-] → '-'>-<ms>".
std::string ContainerName(const std::string& group, std::int64_t now_ms);

// The names of the attempts one daemon starts, unique even when a group
// (max_concurrent_per_group > 1), or two groups whose folders differ only
// in characters ContainerName replaces, start several in one millisecond:
// the first is ContainerName's, the later ones of that millisecond get
// "-2", "-3", ... appended. Remembers only the current millisecond's names.
class ContainerNames {
 public:
  std::string Next(const std::string& group, std::int64_t now_ms);

 private:
  std::int64_t ms_ = -1;
  std::map<std::string, int> given_;  // names given in ms_, and how often
};

}  // namespace dropq::runner
