#include "runner/allowlist.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dropq::runner {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kExtraDir = "/workspace/extra/";

std::string HomeDir() {
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') return h;
  // Daemons started by init systems may have no HOME.
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found != nullptr && found->pw_dir != nullptr) {
    return found->pw_dir;
  }
  return "/";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// `path` is `root` or inside it. Both are canonical, so comparing whole
// components is enough ("/data/proj" is not under "/data/pro").
bool IsUnder(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

std::string WithoutTrailingSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// NanoClaw checks `realPath.includes(pattern)`, which covers every path
// component and every part of one. We match ignoring ASCII case because the
// default macOS filesystem is case-insensitive: ~/.SSH opens ~/.ssh.
std::optional<std::string> BlockedBy(const std::string& real, const std::vector<std::string>& patterns) {
  const std::string hay = Lower(real);
  for (const auto& p : patterns) {
    if (hay.find(Lower(p)) != std::string::npos) return p;
  }
  return std::nullopt;
}

// A relative container path without `..`, normalised ("a//./b/" → "a/b").
Result<std::string> NormalizeContainerPath(const std::string& p) {
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("container path \"" + p + "\" " + why);
  };
  if (p.find_first_not_of(" \t\r\n") == std::string::npos) return bad("is empty");
  if (p.front() == '/') return bad("must be relative (it is placed under /workspace/extra/)");
  std::string out;
  std::stringstream parts(p);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part == "..") return bad("must not contain a \"..\" component");
    if (part.empty() || part == ".") continue;
    if (!out.empty()) out.push_back('/');
    out += part;
  }
  if (out.empty()) return bad("names no directory under /workspace/extra/");
  if (Status s = CheckMountablePath(out); !s.ok()) return bad(s.message());
  return out;
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

const std::vector<std::string>& DefaultBlockedPatterns() {
  // NanoClaw's src/mount-security.ts DEFAULT_BLOCKED_PATTERNS, in its order.
  static const std::vector<std::string> kPatterns = {
      ".ssh", ".gnupg", ".gpg",   ".aws",    ".azure", ".gcloud",    ".kube",       ".docker", "credentials",
      ".env", ".netrc", ".npmrc", ".pypirc", "id_rsa", "id_ed25519", "private_key", ".secret",
  };
  return kPatterns;
}

std::string DefaultAllowlistPath() { return HomeDir() + "/.config/dropq/mount-allowlist.json"; }

std::string ExpandHome(const std::string& path) {
  if (path == "~") return HomeDir();
  if (path.rfind("~/", 0) == 0) return WithoutTrailingSlashes(HomeDir()) + path.substr(1);
  return path;
}

Status CheckMountablePath(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) return Status::InvalidArgument("contains a NUL byte");
  if (path.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("contains ':', which docker's -v syntax cannot carry");
  }
  if (path.find(',') != std::string_view::npos) {
    return Status::InvalidArgument("contains ',', which the --mount syntax cannot carry");
  }
  return Status::Ok();
}

Result<MountAllowlist> MountAllowlist::Load(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return Status::NotFound("no mount allowlist at " + path);
  if (ec) return Status::IOError("cannot stat mount allowlist " + path + ": " + ec.message());
  if (!fs::is_regular_file(st)) return Status::IOError("mount allowlist " + path + " is not a regular file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return Status::IOError("cannot read mount allowlist " + path);
  auto list = Parse(text.str(), path);
  if (list.ok()) list->Protect(path);
  return list;
}

Result<MountAllowlist> MountAllowlist::Parse(std::string_view text, const std::string& source) {
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("mount allowlist " + source + ": " + why);
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return bad(std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) return bad("the top level must be an object");

  MountAllowlist list;
  list.source_ = source;
  list.patterns_ = DefaultBlockedPatterns();
  bool have_roots = false;
  for (const auto& [key, value] : doc.items()) {
    if (key == "allowedRoots") {
      if (!value.is_array()) return bad("allowedRoots must be an array");
      have_roots = true;
      for (std::size_t i = 0; i < value.size(); ++i) {
        const json& r = value[i];
        const std::string where = "allowedRoots[" + std::to_string(i) + "]";
        if (!r.is_object()) return bad(where + " must be an object");
        AllowedRoot root;
        bool have_path = false;
        for (const auto& [k, v] : r.items()) {
          if (k == "path") {
            if (!v.is_string() || v.get<std::string>().empty()) return bad(where + ".path must be a non-empty string");
            root.path = WithoutTrailingSlashes(ExpandHome(v.get<std::string>()));
            if (root.path.front() != '/') return bad(where + ".path must be absolute or start with ~");
            have_path = true;
          } else if (k == "allowReadWrite") {
            if (!v.is_boolean()) return bad(where + ".allowReadWrite must be a boolean");
            root.allow_read_write = v.get<bool>();
          } else if (k == "description") {
            if (!v.is_string()) return bad(where + ".description must be a string");
            root.description = v.get<std::string>();
          } else {
            return bad(where + ": unknown key " + Quoted(k));
          }
        }
        if (!have_path) return bad(where + ".path is required");
        list.roots_.push_back(std::move(root));
      }
    } else if (key == "blockedPatterns") {
      if (!value.is_array()) return bad("blockedPatterns must be an array");
      for (std::size_t i = 0; i < value.size(); ++i) {
        const json& p = value[i];
        // An empty pattern would be found in every path and block everything.
        if (!p.is_string() || p.get<std::string>().empty()) {
          return bad("blockedPatterns[" + std::to_string(i) + "] must be a non-empty string");
        }
        auto s = p.get<std::string>();
        if (std::find(list.patterns_.begin(), list.patterns_.end(), s) == list.patterns_.end()) {
          list.patterns_.push_back(std::move(s));
        }
      }
    } else if (key == "nonMainReadOnly") {
      if (!value.is_boolean()) return bad("nonMainReadOnly must be a boolean");
      list.non_main_read_only_ = value.get<bool>();
    } else {
      return bad("unknown key " + Quoted(key) + " (expected allowedRoots, blockedPatterns, nonMainReadOnly)");
    }
  }
  if (!have_roots) return bad("allowedRoots is required");
  return list;
}

void MountAllowlist::Protect(const std::string& path) {
  // Both the path as named and where its symlinks lead: a linked allowlist
  // (~/.config/dropq/x.json → ~/dotfiles/x.json) is exposed by mounting either.
  std::error_code ec;
  const std::string named = WithoutTrailingSlashes(fs::absolute(path, ec).lexically_normal().string());
  protected_.push_back(named);
  const fs::path real = fs::canonical(path, ec);
  if (!ec && real.string() != named) protected_.push_back(real.string());
}

Result<Mount> MountAllowlist::Validate(const AdditionalMount& m, bool is_main) const {
  const auto refuse = [&](const std::string& why) {
    return Status::InvalidArgument("additional mount " + Quoted(m.host_path) + " refused: " + why);
  };
  if (m.host_path.empty()) return refuse("hostPath is empty");
  if (m.host_path.find('\0') != std::string::npos) return refuse("hostPath contains a NUL byte");
  const std::string expanded = WithoutTrailingSlashes(ExpandHome(m.host_path));
  if (expanded.front() != '/') return refuse("hostPath must be absolute or start with ~");

  // Cheap checks first, as NanoClaw does.
  auto ctr = NormalizeContainerPath(m.container_path.value_or(fs::path(expanded).filename().string()));
  if (!ctr.ok()) return refuse(ctr.status().message());

  // Everything below judges the real path: a symlink is what it points to.
  std::error_code ec;
  const fs::path real_path = fs::canonical(expanded, ec);
  if (ec) return refuse("host path " + Quoted(expanded) + " does not exist (" + ec.message() + ")");
  const std::string real = real_path.string();
  if (Status s = CheckMountablePath(real); !s.ok()) return refuse("real path " + Quoted(real) + " " + s.message());
  if (auto p = BlockedBy(real, patterns_))
    return refuse("real path " + Quoted(real) + " matches blocked pattern " + Quoted(*p));
  for (const auto& prot : protected_) {
    if (IsUnder(real, prot) || IsUnder(prot, real)) {
      return refuse("real path " + Quoted(real) + " would expose " + Quoted(prot) + ", which no sandbox may see");
    }
  }

  const AllowedRoot* root = nullptr;
  for (const auto& r : roots_) {
    // Roots are resolved too, so /home → /usr/home style links match; a
    // root that does not exist (yet) allows nothing.
    const fs::path real_root = fs::canonical(r.path, ec);
    if (ec) continue;
    if (IsUnder(real, real_root.string())) {
      root = &r;
      break;
    }
  }
  if (root == nullptr) {
    std::string roots;
    for (const auto& r : roots_) roots += (roots.empty() ? "" : ", ") + r.path;
    return refuse("real path " + Quoted(real) + " is not under any allowed root (" +
                  (roots.empty() ? "none configured" : roots) + ")");
  }

  const bool wants_rw = m.readonly.has_value() && !*m.readonly;
  const bool rw = wants_rw && root->allow_read_write && (is_main || !non_main_read_only_);
  return Mount{real, std::string(kExtraDir) + *ctr, !rw};
}

Result<Mount> RefuseWithoutAllowlist(const AdditionalMount& m, const std::string& allowlist_path) {
  return Status::InvalidArgument("additional mount " + Quoted(m.host_path) + " refused: no mount allowlist at " +
                                 allowlist_path);
}

ValidatedMounts ValidateAdditionalMounts(const MountAllowlist* allowlist, const std::string& allowlist_path,
                                         const std::vector<AdditionalMount>& requested, bool is_main) {
  ValidatedMounts out;
  for (const auto& m : requested) {
    auto r = allowlist != nullptr ? allowlist->Validate(m, is_main) : RefuseWithoutAllowlist(m, allowlist_path);
    if (r.ok()) {
      out.mounts.push_back(std::move(r).value());
    } else {
      out.refusals.push_back(r.status().message());
    }
  }
  return out;
}

}  // namespace dropq::runner
