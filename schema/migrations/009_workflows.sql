-- dropq schema v9: dependencies and unique jobs (docs/FILES.md, "Dependencies"
-- and "Unique jobs").
--
-- A job that waits for others is in the new state `waiting`. SQLite cannot
-- change a CHECK constraint in place, so `jobs` is rebuilt by SQLite's own
-- procedure (https://www.sqlite.org/lang_altertable.html, "Making Other
-- Kinds Of Table Schema Changes"): the store runs every migration with
-- foreign keys off and checks them (PRAGMA foreign_key_check) before the
-- commit, so the rows of job_events, job_runs, task_runs and notifications
-- keep pointing at the same ids. legacy_alter_table keeps the rename from
-- re-checking triggers of other tables while `jobs` is briefly missing.
PRAGMA legacy_alter_table = ON;

CREATE TABLE jobs_v9 (
  id                INTEGER PRIMARY KEY,
  group_folder      TEXT NOT NULL REFERENCES groups(folder),
  type              TEXT NOT NULL DEFAULT 'run',
  client_id         TEXT,
  state             TEXT NOT NULL
                    CHECK (state IN ('waiting','queued','running','succeeded','failed','cancelled')),
  prompt            TEXT NOT NULL,
  priority          INTEGER NOT NULL DEFAULT 0,
  run_at            TEXT NOT NULL,
  timeout_ms        INTEGER,
  context_mode      TEXT NOT NULL DEFAULT 'isolated' CHECK (context_mode IN ('group','isolated')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL DEFAULT 1,
  source_group      TEXT,          -- the group whose tasks/ the file was dropped in
  source_name       TEXT,
  source_hash       TEXT,
  source_claim      TEXT UNIQUE,
  created_at        TEXT NOT NULL,
  started_at        TEXT,
  finished_at       TEXT,
  result            TEXT,
  error             TEXT,
  interruptions     INTEGER NOT NULL DEFAULT 0,
  max_interruptions INTEGER NOT NULL DEFAULT 3,
  -- NULL: the job waits for nothing. Else what its dependencies must do.
  after_policy      TEXT CHECK (after_policy IN ('succeeded','finished')),
  -- `unique_key` of the job file or task: no second job with it while this
  -- one is waiting, queued or running, or within the later file's window.
  unique_key        TEXT
);
INSERT INTO jobs_v9 (id, group_folder, type, client_id, state, prompt, priority, run_at, timeout_ms, context_mode,
                     attempts, max_attempts, source_group, source_name, source_hash, source_claim, created_at,
                     started_at, finished_at, result, error, interruptions, max_interruptions)
  SELECT id, group_folder, type, client_id, state, prompt, priority, run_at, timeout_ms, context_mode,
         attempts, max_attempts, source_group, source_name, source_hash, source_claim, created_at,
         started_at, finished_at, result, error, interruptions, max_interruptions
  FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v9 RENAME TO jobs;
CREATE UNIQUE INDEX jobs_client_id ON jobs(group_folder, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state, run_at);
CREATE INDEX jobs_group ON jobs(group_folder, id);
CREATE INDEX jobs_group_state ON jobs(group_folder, state);
CREATE INDEX jobs_unique ON jobs(group_folder, unique_key, created_at) WHERE unique_key IS NOT NULL;

-- One row per dependency: `job_id` waits for `dep_id`. Removed with either
-- job by `dropq prune`, which never removes a job a waiting job names.
CREATE TABLE job_deps (
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  dep_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  PRIMARY KEY (job_id, dep_id)
) WITHOUT ROWID;
CREATE INDEX job_deps_dep ON job_deps(dep_id);

-- A task may give the jobs it enqueues a unique key (and window).
ALTER TABLE scheduled_tasks ADD COLUMN unique_key TEXT;
ALTER TABLE scheduled_tasks ADD COLUMN unique_for_ms INTEGER;

PRAGMA legacy_alter_table = OFF;
