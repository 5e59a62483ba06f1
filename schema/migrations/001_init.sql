-- dropq schema v1. Times are ISO-8601 UTC text with milliseconds
-- ("2026-11-27T08:45:57.123Z"): readable in the sqlite3 shell and ordered
-- correctly as text.

CREATE TABLE groups (
  folder     TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  jid        TEXT,
  is_main    INTEGER NOT NULL DEFAULT 0 CHECK (is_main IN (0, 1)),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY,
  group_folder  TEXT NOT NULL REFERENCES groups(folder),
  type          TEXT NOT NULL DEFAULT 'run',
  client_id     TEXT,
  state         TEXT NOT NULL
                CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
  prompt        TEXT NOT NULL,
  priority      INTEGER NOT NULL DEFAULT 0,
  run_at        TEXT NOT NULL,
  timeout_ms    INTEGER,
  context_mode  TEXT NOT NULL DEFAULT 'isolated' CHECK (context_mode IN ('group','isolated')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  max_attempts  INTEGER NOT NULL DEFAULT 1,
  source_group  TEXT,          -- the group whose tasks/ the file was dropped in
  source_name   TEXT,
  source_hash   TEXT,
  source_claim  TEXT UNIQUE,
  created_at    TEXT NOT NULL,
  started_at    TEXT,
  finished_at   TEXT,
  result        TEXT,
  error         TEXT
);
-- A client id names one job per group forever: dedupe survives restarts.
CREATE UNIQUE INDEX jobs_client_id ON jobs(group_folder, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state, run_at);
CREATE INDEX jobs_group ON jobs(group_folder, id);
CREATE INDEX jobs_group_state ON jobs(group_folder, state);

-- Append-only audit trail. job_id is NULL for events about a file that never
-- became a job (a rejection).
CREATE TABLE job_events (
  id           INTEGER PRIMARY KEY,
  job_id       INTEGER REFERENCES jobs(id),
  group_folder TEXT,
  at           TEXT NOT NULL,
  event        TEXT NOT NULL,
  detail       TEXT
);
CREATE INDEX job_events_job ON job_events(job_id, id);
CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events
BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;

-- One row per attempt.
CREATE TABLE job_runs (
  id               INTEGER PRIMARY KEY,
  job_id           INTEGER NOT NULL REFERENCES jobs(id),
  attempt          INTEGER NOT NULL,
  runtime          TEXT NOT NULL,
  container_name   TEXT,
  started_at       TEXT NOT NULL,
  finished_at      TEXT,
  duration_ms      INTEGER,
  status           TEXT NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running','succeeded','failed','timed_out','lost','cancelled')),
  exit_code        INTEGER,
  signal           INTEGER,
  stdout_bytes     INTEGER,
  stderr_bytes     INTEGER,
  stdout_truncated INTEGER NOT NULL DEFAULT 0,
  stderr_truncated INTEGER NOT NULL DEFAULT 0,
  log_file         TEXT,
  error            TEXT,
  UNIQUE (job_id, attempt)
);

-- The agent's session per group (newSessionId), passed back when a job's
-- context_mode is 'group'.
CREATE TABLE sessions (
  group_folder TEXT PRIMARY KEY REFERENCES groups(folder),
  session_id   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
