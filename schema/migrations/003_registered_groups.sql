-- dropq schema v3: groups the main group registers at run time
-- (register_group, docs/FILES.md). Such a group is kept here, so it is
-- served again after a restart; groups from the config are upserted at
-- every start with source 'config'.
ALTER TABLE groups ADD COLUMN source TEXT NOT NULL DEFAULT 'config' CHECK (source IN ('config', 'registered'));
ALTER TABLE groups ADD COLUMN trigger_word TEXT;          -- NanoClaw's `trigger`, kept for the agent
ALTER TABLE groups ADD COLUMN requires_trigger INTEGER CHECK (requires_trigger IN (0, 1));
ALTER TABLE groups ADD COLUMN container_config TEXT;      -- NanoClaw's containerConfig, compact JSON
