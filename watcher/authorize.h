#pragma once
// Who may send which command: NanoClaw's authorisation (src/ipc.ts,
// processTaskIpc and the messages/ loop) as one pure function, so the rule
// lives in one place and every cell of the table is tested.
//
//   run, schedule_task          a group for itself; main for any group
//   pause/resume/cancel_task    the task's group, or main
//   update_task                 the task's group, or main
//   cancel_job                  the job's group, or main
//   register_group              main only
//   refresh_groups              main only
//   message                     a group to its own chat; main to any
//                               registered group's chat
//
// The group a file came from is the directory it was dropped in, never a
// field of the file. A group's chat jid is its `jid`, or its folder when it
// has none: that is the `chatJid` the agent is given (daemon/daemon.cc), so an
// agent can always address its own group with it.
//
// A non-main group learns nothing about other groups from a refusal: naming
// another group, or another group's task or job, is refused with the same
// words as naming one that does not exist.
#include <optional>
#include <span>
#include <string>

#include "base/status.h"
#include "watcher/job_file.h"

namespace dropq::watcher {

// A configured or registered group, as far as authorisation cares.
struct GroupIdentity {
  std::string folder;
  std::optional<std::string> jid;
  bool is_main = false;
};

// The `chatJid` of a group: its jid, or its folder when it has none.
std::string ChatJid(const GroupIdentity& g);

// What an authorised command acts on.
struct Decision {
  std::string folder;    // the target group: run/schedule_task's target, the
                         // task's or job's group, the group being registered,
                         // the source for refresh_groups, the chat's group
  std::string chat_jid;  // that group's chat jid (register_group: the new jid)
};

// `from` sent `cmd`; `groups` are all configured and registered groups
// (`from` among them). `owner` is consulted only by pause_task, resume_task,
// cancel_task, update_task (the task's group) and cancel_job (the job's group): nullopt
// means no such task or job. Errors are InvalidArgument with a reason for the
// rejection's .error.json.
Result<Decision> Authorize(const GroupIdentity& from, std::span<const GroupIdentity> groups, const JobCommand& cmd,
                           const std::optional<std::string>& owner = std::nullopt);

// A messages/ file from `from`.
Result<Decision> AuthorizeMessage(const GroupIdentity& from, std::span<const GroupIdentity> groups,
                                  const MessageCommand& msg);

}  // namespace dropq::watcher
