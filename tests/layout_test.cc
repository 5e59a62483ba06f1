// The folder map of docs/DESIGN.md ("Layout") against the sources: every
// `#include "<folder>/..."` of the product must be one the map allows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fakes/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using dropq::testing::ReadFile;

// folder -> the folders it builds on, from the table after the marker.
std::map<std::string, std::set<std::string>> ReadMap() {
  const std::string doc = ReadFile(fs::path(DROPQ_SOURCE_DIR) / "docs" / "DESIGN.md");
  std::map<std::string, std::set<std::string>> map;
  std::size_t at = doc.find("<!-- layout map: read by tests/layout_test.cc -->");
  if (at == std::string::npos) return map;
  std::istringstream lines(doc.substr(at));
  std::string line;
  std::getline(lines, line);  // the marker
  const std::regex row(R"(^\| `([a-z_]+)/` \|[^|]*\| ([^|]*) \|$)");
  const std::regex word(R"([a-z_]+)");
  while (std::getline(lines, line) && !line.empty()) {
    std::smatch m;
    if (!std::regex_match(line, m, row)) continue;  // header and rule rows
    auto& deps = map[m[1]];
    const std::string list = m[2];
    for (auto w = std::sregex_iterator(list.begin(), list.end(), word); w != std::sregex_iterator(); ++w)
      deps.insert(w->str());
  }
  return map;
}

// Each folder's closure under "builds on"; the folders met again while
// being visited are pushed onto `cycle`.
std::map<std::string, std::set<std::string>> Closure(const std::map<std::string, std::set<std::string>>& map,
                                                     std::vector<std::string>& cycle) {
  std::map<std::string, std::set<std::string>> closure;
  std::set<std::string> visiting;
  std::function<const std::set<std::string>&(const std::string&)> visit =
      [&](const std::string& f) -> const std::set<std::string>& {
    if (auto it = closure.find(f); it != closure.end()) return it->second;
    static const std::set<std::string> none;
    if (!visiting.insert(f).second) {
      cycle.push_back(f);
      return none;
    }
    std::set<std::string> all{f};
    if (auto it = map.find(f); it != map.end()) {
      for (const auto& d : it->second) {
        all.insert(d);
        const auto& below = visit(d);
        all.insert(below.begin(), below.end());
      }
    }
    visiting.erase(f);
    return closure[f] = all;
  };
  for (const auto& [f, _] : map) visit(f);
  return closure;
}

std::vector<std::string> ProductFolders() {
  std::vector<std::string> out;
  const fs::path root = DROPQ_SOURCE_DIR;
  for (const auto& e : fs::directory_iterator(root)) {
    if (!e.is_regular_file() && e.is_directory() && fs::exists(e.path() / "CMakeLists.txt")) {
      const std::string cmake = ReadFile(e.path() / "CMakeLists.txt");
      if (cmake.find("dropq_library(") != std::string::npos) out.push_back(e.path().filename().string());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the design map names every library folder and each folder only once") {
  const auto map = ReadMap();
  REQUIRE(map.size() >= 9);
  const auto folders = ProductFolders();
  REQUIRE(folders.size() >= 9);
  for (const auto& f : folders) {
    INFO("folder " << f << " has a dropq_library but no row in docs/DESIGN.md's layout map");
    CHECK(map.count(f) == 1);
  }
  for (const auto& [f, deps] : map) {
    INFO("the map names " << f << "/, which is not a library folder");
    CHECK(std::find(folders.begin(), folders.end(), f) != folders.end());
    for (const auto& d : deps) {
      INFO(f << "/ builds on " << d << "/, which the map does not list");
      CHECK(map.count(d) == 1);
    }
  }
}

TEST_CASE("the design map has no cycle") {
  std::vector<std::string> cycle;
  Closure(ReadMap(), cycle);
  INFO("a cycle runs through " << (cycle.empty() ? std::string() : cycle.front()) << "/");
  CHECK(cycle.empty());
}

TEST_CASE("every include of the product's sources follows the design map") {
  const auto map = ReadMap();
  std::vector<std::string> cycle;
  const auto closure = Closure(map, cycle);
  REQUIRE(cycle.empty());
  const fs::path root = DROPQ_SOURCE_DIR;
  const std::regex include(R"(^\s*#\s*include\s*"([a-z_]+)/)");
  std::vector<std::string> offenders;
  int includes = 0;
  for (const auto& [folder, allowed] : closure) {
    for (const auto& e : fs::recursive_directory_iterator(root / folder)) {
      const auto ext = e.path().extension();
      if (ext != ".cc" && ext != ".h" && ext != ".in") continue;
      std::istringstream lines(ReadFile(e.path()));
      std::string line;
      for (int n = 1; std::getline(lines, line); ++n) {
        std::smatch m;
        if (!std::regex_search(line, m, include)) continue;
        ++includes;
        const std::string to = m[1];
        if (!map.count(to)) {
          offenders.push_back(fs::relative(e.path(), root).string() + ":" + std::to_string(n) + " includes " + to +
                              "/, which is not a library folder");
        } else if (!allowed.count(to)) {
          offenders.push_back(fs::relative(e.path(), root).string() + ":" + std::to_string(n) + " includes " + to +
                              "/, which " + folder + "/ does not build on");
        }
      }
    }
  }
  CHECK(includes > 200);
  std::string list;
  for (const auto& o : offenders) list += "\n  " + o;
  INFO("includes the map in docs/DESIGN.md does not allow:" << list);
  CHECK(offenders.empty());
}

// All SQL lives in jobs/ (and the migrations in schema/): the rest of the
// product calls named functions there. A string literal that reads as SQL,
// or a call to the connection's Prepare/Exec (or StoreSql, jobs/' own door
// to them), anywhere else fails here.
TEST_CASE("no product source outside jobs and schema writes SQL or reaches the connection") {
  const fs::path root = DROPQ_SOURCE_DIR;
  const std::regex literal(R"re("((?:[^"\\]|\\.)*)")re");
  const std::regex sql(
      R"(\b(SELECT\s.*\sFROM|SELECT (count|json_extract|1)\b|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|PRAGMA\s|SAVEPOINT|BEGIN( IMMEDIATE| EXCLUSIVE)?;|CREATE\s+(TABLE|INDEX|TRIGGER))\b)");
  const std::regex call(R"((\.|->)(Prepare|Exec)\(|\bStoreSql\b|\bsqlite3_)");
  std::vector<std::string> offenders;
  int scanned = 0;
  for (const char* dir : {"base", "watcher", "runner", "config", "dashboard", "daemon", "cli"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const auto ext = e.path().extension();
      if (ext != ".cc" && ext != ".h" && ext != ".in") continue;
      ++scanned;
      std::istringstream lines(ReadFile(e.path()));
      std::string line;
      for (int n = 1; std::getline(lines, line); ++n) {
        // Comments may name SQL; code may not.
        if (auto c = line.find("//"); c != std::string::npos && line.find('"') > c) line.erase(c);
        std::string where = fs::relative(e.path(), root).string() + ":" + std::to_string(n);
        if (std::regex_search(line, call)) offenders.push_back(where + " reaches the database connection");
        for (std::sregex_iterator m(line.begin(), line.end(), literal), end; m != end; ++m) {
          if (std::regex_search((*m)[1].str(), sql)) offenders.push_back(where + " has SQL: " + (*m)[1].str());
        }
      }
    }
  }
  CHECK(scanned > 50);
  std::string list;
  for (const auto& o : offenders) list += "\n  " + o;
  INFO("SQL outside jobs/ (move it into a named function there):" << list);
  CHECK(offenders.empty());
}
