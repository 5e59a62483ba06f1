#pragma once
// What a reload (SIGHUP, `systemctl reload`) may change in a running daemon,
// and what needs a restart (docs/CONFIG.md, "Reload").
#include <string>
#include <vector>

#include "config/config.h"

namespace dropq::app {

struct ReloadPlan {
  // Keys whose new value the daemon cannot take while running (the root,
  // the runtime and its settings, the dashboard, on_message): their running
  // values are kept, and the keys named in the log and the `reloaded` event.
  std::vector<std::string> restart_needed;
  // The other top-level keys whose value changed, applied by the reload.
  std::vector<std::string> changed;
  // The config to run with: `loaded`, with the running values of the keys
  // in restart_needed.
  Config next;
};

ReloadPlan PlanReload(const Config& running, Config loaded);

}  // namespace dropq::app
