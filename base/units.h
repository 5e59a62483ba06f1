#pragma once
// Durations and sizes as users write them in config and job files.
#include <cstdint>
#include <optional>
#include <string_view>

namespace dropq {

// An integer string is milliseconds (as NanoClaw wrote them); otherwise a
// number with a unit: "1500ms", "30s", "5m", "2h", "1d". Negative values,
// fractions, overflow and unknown units give nullopt.
std::optional<std::int64_t> ParseDurationMs(std::string_view text);

// An integer string is bytes; otherwise a number with a unit: "64KiB",
// "10MiB", "1GiB", "1TiB" (binary), "64KB", "10MB", "1GB" (decimal) or "B".
std::optional<std::int64_t> ParseSizeBytes(std::string_view text);

}  // namespace dropq
