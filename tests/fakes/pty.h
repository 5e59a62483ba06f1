#pragma once
// Running a program on a pseudo-terminal, as from a person's shell: for the
// behaviours that only show on a terminal (colour, the progress line, pretty
// logs).
#include <filesystem>
#include <string>
#include <vector>

#include "tests/fakes/process.h"

namespace dropq::testing {

// Runs argv (no shell) in `cwd` with stdin, stdout and stderr on a new
// terminal 120 columns wide; `out` holds everything it wrote there (the
// terminal turns "\n" into "\r\n"), `err` stays empty. Killed after
// timeout_ms (exit_code -1).
ProcessResult RunInPty(const std::vector<std::string>& argv, const std::filesystem::path& cwd, int timeout_ms = 60'000);

}  // namespace dropq::testing
