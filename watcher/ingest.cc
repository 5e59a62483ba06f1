#include "watcher/ingest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "watcher/job_file.h"
#include "base/guard.h"
#include "base/text.h"

namespace dropq::watcher {
namespace {

namespace fs = std::filesystem;

bool EndsWithJson(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 && name[0] != '.';
}

}  // namespace

Ingestor::Ingestor(Store& store, const Layout& layout, IngestOptions options, const Clock& clock,
                   CommandHandler* commands)
    : store_(store), layout_(layout), options_(std::move(options)), clock_(clock), commands_(commands) {}

void Ingestor::Add(const std::string& group, const std::string& name) {
  if (!EndsWithJson(name) || name.find('/') != std::string::npos) return;
  pending_.emplace_back(group, name);
}

void Ingestor::ScanAll() {
  for (const auto& g : options_.groups) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(layout_.TasksDir(g.folder), ec)) {
      Add(g.folder, entry.path().filename().string());
    }
    if (ec) spdlog::warn("cannot scan {}: {}", layout_.TasksDir(g.folder).string(), ec.message());
  }
}

Status Ingestor::Reconcile() {
  for (const auto& g : options_.groups) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(layout_.ClaimedDir(g.folder), ec)) {
      auto claimed = ParseClaimedName(g.folder, entry.path());
      if (!claimed) {
        spdlog::warn("ignoring {}: not a name dropq gives claimed files", entry.path().string());
        continue;
      }
      auto known = store_.HasClaim(claimed->token);
      if (!known.ok()) return known.status();
      if (*known) {
        // Committed before the crash, not yet removed: removing it now is
        // the step that was interrupted.
        ::unlink(claimed->path.c_str());
        if (Status s = store_.AppendEvent(std::nullopt, g.folder, "reconciled",
                                          text::Dump(nlohmann::json{{"file", claimed->name}, {"action", "removed"}}));
            !s.ok()) {
          return s;
        }
      } else {
        claimed_.push_back(std::move(*claimed));
      }
    }
    if (ec) return Status::IOError("cannot scan " + layout_.ClaimedDir(g.folder).string() + ": " + ec.message());
  }
  return Status::Ok();
}

bool Ingestor::MaySettle(const ClaimedFile& f, TimeMs now) {
  if (options_.settle_ms <= 0) return false;
  if (settled_.erase(f.token) > 0) return false;  // it had its second look
  struct stat st {};
  if (::lstat(f.path.c_str(), &st) != 0) return false;
  TimeMs mtime = static_cast<TimeMs>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  if (now - mtime >= options_.settle_ms) return false;
  spdlog::info("{}/{}: does not parse yet and was just written; reading it again in {} ms", f.group, f.name,
               options_.settle_ms);
  settled_.insert(f.token);
  settling_.push_back({f, now + options_.settle_ms});
  return true;
}

const IngestGroup* Ingestor::FindGroup(const std::string& folder) const {
  for (const auto& g : options_.groups) {
    if (g.folder == folder) return &g;
  }
  return nullptr;
}

std::optional<std::int64_t> Ingestor::NextSettleDelayMs() const {
  std::optional<TimeMs> first;
  for (const auto& s : settling_) first = std::min(first.value_or(s.due), s.due);
  if (!first) return std::nullopt;
  return std::max<std::int64_t>(0, *first - clock_.NowMs());
}

// Reads, parses and authorises one claimed file: it becomes an accepted job,
// a rejection, a control command, or is left to settle.
void Ingestor::Examine(const ClaimedFile& f, TimeMs now, std::vector<Accepted>& accepted,
                       std::vector<Rejection>& rejected, std::vector<std::pair<const ClaimedFile*, JobCommand>>& controls) {
  auto content = ReadClaimed(f.path, options_.max_file_bytes);
  if (!content.ok()) {
    rejected.push_back({f, content.status().message()});
    return;
  }
  auto cmd = ParseJobFile(*content);
  if (!cmd.ok()) {
    if (IsJsonSyntaxError(cmd.status()) && MaySettle(f, now)) return;
    rejected.push_back({f, cmd.status().message()});
    return;
  }
  const IngestGroup* from = FindGroup(f.group);
  auto* req = std::get_if<RunRequest>(&*cmd);
  if (req == nullptr) {
    controls.emplace_back(&f, std::move(*cmd));  // applied after the batch commits
    return;
  }
  auto decision = Authorize(*from, options_.groups, *cmd);
  if (!decision.ok()) {
    rejected.push_back({f, decision.status().message()});
    return;
  }
  accepted.push_back({&f, decision->folder, std::move(*req), Sha256Hex(*content)});
}

Result<std::vector<QueuedJob>> Ingestor::Flush() {
  Result<std::vector<QueuedJob>> out = std::vector<QueuedJob>();
  Guard("ingest", [&] { out = FlushBatch(); }, [&](const std::string& why) {
    // Nothing of the batch is lost: its transaction is undone, and the
    // files it had claimed are found again in claimed/ (Reconcile).
    if (store_.InTransaction()) store_.Rollback();
    claimed_.clear();
    settling_.clear();
    if (Status s = Reconcile(); !s.ok()) spdlog::error("ingest: cannot look at claimed files again: {}", s.message());
    out = Status::IOError(why);
  });
  return out;
}

Result<std::vector<QueuedJob>> Ingestor::FlushBatch() {
  std::vector<ClaimedFile> batch = std::move(claimed_);
  claimed_.clear();
  TimeMs now = clock_.NowMs();
  for (auto it = settling_.begin(); it != settling_.end();) {
    if (it->due > now) {
      ++it;
      continue;
    }
    batch.push_back(std::move(it->file));
    it = settling_.erase(it);
  }
  std::map<std::string, bool> usable;  // one lstat per group per pass
  std::vector<Rejection> bad_names;  // rejected by their name alone, still in tasks/
  std::vector<std::pair<std::string, std::string>> vanished;
  std::set<std::pair<std::string, std::string>> seen;  // a name noticed twice in a pass is claimed once
  for (auto& [group, name] : pending_) {
    if (!seen.insert({group, name}).second) continue;
    auto u = usable.find(group);
    if (u == usable.end()) {
      Status s = Layout::CheckRealDir(layout_.TasksDir(group));
      if (!s.ok()) spdlog::error("group {}: not ingesting: {}", group, s.message());
      u = usable.emplace(group, s.ok()).first;
    }
    if (!u->second) continue;
    if (auto problem = DroppedNameProblem(name)) {
      // Never claimed: "<token>.<name>" may not even fit. It goes from
      // tasks/ to errors/ under a safe name once its audit row commits.
      fs::path path = layout_.TasksDir(group) / name;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        // Already moved (the move's own event), or removed by the writer.
        if (!RecentlyClaimed(group, name)) vanished.emplace_back(group, name);
        continue;
      }
      NoteClaimed(group, name);
      bad_names.push_back({{group, name, NewClaimToken(now), path}, *problem});
      continue;
    }
    auto c = ClaimFile(group, layout_.TasksDir(group), name, layout_.ClaimedDir(group), now);
    if (c.ok()) {
      NoteClaimed(group, name);
      batch.push_back(std::move(*c));
    } else if (c.status().code() != Status::Code::kNotFound) {
      spdlog::error("{}", c.status().message());
    } else if (!RecentlyClaimed(group, name)) {
      vanished.emplace_back(group, name);
    }
  }
  pending_.clear();

  // On a store error nothing is lost: the batch is tried again next Flush
  // (files left to settle wait for their own turn).
  auto fail = [&](const Status& s) -> Result<std::vector<QueuedJob>> {
    store_.Rollback();
    std::erase_if(batch, [&](const ClaimedFile& f) {
      return std::any_of(settling_.begin(), settling_.end(), [&](const Settling& st) { return st.file.token == f.token; });
    });
    claimed_ = std::move(batch);
    for (auto& r : bad_names) pending_.emplace_back(r.file.group, r.file.name);
    return s;
  };
  std::vector<Accepted> accepted;
  std::vector<Rejection> rejected = bad_names;
  std::vector<std::pair<const ClaimedFile*, JobCommand>> controls;
  for (const auto& f : batch) {
    // What a file holds cannot stop the daemon: an exception while reading,
    // parsing or authorising it rejects that file with the reason.
    Guard("reading a dropped file", [&] { Examine(f, now, accepted, rejected, controls); },
          [&](const std::string& why) { rejected.push_back({f, why}); });
  }
  if (accepted.empty() && rejected.empty() && controls.empty() && vanished.empty()) return std::vector<QueuedJob>();

  // The per-group quota, counted once per group per pass.
  std::map<std::string, std::int64_t> queued_now;
  for (auto it = accepted.begin(); it != accepted.end();) {
    auto q = queued_now.find(it->target);
    if (q == queued_now.end()) {
      auto n = store_.CountQueued(it->target);
      if (!n.ok()) return fail(n.status());
      q = queued_now.emplace(it->target, *n).first;
    }
    if (q->second >= options_.max_queued_per_group) {
      rejected.push_back({*it->file, "group \"" + it->target + "\" already has " + std::to_string(q->second) +
                                         " queued jobs (max_queued_per_group is " +
                                         std::to_string(options_.max_queued_per_group) + ")"});
      it = accepted.erase(it);
    } else {
      ++q->second;
      ++it;
    }
  }

  std::vector<QueuedJob> queued;
  std::vector<bool> duplicate(accepted.size(), false);
  if (Status s = store_.Begin(); !s.ok()) return fail(s);
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    auto& a = accepted[i];
    auto ins = store_.InsertJob(a.target, a.req, {a.file->group, a.file->name, a.sha256, a.file->token},
                                options_.default_max_attempts, options_.default_max_interruptions);
    if (!ins.ok()) return fail(ins.status());
    duplicate[i] = ins->duplicate;
    if (!ins->duplicate) queued.push_back({ins->id, a.target, a.req.priority, a.req.run_at.value_or(now)});
  }
  for (const auto& r : rejected) {
    nlohmann::json d = {{"file", text::ForLog(r.file.name)}, {"reason", r.reason}};
    if (Status s = store_.AppendEvent(std::nullopt, r.file.group, "rejected", text::Dump(d)); !s.ok()) return fail(s);
  }
  for (const auto& [group, name] : vanished) {
    nlohmann::json d = {{"file", text::ForLog(name)}, {"reason", "removed from tasks/ before dropq could claim it"}};
    if (Status s = store_.AppendEvent(std::nullopt, group, "vanished", text::Dump(d)); !s.ok()) return fail(s);
  }
  if (commands_ && !queued.empty()) commands_->Queuing(queued);
  if (Status s = store_.Commit(); !s.ok()) {
    if (commands_ && !queued.empty()) commands_->Unqueued(queued);
    return fail(s);
  }

  // Only now, with the jobs durable, do the files go.
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    if (::unlink(accepted[i].file->path.c_str()) != 0) {
      spdlog::warn("cannot remove {}: {}", accepted[i].file->path.string(), std::strerror(errno));
    }
    if (duplicate[i]) {
      ++stats_.duplicates;
      spdlog::info("{}/{}: duplicate of an earlier job (same id), not queued again", accepted[i].file->group,
                   accepted[i].file->name);
    } else {
      ++stats_.accepted;
    }
  }
  for (const auto& r : rejected) {
    ++stats_.rejected;
    spdlog::warn("{}/{} rejected: {}", r.file.group, r.file.name, r.reason);
    MoveToErrors(r);
  }
  for (auto& [file, cmd] : controls) ApplyControl(*file, cmd);
  return queued;
}

void Ingestor::ApplyControl(const ClaimedFile& file, const JobCommand& cmd) {
  // A copy: applying a register_group replaces the list FindGroup points into.
  const IngestGroup from = *FindGroup(file.group);
  Result<std::string> done =
      Status::InvalidArgument("type \"" + std::string(TypeName(cmd)) + "\" is not supported");
  // An exception while applying it rejects this file with the reason; the
  // others of the batch are applied as usual.
  // One transaction holds what the command changed and its verdict (an
  // `applied` event, docs/DESIGN.md "One signal to wait on"); a command
  // that fails is undone whole and its `rejected` event recorded instead.
  if (Status s = store_.Begin(); !s.ok()) {
    spdlog::error("cannot apply {}: {}; trying again next pass", file.name, s.message());
    claimed_.push_back(file);
    return;
  }
  if (commands_) {
    Guard("applying a control file", [&] { done = commands_->Apply(from, file, cmd); },
          [&](const std::string& why) { done = Status::InvalidArgument(why); });
  }
  if (done.ok()) {
    auto result = nlohmann::json::parse(*done, nullptr, false);
    if (result.is_discarded()) result = *done;
    nlohmann::json d = {{"file", text::ForLog(file.name)}, {"type", TypeName(cmd)}, {"result", result}};
    Status s = store_.AppendEvent(std::nullopt, file.group, "applied", text::Dump(d));
    if (s.ok()) s = store_.Commit();
    if (!s.ok()) {
      store_.Rollback();
      spdlog::error("cannot record that {} was applied: {}; trying again next pass", file.name, s.message());
      claimed_.push_back(file);  // applying is idempotent (CommandHandler)
      return;
    }
  } else {
    store_.Rollback();
  }
  if (!done.ok()) {
    Rejection r{file, done.status().message()};
    nlohmann::json d = {{"file", text::ForLog(file.name)}, {"type", TypeName(cmd)}, {"reason", r.reason}};
    if (Status s = store_.AppendEvent(std::nullopt, file.group, "rejected", text::Dump(d)); !s.ok()) {
      spdlog::error("cannot record rejection of {}: {}", file.name, s.message());
      claimed_.push_back(file);  // try again next pass rather than lose the audit row
      return;
    }
    ++stats_.rejected;
    spdlog::warn("{}/{} rejected: {}", file.group, file.name, r.reason);
    MoveToErrors(r);
    return;
  }
  spdlog::info("{}/{}: {} applied", file.group, file.name, TypeName(cmd));
  if (::unlink(file.path.c_str()) != 0) {
    spdlog::warn("cannot remove {}: {}", file.path.string(), std::strerror(errno));
  }
}

void Ingestor::MoveToErrors(const Rejection& r) {
  watcher::MoveToErrors(layout_.ErrorsDir(), r.file, r.reason, clock_.NowMs());
}

// Names claimed lately, so a second event for a name this ingestor already
// took (a file written in place makes several) is not taken for a file
// someone removed before it could be claimed.
void Ingestor::NoteClaimed(const std::string& group, const std::string& name) {
  std::string key = group + "/" + name;
  if (!recent_.insert(key).second) return;
  recent_order_.push_back(std::move(key));
  if (recent_order_.size() > kRecentClaims) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

bool Ingestor::RecentlyClaimed(const std::string& group, const std::string& name) const {
  return recent_.count(group + "/" + name) > 0;
}

}  // namespace dropq::watcher
