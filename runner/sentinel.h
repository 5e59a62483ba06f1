#pragma once
// Streaming parser for the agent's stdout (NanoClaw's container protocol).
//
// The agent prints one or more blocks:
//   ---NANOCLAW_OUTPUT_START---
//   {"status":"success"|"error","result":<any JSON>,"newSessionId":"...","error":"..."}
//   ---NANOCLAW_OUTPUT_END---
// Each block is parsed (simdjson) as soon as its END marker arrives, so a
// long-running agent's progress is seen as it streams. Bytes may arrive in
// chunks of any size, split anywhere, markers included. Text outside blocks is
// ignored, except that with no markers at all the last non-empty line is
// parsed as the output (backwards compatibility).
//
// Memory: only the current line and the current block are buffered, and a
// block larger than max_block_bytes is dropped (counted as malformed), so a
// flood of output costs at most that much.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dropq::runner {

inline constexpr std::string_view kOutputStartMarker = "---NANOCLAW_OUTPUT_START---";
inline constexpr std::string_view kOutputEndMarker = "---NANOCLAW_OUTPUT_END---";

struct AgentOutput {
  std::string status;                      // "success" or "error" (as written)
  std::optional<std::string> result_json;  // the "result" value, re-serialised as JSON text; nullopt when absent
  std::optional<std::string> new_session_id;
  std::optional<std::string> error;
};

class SentinelParser {
 public:
  using BlockCallback = std::function<void(const AgentOutput&)>;

  explicit SentinelParser(BlockCallback on_block = {}, std::size_t max_block_bytes = 8u << 20);

  // Feed the next chunk of stdout.
  void Feed(std::string_view chunk);
  // Call once at EOF: completes the last line; applies the no-marker fallback.
  void Finish();

  // The parsed blocks so far, in order (the fallback line too): the newest
  // kMaxKeptOutputs, and within max_block_bytes in total; the newest block
  // is always kept. dropped_outputs() counts those let go.
  const std::vector<AgentOutput>& outputs() const { return outputs_; }
  std::size_t dropped_outputs() const { return dropped_outputs_; }
  static constexpr std::size_t kMaxKeptOutputs = 256;
  // Blocks (or the fallback line) that were not valid output JSON, and why.
  const std::vector<std::string>& malformed() const { return malformed_; }
  // True once a START marker was seen.
  bool saw_marker() const { return saw_marker_; }

 private:
  void OnLine(std::string_view line);
  void ParseBlock(std::string_view json);
  void Keep(AgentOutput out);
  void AddMalformed(std::string reason);

  BlockCallback on_block_;
  std::size_t max_block_bytes_;
  std::string line_;            // current partial line
  bool line_overflow_ = false;  // current line exceeded the cap; its content is dropped
  bool in_block_ = false;
  bool block_overflow_ = false;
  std::string block_;
  std::string last_nonempty_line_;
  bool saw_marker_ = false;
  std::vector<AgentOutput> outputs_;
  std::size_t kept_bytes_ = 0;
  std::size_t dropped_outputs_ = 0;
  std::vector<std::string> malformed_;
};

}  // namespace dropq::runner
