#include "jobs/notifications.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/text.h"

namespace dropq {

std::int64_t NotifyBackoffMs(std::int64_t attempts) {
  constexpr std::int64_t kFirst = 1'000, kCap = 600'000;
  const std::int64_t doublings = std::clamp<std::int64_t>(attempts - 1, 0, 20);  // 2^20 s is far past the cap
  return std::min(kCap, kFirst << doublings);
}

Status NotificationStore::Enqueue(Notification& n, TimeMs due) {
  n.next_try_at = due;
  if (Status s = StoreSql::Prepare(store_,
                                   "INSERT INTO notifications (job_id, group_folder, target, timeout_ms, max_attempts, "
                                   "payload, attempts, next_try_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)")
                     .Use()
                     .Bind(1, n.job_id)
                     .Bind(2, n.group)
                     .Bind(3, n.target)
                     .Bind(4, n.timeout_ms)
                     .Bind(5, n.max_attempts)
                     .Bind(6, n.payload)
                     .BindTime(7, due)
                     .BindTime(8, store_.clock().NowMs())
                     .Run();
      !s.ok()) {
    return s;
  }
  n.id = store_.LastInsertRowId();
  return Status::Ok();
}

Result<std::optional<Notification>> NotificationStore::NextDue() {
  auto& q = StoreSql::Prepare(store_,
                              "SELECT id, job_id, group_folder, target, timeout_ms, max_attempts, payload, attempts, "
                              "next_try_at, last_error FROM notifications ORDER BY next_try_at, id LIMIT 1")
                .Use();
  std::optional<Notification> out;
  Status s = ForEachRow(q, [&](SqlStmt& r) {
    Notification n;
    n.id = r.Int(0);
    n.job_id = r.Int(1);
    n.group = r.Text(2);
    n.target = r.Text(3);
    n.timeout_ms = r.Int(4);
    n.max_attempts = r.Int(5);
    n.payload = r.Text(6);
    n.attempts = r.Int(7);
    n.next_try_at = r.Time(8);
    n.last_error = r.OptText(9);
    out = std::move(n);
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::int64_t> NotificationStore::CountPending() {
  auto& q = StoreSql::Prepare(store_, "SELECT count(*) FROM notifications").Use();
  std::int64_t n = 0;
  Status s = ForEachRow(q, [&](SqlStmt& r) { n = r.Int(0); });
  if (!s.ok()) return s;
  return n;
}

Result<std::optional<TimeMs>> NotificationStore::RecordTry(const Notification& n, const Status& outcome, TimeMs now) {
  const std::int64_t attempt = n.attempts + 1;
  nlohmann::json detail = {{"notification", n.id}, {"attempt", attempt}, {"max_attempts", n.max_attempts}};
  auto target = nlohmann::json::parse(n.target, nullptr, false);
  if (target.is_object()) detail["target"] = target.contains("url") ? "url" : "command";
  std::optional<TimeMs> next;
  if (!outcome.ok()) {
    detail["error"] = outcome.message();
    if (attempt < n.max_attempts) next = now + NotifyBackoffMs(attempt);
    detail["next_try_at"] = next ? nlohmann::json(FormatIsoUtc(*next)) : nlohmann::json(nullptr);
    detail["gave_up"] = !next.has_value();
  }
  Status s = store_.Begin();
  if (s.ok() && next) {
    s = StoreSql::Prepare(store_, "UPDATE notifications SET attempts = ?, next_try_at = ?, last_error = ? WHERE id = ?")
            .Use()
            .Bind(1, attempt)
            .BindTime(2, *next)
            .Bind(3, outcome.message())
            .Bind(4, n.id)
            .Run();
  } else if (s.ok()) {
    s = StoreSql::Prepare(store_, "DELETE FROM notifications WHERE id = ?").Use().Bind(1, n.id).Run();
  }
  if (s.ok())
    s = store_.AppendEvent(n.job_id, n.group, outcome.ok() ? "notified" : "notify_failed", text::Dump(detail));
  if (s.ok()) s = store_.Commit();
  if (!s.ok()) {
    if (store_.InTransaction()) store_.Rollback();
    return s;
  }
  return next;
}

}  // namespace dropq
