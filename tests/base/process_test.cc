// base/process.h with real processes (/bin/sh and coreutils): a child on a
// loop (what the runner does for an agent) and the synchronous run (runtime
// probes and helpers, the on_message hook). Both backends pass these.
#include "base/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fakes/process.h"
#include "tests/fakes/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using dropq::Status;
using dropq::process::Child;
using dropq::process::Exit;
using dropq::process::Handlers;
using dropq::process::Run;
using dropq::process::RunOptions;
using dropq::process::Stream;

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};

// A private loop for one test, closed at the end.
struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

// What a child on a loop reported.
struct Ran {
  std::string out, err;
  std::optional<Exit> exit;
  bool out_ended = false, err_ended = false, closed = false;
};

Handlers Recording(Ran& r) {
  Handlers h;
  h.on_output = [&r](Stream s, std::string_view chunk) {
    (s == Stream::kStdout ? r.out : r.err).append(chunk);
    if (chunk.empty()) (s == Stream::kStdout ? r.out_ended : r.err_ended) = true;
  };
  h.on_exit = [&r](const Exit& e) { r.exit = e; };
  h.on_closed = [&r] { r.closed = true; };
  return h;
}

dropq::Result<std::unique_ptr<Child>> Start(Loop& l, Ran& r, const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env = kEnv, std::string input = "") {
  return Child::Start(&l.loop, argv, env, std::move(input), Recording(r));
}

// Starts argv with `input` and runs the loop until every handle is closed.
Ran RunToEnd(const std::vector<std::string>& argv, const std::string& input = "",
             const std::vector<std::string>& env = kEnv) {
  Loop l;
  Ran r;
  auto c = Start(l, r, argv, env, input);
  REQUIRE(c.ok());
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.closed);
  CHECK(r.out_ended);
  CHECK(r.err_ended);
  REQUIRE(r.exit.has_value());
  return r;
}

int OpenDescriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Ended: gone, or a zombie its new parent (init here) has yet to reap.
bool Gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

TEST_CASE("a child gets stdin and gives stdout and stderr through pipes", "[process]") {
  auto r = RunToEnd({"/bin/sh", "-c", "read line; echo \"out:$line\"; echo err >&2"}, "hello\n");
  CHECK(r.out == "out:hello\n");
  CHECK(r.err == "err\n");
  CHECK(r.exit->exit_code == 0);
  CHECK(r.exit->term_signal == 0);
}

TEST_CASE("a child's exit code is reported", "[process]") {
  CHECK(RunToEnd({"/bin/sh", "-c", "exit 7"}).exit->exit_code == 7);
}

TEST_CASE("the signal that ended a child is reported", "[process]") {
  auto r = RunToEnd({"/bin/sh", "-c", "kill -KILL $$"});
  CHECK(r.exit->term_signal == SIGKILL);
  CHECK(r.exit->exit_code == 0);
}

TEST_CASE("a running child's exit is not reported, and a signal reaches it", "[process]") {
  Loop l;
  Ran r;
  auto c = Start(l, r, {"/bin/sh", "-c", "sleep 30"});
  REQUIRE(c.ok());
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK_FALSE((*c)->exited());
  CHECK_FALSE(r.exit.has_value());
  (*c)->Signal(SIGTERM);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  REQUIRE(r.exit.has_value());
  CHECK(r.exit->term_signal == SIGTERM);
  CHECK(r.closed);
}

TEST_CASE("a command name is looked up in the PATH of the child's environment", "[process]") {
  dropq::testing::TempDir dir;
  auto tool = dir / "dropq-spawn-test-tool";
  dropq::testing::WriteFile(tool, "#!/bin/sh\necho found\n");
  fs::permissions(tool, fs::perms::owner_all);
  CHECK(RunToEnd({"dropq-spawn-test-tool"}, "", {"PATH=/nonexistent:" + dir.str()}).out == "found\n");
  // The daemon's own PATH does not count.
  Loop l;
  Ran r;
  CHECK_FALSE(Start(l, r, {"dropq-spawn-test-tool"}).ok());
}

TEST_CASE("a command that does not exist fails to start and leaves no descriptor open", "[process]") {
  { Loop warm; }  // libuv's process-wide signal pipe, made by the first loop
  int before = OpenDescriptors();
  {
    Loop l;
    Ran r;
    auto c = Start(l, r, {"/nonexistent/agent"});
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message() == "No such file or directory");
    CHECK(c.status().code() == Status::Code::kNotFound);
  }
  CHECK(OpenDescriptors() == before);
}

TEST_CASE("a child starts in its own session", "[process]") {
  Loop l;
  Ran r;
  auto c = Start(l, r, {"/bin/sh", "-c", "cut -d' ' -f6 /proc/$$/stat"});
  REQUIRE(c.ok());
  pid_t pid = (*c)->pid();
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.out == std::to_string(pid) + "\n");
}

TEST_CASE("a child has no signal ignored or blocked even when the parent ignores SIGPIPE", "[process]") {
  Loop l;
  Ran r;
  auto old = ::signal(SIGPIPE, SIG_IGN);
  sigset_t block, was;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &block, &was);
  auto c = Start(l, r, {"/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"});
  ::pthread_sigmask(SIG_SETMASK, &was, nullptr);
  ::signal(SIGPIPE, old);
  REQUIRE(c.ok());
  uv_run(&l.loop, UV_RUN_DEFAULT);
  const auto& out = r.out;
  REQUIRE(out.size() == 2 * std::string("SigXxx:\t0000000000000000\n").size());
  auto mask = [&](int line) { return std::stoull(out.substr(line * 25 + 8, 16), nullptr, 16); };
  CHECK(mask(0) == 0);  // SigBlk: nothing blocked
  // SigIgn: none of the classic signals 1-31. glibc's posix_spawn leaves its
  // two internal real-time signals (32, 33) ignored; the libc of the program
  // run sets its own handlers for them when it needs them.
  CHECK((mask(1) & 0x7fffffffULL) == 0);
}

TEST_CASE("a child inherits no descriptor but its three pipes", "[process]") {
  Loop l;
  Ran r;
  // A descriptor of ours without O_CLOEXEC, as a careless library leaves.
  int leaked = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaked >= 0);
  auto c = Start(l, r, {"/bin/sh", "-c", "ls /proc/$$/fd"});
  ::close(leaked);
  REQUIRE(c.ok());
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.out == "0\n1\n2\n");
}

TEST_CASE("StopIo closes a child's pipes without reporting their end", "[process]") {
  Loop l;
  Ran r;
  auto c = Start(l, r, {"/bin/sh", "-c", "sleep 30"});
  REQUIRE(c.ok());
  (*c)->StopIo();
  (*c)->Signal(SIGKILL);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK_FALSE(r.out_ended);
  CHECK_FALSE(r.err_ended);
  REQUIRE(r.exit.has_value());
  CHECK(r.exit->term_signal == SIGKILL);
  CHECK(r.closed);
}

// The synchronous run.

TEST_CASE("a run returns the child's exit code and what it printed on each stream", "[process]") {
  auto r = Run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, kEnv);
  REQUIRE(r.ok());
  CHECK(r->exit.exit_code == 3);
  CHECK(r->exit.term_signal == 0);
  CHECK(r->out == "out\n");
  CHECK(r->err == "err\n");
  CHECK_FALSE(r->timed_out);
}

TEST_CASE("a run delivers its input on the child's stdin", "[process]") {
  RunOptions o;
  o.input = std::string(200'000, 'x') + "\nend\n";  // more than a pipe holds
  auto r = Run({"/bin/cat"}, kEnv, o);
  REQUIRE(r.ok());
  CHECK(r->out == o.input);
  CHECK(r->exit.exit_code == 0);
}

TEST_CASE("a run of a child that exits without reading its input does not kill the caller", "[process]") {
  auto old = ::signal(SIGPIPE, SIG_DFL);
  RunOptions o;
  o.input = std::string(1 << 20, 'x');
  auto r = Run({"/bin/sh", "-c", "exit 0"}, kEnv, o);
  ::signal(SIGPIPE, old);
  REQUIRE(r.ok());
  CHECK(r->exit.exit_code == 0);
  sigset_t pending;
  sigemptyset(&pending);
  REQUIRE(::sigpending(&pending) == 0);
  CHECK_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_CASE("a run past its timeout kills the child's whole process group", "[process]") {
  RunOptions o;
  o.timeout_ms = 300;
  auto started = std::chrono::steady_clock::now();
  auto r = Run({"/bin/sh", "-c", "sleep 30 & echo $!; wait"}, kEnv, o);
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK(r->exit.term_signal == SIGKILL);
  CHECK(took < std::chrono::seconds(10));
  REQUIRE_FALSE(r->out.empty());
  pid_t sleeper = std::stoi(r->out);
  CHECK(dropq::testing::WaitUntil([&] { return Gone(sleeper); }, 10'000));
}

TEST_CASE("a run does not wait for what its child left running in its group", "[process]") {
  RunOptions o;
  o.timeout_ms = 20'000;
  auto started = std::chrono::steady_clock::now();
  // The background sleep holds stdout open: only the group kill at the
  // child's exit ends the stream before 30 s.
  auto r = Run({"/bin/sh", "-c", "sleep 30 & echo $!"}, kEnv, o);
  REQUIRE(r.ok());
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  CHECK_FALSE(r->timed_out);
  CHECK(r->exit.exit_code == 0);
  pid_t sleeper = std::stoi(r->out);
  CHECK(dropq::testing::WaitUntil([&] { return Gone(sleeper); }, 10'000));
}

TEST_CASE("a run stops waiting at its deadline for pipes held outside the child's group", "[process]") {
  RunOptions o;
  o.timeout_ms = 300;
  // setsid puts the sleeper in a session of its own, out of the group kill,
  // holding the child's stderr; its pid comes back once it is there.
  auto r = Run({"/bin/sh", "-c", "setsid -f /bin/sh -c 'echo $$; exec sleep 30' | { read pid; echo $pid; }"}, kEnv, o);
  REQUIRE(r.ok());
  CHECK_FALSE(r->timed_out);  // the child itself exited in time
  CHECK(r->exit.exit_code == 0);
  REQUIRE_FALSE(r->out.empty());
  pid_t escaped = std::stoi(r->out);
  ::kill(escaped, SIGKILL);
}

TEST_CASE("a run keeps only the first output_cap bytes of each stream and reads the rest", "[process]") {
  RunOptions o;
  o.output_cap = 1000;
  auto r = Run({"/bin/sh", "-c", "head -c 300000 /dev/zero; head -c 5000 /dev/zero >&2"}, kEnv, o);
  REQUIRE(r.ok());
  CHECK(r->exit.exit_code == 0);
  CHECK(r->out == std::string(1000, '\0'));
  CHECK(r->err == std::string(1000, '\0'));
}

TEST_CASE("a run with keep_tail keeps the last output_cap bytes", "[process]") {
  RunOptions o;
  o.output_cap = 4;
  o.keep_tail = true;
  auto r = Run({"/bin/sh", "-c", "seq 1 20000 >&2"}, kEnv, o);
  REQUIRE(r.ok());
  CHECK(r->err == "000\n");
  CHECK(r->out.empty());
}

TEST_CASE("a run of a command that is not on the PATH fails as not found", "[process]") {
  auto r = Run({"dropq-no-such-command"}, kEnv);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kNotFound);
}

TEST_CASE("FindExecutable looks a name up in the environment's PATH and leaves a path alone", "[process]") {
  using dropq::process::FindExecutable;
  CHECK(FindExecutable("sh", {"PATH=/nonexistent:/bin"}) == std::optional<std::string>("/bin/sh"));
  CHECK(FindExecutable("./anything", {}) == std::optional<std::string>("./anything"));
  CHECK_FALSE(FindExecutable("sh", {"PATH=/nonexistent"}).has_value());
}

}  // namespace
