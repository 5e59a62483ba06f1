#include "config/config.h"

#include <yaml-cpp/exceptions.h>

#include <algorithm>
#include <cstdlib>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <string_view>

#include "config/listen_address.h"
#include "config/yaml_tree.h"
#include "jobs/cron.h"
#include "base/units.h"

namespace dropq::app {
namespace {

namespace fs = std::filesystem;

using Keys = std::initializer_list<std::string_view>;
using yaml::Node;

std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string Index(const std::string& parent, std::size_t i) { return parent + "[" + std::to_string(i) + "]"; }

// Levenshtein distance with adjacent transpositions (optimal string
// alignment), for "did you mean" on unknown keys. Written here: it is a dozen
// lines over strings of a few bytes, and no Debian C++ library offers it
// without pulling in far more.
std::size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The position of a key path such as "groups[1].containerConfig.timeout" in
// the document: a mapping entry's key, a list item's start. A path that does
// not exist (a required key left out) resolves to its nearest existing
// parent; the last of duplicate keys wins, which is the one a "duplicate key"
// error is about. Null mark when nothing matches.
yaml::Mark MarkOf(const Node& root, const std::string& key_path) {
  yaml::Mark found;
  Node node = root;
  std::size_t i = 0;
  while (i < key_path.size() && node && (node.IsMap() || node.IsSequence())) {
    if (key_path[i] == '.' && ++i == key_path.size()) break;
    if (key_path[i] == '[') {
      const std::size_t close = key_path.find(']', i);
      if (close == std::string::npos || !node.IsSequence()) break;
      std::size_t index = 0;
      auto [end, ec] = std::from_chars(key_path.data() + i + 1, key_path.data() + close, index);
      if (ec != std::errc() || index >= node.size()) break;
      node = node[index];
      if (!node.Mark().is_null()) found = node.Mark();
      i = close + 1;
      continue;
    }
    std::size_t stop = key_path.find_first_of(".[", i);
    if (stop == std::string::npos) stop = key_path.size();
    const std::string name = key_path.substr(i, stop - i);
    if (!node.IsMap()) break;
    Node next;
    bool matched = false;
    for (const auto& kv : node) {
      if (kv.first.IsScalar() && kv.first.Scalar() == name) {
        if (!kv.first.Mark().is_null()) found = kv.first.Mark();
        next = kv.second;
        matched = true;
      }
    }
    if (!matched) break;
    node = next;
    i = stop;
  }
  return found;
}

// Every mapping is checked against the keys it may hold, so a typo such as
// `bwrap.netwrok` fails loudly instead of silently keeping a default. yaml-cpp
// keeps duplicate keys (a lookup sees only the first), so those fail too.
void CheckKeys(const Node& map, const std::string& path, Keys allowed) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) throw ConfigError(Join(path, "(key)"), "keys must be strings");
    const std::string key(kv.first.Scalar());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const std::string near = ClosestKey(key, std::vector<std::string>(allowed.begin(), allowed.end()));
      throw ConfigError(Join(path, key), near.empty() ? "unknown key" : "unknown key; did you mean `" + near + "`?");
    }
    if (!seen.insert(key).second) throw ConfigError(Join(path, key), "duplicate key");
  }
}

// A mapping section; `key:` with nothing after it (null) counts as empty, so
// a section whose entries are all commented out still loads.
bool IsMapOrNull(const Node& node) { return node.IsMap() || node.IsNull(); }

std::string String(const Node& node, const std::string& key) {
  if (!node.IsScalar()) throw ConfigError(key, "must be a string");
  return std::string(node.Scalar());
}

std::string NonEmptyString(const Node& node, const std::string& key) {
  std::string s = String(node, key);
  if (s.empty()) throw ConfigError(key, "must be a non-empty string");
  return s;
}

std::int64_t IntBetween(const Node& node, const std::string& key, std::int64_t min, std::int64_t max,
                        const std::string& reason) {
  if (!node.IsScalar()) throw ConfigError(key, reason);
  const std::string_view s = node.Scalar();
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < min || value > max) throw ConfigError(key, reason);
  return value;
}

std::int64_t IntAtLeast(const Node& node, const std::string& key, std::int64_t min) {
  return IntBetween(node, key, min, std::numeric_limits<std::int64_t>::max(),
                    "must be an integer >= " + std::to_string(min));
}

// max_concurrent and max_concurrent_per_group: 1..kMaxConcurrentLimit.
std::int64_t Concurrency(const Node& node, const std::string& key) {
  return IntBetween(node, key, 1, kMaxConcurrentLimit,
                    "must be an integer from 1 to " + std::to_string(kMaxConcurrentLimit));
}

// YAML 1.2 core booleans only: yaml-cpp would also take yes/no/on/off, which
// is the kind of surprise (`network: no` vs `network: "no"`) strictness avoids.
bool Bool(const Node& node, const std::string& key) {
  if (node.IsScalar()) {
    const std::string_view s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  throw ConfigError(key, "must be true or false");
}

std::int64_t DurationMs(const Node& node, const std::string& key, std::int64_t min) {
  const std::string reason = "must be a duration >= " + std::to_string(min) +
                             "ms (integer milliseconds or a number with a unit: ms, s, m, h, d)";
  if (!node.IsScalar()) throw ConfigError(key, reason);
  auto ms = dropq::ParseDurationMs(node.Scalar());
  if (!ms || *ms < min) throw ConfigError(key, reason);
  return *ms;
}

std::int64_t SizeBytes(const Node& node, const std::string& key, std::int64_t min) {
  const std::string reason = "must be a size >= " + std::to_string(min) +
                             " bytes (integer bytes or a number with a unit: B, KiB, MiB, GiB, KB, MB, GB)";
  if (!node.IsScalar()) throw ConfigError(key, reason);
  auto bytes = dropq::ParseSizeBytes(node.Scalar());
  if (!bytes || *bytes < min) throw ConfigError(key, reason);
  return *bytes;
}

std::vector<std::string> StringList(const Node& node, const std::string& key) {
  std::vector<std::string> out;
  if (node.IsNull()) return out;
  if (!node.IsSequence()) throw ConfigError(key, "must be a list of strings");
  for (std::size_t i = 0; i < node.size(); ++i) out.push_back(String(node[i], Index(key, i)));
  return out;
}

// Host paths the operator writes relative to the config file resolve against
// its directory (not the working directory), in lexically normal form without
// a trailing slash, so other modules can join and compare them as strings.
std::string ResolvePath(const Node& node, const std::string& key, const fs::path& base) {
  const std::string s = NonEmptyString(node, key);
  std::string out = (base / s).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string ContainerPath(const Node& node, const std::string& key) {
  std::string s = NonEmptyString(node, key);
  if (s.front() != '/') throw ConfigError(key, "must be an absolute path");
  return s;
}

void LoadBwrap(const Node& node, BwrapConfig& out, const fs::path& base) {
  const std::string path = "bwrap";
  if (!node) return;  // absent (yaml-cpp throws on the type of an absent node)
  if (!IsMapOrNull(node)) throw ConfigError(path, "must be a mapping");
  if (node.IsNull()) return;
  CheckKeys(node, path, {"rootfs", "network", "extra_args", "ro_binds"});
  if (auto n = node["rootfs"]) out.rootfs = ResolvePath(n, "bwrap.rootfs", base);
  if (auto n = node["network"]) out.network = Bool(n, "bwrap.network");
  if (auto n = node["extra_args"]) out.extra_args = StringList(n, "bwrap.extra_args");
  if (const Node n = node["ro_binds"]) {
    if (n.IsNull()) return;
    if (!n.IsSequence()) throw ConfigError("bwrap.ro_binds", "must be a list of {host, container}");
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string at = Index("bwrap.ro_binds", i);
      const Node bind = n[i];
      if (!bind.IsMap()) throw ConfigError(at, "must be a mapping with host and container");
      CheckKeys(bind, at, {"host", "container"});
      if (!bind["host"]) throw ConfigError(at + ".host", "required");
      if (!bind["container"]) throw ConfigError(at + ".container", "required");
      out.ro_binds.push_back(
          {ResolvePath(bind["host"], at + ".host", base), ContainerPath(bind["container"], at + ".container")});
    }
  }
}

void LoadContainerRuntime(const Node& node, const std::string& path, ContainerRuntimeConfig& out,
                          const std::string& default_binary) {
  out.binary = default_binary;
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) throw ConfigError(path, "must be a mapping");
  CheckKeys(node, path, {"image", "extra_args", "binary"});
  if (auto n = node["image"]) out.image = NonEmptyString(n, path + ".image");
  if (auto n = node["extra_args"]) out.extra_args = StringList(n, path + ".extra_args");
  if (auto n = node["binary"]) out.binary = NonEmptyString(n, path + ".binary");
}

// Kubernetes' DNS-1123 label (namespaces) and subdomain (claim names).
bool IsDnsLabel(const std::string& s) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
  return std::regex_match(s, kLabel);
}

bool IsDnsSubdomain(const std::string& s) {
  static const std::regex kSubdomain("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  return s.size() <= 253 && std::regex_match(s, kSubdomain);
}

// requests/limits: resource name → a Kubernetes quantity ("500m", "2",
// "4Gi", "1e3").
std::map<std::string, std::string> Quantities(const Node& node, const std::string& key) {
  static const std::regex kQuantity("[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?");
  static const std::regex kName("([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?");
  std::map<std::string, std::string> out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) throw ConfigError(key, "must be a mapping of resource name to quantity (cpu: 500m, memory: 1Gi)");
  for (const auto& kv : node) {
    const std::string name = String(kv.first, key + " (key)");
    const std::string at = Join(key, name);
    if (!std::regex_match(name, kName)) throw ConfigError(at, "is not a resource name (cpu, memory, nvidia.com/gpu)");
    const std::string q = NonEmptyString(kv.second, at);
    if (!std::regex_match(q, kQuantity)) throw ConfigError(at, "must be a Kubernetes quantity (500m, 2, 4Gi)");
    if (!out.emplace(name, q).second) throw ConfigError(at, "duplicate key");
  }
  return out;
}

void LoadKubernetes(const Node& node, KubernetesConfig& out, const fs::path& base) {
  const std::string path = "kubernetes";
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) throw ConfigError(path, "must be a mapping");
  CheckKeys(node, path, {"binary", "image", "kubeconfig", "context", "namespace", "volumes", "resources"});
  if (auto n = node["binary"]) out.binary = NonEmptyString(n, "kubernetes.binary");
  if (auto n = node["image"]) out.image = NonEmptyString(n, "kubernetes.image");
  if (auto n = node["kubeconfig"]) out.kubeconfig = ResolvePath(n, "kubernetes.kubeconfig", base);
  if (auto n = node["context"]) out.context = NonEmptyString(n, "kubernetes.context");
  if (auto n = node["namespace"]) {
    out.k8s_namespace = NonEmptyString(n, "kubernetes.namespace");
    if (!IsDnsLabel(out.k8s_namespace)) {
      throw ConfigError("kubernetes.namespace", "must be a DNS-1123 label (a-z, 0-9, '-'; at most 63 characters)");
    }
  }
  if (const Node n = node["volumes"]; n && !n.IsNull()) {
    if (!n.IsSequence()) throw ConfigError("kubernetes.volumes", "must be a list of {claim, host_path, sub_path}");
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string at = Index("kubernetes.volumes", i);
      const Node v = n[i];
      if (!v.IsMap()) throw ConfigError(at, "must be a mapping with claim and host_path");
      CheckKeys(v, at, {"claim", "host_path", "sub_path"});
      if (!v["claim"]) throw ConfigError(at + ".claim", "required");
      if (!v["host_path"]) throw ConfigError(at + ".host_path", "required");
      KubernetesVolumeConfig vol;
      vol.claim = NonEmptyString(v["claim"], at + ".claim");
      if (!IsDnsSubdomain(vol.claim)) {
        throw ConfigError(at + ".claim", "must be a PersistentVolumeClaim name (a DNS-1123 subdomain)");
      }
      vol.host_path = ResolvePath(v["host_path"], at + ".host_path", base);
      if (auto sp = v["sub_path"]) {
        const std::string sub = String(sp, at + ".sub_path");
        const fs::path p(sub);
        bool escapes = false;
        for (const auto& part : p) escapes = escapes || part == "..";
        if (p.is_absolute() || escapes) throw ConfigError(at + ".sub_path", "must be a relative path without '..'");
        vol.sub_path = p.lexically_normal().string();
        while (!vol.sub_path.empty() && vol.sub_path.back() == '/') vol.sub_path.pop_back();
        if (vol.sub_path == ".") vol.sub_path.clear();
      }
      out.volumes.push_back(std::move(vol));
    }
  }
  if (const Node n = node["resources"]; n && !n.IsNull()) {
    if (!n.IsMap()) throw ConfigError("kubernetes.resources", "must be a mapping with requests and/or limits");
    CheckKeys(n, "kubernetes.resources", {"requests", "limits"});
    if (auto r = n["requests"]) out.requests = Quantities(r, "kubernetes.resources.requests");
    if (auto r = n["limits"]) out.limits = Quantities(r, "kubernetes.resources.limits");
  }
}

// With runtime: kubernetes the pods see the group folders only through the
// claims: the root must be on one.
void CheckKubernetes(const Config& c) {
  if (c.kubernetes.image.empty()) throw ConfigError("kubernetes.image", "required with runtime: kubernetes");
  if (c.kubernetes.volumes.empty()) {
    throw ConfigError("kubernetes.volumes",
                      "required with runtime: kubernetes (the PersistentVolumeClaims that hold the root " + c.root +
                          ")");
  }
  for (const auto& v : c.kubernetes.volumes) {
    const std::string rel = fs::path(c.root).lexically_relative(v.host_path).string();
    if (!rel.empty() && rel != ".." && rel.rfind("../", 0) != 0) return;
  }
  throw ConfigError("kubernetes.volumes",
                    "no volume holds the root " + c.root + ": one host_path must be the root or a directory above it");
}

// slurm: (docs/CONFIG.md, "slurm"). shared_root is required with
// runtime: slurm, and the root must lie inside it.
void LoadSlurm(const Node& node, SlurmConfig& out, const fs::path& base) {
  const std::string path = "slurm";
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) throw ConfigError(path, "must be a mapping");
  CheckKeys(node, path,
            {"shared_root", "inner", "image", "partition", "account", "qos", "cpus", "mem", "gres", "extra_args",
             "inner_args", "queue_timeout", "accounting"});
  if (auto n = node["shared_root"]) out.shared_root = ResolvePath(n, "slurm.shared_root", base);
  if (auto n = node["inner"]) {
    out.inner = String(n, "slurm.inner");
    static const std::set<std::string> kInner = {"bwrap", "podman", "apptainer", "bare"};
    if (!kInner.count(out.inner)) throw ConfigError("slurm.inner", "must be bwrap, podman, apptainer or bare");
  }
  for (auto [key, field] : {std::pair<const char*, std::string*>{"image", &out.image},
                            {"partition", &out.partition},
                            {"account", &out.account},
                            {"qos", &out.qos},
                            {"mem", &out.mem},
                            {"gres", &out.gres}}) {
    if (auto n = node[key]) *field = NonEmptyString(n, path + "." + key);
  }
  if (auto n = node["cpus"]) out.cpus = IntAtLeast(n, "slurm.cpus", 1);
  if (auto n = node["extra_args"]) out.extra_args = StringList(n, "slurm.extra_args");
  if (auto n = node["inner_args"]) out.inner_args = StringList(n, "slurm.inner_args");
  if (auto n = node["queue_timeout"]) out.queue_timeout_ms = DurationMs(n, "slurm.queue_timeout", 1);
  if (auto n = node["accounting"]) {
    out.accounting = String(n, "slurm.accounting");
    static const std::set<std::string> kAccounting = {"auto", "on", "off"};
    if (!kAccounting.count(out.accounting)) throw ConfigError("slurm.accounting", "must be auto, on or off");
  }
}

std::vector<AdditionalMountConfig> LoadAdditionalMounts(const Node& n, const std::string& path) {
  std::vector<AdditionalMountConfig> out;
  if (!n || n.IsNull()) return out;
  if (!n.IsSequence()) throw ConfigError(path, "must be a list of {hostPath, containerPath, readonly}");
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string at = Index(path, i);
    const Node m = n[i];
    if (!m.IsMap()) throw ConfigError(at, "must be a mapping with hostPath");
    CheckKeys(m, at, {"hostPath", "containerPath", "readonly"});
    if (!m["hostPath"]) throw ConfigError(at + ".hostPath", "required");
    AdditionalMountConfig a;
    a.host_path = NonEmptyString(m["hostPath"], at + ".hostPath");
    if (auto v = m["containerPath"]) a.container_path = NonEmptyString(v, at + ".containerPath");
    if (auto v = m["readonly"]) a.readonly = Bool(v, at + ".readonly");
    out.push_back(std::move(a));
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// on_finish, global or a group's. null: none (a group's turns the global
// one off for it).
FinishHook LoadFinishHook(const Node& n, const std::string& at) {
  FinishHook h;
  if (n.IsNull()) return h;
  if (!n.IsMap()) throw ConfigError(at, "must be a mapping with command or url (or null for none)");
  CheckKeys(n, at, {"command", "url", "when", "timeout", "max_attempts"});
  if (n["command"] && n["url"]) throw ConfigError(at + ".url", "set either command or url, not both");
  if (const Node c = n["command"]) {
    if (!c.IsSequence() || c.size() == 0) {
      throw ConfigError(at + ".command", "must be a non-empty list of strings (an argv; no shell)");
    }
    h.command = StringList(c, at + ".command");
    if (h.command.front().empty()) throw ConfigError(at + ".command[0]", "must be a non-empty string");
  } else if (const Node u = n["url"]) {
    h.url = NonEmptyString(u, at + ".url");
    const std::size_t scheme = h.url.find("://");
    const std::string prefix = scheme == std::string::npos ? "" : h.url.substr(0, scheme);
    const std::size_t host_end = h.url.find_first_of("/?#", scheme == std::string::npos ? 0 : scheme + 3);
    const bool has_host =
        scheme != std::string::npos && (host_end == std::string::npos ? h.url.size() : host_end) > scheme + 3;
    if ((prefix != "http" && prefix != "https") || !has_host) {
      throw ConfigError(at + ".url", "must be an http:// or https:// URL with a host");
    }
  } else {
    throw ConfigError(at, "needs command (an argv) or url");
  }
  if (auto w = n["when"]) {
    const std::string when = String(w, at + ".when");
    if (when != "failed" && when != "always") throw ConfigError(at + ".when", "must be failed or always");
    h.failures_only = when == "failed";
  }
  if (auto t = n["timeout"]) h.timeout_ms = DurationMs(t, at + ".timeout", 1);
  if (auto m = n["max_attempts"]) h.max_attempts = IntAtLeast(m, at + ".max_attempts", 1);
  return h;
}

RateLimit Rate(const Node& node, const std::string& key) {
  std::string why = "must be <count>/<period>, e.g. 10/min";
  if (node.IsScalar()) {
    if (auto r = ParseRateLimit(node.Scalar(), &why)) return *r;
  }
  throw ConfigError(key, why);
}

GroupConfig LoadGroup(const Node& node, const std::string& at) {
  if (!node.IsMap()) throw ConfigError(at, "must be a mapping with at least folder");
  CheckKeys(node, at,
            {"folder", "name", "jid", "main", "timeout", "rate", "max_concurrent_per_group", "containerConfig",
             "on_finish"});
  GroupConfig g;
  if (!node["folder"]) throw ConfigError(at + ".folder", "required");
  g.folder = String(node["folder"], at + ".folder");
  if (Lower(g.folder) == "global") {
    throw ConfigError(at + ".folder", "\"global\" is reserved for the shared memory folder");
  }
  if (!IsValidGroupFolder(g.folder)) {
    throw ConfigError(at + ".folder", "must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$");
  }
  g.name = node["name"] ? NonEmptyString(node["name"], at + ".name") : g.folder;
  if (auto n = node["jid"]) g.jid = NonEmptyString(n, at + ".jid");
  if (auto n = node["main"]) g.is_main = Bool(n, at + ".main");
  if (auto n = node["timeout"]) g.timeout_ms = DurationMs(n, at + ".timeout", 1);
  if (auto n = node["on_finish"]) g.on_finish = LoadFinishHook(n, at + ".on_finish");
  if (auto n = node["max_concurrent_per_group"]) {
    g.max_concurrent_per_group = Concurrency(n, at + ".max_concurrent_per_group");
  }
  if (auto n = node["rate"]) {
    // `none` lifts the top-level default for this group.
    if (n.IsScalar() && n.Scalar() == "none") {
      g.rate_unlimited = true;
    } else {
      g.rate = Rate(n, at + ".rate");
    }
  }
  // NanoClaw's per-group containerConfig: timeout and additionalMounts.
  if (const Node cc = node["containerConfig"]; cc && !cc.IsNull()) {
    const std::string cat = at + ".containerConfig";
    if (!cc.IsMap()) throw ConfigError(cat, "must be a mapping");
    CheckKeys(cc, cat, {"timeout", "additionalMounts"});
    if (auto n = cc["timeout"]) {
      if (g.timeout_ms) throw ConfigError(cat + ".timeout", "set either timeout or containerConfig.timeout, not both");
      g.timeout_ms = DurationMs(n, cat + ".timeout", 1);
    }
    g.additional_mounts = LoadAdditionalMounts(cc["additionalMounts"], cat + ".additionalMounts");
  }
  return g;
}

void LoadSchedules(const Node& node, Config& c) {
  if (!node || node.IsNull()) return;
  if (!node.IsSequence()) throw ConfigError("schedules", "must be a list of tasks");
  std::set<std::string> ids;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string at = Index("schedules", i);
    const Node n = node[i];
    if (!n.IsMap()) throw ConfigError(at, "must be a mapping with id, group, prompt and one of cron, interval, once");
    CheckKeys(n, at,
              {"id", "group", "prompt", "cron", "interval", "once", "tz", "context_mode", "overlap", "catch_up",
               "catch_up_max", "starting_deadline", "keep_runs", "unique_key", "unique_for"});
    ScheduleConfig s;
    for (const char* k : {"id", "group", "prompt"}) {
      if (!n[k]) throw ConfigError(at + "." + k, "required");
    }
    s.id = NonEmptyString(n["id"], at + ".id");
    if (!ids.insert(s.id).second) throw ConfigError(at + ".id", "duplicate task id \"" + s.id + "\"");
    s.group = NonEmptyString(n["group"], at + ".group");
    if (!c.FindGroup(s.group)) throw ConfigError(at + ".group", "\"" + s.group + "\" is not a configured group");
    s.prompt = NonEmptyString(n["prompt"], at + ".prompt");
    int kinds = 0;
    for (const char* k : {"cron", "interval", "once"}) {
      if (!n[k]) continue;
      ++kinds;
      s.schedule_type = k;
      s.schedule_value = NonEmptyString(n[k], at + "." + k);
    }
    if (kinds != 1) throw ConfigError(at, "needs exactly one of cron, interval, once");
    if (s.schedule_type == "cron") {
      if (auto parsed = cron::Parse(s.schedule_value); !parsed.ok()) {
        throw ConfigError(at + ".cron", parsed.status().message());
      }
    } else if (s.schedule_type == "interval") {
      auto ms = ParseDurationMs(s.schedule_value);
      if (!ms || *ms <= 0) throw ConfigError(at + ".interval", "must be a positive duration (30s, 5m, 1h, or ms)");
    }
    if (auto v = n["tz"]) {
      s.tz = NonEmptyString(v, at + ".tz");
      if (auto z = cron::LoadTimeZone(*s.tz); !z.ok()) throw ConfigError(at + ".tz", z.status().message());
    }
    auto choice = [&](const char* key, std::initializer_list<const char*> allowed) -> std::optional<std::string> {
      auto v = n[key];
      if (!v) return std::nullopt;
      std::string val = String(v, at + "." + key);
      for (const char* a : allowed)
        if (val == a) return val;
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw ConfigError(at + "." + key, "must be one of " + list);
    };
    if (auto v = choice("context_mode", {"group", "isolated"})) s.context_mode = *v;
    s.overlap = choice("overlap", {"forbid", "allow", "replace"});
    s.catch_up = choice("catch_up", {"run_once", "skip", "run_all"});
    if (auto v = n["catch_up_max"]) s.catch_up_max = IntAtLeast(v, at + ".catch_up_max", 1);
    if (auto v = n["starting_deadline"]) s.starting_deadline_ms = DurationMs(v, at + ".starting_deadline", 1);
    if (auto v = n["keep_runs"]) s.keep_runs = IntAtLeast(v, at + ".keep_runs", 0);
    if (auto v = n["unique_key"]) s.unique_key = NonEmptyString(v, at + ".unique_key");
    if (auto v = n["unique_for"]) {
      if (!s.unique_key) throw ConfigError(at + ".unique_for", "needs unique_key");
      s.unique_for_ms = DurationMs(v, at + ".unique_for", 1);
    }
    c.schedules.push_back(std::move(s));
  }
}

void LoadDashboard(const Node& node, DashboardConfig& d, const fs::path& base) {
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) throw ConfigError("dashboard", "must be a mapping");
  CheckKeys(node, "dashboard", {"listen", "allow_remote", "tls_cert", "tls_key", "token_file"});
  if (auto n = node["allow_remote"]) d.allow_remote = Bool(n, "dashboard.allow_remote");
  if (auto n = node["tls_cert"]) d.tls_cert = ResolvePath(n, "dashboard.tls_cert", base);
  if (auto n = node["tls_key"]) d.tls_key = ResolvePath(n, "dashboard.tls_key", base);
  if (auto n = node["token_file"]) d.token_file = ResolvePath(n, "dashboard.token_file", base);
  // Beyond this machine the dashboard shows every prompt and output, so it
  // must be encrypted and ask for a token (docs/SECURITY.md).
  if (d.allow_remote) {
    for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"tls_cert", &d.tls_cert},
                                     {"tls_key", &d.tls_key},
                                     {"token_file", &d.token_file}}) {
      if (value->empty()) {
        throw ConfigError(std::string("dashboard.") + key,
                          "required when dashboard.allow_remote is true (remote access needs TLS "
                          "(tls_cert, tls_key) and a bearer token (token_file); see docs/DASHBOARD.md)");
      }
    }
  }
  // A certificate without its key (or the other way round) is a mistake, on
  // loopback too: say which half is missing rather than serve plain HTTP.
  if (!d.tls_cert.empty() && d.tls_key.empty()) {
    throw ConfigError("dashboard.tls_key", "required with dashboard.tls_cert (the certificate's private key)");
  }
  if (!d.tls_key.empty() && d.tls_cert.empty()) {
    throw ConfigError("dashboard.tls_cert", "required with dashboard.tls_key (the key's certificate)");
  }
  if (!node["listen"]) return;
  d.listen = NonEmptyString(node["listen"], "dashboard.listen");
  auto addr = ParseListenAddress(d.listen);
  if (!addr.ok()) throw ConfigError("dashboard.listen", addr.status().message());
  // Beyond this machine only when asked (and then with TLS and a token).
  if (!addr->loopback && !d.allow_remote) {
    throw ConfigError("dashboard.listen", "\"" + addr->host +
                                              "\" is not a loopback address; serving the dashboard beyond this "
                                              "machine needs dashboard.allow_remote: true (with tls_cert, tls_key "
                                              "and token_file)");
  }
  d.host = addr->host;
  d.port = addr->port;
}

void LoadGroups(const Node& node, Config& c) {
  if (!node || node.IsNull()) throw ConfigError("groups", "required (a non-empty list of groups)");
  if (!node.IsSequence() || node.size() == 0) {
    throw ConfigError("groups", "must be a non-empty list of groups");
  }
  std::optional<std::size_t> main_at;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string at = Index("groups", i);
    GroupConfig g = LoadGroup(node[i], at);
    // Case-insensitive: on a case-insensitive filesystem "Team" and "team"
    // would share one directory, and with it one another's files.
    for (std::size_t j = 0; j < c.groups.size(); ++j) {
      if (Lower(c.groups[j].folder) == Lower(g.folder)) {
        throw ConfigError(at + ".folder", "duplicate folder (same as " + Index("groups", j) + ")");
      }
    }
    if (g.is_main) {
      if (main_at) {
        throw ConfigError(at + ".main", "only one group may be main (" + Index("groups", *main_at) + " already is)");
      }
      main_at = i;
    }
    c.groups.push_back(std::move(g));
  }
  if (!main_at) throw ConfigError("groups", "exactly one group must have main: true (found none)");
}

Config LoadFromNode(const Node& root, const fs::path& base) {
  // An empty file parses as null: load it as an empty mapping so the error
  // names the first missing required key rather than the document's shape.
  if (!IsMapOrNull(root)) throw ConfigError("(document)", "must be a mapping of keys");
  if (root.IsMap()) {
    CheckKeys(root, "",
              {"root",
               "runtime",
               "agent",
               "max_concurrent",
               "max_concurrent_per_group",
               "timeout",
               "kill_grace",
               "max_output",
               "max_job_file",
               "max_attempts",
               "max_interruptions",
               "session_dir",
               "log_level",
               "bwrap",
               "docker",
               "podman",
               "container",
               "kubernetes",
               "slurm",
               "mount_allowlist",
               "secrets",
               "env_file",
               "groups",
               "timezone",
               "schedules",
               "max_queued_per_group",
               "rate",
               "shutdown_grace",
               "on_message",
               "on_finish",
               "dashboard"});
  }
  // An empty document has no keys: an undefined node, not a null value.
  auto get = [&](const char* key) { return root.IsMap() ? root[key] : Node(); };

  Config c;
  if (auto n = get("runtime")) {
    c.runtime = String(n, "runtime");
    static const std::set<std::string> kRuntimes = {"bwrap",     "process",    "docker", "podman",
                                                    "container", "kubernetes", "slurm"};
    if (!kRuntimes.count(c.runtime))
      throw ConfigError("runtime", "must be bwrap, process, docker, podman, container, kubernetes or slurm");
  }
  {
    // An image's entrypoint can start the agent (NanoClaw's do), so the
    // container runtimes may leave `agent` out; bwrap and process have
    // nothing else to run.
    const bool image_runs_agent =
        c.runtime == "docker" || c.runtime == "podman" || c.runtime == "container" || c.runtime == "kubernetes";
    const Node n = get("agent");
    if (!n || n.IsNull()) {
      if (!image_runs_agent) {
        throw ConfigError("agent", "required with runtime: " + c.runtime +
                                       " (the agent's argv, a non-empty list of strings); only docker, podman, "
                                       "container and kubernetes may leave it out, to run the image's entrypoint");
      }
    } else {
      if (!n.IsSequence() || n.size() == 0) throw ConfigError("agent", "must be a non-empty list of strings");
      c.agent = StringList(n, "agent");
      if (c.agent.front().empty()) throw ConfigError("agent[0]", "must be a non-empty string");
    }
  }
  c.root = get("root") ? ResolvePath(get("root"), "root", base) : (base / "var").lexically_normal().string();
  if (auto n = get("max_concurrent")) c.max_concurrent = Concurrency(n, "max_concurrent");
  if (auto n = get("max_concurrent_per_group")) {
    c.max_concurrent_per_group = Concurrency(n, "max_concurrent_per_group");
  }
  if (auto n = get("timeout")) c.timeout_ms = DurationMs(n, "timeout", 1);
  if (auto n = get("kill_grace")) c.kill_grace_ms = DurationMs(n, "kill_grace", 0);
  if (auto n = get("max_output")) c.max_output = SizeBytes(n, "max_output", 1024);
  if (auto n = get("max_job_file")) c.max_job_file = SizeBytes(n, "max_job_file", 1);
  if (auto n = get("max_attempts")) c.max_attempts = IntAtLeast(n, "max_attempts", 1);
  if (auto n = get("max_interruptions")) c.max_interruptions = IntAtLeast(n, "max_interruptions", 0);
  if (auto n = get("max_queued_per_group")) c.max_queued_per_group = IntAtLeast(n, "max_queued_per_group", 1);
  if (auto n = get("rate")) c.rate = Rate(n, "rate");
  if (auto n = get("shutdown_grace")) c.shutdown_grace_ms = DurationMs(n, "shutdown_grace", 0);
  if (auto n = get("session_dir")) c.session_dir = ContainerPath(n, "session_dir");
  if (auto n = get("log_level")) {
    c.log_level = String(n, "log_level");
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!kLevels.count(c.log_level)) {
      throw ConfigError("log_level", "must be one of trace, debug, info, warn, error, critical, off");
    }
  }
  LoadBwrap(get("bwrap"), c.bwrap, base);
  LoadContainerRuntime(get("docker"), "docker", c.docker, "docker");
  LoadContainerRuntime(get("podman"), "podman", c.podman, "podman");
  LoadContainerRuntime(get("container"), "container", c.container, "container");
  LoadKubernetes(get("kubernetes"), c.kubernetes, base);
  if (c.runtime == "kubernetes") CheckKubernetes(c);
  if (c.runtime == "docker" || c.runtime == "podman" || c.runtime == "container") {
    const auto& rc = c.runtime == "docker" ? c.docker : c.runtime == "podman" ? c.podman : c.container;
    if (rc.image.empty()) throw ConfigError(c.runtime + ".image", "required with runtime: " + c.runtime);
  }
  LoadSlurm(get("slurm"), c.slurm, base);
  if (c.runtime == "slurm") {
    if (c.slurm.shared_root.empty()) {
      throw ConfigError("slurm.shared_root", "required with runtime: slurm (the storage every node sees, holding root)");
    }
    if ((c.slurm.inner == "podman" || c.slurm.inner == "apptainer") && c.slurm.image.empty()) {
      throw ConfigError("slurm.image", "required with slurm.inner: " + c.slurm.inner);
    }
    auto rel = fs::path(c.root).lexically_relative(c.slurm.shared_root);
    if (rel.empty() || *rel.begin() == "..") {
      throw ConfigError("slurm.shared_root", c.slurm.shared_root + " does not hold root " + c.root +
                                                 ": the nodes must see the group and IPC folders");
    }
  }
  if (auto n = get("mount_allowlist")) {
    c.mount_allowlist = ResolvePath(n, "mount_allowlist", base);
  } else {
    const char* home = std::getenv("HOME");
    c.mount_allowlist = (fs::path(home ? home : "/") / ".config/dropq/mount-allowlist.json").string();
  }
  if (auto n = get("secrets")) {
    c.secrets = n.IsNull() ? std::vector<std::string>() : StringList(n, "secrets");
    for (std::size_t i = 0; i < c.secrets.size(); ++i) {
      const auto& name = c.secrets[i];
      bool ok =
          !name.empty() && !(name[0] >= '0' && name[0] <= '9') && std::all_of(name.begin(), name.end(), [](char ch) {
            return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
          });
      if (!ok) throw ConfigError(Index("secrets", i), "must be an environment variable name");
    }
  }
  if (auto n = get("env_file")) c.env_file = ResolvePath(n, "env_file", base);
  if (auto n = get("on_message")) {
    c.on_message = n.IsNull() ? std::vector<std::string>() : StringList(n, "on_message");
    if (!c.on_message.empty() && c.on_message.front().empty()) throw ConfigError("on_message[0]", "must be non-empty");
  }
  if (auto n = get("on_finish")) c.on_finish = LoadFinishHook(n, "on_finish");
  LoadGroups(get("groups"), c);
  if (auto n = get("timezone")) {
    c.timezone = NonEmptyString(n, "timezone");
    if (auto z = cron::LoadTimeZone(c.timezone); !z.ok()) throw ConfigError("timezone", z.status().message());
  }
  LoadSchedules(get("schedules"), c);
  LoadDashboard(get("dashboard"), c.dashboard, base);
  return c;
}

}  // namespace

const GroupConfig* Config::FindGroup(const std::string& folder) const {
  for (const auto& g : groups) {
    if (g.folder == folder) return &g;
  }
  return nullptr;
}

std::optional<RateLimit> Config::RateFor(const std::string& folder) const {
  if (const GroupConfig* g = FindGroup(folder)) {
    if (g->rate_unlimited) return std::nullopt;
    if (g->rate) return g->rate;
  }
  return rate;
}

std::int64_t Config::MaxConcurrentPerGroupFor(const std::string& folder) const {
  const GroupConfig* g = FindGroup(folder);
  return g && g->max_concurrent_per_group ? *g->max_concurrent_per_group : max_concurrent_per_group;
}

const GroupConfig& Config::MainGroup() const {
  for (const auto& g : groups) {
    if (g.is_main) return g;
  }
  // Loading guarantees exactly one main group; only a hand-built Config lacks it.
  throw std::logic_error("config has no main group");
}

const FinishHook* Config::FinishHookFor(const GroupConfig* group) const {
  const std::optional<FinishHook>& h = group && group->on_finish ? group->on_finish : on_finish;
  return h && h->enabled() ? &*h : nullptr;
}

Config LoadConfigString(const std::string& yaml, const std::string& base_dir) {
  std::size_t documents = 0;
  yaml::Mark second;
  std::optional<yaml::Document> doc;
  try {
    doc.emplace(yaml::Document::Parse(yaml, &documents, &second));
  } catch (const YAML::Exception& e) {
    // e.msg without yaml-cpp's "error at line N, column M" prefix: the
    // location goes in front, in the same form as every other config error.
    if (e.mark.is_null()) throw ConfigError("(yaml)", e.msg);
    throw ConfigError("(yaml)", e.msg, e.mark.line + 1, e.mark.column + 1);
  }
  // A second document would be ignored silently; refuse it.
  if (documents > 1) {
    throw ConfigError("(yaml)", "expected one YAML document, found " + std::to_string(documents),
                      second.is_null() ? 0 : second.line + 1, second.is_null() ? 0 : second.column + 1);
  }
  const fs::path base = fs::absolute(base_dir.empty() ? fs::path(".") : fs::path(base_dir)).lexically_normal();
  const Node root = doc->root();
  try {
    return LoadFromNode(root, base);
  } catch (const ConfigError& e) {
    // Every error names its key path; the location is looked up from it
    // here, in one place, so each check need not carry its node's mark.
    if (e.line() > 0) throw;
    const yaml::Mark m = MarkOf(root, e.key());
    if (m.is_null()) throw;
    throw ConfigError(e.key(), e.reason(), m.line + 1, m.column + 1);
  }
}

Config LoadConfigFile(const std::string& path) {
  const fs::path abs = fs::absolute(path).lexically_normal();
  std::error_code ec;
  if (fs::is_directory(abs, ec)) throw std::runtime_error("cannot read config " + abs.string() + ": is a directory");
  std::ifstream in(abs, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read config " + abs.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read config " + abs.string());
  try {
    Config c = LoadConfigString(text.str(), abs.parent_path().string());
    c.config_path = abs.string();
    return c;
  } catch (const ConfigError& e) {
    throw ConfigError(e.key(), e.reason(), e.line(), e.column(), abs.string());
  }
}

std::string ClosestKey(const std::string& unknown, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = 3;  // only distances 1 and 2 are suggestions
  for (const auto& k : known) {
    std::size_t d = EditDistance(Lower(unknown), Lower(k));
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

bool IsValidGroupFolder(const std::string& folder) {
  if (folder.empty() || folder.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(folder.front())) return false;
  for (char c : folder) {
    if (!alnum(c) && c != '_' && c != '-') return false;
  }
  return Lower(folder) != "global";
}

}  // namespace dropq::app
