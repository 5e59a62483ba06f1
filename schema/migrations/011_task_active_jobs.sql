-- dropq schema v11: the jobs still queued or running, by source_claim.
-- A scheduled task's slot claims "task:<id>:<slot>", and every firing asks
-- which of the task's jobs are still active (the overlap policy). Through
-- task_runs that is a walk over the task's whole run history (keep_runs,
-- 100 by default) for every fire; this index makes it a range search over
-- the active jobs alone (docs/PERFORMANCE.md, "Scheduler").
CREATE INDEX jobs_active_claim ON jobs(source_claim) WHERE state IN ('queued','running');
