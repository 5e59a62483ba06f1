#include "base/text.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace text = dropq::text;

std::string testing_join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

TEST_CASE("valid UTF-8 passes through MakeValid unchanged") {
  std::string s = "plain ascii, caf\xC3\xA9, \xE6\x97\xA5\xE6\x9C\xAC, \xF0\x9F\x98\x80";
  CHECK(text::IsValidUtf8(s));
  CHECK(text::MakeValid(s) == s);
}

TEST_CASE("each ill-formed sequence becomes one replacement character per maximal subpart") {
  // 0xFF is never valid; E2 82 is a truncated 3-byte sequence (one maximal
  // subpart); ED A0 80 is a surrogate (three subparts); C0 AF is overlong.
  CHECK(text::MakeValid("a\xFF"
                        "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(text::MakeValid("\xE2\x82"
                        "x") ==
        "\xEF\xBF\xBD"
        "x");
  CHECK(text::MakeValid("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(text::MakeValid("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(text::MakeValid("\xF0\x9F\x98") == "\xEF\xBF\xBD");
}

TEST_CASE("Head never cuts a character in half") {
  std::string s = "ab\xE6\x97\xA5";  // "ab日": 5 bytes
  CHECK(text::Head(s, 4) == "ab");
  CHECK(text::Head(s, 5) == s);
  CHECK(text::Head(s, 2) == "ab");
  CHECK(text::Head(s, 0).empty());
}

TEST_CASE("Tail never starts in the middle of a character") {
  std::string s =
      "\xE6\x97\xA5"
      "ab";  // "日ab"
  CHECK(text::Tail(s, 4) == "ab");
  CHECK(text::Tail(s, 5) == s);
  CHECK(text::Tail("abc", 10) == "abc");
}

TEST_CASE("Head and Tail of random bytes are valid and within the limit") {
  std::mt19937 rng(12);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng() % 256);
    std::size_t max = rng() % 40;
    std::string h = text::Head(bytes, max), t = text::Tail(bytes, max);
    REQUIRE(text::IsValidUtf8(h));
    REQUIRE(text::IsValidUtf8(t));
    REQUIRE(h.size() <= max);
    REQUIRE(t.size() <= max);
    REQUIRE(text::IsValidUtf8(text::MakeValid(bytes)));
  }
}

TEST_CASE("ForLog escapes newlines, escape sequences and C1 controls") {
  CHECK(text::ForLog("a\nb\r\tc") == "a\\nb\\r\\tc");
  CHECK(text::ForLog("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
  CHECK(text::ForLog("\xC2\x9B"
                     "2J") == "\\u009b2J");
  CHECK(text::ForLog("caf\xC3\xA9 \xFF") == "caf\xC3\xA9 \xEF\xBF\xBD");
}

TEST_CASE("ForTerminal keeps lines and tabs but escapes what would drive the terminal") {
  CHECK(text::ForTerminal("one\n\ttwo\r\x1b[2J\xC2\x9B"
                          "1m\xFF") == "one\n\ttwo\\r\\x1b[2J\\u009b1m\xEF\xBF\xBD");
}

TEST_CASE("HasControlCharacter finds C0, DEL and C1 and nothing else") {
  CHECK_FALSE(text::HasControlCharacter("plain caf\xC3\xA9 \xE6\x97\xA5.json"));
  CHECK(text::HasControlCharacter("a\tb"));
  CHECK(text::HasControlCharacter("del\x7F"));
  CHECK(text::HasControlCharacter("csi\xC2\x9B"));
}

TEST_CASE("ForFileName keeps only portable name characters and stays within the limit") {
  CHECK(text::ForFileName("job-1.json", 100) == "job-1.json");
  CHECK(text::ForFileName("\xFF\xFE.json", 100) == "_.json");
  CHECK(text::ForFileName("..hidden", 100) == "_.hidden");
  CHECK(text::ForFileName("", 100) == "_");
  CHECK(text::ForFileName(std::string(300, 'a'), 10) == std::string(10, 'a'));
  CHECK(text::ForFileName("a\nb/c", 100) == "a_b_c");
}

TEST_CASE("Dump replaces invalid UTF-8 instead of throwing") {
  nlohmann::json j = {{"name", std::string("bad\xFF")}};
  std::string out;
  REQUIRE_NOTHROW(out = text::Dump(j));
  CHECK(text::IsValidUtf8(out));
  CHECK(out == "{\"name\":\"bad\xEF\xBF\xBD\"}");
}

// nlohmann's dump() throws on invalid UTF-8, and an exception in the loop
// killed the daemon: only base/text.cc may call it (text::Dump replaces).
TEST_CASE("no product source calls json dump outside the text module") {
  namespace fs = std::filesystem;
  const fs::path root = DROPQ_SOURCE_DIR;
  std::vector<std::string> offenders;
  int scanned = 0;
  for (const char* dir :
       {"base", "jobs", "watcher", "runner", "config", "dashboard", "daemon", "cli", "schema", "bench"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const auto ext = e.path().extension();
      if (ext != ".cc" && ext != ".h" && ext != ".in") continue;
      if (e.path() == root / "base" / "text.cc") continue;
      ++scanned;
      std::ifstream in(e.path());
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string body = ss.str();
      std::size_t line = 1, from = 0;
      for (std::size_t at = body.find(".dump("); at != std::string::npos; at = body.find(".dump(", at + 1)) {
        line += static_cast<std::size_t>(std::count(body.begin() + static_cast<std::ptrdiff_t>(from),
                                                    body.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
        from = at;
        // Comments may name it; code may not.
        std::size_t bol = body.rfind('\n', at);
        std::string before =
            body.substr(bol == std::string::npos ? 0 : bol + 1, at - (bol == std::string::npos ? 0 : bol + 1));
        if (before.find("//") != std::string::npos) continue;
        offenders.push_back(fs::relative(e.path(), root).string() + ":" + std::to_string(line));
      }
    }
  }
  CHECK(scanned > 50);
  INFO("json dump() outside base/text.cc: " << testing_join(offenders));
  CHECK(offenders.empty());
}

TEST_CASE("LastLine is the last line of a tool's stderr that is not blank, cut at 300 bytes") {
  CHECK(text::LastLine("srun: job 4 queued\nsrun: error: Invalid partition name\n\n  \n") ==
        "srun: error: Invalid partition name");
  CHECK(text::LastLine("") == "");
  CHECK(text::LastLine(std::string(400, 'x')) == std::string(300, 'x') + "…");
}
