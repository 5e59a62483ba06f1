-- dropq schema v2: scheduled tasks, their runs, and agents' messages.
-- docs/SCHEDULER.md is the contract; times are ISO-8601 UTC text as in v1.

-- One row per task. id is TEXT: NanoClaw task ids are strings
-- ("task-1738000000000-abc123"), and config tasks are named by the operator.
CREATE TABLE scheduled_tasks (
  id                   TEXT PRIMARY KEY,
  group_folder         TEXT NOT NULL REFERENCES groups(folder),
  chat_jid             TEXT,
  prompt               TEXT NOT NULL,
  schedule_type        TEXT NOT NULL CHECK (schedule_type IN ('cron','interval','once')),
  schedule_value       TEXT NOT NULL,
  tz                   TEXT NOT NULL,   -- IANA name, resolved when the task was validated
  context_mode         TEXT NOT NULL DEFAULT 'isolated' CHECK (context_mode IN ('group','isolated')),
  next_run             TEXT,            -- NULL: nothing left to fire
  last_run             TEXT,
  last_result          TEXT,
  status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','paused','completed')),
  overlap              TEXT NOT NULL DEFAULT 'forbid' CHECK (overlap IN ('forbid','allow','replace')),
  catch_up             TEXT NOT NULL DEFAULT 'run_once' CHECK (catch_up IN ('run_once','skip','run_all')),
  catch_up_max         INTEGER NOT NULL DEFAULT 10 CHECK (catch_up_max >= 1),
  starting_deadline_ms INTEGER CHECK (starting_deadline_ms IS NULL OR starting_deadline_ms > 0),
  keep_runs            INTEGER NOT NULL DEFAULT 100 CHECK (keep_runs >= 1),
  source               TEXT NOT NULL CHECK (source IN ('config','file')),
  created_at           TEXT NOT NULL,
  updated_at           TEXT NOT NULL
);
-- Loading the daemon's timer queue at start: active tasks by next_run.
CREATE INDEX scheduled_tasks_due ON scheduled_tasks(status, next_run);
CREATE INDEX scheduled_tasks_group ON scheduled_tasks(group_folder, id);

-- One row per scheduled slot that fired or was skipped. task_id is not a
-- foreign key on purpose: a cancelled task's history stays queryable.
CREATE TABLE task_runs (
  id           INTEGER PRIMARY KEY,
  task_id      TEXT NOT NULL,
  job_id       INTEGER REFERENCES jobs(id),   -- NULL for a skipped slot
  scheduled_at TEXT NOT NULL,                 -- the slot (next_run), not when it fired
  fired_at     TEXT NOT NULL,
  started_at   TEXT,
  duration_ms  INTEGER,
  status       TEXT NOT NULL
               CHECK (status IN ('queued','running','succeeded','failed','skipped','cancelled')),
  result       TEXT,
  error        TEXT                           -- for a skipped slot: why
);
CREATE INDEX task_runs_task ON task_runs(task_id, id);
-- A finishing job finds its run (FinishRunForJob) and overlap checks join jobs.
CREATE INDEX task_runs_job ON task_runs(job_id) WHERE job_id IS NOT NULL;

-- Messages agents send through messages/ (delivered by the on_message hook).
CREATE TABLE messages (
  id             INTEGER PRIMARY KEY,
  group_folder   TEXT NOT NULL REFERENCES groups(folder),
  chat_jid       TEXT NOT NULL,
  text           TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  delivery_state TEXT NOT NULL DEFAULT 'pending'
                 CHECK (delivery_state IN ('pending','delivered','failed','rejected')),
  delivered_at   TEXT,
  error          TEXT
);
CREATE INDEX messages_pending ON messages(delivery_state, id);
