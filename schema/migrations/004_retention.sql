-- dropq schema: retention (`dropq prune`, docs/CLI.md). Numbered 004 so it
-- sorts after the 003 being written on another branch.
--
-- job_events stays append-only: an UPDATE is always refused, and a DELETE is
-- refused unless a prune has opened its window (the one row of prune_window,
-- written and removed inside prune's own transaction) and the event belongs
-- to a finished job (succeeded, failed, cancelled) that ended before the
-- window's cutoff, or is a rejection (no job) recorded before it. So no
-- statement can remove the trail of a queued or running job, or a recent one.
CREATE TABLE prune_window (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  cutoff TEXT NOT NULL
);

DROP TRIGGER job_events_no_delete;
CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
WHEN NOT EXISTS (
  SELECT 1 FROM prune_window w
  WHERE (OLD.job_id IS NULL AND OLD.at < w.cutoff)
     OR EXISTS (SELECT 1 FROM jobs j
                WHERE j.id = OLD.job_id
                  AND j.state IN ('succeeded', 'failed', 'cancelled')
                  AND coalesce(j.finished_at, j.created_at) < w.cutoff))
BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
