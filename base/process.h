#pragma once
// Child processes: the one place dropq starts one (docs/DESIGN.md, "Running
// an attempt"). Agents, runtime helpers (`docker stop`), start-up probes
// (`bwrap --version`) and the on_message hook all come through here.
//
// Every child is started from an argv — never a shell — with a complete
// environment given by the caller (nothing of dropq's own leaks in), in a
// session of its own (so a signal to its process group reaches everything
// it started), with every signal at its default disposition, an empty
// signal mask, stdin/stdout/stderr on fresh pipes and no other descriptor.
// argv[0] without a '/' is looked up in the PATH of that environment, as
// execvpe would, not in dropq's. When the child exits, whatever it left in
// its process group is killed, so a stray grandchild cannot hold its pipes
// open.
//
// Two backends, chosen at build time (CMake DROPQ_PORTABLE_PROCESS):
//   Linux (default there)  posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK),
//                          no copy of the daemon's page tables) and an exit
//                          watch through a pidfd (Linux 5.3+) polled on the
//                          loop; the group is killed before the zombie is
//                          reaped, so its id cannot be reused in between.
//   portable (macOS, ...)  libuv's uv_spawn and exit callback; the group is
//                          killed right after libuv has reaped the leader.
//
// Writing a child's stdin after it has exited raises SIGPIPE: a program that
// uses Child::Start ignores SIGPIPE (the daemon does); Run blocks it on its
// own thread for the duration.
#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dropq::process {

// execvpe's lookup: `file` as given when it holds a '/', else the first
// directory of env's PATH (/usr/local/bin:/usr/bin:/bin when env has none;
// an empty entry is the working directory) holding an executable `file`.
std::optional<std::string> FindExecutable(const std::string& file, const std::vector<std::string>& env);

// "posix_spawn+pidfd" or "uv_spawn": the backend this build has.
std::string_view Backend();

// How a child ended.
struct Exit {
  int exit_code = 0;    // when it exited
  int term_signal = 0;  // when a signal ended it (then exit_code is 0)
};

enum class Stream { kStdout, kStderr };

struct Handlers {
  // A chunk of the child's output, as it arrives; then, once per stream, an
  // empty chunk at its end (EOF or a read error) — unless StopIo came first.
  std::function<void(Stream, std::string_view)> on_output;
  // The child has exited (its process group killed, the child reaped).
  std::function<void(const Exit&)> on_exit;
  // Every handle of the child is closed: it may be destroyed from here on.
  std::function<void()> on_closed;
};

// A child running on a libuv loop. It writes `input` to the child's stdin
// and closes it, reads stdout and stderr, watches the exit, and closes each
// handle as its part ends; after the last, on_closed. The handlers run on
// the loop and must not throw (they are guarded all the same).
class Child {
 public:
  // On failure nothing is left open and no child runs; the message is the
  // errno text (kNotFound when the executable is not there).
  static Result<std::unique_ptr<Child>> Start(uv_loop_t* loop, const std::vector<std::string>& argv,
                                              const std::vector<std::string>& env, std::string input,
                                              Handlers handlers);
  // Only once on_closed has been called.
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  // `sig` to the child's whole process group; nothing once it has exited.
  void Signal(int sig);
  // Stops the I/O now: closes stdin and the output pipes still open (the
  // child has exited but something outside its group holds them, or the
  // caller no longer wants them). No further output is reported, not even
  // the end of the streams.
  void StopIo();

 private:
  struct ExitWatch;  // the backend's
  Child(uv_loop_t* loop, std::string input, Handlers handlers);
  // Starts the I/O once the backend has the pipes.
  void BeginIo();
  void Exited(const Exit& e);
  void Close(uv_handle_t* h);
  static void Alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);

  uv_loop_t* loop_;
  std::string input_;
  Handlers handlers_;
  pid_t pid_ = 0;
  bool exited_ = false;
  uv_pipe_t in_{}, out_{}, err_{};
  uv_write_t write_{};
  int open_handles_ = 0;
  std::unique_ptr<ExitWatch> watch_;
  char buf_[64 * 1024];
};

// Runs argv to completion (a private loop on the calling thread).
struct RunOptions {
  std::string input;                 // written to stdin, which is then closed
  std::int64_t timeout_ms = 60'000;  // then the process group gets SIGKILL
  std::size_t output_cap = 1 << 20;  // bytes kept per stream; the rest is read and dropped
  bool keep_tail = false;            // keep the last output_cap bytes rather than the first
};
struct RunResult {
  Exit exit;
  bool timed_out = false;  // still running at the deadline (then killed)
  std::string out, err;
};
// Fails only when the child cannot be started (as Child::Start). A child
// that exited but left something outside its group holding its pipes is
// waited for until the deadline, then its output so far is returned.
Result<RunResult> Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      const RunOptions& options = {});

// Fire and forget on `loop` (a runtime's `docker stop NAME`): its output is
// read and dropped; a failure to start or a non-zero exit is logged.
void StartDetached(uv_loop_t* loop, const std::vector<std::string>& argv, const std::vector<std::string>& env);

}  // namespace dropq::process
