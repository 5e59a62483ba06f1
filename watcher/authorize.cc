#include "watcher/authorize.h"

#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace dropq::watcher {
namespace {

Status Deny(std::string reason) { return Status::InvalidArgument(std::move(reason)); }

std::string Group(std::string_view folder) { return "group " + QuoteValue(folder); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

const GroupIdentity* FindFolder(std::span<const GroupIdentity> groups, std::string_view folder) {
  for (const auto& g : groups) {
    if (g.folder == folder) return &g;
  }
  return nullptr;
}

// The one group whose chat jid is `jid`. `field` names where the jid came
// from. Two groups sharing a chat jid make it ambiguous; refusing is safer
// than picking one.
Result<const GroupIdentity*> FindJid(std::span<const GroupIdentity> groups, std::string_view field,
                                     std::string_view jid) {
  std::vector<const GroupIdentity*> found;
  for (const auto& g : groups) {
    if (ChatJid(g) == jid) found.push_back(&g);
  }
  if (found.empty()) return Deny(std::string(field) + " " + QuoteValue(jid) + " is not any group's jid");
  if (found.size() > 1) {
    return Deny(std::string(field) + " " + QuoteValue(jid) + " is the jid of more than one group (" +
                QuoteValue(found[0]->folder) + ", " + QuoteValue(found[1]->folder) + ")");
  }
  return found[0];
}

Decision For(const GroupIdentity& g) { return {g.folder, ChatJid(g)}; }

// A group that no longer exists (removed from the config) keeps its folder
// as its chat jid: main may still clean up its tasks.
Decision ForFolder(std::span<const GroupIdentity> groups, const std::string& folder) {
  if (const GroupIdentity* g = FindFolder(groups, folder)) return For(*g);
  return {folder, folder};
}

// run and schedule_task: `target_group` by folder, `targetJid` by chat jid,
// neither = the sender. A non-main group may name only itself, and is told
// so whether or not the other group exists.
Result<Decision> ResolveTarget(const GroupIdentity& from, std::span<const GroupIdentity> groups,
                               const std::optional<std::string>& target_group,
                               const std::optional<std::string>& target_jid, std::string_view verb) {
  if (!from.is_main) {
    auto refuse = [&](std::string_view field, const std::string& value) {
      return Deny(Group(from.folder) + " may not " + std::string(verb) + " " + std::string(field) + " " +
                  QuoteValue(value) + ": only the main group may target another group");
    };
    if (target_group && *target_group != from.folder) return refuse("target_group", *target_group);
    if (target_jid && *target_jid != ChatJid(from)) return refuse("targetJid", *target_jid);
    return For(from);
  }
  const GroupIdentity* by_folder = nullptr;
  const GroupIdentity* by_jid = nullptr;
  if (target_group) {
    by_folder = FindFolder(groups, *target_group);
    if (!by_folder) return Deny("target_group " + QuoteValue(*target_group) + " is not a configured group");
  }
  if (target_jid) {
    auto found = FindJid(groups, "targetJid", *target_jid);
    if (!found.ok()) return found.status();
    by_jid = *found;
  }
  // Both given and disagreeing: which one was meant would be a guess.
  if (by_folder && by_jid && by_folder != by_jid) {
    return Deny("target_group " + QuoteValue(*target_group) + " and targetJid " + QuoteValue(*target_jid) +
                " name different groups");
  }
  if (by_folder) return For(*by_folder);
  if (by_jid) return For(*by_jid);
  return For(from);
}

// pause/resume/cancel/update_task and cancel_job: `what` is `task "x"` or `job 7`.
// To a non-main group another group's task looks exactly like a missing one.
Result<Decision> ResolveOwned(const GroupIdentity& from, std::span<const GroupIdentity> groups,
                              const std::optional<std::string>& owner, const std::string& what, std::string_view verb,
                              std::string_view kind) {
  if (from.is_main) {
    if (!owner) return Deny("no " + what);
    return ForFolder(groups, *owner);
  }
  if (!owner || *owner != from.folder) {
    return Deny("no " + what + " in " + Group(from.folder) + " (a group may " + std::string(verb) + " only its own " +
                std::string(kind) + "; the main group may " + std::string(verb) + " any)");
  }
  return For(from);
}

Result<Decision> ResolveRegister(const GroupIdentity& from, std::span<const GroupIdentity> groups,
                                 const RegisterGroup& r) {
  if (!from.is_main) return Deny("only the main group may register groups; " + Group(from.folder) + " is not main");
  for (const auto& g : groups) {
    // Registered groups are never main: re-registering main's folder would
    // leave no main group.
    if (g.folder == r.folder && g.is_main) {
      return Deny("folder " + QuoteValue(r.folder) + " is the main group; it cannot be registered");
    }
    // On a case-insensitive filesystem the two would share one directory.
    if (g.folder != r.folder && Lower(g.folder) == Lower(r.folder)) {
      return Deny("folder " + QuoteValue(r.folder) + " differs only in case from " + Group(g.folder));
    }
    // targetJid and chatJid must keep naming exactly one group.
    if (g.folder != r.folder && ChatJid(g) == r.jid) {
      return Deny("jid " + QuoteValue(r.jid) + " already belongs to " + Group(g.folder));
    }
  }
  return Decision{r.folder, r.jid};
}

}  // namespace

std::string ChatJid(const GroupIdentity& g) { return g.jid.value_or(g.folder); }

Result<Decision> Authorize(const GroupIdentity& from, std::span<const GroupIdentity> groups, const JobCommand& cmd,
                           const std::optional<std::string>& owner) {
  return std::visit(
      [&](const auto& c) -> Result<Decision> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, RunRequest>) {
          return ResolveTarget(from, groups, c.target_group, c.target_jid, "enqueue for");
        } else if constexpr (std::is_same_v<T, ScheduleTask>) {
          return ResolveTarget(from, groups, c.target_group, c.target_jid, "schedule a task for");
        } else if constexpr (std::is_same_v<T, PauseTask>) {
          return ResolveOwned(from, groups, owner, "task " + QuoteValue(c.task_id), "pause", "tasks");
        } else if constexpr (std::is_same_v<T, ResumeTask>) {
          return ResolveOwned(from, groups, owner, "task " + QuoteValue(c.task_id), "resume", "tasks");
        } else if constexpr (std::is_same_v<T, CancelTask>) {
          return ResolveOwned(from, groups, owner, "task " + QuoteValue(c.task_id), "cancel", "tasks");
        } else if constexpr (std::is_same_v<T, UpdateTask>) {
          return ResolveOwned(from, groups, owner, "task " + QuoteValue(c.task_id), "update", "tasks");
        } else if constexpr (std::is_same_v<T, CancelJob>) {
          return ResolveOwned(from, groups, owner, "job " + std::to_string(c.job_id), "cancel", "jobs");
        } else if constexpr (std::is_same_v<T, RetryJob>) {
          return ResolveOwned(from, groups, owner, "job " + std::to_string(c.job_id), "retry", "jobs");
        } else if constexpr (std::is_same_v<T, RegisterGroup>) {
          return ResolveRegister(from, groups, c);
        } else {
          static_assert(std::is_same_v<T, RefreshGroups>, "every command needs a rule");
          if (!from.is_main) {
            return Deny("only the main group may refresh groups; " + Group(from.folder) + " is not main");
          }
          return For(from);
        }
      },
      cmd);
}

Result<Decision> AuthorizeMessage(const GroupIdentity& from, std::span<const GroupIdentity> groups,
                                  const MessageCommand& msg) {
  if (!from.is_main) {
    if (msg.chat_jid != ChatJid(from)) {
      return Deny(Group(from.folder) + " may send only to its own chat " + QuoteValue(ChatJid(from)) +
                  ", not chatJid " + QuoteValue(msg.chat_jid));
    }
    return For(from);
  }
  // Deliberately stricter than NanoClaw, whose main could send to any jid:
  // dropq delivers per group, and an unknown jid has no group to deliver to.
  auto found = FindJid(groups, "chatJid", msg.chat_jid);
  if (!found.ok()) return found.status();
  return For(**found);
}

}  // namespace dropq::watcher
