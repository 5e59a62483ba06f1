#include "runner/sentinel.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using dropq::runner::AgentOutput;
using dropq::runner::kOutputEndMarker;
using dropq::runner::kOutputStartMarker;
using dropq::runner::SentinelParser;

const std::string kStart(kOutputStartMarker);
const std::string kEnd(kOutputEndMarker);

std::string Block(const std::string& json) { return kStart + "\n" + json + "\n" + kEnd + "\n"; }

// Feeds `text` in chunks of `chunk` bytes, then finishes.
void FeedAll(SentinelParser& p, std::string_view text, std::size_t chunk = 4096) {
  for (std::size_t i = 0; i < text.size(); i += chunk) p.Feed(text.substr(i, chunk));
  p.Finish();
}

std::vector<std::string> Results(const SentinelParser& p) {
  std::vector<std::string> out;
  for (const AgentOutput& o : p.outputs()) out.push_back(o.result_json.value_or("<none>"));
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("one block is parsed into status, result, session id and error") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"error","result":"partial","newSessionId":"s-1","error":"boom"})"));
  REQUIRE(p.outputs().size() == 1);
  const AgentOutput& o = p.outputs()[0];
  CHECK(o.status == "error");
  CHECK(o.result_json == R"("partial")");
  CHECK(o.new_session_id == "s-1");
  CHECK(o.error == "boom");
  CHECK(p.malformed().empty());
  CHECK(p.saw_marker());
}

TEST_CASE("the result is stored as minified JSON of any type") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","result": { "a" : [1, 2.5, "x\n"], "b" : {} } })") +
                 Block(R"({"status":"success","result":42})") + Block(R"({"status":"success","result":true})"));
  CHECK(Results(p) == Strings{R"({"a":[1,2.5,"x\n"],"b":{}})", "42", "true"});
}

TEST_CASE("a null result is kept as null and an absent one as nothing") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","result":null})") + Block(R"({"status":"success"})"));
  REQUIRE(p.outputs().size() == 2);
  CHECK(p.outputs()[0].result_json == "null");
  CHECK_FALSE(p.outputs()[1].result_json);
}

TEST_CASE("null session id and error count as absent") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","result":1,"newSessionId":null,"error":null})"));
  REQUIRE(p.outputs().size() == 1);
  CHECK_FALSE(p.outputs()[0].new_session_id);
  CHECK_FALSE(p.outputs()[0].error);
}

TEST_CASE("several blocks are reported in order") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","result":1})") + Block(R"({"status":"success","result":2})") +
                 Block(R"({"status":"error","result":3})"));
  CHECK(Results(p) == Strings{"1", "2", "3"});
  CHECK(p.outputs()[2].status == "error");
}

TEST_CASE("the callback sees each block as its end marker arrives, in order") {
  std::vector<std::string> seen;
  SentinelParser* self = nullptr;
  std::size_t outputs_at_callback = 0;
  SentinelParser p([&](const AgentOutput& o) {
    seen.push_back(*o.result_json);
    outputs_at_callback = self->outputs().size();
  });
  self = &p;
  p.Feed(kStart + "\n" + R"({"status":"success","result":"a"})" + "\n");
  CHECK(seen.empty());
  p.Feed(kEnd + "\n");
  CHECK(seen == Strings{R"("a")"});
  CHECK(outputs_at_callback == 1);
  p.Feed(Block(R"({"status":"success","result":"b"})"));
  CHECK(seen == Strings{R"("a")", R"("b")"});
  p.Finish();
  CHECK(seen.size() == 2);
}

TEST_CASE("a stream split into two chunks at every byte offset parses the same") {
  std::string stream = "log line\n" + Block(R"({"status":"success","result":{"k":"v"},"newSessionId":"s"})") +
                       "between\r\n" + kStart + "\r\n" + R"({"status":"error","result":null})" + "\r\n" + kEnd;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    INFO("split at " << cut);
    SentinelParser p;
    p.Feed(std::string_view(stream).substr(0, cut));
    p.Feed(std::string_view(stream).substr(cut));
    p.Finish();
    CHECK(Results(p) == Strings{R"({"k":"v"})", "null"});
    CHECK(p.malformed().empty());
  }
}

TEST_CASE("a stream fed one byte at a time parses the same") {
  std::string stream = Block(R"({"status":"success","result":[1,2]})") + Block(R"({"status":"success","result":3})");
  SentinelParser p;
  FeedAll(p, stream, 1);
  CHECK(Results(p) == Strings{"[1,2]", "3"});
}

TEST_CASE("CRLF line endings are tolerated") {
  SentinelParser p;
  FeedAll(p, kStart + "\r\n" + R"({"status":"success","result":"x"})" + "\r\n" + kEnd + "\r\n");
  CHECK(Results(p) == Strings{R"("x")"});
}

TEST_CASE("markers with surrounding whitespace are recognised") {
  SentinelParser p;
  FeedAll(p, "  \t" + kStart + "   \n  " + R"({"status":"success","result":1})" + "\n\t" + kEnd + " \n");
  CHECK(Results(p) == Strings{"1"});
}

TEST_CASE("a marker followed by lots of whitespace split across chunks is still a marker") {
  SentinelParser p(nullptr, 64);
  std::string stream = std::string(500, ' ') + kStart + std::string(1000, ' ') + "\n" +
                       R"({"status":"success","result":1})" + "\n" + kEnd + std::string(1000, '\t') + "\n";
  FeedAll(p, stream, 7);
  CHECK(Results(p) == Strings{"1"});
}

TEST_CASE("a marker that shares its line with other text is not a marker") {
  SentinelParser p;
  FeedAll(p, "echo " + kStart + "\n" + R"({"status":"success","result":1})" + "\n");
  CHECK_FALSE(p.saw_marker());
  // No marker, so the fallback applies to the last line instead.
  CHECK(Results(p) == Strings{"1"});
}

TEST_CASE("text around and between blocks is ignored") {
  SentinelParser p;
  FeedAll(p, "starting\n{\"not\":\"output\"}\n" + Block(R"({"status":"success","result":1})") + "progress 50%\n\n" +
                 Block(R"({"status":"success","result":2})") + "done\n{\"status\":\"success\",\"result\":99}\n");
  CHECK(Results(p) == Strings{"1", "2"});
  CHECK(p.malformed().empty());
}

TEST_CASE("a stray end marker outside a block is ignored") {
  SentinelParser p;
  FeedAll(p, kEnd + "\n" + Block(R"({"status":"success","result":1})") + kEnd + "\n");
  CHECK(Results(p) == Strings{"1"});
  CHECK(p.malformed().empty());
}

TEST_CASE("a block may span several lines of pretty-printed JSON") {
  SentinelParser p;
  FeedAll(p, Block("{\n  \"status\": \"success\",\n  \"result\": {\n    \"a\": 1\n  }\n}"));
  CHECK(Results(p) == Strings{R"({"a":1})"});
}

TEST_CASE("without markers the last non-empty line is parsed as the output") {
  SentinelParser p;
  FeedAll(p, "hello\n{\"status\":\"success\",\"result\":\"old\"}\n{\"status\":\"success\",\"result\":\"new\"}\n\n  \n");
  CHECK_FALSE(p.saw_marker());
  CHECK(Results(p) == Strings{R"("new")"});
  CHECK(p.malformed().empty());
}

TEST_CASE("the fallback line needs no trailing newline and tolerates CRLF") {
  SentinelParser p;
  FeedAll(p, "x\r\n{\"status\":\"success\",\"result\":7}\r", 3);
  CHECK(Results(p) == Strings{"7"});
}

TEST_CASE("the fallback calls the callback too") {
  int calls = 0;
  SentinelParser p([&](const AgentOutput&) { ++calls; });
  FeedAll(p, R"({"status":"success"})");
  CHECK(calls == 1);
}

TEST_CASE("an unparseable fallback line is reported as malformed") {
  SentinelParser p;
  FeedAll(p, "{\"status\":\"success\"}\nall done!\n");
  CHECK(p.outputs().empty());
  REQUIRE(p.malformed().size() == 1);
  CHECK_THAT(p.malformed()[0], Catch::StartsWith("last output line: invalid JSON: "));
}

TEST_CASE("empty output gives neither outputs nor malformed entries") {
  SentinelParser p;
  FeedAll(p, "\n \r\n\t\n");
  CHECK(p.outputs().empty());
  CHECK(p.malformed().empty());
}

TEST_CASE("once a marker was seen the last line is not parsed as a fallback") {
  SentinelParser p;
  FeedAll(p, kStart + "\nnot json\n" + kEnd + "\n" + R"({"status":"success","result":5})" + "\n");
  CHECK(p.outputs().empty());
  CHECK(p.malformed().size() == 1);
}

TEST_CASE("a malformed block is reported and the next block still parsed") {
  SentinelParser p;
  FeedAll(p, Block("{\"status\":") + Block(R"({"status":"success","result":2})"));
  CHECK(Results(p) == Strings{"2"});
  REQUIRE(p.malformed().size() == 1);
  CHECK_THAT(p.malformed()[0], Catch::StartsWith("invalid JSON: "));
}

TEST_CASE("an empty block is malformed") {
  SentinelParser p;
  FeedAll(p, kStart + "\n" + kEnd + "\n");
  CHECK(p.outputs().empty());
  REQUIRE(p.malformed().size() == 1);
  CHECK_THAT(p.malformed()[0], Catch::StartsWith("invalid JSON: "));
}

TEST_CASE("a block that is valid JSON but not valid output is malformed with the reason") {
  SentinelParser p;
  FeedAll(p, Block("[1,2]") + Block(R"({"result":1})") + Block(R"({"status":"ok"})") + Block(R"({"status":1})") +
                 Block(R"({"status":"success","newSessionId":5})") + Block(R"({"status":"error","error":{}})"));
  CHECK(p.outputs().empty());
  CHECK(p.malformed() == Strings{"output is not a JSON object", "missing \"status\"",
                                 "\"status\" must be \"success\" or \"error\"",
                                 "\"status\" must be \"success\" or \"error\"", "\"newSessionId\" must be a string",
                                 "\"error\" must be a string"});
}

TEST_CASE("a block with invalid UTF-8 is malformed") {
  SentinelParser p;
  FeedAll(p, Block("{\"status\":\"success\",\"result\":\"\xff\"}"));
  CHECK(p.outputs().empty());
  REQUIRE(p.malformed().size() == 1);
  CHECK_THAT(p.malformed()[0], Catch::Contains("UTF-8"));
}

TEST_CASE("a start marker with no end marker at EOF is an unterminated block") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","result":1})") + kStart + "\n" + R"({"status":"success","result":2})");
  CHECK(Results(p) == Strings{"1"});
  CHECK(p.malformed() == Strings{"unterminated block"});
}

TEST_CASE("a start marker inside a block abandons the first and parses the second") {
  SentinelParser p;
  FeedAll(p, kStart + "\n{\"status\":\"succ\n" + Block(R"({"status":"success","result":2})"));
  CHECK(Results(p) == Strings{"2"});
  CHECK(p.malformed() == Strings{"unterminated block"});
}

TEST_CASE("a block larger than the limit is dropped and later blocks still parsed") {
  std::string big = R"({"status":"success","result":")" + std::string(200, 'x') + "\"}";
  for (std::size_t chunk : {1, 2, 7, 16, 99, 100, 101, 4096}) {
    INFO("chunk " << chunk);
    SentinelParser p(nullptr, 100);
    FeedAll(p, Block(big) + Block(R"({"status":"success","result":2})"), chunk);
    CHECK(Results(p) == Strings{"2"});
    CHECK(p.malformed() == Strings{"block exceeds 100 bytes"});
  }
}

TEST_CASE("a block of many lines that together exceed the limit is dropped") {
  SentinelParser p(nullptr, 100);
  std::string lines = "{\"status\":\"success\",\"result\":[\n";
  for (int i = 0; i < 50; ++i) lines += "1,\n";
  lines += "1]}";
  FeedAll(p, Block(lines));
  CHECK(p.outputs().empty());
  CHECK(p.malformed() == Strings{"block exceeds 100 bytes"});
}

TEST_CASE("a block exactly at the limit is accepted") {
  std::string json = R"({"status":"success","result":")";
  json += std::string(100 - json.size() - 2, 'y') + "\"}";
  REQUIRE(json.size() == 100);
  SentinelParser p(nullptr, 100);
  FeedAll(p, Block(json), 5);
  REQUIRE(p.outputs().size() == 1);
  CHECK(p.malformed().empty());
}

TEST_CASE("an oversize unterminated block is reported once") {
  SentinelParser p(nullptr, 50);
  FeedAll(p, kStart + "\n" + std::string(1000, 'z') + "\n");
  CHECK(p.malformed() == Strings{"unterminated block"});
}

TEST_CASE("a fallback line larger than the limit is reported, not parsed") {
  SentinelParser p(nullptr, 64);
  FeedAll(p, R"({"status":"success","result":")" + std::string(100, 'x') + "\"}\n", 10);
  CHECK(p.outputs().empty());
  CHECK(p.malformed() == Strings{"last output line exceeds 64 bytes"});
}

TEST_CASE("a long line before the last line does not spoil the fallback") {
  SentinelParser p(nullptr, 64);
  FeedAll(p, std::string(10000, 'q') + "\n" + R"({"status":"success","result":1})" + "\n", 999);
  CHECK(Results(p) == Strings{"1"});
  CHECK(p.malformed().empty());
}

TEST_CASE("huge text outside blocks does not hide the next marker") {
  SentinelParser p(nullptr, 64);
  std::string noise(1 << 20, 'n');
  FeedAll(p,
          Block(R"({"status":"success","result":1})") + noise + "\n" + noise + "\n" +
              Block(R"({"status":"success","result":2})"),
          4096 + 3);
  CHECK(Results(p) == Strings{"1", "2"});
  CHECK(p.malformed().empty());
}

TEST_CASE("finishing twice reports nothing twice") {
  SentinelParser p;
  FeedAll(p, R"({"status":"success","result":1})");
  p.Finish();
  CHECK(p.outputs().size() == 1);
}

TEST_CASE("any chunking of a mixed stream gives the same outputs and reasons") {
  std::string noise(300, 'n');
  std::string stream = "boot\r\n\n echo " + kStart + " here\n" + kEnd + "\n" + noise + "\n" +
                       Block(R"({"status":"success","result":1})") + "---NANOCLAW_OUTPUT_ but not quite\n" +
                       Block("{\n \"status\": \"error\",\r\n \"result\": [1, 2]\n}") + noise + noise + "\n" +
                       Block(R"({"status":"success","result":")" + noise + "\"}") + "\t\n" + kStart +
                       "\n{\"status\":\n" + Block(R"({"status":"success","result":3,"newSessionId":"z"})") +
                       Block("nope") + kStart + "\n" + R"({"status":"success","result":4})";
  SentinelParser whole(nullptr, 200);
  FeedAll(whole, stream, stream.size());
  REQUIRE(Results(whole) == Strings{"1", "[1,2]", "3"});
  REQUIRE(whole.malformed().size() == 4);
  CHECK(whole.malformed()[0] == "block exceeds 200 bytes");
  CHECK(whole.malformed()[1] == "unterminated block");
  CHECK_THAT(whole.malformed()[2], Catch::StartsWith("invalid JSON: "));
  CHECK(whole.malformed()[3] == "unterminated block");
  for (std::size_t chunk = 1; chunk <= 70; ++chunk) {
    INFO("chunk " << chunk);
    SentinelParser p(nullptr, 200);
    FeedAll(p, stream, chunk);
    CHECK(Results(p) == Results(whole));
    CHECK(p.malformed() == whole.malformed());
    CHECK(p.outputs()[2].new_session_id == "z");
  }
}

TEST_CASE("any chunking of a stream without markers picks the same last line") {
  std::string stream = std::string(500, 'x') + "\n{\"status\":\"success\",\"result\":\"a\"}\n  \n" +
                       std::string(300, 'y') + "\r\n{\"status\":\"success\",\"result\":\"b\"}\r\n\n\t \n";
  for (std::size_t chunk = 1; chunk <= 70; ++chunk) {
    INFO("chunk " << chunk);
    SentinelParser p(nullptr, 200);
    FeedAll(p, stream, chunk);
    CHECK(Results(p) == Strings{R"("b")"});
    CHECK(p.malformed().empty());
  }
}

TEST_CASE("numbers and escapes in the result are kept as the agent wrote them") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","result": [1.50, 1e2, -0, "\u00e9\n", 18446744073709551615] })"));
  CHECK(Results(p) == Strings{R"([1.50,1e2,-0,"\u00e9\n",18446744073709551615])"});
}

TEST_CASE("with duplicate result keys the first one counts, however it is escaped") {
  SentinelParser p;
  FeedAll(p, Block(R"({"status":"success","r\u0065sult":{"a": 1},"result":2})"));
  CHECK(Results(p) == Strings{R"({"a":1})"});
}
