#pragma once
// A strict reader of the Prometheus text exposition format (0.0.4), for
// tests: /metrics output is checked by parsing it, not by comparing strings.
// Parse() throws std::runtime_error naming the line for anything the format
// does not allow: a bad metric or label name, a bad escape, a value that is
// not a number, a sample before its # TYPE, a family typed twice, a sample
// whose name does not belong to its family's type.
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace dropq::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromText {
  std::map<std::string, std::string> types;  // family → counter | gauge | histogram | summary | untyped
  std::map<std::string, std::string> help;
  std::vector<PromSample> samples;

  // The value of the one sample with this name and exactly these labels.
  std::optional<double> Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    std::optional<double> out;
    for (const auto& s : samples) {
      if (s.name != name || s.labels != labels) continue;
      if (out) throw std::runtime_error("two samples " + name);
      out = s.value;
    }
    return out;
  }
  std::vector<PromSample> All(const std::string& name) const {
    std::vector<PromSample> out;
    for (const auto& s : samples)
      if (s.name == name) out.push_back(s);
    return out;
  }
};

namespace prom_detail {

inline bool NameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
inline bool NameChar(char c) { return NameStart(c) || (c >= '0' && c <= '9'); }

inline std::string ReadName(const std::string& l, std::size_t& i, bool label, int line) {
  std::size_t start = i;
  if (i >= l.size() || !NameStart(l[i]) || (label && l[i] == ':')) {
    throw std::runtime_error("line " + std::to_string(line) + ": bad name in: " + l);
  }
  while (i < l.size() && NameChar(l[i]) && !(label && l[i] == ':')) ++i;
  return l.substr(start, i - start);
}

inline double ReadValue(const std::string& v, int line) {
  if (v == "+Inf" || v == "Inf") return 1.0 / 0.0;
  if (v == "-Inf") return -1.0 / 0.0;
  if (v == "NaN") return 0.0 / 0.0;
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size()) {
    throw std::runtime_error("line " + std::to_string(line) + ": bad value \"" + v + "\"");
  }
  return d;
}

inline std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      std::string base = name.substr(0, name.size() - s.size());
      auto t = types.find(base);
      if (t != types.end() && (t->second == "histogram" || (t->second == "summary" && s != "_bucket"))) return base;
    }
  }
  return "";
}

}  // namespace prom_detail

inline PromText ParsePrometheus(const std::string& text) {
  using namespace prom_detail;
  PromText out;
  std::set<std::string> seen_series;
  int line_no = 0;
  std::size_t pos = 0;
  if (!text.empty() && text.back() != '\n') throw std::runtime_error("the exposition must end with a newline");
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string l = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (l.empty()) continue;
    if (l[0] == '#') {
      if (l.rfind("# HELP ", 0) == 0 || l.rfind("# TYPE ", 0) == 0) {
        std::size_t i = 7;
        std::string name = ReadName(l, i, false, line_no);
        if (i >= l.size() || l[i] != ' ') throw std::runtime_error("line " + std::to_string(line_no) + ": " + l);
        std::string rest = l.substr(i + 1);
        if (l[2] == 'T') {
          static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
          if (!kTypes.count(rest)) throw std::runtime_error("line " + std::to_string(line_no) + ": type " + rest);
          if (out.types.count(name))
            throw std::runtime_error("line " + std::to_string(line_no) + ": typed twice " + name);
          for (const auto& s : out.samples) {
            if (FamilyOf(s.name, {{name, rest}}) == name) {
              throw std::runtime_error("line " + std::to_string(line_no) + ": # TYPE after samples of " + name);
            }
          }
          out.types[name] = rest;
        } else {
          out.help[name] = rest;
        }
      }
      continue;
    }
    std::size_t i = 0;
    PromSample s;
    s.name = ReadName(l, i, false, line_no);
    if (i < l.size() && l[i] == '{') {
      ++i;
      while (i < l.size() && l[i] != '}') {
        std::string key = ReadName(l, i, true, line_no);
        if (l.compare(i, 2, "=\"") != 0) throw std::runtime_error("line " + std::to_string(line_no) + ": " + l);
        i += 2;
        std::string val;
        for (;;) {
          if (i >= l.size()) throw std::runtime_error("line " + std::to_string(line_no) + ": unterminated label");
          char c = l[i++];
          if (c == '"') break;
          if (c == '\\') {
            char e = i < l.size() ? l[i++] : '\0';
            if (e == '\\')
              val += '\\';
            else if (e == '"')
              val += '"';
            else if (e == 'n')
              val += '\n';
            else
              throw std::runtime_error("line " + std::to_string(line_no) + ": bad escape");
          } else {
            val += c;
          }
        }
        if (!s.labels.emplace(key, val).second) {
          throw std::runtime_error("line " + std::to_string(line_no) + ": label twice: " + key);
        }
        if (i < l.size() && l[i] == ',') ++i;
      }
      if (i >= l.size()) throw std::runtime_error("line " + std::to_string(line_no) + ": unterminated labels");
      ++i;
    }
    if (i >= l.size() || l[i] != ' ') throw std::runtime_error("line " + std::to_string(line_no) + ": " + l);
    std::string rest = l.substr(i + 1);
    std::string value = rest.substr(0, rest.find(' '));
    s.value = ReadValue(value, line_no);
    if (FamilyOf(s.name, out.types).empty()) {
      throw std::runtime_error("line " + std::to_string(line_no) + ": sample " + s.name + " before its # TYPE");
    }
    std::string series = s.name;
    for (const auto& [k, v] : s.labels) series += "|" + k + "=" + v;
    if (!seen_series.insert(series).second) {
      throw std::runtime_error("line " + std::to_string(line_no) + ": series twice: " + series);
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace dropq::testing
