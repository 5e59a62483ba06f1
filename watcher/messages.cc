#include "watcher/messages.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "base/guard.h"
#include "base/process.h"
#include "base/text.h"
#include "base/unique_fd.h"

namespace dropq {
namespace {

namespace fs = std::filesystem;
using watcher::ClaimedFile;
using watcher::DropFolder;
using watcher::GroupIdentity;
using watcher::Rejection;

std::string Errno(int e) { return std::strerror(e); }

using Fd = UniqueFd;

// One line appended to <dir>/<folder>.jsonl with O_APPEND, then fsync. A
// failed write is cut back off so the file never holds half a line.
Status AppendLine(const fs::path& dir, const std::string& folder, const std::string& line) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir.string() + ": " + ec.message());
  fs::path file = dir / (folder + ".jsonl");
  bool created = false;
  Fd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
  if (fd.get() < 0 && errno == ENOENT) {
    fd.Reset(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644));
    created = true;
  }
  if (fd.get() < 0) return Status::IOError("cannot open " + file.string() + ": " + Errno(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::IOError("cannot stat " + file.string() + ": " + Errno(errno));
  if (!S_ISREG(st.st_mode)) return Status::IOError(file.string() + " is not a regular file");
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      if (::ftruncate(fd.get(), st.st_size) != 0) {
        spdlog::warn("cannot cut a partial line off {}: {}", file.string(), Errno(errno));
      }
      return Status::IOError("cannot write " + file.string() + ": " + Errno(e));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return Status::IOError("cannot fsync " + file.string() + ": " + Errno(errno));
  if (created) {
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() >= 0) ::fsync(dfd.get());
  }
  return Status::Ok();
}

}  // namespace

std::string HookOutputTail(std::string_view bytes) {
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.remove_suffix(1);
  return text::ForLog(text::Tail(bytes, 200));
}

// Runs a host hook: argv (no shell), `input` on stdin, the last bytes of
// stdout and stderr kept (the stderr tail for the error). A small
// environment — PATH, HOME, LANG — so none of dropq's secrets reach it.
// Killed (its whole process group) after timeout_ms.
Status RunHook(const std::string& what, const std::vector<std::string>& argv, const std::string& input,
               std::int64_t timeout_ms, std::string* output) {
  static const std::string kPath = "/usr/local/bin:/usr/bin:/bin";
  std::vector<std::string> env = {"PATH=" + kPath, "LANG=C.UTF-8"};
  if (const char* home = std::getenv("HOME")) env.push_back(std::string("HOME=") + home);
  process::RunOptions options;
  options.input = input;
  options.timeout_ms = timeout_ms;
  options.output_cap = 4096;  // only the tails are quoted
  options.keep_tail = true;
  auto r = process::Run(argv, env, options);
  if (!r.ok()) {
    if (r.status().code() == Status::Code::kNotFound && argv[0].find('/') == std::string::npos) {
      return Status::IOError(what + ": " + argv[0] + " not found in " + kPath);
    }
    return Status::IOError(what + ": cannot run " + argv[0] + ": " + r.status().message());
  }
  if (output) *output = HookOutputTail(r->out + r->err);
  if (r->timed_out) return Status::IOError(what + " timed out after " + std::to_string(timeout_ms) + " ms");
  if (r->exit.term_signal == 0 && r->exit.exit_code == 0) return Status::Ok();
  std::string why = r->exit.term_signal == 0 ? what + " exited with code " + std::to_string(r->exit.exit_code)
                                             : what + " killed by signal " + std::to_string(r->exit.term_signal);
  std::string tail = HookOutputTail(r->err);
  return Status::IOError(tail.empty() ? why : why + ": " + tail);
}

namespace {

std::string MessageJson(const Message& m) {
  nlohmann::ordered_json j = {{"id", m.id},
                              {"type", "message"},
                              {"groupFolder", m.from},
                              {"chatJid", m.chat_jid},
                              {"targetGroup", m.to},
                              {"text", m.text},
                              {"createdAt", FormatIsoUtc(m.created_at)}};
  return text::Dump(j);
}

}  // namespace

MessageInbox::MessageInbox(uv_loop_t* loop, Store& store, const Layout& layout, MessageOptions options,
                           const Clock& clock)
    : loop_(loop),
      store_(store),
      messages_(store),
      layout_(layout),
      options_(std::move(options)),
      clock_(clock),
      folder_(watcher::DropKind::kMessages, layout, clock, std::move(options_.groups)) {}

Status MessageInbox::Reconcile() {
  std::vector<Delivery> again;
  Status s = folder_.Reconcile([&](const ClaimedFile& claimed) -> Result<bool> {
    auto found = messages_.FindByClaim(claimed.group, claimed.token);
    if (!found.ok()) return found.status();
    if (!*found) return false;  // never committed: handled afresh
    const Message& m = (*found)->message;
    if ((*found)->pending) {
      // At least once: it may have gone out just before the crash.
      spdlog::warn("{}/{}: message {} was interrupted before its delivery was recorded; delivering it (again)",
                   claimed.group, claimed.name, m.id);
      again.push_back({m, claimed, true});
      return true;
    }
    ::unlink(claimed.path.c_str());
    if (Status e = store_.AppendEvent(
            std::nullopt, claimed.group, "reconciled",
            text::Dump(nlohmann::json{{"file", claimed.name}, {"message_id", m.id}, {"action", "removed"}}));
        !e.ok()) {
      return e;
    }
    return true;
  });
  if (!s.ok()) return s;
  std::sort(again.begin(), again.end(),
            [](const Delivery& a, const Delivery& b) { return a.message.id < b.message.id; });
  for (auto& d : again) waiting_.push_back(std::move(d));
  StartNext();
  return Status::Ok();
}

Status MessageInbox::Flush() {
  DropFolder::Pass pass = folder_.Claim(clock_.NowMs());
  std::vector<Delivery> accepted;
  std::vector<Refused> refused;
  for (const auto& r : pass.bad_names) refused.push_back({r, std::nullopt});
  // (A name gone before it could be claimed leaves no row for messages/.)
  for (const auto& f : pass.claimed) {
    // What a file holds cannot stop the daemon: an exception while reading,
    // parsing or authorising it rejects that file with the reason.
    Guard(
        "reading a message file", [&] { Examine(f, accepted, refused); },
        [&](const std::string& why) {
          refused.push_back({{f, why}, std::nullopt});
        });
  }
  if (accepted.empty() && refused.empty()) return Status::Ok();

  auto fail = [&](const Status& s) {
    store_.Rollback();
    folder_.GiveBack(std::move(pass.claimed), pass.bad_names);
    return s;
  };
  if (Status s = store_.Begin(); !s.ok()) return fail(s);
  for (auto& d : accepted) {
    if (Status s = messages_.Record(d.message, d.file.name, d.file.token); !s.ok()) return fail(s);
  }
  for (const auto& r : refused) {
    const watcher::Rejection& why = r.rejection;
    if (r.parsed) {
      if (Status s =
              messages_.RecordRejected(why.file.group, r.parsed->chat_jid, r.parsed->text, clock_.NowMs(), why.reason);
          !s.ok()) {
        return fail(s);
      }
    }
    if (Status s = folder_.AuditRejection(store_, why, "message"); !s.ok()) return fail(s);
  }
  if (Status s = store_.Commit(); !s.ok()) return fail(s);

  // Recorded: from here a crash is finished by Reconcile().
  for (const auto& r : refused) {
    ++stats_.rejected;
    folder_.Reject(r.rejection);
  }
  for (auto& d : accepted) waiting_.push_back(std::move(d));
  StartNext();
  return Status::Ok();
}

void MessageInbox::Examine(const ClaimedFile& f, std::vector<Delivery>& accepted, std::vector<Refused>& refused) {
  const GroupIdentity* from = folder_.FindGroup(f.group);
  if (from == nullptr) {
    refused.push_back({{f, "group \"" + f.group + "\" is not configured"}, std::nullopt});
    return;
  }
  auto content = watcher::ReadClaimed(f.path, options_.max_file_bytes);
  if (!content.ok()) {
    refused.push_back({{f, content.status().message()}, std::nullopt});
    return;
  }
  auto msg = watcher::ParseMessageFile(*content);
  if (!msg.ok()) {
    refused.push_back({{f, msg.status().message()}, std::nullopt});
    return;
  }
  auto decision = watcher::AuthorizeMessage(*from, folder_.groups(), *msg);
  if (!decision.ok()) {
    refused.push_back({{f, decision.status().message()}, std::move(*msg)});
    return;
  }
  accepted.push_back({{0, f.group, decision->folder, msg->chat_jid, msg->text, clock_.NowMs()}, f});
}

// One delivery on the pool: everything the pool thread reads is its own copy.
struct MessageInbox::Work {
  uv_work_t req{};
  MessageInbox* self = nullptr;
  Delivery delivery;
  std::string json;
  std::vector<std::string> hook;
  fs::path outbox;
  int timeout_ms = 0;
  Status outcome;
};

void MessageInbox::StartNext() {
  if (in_flight_ || stopping_ || waiting_.empty()) return;
  auto w = std::make_unique<Work>();
  w->self = this;
  w->delivery = std::move(waiting_.front());
  waiting_.pop_front();
  w->json = MessageJson(w->delivery.message);
  w->hook = options_.on_message;
  w->outbox = layout_.root() / "outbox";
  w->timeout_ms = options_.hook_timeout_ms;
  w->req.data = w.get();
  if (int rc = uv_queue_work(loop_, &w->req, &MessageInbox::DeliverOnPool, &MessageInbox::Delivered); rc != 0) {
    // Left pending, its file claimed: the next start delivers it.
    spdlog::error("message {}: cannot start its delivery: {}", w->delivery.message.id, uv_strerror(rc));
    return;
  }
  in_flight_ = true;
  w.release();  // Delivered() owns it
}

void MessageInbox::DeliverOnPool(uv_work_t* req) {
  auto* w = static_cast<Work*>(req->data);
  Guard(
      "delivering a message",
      [&] {
        w->outcome = w->hook.empty() ? AppendLine(w->outbox, w->delivery.message.to, w->json + "\n")
                                     : RunHook("on_message", w->hook, w->json, w->timeout_ms);
      },
      [&](const std::string& why) { w->outcome = Status::IOError(why); });
}

void MessageInbox::Delivered(uv_work_t* req, int /*status*/) {
  std::unique_ptr<Work> w(static_cast<Work*>(req->data));
  MessageInbox* self = w->self;
  Guard("message delivered", [&] {
    self->in_flight_ = false;
    self->Finish(w->delivery, w->outcome);
    self->StartNext();
    if (self->options_.after_delivery) self->options_.after_delivery();
  });
}

void MessageInbox::Finish(const Delivery& d, const Status& outcome) {
  const Message& m = d.message;
  if (outcome.ok()) {
    ++stats_.delivered;
    spdlog::info("message {} from {} delivered to {}", m.id, m.from, m.chat_jid);
  } else {
    ++stats_.failed;
    spdlog::error("message {} from {} to {} not delivered: {}", m.id, m.from, m.chat_jid, outcome.message());
  }
  Status s = store_.Begin();
  if (s.ok()) s = messages_.RecordDelivery(m.id, outcome, clock_.NowMs());
  if (s.ok() && d.again) {
    s = store_.AppendEvent(
        std::nullopt, d.file.group, "reconciled",
        text::Dump(nlohmann::json{{"file", d.file.name}, {"message_id", m.id}, {"action", "delivered"}}));
  }
  if (s.ok()) s = store_.Commit();
  if (!s.ok()) {
    // Still pending, its file still claimed: the next start delivers it
    // again (at least once).
    store_.Rollback();
    spdlog::error("message {}: cannot record its delivery, left for the next start: {}", m.id, s.message());
    return;
  }
  if (::unlink(d.file.path.c_str()) != 0) spdlog::warn("cannot remove {}: {}", d.file.path.string(), Errno(errno));
}

void MessageInbox::StopDelivering() {
  if (stopping_) return;
  stopping_ = true;
  if (!waiting_.empty()) {
    spdlog::info("{} message(s) not delivered yet; they are delivered at the next start", waiting_.size());
  }
}

}  // namespace dropq
