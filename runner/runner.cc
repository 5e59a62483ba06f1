#include "runner/runner.h"

#include <signal.h>

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "base/process.h"
#include "runner/cli_helper.h"
#include "runner/outcome.h"
#include "runner/sentinel.h"
#include "base/guard.h"
#include "base/text.h"

namespace dropq::runner {
namespace {

template <typename H>
uv_handle_t* AsHandle(H* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

// How long a collect command (`kubectl logs` of an ended pod) may take
// before the attempt ends without its output.
constexpr std::int64_t kCollectTimeoutMs = 60'000;

std::string FileTimestamp(TimeMs t) {
  std::string s = FormatIsoUtc(t);
  std::replace(s.begin(), s.end(), ':', '-');
  std::replace(s.begin(), s.end(), '.', '-');
  return s;
}

}  // namespace

std::string ContainerInputJson(const Attempt& a, bool redact_secrets) {
  nlohmann::json secrets = nlohmann::json::object();
  for (const auto& [k, v] : a.secrets) secrets[k] = redact_secrets ? "<redacted>" : v;
  nlohmann::json in = {
      {"prompt", a.job.prompt},
      {"groupFolder", a.job.group},
      {"chatJid", a.chat_jid ? nlohmann::json(*a.chat_jid) : nlohmann::json(nullptr)},
      {"isMain", a.is_main},
      {"isScheduledTask", a.is_scheduled_task},
      {"jobId", a.job.id},
      {"attempt", a.run.attempt},
      {"secrets", secrets},
  };
  if (a.session_id) in["sessionId"] = *a.session_id;
  return text::Dump(in);
}

// One attempt in flight. Owns its libuv handles; deletes itself after the
// last close callback, once it has reported to the Runner.
class Runner::Execution {
 public:
  Execution(Runner* r, Attempt a)
      : r_(r),
        a_(std::move(a)),
        parser_([this](const AgentOutput& out) { OnBlock(out); }, static_cast<std::size_t>(r->options_.max_output)) {}

  void Start() {
    started_ms_ = r_->clock_.NowMs();
    SandboxSpec sandbox;
    sandbox.container_name = a_.run.container_name.value_or("");
    sandbox.mounts = GroupMounts(r_->layout_, a_.job.group, a_.is_main, r_->options_.session_dir);
    sandbox.mounts.insert(sandbox.mounts.end(), a_.extra_mounts.begin(), a_.extra_mounts.end());
    sandbox.agent = r_->options_.agent;
    sandbox.group = a_.job.group;
    sandbox.job_id = a_.job.id;
    sandbox.timeout_ms = a_.timeout_ms;
    SpawnSpec spec = r_->runtime_.Build(sandbox);
    argv_ = spec.argv;
    mounts_ = sandbox.mounts;

    uv_timer_init(r_->loop_, &timer_);
    timer_.data = this;
    // The child writes the input to the agent's stdin and closes it; an
    // agent that exits without reading makes that write fail with EPIPE,
    // only a result code since the daemon ignores SIGPIPE.
    process::Handlers handlers;
    handlers.on_output = [this](process::Stream s, std::string_view chunk) {
      if (s == process::Stream::kStdout) {
        OnStdout(chunk);
      } else {
        OnStderr(chunk);
      }
    };
    handlers.on_exit = [this](const process::Exit& e) { Guarded("agent exit", [&] { Exited(e); }); };
    handlers.on_closed = [this] { Guard("agent closed", [&] { ChildClosed(); }); };
    if (!spec.error.empty()) {
      FailSpawn(spec.error);
      return;
    }
    collect_argv_ = r_->runtime_.CollectArgv(sandbox.container_name);
    client_env_ = spec.env;
    auto child =
        process::Child::Start(r_->loop_, spec.argv, spec.env, ContainerInputJson(a_, false), std::move(handlers));
    if (!child.ok()) {
      FailSpawn(spec.argv[0] + ": " + child.status().message());
      return;
    }
    child_ = std::move(*child);
    // A runtime that may wait for resources (slurm) says when its sandbox
    // runs: the timeout counts from then; until then its start timeout.
    marker_ = std::string(r_->runtime_.StartMarker());
    awaiting_start_ = !marker_.empty();
    std::int64_t first = awaiting_start_ ? r_->runtime_.StartTimeoutMs() : a_.timeout_ms;
    if (first > 0) uv_timer_start(&timer_, &Execution::OnTimeout, static_cast<std::uint64_t>(first), 0);
  }

  // Graceful stop: the runtime's stop command (docker stop) or SIGTERM to the
  // process group now; the forced kill after the grace period.
  void RequestStop(bool timed_out) {
    if (exited_ || stopping_) return;
    stopping_ = true;
    timed_out_ = timed_out;
    // Before its sandbox runs the client is all there is: SIGTERM makes it
    // withdraw its request (srun cancels a pending allocation).
    auto stop = awaiting_start_ ? std::vector<std::string>() : r_->runtime_.StopArgv(a_.run.container_name.value_or(""));
    if (stop.empty()) {
      KillGroup(SIGTERM);
    } else {
      r_->StartHelper(stop);
    }
    uv_timer_stop(&timer_);
    uv_timer_start(&timer_, &Execution::OnKillTimer, static_cast<std::uint64_t>(r_->options_.kill_grace_ms), 0);
  }

  const Job& job() const { return a_.job; }

 private:
  // Nothing was started: the attempt ends at once, failed with `why`.
  void FailSpawn(std::string why) {
    spawn_error_ = std::move(why);
    exited_ = out_eof_ = err_eof_ = true;
    child_closed_ = true;
    collect_argv_.clear();  // nothing started: nothing to collect or clean up
    Close(AsHandle(&timer_));
  }

  // A chunk of the agent's stdout; empty at its end.
  void OnStdout(std::string_view chunk) {
    Guarded("agent stdout", [&] {
      // With a collect command the stream is not the output (runtime.h):
      // it is kept for the caps and the run log, never parsed; the
      // collected output is.
      if (!chunk.empty()) {
        Capture(stdout_, stdout_bytes_, stdout_truncated_, chunk);
        if (collect_argv_.empty()) parser_.Feed(chunk);
      } else {
        if (collect_argv_.empty()) parser_.Finish();
        out_eof_ = true;
        MaybeDone();
      }
    });
  }

  void OnStderr(std::string_view chunk) {
    Guarded("agent stderr", [&] {
      if (awaiting_start_) {
        AwaitStart(chunk);
      } else if (!chunk.empty()) {
        TakeStderr(chunk);
      }
      if (chunk.empty()) {
        err_eof_ = true;
        MaybeDone();
      }
    });
  }

  void TakeStderr(std::string_view chunk) {
    if (chunk.empty()) return;
    Capture(stderr_, stderr_bytes_, stderr_truncated_, chunk);
    if (spdlog::should_log(spdlog::level::debug)) LogStderrLines(chunk);
  }

  // Stderr before the start marker (Runtime::StartMarker): held until the
  // marker line is found, which is cut out, or until the stream ends.
  // What comes before it is the client's own (srun's messages) and is kept.
  // The marker line may carry a start detail after a space (runtime.h).
  void AwaitStart(std::string_view chunk) {
    pre_start_.append(chunk);
    for (std::size_t at = pre_start_.find(marker_); at != std::string::npos; at = pre_start_.find(marker_, at + 1)) {
      if (at != 0 && pre_start_[at - 1] != '\n') continue;
      const std::size_t after = at + marker_.size();
      const std::size_t end = pre_start_.find('\n', after);
      if (end == std::string::npos) break;  // its line has not ended yet
      if (end != after && (pre_start_[after] != ' ' || end - after - 1 > kStartDetailMax)) continue;
      std::string held = std::move(pre_start_);
      pre_start_.clear();
      awaiting_start_ = false;
      if (end != after) start_detail_ = held.substr(after + 1, end - after - 1);
      TakeStderr(std::string_view(held).substr(0, at));
      SandboxStarted();
      TakeStderr(std::string_view(held).substr(end + 1));
      return;
    }
    if (chunk.empty()) {  // the stream ended without it
      TakeStderr(pre_start_);
      pre_start_.clear();
      return;
    }
    // A client that talks a lot: pass on all but what could begin the marker.
    constexpr std::size_t kHold = 64 * 1024;
    if (pre_start_.size() > kHold) {
      std::size_t keep = marker_.size() + 1 + kStartDetailMax + 1;
      TakeStderr(std::string_view(pre_start_).substr(0, pre_start_.size() - keep));
      pre_start_.erase(0, pre_start_.size() - keep);
    }
  }

  // The sandbox runs (its resources were allocated): the attempt's timeout
  // starts now, unless a stop is already under way.
  void SandboxStarted() {
    TimeMs now = r_->clock_.NowMs();
    if (!stopping_) {
      uv_timer_stop(&timer_);
      uv_timer_start(&timer_, &Execution::OnTimeout, static_cast<std::uint64_t>(a_.timeout_ms), 0);
    }
    if (r_->on_started_) r_->on_started_(a_.job, a_.run.attempt, now - started_ms_);
  }

  // Runs a callback's body; an exception fails this attempt with the
  // reason (Outcome), stops the agent and stops waiting for its output, so
  // the attempt still ends and reports (base/guard.h).
  template <typename Body>
  void Guarded(const char* where, Body&& body) {
    Guard(where, std::forward<Body>(body), [&](const std::string& why) {
      if (!internal_error_) internal_error_ = why;
      RequestStop(false);
      if (child_) child_->StopIo();
      out_eof_ = err_eof_ = true;
      MaybeDone();
    });
  }

  void Capture(std::string& into, std::int64_t& count, bool& truncated, std::string_view chunk) {
    count += static_cast<std::int64_t>(chunk.size());
    auto cap = static_cast<std::size_t>(r_->options_.max_output);
    auto room = cap - std::min(into.size(), cap);
    if (chunk.size() > room) {
      if (!truncated) {
        spdlog::warn("job {}: output over max_output ({} bytes); the rest is counted, not kept", a_.job.id, cap);
      }
      truncated = true;
      chunk = chunk.substr(0, room);
    }
    // Past 1 MiB the buffer is sized for max_output at once. Grown by
    // doubling, each step copied the block into one twice its size while the
    // old one was still held (the daemon keeps its heap, RunDaemon), so a
    // 10 MiB output peaked at 23 MiB; a reserved block is resident only as
    // far as it is written.
    constexpr std::size_t kReserveAt = std::size_t{1} << 20;
    if (into.size() + chunk.size() > kReserveAt && into.capacity() < cap) into.reserve(cap);
    into.append(chunk);
  }

  // stderr goes to the debug log line by line, tagged with the group.
  void LogStderrLines(std::string_view chunk) {
    for (;;) {
      auto nl = chunk.find('\n');
      if (nl == std::string_view::npos) break;
      stderr_line_.append(chunk.substr(0, nl));
      spdlog::debug("[{}] job {} stderr: {}", a_.job.group, a_.job.id, stderr_line_);
      stderr_line_.clear();
      chunk.remove_prefix(nl + 1);
    }
    if (stderr_line_.size() < 4096) stderr_line_.append(chunk.substr(0, 4096 - stderr_line_.size()));
  }

  void OnBlock(const AgentOutput& out) {
    if (r_->on_output_) r_->on_output_(a_.job, a_.run.attempt, out);
  }

  // The agent has exited; whatever it left running in its group has been
  // killed with it (base/process.h), which also releases pipes a stray
  // child would otherwise hold open.
  void Exited(const process::Exit& e) {
    exited_ = true;
    exit_status_ = e.exit_code;
    term_signal_ = e.term_signal;
    MaybeDone();
  }

  // Every handle of the child is closed; the attempt ends once its timer
  // (and its collect command, if any) are.
  void ChildClosed() {
    child_closed_ = true;
    if (AllClosed()) GuardedReport();
  }

  bool AllClosed() const { return child_closed_ && timer_closed_ && (!collector_ || collector_closed_); }

  // The client has exited and its streams have ended: the collect command
  // (`kubectl logs`) fetches the authoritative output, bounded by
  // kCollectTimeoutMs on the attempt's timer.
  void StartCollect() {
    collect_started_ = true;
    uv_timer_stop(&timer_);
    uv_timer_start(&timer_, &Execution::OnCollectTimeout, static_cast<std::uint64_t>(kCollectTimeoutMs), 0);
    process::Handlers handlers;
    handlers.on_output = [this](process::Stream s, std::string_view chunk) {
      GuardedCollect("collect output", [&] {
        if (s == process::Stream::kStdout) {
          if (chunk.empty()) collect_out_eof_ = true;
          Capture(collected_, collected_bytes_, collected_truncated_, chunk);
        } else if (chunk.empty()) {
          collect_err_eof_ = true;
        } else if (collect_err_.size() < 4096) {
          collect_err_.append(chunk.substr(0, 4096 - collect_err_.size()));
        }
        MaybeCollected();
      });
    };
    handlers.on_exit = [this](const process::Exit& e) {
      GuardedCollect("collect exit", [&] {
        collect_exited_ = true;
        collect_exit_ = e;
        MaybeCollected();
      });
    };
    handlers.on_closed = [this] {
      Guard("collect closed", [&] {
        collector_closed_ = true;
        if (AllClosed()) GuardedReport();
      });
    };
    auto child = process::Child::Start(r_->loop_, collect_argv_, client_env_, "", std::move(handlers));
    if (!child.ok()) {
      FinishCollect(collect_argv_[0] + ": " + child.status().message());
      return;
    }
    collector_ = std::move(*child);
  }

  // Runs a collect callback's body; an exception ends the collection with
  // the reason, so the attempt still ends.
  template <typename Body>
  void GuardedCollect(const char* where, Body&& body) {
    Guard(where, std::forward<Body>(body), [&](const std::string& why) {
      if (collector_) collector_->StopIo();
      FinishCollect(why);
    });
  }

  void MaybeCollected() {
    if (!collect_exited_ || !collect_out_eof_ || !collect_err_eof_) return;
    std::optional<std::string> why;
    int code = collect_exit_.term_signal != 0 ? 128 + collect_exit_.term_signal : collect_exit_.exit_code;
    if (code != 0) {
      std::string err = collect_err_;
      while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
      why = "exited with code " + std::to_string(code) + (err.empty() ? "" : ": " + text::Tail(err, 300));
    }
    FinishCollect(why);
  }

  static void OnCollectTimeout(uv_timer_t* t) {
    auto* self = static_cast<Execution*>(t->data);
    Guard("collect timeout", [&] {
      if (self->collector_) {
        self->collector_->Signal(SIGKILL);
        self->collector_->StopIo();
      }
      self->FinishCollect("did not finish within " + std::to_string(kCollectTimeoutMs / 1000) + " s");
    });
  }

  // The collection has ended; `failure` says why it gave no output. On
  // success the collected bytes replace the streamed ones and are parsed;
  // either way the runtime's clean-up command runs now, and the attempt
  // ends.
  void FinishCollect(std::optional<std::string> failure) {
    if (collect_done_) return;
    collect_done_ = true;
    uv_timer_stop(&timer_);
    if (failure) {
      std::string command;
      for (const auto& arg : collect_argv_) command += (command.empty() ? "" : " ") + arg;
      collect_error_ = "`" + command + "` " + *failure;
      spdlog::warn("job {}: {}", a_.job.id, *collect_error_);
    } else {
      stdout_ = std::move(collected_);
      stdout_bytes_ = collected_bytes_;
      stdout_truncated_ = collected_truncated_;
      parser_.Feed(stdout_);
    }
    parser_.Finish();
    auto cleanup = r_->runtime_.CleanupArgv(a_.run.container_name.value_or(""));
    if (!cleanup.empty()) r_->StartHelper(cleanup);
    MaybeDone();
  }

  static void OnTimeout(uv_timer_t* t) {
    auto* self = static_cast<Execution*>(t->data);
    self->Guarded("attempt timeout", [&] { self->TimedOut(); });
  }

  void TimedOut() {
    Execution* self = this;
    if (self->exited_) {
      // The agent exited but something outside its process group still
      // holds its output pipes open: stop waiting for them.
      if (self->child_) self->child_->StopIo();
      if (!self->out_eof_ && self->collect_argv_.empty()) self->parser_.Finish();
      self->out_eof_ = self->err_eof_ = true;
      self->MaybeDone();
      return;
    }
    if (awaiting_start_) {
      std::int64_t waited = r_->runtime_.StartTimeoutMs();
      spdlog::warn("job {}: its {} sandbox did not start within {} ms; stopping it", a_.job.id, r_->runtime_.name(),
                   waited);
      if (!internal_error_) {
        internal_error_ = "the " + std::string(r_->runtime_.name()) + " sandbox did not start within " +
                          std::to_string(waited) + " ms (queue timeout): still waiting for resources";
      }
      RequestStop(false);
      return;
    }
    spdlog::warn("job {} timed out after {} ms; stopping it", self->a_.job.id, self->a_.timeout_ms);
    self->RequestStop(true);
  }

  static void OnKillTimer(uv_timer_t* t) {
    auto* self = static_cast<Execution*>(t->data);
    Guard("kill timer", [&] { self->KillNow(); });
  }

  void KillNow() {
    Execution* self = this;
    spdlog::warn("job {} did not stop within {} ms; killing it", self->a_.job.id, self->r_->options_.kill_grace_ms);
    auto kill = self->r_->runtime_.KillArgv(self->a_.run.container_name.value_or(""));
    if (!kill.empty()) self->r_->StartHelper(kill);
    self->KillGroup(SIGKILL);
  }

  void KillGroup(int sig) {
    if (child_) child_->Signal(sig);
  }

  void MaybeDone() {
    if (!exited_ || !out_eof_ || !err_eof_) return;
    if (!collect_argv_.empty() && !collect_done_) {
      if (!collect_started_) StartCollect();
      return;
    }
    Close(AsHandle(&timer_));
  }

  // The timer is the attempt's own handle; the child closes its own.
  void Close(uv_handle_t* h) {
    if (uv_is_closing(h)) return;
    uv_close(h, [](uv_handle_t* h) {
      auto* self = static_cast<Execution*>(h->data);
      self->timer_closed_ = true;
      if (self->AllClosed()) self->GuardedReport();
    });
  }

  void Report();
  // Report from the last close callback: if it throws, the attempt still
  // ends, failed with the reason, so its group is never left waiting.
  void GuardedReport() {
    Guard(
        "attempt end", [&] { Report(); },
        [&](const std::string& why) {
          if (reported_) return;
          RunOutcome o;
          o.run = a_.run;
          o.run.finished_at = r_->clock_.NowMs();
          o.run.status = "failed";
          o.run.error = o.error = why;
          o.job_state = JobState::kFailed;
          Job job = a_.job;
          r_->Finished(this, job, std::move(o));
        });
  }
  void LogWritten();
  void AskAccounting();
  RunOutcome Outcome(TimeMs now);
  std::string LogText(const RunOutcome& o, bool verbose) const;

  Runner* r_;
  Attempt a_;
  // The agent's process; Report() once it and the timer are closed.
  std::unique_ptr<process::Child> child_;
  uv_timer_t timer_{};
  bool child_closed_ = false, timer_closed_ = false;
  TimeMs started_ms_ = 0;
  bool exited_ = false, out_eof_ = false, err_eof_ = false;
  bool stopping_ = false, timed_out_ = false;
  std::string marker_;          // the runtime's start marker; empty: none
  bool awaiting_start_ = false;  // the marker has not been seen yet
  std::string pre_start_;       // stderr held until then
  std::string start_detail_;    // what followed the marker on its line
  std::int64_t exit_status_ = 0;
  int term_signal_ = 0;
  std::optional<std::string> spawn_error_;
  std::optional<std::string> internal_error_;  // a callback threw (Guarded)
  bool reported_ = false;                      // the run log write is queued
  std::vector<std::string> argv_;
  std::vector<Mount> mounts_;
  std::string stderr_line_;
  std::string stdout_, stderr_;
  std::int64_t stdout_bytes_ = 0, stderr_bytes_ = 0;
  bool stdout_truncated_ = false, stderr_truncated_ = false;
  SentinelParser parser_;
  // The collect command (runtime.h, CollectArgv) and what it gave.
  std::vector<std::string> collect_argv_;
  std::vector<std::string> client_env_;
  std::unique_ptr<process::Child> collector_;
  bool collect_started_ = false, collect_done_ = false, collector_closed_ = false;
  bool collect_exited_ = false, collect_out_eof_ = false, collect_err_eof_ = false;
  process::Exit collect_exit_;
  std::string collected_, collect_err_;
  std::int64_t collected_bytes_ = 0;
  bool collected_truncated_ = false;
  std::optional<std::string> collect_error_;
  // The run log, written off the loop once every handle is closed.
  uv_work_t log_work_{};
  RunOutcome outcome_;
  std::filesystem::path log_path_;
  std::string log_text_;
  bool log_verbose_ = false;
  Status log_status_;
  // The accounting command (runtime.h, AccountingArgv), run with the log's
  // write; why it gave nothing, if it did not.
  std::vector<std::string> acct_argv_;
  std::vector<std::string> acct_env_;
  std::optional<std::string> acct_warning_;
};

RunOutcome Runner::Execution::Outcome(TimeMs now) {
  return MakeOutcome({.run = a_.run,
                      .started_ms = started_ms_,
                      .now = now,
                      .stderr_text = stderr_,
                      .stdout_bytes = stdout_bytes_,
                      .stderr_bytes = stderr_bytes_,
                      .stdout_truncated = stdout_truncated_,
                      .stderr_truncated = stderr_truncated_,
                      .spawn_error = spawn_error_,
                      .timed_out = timed_out_,
                      .timeout_ms = a_.timeout_ms,
                      .exit_status = exit_status_,
                      .term_signal = term_signal_,
                      .parser = &parser_,
                      .internal_error = internal_error_,
                      .collect_error = collect_error_});
}

std::string Runner::Execution::LogText(const RunOutcome& o, bool verbose) const {
  // NanoClaw's run-log shape, so existing habits (grep, tail) carry over.
  // Full detail (input, argv, mounts, output) when the attempt failed or the
  // log level is debug; otherwise the header and what identifies the run.
  std::string s;
  s += "=== Container Run Log" + std::string(timed_out_ ? " (TIMEOUT)" : "") + " ===\n";
  s += "Timestamp: " + FormatIsoUtc(started_ms_) + "\n";
  s += "Job: " + std::to_string(a_.job.id) + " (attempt " + std::to_string(a_.run.attempt) + ")\n";
  s += "Group: " + a_.job.group + "\n";
  s += "IsMain: " + std::string(a_.is_main ? "true" : "false") + "\n";
  s += "Runtime: " + std::string(r_->runtime_.name()) + "\n";
  s += "Container: " + a_.run.container_name.value_or("") + "\n";
  s += "Duration: " + std::to_string(o.run.duration_ms.value_or(0)) + "ms\n";
  s += "Exit Code: " + (o.run.exit_code ? std::to_string(*o.run.exit_code) : std::string("none")) + "\n";
  if (o.run.signal) s += "Signal: " + std::to_string(*o.run.signal) + "\n";
  if (timed_out_) s += "Timed Out: after " + std::to_string(a_.timeout_ms) + "ms\n";
  s += "Status: " + o.run.status + "\n";
  if (!collect_argv_.empty()) {
    s += "Output Collected: " + (collect_error_ ? "no (" + *collect_error_ + ")" : std::string("yes")) + "\n";
  }
  if (o.error) s += "Error: " + *o.error + "\n";
  if (o.run.node) s += "Node: " + *o.run.node + "\n";
  if (o.run.cluster_state) s += "Cluster State: " + *o.run.cluster_state + "\n";
  s += "Stdout Truncated: " + std::string(stdout_truncated_ ? "true" : "false") + " (" + std::to_string(stdout_bytes_) +
       " bytes)\n";
  s += "Stderr Truncated: " + std::string(stderr_truncated_ ? "true" : "false") + " (" + std::to_string(stderr_bytes_) +
       " bytes)\n";
  if (!verbose) {
    s += "\n=== Input Summary ===\n";
    s += "Prompt length: " + std::to_string(a_.job.prompt.size()) + " chars\n";
    s += "Session ID: " + a_.session_id.value_or("new") + "\n";
    s += "\n=== Mounts ===\n";
    for (const auto& m : mounts_) s += m.container + (m.readonly ? " (ro)" : "") + "\n";
    return s;
  }
  s += "\n=== Input (secrets redacted) ===\n" + ContainerInputJson(a_, true) + "\n";
  s += "\n=== Container Args ===\n";
  for (const auto& a : argv_) s += a + "\n";
  s += "\n=== Mounts ===\n";
  for (const auto& m : mounts_) s += m.host + " -> " + m.container + (m.readonly ? " (ro)" : "") + "\n";
  // The agent's bytes as text; what max_output cut off is cut on a
  // character boundary.
  auto captured = [&](const std::string& bytes, bool truncated) {
    return truncated ? text::Head(bytes, bytes.size()) : text::MakeValid(bytes);
  };
  s += "\n=== Stderr ===\n" + captured(stderr_, stderr_truncated_) + "\n=== Stdout ===\n" +
       captured(stdout_, stdout_truncated_) + "\n";
  return s;
}

void Runner::Execution::Report() {
  TimeMs now = r_->clock_.NowMs();
  RunOutcome o = Outcome(now);
  bool failed = o.job_state != JobState::kSucceeded;
  if (failed) {
    // The structured error line carries the captured output whole: the log
    // file may be the thing that could not be written.
    spdlog::error("job {} attempt {} failed: {} | stderr: {} | stdout: {}", a_.job.id, a_.run.attempt,
                  o.error.value_or(""), stderr_, stdout_);
  }
  auto logs = r_->layout_.GroupLogsDir(a_.job.group);
  auto path = logs / ("container-" + FileTimestamp(started_ms_) + "-job" + std::to_string(a_.job.id) + "-" +
                      std::to_string(a_.run.attempt) + ".log");
  bool verbose = failed || spdlog::should_log(spdlog::level::debug);
  // The file is made on the libuv thread pool: creating it and its two
  // flushes took the loop a millisecond or more per attempt, while other
  // attempts waited to be started or finished (docs/PERFORMANCE.md).
  outcome_ = std::move(o);
  log_path_ = path;
  log_verbose_ = verbose;
  // Where a cluster ran the sandbox (runtime.h, AccountingArgv): asked on
  // the same pool thread, before the log is written, and only of a sandbox
  // that ran. Whatever it answers, the attempt's outcome stays as it is.
  if (!marker_.empty() && !awaiting_start_) {
    acct_argv_ = r_->runtime_.AccountingArgv(start_detail_);
    if (!acct_argv_.empty()) acct_env_ = r_->runtime_.Build(SandboxSpec{}).env;
  }
  log_work_.data = this;
  reported_ = true;
  uv_queue_work(
      r_->loop_, &log_work_,
      [](uv_work_t* w) {
        auto* self = static_cast<Execution*>(w->data);
        Guard(
            "cluster accounting", [&] { self->AskAccounting(); },
            [&](const std::string& why) { self->acct_warning_ = why; });
        Guard(
            "run log writer",
            [&] {
              self->log_text_ = self->LogText(self->outcome_, self->log_verbose_);
              self->log_status_ = Layout::CheckRealDir(self->log_path_.parent_path());
              if (self->log_status_.ok()) self->log_status_ = WriteFileAtomic(self->log_path_, self->log_text_);
            },
            [&](const std::string& why) { self->log_status_ = Status::IOError(why); });
      },
      [](uv_work_t* w, int) {
        auto* self = static_cast<Execution*>(w->data);
        Guard("run log written", [&] { self->LogWritten(); });
      });
}

// On the pool thread: runs the accounting command to its end or its time
// limit and keeps what it says on the run row. Touches only this attempt.
void Runner::Execution::AskAccounting() {
  if (acct_argv_.empty()) return;
  process::RunOptions options;
  options.timeout_ms = kAccountingTimeoutMs;
  options.output_cap = 64 * 1024;
  auto r = process::Run(acct_argv_, acct_env_, options);
  const std::string command = "`" + text::ForLog(JoinArgv(acct_argv_)) + "`";
  if (!r.ok()) {
    acct_warning_ = "cannot run " + command + ": " + r.status().message();
    return;
  }
  if (r->timed_out) {
    acct_warning_ = command + " did not answer within " + std::to_string(kAccountingTimeoutMs / 1000) + " s";
    return;
  }
  int code = r->exit.term_signal != 0 ? 128 + r->exit.term_signal : r->exit.exit_code;
  if (code != 0) {
    std::string why = text::LastLine(r->err);
    acct_warning_ = command + " exited with code " + std::to_string(code) + (why.empty() ? "" : ": " + why);
    return;
  }
  auto placed = r_->runtime_.ReadAccounting(r->out);
  if (!placed) {
    acct_warning_ = command + " said nothing usable: \"" + text::ForLog(text::Head(r->out, 200)) + "\"";
    return;
  }
  outcome_.run.node = placed->node;
  outcome_.run.cluster_state = placed->state;
}

void Runner::Execution::LogWritten() {
  if (acct_warning_) {
    spdlog::warn("job {} attempt {}: no node or cluster state recorded: {}", a_.job.id, a_.run.attempt,
                 text::ForLog(*acct_warning_));
  }
  if (log_status_.ok()) {
    outcome_.run.log_file = log_path_.string();
  } else {
    spdlog::error("job {}: cannot write run log: {}", a_.job.id, log_status_.message());
  }
  Job job = a_.job;
  r_->Finished(this, job, std::move(outcome_));
}

Runner::Runner(uv_loop_t* loop, const Layout& layout, const Runtime& runtime, RunnerOptions options, const Clock& clock,
               Done done, OutputCallback on_output, StartedCallback on_started)
    : loop_(loop),
      layout_(layout),
      runtime_(runtime),
      options_(std::move(options)),
      clock_(clock),
      done_(std::move(done)),
      on_output_(std::move(on_output)),
      on_started_(std::move(on_started)) {}

void Runner::StartHelper(const std::vector<std::string>& argv) {
  // A stop/kill helper command (docker stop NAME). Fire and forget: the
  // attempt's own exit is what the runner waits for. It gets the runtime's
  // own client environment (DOCKER_HOST and friends), so the stop command
  // reaches the same daemon the run did.
  process::StartDetached(loop_, argv, runtime_.Build(SandboxSpec{}).env);
}

Runner::~Runner() = default;

void Runner::Start(Attempt attempt) {
  auto* e = new Execution(this, std::move(attempt));
  active_[e->job().id] = e;
  e->Start();
}

void Runner::StopAll() {
  for (auto& [id, e] : active_) e->RequestStop(false);
}

bool Runner::Stop(JobId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return false;
  it->second->RequestStop(false);
  return true;
}

void Runner::Finished(Execution* e, const Job& job, RunOutcome outcome) {
  active_.erase(job.id);
  std::unique_ptr<Execution> owned(e);  // every handle is closed: safe to free
  // The daemon's own handling of the end; if it throws, the end is not
  // recorded and the attempt is recovered as lost at the next start.
  Guard("attempt ended", [&] { done_(job, std::move(outcome)); });
}

std::string ResultJson(const Job& job, const RunOutcome& o) {
  nlohmann::json r = {
      {"jobId", job.id},
      {"group", job.group},
      {"file", job.source_name ? nlohmann::json(*job.source_name) : nlohmann::json(nullptr)},
      {"state", ToString(o.job_state)},
      {"attempts", o.run.attempt},
      {"createdAt", FormatIsoUtc(job.created_at)},
      // A job cancelled before it ever ran has no run.
      {"startedAt", o.run.id != 0 ? nlohmann::json(FormatIsoUtc(o.run.started_at)) : nlohmann::json(nullptr)},
      {"finishedAt", o.run.finished_at ? nlohmann::json(FormatIsoUtc(*o.run.finished_at)) : nlohmann::json(nullptr)},
      {"durationMs", o.run.duration_ms.value_or(0)},
      {"exitCode", o.run.exit_code ? nlohmann::json(*o.run.exit_code) : nlohmann::json(nullptr)},
      {"runStatus", o.run.status},
      {"error", o.error ? nlohmann::json(*o.error) : nlohmann::json(nullptr)},
      {"droppedOutputs", o.dropped_outputs},
      {"stdoutTruncated", o.run.stdout_truncated},
      {"stderrTruncated", o.run.stderr_truncated},
  };
  r["result"] = nullptr;
  if (o.result) {
    auto parsed = nlohmann::json::parse(*o.result, nullptr, false);
    r["result"] = parsed.is_discarded() ? nlohmann::json(*o.result) : parsed;
  }
  if (o.new_session_id) r["newSessionId"] = *o.new_session_id;
  r["outputs"] = nlohmann::json::array();
  for (const auto& out : o.outputs) r["outputs"].push_back(nlohmann::json::parse(out));
  return text::Dump(r, 2) + "\n";
}

Result<std::string> WriteResultFile(const Layout& layout, const Job& job, const RunOutcome& o) {
  std::string name = job.source_name.value_or("job-" + std::to_string(job.id) + ".json");
  // The result goes back where the file came from: a job main enqueued for
  // another group reports to main.
  auto path = layout.ResultsDir(job.source_group.value_or(job.group)) / name;
  if (Status s = Layout::CheckRealDir(path.parent_path()); !s.ok()) return s;
  if (Status s = WriteFileAtomic(path, ResultJson(job, o)); !s.ok()) return s;
  return path.string();
}

}  // namespace dropq::runner
