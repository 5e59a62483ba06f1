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
#include "watcher/after.h"
#include "watcher/job_file.h"
#include "base/guard.h"
#include "base/text.h"

namespace dropq::watcher {

Ingestor::Ingestor(Store& store, const Layout& layout, IngestOptions options, const Clock& clock,
                   CommandHandler* commands)
    : store_(store),
      layout_(layout),
      options_(std::move(options)),
      clock_(clock),
      commands_(commands),
      folder_(DropKind::kTasks, layout, clock, std::move(options_.groups)) {}

Status Ingestor::Reconcile() {
  return folder_.Reconcile([&](const ClaimedFile& claimed) -> Result<bool> {
    auto known = store_.HasClaim(claimed.token);
    if (!known.ok()) return known.status();
    if (!*known) return false;
    // Committed before the crash, not yet removed: removing it now is the
    // step that was interrupted.
    ::unlink(claimed.path.c_str());
    if (Status s = store_.AppendEvent(std::nullopt, claimed.group, "reconciled",
                                      text::Dump(nlohmann::json{{"file", claimed.name}, {"action", "removed"}}));
        !s.ok()) {
      return s;
    }
    return true;
  });
}

bool Ingestor::MaySettle(const ClaimedFile& f, TimeMs now) {
  if (options_.settle_ms <= 0) return false;
  if (settled_.erase(f.token) > 0) return false;  // it had its second look
  struct stat st {};
  if (::lstat(f.path.c_str(), &st) != 0) return false;
#ifdef __APPLE__
  const timespec& mt = st.st_mtimespec;  // macOS spells POSIX's st_mtim so
#else
  const timespec& mt = st.st_mtim;
#endif
  TimeMs mtime = static_cast<TimeMs>(mt.tv_sec) * 1000 + mt.tv_nsec / 1'000'000;
  if (now - mtime >= options_.settle_ms) return false;
  spdlog::info("{}/{}: does not parse yet and was just written; reading it again in {} ms", f.group, f.name,
               options_.settle_ms);
  settled_.insert(f.token);
  settling_.push_back({f, now + options_.settle_ms});
  return true;
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
                       std::vector<Rejection>& rejected,
                       std::vector<std::pair<const ClaimedFile*, JobCommand>>& controls) {
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
  const IngestGroup* from = folder_.FindGroup(f.group);
  auto* req = std::get_if<RunRequest>(&*cmd);
  if (req == nullptr) {
    controls.emplace_back(&f, std::move(*cmd));  // applied after the batch commits
    return;
  }
  auto decision = Authorize(*from, folder_.groups(), *cmd);
  if (!decision.ok()) {
    rejected.push_back({f, decision.status().message()});
    return;
  }
  accepted.push_back({&f, decision->folder, std::move(*req), Sha256Hex(*content)});
}

Result<std::vector<QueuedJob>> Ingestor::Flush() {
  if (Status s = store_.Begin(); !s.ok()) return s;
  if (Status s = Stage(); !s.ok()) {
    store_.Rollback();
    return s;
  }
  if (Status s = store_.Commit(); !s.ok()) {
    store_.Rollback();
    Abandon();
    return s;
  }
  return Settle();
}

Status Ingestor::Stage() {
  Status out;
  Guard(
      "ingest", [&] { out = StageBatch(); },
      [&](const std::string& why) {
        // Nothing of the batch is lost: its savepoint is undone, and the files
        // it had claimed are found again in claimed/ (Reconcile).
        UndoSavepoint();
        staged_.reset();
        settling_.clear();
        if (Status s = Reconcile(); !s.ok())
          spdlog::error("ingest: cannot look at claimed files again: {}", s.message());
        out = Status::IOError(why);
      });
  return out;
}

void Ingestor::UndoSavepoint() {
  if (!savepoint_) return;
  savepoint_ = false;
  if (Status u = store_.RollbackTo("ingest"); !u.ok())
    spdlog::error("ingest: cannot undo its savepoint: {}", u.message());
  if (Status u = store_.Release("ingest"); !u.ok())
    spdlog::error("ingest: cannot release its savepoint: {}", u.message());
}

Status Ingestor::StageBatch() {
  staged_.reset();
  TimeMs now = clock_.NowMs();
  Staged st;
  DropFolder::Pass pass = folder_.Claim(now);
  st.batch = std::move(pass.claimed);
  for (auto it = settling_.begin(); it != settling_.end();) {
    if (it->due > now) {
      ++it;
      continue;
    }
    st.batch.push_back(std::move(it->file));
    it = settling_.erase(it);
  }
  // One order whatever order the events or the directory listing gave:
  // by name. It decides which of two files of one pass with the same client
  // id or unique key makes the job (docs/FILES.md, "Unique jobs").
  std::stable_sort(st.batch.begin(), st.batch.end(),
                   [](const ClaimedFile& a, const ClaimedFile& b) { return a.name < b.name; });
  st.bad_names = std::move(pass.bad_names);
  const auto& vanished = pass.vanished;

  // On a store error nothing is lost: the batch is tried again next pass
  // (files left to settle wait for their own turn).
  auto fail = [&](const Status& s) -> Status {
    UndoSavepoint();
    std::erase_if(st.batch, [&](const ClaimedFile& f) {
      return std::any_of(settling_.begin(), settling_.end(),
                         [&](const Settling& x) { return x.file.token == f.token; });
    });
    folder_.GiveBack(std::move(st.batch), st.bad_names);
    return s;
  };
  st.rejected = st.bad_names;
  for (const auto& f : st.batch) {
    // What a file holds cannot stop the daemon: an exception while reading,
    // parsing or authorising it rejects that file with the reason.
    Guard(
        "reading a dropped file", [&] { Examine(f, now, st.accepted, st.rejected, st.controls); },
        [&](const std::string& why) {
          st.rejected.push_back({f, why});
        });
  }
  if (st.accepted.empty() && st.rejected.empty() && st.controls.empty() && vanished.empty()) return Status::Ok();

  // The per-group quota, counted once per group per pass.
  std::map<std::string, std::int64_t> queued_now;
  for (auto it = st.accepted.begin(); it != st.accepted.end();) {
    auto q = queued_now.find(it->target);
    if (q == queued_now.end()) {
      auto n = store_.CountQueued(it->target);
      if (!n.ok()) return fail(n.status());
      q = queued_now.emplace(it->target, *n).first;
    }
    if (q->second >= options_.max_queued_per_group) {
      st.rejected.push_back({*it->file, "group \"" + it->target + "\" already has " + std::to_string(q->second) +
                                            " queued jobs (max_queued_per_group is " +
                                            std::to_string(options_.max_queued_per_group) + ")"});
      it = st.accepted.erase(it);
    } else {
      ++q->second;
      ++it;
    }
  }

  if (Status s = store_.Savepoint("ingest"); !s.ok()) return fail(s);
  savepoint_ = true;
  // Dependencies are resolved over the whole pass first (watcher/after.h):
  // a file may name another of the same pass, listed before or after it.
  std::vector<AfterItem> items;
  items.reserve(st.accepted.size());
  for (const auto& a : st.accepted) items.push_back({a.target, folder_.FindGroup(a.file->group)->is_main, &a.req});
  auto plan = PlanAfter(store_, folder_.groups(), items);
  if (!plan.ok()) return fail(plan.status());
  std::vector<Inserted> inserted(st.accepted.size());
  for (std::size_t i : plan->order) {
    auto& a = st.accepted[i];
    std::vector<JobId> after;
    for (const auto& d : plan->deps[i]) {
      const auto* id = std::get_if<JobId>(&d);
      after.push_back(id ? *id : inserted[std::get<std::size_t>(d)].id);
    }
    auto ins = store_.InsertJob(a.target, a.req, {a.file->group, a.file->name, a.sha256, a.file->token},
                                options_.default_max_attempts, options_.default_max_interruptions, after);
    if (!ins.ok()) return fail(ins.status());
    inserted[i] = {ins->id, ins->duplicate, ins->state, ins->by};
    if (ins->duplicate) continue;
    if (ins->state == JobState::kWaiting) {
      st.waiting.push_back(ins->id);
    } else {
      st.queued.push_back({ins->id, a.target, a.req.priority, a.req.run_at.value_or(now)});
    }
  }
  // Refused files leave `accepted` (highest index first, so the others keep
  // theirs) for the rejections.
  std::sort(plan->rejected.begin(), plan->rejected.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  for (const auto& [i, why] : plan->rejected) {
    st.rejected.push_back({*st.accepted[i].file, why});
    st.accepted.erase(st.accepted.begin() + static_cast<std::ptrdiff_t>(i));
    inserted.erase(inserted.begin() + static_cast<std::ptrdiff_t>(i));
  }
  st.inserted = std::move(inserted);
  for (const auto& r : st.rejected) {
    if (Status s = folder_.AuditRejection(store_, r); !s.ok()) return fail(s);
  }
  for (const auto& [group, name] : vanished) {
    nlohmann::json d = {{"file", text::ForLog(name)}, {"reason", "removed from tasks/ before dropq could claim it"}};
    if (Status s = store_.AppendEvent(std::nullopt, group, "vanished", text::Dump(d)); !s.ok()) return fail(s);
  }
  if (Status s = store_.Release("ingest"); !s.ok()) return fail(s);
  savepoint_ = false;
  staged_ = std::move(st);
  return Status::Ok();
}

const std::vector<QueuedJob>& Ingestor::staged() const {
  static const std::vector<QueuedJob> none;
  return staged_ ? staged_->queued : none;
}

void Ingestor::WriteDuplicateResult(const Accepted& a, const Inserted& ins) {
  nlohmann::json r = {{"jobId", nullptr},
                      {"group", a.target},
                      {"file", text::ForLog(a.file->name)},
                      {"state", "duplicate"},
                      {"duplicateOf", {{"jobId", ins.id}, {"state", ToString(ins.state)}, {"by", ins.by}}}};
  if (a.req.client_id) r["id"] = *a.req.client_id;
  if (a.req.unique_key) r["uniqueKey"] = *a.req.unique_key;
  auto path = layout_.ResultsDir(a.file->group) / a.file->name;
  Status s = Layout::CheckRealDir(path.parent_path());
  if (s.ok()) s = WriteFileAtomic(path, text::Dump(r, 2) + "\n");
  if (!s.ok()) spdlog::error("{}/{}: cannot write its result file: {}", a.file->group, a.file->name, s.message());
}

void Ingestor::Abandon() {
  if (!staged_) return;
  Staged st = std::move(*staged_);
  staged_.reset();
  folder_.GiveBack(std::move(st.batch), st.bad_names);
}

std::vector<QueuedJob> Ingestor::Settle() {
  if (!staged_) return {};
  Staged st = std::move(*staged_);
  staged_.reset();
  // Only now, with the jobs durable, do the files go; a duplicate's result
  // file first, so a crash in between finds the file and says it again.
  for (std::size_t i = 0; i < st.accepted.size(); ++i) {
    if (st.inserted[i].duplicate) WriteDuplicateResult(st.accepted[i], st.inserted[i]);
    if (::unlink(st.accepted[i].file->path.c_str()) != 0) {
      spdlog::warn("cannot remove {}: {}", st.accepted[i].file->path.string(), std::strerror(errno));
    }
    if (st.inserted[i].duplicate) {
      ++stats_.duplicates;
      spdlog::info("{}/{}: duplicate of job {} (same {}), not queued again", st.accepted[i].file->group,
                   st.accepted[i].file->name, st.inserted[i].id, st.inserted[i].by);
    } else {
      ++stats_.accepted;
    }
  }
  for (const auto& r : st.rejected) {
    ++stats_.rejected;
    folder_.Reject(r);
  }
  for (auto& [file, cmd] : st.controls) ApplyControl(*file, cmd);
  return std::move(st.queued);
}

void Ingestor::ApplyControl(const ClaimedFile& file, const JobCommand& cmd) {
  // A copy: applying a register_group replaces the list FindGroup points into.
  const IngestGroup from = *folder_.FindGroup(file.group);
  Result<std::string> done = Status::InvalidArgument("type \"" + std::string(TypeName(cmd)) + "\" is not supported");
  // An exception while applying it rejects this file with the reason; the
  // others of the batch are applied as usual.
  // One transaction holds what the command changed and its verdict (an
  // `applied` event, docs/DESIGN.md "One signal to wait on"); a command
  // that fails is undone whole and its `rejected` event recorded instead.
  if (Status s = store_.Begin(); !s.ok()) {
    spdlog::error("cannot apply {}: {}; trying again next pass", file.name, s.message());
    folder_.GiveBack({file});
    return;
  }
  if (commands_) {
    Guard(
        "applying a control file", [&] { done = commands_->Apply(from, file, cmd); },
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
      folder_.GiveBack({file});  // applying is idempotent (CommandHandler)
      return;
    }
  } else {
    store_.Rollback();
  }
  if (!done.ok()) {
    Rejection r{file, done.status().message()};
    if (Status s = folder_.AuditRejection(store_, r, TypeName(cmd)); !s.ok()) {
      spdlog::error("cannot record rejection of {}: {}", file.name, s.message());
      folder_.GiveBack({file});  // try again next pass rather than lose the audit row
      return;
    }
    ++stats_.rejected;
    folder_.Reject(r);
    return;
  }
  spdlog::info("{}/{}: {} applied", file.group, file.name, TypeName(cmd));
  if (::unlink(file.path.c_str()) != 0) {
    spdlog::warn("cannot remove {}: {}", file.path.string(), std::strerror(errno));
  }
}

}  // namespace dropq::watcher
