//! Thread events: messages, calls, voicemails, notes, surveys and status
//! changes, in time order (DESIGN §7). `(channel, external_id)` is unique,
//! so a repeated delivery of the same message adds nothing.

use serde::Serialize;
use serde_json::Value;

use super::threads::{self, ThreadId};
use super::{Channel, Direction, EventKind, ThreadError, ser_time};
use crate::store::{Store, new_id};

/// Longest body kept; longer bodies are cut at a character boundary.
pub const MAX_BODY: usize = 64 * 1024;

/// Most events a thread read returns.
pub const MAX_EVENTS: i64 = 5_000;

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    pub thread_id: ThreadId,
    pub channel: Channel,
    pub kind: EventKind,
    pub direction: Direction,
    pub body: Option<String>,
    pub metadata: Value,
    #[serde(serialize_with = "ser_time")]
    pub occurred_at: i64,
    pub external_id: Option<String>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub channel: Channel,
    pub kind: EventKind,
    pub direction: Direction,
    pub body: Option<String>,
    pub metadata: Value,
    pub occurred_at: i64,
    /// The sender's id for the event (message SID, Message-ID, call step);
    /// unique per channel.
    pub external_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    thread_id: String,
    channel: String,
    kind: String,
    direction: String,
    body: Option<String>,
    metadata: String,
    occurred_at: i64,
    external_id: Option<String>,
}

impl TryFrom<EventRow> for Event {
    type Error = ThreadError;
    fn try_from(r: EventRow) -> Result<Event, ThreadError> {
        Ok(Event {
            id: r.id,
            thread_id: ThreadId(r.thread_id),
            channel: Channel::from_column(&r.channel)?,
            kind: EventKind::from_column(&r.kind)?,
            direction: Direction::from_column(&r.direction)?,
            body: r.body,
            metadata: serde_json::from_str(&r.metadata)?,
            occurred_at: r.occurred_at,
            external_id: r.external_id,
        })
    }
}

const COLUMNS: &str =
    "id, thread_id, channel, kind, direction, body, metadata, occurred_at, external_id";

/// `text` cut to at most `max` bytes at a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends `event` to `thread` and moves the thread's last activity
/// forward. With an `external_id` already stored on the channel, nothing is
/// written and the stored event comes back with `false`.
pub async fn append(
    store: &Store,
    thread: &ThreadId,
    event: NewEvent,
    now: i64,
) -> Result<(Event, bool), ThreadError> {
    let id = new_id();
    let body = event.body.as_deref().map(|b| truncate(b, MAX_BODY));
    let done = sqlx::query(
        "INSERT INTO thread_events (id, thread_id, channel, kind, direction, body, metadata, \
         occurred_at, external_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (channel, external_id) DO NOTHING",
    )
    .bind(&id)
    .bind(thread.as_str())
    .bind(event.channel.as_str())
    .bind(event.kind.as_str())
    .bind(event.direction.as_str())
    .bind(body)
    .bind(event.metadata.to_string())
    .bind(event.occurred_at)
    .bind(event.external_id.as_deref())
    .bind(now)
    .execute(store.pool())
    .await?;
    let inserted = done.rows_affected() == 1;
    let stored = if inserted {
        threads::touch(store, thread, event.occurred_at).await?;
        get(store, &id).await?
    } else {
        match &event.external_id {
            Some(ext) => by_external_id(store, event.channel, ext).await?,
            None => None,
        }
    };
    let stored = stored.ok_or(ThreadError::NotFound { what: "event", id })?;
    Ok((stored, inserted))
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Event>, ThreadError> {
    let sql = format!("SELECT {COLUMNS} FROM thread_events WHERE id = $1");
    let row: Option<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.map(Event::try_from).transpose()
}

/// The event stored under (`channel`, `external_id`).
pub async fn by_external_id(
    store: &Store,
    channel: Channel,
    external_id: &str,
) -> Result<Option<Event>, ThreadError> {
    let sql =
        format!("SELECT {COLUMNS} FROM thread_events WHERE channel = $1 AND external_id = $2");
    let row: Option<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(channel.as_str())
        .bind(external_id)
        .fetch_optional(store.pool())
        .await?;
    row.map(Event::try_from).transpose()
}

/// A thread's events in time order (the first [`MAX_EVENTS`]).
pub async fn list(store: &Store, thread: &ThreadId) -> Result<Vec<Event>, ThreadError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM thread_events WHERE thread_id = $1 \
         ORDER BY occurred_at, created_at, id LIMIT $2"
    );
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(thread.as_str())
        .bind(MAX_EVENTS)
        .fetch_all(store.pool())
        .await?;
    rows.into_iter().map(Event::try_from).collect()
}

/// A thread's newest `n` events, in time order (oldest first).
pub async fn latest(store: &Store, thread: &ThreadId, n: i64) -> Result<Vec<Event>, ThreadError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM thread_events WHERE thread_id = $1 \
         ORDER BY occurred_at DESC, created_at DESC, id DESC LIMIT $2"
    );
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(thread.as_str())
        .bind(n.clamp(0, MAX_EVENTS))
        .fetch_all(store.pool())
        .await?;
    let mut events = rows
        .into_iter()
        .map(Event::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    events.reverse();
    Ok(events)
}

/// How many events a thread holds.
pub async fn count(store: &Store, thread: &ThreadId) -> Result<i64, ThreadError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM thread_events WHERE thread_id = $1")
        .bind(thread.as_str())
        .fetch_one(store.pool())
        .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
