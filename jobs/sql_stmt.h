#pragma once
// A prepared SQLite statement with typed binding and reading, shared by the
// stores in jobs/ (Store, TaskStore). Obtained from Store::Prepare, which
// caches it; Use() resets it for the next call site.
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"
#include "base/text.h"

namespace dropq {

// A cached prepared statement. Use() resets it and clears bindings, so each
// call site starts clean; binding indexes are 1-based as in SQLite.
class SqlStmt {
 public:
  SqlStmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  SqlStmt(const SqlStmt&) = delete;
  SqlStmt& operator=(const SqlStmt&) = delete;
  ~SqlStmt() { sqlite3_finalize(s_); }

  SqlStmt& Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return *this;
  }
  SqlStmt& Bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // Every TEXT column is valid UTF-8: bytes from outside that are not are
  // stored with U+FFFD in place of each bad sequence (base/text.h).
  SqlStmt& Bind(int i, const std::string& v) {
    if (text::IsValidUtf8(v)) {
      sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    } else {
      std::string valid = text::MakeValid(v);
      sqlite3_bind_text(s_, i, valid.data(), static_cast<int>(valid.size()), SQLITE_TRANSIENT);
    }
    return *this;
  }
  SqlStmt& Bind(int i, const char* v) { return Bind(i, std::string(v)); }
  SqlStmt& Bind(int i, std::string_view v) { return Bind(i, std::string(v)); }
  SqlStmt& BindTime(int i, TimeMs t) { return Bind(i, FormatIsoUtc(t)); }
  template <typename T>
  SqlStmt& Bind(int i, const std::optional<T>& v) {
    if (v) return Bind(i, *v);
    sqlite3_bind_null(s_, i);
    return *this;
  }
  SqlStmt& BindTime(int i, const std::optional<TimeMs>& t) {
    if (t) return BindTime(i, *t);
    sqlite3_bind_null(s_, i);
    return *this;
  }

  // SQLITE_ROW → true, SQLITE_DONE → false, anything else → error.
  Result<bool> Step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(s_);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Busy("sqlite: " + msg);
    if (rc == SQLITE_CONSTRAINT) return Status::Conflict("sqlite: " + msg);
    return Status::IOError("sqlite: " + msg);
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  bool IsNull(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::int64_t Int(int c) const { return sqlite3_column_int64(s_, c); }
  std::string Text(int c) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::optional<std::string> OptText(int c) const { return IsNull(c) ? std::nullopt : std::optional(Text(c)); }
  std::optional<std::int64_t> OptInt(int c) const { return IsNull(c) ? std::nullopt : std::optional(Int(c)); }
  TimeMs Time(int c) const { return ParseIsoTime(Text(c)).value_or(0); }
  std::optional<TimeMs> OptTime(int c) const { return IsNull(c) ? std::nullopt : std::optional(Time(c)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// Steps to the end, calling each(row) per row. Running every statement to
// SQLITE_DONE matters: in autocommit mode an unfinished statement keeps its
// transaction (and, in WAL, its snapshot) open.
template <typename F>
Status ForEachRow(SqlStmt& q, F&& each) {
  for (;;) {
    auto row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    each(q);
  }
}

}  // namespace dropq
