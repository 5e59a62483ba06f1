#pragma once
// Reading a dropq database from a test as a user's sqlite3 shell would: a
// read-only connection of its own, through the C API.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace dropq::testing {

// The first column of the first row ("" when there is none, or it is NULL).
inline std::string QueryOne(const std::filesystem::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace dropq::testing
