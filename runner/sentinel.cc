#include "runner/sentinel.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

namespace dropq::runner {
namespace {

constexpr std::size_t kMarkerMax = std::max(kOutputStartMarker.size(), kOutputEndMarker.size());

// Stored in last_nonempty_line_ when the last non-empty line was longer than
// max_block_bytes: a kept line is trimmed, so it never starts with a space,
// and this costs no memory and no extra member.
constexpr std::string_view kOversizeLine = " ";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// Whitespace around a line never matters: markers are compared trimmed, and
// JSON strings cannot span lines, so trimming block lines keeps the JSON's
// meaning (and drops the \r of \r\n output).
std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Blocks up to this size are parsed by a per-thread parser that is kept, so
// many small blocks cost no allocation; this also bounds what it retains.
constexpr std::size_t kReusedParserBytes = 1u << 20;

// What both markers start with: the one string searched for outside blocks.
constexpr std::string_view kMarkerPrefix = "---NANOCLAW_OUTPUT_";
static_assert(kOutputStartMarker.substr(0, kMarkerPrefix.size()) == kMarkerPrefix &&
              kOutputEndMarker.substr(0, kMarkerPrefix.size()) == kMarkerPrefix);

const char* FindLast(const char* p, std::size_t n, char c) {
#ifdef __GLIBC__
  return static_cast<const char*>(memrchr(p, c, n));
#else
  while (n > 0) {
    if (p[--n] == c) return p + n;
  }
  return nullptr;
#endif
}

// Records a trimmed non-empty line as the fallback candidate.
void KeepLastLine(std::string& last, std::string_view trimmed, std::size_t max_bytes) {
  if (trimmed.size() > std::max(kMarkerMax, max_bytes)) {
    last.assign(kOversizeLine);
  } else {
    last.assign(trimmed);
  }
}

// The "result" value as the agent wrote it, minified. Re-serialising the DOM
// (simdjson::to_string) is the slow part of a big block: it escapes strings
// char by char and reformats numbers. `json` was fully validated by the DOM
// parser already and has SIMDJSON_PADDING readable bytes after it, so on
// demand can point at the value's text and the SIMD minifier compacts it.
// nullopt if that fails (the caller falls back to to_string).
std::optional<std::string> RawResult(std::string_view json, bool big) {
  namespace od = simdjson::ondemand;
  thread_local od::parser reused;
  std::unique_ptr<od::parser> own;
  od::parser* parser = &reused;
  if (big) {
    own = std::make_unique<od::parser>();
    parser = own.get();
  }
  od::document doc;
  od::object obj;
  if (parser->iterate(json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING).get(doc) ||
      doc.get_object().get(obj)) {
    return std::nullopt;
  }
  // The first key that unescapes to "result", as the DOM lookup picks it
  // (find_field compares escaped text, so it could pick another duplicate).
  od::value value;
  bool found = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.error() || field.unescaped_key().get(key)) return std::nullopt;
    if (key == "result") {
      if (field.value().get(value)) return std::nullopt;
      found = true;
      break;
    }
  }
  od::json_type type;
  if (!found || value.type().get(type)) return std::nullopt;
  std::string_view raw;
  if (type == od::json_type::array) {
    od::array a;
    if (value.get_array().get(a) || a.raw_json().get(raw)) return std::nullopt;
  } else if (type == od::json_type::object) {
    od::object o;
    if (value.get_object().get(o) || o.raw_json().get(raw)) return std::nullopt;
  } else {
    raw = value.raw_json_token();
  }
  std::string out(raw.size(), '\0');
  std::size_t n = 0;
  if (simdjson::minify(raw.data(), raw.size(), out.data(), n)) return std::nullopt;
  out.resize(n);
  return out;
}

std::string Exceeds(std::string_view what, std::size_t max) {
  return std::string(what) + " exceeds " + std::to_string(max) + " bytes";
}

}  // namespace

SentinelParser::SentinelParser(BlockCallback on_block, std::size_t max_block_bytes)
    : on_block_(std::move(on_block)), max_block_bytes_(max_block_bytes) {}

void SentinelParser::Feed(std::string_view chunk) {
  // [p, last_nl] is whole lines, p at a line start, not collecting a block.
  // Returns where to continue: after last_nl, or after a START marker line
  // (from there on lines belong to the block and take the per-line path).
  auto scan_outside_blocks = [this](const char* p, const char* last_nl) -> const char* {
    const std::size_t n_prefix = kMarkerPrefix.size();
    while (p < last_nl) {
      const void* hit = memmem(p, static_cast<std::size_t>(last_nl - p), kMarkerPrefix.data(), n_prefix);
      if (!hit) break;
      const char* h = static_cast<const char*>(hit);
      const char* ls = FindLast(p, static_cast<std::size_t>(h - p), '\n');
      ls = ls ? ls + 1 : p;
      const char* le = static_cast<const char*>(std::memchr(h, '\n', static_cast<std::size_t>(last_nl + 1 - h)));
      // This line is non-empty, so for the fallback it supersedes every line
      // before it; OnLine records it (or starts a block).
      OnLine(std::string_view(ls, static_cast<std::size_t>(le - ls)));
      p = le + 1;
      if (in_block_ && !block_overflow_) return p;
    }
    if (!saw_marker_) {
      // Walk back from the end to the last line with something on it.
      const char* e = last_nl;
      while (e > p) {
        const char* nl = FindLast(p, static_cast<std::size_t>(e - p), '\n');
        const char* s = nl ? nl + 1 : p;
        std::string_view t = Trim(std::string_view(s, static_cast<std::size_t>(e - s)));
        if (!t.empty()) {
          KeepLastLine(last_nonempty_line_, t, max_block_bytes_);
          break;
        }
        if (!nl) break;
        e = nl;
      }
    }
    return last_nl + 1;
  };

  const char* p = chunk.data();
  const char* const end = p + chunk.size();
  while (p != end) {
    const bool at_line_start = line_.empty() && !line_overflow_;
    const bool collecting = in_block_ && !block_overflow_;
    if (at_line_start && !collecting) {
      // Outside a block only marker lines and (before any marker) the last
      // non-empty line matter, so the complete lines of the chunk are not
      // walked one by one: search for the markers' common prefix, then look
      // back for the last non-empty line. This keeps floods of short lines fast.
      if (const char* last_nl = FindLast(p, static_cast<std::size_t>(end - p), '\n')) {
        p = scan_outside_blocks(p, last_nl);
        continue;
      }
    }
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (nl && at_line_start) {
      // The whole line is in this chunk: look at it in place, no copy.
      OnLine(std::string_view(p, static_cast<std::size_t>(nl - p)));
      p = nl + 1;
      continue;
    }
    // A line split across chunks: buffer it, but only as much as could still
    // matter; leading whitespace never does.
    const char* stop = nl ? nl : end;
    if (!line_overflow_) {
      if (line_.empty()) {
        while (p != stop && IsSpace(*p)) ++p;
      }
      // How much of the current line is worth keeping: inside a block, what
      // still fits in it; outside, the fallback line while no marker was seen;
      // otherwise just enough to recognise a marker.
      std::size_t cap = kMarkerMax;
      if (collecting) {
        std::size_t used = block_.size() + (block_.empty() ? 0 : 1);
        cap = std::max(cap, max_block_bytes_ > used ? max_block_bytes_ - used : 0);
      } else if (!in_block_ && !saw_marker_) {
        cap = std::max(cap, max_block_bytes_);
      }
      std::size_t n = static_cast<std::size_t>(stop - p);
      std::size_t room = cap - line_.size();
      line_.append(p, std::min(n, room));
      // Trailing whitespace past the cap is harmless; anything else means the
      // trimmed line is longer than the cap, so its content is dropped.
      if (n > room && !std::all_of(p + room, stop, IsSpace)) {
        line_overflow_ = true;
        line_.clear();
      }
    }
    if (!nl) break;
    OnLine(line_);
    line_.clear();
    line_overflow_ = false;
    p = nl + 1;
  }
}

void SentinelParser::OnLine(std::string_view line) {
  std::string_view t = Trim(line);
  // Same caps as in Feed: a line that was (or would have been) cut short is
  // never a marker and never kept.
  // (Room left in the block is checked below, when appending.)
  bool keeps_content = in_block_ ? !block_overflow_ : !saw_marker_;
  std::size_t cap = keeps_content ? std::max(kMarkerMax, max_block_bytes_) : kMarkerMax;
  bool oversize = line_overflow_ || t.size() > cap;
  bool is_start = !oversize && t == kOutputStartMarker;
  bool is_end = !oversize && t == kOutputEndMarker;

  if (in_block_) {
    if (is_end) {
      if (block_overflow_) {
        AddMalformed(Exceeds("block", max_block_bytes_));
      } else {
        ParseBlock(block_);
      }
    } else if (is_start) {
      // JSON cannot contain a bare marker line, so the previous block was cut
      // off; recover the next one instead of swallowing it.
      AddMalformed("unterminated block");
    } else {
      std::size_t sep = block_.empty() ? 0 : 1;
      if (block_overflow_ || (t.empty() && !oversize)) return;
      if (oversize || block_.size() + sep + t.size() > max_block_bytes_) {
        block_overflow_ = true;
        block_.clear();
        return;
      }
      if (!sep && line.data() == line_.data()) {
        // A block's first line buffered across chunks (typically the whole
        // JSON on one line): take the buffer instead of copying it.
        std::size_t off = static_cast<std::size_t>(t.data() - line_.data());
        block_.swap(line_);
        block_.erase(off + t.size());
        block_.erase(0, off);
        return;
      }
      // Room for simdjson's padding now saves a reallocation at parse time.
      block_.reserve(block_.size() + sep + t.size() + simdjson::SIMDJSON_PADDING);
      if (sep) block_.push_back('\n');
      block_.append(t);
      return;
    }
    // END or a new START: the current block is over.
    block_.clear();
    block_overflow_ = false;
    in_block_ = is_start;
    return;
  }

  if (is_start) {
    saw_marker_ = true;
    in_block_ = true;
    std::string().swap(last_nonempty_line_);  // the fallback is off for good
    return;
  }
  // Text outside blocks (including a stray END) only matters for the fallback.
  if (saw_marker_ || (t.empty() && !oversize)) return;
  KeepLastLine(last_nonempty_line_, oversize ? std::string_view(kOversizeLine) : t, max_block_bytes_);
}

void SentinelParser::Finish() {
  if (!line_.empty() || line_overflow_) OnLine(line_);
  line_.clear();
  line_overflow_ = false;
  if (in_block_) {
    AddMalformed("unterminated block");
    in_block_ = false;
    block_.clear();
    block_overflow_ = false;
  }
  if (!saw_marker_ && !last_nonempty_line_.empty()) {
    if (last_nonempty_line_ == kOversizeLine) {
      AddMalformed(Exceeds("last output line", max_block_bytes_));
    } else {
      std::size_t before = malformed_.size();
      ParseBlock(last_nonempty_line_);
      if (malformed_.size() > before) malformed_.back().insert(0, "last output line: ");
    }
    last_nonempty_line_.clear();  // Finish twice must not report twice
  }
}

void SentinelParser::ParseBlock(std::string_view json) {
  using simdjson::dom::element;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end. Our own buffers
  // get that as spare capacity, zeroed (stage 2 may branch on those bytes), so
  // they are parsed in place; anything else is copied by simdjson.
  bool padded = false;
  for (std::string* own : {&block_, &last_nonempty_line_}) {
    if (json.data() == own->data() && json.size() == own->size()) {
      std::size_t n = own->size();
      own->append(simdjson::SIMDJSON_PADDING, '\0');
      own->resize(n);  // shrinking keeps the capacity and the zeros
      json = *own;
      padded = true;
    }
  }
  // A parser's buffers grow to the largest document it saw, so one is kept
  // per thread for the common small blocks and big ones get their own.
  thread_local simdjson::dom::parser reused;
  std::unique_ptr<simdjson::dom::parser> big;
  simdjson::dom::parser* parser = &reused;
  if (json.size() > kReusedParserBytes) {
    big = std::make_unique<simdjson::dom::parser>();
    parser = big.get();
  }
  element root;
  if (auto err = parser->parse(json.data(), json.size(), !padded).get(root); err) {
    AddMalformed(std::string("invalid JSON: ") + simdjson::error_message(err));
    return;
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) {
    AddMalformed("output is not a JSON object");
    return;
  }

  AgentOutput out;
  element status;
  if (obj["status"].get(status)) {
    AddMalformed("missing \"status\"");
    return;
  }
  std::string_view status_text;
  if (status.get_string().get(status_text) || (status_text != "success" && status_text != "error")) {
    AddMalformed("\"status\" must be \"success\" or \"error\"");
    return;
  }
  out.status = std::string(status_text);

  element result;
  if (!obj["result"].get(result)) {
    if (padded) out.result_json = RawResult(json, json.size() > kReusedParserBytes);
    if (!out.result_json) out.result_json = simdjson::to_string(result);
  }

  // Optional strings; null counts as absent (JS writers emit it for unset).
  for (auto [name, field] : {std::pair{"newSessionId", &out.new_session_id}, std::pair{"error", &out.error}}) {
    element value;
    if (obj[name].get(value) || value.is_null()) continue;
    std::string_view text;
    if (value.get_string().get(text)) {
      AddMalformed("\"" + std::string(name) + "\" must be a string");
      return;
    }
    *field = std::string(text);
  }

  Keep(std::move(out));
  if (on_block_) on_block_(outputs_.back());  // Keep always keeps the newest
}

void SentinelParser::Keep(AgentOutput out) {
  // Bounded memory, however many blocks an agent prints: the newest block is
  // always kept; older ones go first once the count or bytes exceed the caps.
  auto size_of = [](const AgentOutput& o) {
    return o.status.size() + (o.result_json ? o.result_json->size() : 0) +
           (o.new_session_id ? o.new_session_id->size() : 0) + (o.error ? o.error->size() : 0);
  };
  kept_bytes_ += size_of(out);
  outputs_.push_back(std::move(out));
  std::size_t drop = 0;
  while (outputs_.size() - drop > 1 && (outputs_.size() - drop > kMaxKeptOutputs || kept_bytes_ > max_block_bytes_)) {
    kept_bytes_ -= size_of(outputs_[drop]);
    ++drop;
  }
  if (drop > 0) {
    outputs_.erase(outputs_.begin(), outputs_.begin() + static_cast<std::ptrdiff_t>(drop));
    dropped_outputs_ += drop;
  }
}

void SentinelParser::AddMalformed(std::string reason) {
  if (malformed_.size() >= kMaxKeptOutputs) malformed_.erase(malformed_.begin());
  malformed_.push_back(std::move(reason));
}

}  // namespace dropq::runner
