#pragma once
// Text that came from outside — a dropped file's name and contents, an
// agent's stdout and stderr, an exit reason — becomes text here and nowhere
// else. Everything written to a sink that needs text (SQLite columns, event
// and result JSON, run logs, log lines, `errors/` names) goes through one of
// these functions, so no sink ever sees invalid UTF-8 or a character cut in
// half. `Dump` is the only place the tree serialises JSON: nlohmann's own
// `dump()` throws on invalid UTF-8, and an exception in the loop killed the
// daemon (issue 12). A test fails if `.dump(` appears anywhere else.
//
// All functions take any bytes and never throw.
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace dropq::text {

// True when `bytes` is well-formed UTF-8 (simdjson's validator).
bool IsValidUtf8(std::string_view bytes);

// `bytes` as valid UTF-8: each ill-formed sequence (the maximal subpart, as
// in Unicode §3.9 and the WHATWG decoder) becomes U+FFFD.
std::string MakeValid(std::string_view bytes);

// The longest prefix (suffix) of `bytes`, made valid, that is at most
// `max_bytes` long and ends (starts) on a character boundary.
std::string Head(std::string_view bytes, std::size_t max_bytes);
std::string Tail(std::string_view bytes, std::size_t max_bytes);

// Index <= n in valid UTF-8 `valid` that starts a character (or is its end):
// where a cut at `n` may fall without splitting a character.
std::size_t BoundaryAtOrBefore(std::string_view valid, std::size_t n);

// The last line of `text` that is not blank, valid UTF-8, at most 300 bytes
// ("…" marks a cut): what a command line tool's stderr says went wrong.
std::string LastLine(std::string_view text);

// For a line of a text log: valid UTF-8 with every control character
// (C0 but none kept, DEL, C1) escaped as \n, \r, \t or \xNN / \u0085, so
// nothing an agent prints can start a new log line or drive a terminal.
std::string ForLog(std::string_view bytes);

// For many lines on a terminal (a run log `dropq logs` prints): as ForLog,
// but newlines and tabs are kept.
std::string ForTerminal(std::string_view bytes);

// True when `bytes` holds a control character ForLog would escape.
bool HasControlCharacter(std::string_view bytes);

// A file-name component made from hostile bytes: only [A-Za-z0-9._-] kept,
// every other byte (or run of them) becomes '_', no leading '.', never
// empty, at most `max_bytes` (>= 1) long.
std::string ForFileName(std::string_view bytes, std::size_t max_bytes);

// JSON text of `j` (indent < 0: one line). Strings that are not valid
// UTF-8 have their bad sequences replaced with U+FFFD instead of throwing.
std::string Dump(const nlohmann::json& j, int indent = -1);
std::string Dump(const nlohmann::ordered_json& j, int indent = -1);

}  // namespace dropq::text
