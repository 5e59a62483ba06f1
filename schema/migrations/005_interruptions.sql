-- dropq schema: interrupted is not failed (issue 12).
--
-- An attempt that ended because dropq itself stopped (killed, out of memory,
-- power lost, or its own graceful shutdown) was not the job's fault, so it
-- does not use one of the job's attempts. `attempts` still counts every
-- attempt started (job_runs.attempt stays unique per job); the attempts that
-- count against max_attempts are `attempts - interruptions`.
-- `max_interruptions` bounds a crash loop: start-up recovery fails a job
-- whose interruptions, counting the one it finds, exceed it.
ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN max_interruptions INTEGER NOT NULL DEFAULT 3;
