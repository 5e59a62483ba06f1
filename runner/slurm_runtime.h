#pragma once
// The Slurm runtime (docs/RUNTIMES.md, "slurm"): each attempt is one `srun`
// step on the cluster, the process dropq spawns is srun, and the agent runs
// on a node inside the configured inner sandbox:
//
//   srun --job-name dropq-<instance>-<group>-<ms> --comment dropq:<instance>
//        -n1 --time <minutes> [--partition P] [--account A] [--qos Q]
//        [--cpus-per-task N] [--mem M] [--gres G] [extra_args...]
//        /bin/sh -c '<print the start marker on stderr>; exec "$@"' dropq-step
//        <inner argv>
//
// Inner sandboxes: `bwrap` (the bwrap runtime's argv and mounts, run on the
// node), `podman` (podman run with the image), `apptainer` (apptainer exec
// with the image) or `bare` (the agent directly; its mounts as environment
// variables, as the process runtime does). The mounts' host paths are the
// dropq host's paths: the root must lie on storage every node sees under
// the same path (`shared_root`).
//
// Queue wait: the step's wrapper prints kSlurmStartMarker on stderr the
// moment the step runs on a node; the runner cuts that line from stderr,
// records it as the attempt's `allocated` event, and only then starts the
// attempt's timeout. Until then `queue_timeout` bounds the wait.
//
// Stop: `scancel --signal=TERM --full --name NAME`, then
// `scancel --signal=KILL --full --name NAME` after kill_grace (an attempt
// still waiting for its allocation is stopped by SIGTERM to srun, which
// withdraws the request). Slurm's own --time is the attempt's timeout plus
// kill_grace rounded up to whole minutes plus one, a backstop behind dropq's
// timer. srun's exit code is the step's (128+signal for a killed step).
//
// Accounting (`accounting`: auto | on | off): with it on, once a step has
// ended the runner asks `sacct -j <job id> -X -n -P -o NodeList,State` (the
// wrapper's marker line carries $SLURM_JOB_ID) and keeps the node list and
// state on the attempt's run row. auto: on when `scontrol show config` has
// an AccountingStorageType other than accounting_storage/none (asked in
// CheckAvailable; off when scontrol cannot say).
//
// Start-up: CheckAvailable asks `sinfo`; CleanupOrphans cancels this
// instance's steps (`squeue --me`, matched by name prefix and comment) and
// waits until they are gone. ProbeSharedStorage runs one step that checks
// a node sees the shared root (`dropq doctor`).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/runtime.h"

namespace dropq::runner {

inline constexpr char kSlurmStartMarker[] = "dropq-slurm: step started";

struct SlurmOptions {
  std::string instance_id;  // the root's (Store::InstanceId); empty: no orphan clean-up
  std::string shared_root;  // absolute; the dropq root must lie inside it
  std::string root;         // the dropq root (checked against shared_root)
  std::string inner = "bwrap";  // bwrap | podman | apptainer | bare
  std::string image;            // podman and apptainer
  std::string partition, account, qos, mem, gres;
  int cpus = 0;  // --cpus-per-task; 0: not passed
  std::vector<std::string> extra_args;  // before the inner command
  std::vector<std::string> inner_args;  // the inner runtime's extra arguments
  std::string accounting = "auto";  // auto | on | off
  std::int64_t queue_timeout_ms = 3'600'000;
  std::int64_t kill_grace_ms = 15'000;
  BwrapOptions bwrap;          // inner: bwrap
  std::vector<Mount> binds;    // inner: bare (the agent binary's container path → host path)
};

std::unique_ptr<Runtime> MakeSlurmRuntime(SlurmOptions options);

// `scontrol show config`'s output: whether it names an accounting storage
// (AccountingStorageType other than accounting_storage/none).
bool SlurmAccountingConfigured(std::string_view scontrol_config);

// The first line of `sacct -X -n -P -o NodeList,State` (any bytes): its two
// fields when it is "node|state", both non-empty, valid UTF-8 without control
// characters and at most 256 bytes each; otherwise nullopt.
std::optional<ClusterPlacement> ParseSacctPlacement(std::string_view out);

// srun's --job-name for a container name "dropq-<group>-<ms>":
// "dropq-<instance>-<group>-<ms>".
std::string SlurmJobName(const std::string& instance_id, const std::string& container_name);

}  // namespace dropq::runner
