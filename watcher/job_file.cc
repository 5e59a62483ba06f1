#include "watcher/job_file.h"

#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/units.h"
#include "base/text.h"

namespace dropq::watcher {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Deep enough for any real job file, shallow enough that a hostile file of
// nested brackets is refused cheaply (invariant 4).
constexpr std::size_t kMaxDepth = 64;
constexpr std::int64_t kMaxPriority = 1'000'000;
constexpr std::int64_t kDayMs = 24LL * 60 * 60 * 1000;
constexpr std::int64_t kMaxTimeoutMs = 7 * kDayMs;
// A deadline longer than a year is a typo, not a policy.
constexpr std::int64_t kMaxStartingDeadlineMs = 365 * kDayMs;
constexpr std::int64_t kMaxKeepRuns = 1'000'000;
constexpr std::int64_t kMaxAttempts = 100;
constexpr std::int64_t kMaxInterruptions = 100;
constexpr std::size_t kMaxIdChars = 200;
// A job waits for at most this many others: enough for any fan-in a person
// writes by hand, small enough that resolving them stays cheap.
constexpr std::size_t kMaxAfter = 100;
// Values echoed in messages are cut short: a message must stay readable even
// when the offending value is megabytes long.
constexpr std::size_t kQuoteLimit = 64;
constexpr std::string_view kDurationHint = "(milliseconds, or a number with ms, s, m, h or d, e.g. \"30s\")";

// `s` as a JSON-style quoted string, control characters escaped and cut at
// kQuoteLimit bytes (on a UTF-8 boundary; simdjson already validated UTF-8).
std::string Quote(std::string_view s) {
  bool cut = false;
  if (s.size() > kQuoteLimit) {
    s = s.substr(0, text::BoundaryAtOrBefore(s, kQuoteLimit));
    cut = true;
  }
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += cut ? "\"…" : "\"";
  return out;
}

Status FieldError(std::string_view field, std::string_view what) {
  return Status::InvalidArgument("field " + Quote(field) + ": " + std::string(what));
}

Status Required(std::string_view field) { return Status::InvalidArgument("field " + Quote(field) + " is required"); }

// Counts code points, which is what "200 characters" means to a person.
std::size_t Utf8Length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

template <typename E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

// `"a" or "b"`, `"a", "b" or "c"`: the allowed values, for error messages.
template <typename E>
std::string Alternatives(Choices<E> choices) {
  std::string out;
  std::size_t i = 0;
  for (const auto& [name, value] : choices) {
    (void)value;
    if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
    out += Quote(name);
    ++i;
  }
  return out;
}

// The top-level fields by name. JSON null counts as absent, so writers that
// serialise unset optionals as null are accepted.
class Fields {
 public:
  // Fails on the first duplicate key: which of two values was meant is a
  // guess we refuse to make.
  Status Load(simdjson::dom::object obj) {
    for (auto [key, value] : obj) {
      if (!map_.emplace(key, value).second) {
        return Status::InvalidArgument("duplicate field " + Quote(key));
      }
    }
    return Status::Ok();
  }

  const element* Find(std::string_view name) const {
    auto it = map_.find(name);
    if (it == map_.end() || it->second.is_null()) return nullptr;
    return &it->second;
  }

  Status String(std::string_view name, std::optional<std::string>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    std::string_view s;
    if (e->get_string().get(s)) return FieldError(name, "expected a string");
    // NUL would be cut short by any C string consumer downstream (paths,
    // argv, logs), so it is refused rather than silently truncated.
    if (s.find('\0') != std::string_view::npos) return FieldError(name, "must not contain NUL characters");
    out = std::string(s);
    return Status::Ok();
  }

  // An empty string is a mistake, not "unset": absence (or null) means that.
  Status NonEmptyString(std::string_view name, std::optional<std::string>& out) const {
    if (Status s = String(name, out); !s.ok()) return s;
    if (out && out->empty()) return FieldError(name, "must not be empty");
    return Status::Ok();
  }

  Status RequiredString(std::string_view name, std::string& out) const {
    std::optional<std::string> v;
    if (Status s = NonEmptyString(name, v); !s.ok()) return s;
    if (!v) return Required(name);
    out = std::move(*v);
    return Status::Ok();
  }

  Status Bool(std::string_view name, std::optional<bool>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    bool b = false;
    if (e->get_bool().get(b)) return FieldError(name, "expected true or false");
    out = b;
    return Status::Ok();
  }

  // Integer in [lo, hi].
  Status Int(std::string_view name, std::int64_t lo, std::int64_t hi, std::optional<std::int64_t>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    std::int64_t v = 0;
    switch (e->type()) {
      case element_type::INT64:
        v = e->get_int64().value_unsafe();
        break;
      case element_type::UINT64:
        return FieldError(name, "number out of range");
      default:
        return FieldError(name, "expected an integer");
    }
    if (v < lo || v > hi) {
      return FieldError(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    out = v;
    return Status::Ok();
  }

  // A client-chosen key (`id`, `taskId`): a string of 1 to 200 characters,
  // or an integer kept as its decimal string.
  Status Key(std::string_view name, std::optional<std::string>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    if (e->type() == element_type::INT64) {
      out = std::to_string(e->get_int64().value_unsafe());
      return Status::Ok();
    }
    if (e->type() == element_type::UINT64) return FieldError(name, "number out of range");
    if (!e->is_string()) return FieldError(name, "expected a string or an integer");
    if (Status s = String(name, out); !s.ok()) return s;
    std::size_t n = Utf8Length(*out);
    if (n < 1 || n > kMaxIdChars) return FieldError(name, "must be 1 to 200 characters long");
    return Status::Ok();
  }

  // `after`: one job reference or an array of them (at most kMaxAfter): an
  // integer job id, or a client id string (1 to 200 characters). Repeats
  // are kept once.
  Status After(std::string_view name, std::vector<AfterRef>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    auto one = [&](const element& v) -> Status {
      AfterRef ref;
      if (v.type() == element_type::INT64) {
        std::int64_t id = v.get_int64().value_unsafe();
        if (id <= 0) return FieldError(name, "a job id must be positive");
        ref.job_id = id;
        ref.text = std::to_string(id);
      } else if (v.is_string()) {
        std::string_view text = v.get_string().value_unsafe();
        if (text.find('\0') != std::string_view::npos) return FieldError(name, "must not contain NUL characters");
        std::size_t n = Utf8Length(text);
        if (n < 1 || n > kMaxIdChars) return FieldError(name, "an id must be 1 to 200 characters long");
        ref.client_id = std::string(text);
        ref.text = Quote(text);
      } else if (v.type() == element_type::UINT64) {
        return FieldError(name, "number out of range");
      } else {
        return FieldError(name, "expected a job id (integer), an id (string), or an array of them");
      }
      for (const auto& have : out) {
        if (have.job_id == ref.job_id && have.client_id == ref.client_id) return Status::Ok();
      }
      out.push_back(std::move(ref));
      return Status::Ok();
    };
    simdjson::dom::array arr;
    if (e->get_array().get(arr) != simdjson::SUCCESS) return one(*e);
    if (arr.size() == 0) return FieldError(name, "must name at least one job");
    if (arr.size() > kMaxAfter) return FieldError(name, "at most " + std::to_string(kMaxAfter) + " jobs");
    for (element v : arr) {
      if (Status s = one(v); !s.ok()) return s;
    }
    return Status::Ok();
  }

  // Integer milliseconds or a string with a unit; > 0 and <= max_ms
  // (`max_text` says max_ms to a person).
  Status Duration(std::string_view name, std::int64_t max_ms, std::string_view max_text,
                  std::optional<std::int64_t>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    std::int64_t ms = 0;
    if (e->type() == element_type::INT64) {
      ms = e->get_int64().value_unsafe();
    } else if (e->type() == element_type::UINT64) {
      return FieldError(name, "number out of range");
    } else if (e->is_string()) {
      std::string_view text = e->get_string().value_unsafe();
      std::optional<std::int64_t> parsed = ParseDurationMs(text);
      if (!parsed) return FieldError(name, "invalid duration " + Quote(text) + " " + std::string(kDurationHint));
      ms = *parsed;
    } else {
      return FieldError(name, "expected an integer (milliseconds) or a duration string");
    }
    if (ms <= 0) return FieldError(name, "must be positive");
    if (ms > max_ms) return FieldError(name, "must be at most " + std::string(max_text));
    out = ms;
    return Status::Ok();
  }

  // A string that must be one of `choices` (case-sensitive, as NanoClaw).
  template <typename E>
  Status Choice(std::string_view name, Choices<E> choices, std::optional<E>& out) const {
    std::optional<std::string> text;
    if (Status s = String(name, text); !s.ok()) return s;
    if (!text) return Status::Ok();
    for (const auto& [choice, value] : choices) {
      if (*text == choice) {
        out = value;
        return Status::Ok();
      }
    }
    return FieldError(name, "expected " + Alternatives(choices) + ", got " + Quote(*text));
  }

 private:
  // Keys point into the parser's string buffer, which outlives this object.
  std::unordered_map<std::string_view, element> map_;
};

// The DOM parser reports a bad number without saying where. Walk the top-level
// fields with ondemand (which parses numbers only when asked) to name the
// field, so the writer knows what to fix. nullopt if not at the top level.
std::optional<std::string> LocateBadNumber(const simdjson::padded_string& json) {
  simdjson::ondemand::parser parser;
  if (parser.allocate(json.size(), kMaxDepth)) return std::nullopt;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(json).get(doc) || doc.get_object().get(obj)) return std::nullopt;
  for (auto field : obj) {
    std::string_view key;
    simdjson::ondemand::value value;
    simdjson::ondemand::json_type type;
    if (field.unescaped_key().get(key) || field.value().get(value) || value.type().get(type)) return std::nullopt;
    if (type != simdjson::ondemand::json_type::number) continue;
    std::string_view token = value.raw_json_token();
    while (!token.empty() &&
           (token.back() == ' ' || token.back() == '\t' || token.back() == '\r' || token.back() == '\n')) {
      token.remove_suffix(1);
    }
    simdjson::dom::parser single;
    element ignored;
    if (!single.parse(token.data(), token.size(), true).get(ignored)) continue;
    // An integer-shaped token or a float beyond double's range is out of
    // range; anything else (leading zeros, "1.") is malformed.
    std::string_view digits = token.substr(token.rfind('-', 0) == 0 ? 1 : 0);
    bool integer_shape =
        !digits.empty() && digits[0] != '0' && digits.find_first_not_of("0123456789") == std::string_view::npos;
    double d = 0;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
    (void)ptr;
    std::string what = integer_shape || ec == std::errc::result_out_of_range ? "number out of range" : "invalid number";
    return "field " + Quote(key) + ": " + what;
  }
  return std::nullopt;
}

// A parsed file's top-level object. The parser owns the strings Fields
// points at, so both live here together.
struct Document {
  simdjson::padded_string json;
  simdjson::dom::parser parser;
  Fields fields;
};

constexpr std::string_view kSyntaxPrefix = "invalid JSON: ";

// `what` names the kind of file in the "must be an object" message.
Status LoadObject(std::string_view content, std::string_view what, Document& doc) {
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; the copy gives it room.
  doc.json = simdjson::padded_string(content.data(), content.size());
  const simdjson::padded_string& json = doc.json;
  if (auto err = doc.parser.allocate(json.size(), kMaxDepth); err) {
    return Status::InvalidArgument(std::string(kSyntaxPrefix) + simdjson::error_message(err));
  }
  element root;
  if (auto err = doc.parser.parse(json).get(root); err) {
    if (err == simdjson::NUMBER_ERROR) {
      if (auto located = LocateBadNumber(json)) return Status::InvalidArgument(*located);
    }
    return Status::InvalidArgument(std::string(kSyntaxPrefix) + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return Status::InvalidArgument(std::string(what) + " must be a JSON object");
  return doc.fields.Load(obj);
}

const Choices<AfterPolicy> kAfterPolicies = {{"succeeded", AfterPolicy::kSucceeded},
                                             {"finished", AfterPolicy::kFinished}};
const Choices<ContextMode> kContextModes = {{"group", ContextMode::kGroup}, {"isolated", ContextMode::kIsolated}};
const Choices<OverlapPolicy> kOverlaps = {
    {"forbid", OverlapPolicy::kForbid}, {"allow", OverlapPolicy::kAllow}, {"replace", OverlapPolicy::kReplace}};
const Choices<CatchUpPolicy> kCatchUps = {
    {"run_once", CatchUpPolicy::kRunOnce}, {"skip", CatchUpPolicy::kSkip}, {"run_all", CatchUpPolicy::kRunAll}};
const Choices<ScheduleType> kScheduleTypes = {
    {"cron", ScheduleType::kCron}, {"interval", ScheduleType::kInterval}, {"once", ScheduleType::kOnce}};

// `target_group` and `targetJid`, shared by run and schedule_task.
Status Targets(const Fields& f, std::optional<std::string>& group, std::optional<std::string>& jid) {
  if (Status s = f.NonEmptyString("target_group", group); !s.ok()) return s;
  return f.NonEmptyString("targetJid", jid);
}

// `unique_key` and `unique_for`, shared by run and schedule_task.
Status UniqueFields(const Fields& f, std::optional<std::string>& key, std::optional<std::int64_t>& for_ms) {
  if (Status s = f.Key("unique_key", key); !s.ok()) return s;
  if (Status s = f.Duration("unique_for", kMaxStartingDeadlineMs, "365 days", for_ms); !s.ok()) return s;
  if (for_ms && !key) return FieldError("unique_for", "needs \"unique_key\"");
  return Status::Ok();
}

Result<JobCommand> ParseRun(const Fields& f) {
  RunRequest req;
  if (Status s = f.RequiredString("prompt", req.prompt); !s.ok()) return s;
  if (Status s = f.Key("id", req.client_id); !s.ok()) return s;

  std::optional<std::int64_t> priority;
  if (Status s = f.Int("priority", -kMaxPriority, kMaxPriority, priority); !s.ok()) return s;
  if (priority) req.priority = *priority;

  std::optional<std::string> run_at;
  if (Status s = f.String("run_at", run_at); !s.ok()) return s;
  if (run_at) {
    req.run_at = ParseIsoTime(*run_at);
    if (!req.run_at) {
      return FieldError("run_at", "invalid ISO-8601 time " + Quote(*run_at) + " (e.g. \"2026-11-27T08:45:57Z\")");
    }
  }

  if (Status s = f.Duration("timeout", kMaxTimeoutMs, "7 days", req.timeout_ms); !s.ok()) return s;
  if (Status s = f.Int("max_attempts", 1, kMaxAttempts, req.max_attempts); !s.ok()) return s;
  if (Status s = f.Int("max_interruptions", 0, kMaxInterruptions, req.max_interruptions); !s.ok()) return s;

  std::optional<ContextMode> mode;
  if (Status s = f.Choice("context_mode", kContextModes, mode); !s.ok()) return s;
  if (mode) req.context_mode = *mode;

  if (Status s = Targets(f, req.target_group, req.target_jid); !s.ok()) return s;

  if (Status s = f.After("after", req.after); !s.ok()) return s;
  std::optional<AfterPolicy> policy;
  if (Status s = f.Choice("after_policy", kAfterPolicies, policy); !s.ok()) return s;
  if (policy) {
    if (req.after.empty()) return FieldError("after_policy", "needs \"after\"");
    req.after_policy = *policy;
  }
  if (Status s = UniqueFields(f, req.unique_key, req.unique_for_ms); !s.ok()) return s;
  return JobCommand(std::move(req));
}

// NanoClaw wrote intervals as a string of milliseconds; dropq also takes an
// integer and a unit ("30s"). Kept as text; checked to be a positive duration.
Status IntervalValue(const element& e, std::string& out) {
  if (e.type() == element_type::INT64) {
    std::int64_t ms = e.get_int64().value_unsafe();
    if (ms <= 0) return FieldError("schedule_value", "an interval must be positive");
    out = std::to_string(ms);
    return Status::Ok();
  }
  if (e.type() == element_type::UINT64) return FieldError("schedule_value", "number out of range");
  std::string_view text;
  if (e.get_string().get(text)) {
    return FieldError("schedule_value", "expected an interval: integer milliseconds or a duration string");
  }
  std::optional<std::int64_t> ms = ParseDurationMs(text);
  if (!ms) return FieldError("schedule_value", "invalid interval " + Quote(text) + " " + std::string(kDurationHint));
  if (*ms <= 0) return FieldError("schedule_value", "an interval must be positive");
  out = std::string(text);
  return Status::Ok();
}

Result<JobCommand> ParseScheduleTask(const Fields& f) {
  ScheduleTask t;
  if (Status s = f.RequiredString("prompt", t.prompt); !s.ok()) return s;

  std::optional<ScheduleType> type;
  if (Status s = f.Choice<ScheduleType>("schedule_type", kScheduleTypes, type); !s.ok()) return s;
  if (!type) return Required("schedule_type");
  t.schedule_type = *type;

  const element* value = f.Find("schedule_value");
  if (!value) return Required("schedule_value");
  if (t.schedule_type == ScheduleType::kInterval) {
    if (Status s = IntervalValue(*value, t.schedule_value); !s.ok()) return s;
  } else if (Status s = f.RequiredString("schedule_value", t.schedule_value); !s.ok()) {
    return s;
  }

  std::optional<ContextMode> mode;
  if (Status s = f.Choice("context_mode", kContextModes, mode); !s.ok()) return s;
  if (mode) t.context_mode = *mode;
  if (Status s = Targets(f, t.target_group, t.target_jid); !s.ok()) return s;
  if (Status s = f.Key("taskId", t.task_id); !s.ok()) return s;
  if (Status s = f.NonEmptyString("tz", t.tz); !s.ok()) return s;

  if (Status s = f.Choice<OverlapPolicy>("overlap", kOverlaps, t.overlap); !s.ok()) return s;
  if (Status s = f.Choice<CatchUpPolicy>("catch_up", kCatchUps, t.catch_up); !s.ok()) return s;
  if (Status s = f.Duration("starting_deadline", kMaxStartingDeadlineMs, "365 days", t.starting_deadline_ms); !s.ok()) {
    return s;
  }
  if (Status s = f.Int("keep_runs", 0, kMaxKeepRuns, t.keep_runs); !s.ok()) return s;
  if (Status s = UniqueFields(f, t.unique_key, t.unique_for_ms); !s.ok()) return s;
  return JobCommand(std::move(t));
}

Result<JobCommand> ParseUpdateTask(const Fields& f) {
  UpdateTask u;
  std::optional<std::string> id;
  if (Status s = f.Key("taskId", id); !s.ok()) return s;
  if (!id) return Required("taskId");
  u.task_id = std::move(*id);
  // A task stays in its group: ignoring these would leave the writer
  // believing it had moved.
  for (std::string_view field : {"target_group", "targetJid"}) {
    if (f.Find(field)) return FieldError(field, "a task's group cannot be changed; cancel it and schedule it again");
  }
  TaskChanges& c = u.changes;
  if (Status s = f.NonEmptyString("prompt", c.prompt); !s.ok()) return s;
  if (Status s = f.Choice<ScheduleType>("schedule_type", kScheduleTypes, c.schedule_type); !s.ok()) return s;
  if (const element* value = f.Find("schedule_value")) {
    std::string text;
    if (c.schedule_type == ScheduleType::kInterval) {
      if (Status s = IntervalValue(*value, text); !s.ok()) return s;
    } else if (value->type() == element_type::INT64 && !c.schedule_type) {
      // The task's type is known only when applied: an integer is kept as
      // its decimal string, and is a valid value only for an interval.
      text = std::to_string(value->get_int64().value_unsafe());
    } else if (Status s = f.RequiredString("schedule_value", text); !s.ok()) {
      return s;
    }
    c.schedule_value = std::move(text);
  } else if (c.schedule_type) {
    return FieldError("schedule_value", "is required with schedule_type (a value means something only for its type)");
  }
  if (Status s = f.NonEmptyString("tz", c.tz); !s.ok()) return s;
  if (Status s = f.Choice("context_mode", kContextModes, c.context_mode); !s.ok()) return s;
  if (Status s = f.Choice<OverlapPolicy>("overlap", kOverlaps, c.overlap); !s.ok()) return s;
  if (Status s = f.Choice<CatchUpPolicy>("catch_up", kCatchUps, c.catch_up); !s.ok()) return s;
  if (Status s = f.Duration("starting_deadline", kMaxStartingDeadlineMs, "365 days", c.starting_deadline_ms); !s.ok()) {
    return s;
  }
  if (Status s = f.Int("keep_runs", 0, kMaxKeepRuns, c.keep_runs); !s.ok()) return s;
  if (!c.prompt && !c.schedule_value && !c.tz && !c.context_mode && !c.overlap && !c.catch_up &&
      !c.starting_deadline_ms && !c.keep_runs) {
    return Status::InvalidArgument(
        "nothing to update: give at least one of \"prompt\", \"schedule_type\" with \"schedule_value\", "
        "\"schedule_value\", \"tz\", \"context_mode\", \"overlap\", \"catch_up\", \"starting_deadline\", "
        "\"keep_runs\"");
  }
  return JobCommand(std::move(u));
}

// pause_task, resume_task, cancel_task: only "taskId".
template <typename T>
Result<JobCommand> ParseTaskRef(const Fields& f) {
  std::optional<std::string> id;
  if (Status s = f.Key("taskId", id); !s.ok()) return s;
  if (!id) return Required("taskId");
  return JobCommand(T{std::move(*id)});
}

// cancel_job and retry_job share the jobId rules.
Result<JobId> ParseJobId(const Fields& f) {
  const element* e = f.Find("jobId");
  if (!e) return Required("jobId");
  std::int64_t id = 0;
  if (e->type() == element_type::INT64) {
    id = e->get_int64().value_unsafe();
  } else if (e->type() == element_type::UINT64) {
    return FieldError("jobId", "number out of range");
  } else if (e->is_string()) {
    // Digits only: "+7", " 7" or "7.0" would each be a guess at what was meant.
    std::string_view text = e->get_string().value_unsafe();
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
      return FieldError("jobId", "expected a job id (decimal digits), got " + Quote(text));
    }
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    (void)ptr;
    if (ec != std::errc()) return FieldError("jobId", "number out of range");
  } else {
    return FieldError("jobId", "expected an integer or a string of digits");
  }
  if (id < 1) return FieldError("jobId", "must be at least 1");
  return id;
}

template <typename T>
Result<JobCommand> ParseJobRef(const Fields& f) {
  auto id = ParseJobId(f);
  if (!id.ok()) return id.status();
  return JobCommand(T{*id});
}

// NanoClaw's isValidGroupFolder: a name that is safe as one path component
// and does not take the shared "global" folder.
Status CheckFolder(std::string_view folder) {
  bool ok = !folder.empty() && folder.size() <= 64;
  for (std::size_t i = 0; ok && i < folder.size(); ++i) {
    char c = folder[i];
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    ok = alnum || (i > 0 && (c == '_' || c == '-'));
  }
  if (!ok) return FieldError("folder", "must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, got " + Quote(folder));
  std::string lower(folder);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "global") return FieldError("folder", "\"global\" is reserved for the shared memory folder");
  return Status::Ok();
}

Result<JobCommand> ParseRegisterGroup(const Fields& f) {
  RegisterGroup g;
  if (Status s = f.RequiredString("jid", g.jid); !s.ok()) return s;
  if (Status s = f.RequiredString("name", g.name); !s.ok()) return s;
  if (Status s = f.RequiredString("folder", g.folder); !s.ok()) return s;
  if (Status s = CheckFolder(g.folder); !s.ok()) return s;
  if (Status s = f.NonEmptyString("trigger", g.trigger); !s.ok()) return s;
  if (Status s = f.Bool("requiresTrigger", g.requires_trigger); !s.ok()) return s;
  if (const element* cc = f.Find("containerConfig")) {
    // Kept as text: its keys are checked (mount allowlist, timeouts) where
    // the group's configuration is applied, as for configured groups.
    if (!cc->is_object()) return FieldError("containerConfig", "expected an object");
    g.container_config = simdjson::minify(*cc);
  }
  return JobCommand(std::move(g));
}

struct TypeEntry {
  std::string_view name;
  Result<JobCommand> (*parse)(const Fields&);
};

// In JobCommand's alternative order, so TypeName can index it.
constexpr TypeEntry kTypes[] = {
    {"run", ParseRun},
    {"schedule_task", ParseScheduleTask},
    {"pause_task", ParseTaskRef<PauseTask>},
    {"resume_task", ParseTaskRef<ResumeTask>},
    {"cancel_task", ParseTaskRef<CancelTask>},
    {"cancel_job", ParseJobRef<CancelJob>},
    {"register_group", ParseRegisterGroup},
    {"refresh_groups", [](const Fields&) -> Result<JobCommand> { return JobCommand(RefreshGroups{}); }},
    {"retry_job", ParseJobRef<RetryJob>},
    {"update_task", ParseUpdateTask},
};
static_assert(std::size(kTypes) == std::variant_size_v<JobCommand>);

}  // namespace

std::string_view TypeName(const JobCommand& cmd) { return kTypes[cmd.index()].name; }

Result<JobCommand> ParseJobFile(std::string_view content) {
  Document doc;
  if (Status s = LoadObject(content, "a job file", doc); !s.ok()) return s;
  std::optional<std::string> type;
  if (Status s = doc.fields.String("type", type); !s.ok()) return s;
  if (!type) return ParseRun(doc.fields);
  for (const TypeEntry& t : kTypes) {
    if (*type == t.name) return t.parse(doc.fields);
  }
  return Status::InvalidArgument("unknown type " + Quote(*type));
}

Result<MessageCommand> ParseMessageFile(std::string_view content) {
  Document doc;
  if (Status s = LoadObject(content, "a message file", doc); !s.ok()) return s;
  const Fields& f = doc.fields;
  std::optional<std::string> type;
  if (Status s = f.String("type", type); !s.ok()) return s;
  if (!type) return Required("type");
  if (*type != "message") return FieldError("type", "expected \"message\", got " + Quote(*type));
  MessageCommand m;
  if (Status s = f.RequiredString("chatJid", m.chat_jid); !s.ok()) return s;
  if (Status s = f.RequiredString("text", m.text); !s.ok()) return s;
  if (m.text.size() > kMaxMessageTextBytes) {
    return FieldError("text", "must be at most " + std::to_string(kMaxMessageTextBytes) + " bytes (" +
                                  std::to_string(m.text.size()) + " given)");
  }
  return m;
}

std::string QuoteValue(std::string_view value) { return Quote(value); }

bool IsJsonSyntaxError(const Status& s) {
  return s.code() == Status::Code::kInvalidArgument && s.message().rfind(kSyntaxPrefix, 0) == 0;
}

}  // namespace dropq::watcher
