-- The unified customer thread (DESIGN §7). The same text runs on SQLite and
-- PostgreSQL: IDs are UUIDv7 text, times BIGINT epoch milliseconds, JSON is
-- TEXT, flags are 0/1.

CREATE TABLE contacts (
    id           TEXT PRIMARY KEY NOT NULL,
    display_name TEXT,
    vip          BIGINT NOT NULL DEFAULT 0 CHECK (vip IN (0, 1)),
    merged_into  TEXT REFERENCES contacts (id),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE identities (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('phone', 'email', 'whatsapp', 'chat', 'sip')),
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, value)
);

CREATE TABLE identity_links (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    contact_id  TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'shared')),
    created_at  BIGINT NOT NULL,
    UNIQUE (identity_id, contact_id)
);

-- An identity has at most one owner: racing first contacts cannot both win.
CREATE UNIQUE INDEX identity_links_one_owner ON identity_links (identity_id) WHERE role = 'owner';
CREATE INDEX identity_links_by_contact ON identity_links (contact_id);

CREATE TABLE threads (
    id               TEXT PRIMARY KEY NOT NULL,
    contact_id       TEXT NOT NULL REFERENCES contacts (id),
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved')),
    priority         BIGINT NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
    subject          TEXT,
    assignee         TEXT,
    last_agent       TEXT,
    reply_token      TEXT NOT NULL UNIQUE,
    channel          TEXT NOT NULL CHECK (channel IN ('voice', 'sms', 'whatsapp', 'chat', 'email')),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL,
    resolved_at      BIGINT
);

CREATE INDEX threads_by_contact ON threads (contact_id, last_activity_at);

CREATE TABLE thread_events (
    id          TEXT PRIMARY KEY NOT NULL,
    thread_id   TEXT NOT NULL REFERENCES threads (id),
    channel     TEXT NOT NULL CHECK (channel IN ('voice', 'sms', 'whatsapp', 'chat', 'email')),
    kind        TEXT NOT NULL CHECK (kind IN ('message', 'call', 'voicemail', 'note', 'survey', 'status')),
    direction   TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    body        TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    occurred_at BIGINT NOT NULL,
    external_id TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (channel, external_id)
);

CREATE INDEX thread_events_by_thread ON thread_events (thread_id, occurred_at);

-- The CDR: written at INVITE, updated at every step.
CREATE TABLE calls (
    id             TEXT PRIMARY KEY NOT NULL,
    call_id        TEXT NOT NULL UNIQUE,
    from_uri       TEXT NOT NULL,
    to_uri         TEXT NOT NULL,
    caller         TEXT,
    contact_id     TEXT REFERENCES contacts (id),
    thread_id      TEXT REFERENCES threads (id),
    flow           TEXT,
    ivr_path       TEXT NOT NULL DEFAULT '[]',
    queue          TEXT,
    priority       BIGINT,
    routing_reason TEXT,
    started_at     BIGINT NOT NULL,
    enqueued_at    BIGINT,
    answered_at    BIGINT,
    ended_at       BIGINT,
    wait_ms        BIGINT,
    agent          TEXT,
    disposition    TEXT CHECK (disposition IS NULL OR disposition IN
                   ('answered', 'abandoned_ivr', 'abandoned_queue', 'voicemail', 'transferred', 'failed')),
    recording_path TEXT,
    voicemail_path TEXT,
    survey_score   BIGINT
);

CREATE INDEX calls_by_start ON calls (started_at);
CREATE INDEX calls_by_contact ON calls (contact_id);

-- Idempotent ingest: the first answer to a key, replayed for repeats.
CREATE TABLE inbound_receipts (
    key          TEXT PRIMARY KEY NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
