#pragma once
// Parsing and validating a dropped job file into a typed command.
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
#include <string>
#include <string_view>
#include <variant>

#include "jobs/job.h"
#include "jobs/status.h"

namespace dropq::watcher {

// Only `run` exists so far; other NanoClaw types (schedule_task, pause_task,
// register_group, ...) are recognised and rejected as "not supported yet".
using JobCommand = std::variant<RunRequest>;

// `content` is the whole file. Returns InvalidArgument with a message meant
// for the person who wrote the file.
Result<JobCommand> ParseJobFile(std::string_view content);

}  // namespace dropq::watcher
