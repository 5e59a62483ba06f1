-- dropq schema v10: where a cluster ran an attempt (docs/RUNTIMES.md,
-- "slurm", Accounting). With runtime: slurm and accounting on, dropq asks
-- sacct after each step and keeps the node list and Slurm's state of the
-- step's job on the attempt's row. NULL for every other runtime, with
-- accounting off, and when sacct failed or said nothing usable.
ALTER TABLE job_runs ADD COLUMN node TEXT;
ALTER TABLE job_runs ADD COLUMN cluster_state TEXT;
