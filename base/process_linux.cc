// The Linux backend of base/process.h: posix_spawn, and the exit watched
// through a pidfd polled on the loop. glibc runs posix_spawn as
// clone(CLONE_VM|CLONE_VFORK), so no page tables are copied and nothing is
// faulted in copy-on-write, where libuv 1.44's uv_spawn forks: with hundreds
// of jobs a second the fork of a daemon with a SQLite cache, a libuv loop
// and a dashboard's threads was most of the cost of a trivial job
// (docs/PERFORMANCE.md). Needs Linux 5.3 (pidfd_open) and glibc 2.34
// (posix_spawn_file_actions_addclosefrom_np); elsewhere build with
// DROPQ_PORTABLE_PROCESS=ON (process_uv.cc).
#include "base/process.h"

#ifndef __linux__
#error \
    "base/process_linux.cc needs Linux (pidfd, glibc's posix_spawn extensions): configure with -DDROPQ_PORTABLE_PROCESS=ON"
#endif

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/guard.h"
#include "base/unique_fd.h"

namespace dropq::process {

struct Child::ExitWatch {
  UniqueFd pidfd;  // readable once the child has exited
  uv_poll_t exit_poll{};
};

std::string_view Backend() { return "posix_spawn+pidfd"; }

namespace {

// Reaps `pid` if it has exited (never blocks); nullopt while it runs.
std::optional<Exit> Reap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return std::nullopt;
  Exit e;
  if (WIFSIGNALED(status)) {
    e.term_signal = WTERMSIG(status);
  } else {
    e.exit_code = WEXITSTATUS(status);
  }
  return e;
}

Status SpawnError(int e) {
  return e == ENOENT ? Status::NotFound(std::strerror(e)) : Status::IOError(std::strerror(e));
}

}  // namespace

Child::Child(uv_loop_t* loop, std::string input, Handlers handlers)
    : loop_(loop), input_(std::move(input)), handlers_(std::move(handlers)) {}

Child::~Child() = default;

Result<std::unique_ptr<Child>> Child::Start(uv_loop_t* loop, const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env, std::string input, Handlers handlers) {
  if (argv.empty()) return Status::InvalidArgument("empty argv");
  auto file = FindExecutable(argv[0], env);
  if (!file) return SpawnError(ENOENT);
  // O_CLOEXEC on every end: the dup2 below gives the child its own copies
  // without the flag; nothing else of ours crosses the exec.
  int fds[6] = {-1, -1, -1, -1, -1, -1};
  for (int i = 0; i < 6; i += 2) {
    if (::pipe2(fds + i, O_CLOEXEC) != 0) {
      int e = errno;
      for (int fd : fds) {
        if (fd >= 0) ::close(fd);
      }
      return Status::IOError(std::string("pipe: ") + std::strerror(e));
    }
  }
  UniqueFd in_r(fds[0]), in_w(fds[1]), out_r(fds[2]), out_w(fds[3]), err_r(fds[4]), err_w(fds[5]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  // Descriptors opened without O_CLOEXEC (by a library, say) stay ours.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  // SIGPIPE is ignored in the daemon; a child must not inherit that.
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, file->c_str(), &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  if (rc != 0) return SpawnError(rc);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Status::IOError(std::string("pidfd_open (Linux 5.3 or later is needed): ") + std::strerror(e));
  }

  std::unique_ptr<Child> c(new Child(loop, std::move(input), std::move(handlers)));
  c->pid_ = pid;
  c->watch_ = std::make_unique<Child::ExitWatch>();
  c->watch_->pidfd = std::move(pidfd);
  uv_pipe_init(loop, &c->in_, 0);
  uv_pipe_init(loop, &c->out_, 0);
  uv_pipe_init(loop, &c->err_, 0);
  uv_pipe_open(&c->in_, in_w.Release());
  uv_pipe_open(&c->out_, out_r.Release());
  uv_pipe_open(&c->err_, err_r.Release());
  uv_poll_t* poll = &c->watch_->exit_poll;
  uv_poll_init(loop, poll, c->watch_->pidfd.get());
  poll->data = c.get();
  ++c->open_handles_;
  // The pidfd is readable: the child has exited. Whatever it left running in
  // its group goes with it, before the reap, while its zombie still holds
  // the group's id (no reuse race); that also releases pipes a stray child
  // would otherwise hold open.
  uv_poll_start(poll, UV_READABLE, [](uv_poll_t* p, int, int) {
    auto* self = static_cast<Child*>(p->data);
    Guard("child exit watch", [&] {
      ::kill(-self->pid_, SIGKILL);
      auto e = Reap(self->pid_);
      if (!e) return;  // not yet: the pidfd stays armed
      self->Close(reinterpret_cast<uv_handle_t*>(p));
      self->Exited(*e);
    });
  });
  c->BeginIo();
  return c;
}

}  // namespace dropq::process
