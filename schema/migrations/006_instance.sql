-- dropq schema: this root's instance id. Numbered 006 so it sorts after the
-- 005 (jobs.interruptions) being written on another branch.
--
-- One row, made by the first start (Store::InstanceId: 12 random hex
-- characters) and never changed. The container runtimes label every
-- container with it (dropq.instance=<id>), and start-up stops only the
-- containers that carry this root's label: two roots sharing one docker
-- daemon no longer stop each other's jobs.
CREATE TABLE instance (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  instance_id TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
