// dropq-bench: the driver of `make bench` (docs/PERFORMANCE.md). Runs each
// scenario against the real dropq binary and its baselines, prints one
// Markdown table, and with --doc replaces the table in that file (between
// its `<!-- bench:begin -->` and `<!-- bench:end -->` lines).
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/harness.h"
#include "bench/scenarios.h"

namespace {

using namespace dropq::bench;

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string Table(const Context& c, double seconds) {
  std::ostringstream o;
  utsname u{};
  uname(&u);
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  o << "Run " << date << " on " << sysconf(_SC_NPROCESSORS_ONLN) << " × " << CpuModel() << ", Linux " << u.release
    << "; " << c.repeats << " repeats; the whole run took " << Fmt(seconds) << " s.\n\n";
  o << "| scenario | metric | median | p99 | spread | baseline (same run) | ratio | target | |\n";
  o << "| --- | --- | ---: | ---: | --- | --- | ---: | --- | --- |\n";
  for (const auto& r : c.rows) {
    o << "| " << r.scenario << " | " << r.metric << " | " << Fmt(r.median) << " | " << Fmt(r.p99) << " | " << r.spread
      << " | " << r.baseline << " | " << Fmt(r.ratio) << " | " << r.target << " | " << r.verdict << " |\n";
  }
  return o.str();
}

void UpdateDoc(const std::string& path, const std::string& table) {
  std::string text = ReadText(path);
  const std::string begin = "<!-- bench:begin -->\n", end = "<!-- bench:end -->";
  auto b = text.find(begin), e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) {
    throw BenchError(path + ": no <!-- bench:begin --> ... <!-- bench:end --> section to replace");
  }
  text.replace(b + begin.size(), e - b - begin.size(), table);
  WriteText(path, text);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dropq-bench: dropq's scenarios against their baselines (make bench)"};
  Context c;
  std::string only, doc;
  app.add_option("--dropq", c.dropq, "the dropq binary to measure (a Release build)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--agent", c.agent, "the bench agent binary")->required()->check(CLI::ExistingFile);
  app.add_option("--doc", doc, "replace the table in this Markdown file")->check(CLI::ExistingFile);
  app.add_option("--only", only, "comma-separated scenarios: commit,start,ingest,e2e,slots,startup,memory,scheduler,idle,output");
  CLI11_PARSE(app, argc, argv);

  struct Scenario {
    const char* name;
    void (*run)(Context&);
  };
  const Scenario all[] = {{"commit", BenchCommitLatency}, {"start", BenchStartLatency},  {"ingest", BenchIngestBurst},
                          {"e2e", BenchEndToEnd},         {"slots", BenchManySlots},     {"startup", BenchStartup},
                          {"memory", BenchBurstMemory},   {"scheduler", BenchScheduler}, {"idle", BenchIdle},
                          {"output", BenchBigOutput}};
  try {
    c.dropq = std::filesystem::absolute(c.dropq);
    c.agent = std::filesystem::absolute(c.agent);
    c.repeats = static_cast<int>(EnvInt("BENCH_REPEATS", 3));
    std::int64_t t0 = NowNs();
    int failed = 0;
    for (const auto& s : all) {
      if (!only.empty() && ("," + only + ",").find(std::string(",") + s.name + ",") == std::string::npos) continue;
      std::int64_t ts = NowNs();
      std::fprintf(stderr, "bench: %s ...\n", s.name);
      try {
        s.run(c);
      } catch (const BenchError& e) {
        // One broken scenario must not hide the others' figures.
        ++failed;
        std::fprintf(stderr, "dropq-bench: %s: %s\n", s.name, e.what());
        c.rows.push_back({s.name, std::string("FAILED: ") + e.what(), NAN, NAN, "", "", NAN, "", "FAILED"});
      }
      std::fprintf(stderr, "bench: %s done in %.1f s\n", s.name, static_cast<double>(NowNs() - ts) / 1e9);
    }
    std::string table = Table(c, static_cast<double>(NowNs() - t0) / 1e9);
    std::cout << table;
    if (!doc.empty() && failed == 0) UpdateDoc(doc, table);
    if (failed > 0) return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dropq-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
