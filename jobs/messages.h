#pragma once
// Messages agents send through messages/ (table `messages` and their
// `message` audit rows, docs/SCHEMA.md): the SQL of watcher/messages.h.
//
// MessageStore shares the Store's connection (the daemon's single writer,
// on the loop thread); Record and RecordRejected write inside the caller's
// transaction, so a pass's messages and rejections commit together.
#include <cstdint>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "jobs/store.h"

namespace dropq {

// A recorded message: `from` sent it, `to` is the folder of the group whose
// chat `chat_jid` is.
struct Message {
  std::int64_t id = 0;
  std::string from, to, chat_jid, text;
  TimeMs created_at = 0;
};

class MessageStore {
 public:
  explicit MessageStore(Store& store) : store_(store) {}

  // A `pending` message and its `message` audit row, whose detail names the
  // file it came from and its claim token; sets m.id.
  Status Record(Message& m, const std::string& file, const std::string& claim);
  // A refused message that parsed: kept as `rejected`, with the reason.
  Status RecordRejected(const std::string& group, const std::string& chat_jid, const std::string& text,
                        TimeMs created_at, const std::string& reason);
  // The delivery's outcome: `delivered` at `at`, or `failed` with the error.
  Status RecordDelivery(std::int64_t id, const Status& outcome, TimeMs at);

  // What start-up finds for a claimed file: the message recorded from it
  // (by its claim token), and whether that message still waits for its
  // delivery. nullopt when nothing was recorded from it.
  struct FromClaim {
    Message message;  // only the id and `to` when not pending
    bool pending = false;
  };
  Result<std::optional<FromClaim>> FindByClaim(const std::string& group, const std::string& claim);

 private:
  Store& store_;
};

}  // namespace dropq
