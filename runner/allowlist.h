#pragma once
// The mount allowlist: which host directories a group may add to its sandbox
// through containerConfig.additionalMounts (NanoClaw's mount security model,
// docs/SECURITY.md).
//
// The allowlist lives outside `root` (default
// ~/.config/dropq/mount-allowlist.json) and is never mounted: an agent must
// not be able to widen its own box. Its format is NanoClaw's:
//
//   {"allowedRoots": [{"path": "~/projects", "allowReadWrite": true,
//                      "description": "..."}],
//    "blockedPatterns": ["password"],
//    "nonMainReadOnly": true}
//
// Validate() resolves symlinks BEFORE any check (a link inside an allowed
// root that points outside it is judged by its target), refuses any real path
// containing a blocked pattern (NanoClaw's defaults always apply), requires
// the real path under an allowed root, and confines the container path to
// /workspace/extra/. A mount is read-only unless the request asks for rw, the
// root allows rw, and the group is main or nonMainReadOnly is false.
//
// Errors are values: a refused mount is InvalidArgument with the reason, for
// the caller to log with the group's name.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runner/mounts.h"

namespace dropq::runner {

// One entry of a group's containerConfig.additionalMounts (NanoClaw's
// hostPath, containerPath, readonly).
struct AdditionalMount {
  std::string host_path;                      // absolute, or starting with ~
  std::optional<std::string> container_path;  // under /workspace/extra/; default: basename of host_path
  std::optional<bool> readonly;               // only an explicit false asks for rw
};

struct AllowedRoot {
  std::string path;  // as written, `~` expanded; resolved again at each Validate
  bool allow_read_write = false;
  std::string description;
};

// NanoClaw's DEFAULT_BLOCKED_PATTERNS: credentials no group may ever mount.
const std::vector<std::string>& DefaultBlockedPatterns();

// $HOME/.config/dropq/mount-allowlist.json.
std::string DefaultAllowlistPath();

// `~` and `~/x` → $HOME and $HOME/x (the password database when HOME is
// unset); anything else unchanged.
std::string ExpandHome(const std::string& path);

// Ok when the runtimes' mount syntax can carry `path`: docker's
// `-v host:ctr[:ro]` splits on ':', Apple's `--mount type=bind,source=…`
// on ','. Such paths are refused, never escaped or mangled. Also refuses NUL.
// The app should apply this to `root` too: GroupMounts does not check it.
Status CheckMountablePath(std::string_view path);

class MountAllowlist {
 public:
  // Reads and checks the file. Missing file: NotFound. Unreadable: IOError.
  // Malformed (not JSON, a wrong type, an unknown key, a relative root, an
  // empty pattern): InvalidArgument naming the path and the problem. Unknown
  // keys are errors because a misspelt "blockedPatterns" would silently
  // drop the operator's patterns.
  static Result<MountAllowlist> Load(const std::string& path);
  // The same checks on text already read; `source` names it in errors.
  static Result<MountAllowlist> Parse(std::string_view json, const std::string& source);

  // The sandbox mount for `m`, or InvalidArgument with the reason.
  Result<Mount> Validate(const AdditionalMount& m, bool is_main) const;

  // Nothing at, under or above `path` may be mounted (an ancestor would
  // expose it too). Load protects the allowlist file itself; the app adds
  // dropq's `root`, whose other groups' folders a mount must not reveal.
  void Protect(const std::string& path);

  const std::string& source() const { return source_; }
  const std::vector<AllowedRoot>& allowed_roots() const { return roots_; }
  // NanoClaw's defaults followed by the file's own, without duplicates.
  const std::vector<std::string>& blocked_patterns() const { return patterns_; }
  bool non_main_read_only() const { return non_main_read_only_; }

 private:
  MountAllowlist() = default;

  std::string source_;
  std::vector<AllowedRoot> roots_;
  std::vector<std::string> patterns_;
  bool non_main_read_only_ = true;      // the safe default when the key is absent
  std::vector<std::string> protected_;  // real (or absolute) paths
};

// For when no allowlist could be loaded: every additional mount is refused
// with "no mount allowlist at <allowlist_path>".
Result<Mount> RefuseWithoutAllowlist(const AdditionalMount& m, const std::string& allowlist_path);

// Validates a group's whole list. `allowlist` null: all refused (see above).
// Refusals carry one reason each, in order, for the caller to log.
struct ValidatedMounts {
  std::vector<Mount> mounts;
  std::vector<std::string> refusals;
};
ValidatedMounts ValidateAdditionalMounts(const MountAllowlist* allowlist, const std::string& allowlist_path,
                                         const std::vector<AdditionalMount>& requested, bool is_main);

}  // namespace dropq::runner
