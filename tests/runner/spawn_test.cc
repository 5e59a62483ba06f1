// SpawnWithPipes and Reap with real processes (/bin/sh and coreutils).
#include "runner/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/fakes/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using dropq::runner::ChildExit;
using dropq::runner::SpawnedChild;
using dropq::runner::SpawnWithPipes;

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    s.append(buf, static_cast<std::size_t>(n));
  }
  return s;
}

// Feeds `input`, collects stdout and stderr, waits on the pidfd and reaps:
// what the runner does on its loop, done here in order.
struct Ran {
  std::string out, err;
  ChildExit exit;
};
Ran RunToEnd(SpawnedChild c, const std::string& input = "") {
  if (!input.empty()) REQUIRE(::write(c.stdin_fd, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  ::close(c.stdin_fd);
  Ran r;
  r.out = ReadAll(c.stdout_fd);
  r.err = ReadAll(c.stderr_fd);
  pollfd p{c.pidfd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  auto e = dropq::runner::Reap(c.pid);
  REQUIRE(e.has_value());
  r.exit = *e;
  for (int fd : {c.stdout_fd, c.stderr_fd, c.pidfd}) ::close(fd);
  return r;
}

int OpenDescriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_CASE("a spawned child gets stdin and gives stdout and stderr through pipes", "[runner][spawn]") {
  auto c = SpawnWithPipes({"/bin/sh", "-c", "read line; echo \"out:$line\"; echo err >&2"}, kEnv);
  REQUIRE(c.ok());
  auto r = RunToEnd(*c, "hello\n");
  CHECK(r.out == "out:hello\n");
  CHECK(r.err == "err\n");
  CHECK(r.exit.exit_code == 0);
  CHECK(r.exit.term_signal == 0);
}

TEST_CASE("Reap reports a child's exit code", "[runner][spawn]") {
  auto c = SpawnWithPipes({"/bin/sh", "-c", "exit 7"}, kEnv);
  REQUIRE(c.ok());
  CHECK(RunToEnd(*c).exit.exit_code == 7);
}

TEST_CASE("Reap reports the signal that ended a child", "[runner][spawn]") {
  auto c = SpawnWithPipes({"/bin/sh", "-c", "kill -KILL $$"}, kEnv);
  REQUIRE(c.ok());
  auto r = RunToEnd(*c);
  CHECK(r.exit.term_signal == SIGKILL);
  CHECK(r.exit.exit_code == 0);
}

TEST_CASE("Reap of a running child returns nothing and does not block", "[runner][spawn]") {
  auto c = SpawnWithPipes({"/bin/sh", "-c", "read x"}, kEnv);
  REQUIRE(c.ok());
  CHECK_FALSE(dropq::runner::Reap(c->pid).has_value());
  CHECK(RunToEnd(*c, "go\n").exit.exit_code == 0);
}

TEST_CASE("a command name is looked up in the PATH of the child's environment", "[runner][spawn]") {
  dropq::testing::TempDir dir;
  auto tool = dir / "dropq-spawn-test-tool";
  dropq::testing::WriteFile(tool, "#!/bin/sh\necho found\n");
  fs::permissions(tool, fs::perms::owner_all);
  auto c = SpawnWithPipes({"dropq-spawn-test-tool"}, {"PATH=/nonexistent:" + dir.str()});
  REQUIRE(c.ok());
  CHECK(RunToEnd(*c).out == "found\n");
  // The daemon's own PATH does not count.
  CHECK_FALSE(SpawnWithPipes({"dropq-spawn-test-tool"}, kEnv).ok());
}

TEST_CASE("a command that does not exist fails to spawn and leaves no descriptor open", "[runner][spawn]") {
  int before = OpenDescriptors();
  auto c = SpawnWithPipes({"/nonexistent/agent"}, kEnv);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message() == "No such file or directory");
  CHECK(OpenDescriptors() == before);
}

TEST_CASE("a spawned child starts in its own session", "[runner][spawn]") {
  auto c = SpawnWithPipes({"/bin/sh", "-c", "cut -d' ' -f6 /proc/$$/stat"}, kEnv);
  REQUIRE(c.ok());
  pid_t pid = c->pid;
  CHECK(RunToEnd(*c).out == std::to_string(pid) + "\n");
}

TEST_CASE("a spawned child has no signal ignored or blocked even when the parent ignores SIGPIPE",
          "[runner][spawn]") {
  auto old = ::signal(SIGPIPE, SIG_IGN);
  sigset_t block, was;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &block, &was);
  auto c = SpawnWithPipes({"/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"}, kEnv);
  ::pthread_sigmask(SIG_SETMASK, &was, nullptr);
  ::signal(SIGPIPE, old);
  REQUIRE(c.ok());
  auto out = RunToEnd(*c).out;
  REQUIRE(out.size() == 2 * std::string("SigXxx:\t0000000000000000\n").size());
  auto mask = [&](int line) { return std::stoull(out.substr(line * 25 + 8, 16), nullptr, 16); };
  CHECK(mask(0) == 0);  // SigBlk: nothing blocked
  // SigIgn: none of the classic signals 1-31. glibc's posix_spawn leaves its
  // two internal real-time signals (32, 33) ignored; the libc of the program
  // run sets its own handlers for them when it needs them.
  CHECK((mask(1) & 0x7fffffffULL) == 0);
}

TEST_CASE("a spawned child inherits no descriptor but its three pipes", "[runner][spawn]") {
  // A descriptor of ours without O_CLOEXEC, as a careless library leaves.
  int leaked = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaked >= 0);
  auto c = SpawnWithPipes({"/bin/sh", "-c", "ls /proc/$$/fd"}, kEnv);
  ::close(leaked);
  REQUIRE(c.ok());
  CHECK(RunToEnd(*c).out == "0\n1\n2\n");
}

}  // namespace
