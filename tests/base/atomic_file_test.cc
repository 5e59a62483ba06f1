#include "base/atomic_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "jobs/layout.h"
#include "tests/fakes/temp_dir.h"

namespace fs = std::filesystem;
using dropq::Flush;
using dropq::Layout;
using dropq::NewDirs;
using dropq::WriteFileAtomic;
using dropq::testing::ReadFile;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;

TEST_CASE("making a nested directory notes the parent of each level it made") {
  TempDir t;
  NewDirs dirs;
  REQUIRE(dirs.Create(t / "a/b/c").ok());
  CHECK(fs::is_directory(t / "a/b/c"));
  CHECK(dirs.pending() == std::set<fs::path>{t.path(), t / "a", t / "a/b"});
}

TEST_CASE("a directory that already exists leaves nothing to flush") {
  TempDir t;
  fs::create_directories(t / "a/b");
  NewDirs dirs;
  REQUIRE(dirs.Create(t / "a/b").ok());
  CHECK(dirs.pending().empty());
}

TEST_CASE("only the levels made are noted when the top ones already exist") {
  TempDir t;
  fs::create_directories(t / "a");
  NewDirs dirs;
  REQUIRE(dirs.Create(t / "a/b/c").ok());
  CHECK(dirs.pending() == std::set<fs::path>{t / "a", t / "a/b"});
}

TEST_CASE("flushing the new directories empties the list") {
  TempDir t;
  NewDirs dirs;
  REQUIRE(dirs.Create(t / "x/y").ok());
  REQUIRE(dirs.Create(t / "x/z").ok());
  REQUIRE(dirs.Flush().ok());
  CHECK(dirs.pending().empty());
}

TEST_CASE("a parent that cannot be opened for its flush is reported by name") {
  TempDir t;
  NewDirs dirs;
  REQUIRE(dirs.Create(t / "gone/child").ok());
  fs::remove_all(t / "gone");
  auto s = dirs.Flush();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find((t / "gone").string()) != std::string::npos);
  CHECK(dirs.pending().empty());
}

TEST_CASE("a directory under a regular file is refused with the path") {
  TempDir t;
  WriteFile(t / "file", "x");
  NewDirs dirs;
  auto s = dirs.Create(t / "file/sub");
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find((t / "file/sub").string()) != std::string::npos);
}

TEST_CASE("a group's directories made in a batch wait for the batch's flush") {
  TempDir t;
  Layout layout(t.path());
  NewDirs batch;
  REQUIRE(layout.CreateGroup("team", &batch).ok());
  CHECK(fs::is_directory(layout.TasksDir("team")));
  CHECK(batch.pending().count(layout.IpcDir("team")) == 1);
  CHECK(batch.pending().count(layout.GroupDir("team")) == 1);
  CHECK(batch.pending().count(layout.ClaimedDir("team").parent_path()) == 1);
}

TEST_CASE("preparing a group again makes no directory to flush") {
  TempDir t;
  Layout layout(t.path());
  REQUIRE(layout.CreateGroup("team").ok());
  NewDirs batch;
  REQUIRE(layout.CreateGroup("team", &batch).ok());
  CHECK(batch.pending().empty());
}

TEST_CASE("a file written without a flush still replaces the old one whole") {
  TempDir t;
  WriteFile(t / "snap.json", "old");
  REQUIRE(WriteFileAtomic(t / "snap.json", "new content", Flush::kNever).ok());
  CHECK(ReadFile(t / "snap.json") == "new content");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(t.path())) ++entries;
  CHECK(entries == 1);  // no temporary file left beside it
}
