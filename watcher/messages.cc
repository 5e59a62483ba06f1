#include "watcher/messages.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "base/process.h"
#include "base/text.h"
#include "base/unique_fd.h"

namespace dropq {
namespace {

namespace fs = std::filesystem;
using watcher::ClaimedFile;
using watcher::GroupIdentity;
using watcher::MessageCommand;

bool EndsWithJson(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 && name[0] != '.';
}

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

std::string Tail(const std::string& s) {
  std::string_view t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
  return text::Tail(t, 200);
}

// Runs the hook: argv (no shell), `input` on stdin, stdout discarded, the
// last bytes of stderr kept for the error. A small environment — PATH, HOME,
// LANG — so none of dropq's secrets reach it. Killed (its whole process
// group) after timeout_ms.
Status RunHook(const std::vector<std::string>& argv, const std::string& input, int timeout_ms) {
  static const std::string kPath = "/usr/local/bin:/usr/bin:/bin";
  std::vector<std::string> env = {"PATH=" + kPath, "LANG=C.UTF-8"};
  if (const char* home = std::getenv("HOME")) env.push_back(std::string("HOME=") + home);
  process::RunOptions options;
  options.input = input;
  options.timeout_ms = timeout_ms;
  options.output_cap = 4096;  // stdout is not wanted; stderr's tail is quoted
  options.keep_tail = true;
  auto r = process::Run(argv, env, options);
  if (!r.ok()) {
    if (r.status().code() == Status::Code::kNotFound && argv[0].find('/') == std::string::npos) {
      return Status::IOError("on_message: " + argv[0] + " not found in " + kPath);
    }
    return Status::IOError("on_message: cannot run " + argv[0] + ": " + r.status().message());
  }
  if (r->timed_out) return Status::IOError("on_message timed out after " + std::to_string(timeout_ms) + " ms");
  if (r->exit.term_signal == 0 && r->exit.exit_code == 0) return Status::Ok();
  std::string why = r->exit.term_signal == 0 ? "on_message exited with code " + std::to_string(r->exit.exit_code)
                                             : "on_message killed by signal " + std::to_string(r->exit.term_signal);
  std::string tail = Tail(r->err);
  return Status::IOError(tail.empty() ? why : why + ": " + tail);
}

using Message = MessageInbox::Message;

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

MessageInbox::MessageInbox(Store& store, const Layout& layout, MessageOptions options, const Clock& clock)
    : store_(store), layout_(layout), options_(std::move(options)), clock_(clock) {}

fs::path MessageInbox::ClaimedDir(const std::string& group) const { return layout_.ClaimedDir(group) / "messages"; }

void MessageInbox::Add(const std::string& group, const std::string& name) {
  if (!EndsWithJson(name) || name.find('/') != std::string::npos) return;
  pending_.emplace_back(group, name);
}

void MessageInbox::ScanAll() {
  for (const auto& g : options_.groups) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(layout_.MessagesDir(g.folder), ec)) {
      Add(g.folder, entry.path().filename().string());
    }
    if (ec) spdlog::warn("cannot scan {}: {}", layout_.MessagesDir(g.folder).string(), ec.message());
  }
}

const GroupIdentity* MessageInbox::FindGroup(const std::string& folder) const {
  for (const auto& g : options_.groups) {
    if (g.folder == folder) return &g;
  }
  return nullptr;
}

Status MessageInbox::Reconcile() {
  for (const auto& g : options_.groups) {
    std::error_code ec;
    fs::path dir = ClaimedDir(g.folder);
    if (!fs::exists(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      auto claimed = watcher::ParseClaimedName(g.folder, entry.path());
      if (!claimed) {
        spdlog::warn("ignoring {}: not a name dropq gives claimed files", entry.path().string());
        continue;
      }
      auto& q = store_
                    .Prepare("SELECT json_extract(detail, '$.message_id'), json_extract(detail, '$.to_group') "
                             "FROM job_events WHERE event = 'message' AND group_folder = ? "
                             "AND json_extract(detail, '$.claim') = ? ORDER BY id DESC LIMIT 1")
                    .Use()
                    .Bind(1, g.folder)
                    .Bind(2, claimed->token);
      auto row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) {
        claimed_.push_back(std::move(*claimed));  // never committed: handled afresh
        continue;
      }
      Message m;
      m.id = q.Int(0);
      m.to = q.Text(1);
      q.Use();  // release the statement before the next one
      auto& r = store_
                    .Prepare("SELECT group_folder, chat_jid, text, created_at, delivery_state FROM messages "
                             "WHERE id = ?")
                    .Use()
                    .Bind(1, m.id);
      auto found = r.Step();
      if (!found.ok()) return found.status();
      std::string action = "removed";
      bool still_pending = *found && r.Text(4) == "pending";
      if (still_pending) {
        m.from = r.Text(0);
        m.chat_jid = r.Text(1);
        m.text = r.Text(2);
        m.created_at = r.Time(3);
      }
      r.Use();
      if (still_pending) {
        // At least once: it may have gone out just before the crash.
        spdlog::warn("{}/{}: message {} was interrupted before its delivery was recorded; delivering it (again)",
                     g.folder, claimed->name, m.id);
        if (Status s = Deliver(m); !s.ok()) return s;
        action = "delivered";
      }
      ::unlink(claimed->path.c_str());
      if (Status s = store_.AppendEvent(
              std::nullopt, g.folder, "reconciled",
              text::Dump(nlohmann::json{{"file", claimed->name}, {"message_id", m.id}, {"action", action}}));
          !s.ok()) {
        return s;
      }
    }
    if (ec) return Status::IOError("cannot scan " + dir.string() + ": " + ec.message());
  }
  return Status::Ok();
}

Status MessageInbox::Flush() {
  std::vector<ClaimedFile> batch = std::move(claimed_);
  claimed_.clear();
  TimeMs now = clock_.NowMs();
  std::map<std::string, bool> usable;  // one lstat per group per pass
  for (const auto& [group, name] : pending_) {
    // messages/ is the group's to change: never claim through a symlink a
    // group put in its place (it could make dropq move other files).
    auto u = usable.find(group);
    if (u == usable.end()) {
      Status s = Layout::CheckRealDir(layout_.MessagesDir(group));
      if (!s.ok()) spdlog::error("group {}: not reading messages: {}", group, s.message());
      u = usable.emplace(group, s.ok()).first;
    }
    if (!u->second) continue;
    if (auto problem = watcher::DroppedNameProblem(name)) {
      // Never claimed (see watcher/claim.h): rejected from messages/ itself,
      // if it is still there (moving it makes an event for the same name).
      ClaimedFile f{group, name, watcher::NewClaimToken(now), layout_.MessagesDir(group) / name};
      struct stat st {};
      if (::lstat(f.path.c_str(), &st) != 0) continue;
      if (Status s = Reject(f, *problem, nullptr); !s.ok()) {
        spdlog::error("{}/messages: cannot record a rejection, will retry: {}", group, s.message());
      }
      continue;
    }
    fs::path dir = ClaimedDir(group);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      spdlog::error("cannot create {}: {}", dir.string(), ec.message());
      continue;
    }
    auto c = watcher::ClaimFile(group, layout_.MessagesDir(group), name, dir, now);
    if (c.ok()) {
      batch.push_back(std::move(*c));
    } else if (c.status().code() != Status::Code::kNotFound) {
      spdlog::error("{}", c.status().message());
    }
  }
  pending_.clear();

  Status first;
  for (const auto& f : batch) {
    Status s = Handle(f);
    if (!s.ok()) {
      spdlog::error("{}/{}: message not handled, will retry: {}", f.group, f.name, s.message());
      claimed_.push_back(f);
      if (first.ok()) first = s;
    }
  }
  return first;
}

Status MessageInbox::Handle(const ClaimedFile& f) {
  const GroupIdentity* from = FindGroup(f.group);
  if (from == nullptr) return Reject(f, "group \"" + f.group + "\" is not configured", nullptr);
  auto content = watcher::ReadClaimed(f.path, options_.max_file_bytes);
  if (!content.ok()) return Reject(f, content.status().message(), nullptr);
  auto msg = watcher::ParseMessageFile(*content);
  if (!msg.ok()) return Reject(f, msg.status().message(), nullptr);
  auto decision = watcher::AuthorizeMessage(*from, options_.groups, *msg);
  if (!decision.ok()) return Reject(f, decision.status().message(), &*msg);

  Message m{0, f.group, decision->folder, msg->chat_jid, msg->text, clock_.NowMs()};
  auto fail = [&](const Status& s) {
    store_.Rollback();
    return s;
  };
  if (Status s = store_.Begin(); !s.ok()) return fail(s);
  if (Status s = store_
                     .Prepare("INSERT INTO messages (group_folder, chat_jid, text, created_at, delivery_state) "
                              "VALUES (?, ?, ?, ?, 'pending')")
                     .Use()
                     .Bind(1, m.from)
                     .Bind(2, m.chat_jid)
                     .Bind(3, m.text)
                     .BindTime(4, m.created_at)
                     .Run();
      !s.ok()) {
    return fail(s);
  }
  m.id = store_.LastInsertRowId();
  nlohmann::json detail = {{"file", f.name},    {"claim", f.token},      {"message_id", m.id},
                           {"chat_jid", m.chat_jid}, {"to_group", m.to}, {"text_bytes", m.text.size()}};
  if (Status s = store_.AppendEvent(std::nullopt, f.group, "message",
                                    text::Dump(detail));
      !s.ok()) {
    return fail(s);
  }
  if (Status s = store_.Commit(); !s.ok()) return fail(s);

  // Recorded: from here a crash is finished by Reconcile().
  if (Status s = Deliver(m); !s.ok()) return s;
  if (::unlink(f.path.c_str()) != 0) spdlog::warn("cannot remove {}: {}", f.path.string(), Errno(errno));
  return Status::Ok();
}

Status MessageInbox::Deliver(const Message& m) {
  const std::int64_t id = m.id;
  std::string json = MessageJson(m);
  Status delivered = options_.on_message.empty()
                         ? AppendLine(layout_.root() / "outbox", m.to, json + "\n")
                         : RunHook(options_.on_message, json, options_.hook_timeout_ms);
  if (delivered.ok()) {
    ++stats_.delivered;
    spdlog::info("message {} from {} delivered to {}", id, m.from, m.chat_jid);
  } else {
    ++stats_.failed;
    spdlog::error("message {} from {} to {} not delivered: {}", id, m.from, m.chat_jid, delivered.message());
  }
  return store_
      .Prepare("UPDATE messages SET delivery_state = ?, delivered_at = ?, error = ? WHERE id = ?")
      .Use()
      .Bind(1, delivered.ok() ? "delivered" : "failed")
      .BindTime(2, delivered.ok() ? std::optional<TimeMs>(clock_.NowMs()) : std::nullopt)
      .Bind(3, delivered.ok() ? std::optional<std::string>() : std::optional<std::string>(delivered.message()))
      .Bind(4, id)
      .Run();
}

Status MessageInbox::Reject(const ClaimedFile& f, const std::string& reason, const MessageCommand* parsed) {
  auto fail = [&](const Status& s) {
    store_.Rollback();
    return s;
  };
  if (Status s = store_.Begin(); !s.ok()) return fail(s);
  if (parsed != nullptr) {
    if (Status s = store_
                       .Prepare("INSERT INTO messages (group_folder, chat_jid, text, created_at, delivery_state, "
                                "error) VALUES (?, ?, ?, ?, 'rejected', ?)")
                       .Use()
                       .Bind(1, f.group)
                       .Bind(2, parsed->chat_jid)
                       .Bind(3, parsed->text)
                       .BindTime(4, clock_.NowMs())
                       .Bind(5, reason)
                       .Run();
        !s.ok()) {
      return fail(s);
    }
  }
  nlohmann::json d = {{"file", text::ForLog(f.name)}, {"type", "message"}, {"reason", reason}};
  if (Status s = store_.AppendEvent(std::nullopt, f.group, "rejected",
                                    text::Dump(d));
      !s.ok()) {
    return fail(s);
  }
  if (Status s = store_.Commit(); !s.ok()) return fail(s);
  ++stats_.rejected;
  spdlog::warn("{}/messages/{} rejected: {}", f.group, f.name, reason);
  MoveToErrors(f, reason);
  return Status::Ok();
}

void MessageInbox::MoveToErrors(const ClaimedFile& f, const std::string& reason) {
  // As for job files: the reason written first, the name made safe when
  // the file's own cannot be used (watcher/claim.h).
  watcher::MoveToErrors(layout_.ErrorsDir(), f, reason, clock_.NowMs());
}

}  // namespace dropq
