-- A caller's time in one queue (DESIGN §6): one row per enqueue, written
-- when the caller leaves the queue. `call_id` is the SIP Call-ID, as in
-- `calls.call_id`; times are epoch milliseconds; `offers` is a JSON array
-- of `{ "login": …, "at": ms }` in the order the offers were made.
CREATE TABLE queue_segments (
    id          TEXT PRIMARY KEY NOT NULL,
    call_id     TEXT NOT NULL,
    queue       TEXT NOT NULL,
    enqueued_at BIGINT NOT NULL,
    left_at     BIGINT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('answered', 'abandoned', 'max_wait', 'closed', 'no_agents')),
    agent       TEXT,
    offers      TEXT NOT NULL DEFAULT '[]',
    wait_ms     BIGINT NOT NULL
);

CREATE INDEX queue_segments_by_call ON queue_segments (call_id, enqueued_at);
CREATE INDEX queue_segments_by_queue ON queue_segments (queue, enqueued_at);
