#include "runner/snapshots.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "jobs/queries.h"
#include "jobs/tasks.h"
#include "watcher/claim.h"
#include "base/text.h"

namespace dropq {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) { return text::Dump(j, 2) + "\n"; }

// The file as it is on disk, when it is a regular file no larger than
// `max_bytes` (anything longer differs anyway); nullopt otherwise.
std::optional<std::string> ReadExisting(const std::filesystem::path& path, std::size_t max_bytes) {
  auto r = watcher::ReadClaimed(path, static_cast<std::int64_t>(max_bytes));
  if (!r.ok()) return std::nullopt;
  return std::move(*r);
}

Status WriteIfChanged(const std::filesystem::path& path, const std::string& content) {
  auto old = ReadExisting(path, content.size());
  if (old && *old == content) return Status::Ok();
  return WriteFileAtomic(path, content, Flush::kNever);
}

// current_tasks.json as Dump() of the whole array would print it, built one
// task at a time as the rows are read: with 100,000 tasks the list of tasks
// and the array's DOM held hundreds of MB through each write
// (docs/PERFORMANCE.md); now only the text is held.
Result<std::string> TasksJson(TaskStore& tasks, const watcher::GroupIdentity& g) {
  std::string out = "[";
  bool any = false;
  Status s = tasks.ForEach(g.is_main ? std::nullopt : std::optional<std::string>(g.folder), [&](Task t) {
    Json one = {{"id", t.id},
                {"groupFolder", t.group_folder},
                {"prompt", t.prompt},
                {"schedule_type", ToString(t.schedule_type)},
                {"schedule_value", t.schedule_value},
                {"status", ToString(t.status)},
                {"next_run", t.next_run ? Json(FormatIsoUtc(*t.next_run)) : Json(nullptr)}};
    std::string text = text::Dump(one, 2);
    out += any ? ",\n  " : "\n  ";
    // One level deeper than on its own: every line of the object indented by two.
    for (char c : text) {
      out += c;
      if (c == '\n') out += "  ";
    }
    any = true;
  });
  if (!s.ok()) return s;
  out += any ? "\n]\n" : "]\n";
  return out;
}

}  // namespace

Status WriteSnapshots(const Layout& layout, Store& store, std::span<const watcher::GroupIdentity> groups,
                      const std::optional<std::string>& only, bool refresh) {
  TaskStore tasks_store(store);

  // Main's view of the groups, built only when a main group is written.
  Json all_groups = Json::array();
  bool need_groups = false;
  for (const auto& g : groups) need_groups |= g.is_main && (!only || *only == g.folder);
  if (need_groups) {
    for (const auto& g : groups) {
      auto info = app::LoadGroupActivity(store, g.folder);
      if (!info.ok()) return info.status();
      all_groups.push_back(Json{{"jid", watcher::ChatJid(g)},
                                {"name", info->name},
                                {"folder", g.folder},
                                {"lastActivity", info->last_activity ? Json(*info->last_activity) : Json(nullptr)},
                                {"isRegistered", true}});
    }
  }

  Status first;
  auto note = [&](const Status& s, const std::filesystem::path& p) {
    if (s.ok()) return;
    spdlog::error("cannot write {}: {}", p.string(), s.message());
    if (first.ok()) first = s;
  };
  for (const auto& g : groups) {
    if (only && *only != g.folder) continue;
    auto tasks_path = layout.IpcDir(g.folder) / "current_tasks.json";
    auto tasks_json = TasksJson(tasks_store, g);
    if (!tasks_json.ok()) return tasks_json.status();
    note(WriteIfChanged(tasks_path, *tasks_json), tasks_path);

    // available_groups.json: rewritten only when the list changed, so
    // `lastSync` says when the list was last found different.
    const Json& list = g.is_main ? all_groups : Json::array();
    Json doc = {{"groups", list}, {"lastSync", FormatIsoUtc(store.clock().NowMs())}};
    std::string content = Dump(doc);
    auto groups_path = layout.IpcDir(g.folder) / "available_groups.json";
    auto old = ReadExisting(groups_path, content.size() + 64);
    if (old && !refresh) {
      Json parsed = Json::parse(*old, nullptr, false);
      if (parsed.is_object() && parsed.contains("groups") && parsed["groups"] == list) continue;
    }
    note(WriteFileAtomic(groups_path, content, Flush::kNever), groups_path);
  }
  return first;
}

}  // namespace dropq
