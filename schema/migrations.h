#pragma once
// The SQLite schema, as an ordered list of migrations. Migration N (1-based)
// brings a database from PRAGMA user_version N-1 to N. Files are
// schema/migrations/NNN_name.sql; never edit one that has shipped, add the
// next number instead.
#include <string_view>
#include <vector>

namespace dropq::schema {

struct Migration {
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& migrations();

}  // namespace dropq::schema
