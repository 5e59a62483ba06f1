#include "runner/spawn.h"

#ifndef __linux__
#error "runner/spawn.cc watches agents through a pidfd (Linux 5.3+); another platform needs its own exit watch (kqueue EVFILT_PROC on macOS)"
#endif

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace dropq::runner {
namespace {

// execvpe's lookup, against the child's PATH: the first directory holding an
// executable `file`. A name that is found nowhere is returned as it is, so
// posix_spawn fails with ENOENT like exec would.
std::string Resolve(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return file;
  std::string_view path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = std::string_view(e).substr(5);
  }
  while (!path.empty()) {
    auto colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + file;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return file;
}

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

Result<SpawnedChild> SpawnWithPipes(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (argv.empty()) return Status::InvalidArgument("empty argv");
  // O_CLOEXEC on every end: the dup2 below gives the child its own copies
  // without the flag; nothing else of ours crosses the exec.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    CloseAll({in[0], in[1], out[0], out[1], err[0], err[1]});
    return Status::IOError(std::string("pipe: ") + std::strerror(e));
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  // Descriptors opened without O_CLOEXEC (by a library, say) stay ours.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  // SIGPIPE is ignored in the daemon; an agent must not inherit that.
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string file = Resolve(argv[0], env);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, file.c_str(), &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  CloseAll({in[0], out[1], err[1]});
  if (rc != 0) {
    CloseAll({in[1], out[0], err[0]});
    return Status::IOError(std::strerror(rc));
  }
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    CloseAll({in[1], out[0], err[0]});
    return Status::IOError(std::string("pidfd_open (Linux 5.3 or later is needed): ") + std::strerror(e));
  }
  return SpawnedChild{pid, pidfd, in[1], out[0], err[0]};
}

std::optional<ChildExit> Reap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return std::nullopt;
  ChildExit e;
  if (WIFSIGNALED(status)) {
    e.term_signal = WTERMSIG(status);
  } else {
    e.exit_code = WEXITSTATUS(status);
  }
  return e;
}

}  // namespace dropq::runner
