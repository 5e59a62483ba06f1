#include "watcher/job_file.h"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace {

using dropq::ContextMode;
using dropq::RunRequest;
using dropq::Status;
using dropq::watcher::CancelJob;
using dropq::watcher::CancelTask;
using dropq::watcher::CatchUpPolicy;
using dropq::watcher::MessageCommand;
using dropq::watcher::OverlapPolicy;
using dropq::watcher::ParseJobFile;
using dropq::watcher::ParseMessageFile;
using dropq::watcher::PauseTask;
using dropq::watcher::RefreshGroups;
using dropq::watcher::RegisterGroup;
using dropq::watcher::ResumeTask;
using dropq::watcher::ScheduleTask;
using dropq::watcher::ScheduleType;
using dropq::watcher::UpdateTask;

// The command a valid file parses into; fails the test if it is another type.
template <typename T>
T ParseAs(std::string_view content) {
  auto r = ParseJobFile(content);
  INFO("error: " << r.status().message());
  REQUIRE(r.ok());
  REQUIRE(std::holds_alternative<T>(r.value()));
  return std::get<T>(r.value());
}

RunRequest ParseRun(std::string_view content) { return ParseAs<RunRequest>(content); }

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
  RunRequest r =
      ParseRun(R"({"prompt":"p","id":null,"priority":null,"run_at":null,"timeout":null,)"
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

TEST_CASE("each NanoClaw type is parsed into its own command, named by TypeName") {
  const std::pair<std::string, std::string> files[] = {
      {"run", R"({"type":"run","prompt":"p"})"},
      {"schedule_task", R"({"type":"schedule_task","prompt":"p","schedule_type":"cron","schedule_value":"* * * * *"})"},
      {"pause_task", R"({"type":"pause_task","taskId":"t"})"},
      {"resume_task", R"({"type":"resume_task","taskId":"t"})"},
      {"cancel_task", R"({"type":"cancel_task","taskId":"t"})"},
      {"cancel_job", R"({"type":"cancel_job","jobId":7})"},
      {"register_group", R"({"type":"register_group","jid":"j@g","name":"N","folder":"f"})"},
      {"refresh_groups", R"({"type":"refresh_groups"})"},
      {"update_task", R"({"type":"update_task","taskId":"t","prompt":"p"})"},
  };
  for (const auto& [type, file] : files) {
    INFO(file);
    auto r = ParseJobFile(file);
    INFO("error: " << r.status().message());
    REQUIRE(r.ok());
    CHECK(dropq::watcher::TypeName(*r) == type);
  }
}

TEST_CASE("an unknown type is rejected naming it") {
  CHECK(ErrorOf(R"({"type":"frobnicate","prompt":"p"})") == R"(unknown type "frobnicate")");
}

TEST_CASE("the type is checked before the run fields") {
  CHECK(ParseJobFile(R"({"type":"cancel_job","jobId":7})").ok());
  CHECK(ErrorOf(R"({"type":"frobnicate"})") == R"(unknown type "frobnicate")");
}

TEST_CASE("a type is case-sensitive, as in NanoClaw") {
  CHECK(ErrorOf(R"({"type":"Run","prompt":"p"})") == R"(unknown type "Run")");
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

// ---- max_interruptions ----------------------------------------------------------

TEST_CASE("max_interruptions is absent unless the file sets it") {
  CHECK_FALSE(ParseRun(WithPrompt(R"("max_attempts":2)")).max_interruptions);
}

TEST_CASE("max_interruptions accepts 0 to 100") {
  CHECK(ParseRun(WithPrompt(R"("max_interruptions":0)")).max_interruptions == 0);
  CHECK(ParseRun(WithPrompt(R"("max_interruptions":100)")).max_interruptions == 100);
}

TEST_CASE("a negative max_interruptions is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("max_interruptions":-1)")) == R"(field "max_interruptions": must be between 0 and 100)");
}

TEST_CASE("max_interruptions above 100 or not an integer is rejected") {
  CHECK(ErrorOf(WithPrompt(R"("max_interruptions":101)")) == R"(field "max_interruptions": must be between 0 and 100)");
  CHECK(ErrorOf(WithPrompt(R"("max_interruptions":"3")")) == R"(field "max_interruptions": expected an integer)");
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

// ---- schedule_task ------------------------------------------------------------

namespace {

// A valid schedule_task file with `more` fields appended.
std::string Schedule(const std::string& more = "") {
  std::string base = R"({"type":"schedule_task","prompt":"p","schedule_type":"cron","schedule_value":"0 9 * * 1")";
  return base + (more.empty() ? "" : "," + more) + "}";
}

std::string Interval(const std::string& value) {
  return R"({"type":"schedule_task","prompt":"p","schedule_type":"interval","schedule_value":)" + value + "}";
}

}  // namespace

TEST_CASE("a schedule_task file with only the required fields gets the defaults") {
  ScheduleTask t = ParseAs<ScheduleTask>(Schedule());
  CHECK(t.prompt == "p");
  CHECK(t.schedule_type == ScheduleType::kCron);
  CHECK(t.schedule_value == "0 9 * * 1");
  CHECK(t.context_mode == ContextMode::kIsolated);
  CHECK_FALSE(t.target_group);
  CHECK_FALSE(t.target_jid);
  CHECK_FALSE(t.task_id);
  CHECK_FALSE(t.tz);
  CHECK_FALSE(t.overlap);
  CHECK_FALSE(t.catch_up);
  CHECK_FALSE(t.starting_deadline_ms);
  CHECK_FALSE(t.keep_runs);
}

TEST_CASE("a schedule_task file with every field set is parsed into the command") {
  ScheduleTask t = ParseAs<ScheduleTask>(Schedule(
      R"("context_mode":"group","target_group":"team","targetJid":"team@g","taskId":"weekly",)"
      R"("tz":"Europe/Berlin","overlap":"replace","catch_up":"run_all","starting_deadline":"5m","keep_runs":10,)"
      R"("createdBy":"main","timestamp":"2026-11-27T08:45:57Z","groupFolder":"main")"));
  CHECK(t.context_mode == ContextMode::kGroup);
  CHECK(t.target_group == "team");
  CHECK(t.target_jid == "team@g");
  CHECK(t.task_id == "weekly");
  CHECK(t.tz == "Europe/Berlin");
  CHECK(t.overlap == OverlapPolicy::kReplace);
  CHECK(t.catch_up == CatchUpPolicy::kRunAll);
  CHECK(t.starting_deadline_ms == 300000);
  CHECK(t.keep_runs == 10);
}

TEST_CASE("schedule_task requires a prompt, a schedule_type and a schedule_value") {
  CHECK(ErrorOf(R"({"type":"schedule_task","schedule_type":"cron","schedule_value":"* * * * *"})") ==
        R"(field "prompt" is required)");
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_value":"* * * * *"})") ==
        R"(field "schedule_type" is required)");
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_type":"cron"})") ==
        R"(field "schedule_value" is required)");
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_type":"cron","schedule_value":null})") ==
        R"(field "schedule_value" is required)");
}

TEST_CASE("schedule_type must be cron, interval or once") {
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_type":"daily","schedule_value":"x"})") ==
        R"(field "schedule_type": expected "cron", "interval" or "once", got "daily")");
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_type":1,"schedule_value":"x"})") ==
        R"(field "schedule_type": expected a string)");
}

TEST_CASE("cron expressions and once times are kept as written, for the scheduler to check") {
  CHECK(ParseAs<ScheduleTask>(Schedule()).schedule_value == "0 9 * * 1");
  auto once = ParseAs<ScheduleTask>(
      R"({"type":"schedule_task","prompt":"p","schedule_type":"once","schedule_value":"2026-12-01T09:00:00"})");
  CHECK(once.schedule_type == ScheduleType::kOnce);
  CHECK(once.schedule_value == "2026-12-01T09:00:00");
  auto nonsense = ParseAs<ScheduleTask>(
      R"({"type":"schedule_task","prompt":"p","schedule_type":"cron","schedule_value":"not cron"})");
  CHECK(nonsense.schedule_value == "not cron");
}

TEST_CASE("a cron or once schedule_value must be a non-empty string") {
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_type":"cron","schedule_value":5})") ==
        R"(field "schedule_value": expected a string)");
  CHECK(ErrorOf(R"({"type":"schedule_task","prompt":"p","schedule_type":"once","schedule_value":""})") ==
        R"(field "schedule_value": must not be empty)");
}

TEST_CASE("an interval is integer milliseconds or a duration string, kept as text") {
  CHECK(ParseAs<ScheduleTask>(Interval("60000")).schedule_value == "60000");
  CHECK(ParseAs<ScheduleTask>(Interval(R"("60000")")).schedule_value == "60000");
  CHECK(ParseAs<ScheduleTask>(Interval(R"("30s")")).schedule_value == "30s");
  CHECK(ParseAs<ScheduleTask>(Interval(R"("5m")")).schedule_type == ScheduleType::kInterval);
}

TEST_CASE("a zero, negative or unparseable interval is rejected") {
  CHECK(ErrorOf(Interval("0")) == R"(field "schedule_value": an interval must be positive)");
  CHECK(ErrorOf(Interval("-5")) == R"(field "schedule_value": an interval must be positive)");
  CHECK(ErrorOf(Interval(R"("0s")")) == R"(field "schedule_value": an interval must be positive)");
  CHECK(ErrorOf(Interval(R"("soon")")) == R"(field "schedule_value": invalid interval "soon" )"
                                          R"((milliseconds, or a number with ms, s, m, h or d, e.g. "30s"))");
  CHECK(ErrorOf(Interval("1.5")) ==
        R"(field "schedule_value": expected an interval: integer milliseconds or a duration string)");
  CHECK(ErrorOf(Interval("18446744073709551615")) == R"(field "schedule_value": number out of range)");
}

TEST_CASE("schedule_task checks context_mode, targets, taskId and tz like a run file") {
  CHECK(ErrorOf(Schedule(R"("context_mode":"shared")")) ==
        R"(field "context_mode": expected "group" or "isolated", got "shared")");
  CHECK(ErrorOf(Schedule(R"("target_group":"")")) == R"(field "target_group": must not be empty)");
  CHECK(ErrorOf(Schedule(R"("targetJid":1)")) == R"(field "targetJid": expected a string)");
  CHECK(ErrorOf(Schedule(R"("taskId":"")")) == R"(field "taskId": must be 1 to 200 characters long)");
  CHECK(ErrorOf(Schedule(R"("taskId":true)")) == R"(field "taskId": expected a string or an integer)");
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("taskId":42)")).task_id == "42");
  CHECK(ErrorOf(Schedule(R"("tz":"")")) == R"(field "tz": must not be empty)");
  CHECK(ErrorOf(Schedule(R"("tz":0)")) == R"(field "tz": expected a string)");
}

TEST_CASE("every overlap and catch_up policy is accepted by name") {
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("overlap":"forbid")")).overlap == OverlapPolicy::kForbid);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("overlap":"allow")")).overlap == OverlapPolicy::kAllow);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("overlap":"replace")")).overlap == OverlapPolicy::kReplace);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("catch_up":"run_once")")).catch_up == CatchUpPolicy::kRunOnce);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("catch_up":"skip")")).catch_up == CatchUpPolicy::kSkip);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("catch_up":"run_all")")).catch_up == CatchUpPolicy::kRunAll);
}

TEST_CASE("an unknown policy is rejected naming the choices") {
  CHECK(ErrorOf(Schedule(R"("overlap":"queue")")) ==
        R"(field "overlap": expected "forbid", "allow" or "replace", got "queue")");
  CHECK(ErrorOf(Schedule(R"("catch_up":"all")")) ==
        R"(field "catch_up": expected "run_once", "skip" or "run_all", got "all")");
}

TEST_CASE("starting_deadline is a positive duration of at most a year") {
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("starting_deadline":60000)")).starting_deadline_ms == 60000);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("starting_deadline":"365d")")).starting_deadline_ms == 31536000000);
  CHECK(ErrorOf(Schedule(R"("starting_deadline":0)")) == R"(field "starting_deadline": must be positive)");
  CHECK(ErrorOf(Schedule(R"("starting_deadline":"366d")")) == R"(field "starting_deadline": must be at most 365 days)");
  CHECK_THAT(ErrorOf(Schedule(R"("starting_deadline":"later")")),
             Catch::StartsWith(R"(field "starting_deadline": invalid duration)"));
}

TEST_CASE("keep_runs is an integer from 0 to a million") {
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("keep_runs":0)")).keep_runs == 0);
  CHECK(ParseAs<ScheduleTask>(Schedule(R"("keep_runs":1000000)")).keep_runs == 1000000);
  CHECK(ErrorOf(Schedule(R"("keep_runs":-1)")) == R"(field "keep_runs": must be between 0 and 1000000)");
  CHECK(ErrorOf(Schedule(R"("keep_runs":"5")")) == R"(field "keep_runs": expected an integer)");
}

// ---- pause_task / resume_task / cancel_task -------------------------------------

TEST_CASE("pause, resume and cancel_task carry the taskId") {
  CHECK(ParseAs<PauseTask>(R"({"type":"pause_task","taskId":"task-1700000000-abc123"})").task_id ==
        "task-1700000000-abc123");
  CHECK(ParseAs<ResumeTask>(R"({"type":"resume_task","taskId":"t"})").task_id == "t");
  CHECK(ParseAs<CancelTask>(R"({"type":"cancel_task","taskId":17})").task_id == "17");
}

TEST_CASE("a task command without a usable taskId is rejected naming the field") {
  for (std::string type : {"pause_task", "resume_task", "cancel_task", "update_task"}) {
    INFO(type);
    CHECK(ErrorOf(R"({"type":")" + type + R"("})") == R"(field "taskId" is required)");
    CHECK(ErrorOf(R"({"type":")" + type + R"(","taskId":null})") == R"(field "taskId" is required)");
    CHECK(ErrorOf(R"({"type":")" + type + R"(","taskId":""})") ==
          R"(field "taskId": must be 1 to 200 characters long)");
    CHECK(ErrorOf(R"({"type":")" + type + R"(","taskId":["t"]})") ==
          R"(field "taskId": expected a string or an integer)");
  }
}

// ---- update_task --------------------------------------------------------------------

TEST_CASE("update_task carries the taskId and only the fields the file gives") {
  auto u = ParseAs<UpdateTask>(R"({"type":"update_task","taskId":"t","prompt":"new"})");
  CHECK(u.task_id == "t");
  CHECK(u.changes.prompt == "new");
  CHECK_FALSE(u.changes.schedule_type);
  CHECK_FALSE(u.changes.schedule_value);
  CHECK_FALSE(u.changes.tz);
  CHECK_FALSE(u.changes.keep_runs);
}

TEST_CASE("update_task reads dropq's task fields with schedule_task's rules") {
  auto u = ParseAs<UpdateTask>(
      R"({"type":"update_task","taskId":7,"schedule_type":"interval","schedule_value":3600000,"tz":"UTC",)"
      R"("context_mode":"group","overlap":"replace","catch_up":"skip","starting_deadline":"5m","keep_runs":3})");
  CHECK(u.task_id == "7");
  CHECK(u.changes.schedule_type == ScheduleType::kInterval);
  CHECK(u.changes.schedule_value == "3600000");
  CHECK(u.changes.tz == "UTC");
  CHECK(u.changes.context_mode == ContextMode::kGroup);
  CHECK(u.changes.overlap == OverlapPolicy::kReplace);
  CHECK(u.changes.catch_up == CatchUpPolicy::kSkip);
  CHECK(u.changes.starting_deadline_ms == 300'000);
  CHECK(u.changes.keep_runs == 3);
}

TEST_CASE("update_task takes a schedule_value alone, an integer kept as its digits for the task's own type") {
  CHECK(ParseAs<UpdateTask>(R"({"type":"update_task","taskId":"t","schedule_value":"0 8 * * *"})")
            .changes.schedule_value == "0 8 * * *");
  CHECK(ParseAs<UpdateTask>(R"({"type":"update_task","taskId":"t","schedule_value":60000})").changes.schedule_value ==
        "60000");
}

TEST_CASE("update_task refuses a schedule_type without its schedule_value") {
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","schedule_type":"cron"})") ==
        R"(field "schedule_value": is required with schedule_type (a value means something only for its type))");
}

TEST_CASE("update_task with nothing to change is rejected saying what it may change") {
  CHECK_THAT(ErrorOf(R"({"type":"update_task","taskId":"t","prompt":null})"),
             Catch::StartsWith("nothing to update: give at least one of \"prompt\""));
}

TEST_CASE("update_task refuses to move a task to another group") {
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","prompt":"p","target_group":"other"})") ==
        R"(field "target_group": a task's group cannot be changed; cancel it and schedule it again)");
  CHECK_THAT(ErrorOf(R"({"type":"update_task","taskId":"t","prompt":"p","targetJid":"x@g"})"),
             Catch::StartsWith(R"(field "targetJid": a task's group cannot be changed)"));
}

TEST_CASE("update_task refuses values of the wrong type or out of range, naming the field") {
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","prompt":""})") == R"(field "prompt": must not be empty)");
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","prompt":5})") == R"(field "prompt": expected a string)");
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","schedule_type":"cron","schedule_value":5})") ==
        R"(field "schedule_value": expected a string)");
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","schedule_type":"interval","schedule_value":0})") ==
        R"(field "schedule_value": an interval must be positive)");
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","schedule_value":true})") ==
        R"(field "schedule_value": expected a string)");
  CHECK_THAT(ErrorOf(R"({"type":"update_task","taskId":"t","overlap":"sometimes"})"),
             Catch::StartsWith(R"(field "overlap": expected "forbid", "allow" or "replace")"));
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","keep_runs":-1})") ==
        R"(field "keep_runs": must be between 0 and 1000000)");
  CHECK(ErrorOf(R"({"type":"update_task","taskId":"t","tz":""})") == R"(field "tz": must not be empty)");
}

// ---- cancel_job -------------------------------------------------------------------

TEST_CASE("cancel_job takes the jobId as an integer or a string of digits") {
  CHECK(ParseAs<CancelJob>(R"({"type":"cancel_job","jobId":7})").job_id == 7);
  CHECK(ParseAs<CancelJob>(R"({"type":"cancel_job","jobId":"42"})").job_id == 42);
  CHECK(ParseAs<CancelJob>(R"({"type":"cancel_job","jobId":"9223372036854775807"})").job_id == 9223372036854775807);
}

TEST_CASE("a jobId that is not a positive whole number is rejected") {
  CHECK(ErrorOf(R"({"type":"cancel_job"})") == R"(field "jobId" is required)");
  CHECK(ErrorOf(R"({"type":"cancel_job","jobId":0})") == R"(field "jobId": must be at least 1)");
  CHECK(ErrorOf(R"({"type":"cancel_job","jobId":-3})") == R"(field "jobId": must be at least 1)");
  CHECK(ErrorOf(R"({"type":"cancel_job","jobId":"0"})") == R"(field "jobId": must be at least 1)");
  for (std::string v : {"1.5", "true", "[7]"}) {
    INFO(v);
    CHECK(ErrorOf(R"({"type":"cancel_job","jobId":)" + v + "}") ==
          R"(field "jobId": expected an integer or a string of digits)");
  }
  for (std::string v : {"", "+7", " 7", "7.0", "-7", "seven"}) {
    INFO(v);
    CHECK(ErrorOf(R"({"type":"cancel_job","jobId":")" + v + R"("})") ==
          R"(field "jobId": expected a job id (decimal digits), got ")" + v + "\"");
  }
}

TEST_CASE("a jobId beyond 64 bits is rejected as out of range") {
  CHECK(ErrorOf(R"({"type":"cancel_job","jobId":9223372036854775808})") == R"(field "jobId": number out of range)");
  CHECK(ErrorOf(R"({"type":"cancel_job","jobId":"9223372036854775808"})") == R"(field "jobId": number out of range)");
}

// ---- register_group -----------------------------------------------------------------

TEST_CASE("register_group carries jid, name, folder and the optional fields") {
  RegisterGroup g = ParseAs<RegisterGroup>(
      R"({"type":"register_group","jid":"120363@g.us","name":"Family","folder":"family","trigger":"@Andy",)"
      R"("requiresTrigger":false,"containerConfig":{ "timeout" : 60000, "additionalMounts":[{"hostPath":"~/x"}] }})");
  CHECK(g.jid == "120363@g.us");
  CHECK(g.name == "Family");
  CHECK(g.folder == "family");
  CHECK(g.trigger == "@Andy");
  CHECK(g.requires_trigger == false);
  CHECK(g.container_config == R"({"timeout":60000,"additionalMounts":[{"hostPath":"~/x"}]})");
}

TEST_CASE("register_group needs only jid, name and folder") {
  RegisterGroup g = ParseAs<RegisterGroup>(R"({"type":"register_group","jid":"j","name":"n","folder":"f"})");
  CHECK_FALSE(g.trigger);
  CHECK_FALSE(g.requires_trigger);
  CHECK_FALSE(g.container_config);
  CHECK(ErrorOf(R"({"type":"register_group","name":"n","folder":"f"})") == R"(field "jid" is required)");
  CHECK(ErrorOf(R"({"type":"register_group","jid":"j","folder":"f"})") == R"(field "name" is required)");
  CHECK(ErrorOf(R"({"type":"register_group","jid":"j","name":"n"})") == R"(field "folder" is required)");
  CHECK(ErrorOf(R"({"type":"register_group","jid":"","name":"n","folder":"f"})") ==
        R"(field "jid": must not be empty)");
}

TEST_CASE("register_group ignores an isMain field: an agent cannot make a main group") {
  RegisterGroup g =
      ParseAs<RegisterGroup>(R"({"type":"register_group","jid":"j","name":"n","folder":"f","isMain":true})");
  CHECK(g.folder == "f");
}

TEST_CASE("register_group accepts folders that match NanoClaw's rule") {
  for (std::string folder : std::vector<std::string>{"a", "Team_2", "x-y", "0abc", std::string(64, 'z')}) {
    INFO(folder);
    CHECK(ParseAs<RegisterGroup>(R"({"type":"register_group","jid":"j","name":"n","folder":")" + folder + R"("})")
              .folder == folder);
  }
}

TEST_CASE("register_group rejects folders outside NanoClaw's rule") {
  for (std::string folder :
       std::vector<std::string>{"-x", "_x", "a/b", "..", "a.b", "a b", " a", "é", std::string(65, 'z')}) {
    INFO(folder);
    CHECK_THAT(ErrorOf(R"({"type":"register_group","jid":"j","name":"n","folder":")" + folder + R"("})"),
               Catch::StartsWith(R"(field "folder": must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, got ")"));
  }
}

TEST_CASE("register_group rejects the reserved global folder in any case") {
  for (std::string folder : {"global", "GLOBAL", "Global"}) {
    INFO(folder);
    CHECK(ErrorOf(R"({"type":"register_group","jid":"j","name":"n","folder":")" + folder + R"("})") ==
          R"(field "folder": "global" is reserved for the shared memory folder)");
  }
}

TEST_CASE("register_group checks the types of its optional fields") {
  std::string base = R"({"type":"register_group","jid":"j","name":"n","folder":"f",)";
  CHECK(ErrorOf(base + R"("trigger":""})") == R"(field "trigger": must not be empty)");
  CHECK(ErrorOf(base + R"("trigger":1})") == R"(field "trigger": expected a string)");
  CHECK(ErrorOf(base + R"("requiresTrigger":"yes"})") == R"(field "requiresTrigger": expected true or false)");
  CHECK(ErrorOf(base + R"("containerConfig":[1]})") == R"(field "containerConfig": expected an object)");
  CHECK(ErrorOf(base + R"("containerConfig":"{}"})") == R"(field "containerConfig": expected an object)");
}

// ---- refresh_groups -------------------------------------------------------------------

TEST_CASE("refresh_groups has no fields and ignores any it is given") {
  ParseAs<RefreshGroups>(R"({"type":"refresh_groups"})");
  ParseAs<RefreshGroups>(R"({"type":"refresh_groups","prompt":7,"createdBy":"main"})");
}

// ---- message files ----------------------------------------------------------------------

namespace {

MessageCommand ParseMessage(std::string_view content) {
  auto r = ParseMessageFile(content);
  INFO("error: " << r.status().message());
  REQUIRE(r.ok());
  return *r;
}

std::string MessageErrorOf(std::string_view content) {
  auto r = ParseMessageFile(content);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("a NanoClaw message file is parsed into chat jid and text") {
  MessageCommand m =
      ParseMessage(R"({"type":"message","chatJid":"120363@g.us","text":"Done: 3 files\n✅","groupFolder":"team",)"
                   R"("timestamp":"2026-11-27T08:45:57.123Z"})");
  CHECK(m.chat_jid == "120363@g.us");
  CHECK(m.text == "Done: 3 files\n✅");
}

TEST_CASE("a message file must say type message") {
  CHECK(MessageErrorOf(R"({"chatJid":"j","text":"t"})") == R"(field "type" is required)");
  CHECK(MessageErrorOf(R"({"type":"run","chatJid":"j","text":"t"})") ==
        R"(field "type": expected "message", got "run")");
}

TEST_CASE("a message file needs a non-empty chatJid and text") {
  CHECK(MessageErrorOf(R"({"type":"message","text":"t"})") == R"(field "chatJid" is required)");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"","text":"t"})") == R"(field "chatJid": must not be empty)");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":5,"text":"t"})") == R"(field "chatJid": expected a string)");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j"})") == R"(field "text" is required)");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j","text":null})") == R"(field "text" is required)");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j","text":""})") == R"(field "text": must not be empty)");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j","text":{"a":1}})") == R"(field "text": expected a string)");
}

TEST_CASE("message text may be 64 KiB but not a byte more") {
  std::string ok(64 * 1024, 'x');
  CHECK(ParseMessage(R"({"type":"message","chatJid":"j","text":")" + ok + R"("})").text.size() == 65536);
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j","text":")" + ok + R"(x"})") ==
        R"(field "text": must be at most 65536 bytes (65537 given))");
}

TEST_CASE("a message file gets the same JSON checks as a job file") {
  CHECK(MessageErrorOf("[]") == "a message file must be a JSON object");
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j","text":"a","text":"b"})") == R"(duplicate field "text")");
  CHECK(MessageErrorOf(R"({"type":"message")").rfind("invalid JSON: ", 0) == 0);
  CHECK(MessageErrorOf("{\"type\":\"message\",\"chatJid\":\"j\",\"text\":\"\xff\"}").rfind("invalid JSON: ", 0) == 0);
  CHECK(MessageErrorOf(R"({"type":"message","chatJid":"j","text":"a\u0000b"})") ==
        R"(field "text": must not contain NUL characters)");
}

// ---- dependencies and unique keys -------------------------------------------

TEST_CASE("after takes job ids and client ids, one or many, each kept once") {
  RunRequest r = ParseRun(WithPrompt(R"("after":[3,"build","build",3,"main:x"])"));
  REQUIRE(r.after.size() == 3);
  CHECK(r.after[0].job_id == std::optional<dropq::JobId>(3));
  CHECK(r.after[1].client_id == "build");
  CHECK(r.after[2].client_id == "main:x");
  CHECK(r.after_policy == dropq::AfterPolicy::kSucceeded);
  CHECK(ParseRun(WithPrompt(R"("after":"build")")).after.size() == 1);
  CHECK(ParseRun(WithPrompt(R"("after":7,"after_policy":"finished")")).after_policy ==
        dropq::AfterPolicy::kFinished);
}

TEST_CASE("after refuses what names no job") {
  CHECK(ErrorOf(WithPrompt(R"("after":[])")) == "field \"after\": must name at least one job");
  CHECK(ErrorOf(WithPrompt(R"("after":0)")) == "field \"after\": a job id must be positive");
  CHECK(ErrorOf(WithPrompt(R"("after":"")")) == "field \"after\": an id must be 1 to 200 characters long");
  CHECK(ErrorOf(WithPrompt(R"("after":[{"id":1}])")) ==
        "field \"after\": expected a job id (integer), an id (string), or an array of them");
  CHECK(ErrorOf(WithPrompt(R"("after_policy":"finished")")) == "field \"after_policy\": needs \"after\"");
  CHECK(ErrorOf(WithPrompt(R"("after":1,"after_policy":"ok")")) ==
        "field \"after_policy\": expected \"succeeded\" or \"finished\", got \"ok\"");
}

TEST_CASE("after names at most 100 jobs") {
  std::string many = "[";
  for (int i = 1; i <= 101; ++i) many += (i > 1 ? "," : "") + std::to_string(i);
  CHECK(ErrorOf(WithPrompt(R"("after":)" + many + "]")) == "field \"after\": at most 100 jobs");
}

TEST_CASE("unique_key and unique_for are read from run and schedule_task files") {
  RunRequest r = ParseRun(WithPrompt(R"("unique_key":"nightly","unique_for":"10m")"));
  CHECK(r.unique_key == std::optional<std::string>("nightly"));
  CHECK(r.unique_for_ms == std::optional<std::int64_t>(600'000));
  auto t = ParseAs<ScheduleTask>(
      R"({"type":"schedule_task","prompt":"p","schedule_type":"interval","schedule_value":"1h","unique_key":7})");
  CHECK(t.unique_key == std::optional<std::string>("7"));
  CHECK(ErrorOf(WithPrompt(R"("unique_for":"1h")")) == "field \"unique_for\": needs \"unique_key\"");
}
