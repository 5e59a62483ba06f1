#include "jobs/layout.h"

#include <system_error>

namespace dropq {
namespace {

Status MakeDirs(std::initializer_list<std::filesystem::path> dirs) {
  for (const auto& d : dirs) {
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    if (ec) return Status::IOError("cannot create " + d.string() + ": " + ec.message());
    // A path that exists but is not a directory (or is a symlink to one a
    // group planted) is refused rather than used.
    auto st = std::filesystem::symlink_status(d, ec);
    if (ec || st.type() != std::filesystem::file_type::directory) {
      return Status::IOError(d.string() + " is not a directory");
    }
  }
  return Status::Ok();
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

Status Layout::CreateGroup(const std::string& g) const {
  return MakeDirs(
      {GroupDir(g), GroupLogsDir(g), TasksDir(g), MessagesDir(g), ResultsDir(g), SessionDir(g), ClaimedDir(g)});
}

Status Layout::CreateCommon() const { return MakeDirs({StoreDir(), ErrorsDir(), root_ / "groups"}); }

}  // namespace dropq
