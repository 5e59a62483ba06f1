// The demo agent dropq runs by default inside the bubblewrap sandbox. It
// speaks NanoClaw's container protocol (see docs / DESIGN "Container
// protocol"): one JSON object on stdin, one sentinel block on stdout.
//
// It does something visible but harmless: writes demo-<jobId>.txt into the
// group workspace (tmp + fsync + rename, so a reader never sees half a file)
// and echoes the prompt back with a word count.
//
// It links only libstdc++/libc (nlohmann-json is header-only) because inside
// the sandbox only the host's /usr is visible. It never prints or writes the
// `secrets` field, nor any part of the raw input in error messages (a parse
// error excerpt could contain a secret).
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using nlohmann::json;

constexpr std::size_t kMaxInput = 64u << 20;  // a runaway writer must not exhaust memory

void PrintBlock(const json& body) {
  // `replace` keeps a stray invalid UTF-8 byte from aborting the output.
  const std::string text = "---NANOCLAW_OUTPUT_START---\n" + body.dump(-1, ' ', false, json::error_handler_t::replace) +
                           "\n---NANOCLAW_OUTPUT_END---\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

[[noreturn]] void Fail(const std::string& message) {
  PrintBlock({{"status", "error"}, {"result", nullptr}, {"error", message}});
  std::exit(1);
}

std::string ReadStdin() {
  std::string input;
  char buf[65536];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail(std::string("cannot read stdin: ") + std::strerror(errno));
    }
    input.append(buf, static_cast<std::size_t>(n));
    if (input.size() > kMaxInput) Fail("stdin exceeds 64 MiB");
  }
  return input;
}

// jobId names a file, so only digits or a conservative id alphabet pass.
std::string JobIdText(const json& in) {
  if (!in.contains("jobId")) Fail("missing jobId");
  const json& id = in["jobId"];
  if (id.is_number_unsigned() || (id.is_number_integer() && id.get<std::int64_t>() >= 0)) {
    return std::to_string(id.get<std::uint64_t>());
  }
  if (id.is_string()) {
    const std::string s = id.get<std::string>();
    bool ok = !s.empty() && s.size() <= 64;
    for (char c : s) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
    if (ok) return s;
  }
  Fail("jobId must be a non-negative integer or a short [A-Za-z0-9_-] string");
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::size_t CountWords(const std::string& s) {
  std::size_t words = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// Whole or nothing: write a private tmp name, fsync, rename over the target.
// Returns an error message, empty on success.
std::string WriteAtomically(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string path = dir + "/" + name;
  const std::string tmp = dir + "/." + name + ".tmp-" + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = "cannot write " + tmp + ": " + std::strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return err;
    }
    done += static_cast<std::size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    const std::string err = "cannot flush " + tmp + ": " + std::strerror(errno);
    unlink(tmp.c_str());
    return err;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = "cannot rename to " + path + ": " + std::strerror(errno);
    unlink(tmp.c_str());
    return err;
  }
  return "";
}

}  // namespace

int main() {
  const std::string input = ReadStdin();
  json in;
  try {
    in = json::parse(input);
  } catch (const json::parse_error& e) {
    // Only the offset: nlohmann's message quotes the input, secrets included.
    Fail("stdin is not valid JSON (error at byte " + std::to_string(e.byte) + ")");
  }
  if (!in.is_object()) Fail("stdin must be a JSON object");
  if (!in.contains("prompt") || !in["prompt"].is_string()) Fail("prompt must be a string");
  if (!in.contains("groupFolder") || !in["groupFolder"].is_string() || in["groupFolder"].get<std::string>().empty()) {
    Fail("groupFolder must be a non-empty string");
  }
  const std::string prompt = in["prompt"].get<std::string>();
  const std::string folder = in["groupFolder"].get<std::string>();
  const std::string job_id = JobIdText(in);

  // The process runtime does not mount anything, so it says where the
  // workspace is; in a sandbox it is always /workspace/group.
  const char* env_dir = std::getenv("WORKSPACE_GROUP");
  const std::string dir = env_dir && *env_dir ? env_dir : "/workspace/group";
  const std::string name = "demo-" + job_id + ".txt";
  const std::string content = "job: " + job_id + "\nwritten: " + UtcNow() + "\nprompt:\n" + prompt + "\n";
  const std::string err = WriteAtomically(dir, name, content);
  if (!err.empty()) Fail(err);

  PrintBlock({{"status", "success"},
              {"result", {{"echo", prompt}, {"wrote", dir + "/" + name}, {"words", CountWords(prompt)}}},
              {"newSessionId", "demo-" + folder}});
  return 0;
}
