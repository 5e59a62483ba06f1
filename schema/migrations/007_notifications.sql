-- dropq schema: the outbox of completion hooks (on_finish, docs/CONFIG.md).
--
-- A row is inserted in the transaction that records its job's final state
-- (an attempt's end, a queued job cancelled, a job failed by start-up
-- recovery), so a crash can neither lose a delivery nor make two. It is
-- deleted when the delivery succeeds (`notified` event) or is given up
-- after max_attempts (`notify_failed` with gave_up); every failed try is a
-- `notify_failed` event with the reason and the next try.
--
-- The row carries everything a delivery needs (the target as it was
-- configured when the job ended, and the payload), so a pending delivery
-- survives a restart and a reload changes only the jobs that end after it.
CREATE TABLE notifications (
  id            INTEGER PRIMARY KEY,
  job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  group_folder  TEXT NOT NULL,
  target        TEXT NOT NULL,   -- JSON: {"command": [argv...]} or {"url": "https://..."}
  timeout_ms    INTEGER NOT NULL,
  max_attempts  INTEGER NOT NULL,
  payload       TEXT NOT NULL,   -- the job's result file, byte for byte
  attempts      INTEGER NOT NULL DEFAULT 0,
  next_try_at   TEXT NOT NULL,
  last_error    TEXT,
  created_at    TEXT NOT NULL
);
CREATE INDEX notifications_due ON notifications(next_try_at);
