#include "base/text.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace dropq::text {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed sequence starting at `s[i]`, or 0 if it is
// ill-formed; `*bad` is then the length of its maximal subpart (>= 1).
// Unicode Table 3-7, well-formed UTF-8 byte sequences. Hand-written: no
// Debian library offers a replacing decoder (simdjson and simdutf only
// validate; ICU is far too big for this).
std::size_t Sequence(std::string_view s, std::size_t i, std::size_t* bad) {
  auto at = [&](std::size_t k) -> int { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1; };
  const int c = at(0);
  if (c < 0x80) return 1;
  int n = 0, lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  for (int k = 1; k < n; ++k) {
    const int b = at(k);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *bad = static_cast<std::size_t>(k);
      return 0;
    }
  }
  return static_cast<std::size_t>(n);
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) { return simdjson::validate_utf8(bytes.data(), bytes.size()); }

std::string MakeValid(std::string_view bytes) {
  if (IsValidUtf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 16);
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t bad = 0;
    std::size_t n = Sequence(bytes, i, &bad);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out.append(kReplacement);
      i += bad;
    }
  }
  return out;
}

std::size_t BoundaryAtOrBefore(std::string_view valid, std::size_t n) {
  if (n >= valid.size()) return valid.size();
  while (n > 0 && IsContinuation(static_cast<unsigned char>(valid[n]))) --n;
  return n;
}

std::string Head(std::string_view bytes, std::size_t max_bytes) {
  // Only the bytes that can matter are decoded: a replacement is never
  // shorter than what it replaces, so the first max_bytes suffice.
  std::string v = MakeValid(bytes.substr(0, std::min(bytes.size(), max_bytes + 3)));
  v.resize(BoundaryAtOrBefore(v, max_bytes));
  return v;
}

std::string Tail(std::string_view bytes, std::size_t max_bytes) {
  std::size_t from = bytes.size() > max_bytes + 3 ? bytes.size() - (max_bytes + 3) : 0;
  std::string v = MakeValid(bytes.substr(from));
  if (v.size() <= max_bytes) return v;
  std::size_t start = v.size() - max_bytes;
  while (start < v.size() && IsContinuation(static_cast<unsigned char>(v[start]))) ++start;
  return v.substr(start);
}

namespace {

bool IsC1At(std::string_view v, std::size_t i) {
  return static_cast<unsigned char>(v[i]) == 0xC2 && i + 1 < v.size() && static_cast<unsigned char>(v[i + 1]) <= 0x9F;
}

std::string Escape(std::string_view bytes, bool keep_lines) {
  std::string v = MakeValid(bytes);
  std::string out;
  out.reserve(v.size());
  char buf[8];
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (keep_lines && (c == '\n' || c == '\t')) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (IsC1At(v, i)) {
      // U+0080..U+009F, the C1 controls (CSI is U+009B).
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(v[i + 1]));
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string LastLine(std::string_view text) {
  std::string_view last;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) last = line;
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return last.size() > 300 ? Head(last, 300) + "…" : MakeValid(last);
}

std::string ForLog(std::string_view bytes) { return Escape(bytes, false); }

std::string ForTerminal(std::string_view bytes) { return Escape(bytes, true); }

bool HasControlCharacter(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x20 || c == 0x7F || IsC1At(bytes, i)) return true;
  }
  return false;
}

std::string ForFileName(std::string_view bytes, std::size_t max_bytes) {
  std::string out;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    const bool keep =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (keep) {
      out += static_cast<char>(c);
    } else if (out.empty() || out.back() != '_') {
      out += '_';
    }
    if (out.size() >= max_bytes) break;
  }
  if (!out.empty() && out[0] == '.') out[0] = '_';
  if (out.empty()) out.push_back('_');  // not = "_": GCC 12 -O2 warns -Wrestrict (PR 105329)
  out.resize(std::min(out.size(), std::max<std::size_t>(max_bytes, 1)));
  return out;
}

std::string Dump(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Dump(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace dropq::text
