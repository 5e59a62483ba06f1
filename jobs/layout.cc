#include "jobs/layout.h"

#include <system_error>

#include "base/atomic_file.h"

namespace dropq {
namespace {

// Each directory made here is made durable: by `batch`'s Flush when given,
// else before returning.
Status MakeDirs(std::initializer_list<std::filesystem::path> dirs, NewDirs* batch) {
  NewDirs own;
  NewDirs& made = batch ? *batch : own;
  for (const auto& d : dirs) {
    if (Status s = made.Create(d); !s.ok()) return s;
    std::error_code ec;
    // A path that exists but is not a directory (or is a symlink to one a
    // group planted) is refused rather than used.
    auto st = std::filesystem::symlink_status(d, ec);
    if (ec || st.type() != std::filesystem::file_type::directory) {
      return Status::IOError(d.string() + " is not a directory");
    }
  }
  return batch ? Status::Ok() : own.Flush();
}

}  // namespace

Status Layout::CheckRealDir(const std::filesystem::path& dir) {
  std::error_code ec;
  auto st = std::filesystem::symlink_status(dir, ec);
  if (ec) return Status::IOError(dir.string() + ": " + ec.message());
  if (st.type() == std::filesystem::file_type::symlink) {
    return Status::IOError(dir.string() + " was replaced by a symlink; dropq will not follow it");
  }
  if (st.type() != std::filesystem::file_type::directory) return Status::IOError(dir.string() + " is not a directory");
  return Status::Ok();
}

Status Layout::CreateGroup(const std::string& g, NewDirs* batch) const {
  return MakeDirs(
      {GroupDir(g), GroupLogsDir(g), TasksDir(g), MessagesDir(g), ResultsDir(g), SessionDir(g), ClaimedDir(g)}, batch);
}

Status Layout::CreateCommon() const { return MakeDirs({StoreDir(), ErrorsDir(), root_ / "groups"}, nullptr); }

}  // namespace dropq
