#pragma once
// The groups dropq serves: the config's, then those the main group
// registered at run time with a `register_group` file (docs/FILES.md). A
// registered group is kept in the `groups` table (source 'registered'), so
// it is served again after a restart; the config is never rewritten.
#include <string>
#include <vector>

#include "config/config.h"
#include "base/status.h"
#include "jobs/store.h"
#include "watcher/authorize.h"
#include "watcher/job_file.h"

namespace dropq::app {

// The row a register_group file asks for.
RegisteredGroup ToRegisteredGroup(const watcher::RegisterGroup& cmd);

// A registered group as the daemon serves it: NanoClaw's containerConfig
// (JSON text: `timeout` in ms, `additionalMounts` of {hostPath,
// containerPath, readonly}) checked as strictly as the YAML config's; an
// error names the key (`containerConfig.additionalMounts[0].hostPath: ...`).
// A registered group is never main.
Result<GroupConfig> ToGroupConfig(const RegisteredGroup& row);

class Groups {
 public:
  explicit Groups(std::vector<GroupConfig> configured);

  // At start: the groups registered earlier. A row the config now
  // contradicts (same folder ignoring case, or same jid) or whose
  // containerConfig no longer parses is left out; the reasons are returned
  // for the log.
  std::vector<std::string> AddRegistered(const std::vector<RegisteredGroup>& rows);

  // Checks that `g` may be registered: not a group of the config (those
  // change only in the config). Authorize() has already checked main-only,
  // folder case clashes and jid uniqueness against Identities().
  Status CheckRegistrable(const std::string& folder) const;
  // Adds a registered group or replaces the one with its folder.
  void Put(GroupConfig g);
  // A reloaded config's groups replace the config's (registered groups
  // stay, unless the config now has their folder). Returns the folders
  // that were not served before and those no longer served.
  struct Changed {
    std::vector<std::string> added, removed;
  };
  Changed SetConfigured(std::vector<GroupConfig> configured);

  const GroupConfig* Find(const std::string& folder) const;
  const std::vector<GroupConfig>& all() const { return groups_; }
  const std::vector<watcher::GroupIdentity>& identities() const { return identities_; }

 private:
  void Rebuild();

  std::size_t configured_;  // groups_[0, configured_) come from the config
  std::vector<GroupConfig> groups_;
  std::vector<watcher::GroupIdentity> identities_;
};

}  // namespace dropq::app
