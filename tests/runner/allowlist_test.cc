#include "runner/allowlist.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "tests/fakes/env.h"
#include "tests/fakes/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using dropq::Status;
using dropq::runner::AdditionalMount;
using dropq::runner::DefaultAllowlistPath;
using dropq::runner::DefaultBlockedPatterns;
using dropq::runner::MountAllowlist;
using dropq::runner::RefuseWithoutAllowlist;
using dropq::runner::ValidateAdditionalMounts;
using dropq::testing::TempDir;
using dropq::testing::WriteFile;

using dropq::testing::ScopedEnv;

// A temp dir with an allowed root `allowed/` (holding `proj/`), a directory
// `outside/` beside it, and the allowlist file in `config/`. Paths are
// canonical: $TMPDIR may itself be a symlink (macOS: /tmp → /private/tmp).
struct Fixture {
  TempDir tmp;
  fs::path base = fs::canonical(tmp.path());
  fs::path allowed = base / "allowed";
  fs::path outside = base / "outside";
  fs::path file = base / "config" / "mount-allowlist.json";

  Fixture() {
    fs::create_directories(allowed / "proj");
    fs::create_directories(outside);
    fs::create_directories(file.parent_path());
  }

  MountAllowlist Load(bool allow_rw = true, bool non_main_read_only = true, const std::string& patterns = "[]") {
    WriteFile(file, R"({"allowedRoots":[{"path":")" + allowed.string() + R"(","allowReadWrite":)" +
                        (allow_rw ? "true" : "false") + R"(,"description":"test root"}],"blockedPatterns":)" +
                        patterns + R"(,"nonMainReadOnly":)" + (non_main_read_only ? "true" : "false") + "}");
    auto list = MountAllowlist::Load(file.string());
    REQUIRE(list.ok());
    return *std::move(list);
  }
};

AdditionalMount Req(const fs::path& host, std::optional<std::string> ctr = std::nullopt,
                    std::optional<bool> readonly = std::nullopt) {
  return AdditionalMount{host.string(), std::move(ctr), readonly};
}

std::string Reason(const dropq::Result<dropq::runner::Mount>& r) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  return r.status().message();
}

using Catch::Matchers::Contains;

}  // namespace

TEST_CASE("a directory under an allowed root mounts read-only at /workspace/extra/<its name> by default") {
  Fixture f;
  auto m = f.Load().Validate(Req(f.allowed / "proj"), /*is_main=*/true);
  REQUIRE(m.ok());
  CHECK(m->host == (f.allowed / "proj").string());
  CHECK(m->container == "/workspace/extra/proj");
  CHECK(m->readonly);
}

TEST_CASE("containerPath names where under /workspace/extra the mount appears, normalised") {
  Fixture f;
  auto m = f.Load().Validate(Req(f.allowed / "proj", "code//./web/"), true);
  REQUIRE(m.ok());
  CHECK(m->container == "/workspace/extra/code/web");
}

TEST_CASE("rw is granted when asked for, the root allows it and the group is main") {
  Fixture f;
  auto m = f.Load().Validate(Req(f.allowed / "proj", std::nullopt, false), /*is_main=*/true);
  REQUIRE(m.ok());
  CHECK_FALSE(m->readonly);
}

TEST_CASE("rw is downgraded to read-only for a non-main group when nonMainReadOnly is true") {
  Fixture f;
  auto m = f.Load(true, /*non_main_read_only=*/true).Validate(Req(f.allowed / "proj", std::nullopt, false), false);
  REQUIRE(m.ok());
  CHECK(m->readonly);
}

TEST_CASE("rw is granted to a non-main group when nonMainReadOnly is false") {
  Fixture f;
  auto m = f.Load(true, /*non_main_read_only=*/false).Validate(Req(f.allowed / "proj", std::nullopt, false), false);
  REQUIRE(m.ok());
  CHECK_FALSE(m->readonly);
}

TEST_CASE("rw is downgraded to read-only when the root does not allow read-write, even for main") {
  Fixture f;
  auto m = f.Load(/*allow_rw=*/false).Validate(Req(f.allowed / "proj", std::nullopt, false), true);
  REQUIRE(m.ok());
  CHECK(m->readonly);
}

TEST_CASE("a symlink inside an allowed root that points outside it is refused") {
  Fixture f;
  fs::create_directory_symlink(f.outside, f.allowed / "escape");
  auto reason = Reason(f.Load().Validate(Req(f.allowed / "escape"), true));
  CHECK_THAT(reason, Contains("not under any allowed root") && Contains(f.outside.string()));
}

TEST_CASE("a symlink that stays inside the allowed root mounts its target's real path") {
  Fixture f;
  fs::create_directory_symlink(f.allowed / "proj", f.allowed / "link");
  auto m = f.Load().Validate(Req(f.allowed / "link"), true);
  REQUIRE(m.ok());
  CHECK(m->host == (f.allowed / "proj").string());
  CHECK(m->container == "/workspace/extra/link");  // NanoClaw: the name asked for
}

TEST_CASE("a symlink to a .ssh directory is refused by the blocked pattern") {
  Fixture f;
  fs::create_directories(f.allowed / "home" / ".ssh");
  fs::create_directory_symlink(f.allowed / "home" / ".ssh", f.allowed / "keys");
  auto reason = Reason(f.Load().Validate(Req(f.allowed / "keys"), true));
  CHECK_THAT(reason, Contains("blocked pattern \".ssh\""));
}

TEST_CASE("a blocked pattern as any component of the real path is refused") {
  Fixture f;
  fs::create_directories(f.allowed / ".aws" / "cli");
  auto reason = Reason(f.Load().Validate(Req(f.allowed / ".aws" / "cli"), true));
  CHECK_THAT(reason, Contains("blocked pattern \".aws\""));
}

TEST_CASE("blocked patterns match ignoring case, as macOS filesystems do") {
  Fixture f;
  fs::create_directories(f.allowed / ".SSH");
  auto reason = Reason(f.Load().Validate(Req(f.allowed / ".SSH"), true));
  CHECK_THAT(reason, Contains("blocked pattern \".ssh\""));
}

TEST_CASE("the file's blocked patterns apply in addition to NanoClaw's defaults") {
  Fixture f;
  fs::create_directories(f.allowed / "payroll");
  auto list = f.Load(true, true, R"(["payroll"])");
  CHECK_THAT(Reason(list.Validate(Req(f.allowed / "payroll"), true)), Contains("blocked pattern \"payroll\""));
  for (const auto& p : DefaultBlockedPatterns()) {
    CHECK(std::find(list.blocked_patterns().begin(), list.blocked_patterns().end(), p) !=
          list.blocked_patterns().end());
  }
}

TEST_CASE("NanoClaw's default blocked patterns are all present") {
  const auto& d = DefaultBlockedPatterns();
  for (const char* p : {".ssh", ".gnupg", ".gpg", ".aws", ".azure", ".gcloud", ".kube", ".docker", "credentials",
                        ".env", ".netrc", ".npmrc", ".pypirc", "id_rsa", "id_ed25519", "private_key", ".secret"}) {
    CHECK(std::find(d.begin(), d.end(), p) != d.end());
  }
  CHECK(d.size() == 17);
}

TEST_CASE("a container path with a .. component is refused") {
  Fixture f;
  CHECK_THAT(Reason(f.Load().Validate(Req(f.allowed / "proj", "a/../../etc"), true)), Contains("\"..\""));
}

TEST_CASE("a container path with dots inside a name is not a .. component") {
  Fixture f;
  auto m = f.Load().Validate(Req(f.allowed / "proj", "v1..2"), true);
  REQUIRE(m.ok());
  CHECK(m->container == "/workspace/extra/v1..2");
}

TEST_CASE("an absolute container path is refused") {
  Fixture f;
  CHECK_THAT(Reason(f.Load().Validate(Req(f.allowed / "proj", "/etc"), true)), Contains("must be relative"));
}

TEST_CASE("an empty or blank container path is refused") {
  Fixture f;
  auto list = f.Load();
  CHECK_THAT(Reason(list.Validate(Req(f.allowed / "proj", ""), true)), Contains("is empty"));
  CHECK_THAT(Reason(list.Validate(Req(f.allowed / "proj", "  "), true)), Contains("is empty"));
  CHECK_THAT(Reason(list.Validate(Req(f.allowed / "proj", "./"), true)), Contains("names no directory"));
}

TEST_CASE("a host path containing ':' is refused, not mangled") {
  Fixture f;
  fs::create_directories(f.allowed / "a:b");
  CHECK_THAT(Reason(f.Load().Validate(Req(f.allowed / "a:b", "ab"), true)), Contains("contains ':'"));
}

TEST_CASE("a host path containing ',' is refused, not mangled") {
  Fixture f;
  fs::create_directories(f.allowed / "a,b");
  CHECK_THAT(Reason(f.Load().Validate(Req(f.allowed / "a,b", "ab"), true)), Contains("contains ','"));
}

TEST_CASE("a container path containing ':' is refused") {
  Fixture f;
  CHECK_THAT(Reason(f.Load().Validate(Req(f.allowed / "proj", "x:ro"), true)), Contains("contains ':'"));
}

TEST_CASE("a host path that does not exist is refused") {
  Fixture f;
  CHECK_THAT(Reason(f.Load().Validate(Req(f.allowed / "missing"), true)), Contains("does not exist"));
}

TEST_CASE("a relative host path is refused") {
  Fixture f;
  CHECK_THAT(Reason(f.Load().Validate(AdditionalMount{"allowed/proj", {}, {}}, true)),
             Contains("must be absolute or start with ~"));
}

TEST_CASE("a host path starting with ~ expands to $HOME") {
  Fixture f;
  ScopedEnv home("HOME", f.allowed.string());
  auto m = f.Load().Validate(AdditionalMount{"~/proj", {}, {}}, true);
  REQUIRE(m.ok());
  CHECK(m->host == (f.allowed / "proj").string());
}

TEST_CASE("a path that only shares a prefix with an allowed root is not under it") {
  Fixture f;
  fs::create_directories(f.base / "allowed-evil");
  CHECK_THAT(Reason(f.Load().Validate(Req(f.base / "allowed-evil"), true)), Contains("not under any allowed root"));
}

TEST_CASE("an allowed root that is a symlink is resolved before comparing") {
  Fixture f;
  fs::create_directory_symlink(f.allowed, f.base / "root-link");
  WriteFile(f.file, R"({"allowedRoots":[{"path":")" + (f.base / "root-link").string() + R"("}]})");
  auto list = MountAllowlist::Load(f.file.string());
  REQUIRE(list.ok());
  auto m = list->Validate(Req(f.allowed / "proj"), true);
  REQUIRE(m.ok());
  CHECK(m->host == (f.allowed / "proj").string());
}

TEST_CASE("the allowlist file's directory and its ancestors can never be mounted") {
  Fixture f;
  WriteFile(f.file, R"({"allowedRoots":[{"path":")" + f.base.string() + R"(","allowReadWrite":true}]})");
  auto list = MountAllowlist::Load(f.file.string());
  REQUIRE(list.ok());
  CHECK_THAT(Reason(list->Validate(Req(f.file.parent_path()), true)), Contains("would expose"));
  CHECK_THAT(Reason(list->Validate(Req(f.base), true)), Contains("would expose"));
  CHECK(list->Validate(Req(f.outside), true).ok());
}

TEST_CASE("an allowlist reached through a symlink protects both the link's directory and its target's") {
  Fixture f;
  fs::create_directories(f.base / "dotfiles");
  WriteFile(f.base / "dotfiles" / "allow.json",
            R"({"allowedRoots":[{"path":")" + f.base.string() + R"(","allowReadWrite":true}]})");
  fs::create_symlink(f.base / "dotfiles" / "allow.json", f.file);
  auto list = MountAllowlist::Load(f.file.string());
  REQUIRE(list.ok());
  CHECK_THAT(Reason(list->Validate(Req(f.base / "dotfiles"), true)), Contains("would expose"));
  CHECK_THAT(Reason(list->Validate(Req(f.file.parent_path()), true)), Contains("would expose"));
}

TEST_CASE("a protected path, anything inside it and anything above it are refused") {
  Fixture f;
  fs::create_directories(f.allowed / "dropq-root" / "groups" / "other");
  auto list = f.Load();
  list.Protect((f.allowed / "dropq-root").string());
  CHECK_THAT(Reason(list.Validate(Req(f.allowed / "dropq-root" / "groups" / "other"), true)), Contains("would expose"));
  CHECK_THAT(Reason(list.Validate(Req(f.allowed), true)), Contains("would expose"));
  CHECK(list.Validate(Req(f.allowed / "proj"), true).ok());
}

TEST_CASE("with no allowlist every additional mount is refused, naming where it was looked for") {
  Fixture f;
  auto r = RefuseWithoutAllowlist(Req(f.allowed / "proj"), "/home/u/.config/dropq/mount-allowlist.json");
  CHECK_THAT(Reason(r), Contains("no mount allowlist at /home/u/.config/dropq/mount-allowlist.json"));
  auto all = ValidateAdditionalMounts(nullptr, "/x/allow.json", {Req(f.allowed / "proj"), Req(f.outside)}, true);
  CHECK(all.mounts.empty());
  REQUIRE(all.refusals.size() == 2);
  CHECK_THAT(all.refusals[1], Contains("no mount allowlist at /x/allow.json"));
}

TEST_CASE("validating a group's list keeps the allowed mounts and gives one reason per refusal") {
  Fixture f;
  auto list = f.Load();
  auto v = ValidateAdditionalMounts(&list, f.file.string(), {Req(f.outside), Req(f.allowed / "proj")}, true);
  REQUIRE(v.mounts.size() == 1);
  CHECK(v.mounts[0].container == "/workspace/extra/proj");
  REQUIRE(v.refusals.size() == 1);
  CHECK_THAT(v.refusals[0], Contains(f.outside.string()));
}

TEST_CASE("loading a missing allowlist is NotFound") {
  Fixture f;
  auto r = MountAllowlist::Load((f.base / "nope.json").string());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kNotFound);
}

TEST_CASE("loading an allowlist that is not JSON is InvalidArgument naming the file") {
  Fixture f;
  WriteFile(f.file, "{\"allowedRoots\": [");
  auto r = MountAllowlist::Load(f.file.string());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  CHECK_THAT(r.status().message(), Contains(f.file.string()) && Contains("not valid JSON"));
}

TEST_CASE("a malformed allowlist is InvalidArgument naming the problem") {
  Fixture f;
  auto check = [&](const std::string& text, const std::string& problem) {
    auto r = MountAllowlist::Parse(text, "allow.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK_THAT(r.status().message(), Contains(problem));
  };
  check("[]", "top level must be an object");
  check("{}", "allowedRoots is required");
  check(R"({"allowedRoots":{}})", "allowedRoots must be an array");
  check(R"({"allowedRoots":[{"allowReadWrite":true}]})", "allowedRoots[0].path is required");
  check(R"({"allowedRoots":[{"path":"relative/dir"}]})", "allowedRoots[0].path must be absolute");
  check(R"({"allowedRoots":[{"path":"/x","allowReadWrite":"yes"}]})",
        "allowedRoots[0].allowReadWrite must be a boolean");
  check(R"({"allowedRoots":[],"blockedPatterns":[""]})", "blockedPatterns[0] must be a non-empty string");
  check(R"({"allowedRoots":[],"nonMainReadOnly":1})", "nonMainReadOnly must be a boolean");
  check(R"({"allowedRoots":[],"blockedPattern":["x"]})", "unknown key \"blockedPattern\"");
}

TEST_CASE("nonMainReadOnly defaults to true when the file leaves it out") {
  auto r = MountAllowlist::Parse(R"({"allowedRoots":[]})", "allow.json");
  REQUIRE(r.ok());
  CHECK(r->non_main_read_only());
}

TEST_CASE("an allowed root written with a leading ~ expands to $HOME") {
  ScopedEnv home("HOME", "/home/someone");
  auto r = MountAllowlist::Parse(R"({"allowedRoots":[{"path":"~/projects/"},{"path":"~"}]})", "allow.json");
  REQUIRE(r.ok());
  REQUIRE(r->allowed_roots().size() == 2);
  CHECK(r->allowed_roots()[0].path == "/home/someone/projects");
  CHECK(r->allowed_roots()[1].path == "/home/someone");
}

TEST_CASE("the default allowlist lives in ~/.config/dropq") {
  ScopedEnv home("HOME", "/home/someone");
  CHECK(DefaultAllowlistPath() == "/home/someone/.config/dropq/mount-allowlist.json");
}
