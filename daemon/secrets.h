#pragma once
// Secrets for agents (NanoClaw kept them in a .env): the configured names,
// each read from dropq's environment or else from env_file. They travel only
// in the agent's stdin JSON — never argv, the environment, files, SQLite or
// logs (run logs redact them).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace dropq::app {

// env_file: KEY=value lines; blank lines and # comments skipped; an optional
// `export ` prefix; values may be wrapped in single or double quotes. A
// missing env_file is an error (it was configured); a name found nowhere is
// simply absent from the map.
Result<std::map<std::string, std::string>> ReadSecrets(const std::vector<std::string>& names,
                                                       const std::optional<std::string>& env_file);

}  // namespace dropq::app
