#include "jobs/messages.h"

#include <nlohmann/json.hpp>

#include "base/text.h"

namespace dropq {

Status MessageStore::Record(Message& m, const std::string& file, const std::string& claim) {
  if (Status s = store_
                     .Prepare("INSERT INTO messages (group_folder, chat_jid, text, created_at, delivery_state) "
                              "VALUES (?, ?, ?, ?, 'pending')")
                     .Use()
                     .Bind(1, m.from)
                     .Bind(2, m.chat_jid)
                     .Bind(3, m.text)
                     .BindTime(4, m.created_at)
                     .Run();
      !s.ok()) {
    return s;
  }
  m.id = store_.LastInsertRowId();
  nlohmann::json detail = {{"file", file},           {"claim", claim},   {"message_id", m.id},
                           {"chat_jid", m.chat_jid}, {"to_group", m.to}, {"text_bytes", m.text.size()}};
  return store_.AppendEvent(std::nullopt, m.from, "message", text::Dump(detail));
}

Status MessageStore::RecordRejected(const std::string& group, const std::string& chat_jid, const std::string& text,
                                    TimeMs created_at, const std::string& reason) {
  return store_
      .Prepare(
          "INSERT INTO messages (group_folder, chat_jid, text, created_at, delivery_state, error) "
          "VALUES (?, ?, ?, ?, 'rejected', ?)")
      .Use()
      .Bind(1, group)
      .Bind(2, chat_jid)
      .Bind(3, text)
      .BindTime(4, created_at)
      .Bind(5, reason)
      .Run();
}

Status MessageStore::RecordDelivery(std::int64_t id, const Status& outcome, TimeMs at) {
  return store_.Prepare("UPDATE messages SET delivery_state = ?, delivered_at = ?, error = ? WHERE id = ?")
      .Use()
      .Bind(1, outcome.ok() ? "delivered" : "failed")
      .BindTime(2, outcome.ok() ? std::optional<TimeMs>(at) : std::nullopt)
      .Bind(3, outcome.ok() ? std::optional<std::string>() : std::optional<std::string>(outcome.message()))
      .Bind(4, id)
      .Run();
}

Result<std::optional<MessageStore::FromClaim>> MessageStore::FindByClaim(const std::string& group,
                                                                         const std::string& claim) {
  auto& q = store_
                .Prepare(
                    "SELECT json_extract(detail, '$.message_id'), json_extract(detail, '$.to_group') "
                    "FROM job_events WHERE event = 'message' AND group_folder = ? "
                    "AND json_extract(detail, '$.claim') = ? ORDER BY id DESC LIMIT 1")
                .Use()
                .Bind(1, group)
                .Bind(2, claim);
  auto row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<FromClaim>();
  FromClaim found;
  found.message.id = q.Int(0);
  found.message.to = q.Text(1);
  q.Use();  // release the statement before the next one
  auto& r = store_.Prepare("SELECT group_folder, chat_jid, text, created_at, delivery_state FROM messages WHERE id = ?")
                .Use()
                .Bind(1, found.message.id);
  auto msg = r.Step();
  if (!msg.ok()) return msg.status();
  found.pending = *msg && r.Text(4) == "pending";
  if (found.pending) {
    found.message.from = r.Text(0);
    found.message.chat_jid = r.Text(1);
    found.message.text = r.Text(2);
    found.message.created_at = r.Time(3);
  }
  r.Use();
  return std::optional<FromClaim>(std::move(found));
}

}  // namespace dropq
