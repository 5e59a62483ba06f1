#include "watcher/job_file.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using dropq::ContextMode;
using dropq::RunRequest;
using dropq::Status;
using dropq::watcher::ParseJobFile;

RunRequest ParseRun(std::string_view content) {
  auto r = ParseJobFile(content);
  INFO("error: " << r.status().message());
  REQUIRE(r.ok());
  return std::get<RunRequest>(r.value());
}

// The message a rejected file gets; also checks it is an InvalidArgument.
std::string ErrorOf(std::string_view content) {
  auto r = ParseJobFile(content);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  return r.status().message();
}

std::string WithPrompt(const std::string& more) { return R"({"prompt":"p",)" + more + "}"; }

}  // namespace

// ---- the whole file -------------------------------------------------------

TEST_CASE("a run file with only a prompt gets the defaults") {
  RunRequest r = ParseRun(R"({"prompt":"say hi"})");
  CHECK(r.prompt == "say hi");
  CHECK_FALSE(r.client_id);
  CHECK(r.priority == 0);
  CHECK_FALSE(r.run_at);
  CHECK_FALSE(r.timeout_ms);
  CHECK_FALSE(r.max_attempts);
  CHECK(r.context_mode == ContextMode::kIsolated);
  CHECK_FALSE(r.target_group);
  CHECK_FALSE(r.target_jid);
}

TEST_CASE("a run file with every field set is parsed into the request") {
  RunRequest r = ParseRun(R"({
    "type": "run", "prompt": "summarise the logs", "id": "nightly-1", "priority": 5,
    "run_at": "2026-11-27T08:45:57Z", "timeout": "30s", "max_attempts": 3,
    "context_mode": "group", "target_group": "family", "targetJid": "123@g.us"
  })");
  CHECK(r.prompt == "summarise the logs");
  CHECK(r.client_id == "nightly-1");
  CHECK(r.priority == 5);
  CHECK(r.run_at == 1795769157000);
  CHECK(r.timeout_ms == 30000);
  CHECK(r.max_attempts == 3);
  CHECK(r.context_mode == ContextMode::kGroup);
  CHECK(r.target_group == "family");
  CHECK(r.target_jid == "123@g.us");
}

TEST_CASE("unknown fields of any shape are ignored") {
  RunRequest r = ParseRun(R"({"prompt":"p","extra":{"a":[1,2,{"b":null}]},"flag":true,"n":1.5})");
  CHECK(r.prompt == "p");
}

TEST_CASE("the extra fields NanoClaw writers add are ignored") {
  RunRequest r = ParseRun(R"({"type":"run","prompt":"p","createdBy":"main",)"
                          R"("timestamp":"2026-11-27T08:45:57.123Z","groupFolder":"family"})");
  CHECK(r.prompt == "p");
  CHECK_FALSE(r.target_group);
}

TEST_CASE("null optional fields count as absent") {
  RunRequest r = ParseRun(R"({"prompt":"p","id":null,"priority":null,"run_at":null,"timeout":null,)"
                          R"("max_attempts":null,"context_mode":null,"target_group":null,"targetJid":null,"type":null})");
  CHECK_FALSE(r.client_id);
  CHECK(r.priority == 0);
  CHECK_FALSE(r.timeout_ms);
  CHECK_FALSE(r.target_group);
}

TEST_CASE("a duplicate known field is rejected naming the field") {
  CHECK(ErrorOf(R"({"prompt":"a","prompt":"b"})") == R"(duplicate field "prompt")");
}

TEST_CASE("a duplicate unknown field is rejected too") {
  CHECK(ErrorOf(R"({"prompt":"a","note":1,"note":2})") == R"(duplicate field "note")");
}

TEST_CASE("a duplicate spelled with a unicode escape is still a duplicate") {
  CHECK(ErrorOf(R"({"prompt":"a","pro\u006dpt":"b"})") == R"(duplicate field "prompt")");
}

TEST_CASE("an empty file is rejected as invalid JSON") {
  CHECK(ErrorOf("").rfind("invalid JSON: ", 0) == 0);
  CHECK(ErrorOf(" \n\t ").rfind("invalid JSON: ", 0) == 0);
}

TEST_CASE("truncated JSON is rejected with simdjson's reason") {
  std::string msg = ErrorOf(R"({"prompt":"p")");
  CHECK(msg.rfind("invalid JSON: ", 0) == 0);
  CHECK(msg.size() > std::string("invalid JSON: ").size());
}

TEST_CASE("text after the object is rejected") {
  CHECK(ErrorOf(R"({"prompt":"p"} {"prompt":"q"})").rfind("invalid JSON: ", 0) == 0);
}

TEST_CASE("a top-level array or scalar is rejected") {
  CHECK(ErrorOf(R"([{"prompt":"p"}])") == "a job file must be a JSON object");
  CHECK(ErrorOf(R"("prompt")") == "a job file must be a JSON object");
  CHECK(ErrorOf("42") == "a job file must be a JSON object");
  CHECK(ErrorOf("null") == "a job file must be a JSON object");
}

TEST_CASE("100000 nested brackets are rejected as too deep") {
  std::string msg = ErrorOf(std::string(100000, '[') + std::string(100000, ']'));
  CHECK(msg.rfind("invalid JSON: ", 0) == 0);
  CHECK_THAT(msg, Catch::Contains("deep"));
}

TEST_CASE("100000 unclosed brackets are rejected as invalid JSON") {
  CHECK(ErrorOf(std::string(100000, '[')).rfind("invalid JSON: ", 0) == 0);
}

TEST_CASE("nesting beyond 64 levels inside an ignored field is rejected") {
  CHECK(ParseRun(WithPrompt(R"("x":)" + std::string(50, '[') + std::string(50, ']'))).prompt == "p");
  CHECK_THAT(ErrorOf(WithPrompt(R"("x":)" + std::string(70, '[') + std::string(70, ']'))), Catch::Contains("deep"));
}

TEST_CASE("invalid UTF-8 is rejected") {
  std::string msg = ErrorOf("{\"prompt\":\"caf\xc3\x28\"}");
  CHECK(msg.rfind("invalid JSON: ", 0) == 0);
  CHECK_THAT(msg, Catch::Contains("UTF-8"));
}

TEST_CASE("a raw NUL byte anywhere in the file is rejected") {
  using namespace std::string_literals;
  CHECK(ErrorOf("{\"prompt\":\"a\0b\"}"s).rfind("invalid JSON: ", 0) == 0);
  CHECK(ErrorOf("{\"prompt\":\"p\"}\0"s).rfind("invalid JSON: ", 0) == 0);
  CHECK(ErrorOf("\0"s).rfind("invalid JSON: ", 0) == 0);
}

// ---- type -----------------------------------------------------------------

TEST_CASE("an explicit run type is accepted") { CHECK(ParseRun(R"({"type":"run","prompt":"p"})").prompt == "p"); }

TEST_CASE("the other NanoClaw types are recognised but not supported yet") {
  for (std::string type : {"schedule_task", "pause_task", "resume_task", "cancel_task", "cancel_job",
                           "register_group", "refresh_groups"}) {
    INFO(type);
    CHECK(ErrorOf(R"({"type":")" + type + R"(","prompt":"p","taskId":"t"})") ==
          "type \"" + type + "\" is not supported yet");
  }
}

TEST_CASE("an unknown type is rejected naming it") {
  CHECK(ErrorOf(R"({"type":"frobnicate","prompt":"p"})") == R"(unknown type "frobnicate")");
}

TEST_CASE("the type is checked before the run fields") {
  CHECK(ErrorOf(R"({"type":"cancel_job","jobId":7})") == R"(type "cancel_job" is not supported yet)");
}

TEST_CASE("a non-string type is rejected naming the field") {
  CHECK(ErrorOf(R"({"type":1,"prompt":"p"})") == R"(field "type": expected a string)");
}

TEST_CASE("a long or control-character value is quoted short and escaped in the message") {
  std::string msg = ErrorOf(R"({"type":"a\"b\n)" + std::string(500, 'x') + R"(","prompt":"p"})");
  CHECK(msg.rfind(R"(unknown type "a\"b\u000axxx)", 0) == 0);
  CHECK(msg.size() < 100);
  CHECK_THAT(msg, Catch::EndsWith("…"));
}

// ---- prompt ---------------------------------------------------------------

TEST_CASE("a run file without a prompt is rejected naming the field") {
  CHECK(ErrorOf(R"({"id":"x"})") == R"(field "prompt" is required)");
  CHECK(ErrorOf(R"({"prompt":null})") == R"(field "prompt" is required)");
}

TEST_CASE("an empty prompt is rejected") {
  CHECK(ErrorOf(R"({"prompt":""})") == R"(field "prompt": must not be empty)");
}

TEST_CASE("a non-string prompt is rejected") {
  CHECK(ErrorOf(R"({"prompt":["a"]})") == R"(field "prompt": expected a string)");
  CHECK(ErrorOf(R"({"prompt":12})") == R"(field "prompt": expected a string)");
}

TEST_CASE("a prompt with an escaped NUL character is rejected") {
  CHECK(ErrorOf(R"({"prompt":"a\u0000b"})") == R"(field "prompt": must not contain NUL characters)");
}

TEST_CASE("escapes and non-ASCII text in the prompt are decoded") {
  CHECK(ParseRun(R"({"prompt":"line1\nline2 \u00e9 \ud83d\ude00"})").prompt == "line1\nline2 é 😀");
}

// ---- id -------------------------------------------------------------------

TEST_CASE("a string id becomes the client id") { CHECK(ParseRun(WithPrompt(R"("id":"abc-1")")).client_id == "abc-1"); }

TEST_CASE("an integer id is converted to its decimal string") {
  CHECK(ParseRun(WithPrompt(R"("id":42)")).client_id == "42");
  CHECK(ParseRun(WithPrompt(R"("id":-7)")).client_id == "-7");
  CHECK(ParseRun(WithPrompt(R"("id":9223372036854775807)")).client_id == "9223372036854775807");
}

TEST_CASE("an id of 200 characters is accepted, counted in characters not bytes") {
  CHECK(ParseRun(WithPrompt(R"("id":")" + std::string(200, 'a') + "\"")).client_id->size() == 200);
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "é";
  CHECK(ParseRun(WithPrompt(R"("id":")" + accents + "\"")).client_id == accents);
}

TEST_CASE("an empty or over-long id is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("id":"")")) == R"(field "id": must be 1 to 200 characters long)");
  CHECK(ErrorOf(WithPrompt(R"("id":")" + std::string(201, 'a') + "\"")) ==
        R"(field "id": must be 1 to 200 characters long)");
}

TEST_CASE("an id that is neither a string nor an integer is rejected") {
  for (std::string v : {"1.5", "true", "{}", "[1]"}) {
    INFO(v);
    CHECK(ErrorOf(WithPrompt(R"("id":)" + v)) == R"(field "id": expected a string or an integer)");
  }
}

TEST_CASE("an integer id beyond 64 bits is rejected naming the field") {
  CHECK(ErrorOf(WithPrompt(R"("id":9223372036854775808)")) == R"(field "id": number out of range)");
  CHECK(ErrorOf(WithPrompt(R"("id":123456789012345678901234567890)")) == R"(field "id": number out of range)");
}

// ---- priority ---------------------------------------------------------------

TEST_CASE("priority accepts integers up to a million either way") {
  CHECK(ParseRun(WithPrompt(R"("priority":-1000000)")).priority == -1000000);
  CHECK(ParseRun(WithPrompt(R"("priority":1000000)")).priority == 1000000);
}

TEST_CASE("priority outside a million either way is rejected with the range") {
  CHECK(ErrorOf(WithPrompt(R"("priority":1000001)")) == R"(field "priority": must be between -1000000 and 1000000)");
  CHECK(ErrorOf(WithPrompt(R"("priority":-1000001)")) == R"(field "priority": must be between -1000000 and 1000000)");
}

TEST_CASE("a non-integer priority is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("priority":1.5)")) == R"(field "priority": expected an integer)");
  CHECK(ErrorOf(WithPrompt(R"("priority":1e20)")) == R"(field "priority": expected an integer)");
  CHECK(ErrorOf(WithPrompt(R"("priority":"5")")) == R"(field "priority": expected an integer)");
}

TEST_CASE("a priority beyond 64 bits is rejected naming the field") {
  CHECK(ErrorOf(WithPrompt(R"("priority":18446744073709551615)")) == R"(field "priority": number out of range)");
  CHECK(ErrorOf(WithPrompt(R"("priority":99999999999999999999999)")) == R"(field "priority": number out of range)");
  CHECK(ErrorOf(WithPrompt(R"("priority":-9223372036854775809)")) == R"(field "priority": number out of range)");
  CHECK(ErrorOf(WithPrompt(R"("priority":1e400)")) == R"(field "priority": number out of range)");
}

TEST_CASE("a huge number in an ignored top-level field is still reported by name") {
  CHECK(ErrorOf(WithPrompt(R"("junk":123456789012345678901234567890)")) == R"(field "junk": number out of range)");
}

TEST_CASE("a malformed number is reported as invalid, not out of range") {
  CHECK(ErrorOf(WithPrompt(R"("priority":01)")) == R"(field "priority": invalid number)");
}

// ---- run_at -----------------------------------------------------------------

TEST_CASE("run_at accepts ISO-8601 in UTC, with or without fractional seconds") {
  CHECK(ParseRun(WithPrompt(R"("run_at":"2026-11-27T08:45:57Z")")).run_at == 1795769157000);
  CHECK(ParseRun(WithPrompt(R"("run_at":"2026-11-27T08:45:57.123Z")")).run_at == 1795769157123);
}

TEST_CASE("run_at with a UTC offset is converted to UTC") {
  CHECK(ParseRun(WithPrompt(R"("run_at":"2026-11-27T08:45:57.5+01:00")")).run_at == 1795765557500);
}

TEST_CASE("an invalid run_at is rejected quoting the value") {
  CHECK(ErrorOf(WithPrompt(R"("run_at":"tomorrow")")) ==
        R"(field "run_at": invalid ISO-8601 time "tomorrow" (e.g. "2026-11-27T08:45:57Z"))");
  CHECK(ErrorOf(WithPrompt(R"("run_at":1795769157000)")) == R"(field "run_at": expected a string)");
}

// ---- timeout ----------------------------------------------------------------

TEST_CASE("timeout accepts milliseconds as an integer") {
  CHECK(ParseRun(WithPrompt(R"("timeout":1500)")).timeout_ms == 1500);
}

TEST_CASE("timeout accepts duration strings") {
  CHECK(ParseRun(WithPrompt(R"("timeout":"1500")")).timeout_ms == 1500);
  CHECK(ParseRun(WithPrompt(R"("timeout":"30s")")).timeout_ms == 30000);
  CHECK(ParseRun(WithPrompt(R"("timeout":"2h")")).timeout_ms == 7200000);
  CHECK(ParseRun(WithPrompt(R"("timeout":"7d")")).timeout_ms == 604800000);
}

TEST_CASE("a zero or negative timeout is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("timeout":0)")) == R"(field "timeout": must be positive)");
  CHECK(ErrorOf(WithPrompt(R"("timeout":"0s")")) == R"(field "timeout": must be positive)");
  CHECK(ErrorOf(WithPrompt(R"("timeout":-5)")) == R"(field "timeout": must be positive)");
}

TEST_CASE("a timeout over 7 days is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("timeout":604800001)")) == R"(field "timeout": must be at most 7 days)");
  CHECK(ErrorOf(WithPrompt(R"("timeout":"8d")")) == R"(field "timeout": must be at most 7 days)");
  CHECK(ErrorOf(WithPrompt(R"("timeout":"999999999999d")")).rfind(R"(field "timeout": invalid duration)", 0) == 0);
}

TEST_CASE("an unparseable timeout string is rejected quoting it") {
  CHECK(ErrorOf(WithPrompt(R"("timeout":"soon")")) ==
        R"(field "timeout": invalid duration "soon" (milliseconds, or a number with ms, s, m, h or d, e.g. "30s"))");
}

TEST_CASE("a timeout of the wrong type is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("timeout":1.5)")) ==
        R"(field "timeout": expected an integer (milliseconds) or a duration string)");
  CHECK(ErrorOf(WithPrompt(R"("timeout":true)")) ==
        R"(field "timeout": expected an integer (milliseconds) or a duration string)");
  CHECK(ErrorOf(WithPrompt(R"("timeout":18446744073709551615)")) == R"(field "timeout": number out of range)");
}

// ---- max_attempts -------------------------------------------------------------

TEST_CASE("max_attempts accepts 1 to 100") {
  CHECK(ParseRun(WithPrompt(R"("max_attempts":1)")).max_attempts == 1);
  CHECK(ParseRun(WithPrompt(R"("max_attempts":100)")).max_attempts == 100);
}

TEST_CASE("max_attempts outside 1 to 100 or not an integer is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("max_attempts":0)")) == R"(field "max_attempts": must be between 1 and 100)");
  CHECK(ErrorOf(WithPrompt(R"("max_attempts":101)")) == R"(field "max_attempts": must be between 1 and 100)");
  CHECK(ErrorOf(WithPrompt(R"("max_attempts":"3")")) == R"(field "max_attempts": expected an integer)");
  CHECK(ErrorOf(WithPrompt(R"("max_attempts":2.0)")) == R"(field "max_attempts": expected an integer)");
}

// ---- context_mode -------------------------------------------------------------

TEST_CASE("context_mode accepts group and isolated") {
  CHECK(ParseRun(WithPrompt(R"("context_mode":"group")")).context_mode == ContextMode::kGroup);
  CHECK(ParseRun(WithPrompt(R"("context_mode":"isolated")")).context_mode == ContextMode::kIsolated);
}

TEST_CASE("any other context_mode is rejected naming the choices") {
  CHECK(ErrorOf(WithPrompt(R"("context_mode":"Group")")) ==
        R"(field "context_mode": expected "group" or "isolated", got "Group")");
  CHECK(ErrorOf(WithPrompt(R"("context_mode":1)")) == R"(field "context_mode": expected a string)");
}

// ---- target_group / targetJid ---------------------------------------------------

TEST_CASE("target_group and targetJid are kept as written") {
  RunRequest r = ParseRun(WithPrompt(R"("target_group":"work","targetJid":"42@s.whatsapp.net")"));
  CHECK(r.target_group == "work");
  CHECK(r.target_jid == "42@s.whatsapp.net");
}

TEST_CASE("an empty or non-string target is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("target_group":"")")) == R"(field "target_group": must not be empty)");
  CHECK(ErrorOf(WithPrompt(R"("targetJid":"")")) == R"(field "targetJid": must not be empty)");
  CHECK(ErrorOf(WithPrompt(R"("target_group":["a"])")) == R"(field "target_group": expected a string)");
  CHECK(ErrorOf(WithPrompt(R"("targetJid":7)")) == R"(field "targetJid": expected a string)");
}
