#pragma once
// Claiming a dropped file safely (docs/DESIGN.md, "Ingest").
//
// A file is claimed by renaming it from the group's tasks/ into the private
// data/claimed/<group>/ as "<token>.<name>". From then on no writer can change
// which file we read, and the token — unique per claim — is recorded with the
// job, so start-up reconciliation knows exactly which claimed files already
// became jobs. Dropping the same file again later gets a new token: a new job.
//
// Reading never follows a symlink (O_NOFOLLOW), never blocks on a FIFO
// (O_NONBLOCK), refuses anything that is not a regular file, and refuses a
// file larger than the cap by its size before reading a byte.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"

namespace dropq::watcher {

struct ClaimedFile {
  std::string group;
  std::string name;            // as dropped, e.g. "report.json"
  std::string token;           // unique claim token
  std::filesystem::path path;  // data/claimed/<group>/<token>.<name>
};

// The longest name a dropped file may have, in bytes. Its claimed name
// "<token>.<name>" must fit NAME_MAX (255), and a token takes at most 42
// bytes ("<13-digit ms>-<pid>-<counter>"); 200 leaves room to spare.
inline constexpr std::size_t kMaxDroppedNameBytes = 200;

// Why `name`, as dropped, cannot be taken in (nullopt when it can): it is
// not valid UTF-8, holds a control character, or is longer than
// kMaxDroppedNameBytes. Such a file is rejected by its name alone, without
// being claimed or read.
std::optional<std::string> DroppedNameProblem(std::string_view name);

// A token unique across restarts and within one process: time, pid and a
// counter.
std::string NewClaimToken(TimeMs now);

// Moves a rejected file into errors_dir, after writing the reason beside it
// as "<moved name>.error.json" ({file, group, reason, rejectedAt, movedTo},
// plus fileHex when the name is not clean text). The moved name is
// NanoClaw's "<group>-<name>", or "<group>-<token>-<name>" when that is
// taken; for a name that is not clean text, or too long for either,
// "<group>-<token>-<name made safe>" (ErrorsFileName). `f.path` is where the
// file is now: claimed/, or tasks/ or messages/ when its name was the
// problem. Failures are logged: the file is left where it is.
void MoveToErrors(const std::filesystem::path& errors_dir, const ClaimedFile& f, const std::string& reason, TimeMs now);

// The name MoveToErrors gives a rejected file in errors/ (without
// ".error.json"); `taken` says "<group>-<name>" is already used.
std::string ErrorsFileName(const std::string& group, const std::string& name, const std::string& token, bool taken);

// True when `name`'s rejection would not be "<group>-<name>"-shaped, so a
// reader looking for it must read the .error.json files' "file" field.
bool NeedsSafeErrorsName(const std::string& group, const std::string& name);

// Moves tasks_dir/name into claimed_dir. NotFound when the file is gone
// (another event already claimed it); IOError for anything else.
Result<ClaimedFile> ClaimFile(const std::string& group, const std::filesystem::path& tasks_dir, const std::string& name,
                              const std::filesystem::path& claimed_dir, TimeMs now);

// Splits a claimed file's name back into token and original name; nullopt
// for names dropq did not make.
std::optional<ClaimedFile> ParseClaimedName(const std::string& group, const std::filesystem::path& claimed_path);

// Reads a claimed file under the rules above. InvalidArgument carries the
// reason a person should read ("is a symlink", "is a FIFO, not a regular
// file", "is 2000000 bytes, over the 1048576-byte limit").
Result<std::string> ReadClaimed(const std::filesystem::path& path, std::int64_t max_bytes);

// Lower-case hex SHA-256 of `data` (OpenSSL), as recorded in jobs.source_hash.
std::string Sha256Hex(std::string_view data);

}  // namespace dropq::watcher
