#pragma once
// The daemon's structured logs (docs/CLI.md, "Logs"): one JSON object per
// line on stderr ({"ts","level","msg"}), emitted with nlohmann-json so every
// message is escaped correctly; when stderr is a terminal, readable coloured
// lines instead. The level comes from DROPQ_LOG_LEVEL when set, else from the
// config's log_level.
//
// A terminal may also show one status line below the logs (run --once's
// progress): log lines are printed above it and it is redrawn after each.
#include <memory>
#include <optional>
#include <string>

#include <spdlog/sinks/sink.h>

namespace dropq::app {

enum class LogFormat { kJson, kPretty };

// The level to use: $DROPQ_LOG_LEVEL when set and non-empty, else `config_level`.
// nullopt when the chosen text is not a level name (trace, debug, info, warn,
// error, critical, off).
std::optional<std::string> EffectiveLogLevel(const std::string& config_level);

// A sink writing to `fd` in the given format (the seam tests use with a pipe
// or a file).
std::shared_ptr<spdlog::sinks::sink> MakeLogSink(int fd, LogFormat format);

// Installs the default logger on stderr: pretty when stderr is a terminal,
// JSON lines otherwise. False (and nothing installed) when the level named by
// DROPQ_LOG_LEVEL or the config is not a level; `error` says which.
bool SetUpLogging(const std::string& config_level, std::string* error);

// The terminal's status line; empty clears it. Only drawn by the pretty sink.
void SetStatusLine(const std::string& line);

}  // namespace dropq::app
