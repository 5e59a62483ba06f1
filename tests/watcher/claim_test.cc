#include "watcher/claim.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "tests/fakes/temp_dir.h"

namespace fs = std::filesystem;
using dropq::watcher::ReadClaimed;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;

TEST_CASE("a claimed file is read whole") {
  TempDir t;
  std::string body = R"({"type":"run","prompt":"hello"})";
  WriteFile(t / "job.json", body);
  auto r = ReadClaimed(t / "job.json", 1024);
  REQUIRE(r.ok());
  CHECK(*r == body);
}

TEST_CASE("an empty claimed file reads as empty text") {
  TempDir t;
  WriteFile(t / "empty.json", "");
  auto r = ReadClaimed(t / "empty.json", 1024);
  REQUIRE(r.ok());
  CHECK(r->empty());
}

TEST_CASE("a claimed file of exactly the limit is read") {
  TempDir t;
  std::string body(4096, 'x');
  WriteFile(t / "full.json", body);
  auto r = ReadClaimed(t / "full.json", 4096);
  REQUIRE(r.ok());
  CHECK(r->size() == 4096);
}

TEST_CASE("a claimed file one byte over the limit is refused with its size") {
  TempDir t;
  WriteFile(t / "big.json", std::string(4097, 'x'));
  auto r = ReadClaimed(t / "big.json", 4096);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "is 4097 bytes, over the 4096-byte limit");
}

TEST_CASE("a claimed FIFO is refused without blocking") {
  TempDir t;
  REQUIRE(::mkfifo((t / "pipe.json").c_str(), 0600) == 0);
  auto r = ReadClaimed(t / "pipe.json", 4096);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("not a regular file") != std::string::npos);
}

TEST_CASE("a claimed symlink is refused, not followed") {
  TempDir t;
  WriteFile(t / "target", "{}");
  fs::create_symlink(t / "target", t / "link.json");
  auto r = ReadClaimed(t / "link.json", 4096);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "is a symlink; dropq never follows links");
}
