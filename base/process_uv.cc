// The portable backend of base/process.h (DROPQ_PORTABLE_PROCESS=ON, the
// default where Linux's pidfd and glibc's posix_spawn extensions are
// missing, e.g. macOS): libuv's uv_spawn in a new session
// (UV_PROCESS_DETACHED) and its exit callback. libuv resets every signal to
// its default disposition and empties the mask in the child (on macOS it
// uses posix_spawn with POSIX_SPAWN_CLOEXEC_DEFAULT; elsewhere it forks).
//
// Two things differ from the Linux backend. The leader has been reaped by
// libuv when the exit callback runs, so the group is killed just after the
// reap, not before: the group's id cannot be reused while any member lives,
// so the only race is with a new process taking the leader's pid for a
// session of its own in between. And a forking libuv closes no inherited
// descriptor, so before each start every descriptor of ours is marked
// close-on-exec (one opened without O_CLOEXEC by a library, say).
#include "base/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/guard.h"

namespace dropq::process {

struct Child::ExitWatch {
  uv_process_t proc{};
};

std::string_view Backend() { return "uv_spawn"; }

namespace {

// Every open descriptor above stderr gets FD_CLOEXEC (listed from /dev/fd,
// which Linux, macOS and the BSDs all have).
void MarkDescriptorsCloseOnExec() {
  DIR* dir = ::opendir("/dev/fd");
  if (dir == nullptr) return;
  int own = ::dirfd(dir);
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd <= 2 || fd == own) continue;
    int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
  }
  ::closedir(dir);
}

Status SpawnError(int uv_error) {
  // libuv's error codes are negated errno values on Unix.
  int e = -uv_error;
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
  if (!file) return SpawnError(-ENOENT);
  MarkDescriptorsCloseOnExec();

  std::unique_ptr<Child> c(new Child(loop, std::move(input), std::move(handlers)));
  c->watch_ = std::make_unique<Child::ExitWatch>();
  uv_process_t* proc = &c->watch_->proc;
  uv_pipe_init(loop, &c->in_, 0);
  uv_pipe_init(loop, &c->out_, 0);
  uv_pipe_init(loop, &c->err_, 0);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
  stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&c->in_);
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&c->out_);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&c->err_);

  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  uv_process_options_t opts{};
  opts.file = file->c_str();
  opts.args = args.data();
  opts.env = envp.data();
  opts.stdio = stdio;
  opts.stdio_count = 3;
  opts.flags = UV_PROCESS_DETACHED;  // setsid(): a session and process group of its own
  opts.exit_cb = [](uv_process_t* p, int64_t status, int sig) {
    auto* self = static_cast<Child*>(p->data);
    Guard("child exit", [&] {
      // Whatever the child left in its group goes with it.
      ::kill(-self->pid_, SIGKILL);
      self->Close(reinterpret_cast<uv_handle_t*>(p));
      Exit e;
      if (sig != 0) {
        e.term_signal = sig;
      } else {
        e.exit_code = static_cast<int>(status);
      }
      self->Exited(e);
    });
  };
  proc->data = c.get();
  for (uv_pipe_t* p : {&c->in_, &c->out_, &c->err_}) p->data = c.get();
  int rc = uv_spawn(loop, proc, &opts);
  if (rc != 0) {
    // The handles are initialised all the same and must be closed; the
    // child object goes with the last of them. uv_spawn has closed the
    // pipes' descriptors already.
    Child* orphan = c.release();
    orphan->handlers_ = Handlers{};
    orphan->handlers_.on_closed = [orphan] { delete orphan; };
    orphan->open_handles_ = 4;
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&orphan->in_), reinterpret_cast<uv_handle_t*>(&orphan->out_),
                           reinterpret_cast<uv_handle_t*>(&orphan->err_), reinterpret_cast<uv_handle_t*>(proc)}) {
      orphan->Close(h);
    }
    return SpawnError(rc);
  }
  c->pid_ = proc->pid;
  ++c->open_handles_;
  c->BeginIo();
  return c;
}

}  // namespace dropq::process
