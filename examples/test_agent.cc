// The agent dropq's test suite runs. It speaks the container protocol like
// the demo agent, but its behaviour is a script carried in the prompt, so one
// binary can play every agent a test needs: slow, crashing, flooding,
// malformed, SIGTERM-ignoring, or probing what the sandbox lets it see.
//
// Script: commands separated by ';', each `verb args` (spaces trimmed). A
// prompt with no known verb is `echo <prompt>`. A script that mixes known and
// unknown verbs, or gives a verb bad arguments, is a typo in a test: it fails
// loudly (error block, exit 1) instead of doing something else.
//
//   echo TEXT        result.echo = TEXT
//   sleep MS         sleep
//   exit N           exit with code N now, printing nothing more
//   flood BYTES      BYTES bytes of 'x' on stdout, in lines of 100 incl. '\n'
//   stderr BYTES     the same on stderr
//   raw-stdout HEX   the bytes HEX spells (two hex digits each) on stdout, as they are
//   raw-stderr HEX   the same on stderr (invalid UTF-8, escape sequences, ...)
//   nomarkers        end with the final JSON as one plain line, no markers
//   blocks N         N success blocks {"block":i}, i = 1..N, now
//   malformed        a block whose body is not JSON, then exit 0 (no final block)
//   fail MESSAGE     the final block is status "error" with MESSAGE; exit 1
//   probe PATH       result.probes[] += {path, exists, readable, writable}
//   write PATH TEXT  result.writes[] += {path, ok, errno}
//   ignore-term      ignore SIGTERM from now on
//   child-sleep MS   fork a child (same process group) sleeping MS; result.child_pid
//   input            result.input = stdin object, secrets replaced by their key names
//   env NAME         result.env[NAME] = value or null
//   idle MS          print the final block now, sleep MS, then exit
//   read PATH        result.reads[] += {path, ok, content: its first 4 KiB}
//   await PATH       wait until PATH exists (inotify on its directory, which
//                    must exist), so a test holds agents running and
//                    releases each by creating its file
//   spew SEED BYTES  BYTES hostile bytes on stdout and as many on stderr,
//                    interleaved in random pieces (raw binary, invalid UTF-8,
//                    UTF-8 split mid-character, control characters, terminal
//                    escapes, stray markers, blocks with raw bytes inside),
//                    then a random ending: exit 0 and go on (the final block),
//                    exit 1..255 at once, or SIGKILL itself. Everything
//                    follows from SEED, so a soak is reproducible.
//
// The final block also carries newSessionId "test-<jobId>", so tests can check
// that a group's next job receives it. Secrets are never printed; error
// messages never quote the raw input.
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using nlohmann::json;

constexpr std::size_t kMaxInput = 64u << 20;

void Emit(FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void PrintBlock(const json& body) {
  Emit(stdout, "---NANOCLAW_OUTPUT_START---\n" + Dump(body) + "\n---NANOCLAW_OUTPUT_END---\n");
}

[[noreturn]] void Fail(const std::string& message) {
  PrintBlock({{"status", "error"}, {"result", nullptr}, {"error", message}});
  std::exit(1);
}

// Sleeps the whole duration even when a signal (e.g. an ignored SIGTERM's
// EINTR on some kernels, or SIGCHLD) interrupts nanosleep.
void SleepMs(std::int64_t ms) {
  timespec left{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
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

std::string Trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Splits "verb rest" at the first run of whitespace.
std::pair<std::string, std::string> SplitWord(const std::string& s) {
  const auto end = s.find_first_of(" \t");
  if (end == std::string::npos) return {s, ""};
  return {s.substr(0, end), Trim(s.substr(end))};
}

struct Command {
  std::string verb;
  std::string args;
  std::int64_t number = 0;   // parsed argument of the numeric verbs
  std::int64_t number2 = 0;  // spew's second argument
};

const std::set<std::string> kVerbs = {"echo",      "sleep",       "exit",        "flood",      "stderr",
                                      "nomarkers", "blocks",      "malformed",   "fail",       "probe",
                                      "write",     "ignore-term", "child-sleep", "input",      "env",
                                      "idle",      "read",        "raw-stdout",  "raw-stderr", "spew",
                                      "await"};
const std::set<std::string> kNumeric = {"sleep", "exit", "flood", "stderr", "blocks", "child-sleep", "idle"};
const std::set<std::string> kNoArgs = {"nomarkers", "malformed", "ignore-term", "input"};
const std::set<std::string> kNeedArg = {"probe",      "write",      "env",  "read",
                                        "raw-stdout", "raw-stderr", "spew", "await"};

std::vector<Command> ParseScript(const std::string& prompt) {
  std::vector<Command> script;
  bool any_known = false;
  std::size_t start = 0;
  for (;;) {
    const auto semi = prompt.find(';', start);
    const std::string piece = Trim(prompt.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
    if (!piece.empty()) {
      auto [verb, args] = SplitWord(piece);
      any_known = any_known || kVerbs.count(verb);
      script.push_back({verb, args});
    }
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  if (!any_known) return {{"echo", prompt}};
  for (Command& c : script) {
    if (!kVerbs.count(c.verb)) Fail("unknown command '" + c.verb + "' in script");
    if (kNoArgs.count(c.verb) && !c.args.empty()) Fail(c.verb + " takes no arguments");
    if (kNeedArg.count(c.verb) && c.args.empty()) Fail(c.verb + " needs an argument");
    if (kNumeric.count(c.verb)) {
      auto [end, ec] = std::from_chars(c.args.data(), c.args.data() + c.args.size(), c.number);
      if (ec != std::errc() || end != c.args.data() + c.args.size() || c.number < 0 ||
          (c.verb == "exit" && c.number > 255)) {
        Fail(c.verb + " needs a non-negative integer" + (c.verb == "exit" ? " <= 255" : ""));
      }
    }
    if (c.verb == "spew") {
      auto [seed, bytes] = SplitWord(c.args);
      const char* s_end = seed.data() + seed.size();
      const char* b_end = bytes.data() + bytes.size();
      auto [se, sec] = std::from_chars(seed.data(), s_end, c.number);
      auto [be, bec] = std::from_chars(bytes.data(), b_end, c.number2);
      if (sec != std::errc() || se != s_end || bec != std::errc() || be != b_end || c.number < 0 || c.number2 < 0) {
        Fail("spew needs SEED BYTES, two non-negative integers");
      }
    }
  }
  return script;
}

// The bytes a string of hex digit pairs spells ("ff0a" is 0xFF '\n').
std::string FromHex(const std::string& hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  if (hex.size() % 2 != 0) Fail("raw-*: odd number of hex digits");
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) Fail("raw-*: not a hex digit");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Exactly `bytes` bytes, every line ending in '\n' (the last may be short).
void Flood(FILE* f, std::int64_t bytes) {
  std::string line(99, 'x');
  line += '\n';
  std::string chunk;
  for (int i = 0; i < 655; ++i) chunk += line;  // 65500 bytes: whole lines only
  auto left = static_cast<std::size_t>(bytes);
  while (left >= line.size()) {
    const std::size_t n = std::min(left / line.size() * line.size(), chunk.size());
    std::fwrite(chunk.data(), 1, n, f);
    left -= n;
  }
  if (left > 0) std::fwrite(chunk.data() + (line.size() - left), 1, left, f);  // ends at a '\n'
  std::fflush(f);
}

// splitmix64: a tiny PRNG whose sequence is the same on every platform.
struct Rng {
  std::uint64_t state;
  std::uint64_t Next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t Below(std::size_t n) { return static_cast<std::size_t>(Next() % n); }
};

// One piece of hostile output.
std::string SpewPiece(Rng& rng) {
  static const char* const kBad[] = {"\xff",     "\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                     "\xe2\x82", "\xc3", "\x80\x80", "\xf0\x9f\x98"};
  static const std::string_view kControls[] = {"\x1b[2J\x1b[H",
                                               "\x1b]0;pwned\x07",
                                               "\x1b[31mred\x1b[0m",
                                               "\r",
                                               "\n",
                                               "\t",
                                               std::string_view("\0", 1),
                                               "\x7f",
                                               "\xc2\x9b"
                                               "6n",
                                               "\xe2\x80\xae",
                                               "\x08\x08"};
  static const char* const kText[] = {"\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80", "ok ", "error: "};
  std::string p;
  switch (rng.Below(7)) {
    case 0:  // raw binary
      for (std::size_t i = 0, n = 1 + rng.Below(64); i < n; ++i) p += static_cast<char>(rng.Next() & 0xFF);
      break;
    case 1:
      p = kBad[rng.Below(std::size(kBad))];
      break;
    case 2:
      p = std::string(kControls[rng.Below(std::size(kControls))]);
      break;
    case 3:  // multi-byte text, so a cut at any byte count may split a character
      for (std::size_t i = 0, n = 1 + rng.Below(40); i < n; ++i) p += kText[rng.Below(std::size(kText))];
      break;
    case 4:
      p = std::string(rng.Below(2) ? "---NANOCLAW_OUTPUT_START---" : "---NANOCLAW_OUTPUT_END---") + "\n";
      break;
    case 5: {  // a block whose strings carry raw bytes
      std::string raw;
      for (std::size_t i = 0, n = 1 + rng.Below(16); i < n; ++i) raw += static_cast<char>(0x80 | (rng.Next() & 0x7F));
      p = "---NANOCLAW_OUTPUT_START---\n{\"status\":\"error\",\"result\":null,\"error\":\"" + raw +
          "\"}\n---NANOCLAW_OUTPUT_END---\n";
      break;
    }
    default:
      p = "plain line " + std::to_string(rng.Next() % 1000) + "\n";
  }
  return p;
}

// `spew SEED BYTES`: see the header. Returns only when the ending is exit 0.
void Spew(std::uint64_t seed, std::int64_t bytes) {
  Rng rng{seed};
  std::int64_t left[2] = {bytes, bytes};
  FILE* streams[2] = {stdout, stderr};
  while (left[0] > 0 || left[1] > 0) {
    int s = left[0] <= 0 ? 1 : left[1] <= 0 ? 0 : static_cast<int>(rng.Below(2));
    std::string piece = SpewPiece(rng);
    if (static_cast<std::int64_t>(piece.size()) > left[s]) piece.resize(static_cast<std::size_t>(left[s]));
    std::fwrite(piece.data(), 1, piece.size(), streams[s]);
    left[s] -= static_cast<std::int64_t>(piece.size());
  }
  std::fflush(nullptr);
  const std::size_t ending = rng.Below(8);
  if (ending < 2) return;
  if (ending == 2) {
    std::raise(SIGKILL);
  }
  _exit(1 + static_cast<int>(rng.Below(255)));
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : std::to_string(err);
}

json Probe(const std::string& path) {
  json p = {{"path", path}, {"exists", false}, {"readable", false}, {"writable", false}};
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return p;
  p["exists"] = true;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path.c_str())) {
      p["readable"] = true;
      closedir(d);
    }
    const std::string probe = path + "/.probe-" + std::to_string(getpid());
    int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      p["writable"] = true;
      close(fd);
      unlink(probe.c_str());
    }
  } else {
    // O_NONBLOCK so a FIFO cannot hang the probe; O_APPEND so it changes nothing.
    int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      p["readable"] = true;
      close(fd);
    }
    fd = open(path.c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      p["writable"] = true;
      close(fd);
    }
  }
  return p;
}

json WriteFile(const std::string& args) {
  auto [path, text] = SplitWord(args);
  int err = 0;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    err = errno;
  } else {
    std::size_t done = 0;
    while (done < text.size() && err == 0) {
      ssize_t n = write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno != EINTR) err = errno;
      if (n > 0) done += static_cast<std::size_t>(n);
    }
    if (close(fd) != 0 && err == 0) err = errno;
  }
  return {{"path", path}, {"ok", err == 0}, {"errno", err == 0 ? "" : ErrnoName(err)}};
}

// The input as received, but with secrets reduced to their names: tests can
// see which secrets arrived without any value reaching stdout.
json RedactedInput(json in) {
  if (in.contains("secrets")) {
    json names = json::array();
    if (in["secrets"].is_object()) {
      for (const auto& item : in["secrets"].items()) names.push_back(item.key());
    }
    in["secrets"] = names;
  }
  return in;
}

// `await PATH`: returns once PATH exists. The watch is set before the first
// look, so a file created in between is not missed.
void Await(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = inotify_init1(IN_CLOEXEC);
  if (fd < 0) Fail(std::string("await: inotify_init1: ") + std::strerror(errno));
  if (inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    Fail("await: cannot watch the directory: " + std::string(std::strerror(errno)));
  }
  struct stat st {};
  while (stat(path.c_str(), &st) != 0) {
    char buf[4096];
    if (read(fd, buf, sizeof buf) < 0 && errno != EINTR) Fail(std::string("await: read: ") + std::strerror(errno));
  }
  close(fd);
}

}  // namespace

int main() {
  const std::string input = ReadStdin();
  json in;
  try {
    in = json::parse(input);
  } catch (const json::parse_error& e) {
    Fail("stdin is not valid JSON (error at byte " + std::to_string(e.byte) + ")");
  }
  if (!in.is_object()) Fail("stdin must be a JSON object");
  if (!in.contains("prompt") || !in["prompt"].is_string()) Fail("prompt must be a string");
  const std::vector<Command> script = ParseScript(in["prompt"].get<std::string>());

  json result = json::object();
  bool markers = true;
  std::optional<std::string> failure;
  auto final_body = [&] {
    json body = {{"status", failure ? "error" : "success"}, {"result", result}};
    if (failure) body["error"] = *failure;
    if (in.contains("jobId") && !in["jobId"].is_null()) {
      body["newSessionId"] = "test-" + (in["jobId"].is_string() ? in["jobId"].get<std::string>() : Dump(in["jobId"]));
    }
    return body;
  };
  auto print_final = [&] {
    if (markers) {
      PrintBlock(final_body());
    } else {
      Emit(stdout, Dump(final_body()) + "\n");
    }
  };

  for (const Command& c : script) {
    if (c.verb == "echo") {
      result["echo"] = c.args;
    } else if (c.verb == "sleep") {
      SleepMs(c.number);
    } else if (c.verb == "await") {
      Await(c.args);
    } else if (c.verb == "exit") {
      std::fflush(nullptr);
      _exit(static_cast<int>(c.number));  // "immediately": no final block, no destructors
    } else if (c.verb == "flood") {
      Flood(stdout, c.number);
    } else if (c.verb == "stderr") {
      Flood(stderr, c.number);
    } else if (c.verb == "raw-stdout") {
      Emit(stdout, FromHex(c.args));
    } else if (c.verb == "raw-stderr") {
      Emit(stderr, FromHex(c.args));
    } else if (c.verb == "nomarkers") {
      markers = false;
    } else if (c.verb == "blocks") {
      for (std::int64_t i = 1; i <= c.number; ++i) PrintBlock({{"status", "success"}, {"result", {{"block", i}}}});
    } else if (c.verb == "malformed") {
      Emit(stdout, "---NANOCLAW_OUTPUT_START---\n{this is not: json\n---NANOCLAW_OUTPUT_END---\n");
      return 0;
    } else if (c.verb == "fail") {
      failure = c.args;
    } else if (c.verb == "probe") {
      result["probes"].push_back(Probe(c.args));
    } else if (c.verb == "write") {
      result["writes"].push_back(WriteFile(c.args));
    } else if (c.verb == "ignore-term") {
      std::signal(SIGTERM, SIG_IGN);
    } else if (c.verb == "child-sleep") {
      std::fflush(nullptr);  // or the child would flush our buffered output twice
      const pid_t pid = fork();
      if (pid == 0) {
        SleepMs(c.number);
        _exit(0);
      }
      result["child_pid"] = pid > 0 ? json(pid) : json(nullptr);
    } else if (c.verb == "input") {
      result["input"] = RedactedInput(in);
    } else if (c.verb == "read") {
      // `read PATH`: the first 4 KiB of a file (e.g. /proc/net/dev to see
      // which network interfaces the sandbox has).
      std::FILE* f = std::fopen(c.args.c_str(), "rb");
      std::string content;
      if (f != nullptr) {
        char buf[4096];
        content.assign(buf, std::fread(buf, 1, sizeof buf, f));
        std::fclose(f);
      }
      result["reads"].push_back({{"path", c.args}, {"ok", f != nullptr}, {"content", content}});
    } else if (c.verb == "env") {
      const char* value = std::getenv(c.args.c_str());
      result["env"][c.args] = value ? json(value) : json(nullptr);
    } else if (c.verb == "spew") {
      Spew(static_cast<std::uint64_t>(c.number), c.number2);
    } else if (c.verb == "idle") {
      print_final();
      SleepMs(c.number);
      return failure ? 1 : 0;
    }
  }
  print_final();
  return failure ? 1 : 0;
}
