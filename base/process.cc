// What both backends share: the PATH lookup, the child's I/O on the loop,
// the synchronous run and the detached start. Starting and the exit watch
// are in process_linux.cc or process_uv.cc (base/process.h).
#include "base/process.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/guard.h"

namespace dropq::process {

std::optional<std::string> FindExecutable(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return file;
  if (file.empty()) return std::nullopt;
  std::string_view path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = std::string_view(e).substr(5);
  }
  for (;;) {
    auto colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + file;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    path.remove_prefix(colon + 1);
  }
}

void Child::BeginIo() {
  for (uv_pipe_t* p : {&in_, &out_, &err_}) p->data = this;
  open_handles_ += 3;
  if (input_.empty()) {
    Close(reinterpret_cast<uv_handle_t*>(&in_));
  } else {
    uv_buf_t buf = uv_buf_init(input_.data(), static_cast<unsigned>(input_.size()));
    write_.data = this;
    // A child that exits without reading makes this fail with EPIPE: only a
    // result code here, SIGPIPE being ignored or blocked (process.h).
    int rc = uv_write(&write_, reinterpret_cast<uv_stream_t*>(&in_), &buf, 1, [](uv_write_t* w, int) {
      auto* self = static_cast<Child*>(w->data);
      Guard("child stdin", [&] { self->Close(reinterpret_cast<uv_handle_t*>(&self->in_)); });
    });
    if (rc != 0) Close(reinterpret_cast<uv_handle_t*>(&in_));  // no callback will come
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&out_), &Child::Alloc, &Child::OnRead);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&err_), &Child::Alloc, &Child::OnRead);
}

void Child::Alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* self = static_cast<Child*>(h->data);
  *buf = uv_buf_init(self->buf_, sizeof(self->buf_));
}

void Child::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Child*>(s->data);
  Stream which = s == reinterpret_cast<uv_stream_t*>(&self->out_) ? Stream::kStdout : Stream::kStderr;
  if (n > 0) {
    Guard("child output", [&] {
      if (self->handlers_.on_output)
        self->handlers_.on_output(which, std::string_view(buf->base, static_cast<std::size_t>(n)));
    });
  } else if (n < 0) {  // EOF or an error: this stream is done
    self->Close(reinterpret_cast<uv_handle_t*>(s));
    Guard("child output end", [&] {
      if (self->handlers_.on_output) self->handlers_.on_output(which, std::string_view());
    });
  }
}

void Child::Exited(const Exit& e) {
  exited_ = true;
  Guard("child exit", [&] {
    if (handlers_.on_exit) handlers_.on_exit(e);
  });
}

void Child::Signal(int sig) {
  if (pid_ > 0 && !exited_) ::kill(-pid_, sig);
}

void Child::StopIo() {
  for (uv_pipe_t* p : {&in_, &out_, &err_}) Close(reinterpret_cast<uv_handle_t*>(p));
}

void Child::Close(uv_handle_t* h) {
  if (uv_is_closing(h)) return;
  if (h->type == UV_NAMED_PIPE) uv_read_stop(reinterpret_cast<uv_stream_t*>(h));
  uv_close(h, [](uv_handle_t* h) {
    auto* self = static_cast<Child*>(h->data);
    if (--self->open_handles_ > 0) return;
    // The handler may destroy the child: nothing of it is touched after.
    auto closed = std::move(self->handlers_.on_closed);
    Guard("child closed", [&] {
      if (closed) closed();
    });
  });
}

Result<RunResult> Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      const RunOptions& options) {
  // A child that exits without reading its stdin must not kill the caller:
  // SIGPIPE is held on this thread and dropped afterwards.
  sigset_t pipe_only, was;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &was);

  struct State {
    RunResult result;
    std::unique_ptr<Child> child;
    uv_timer_t timer{};
    std::size_t cap = 0;
    bool keep_tail = false;
    void Keep(std::string& into, std::string_view chunk) {
      if (keep_tail) {
        into.append(chunk);
        if (into.size() > cap) into.erase(0, into.size() - cap);
      } else {
        into.append(chunk.substr(0, cap - std::min(cap, into.size())));
      }
    }
  } st;
  st.cap = options.output_cap;
  st.keep_tail = options.keep_tail;

  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_init(&loop, &st.timer);
  st.timer.data = &st;
  auto close_timer = [&st] { uv_close(reinterpret_cast<uv_handle_t*>(&st.timer), nullptr); };

  Handlers h;
  h.on_output = [&st](Stream s, std::string_view chunk) {
    st.Keep(s == Stream::kStdout ? st.result.out : st.result.err, chunk);
  };
  h.on_exit = [&st](const Exit& e) { st.result.exit = e; };
  h.on_closed = close_timer;
  auto child = Child::Start(&loop, argv, env, options.input, std::move(h));
  Status failed = Status::Ok();
  if (child.ok()) {
    st.child = std::move(*child);
    uv_timer_start(
        &st.timer,
        [](uv_timer_t* t) {
          auto* st = static_cast<State*>(t->data);
          Guard("run deadline", [&] {
            if (!st->child->exited()) {
              st->result.timed_out = true;
              st->child->Signal(SIGKILL);
            }
            // Whatever still holds the pipes is not waited for.
            st->child->StopIo();
          });
        },
        static_cast<std::uint64_t>(std::max<std::int64_t>(options.timeout_ms, 0)), 0);
  } else {
    failed = child.status();
    close_timer();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  st.child.reset();
  uv_loop_close(&loop);

  if (!sigismember(&was, SIGPIPE)) {
    sigset_t pending;
    sigemptyset(&pending);
    if (::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
      int sig = 0;
      ::sigwait(&pipe_only, &sig);
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &was, nullptr);
  if (!failed.ok()) return failed;
  return std::move(st.result);
}

void StartDetached(uv_loop_t* loop, const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  struct Detached {
    std::string name;
    std::unique_ptr<Child> child;
  };
  auto* d = new Detached{argv.empty() ? std::string() : argv[0], nullptr};
  Handlers h;
  h.on_exit = [d](const Exit& e) {
    if (e.term_signal != 0) {
      spdlog::warn("{} was killed by signal {}", d->name, e.term_signal);
    } else if (e.exit_code != 0) {
      spdlog::warn("{} exited with {}", d->name, e.exit_code);
    }
  };
  h.on_closed = [d] { delete d; };
  auto child = Child::Start(loop, argv, env, "", std::move(h));
  if (!child.ok()) {
    spdlog::error("cannot run {}: {}", d->name, child.status().message());
    delete d;
    return;
  }
  d->child = std::move(*child);
}

}  // namespace dropq::process
