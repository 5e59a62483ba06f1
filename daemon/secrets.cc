#include "daemon/secrets.h"

#include <cstdlib>
#include <fstream>

namespace dropq::app {
namespace {

std::string Trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<std::map<std::string, std::string>> ReadSecrets(const std::vector<std::string>& names,
                                                       const std::optional<std::string>& env_file) {
  std::map<std::string, std::string> file_values;
  if (env_file) {
    std::ifstream in(*env_file);
    if (!in) return Status::NotFound("cannot read env_file " + *env_file);
    std::string line;
    while (std::getline(in, line)) {
      line = Trim(line);
      if (line.empty() || line[0] == '#') continue;
      if (line.rfind("export ", 0) == 0) line = Trim(line.substr(7));
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = Trim(line.substr(0, eq)), value = Trim(line.substr(eq + 1));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      file_values[key] = value;
    }
  }
  std::map<std::string, std::string> out;
  for (const auto& name : names) {
    if (const char* v = std::getenv(name.c_str()); v != nullptr && *v != '\0') {
      out[name] = v;
    } else if (auto it = file_values.find(name); it != file_values.end()) {
      out[name] = it->second;
    }
  }
  return out;
}

}  // namespace dropq::app
