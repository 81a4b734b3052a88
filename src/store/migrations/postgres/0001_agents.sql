-- Settings the switch generates and keeps (the admin token's hash).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Agents (DESIGN §6): digest credentials as HA1 only, never the password.
CREATE TABLE agents (
    id           TEXT PRIMARY KEY NOT NULL,
    login        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    extension    TEXT UNIQUE,
    realm        TEXT NOT NULL,
    ha1_md5      TEXT NOT NULL,
    ha1_sha256   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'offline'
                 CHECK (state IN ('offline', 'available', 'offered', 'on_call', 'wrap_up', 'paused')),
    pause_reason TEXT
);

CREATE TABLE agent_skills (
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    skill    TEXT NOT NULL,
    level    INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
    PRIMARY KEY (agent_id, skill)
);

CREATE INDEX agent_skills_by_skill ON agent_skills (skill, level);
