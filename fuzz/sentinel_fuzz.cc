// libFuzzer target: dropq::runner::SentinelParser, fed the same stdout in one
// Feed and in fuzzer-chosen chunks (down to one byte at a time).
//
// runner/sentinel.h promises that bytes may be split anywhere, markers
// included, so both must give the same outputs() (and the same
// malformed() and saw_marker(), and the same blocks passed to the callback);
// any difference aborts. Also checked: outputs() is the newest of the blocks
// the callback saw (the parser may let old ones go to bound memory), each
// "result" is valid JSON text, and a second Finish() changes nothing.
//
// Input layout, so the fuzzer steers the splits and the caps independently of
// the text:
//   byte 0      max_block_bytes: 0 = the default (8 MiB), else 4 * byte
//               (small caps reach the overflow paths with small inputs)
//   byte 1      n, the number of chunk lengths that follow
//   n bytes     chunk lengths (each byte + 1), used in turn, cycling
//   the rest    the agent's stdout
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "runner/sentinel.h"

namespace {

using dropq::runner::AgentOutput;
using dropq::runner::SentinelParser;

struct Run {
  std::vector<AgentOutput> outputs;
  std::vector<AgentOutput> called;  // what the callback got, in order
  std::vector<std::string> malformed;
  bool saw_marker = false;
};

bool Same(const AgentOutput& a, const AgentOutput& b) {
  return a.status == b.status && a.result_json == b.result_json && a.new_session_id == b.new_session_id &&
         a.error == b.error;
}

bool Same(const std::vector<AgentOutput>& a, const std::vector<AgentOutput>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const AgentOutput& x, const AgentOutput& y) { return Same(x, y); });
}

bool SameOutputs(const Run& a, const Run& b) { return Same(a.outputs, b.outputs) && Same(a.called, b.called); }

bool SameRest(const Run& a, const Run& b) { return a.saw_marker == b.saw_marker && a.malformed == b.malformed; }

bool Same(const Run& a, const Run& b) { return SameOutputs(a, b) && SameRest(a, b); }

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "sentinel_fuzz: broken invariant: %s\n", what);
  std::abort();
}

void Dump(const char* name, const Run& r) {
  std::fprintf(stderr, "%s: saw_marker=%d, %zu blocks (%zu kept in outputs()), %zu malformed\n", name, r.saw_marker,
               r.called.size(), r.outputs.size(), r.malformed.size());
  for (const AgentOutput& o : r.called) {
    std::fprintf(stderr, "  block status=%s result=%s\n", o.status.c_str(),
                 o.result_json ? o.result_json->c_str() : "(none)");
  }
  for (const std::string& m : r.malformed) std::fprintf(stderr, "  malformed: %s\n", m.c_str());
}

// Feeds `text` in chunks of the given lengths (cycling; empty = all at once).
Run Parse(std::string_view text, std::size_t max_block_bytes, const std::vector<std::size_t>& lengths) {
  Run run;
  SentinelParser parser([&](const AgentOutput& o) { run.called.push_back(o); }, max_block_bytes);
  parser.Feed({});  // an empty read is legal and must change nothing
  for (std::size_t i = 0; !text.empty(); ++i) {
    std::size_t n = lengths.empty() ? text.size() : std::min(text.size(), lengths[i % lengths.size()]);
    parser.Feed(text.substr(0, n));
    text.remove_prefix(n);
  }
  parser.Finish();
  run.outputs = parser.outputs();
  run.malformed = parser.malformed();
  run.saw_marker = parser.saw_marker();
  const std::size_t n = run.outputs.size();
  if (n > run.called.size() ||
      !Same(run.outputs,
            std::vector<AgentOutput>(run.called.end() - static_cast<std::ptrdiff_t>(n), run.called.end()))) {
    Fail("outputs() are the newest blocks the callback saw");
  }

  // Finish twice must not report twice (sentinel.cc says so).
  const std::size_t called = run.called.size();
  parser.Finish();
  if (run.called.size() != called || !Same(run.outputs, parser.outputs()) || run.malformed != parser.malformed()) {
    Fail("a second Finish is a no-op");
  }

  simdjson::dom::parser json;
  for (const AgentOutput& o : run.called) {
    if (o.status != "success" && o.status != "error") Fail("status is success or error");
    simdjson::dom::element ignored;
    if (o.result_json && json.parse(*o.result_json).get(ignored)) Fail("result_json is valid JSON");
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto next_byte = [&]() -> std::size_t {
    if (in.empty()) return 0;
    auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    return b;
  };
  const std::size_t cap_byte = next_byte();
  const std::size_t max_block_bytes = cap_byte == 0 ? std::size_t{8} << 20 : 4 * cap_byte;
  std::vector<std::size_t> lengths(next_byte());
  for (std::size_t& n : lengths) n = next_byte() + 1;
  const std::string_view text = in;

  const Run whole = Parse(text, max_block_bytes, {});
  // A fixed byte-by-byte run as well would halve the speed; the fuzzer
  // reaches it anyway (n = 1, length byte 0).
  const Run chunked = Parse(text, max_block_bytes, lengths);
  if (!Same(whole, chunked)) {
    Dump("one Feed", whole);
    Dump("fuzzer's chunks", chunked);
    Fail(SameOutputs(whole, chunked) ? "malformed() and saw_marker() do not depend on the chunking"
                                     : "outputs() do not depend on the chunking");
  }
  return 0;
}
