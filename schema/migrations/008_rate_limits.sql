-- dropq schema v8: an index on attempts' start times, for rate limits
-- (docs/CONFIG.md, "Rate limits"). A group's window is rebuilt at start-up
-- and after a reload from the attempts started in its period, and `status`,
-- the dashboard and /metrics count them the same way: a search of this
-- index over the last period, not a scan of every attempt ever run.
CREATE INDEX job_runs_started ON job_runs(started_at);
