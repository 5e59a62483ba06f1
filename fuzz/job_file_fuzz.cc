// libFuzzer target: dropq::watcher::ParseJobFile on arbitrary bytes.
//
// Besides crashes and sanitizer reports it checks the contract in
// watcher/job_file.h: errors are InvalidArgument with a short, valid UTF-8
// message (it is written into the rejection's .error.json, and a JSON writer
// refuses invalid UTF-8), and an accepted file carries only values the
// validator promises (ranges, non-empty strings, no NUL).
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "watcher/job_file.h"

namespace {

// Messages quote at most 64 bytes of any value (kQuoteLimit in job_file.cc);
// a few hundred bytes leaves room for the fixed text around two quotes.
constexpr std::size_t kMaxMessageBytes = 512;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "job_file_fuzz: broken invariant: %s\n", what);
  std::abort();
}

void CheckString(std::string_view s, const char* what) {
  Check(!s.empty() && s.find('\0') == std::string_view::npos, what);
}

void CheckString(const std::optional<std::string>& s, const char* what) {
  if (s) CheckString(std::string_view(*s), what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view content(reinterpret_cast<const char*>(data), size);
  auto parsed = dropq::watcher::ParseJobFile(content);
  if (!parsed.ok()) {
    const dropq::Status& s = parsed.status();
    Check(s.code() == dropq::Status::Code::kInvalidArgument, "an error is InvalidArgument");
    Check(!s.message().empty(), "an error has a message");
    Check(s.message().size() <= kMaxMessageBytes, "an error message stays short");
    Check(simdjson::validate_utf8(s.message()), "an error message is valid UTF-8");
    return 0;
  }
  // Control commands (schedule_task, cancel_job, ...) have their own types;
  // the run request carries the invariants checked here.
  const auto* run = std::get_if<dropq::RunRequest>(&*parsed);
  if (run == nullptr) return 0;
  const dropq::RunRequest& r = *run;
  CheckString(std::string_view(r.prompt), "prompt is non-empty and has no NUL");
  CheckString(r.client_id, "id is non-empty and has no NUL");
  CheckString(r.target_group, "target_group is non-empty and has no NUL");
  CheckString(r.target_jid, "targetJid is non-empty and has no NUL");
  Check(r.priority >= -1'000'000 && r.priority <= 1'000'000, "priority in range");
  Check(!r.timeout_ms || (*r.timeout_ms > 0 && *r.timeout_ms <= 7LL * 24 * 3600 * 1000), "timeout in range");
  Check(!r.max_attempts || (*r.max_attempts >= 1 && *r.max_attempts <= 100), "max_attempts in range");
  return 0;
}
