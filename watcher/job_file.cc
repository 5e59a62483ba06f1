#include "watcher/job_file.h"

#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "jobs/clock.h"
#include "jobs/units.h"

namespace dropq::watcher {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Deep enough for any real job file, shallow enough that a hostile file of
// nested brackets is refused cheaply (invariant 4).
constexpr std::size_t kMaxDepth = 64;
constexpr std::int64_t kMaxPriority = 1'000'000;
constexpr std::int64_t kMaxTimeoutMs = 7LL * 24 * 60 * 60 * 1000;
constexpr std::int64_t kMaxAttempts = 100;
constexpr std::size_t kMaxIdChars = 200;
// Values echoed in messages are cut short: a message must stay readable even
// when the offending value is megabytes long.
constexpr std::size_t kQuoteLimit = 64;

// `s` as a JSON-style quoted string, control characters escaped and cut at
// kQuoteLimit bytes (on a UTF-8 boundary; simdjson already validated UTF-8).
std::string Quote(std::string_view s) {
  bool cut = false;
  if (s.size() > kQuoteLimit) {
    std::size_t n = kQuoteLimit;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n);
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

// Counts code points, which is what "200 characters" means to a person.
std::size_t Utf8Length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
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

  // Integer in [lo, hi]; `what` describes the range in the error.
  Status Int(std::string_view name, std::int64_t lo, std::int64_t hi, std::optional<std::int64_t>& out) const {
    const element* e = Find(name);
    if (!e) return Status::Ok();
    std::int64_t v = 0;
    switch (e->type()) {
      case element_type::INT64: v = e->get_int64().value_unsafe(); break;
      case element_type::UINT64: return FieldError(name, "number out of range");
      default: return FieldError(name, "expected an integer");
    }
    if (v < lo || v > hi) {
      return FieldError(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    out = v;
    return Status::Ok();
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
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t' || token.back() == '\r' ||
                              token.back() == '\n')) {
      token.remove_suffix(1);
    }
    simdjson::dom::parser single;
    element ignored;
    if (!single.parse(token.data(), token.size(), true).get(ignored)) continue;
    // An integer-shaped token or a float beyond double's range is out of
    // range; anything else (leading zeros, "1.") is malformed.
    std::string_view digits = token.substr(token.rfind('-', 0) == 0 ? 1 : 0);
    bool integer_shape = !digits.empty() && digits[0] != '0' &&
                         digits.find_first_not_of("0123456789") == std::string_view::npos;
    double d = 0;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
    (void)ptr;
    std::string what = integer_shape || ec == std::errc::result_out_of_range ? "number out of range" : "invalid number";
    return "field " + Quote(key) + ": " + what;
  }
  return std::nullopt;
}

constexpr std::string_view kNotYetSupported[] = {"schedule_task",  "pause_task",     "resume_task",
                                                 "cancel_task",    "cancel_job",     "register_group",
                                                 "refresh_groups"};

Result<JobCommand> ParseRun(const Fields& f) {
  RunRequest req;

  std::optional<std::string> prompt;
  if (Status s = f.String("prompt", prompt); !s.ok()) return s;
  if (!prompt) return Status::InvalidArgument("field \"prompt\" is required");
  if (prompt->empty()) return FieldError("prompt", "must not be empty");
  req.prompt = std::move(*prompt);

  if (const element* id = f.Find("id")) {
    if (id->type() == element_type::INT64) {
      req.client_id = std::to_string(id->get_int64().value_unsafe());
    } else if (id->type() == element_type::UINT64) {
      return FieldError("id", "number out of range");
    } else if (id->is_string()) {
      if (Status s = f.String("id", req.client_id); !s.ok()) return s;
      std::size_t n = Utf8Length(*req.client_id);
      if (n < 1 || n > kMaxIdChars) return FieldError("id", "must be 1 to 200 characters long");
    } else {
      return FieldError("id", "expected a string or an integer");
    }
  }

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

  if (const element* t = f.Find("timeout")) {
    std::int64_t ms = 0;
    if (t->type() == element_type::INT64) {
      ms = t->get_int64().value_unsafe();
    } else if (t->type() == element_type::UINT64) {
      return FieldError("timeout", "number out of range");
    } else if (t->is_string()) {
      std::string_view text = t->get_string().value_unsafe();
      std::optional<std::int64_t> parsed = ParseDurationMs(text);
      if (!parsed) {
        return FieldError("timeout", "invalid duration " + Quote(text) +
                                         " (milliseconds, or a number with ms, s, m, h or d, e.g. \"30s\")");
      }
      ms = *parsed;
    } else {
      return FieldError("timeout", "expected an integer (milliseconds) or a duration string");
    }
    if (ms <= 0) return FieldError("timeout", "must be positive");
    if (ms > kMaxTimeoutMs) return FieldError("timeout", "must be at most 7 days");
    req.timeout_ms = ms;
  }

  if (Status s = f.Int("max_attempts", 1, kMaxAttempts, req.max_attempts); !s.ok()) return s;

  std::optional<std::string> mode;
  if (Status s = f.String("context_mode", mode); !s.ok()) return s;
  if (mode) {
    if (*mode == "group") {
      req.context_mode = ContextMode::kGroup;
    } else if (*mode == "isolated") {
      req.context_mode = ContextMode::kIsolated;
    } else {
      return FieldError("context_mode", "expected \"group\" or \"isolated\", got " + Quote(*mode));
    }
  }

  // An empty target is a mistake, not "this group": absence means that.
  if (Status s = f.String("target_group", req.target_group); !s.ok()) return s;
  if (req.target_group && req.target_group->empty()) return FieldError("target_group", "must not be empty");
  if (Status s = f.String("targetJid", req.target_jid); !s.ok()) return s;
  if (req.target_jid && req.target_jid->empty()) return FieldError("targetJid", "must not be empty");

  return JobCommand(std::move(req));
}

}  // namespace

Result<JobCommand> ParseJobFile(std::string_view content) {
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; the copy gives it room.
  simdjson::padded_string json(content.data(), content.size());
  simdjson::dom::parser parser;
  if (auto err = parser.allocate(json.size(), kMaxDepth); err) {
    return Status::InvalidArgument(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  element root;
  if (auto err = parser.parse(json).get(root); err) {
    if (err == simdjson::NUMBER_ERROR) {
      if (auto located = LocateBadNumber(json)) return Status::InvalidArgument(*located);
    }
    return Status::InvalidArgument(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return Status::InvalidArgument("a job file must be a JSON object");

  Fields fields;
  if (Status s = fields.Load(obj); !s.ok()) return s;

  std::optional<std::string> type;
  if (Status s = fields.String("type", type); !s.ok()) return s;
  if (!type || *type == "run") return ParseRun(fields);
  for (std::string_view known : kNotYetSupported) {
    if (*type == known) return Status::InvalidArgument("type " + Quote(*type) + " is not supported yet");
  }
  return Status::InvalidArgument("unknown type " + Quote(*type));
}

}  // namespace dropq::watcher
