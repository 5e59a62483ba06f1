#include "base/units.h"

#include <charconv>
#include <limits>
#include <utility>

namespace dropq {
namespace {

// Splits "123unit" into 123 and "unit"; nullopt when there is no leading
// unsigned integer or it overflows.
std::optional<std::pair<std::int64_t, std::string_view>> SplitNumber(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || value < 0) return std::nullopt;
  return std::make_pair(value, text.substr(static_cast<std::size_t>(end - text.data())));
}

std::optional<std::int64_t> Scale(std::int64_t value, std::int64_t factor) {
  if (value > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
  return value * factor;
}

template <std::size_t N>
std::optional<std::int64_t> ParseWithUnits(std::string_view text,
                                           const std::pair<std::string_view, std::int64_t> (&units)[N]) {
  auto split = SplitNumber(text);
  if (!split) return std::nullopt;
  auto [value, unit] = *split;
  for (const auto& [name, factor] : units) {
    if (unit == name) return Scale(value, factor);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> ParseDurationMs(std::string_view text) {
  static constexpr std::pair<std::string_view, std::int64_t> kUnits[] = {
      {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  return ParseWithUnits(text, kUnits);
}

std::optional<std::int64_t> ParseSizeBytes(std::string_view text) {
  static constexpr std::pair<std::string_view, std::int64_t> kUnits[] = {{"", 1},
                                                                         {"B", 1},
                                                                         {"KiB", 1LL << 10},
                                                                         {"MiB", 1LL << 20},
                                                                         {"GiB", 1LL << 30},
                                                                         {"TiB", 1LL << 40},
                                                                         {"K", 1LL << 10},
                                                                         {"M", 1LL << 20},
                                                                         {"G", 1LL << 30},
                                                                         {"KB", 1000},
                                                                         {"MB", 1'000'000},
                                                                         {"GB", 1'000'000'000},
                                                                         {"TB", 1'000'000'000'000}};
  return ParseWithUnits(text, kUnits);
}

}  // namespace dropq
