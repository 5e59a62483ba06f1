#pragma once
// Daemon-backed runtimes: Docker, Podman and Apple's `container`
// (docs/RUNTIMES.md). The process dropq spawns is the CLI client; the
// sandbox is a container the daemon owns. So a stop is a command
// (`docker stop -t 15 NAME`), not a signal: SIGKILL to the client alone
// would leave the container running.
//
//   docker/podman  BINARY run -i --rm --name NAME [--label dropq.instance=ID]
//                         [-v HOST:CTR[:ro] ...] [extra_args...] IMAGE [agent argv...]
//   container      container run -i --rm --name NAME [--label dropq.instance=ID]
//                         [-v HOST:CTR | --mount type=bind,source=HOST,target=CTR,readonly ...]
//                         [extra_args...] IMAGE [agent argv...]
//
// ID is the root's instance id (Store::InstanceId). CleanupOrphans stops
// only running containers that carry this instance's label (and a dropq-
// name), so dropq roots sharing one daemon leave each other's alone; a
// runtime without an instance id stops none.
//
// The agent argv is appended only when non-empty: NanoClaw's images start
// the agent from their entrypoint. The image's WORKDIR decides the working
// directory (NanoClaw's sets /workspace/group); extra_args may add `-w`.
//
// The client runs with a small environment: PATH and HOME (the daemon user's:
// the CLI finds its config, credential helpers and rootless storage there),
// LANG, and the variables that say how to reach the daemon (DOCKER_HOST,
// DOCKER_CONTEXT, DOCKER_CONFIG, CONTAINER_HOST, XDG_RUNTIME_DIR, ...) when
// set. Nothing else of dropq's environment — its secrets above all — reaches
// the client, and the client passes nothing to the container unless
// extra_args say `-e`.
//
// CheckAvailable and CleanupOrphans run the CLI synchronously
// (process::Run), each command bounded by a timeout; they are for start-up
// only.
#include <memory>
#include <string>
#include <vector>

#include "runner/runtime.h"

namespace dropq::runner {

struct DockerOptions {
  std::string binary = "docker";        // "podman", or an absolute path; a name is looked up on PATH
  std::string image;                    // required: CheckAvailable fails without one
  std::vector<std::string> extra_args;  // between the mounts and the image
  // `stop -t`: how long the daemon waits after SIGTERM before it kills.
  // Match the runner's kill_grace so the agent gets the whole grace period
  // (docker's own default is 10 s, Apple's 5 s).
  int stop_grace_seconds = 15;
  // The root's instance id: every container is labelled dropq.instance=ID,
  // and only those are orphans of this root. Empty: no label, no clean-up.
  // (The initialiser lets brace-initialised options leave it out without
  // -Wmissing-field-initializers.)
  std::string instance_id = "";
};

struct AppleOptions {
  std::string image;
  std::vector<std::string> extra_args;
  int stop_grace_seconds = 15;
  std::string binary = "container";  // after the above, so {image, extra_args} still reads naturally
  std::string instance_id = "";      // as for docker
};

// The label that marks a container as one of this root's: KEY=<instance id>.
inline constexpr char kInstanceLabel[] = "dropq.instance";

// name(): "podman" when the binary's file name starts with "podman", else
// "docker".
std::unique_ptr<Runtime> MakeDockerRuntime(DockerOptions options);
// name(): "container".
std::unique_ptr<Runtime> MakeAppleContainerRuntime(AppleOptions options);

}  // namespace dropq::runner
