#include "daemon/groups.h"

#include <algorithm>
#include <iterator>
#include <set>

#include <simdjson.h>

namespace dropq::app {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Status KeyError(const std::string& key, const std::string& reason) {
  return Status::InvalidArgument(key + ": " + reason);
}

Status CheckKeys(object obj, const std::string& at, std::initializer_list<std::string_view> allowed) {
  for (auto field : obj) {
    bool known = false;
    for (auto k : allowed) known = known || field.key == k;
    if (!known) return KeyError(at + "." + std::string(field.key), "unknown key");
  }
  return Status::Ok();
}

Status LoadMount(element e, const std::string& at, AdditionalMountConfig& m) {
  object obj;
  if (e.get_object().get(obj)) return KeyError(at, "expected an object");
  if (Status s = CheckKeys(obj, at, {"hostPath", "containerPath", "readonly"}); !s.ok()) return s;
  std::string_view text;
  if (obj["hostPath"].get_string().get(text) || text.empty()) {
    return KeyError(at + ".hostPath", "required, a non-empty string");
  }
  m.host_path = std::string(text);
  if (element cp; !obj["containerPath"].get(cp)) {
    if (cp.get_string().get(text) || text.empty())
      return KeyError(at + ".containerPath", "expected a non-empty string");
    m.container_path = std::string(text);
  }
  if (element ro; !obj["readonly"].get(ro)) {
    bool b = false;
    if (ro.get_bool().get(b)) return KeyError(at + ".readonly", "expected true or false");
    m.readonly = b;
  }
  return Status::Ok();
}

// Folders are ASCII (NanoClaw's rule); two that differ only in case would
// share a directory on a case-insensitive filesystem.
std::string LowerAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

}  // namespace

RegisteredGroup ToRegisteredGroup(const watcher::RegisterGroup& cmd) {
  return RegisteredGroup{cmd.folder, cmd.name, cmd.jid, cmd.trigger, cmd.requires_trigger, cmd.container_config};
}

Result<GroupConfig> ToGroupConfig(const RegisteredGroup& row) {
  GroupConfig g;
  g.folder = row.folder;
  g.name = row.name;
  g.jid = row.jid;
  g.is_main = false;
  if (!row.container_config) return g;
  const std::string at = "containerConfig";
  simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(*row.container_config).get(doc)) {
    return KeyError(at, std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  object obj;
  if (doc.get_object().get(obj)) return KeyError(at, "expected an object");
  if (Status s = CheckKeys(obj, at, {"timeout", "additionalMounts"}); !s.ok()) return s;
  if (element t; !obj["timeout"].get(t)) {
    std::int64_t ms = 0;
    // NanoClaw writes the timeout in milliseconds, as an integer.
    if (t.get_int64().get(ms) || ms <= 0)
      return KeyError(at + ".timeout", "expected a positive integer (milliseconds)");
    g.timeout_ms = ms;
  }
  if (element mounts; !obj["additionalMounts"].get(mounts)) {
    simdjson::dom::array arr;
    if (mounts.get_array().get(arr)) return KeyError(at + ".additionalMounts", "expected an array");
    std::size_t i = 0;
    for (element m : arr) {
      AdditionalMountConfig mc;
      if (Status s = LoadMount(m, at + ".additionalMounts[" + std::to_string(i++) + "]", mc); !s.ok()) return s;
      g.additional_mounts.push_back(std::move(mc));
    }
  }
  return g;
}

Groups::Groups(std::vector<GroupConfig> configured) : configured_(configured.size()), groups_(std::move(configured)) {
  Rebuild();
}

std::vector<std::string> Groups::AddRegistered(const std::vector<RegisteredGroup>& rows) {
  std::vector<std::string> skipped;
  for (const auto& row : rows) {
    auto g = ToGroupConfig(row);
    if (!g.ok()) {
      skipped.push_back("registered group " + row.folder + ": " + g.status().message() + "; not served");
      continue;
    }
    std::string clash;
    for (const auto& c : groups_) {
      if (LowerAscii(c.folder) == LowerAscii(row.folder)) clash = "its folder is the config's group " + c.folder;
      if (c.jid.value_or(c.folder) == row.jid) clash = "its jid " + row.jid + " belongs to group " + c.folder;
      if (!clash.empty()) break;
    }
    if (!clash.empty()) {
      skipped.push_back("registered group " + row.folder + ": " + clash + "; not served");
      continue;
    }
    groups_.push_back(std::move(*g));
  }
  Rebuild();
  return skipped;
}

Status Groups::CheckRegistrable(const std::string& folder) const {
  for (std::size_t i = 0; i < configured_; ++i) {
    if (groups_[i].folder == folder) {
      return Status::InvalidArgument("group \"" + folder + "\" is defined in the config; change it there");
    }
  }
  return Status::Ok();
}

void Groups::Put(GroupConfig g) {
  g.is_main = false;
  for (std::size_t i = configured_; i < groups_.size(); ++i) {
    if (groups_[i].folder == g.folder) {
      groups_[i] = std::move(g);
      Rebuild();
      return;
    }
  }
  groups_.push_back(std::move(g));
  Rebuild();
}

Groups::Changed Groups::SetConfigured(std::vector<GroupConfig> configured) {
  Changed c;
  std::set<std::string> before, after;
  for (const auto& g : groups_) before.insert(g.folder);
  std::vector<GroupConfig> next = std::move(configured);
  const std::size_t n = next.size();
  for (std::size_t i = configured_; i < groups_.size(); ++i) {
    bool clash = false;
    for (std::size_t j = 0; j < n; ++j) clash = clash || LowerAscii(next[j].folder) == LowerAscii(groups_[i].folder);
    if (!clash) next.push_back(std::move(groups_[i]));
  }
  groups_ = std::move(next);
  configured_ = n;
  Rebuild();
  for (const auto& g : groups_) after.insert(g.folder);
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(c.added));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(c.removed));
  return c;
}

const GroupConfig* Groups::Find(const std::string& folder) const {
  for (const auto& g : groups_) {
    if (g.folder == folder) return &g;
  }
  return nullptr;
}

void Groups::Rebuild() {
  identities_.clear();
  for (const auto& g : groups_) identities_.push_back({g.folder, g.jid, g.is_main});
}

}  // namespace dropq::app
