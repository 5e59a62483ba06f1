#include "config/logging.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/text.h"

namespace dropq::app {
namespace {

// The status line is shared by every pretty sink (there is one, on stderr);
// its mutex also orders log lines against redraws from the progress thread.
std::mutex g_status_mu;
std::string g_status;
int g_status_fd = -1;

void WriteAll(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;  // a closed stderr must not take the daemon down
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

TimeMs ToMs(spdlog::log_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The names config and DROPQ_LOG_LEVEL use, and that the JSON lines carry.
constexpr std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
    {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},   {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
    {"off", spdlog::level::off}};

std::string LevelName(spdlog::level::level_enum l) {
  for (const auto& [name, level] : kLevels)
    if (level == l) return name;
  return "info";
}

class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  FdSink(int fd, LogFormat format) : fd_(fd), format_(format) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (format_ == LogFormat::kJson) {
      std::string message = text::MakeValid(payload);
      // Ordered: the time first, as log readers expect.
      nlohmann::ordered_json line = {
          {"ts", FormatIsoUtc(ToMs(msg.time))}, {"level", LevelName(msg.level)}, {"msg", message}};
      // Invalid UTF-8 in a message (a path, an agent's output) is replaced,
      // never allowed to throw out of the logger.
      WriteAll(fd_, text::Dump(line) + "\n");
      return;
    }
    std::string colour;
    switch (msg.level) {
      case spdlog::level::warn:
        colour = "\033[33m";
        break;
      case spdlog::level::err:
      case spdlog::level::critical:
        colour = "\033[31;1m";
        break;
      case spdlog::level::debug:
      case spdlog::level::trace:
        colour = "\033[2m";
        break;
      default:
        colour = "\033[32m";
        break;
    }
    // Whatever a message carries (a file name, an agent's stderr) stays on
    // one line and cannot drive the terminal: control characters escaped.
    std::string message = text::ForLog(payload);
    std::string line = "\033[2m" + FormatIsoUtc(ToMs(msg.time)) + "\033[0m " + colour + LevelName(msg.level) +
                       "\033[0m " + message + "\n";
    std::lock_guard<std::mutex> lock(g_status_mu);
    if (!g_status.empty() && g_status_fd == fd_) line = "\r\033[K" + line + g_status;
    WriteAll(fd_, line);
  }
  void flush_() override {}

 private:
  int fd_;
  LogFormat format_;
};

}  // namespace

std::optional<std::string> EffectiveLogLevel(const std::string& config_level) {
  std::string level = config_level;
  if (const char* env = std::getenv("DROPQ_LOG_LEVEL"); env && *env) level = env;
  // Not spdlog::level::from_str: it answers `off` for any unknown name.
  for (const auto& [name, l] : kLevels)
    if (level == name) return level;
  return std::nullopt;
}

std::shared_ptr<spdlog::sinks::sink> MakeLogSink(int fd, LogFormat format) {
  return std::make_shared<FdSink>(fd, format);
}

bool SetUpLogging(const std::string& config_level, std::string* error) {
  auto level = EffectiveLogLevel(config_level);
  if (!level) {
    const char* env = std::getenv("DROPQ_LOG_LEVEL");
    *error = (env && *env ? "DROPQ_LOG_LEVEL \"" + std::string(env) : "log_level \"" + config_level) +
             "\" is not a level (trace, debug, info, warn, error, critical, off)";
    return false;
  }
  bool tty = ::isatty(STDERR_FILENO) == 1;
  auto logger = std::make_shared<spdlog::logger>(
      "dropq", MakeLogSink(STDERR_FILENO, tty ? LogFormat::kPretty : LogFormat::kJson));
  {
    std::lock_guard<std::mutex> lock(g_status_mu);
    g_status_fd = tty ? STDERR_FILENO : -1;
  }
  spdlog::set_default_logger(logger);
  for (const auto& [name, l] : kLevels)
    if (*level == name) spdlog::set_level(l);
  return true;
}

void SetStatusLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_status_mu);
  if (g_status_fd < 0) return;
  g_status = line;
  WriteAll(g_status_fd, "\r\033[K" + line);
}

}  // namespace dropq::app
