// The README's tour and command-line examples, run as a reader would run
// them: a checkout-like folder (examples/dropq.yaml, build/ with the real
// binaries), the example jobs dropped as `make run` drops them, the daemon
// running, then each command of the README in order. Commands in the tour's
// `sh` blocks must succeed; each `$ command` of "The command line" must print
// what the README shows, once what changes from run to run (times, ids made
// of the clock, pids, free disk) is masked, and the folder is called
// /srv/dropq as in the README. A block after `<!-- readme_test: skip (why)
// -->` is not run.
#include <signal.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "jobs/wait.h"
#include "tests/e2e/checkout.h"
#include "tests/e2e/e2e_root.h"

namespace dropq::testing {
namespace {

namespace fs = std::filesystem;

struct Command {
  std::string section;
  std::string line;                   // for the shell
  std::vector<std::string> expected;  // "$ " commands only; "..." matches any lines
  bool compare = false;
};

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Lines of `sh` blocks in the tour sections and `$ ` lines of "The command
// line", in README order.
std::vector<Command> ReadExamples(const fs::path& readme) {
  const std::vector<std::string> tour = {"A one-minute tour", "Recurring work, cancelling, retrying"};
  std::ifstream in(readme);
  std::vector<Command> out;
  std::string section, lang, pending, line, prev;
  bool in_block = false, skip = false;
  while (std::getline(in, line)) {
    if (!in_block && StartsWith(line, "## ")) section = line.substr(3);
    if (StartsWith(line, "```")) {
      in_block = !in_block;
      lang = in_block ? line.substr(3) : "";
      if (in_block) skip = StartsWith(prev, "<!-- readme_test: skip");
      prev = line;
      continue;
    }
    prev = line;
    if (!in_block || skip) continue;
    bool is_tour = std::find(tour.begin(), tour.end(), section) != tour.end();
    if (is_tour && lang == "sh") {
      if (line.empty() || StartsWith(line, "#")) continue;
      pending += (pending.empty() ? "" : "\n") + line;
      // A command may go on over lines inside single quotes.
      if (std::count(pending.begin(), pending.end(), '\'') % 2 == 0) {
        out.push_back({section, pending, {}, false});
        pending.clear();
      }
    } else if (section == "The command line" && lang.empty()) {
      if (StartsWith(line, "$ ")) {
        out.push_back({section, line.substr(2), {}, true});
      } else if (!out.empty() && out.back().compare && out.back().section == section) {
        out.back().expected.push_back(line);
      }
    }
  }
  return out;
}

std::string Neutral(std::string s, const std::string& dir) {
  for (std::size_t at; (at = s.find(dir)) != std::string::npos;) s.replace(at, dir.size(), "/srv/dropq");
  return s;
}

// Masks what differs from run to run; runs of spaces become one (table
// columns are as wide as what is in them).
std::string Mask(std::string s, const std::string& dir) {
  s = Neutral(std::move(s), dir);
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex(R"(\d{4}-\d\d-\d\dT\d\d[:-]\d\d[:-]\d\d[.-]\d{3}Z)"), "<time>"},
      {std::regex(R"(cli-\d+-\d+\.json)"), "cli-<ms>-<pid>.json"},
      {std::regex(R"(dropq-(\w+)-\d{10,})"), "dropq-$1-<ms>"},
      {std::regex(R"(sha256[=":]+[0-9a-f]+(\.\.\.)?)"), "sha256=<hash>"},
      {std::regex(R"(instance [0-9a-f]{12})"), "instance <id>"},
      {std::regex(R"(\b\d+(\.\d+)?(ms|s|m|h|d) ago|just now|in \d+(ms|s|m|h|d)\b)"), "<ago>"},
      {std::regex(R"(\b\d+(\.\d+)?(ms|s)\b)"), "<took>"},
      {std::regex(R"(\b\d+ ms\b)"), "<took>"},
      {std::regex(R"(duration_ms[=":]+\d+)"), "duration_ms=<n>"},
      {std::regex(R"(\d+(\.\d+)? [KMGT]iB free \(\d+%\))"), "<free>"},
      {std::regex(R"(max_user_namespaces = \d+)"), "max_user_namespaces = <n>"},
      {std::regex(R"( +)"), " "},
  };
  for (const auto& [re, to] : rules) s = std::regex_replace(s, re, to);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// `expected` (README, "..." for any lines) against `actual`, both masked.
bool Matches(const std::vector<std::string>& expected, const std::vector<std::string>& actual) {
  std::size_t a = 0;
  for (std::size_t e = 0; e < expected.size(); ++e) {
    if (expected[e] == "...") {
      if (e + 1 == expected.size()) return true;
      while (a < actual.size() && actual[a] != expected[e + 1]) ++a;
      continue;
    }
    if (a >= actual.size() || actual[a] != expected[e]) return false;
    ++a;
  }
  return a == actual.size();
}

TEST_CASE("the README's tour and command-line examples run and print what it shows", "[e2e][readme]") {
  auto examples = ReadExamples(fs::path(DROPQ_SOURCE_DIR) / "README.md");
  REQUIRE(examples.size() > 20);
  Checkout c;
  c.StartDaemon();
  REQUIRE(WaitForStore(
      c.dir / "var/store/dropq.db", [&](Store* s) { return s && *s->LastEventId() > 0; }, 30'000));
  for (const auto& ex : examples) {
    // `run` is shown with the daemon stopped (one daemon per root).
    if (c.daemon > 0 && ex.line.find("dropq run") != std::string::npos) REQUIRE(c.StopDaemon() == 0);
    if (c.daemon > 0) REQUIRE(c.WaitIdle());
    INFO(ex.section << ": " << ex.line);
    auto r = c.Sh(ex.line);
    INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
    if (!ex.compare) {
      CHECK(r.exit_code == 0);
      continue;
    }
    std::vector<std::string> expected, actual;
    for (const auto& l : ex.expected) expected.push_back(Mask(l, c.dir.str()));
    for (const auto& l : Lines(r.out)) actual.push_back(Mask(l, c.dir.str()));
    if (const char* dump = std::getenv("DROPQ_README_DUMP")) {
      // For whoever updates the README: the real output, in neutral paths.
      std::ofstream(dump, std::ios::app) << "$ " << ex.line << "\n" << Neutral(r.out, c.dir.str());
    }
    std::string want, got;
    for (const auto& l : expected) want += l + "\n";
    for (const auto& l : actual) got += l + "\n";
    INFO("README (masked):\n" << want << "actual (masked):\n" << got);
    CHECK(Matches(expected, actual));
  }
  CHECK(c.StopDaemon() == 0);
}

}  // namespace
}  // namespace dropq::testing
