#pragma once
// The `dropq` command line (docs/CLI.md). Exit codes: 0 success, 1 runtime
// failure, 2 usage or configuration error, 3 a named job does not exist.
namespace dropq::app {

int Main(int argc, char** argv);

}  // namespace dropq::app
