#pragma once
// Parsing and validating a dropped job file into a typed command, and a
// messages/ file into a MessageCommand.
//
// The input is untrusted bytes written by a group. Parsing uses simdjson
// (which bounds nesting depth and rejects invalid UTF-8); validation checks
// each known field's type and range. Unknown fields are ignored, because
// NanoClaw's writers add `createdBy`, `timestamp` and `groupFolder`.
// A known field set to null counts as absent. Duplicate top-level keys are
// rejected (which value was meant would be a guess). A number too big for
// 64 bits is reported with the top-level field it sits in.
// Errors name the field and the reason, e.g. `field "priority": expected an
// integer`, and are what the rejection's .error.json says.
//
// Field names are NanoClaw's (src/ipc.ts, processTaskIpc) where it has them.
// This layer checks only what the file alone can tell: cron syntax, time
// zones and `once` times need jobs/cron.h and are checked when the command
// is applied; who may send what is watcher/authorize.h.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "jobs/job.h"
#include "jobs/tasks.h"
#include "base/status.h"

namespace dropq::watcher {

// The scheduler's own enums (jobs/tasks.h): one definition of each policy.
using dropq::ScheduleType;
using OverlapPolicy = dropq::Overlap;
using CatchUpPolicy = dropq::CatchUp;

// `schedule_task`: creates a task in the target group.
struct ScheduleTask {
  std::string prompt;
  ScheduleType schedule_type = ScheduleType::kCron;
  // As written; an integer `interval` is kept as its decimal string (NanoClaw
  // wrote milliseconds). `interval` is already checked here to be a positive
  // duration (base/units.h); cron expressions and `once` times are not.
  std::string schedule_value;
  ContextMode context_mode = ContextMode::kIsolated;
  std::optional<std::string> target_group;  // folder
  std::optional<std::string> target_jid;    // NanoClaw's targetJid
  std::optional<std::string> task_id;       // "taskId": client-chosen id
  std::optional<std::string> tz;            // IANA name, checked when applied
  // Absent: the lead's documented defaults apply.
  std::optional<OverlapPolicy> overlap;
  std::optional<CatchUpPolicy> catch_up;
  std::optional<std::int64_t> starting_deadline_ms;
  std::optional<std::int64_t> keep_runs;
  // Given to each job the task enqueues (docs/FILES.md, "Unique jobs").
  std::optional<std::string> unique_key;
  std::optional<std::int64_t> unique_for_ms;
};

// `pause_task`, `resume_task`, `cancel_task`: one struct per type so a
// std::visit cannot confuse them.
struct PauseTask {
  std::string task_id;
};
struct ResumeTask {
  std::string task_id;
};
struct CancelTask {
  std::string task_id;
};

// `update_task` (NanoClaw's, with dropq's task fields): changes a task.
// `taskId` is required and at least one change; a field absent (or null)
// keeps its value. `schedule_type` needs `schedule_value` with it (a value
// means something only for its type); `schedule_value` alone keeps the type.
// Checked when applied, as for schedule_task: the cron expression, the zone,
// a `once` time, and which task it is.
struct UpdateTask {
  std::string task_id;
  TaskChanges changes;
};

// `cancel_job`: "jobId" is an integer or a string of decimal digits.
struct CancelJob {
  JobId job_id = 0;
};

// `retry_job` (dropq's own; `dropq retry ID` writes it): requeues a failed or
// cancelled job with fresh attempts. Same "jobId" rules and authorisation as
// cancel_job.
struct RetryJob {
  JobId job_id = 0;
};

// `register_group` (main only). Never makes a main group: NanoClaw refuses to
// let an agent set isMain, and so does dropq (the field is ignored).
struct RegisterGroup {
  std::string jid;
  std::string name;
  std::string folder;  // NanoClaw's folder rule, not "global" in any case
  std::optional<std::string> trigger;
  std::optional<bool> requires_trigger;         // NanoClaw's requiresTrigger
  std::optional<std::string> container_config;  // the object as compact JSON text
};

// `refresh_groups` (main only): no fields.
struct RefreshGroups {};

using JobCommand = std::variant<RunRequest, ScheduleTask, PauseTask, ResumeTask, CancelTask, CancelJob, RegisterGroup,
                                RefreshGroups, RetryJob, UpdateTask>;

// The file's `type` for a command ("run", "schedule_task", ...), for logs
// and audit rows.
std::string_view TypeName(const JobCommand& cmd);

// `content` is the whole file. Returns InvalidArgument with a message meant
// for the person who wrote the file.
Result<JobCommand> ParseJobFile(std::string_view content);
// True when parsing failed because the text is not JSON (yet): empty, cut
// short or malformed, rather than a whole document with a bad field. Only
// such a file may still be being written (watcher/ingest.h, settle_ms).
bool IsJsonSyntaxError(const Status& s);

// `value` quoted for an error message: JSON-style escapes, cut to 64 bytes on
// a character boundary, so a reason stays short and valid UTF-8 whatever a
// file held.
std::string QuoteValue(std::string_view value);

// A messages/ file: {"type":"message","chatJid":...,"text":...}.
struct MessageCommand {
  std::string chat_jid;
  std::string text;
};

inline constexpr std::size_t kMaxMessageTextBytes = 64 * 1024;

// `type` must be "message"; `chatJid` a non-empty string; `text` a non-empty
// string of at most kMaxMessageTextBytes bytes. Other fields are ignored.
Result<MessageCommand> ParseMessageFile(std::string_view content);

}  // namespace dropq::watcher
