//! Threads: one conversation with a contact across channels (DESIGN §7),
//! open, pending (waiting for the customer) or resolved, with a priority
//! 0–3, an assignee, the last agent who spoke to the caller, and a reply
//! token that threads email replies (`support+t-TOKEN@…`).

use serde::Serialize;

use super::contacts::ContactId;
use super::{Channel, ThreadError, hex, id_type, ser_opt_time, ser_time, text_enum};
use crate::store::{Store, new_id};

id_type!(
    /// A thread's id (UUIDv7 text).
    ThreadId
);

text_enum!(
    /// Where a thread stands.
    Status, "status" {
        Open => "open",
        Pending => "pending",
        Resolved => "resolved",
    }
);

/// A conversation with one contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thread {
    pub id: ThreadId,
    pub contact_id: ContactId,
    pub status: Status,
    /// 0 (normal) to 3 (urgent); raises the caller's queue priority.
    pub priority: u8,
    pub subject: Option<String>,
    /// Agent login the thread is assigned to.
    pub assignee: Option<String>,
    /// Agent login who last answered a call of this thread.
    pub last_agent: Option<String>,
    pub reply_token: String,
    /// The channel the thread started on.
    pub channel: Channel,
    #[serde(serialize_with = "ser_time")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_time")]
    pub updated_at: i64,
    #[serde(serialize_with = "ser_time")]
    pub last_activity_at: i64,
    #[serde(serialize_with = "ser_opt_time")]
    pub resolved_at: Option<i64>,
}

impl Thread {
    /// Open or pending: not resolved.
    pub fn is_open(&self) -> bool {
        self.status != Status::Resolved
    }
}

#[derive(sqlx::FromRow)]
struct ThreadRow {
    id: String,
    contact_id: String,
    status: String,
    priority: i64,
    subject: Option<String>,
    assignee: Option<String>,
    last_agent: Option<String>,
    reply_token: String,
    channel: String,
    created_at: i64,
    updated_at: i64,
    last_activity_at: i64,
    resolved_at: Option<i64>,
}

impl TryFrom<ThreadRow> for Thread {
    type Error = ThreadError;
    fn try_from(r: ThreadRow) -> Result<Thread, ThreadError> {
        Ok(Thread {
            id: ThreadId(r.id),
            contact_id: ContactId(r.contact_id),
            status: Status::from_column(&r.status)?,
            priority: u8::try_from(r.priority.clamp(0, 3)).unwrap_or(0),
            subject: r.subject,
            assignee: r.assignee,
            last_agent: r.last_agent,
            reply_token: r.reply_token,
            channel: Channel::from_column(&r.channel)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_activity_at: r.last_activity_at,
            resolved_at: r.resolved_at,
        })
    }
}

const COLUMNS: &str = "id, contact_id, status, priority, subject, assignee, last_agent, \
     reply_token, channel, created_at, updated_at, last_activity_at, resolved_at";

async fn one(store: &Store, filter: &str, arg: &str) -> Result<Option<Thread>, ThreadError> {
    let sql = format!("SELECT {COLUMNS} FROM threads WHERE {filter}");
    let row: Option<ThreadRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(arg)
        .fetch_optional(store.pool())
        .await?;
    row.map(Thread::try_from).transpose()
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Thread>, ThreadError> {
    one(store, "id = $1", id).await
}

/// The thread an email reply token names.
pub async fn by_reply_token(store: &Store, token: &str) -> Result<Option<Thread>, ThreadError> {
    one(store, "reply_token = $1", token).await
}

/// A contact's threads, most recently active first (at most `limit`).
pub async fn for_contact(
    store: &Store,
    contact: &ContactId,
    limit: i64,
) -> Result<Vec<Thread>, ThreadError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM threads WHERE contact_id = $1 \
         ORDER BY last_activity_at DESC, id DESC LIMIT $2"
    );
    let rows: Vec<ThreadRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(contact.as_str())
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    rows.into_iter().map(Thread::try_from).collect()
}

/// The contact's most recently active open (or pending) thread active at
/// or after `since`.
pub async fn latest_open(
    store: &Store,
    contact: &ContactId,
    since: i64,
) -> Result<Option<Thread>, ThreadError> {
    latest(
        store,
        contact,
        "status <> 'resolved' AND last_activity_at >= $2",
        since,
    )
    .await
}

/// The contact's most recently resolved thread resolved at or after `since`.
pub async fn latest_resolved(
    store: &Store,
    contact: &ContactId,
    since: i64,
) -> Result<Option<Thread>, ThreadError> {
    latest(
        store,
        contact,
        "status = 'resolved' AND resolved_at >= $2",
        since,
    )
    .await
}

async fn latest(
    store: &Store,
    contact: &ContactId,
    filter: &str,
    since: i64,
) -> Result<Option<Thread>, ThreadError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM threads WHERE contact_id = $1 AND {filter} \
         ORDER BY last_activity_at DESC, id DESC LIMIT 1"
    );
    let row: Option<ThreadRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(contact.as_str())
        .bind(since)
        .fetch_optional(store.pool())
        .await?;
    row.map(Thread::try_from).transpose()
}

/// Starts an open thread for `contact` on `channel`.
pub async fn create(
    store: &Store,
    contact: &ContactId,
    channel: Channel,
    subject: Option<&str>,
    now: i64,
) -> Result<Thread, ThreadError> {
    let id = new_id();
    let token = hex(&rand::random::<[u8; 10]>());
    sqlx::query(
        "INSERT INTO threads (id, contact_id, status, priority, subject, reply_token, channel, \
         created_at, updated_at, last_activity_at) VALUES ($1, $2, 'open', 0, $3, $4, $5, $6, $6, $6)",
    )
    .bind(&id)
    .bind(contact.as_str())
    .bind(subject)
    .bind(&token)
    .bind(channel.as_str())
    .bind(now)
    .execute(store.pool())
    .await?;
    get(store, &id)
        .await?
        .ok_or(ThreadError::NotFound { what: "thread", id })
}

/// Sets the status; resolving stamps `resolved_at`, reopening clears it.
pub async fn set_status(
    store: &Store,
    id: &ThreadId,
    status: Status,
    now: i64,
) -> Result<(), ThreadError> {
    let resolved_at = (status == Status::Resolved).then_some(now);
    let done = sqlx::query(
        "UPDATE threads SET status = $1, resolved_at = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(resolved_at)
    .bind(now)
    .bind(id.as_str())
    .execute(store.pool())
    .await?;
    found(done.rows_affected(), id)
}

/// Sets the priority (0–3).
pub async fn set_priority(
    store: &Store,
    id: &ThreadId,
    priority: u8,
    now: i64,
) -> Result<(), ThreadError> {
    if priority > 3 {
        return Err(ThreadError::invalid("priority", "must be 0 to 3"));
    }
    let done = sqlx::query("UPDATE threads SET priority = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(priority))
        .bind(now)
        .bind(id.as_str())
        .execute(store.pool())
        .await?;
    found(done.rows_affected(), id)
}

/// Sets (or clears) the assignee, an agent login.
pub async fn set_assignee(
    store: &Store,
    id: &ThreadId,
    agent: Option<&str>,
    now: i64,
) -> Result<(), ThreadError> {
    set_text(store, "assignee", id, agent, now).await
}

/// Records the agent who last answered a call of the thread.
pub async fn set_last_agent(
    store: &Store,
    id: &ThreadId,
    agent: &str,
    now: i64,
) -> Result<(), ThreadError> {
    set_text(store, "last_agent", id, Some(agent), now).await
}

async fn set_text(
    store: &Store,
    column: &'static str,
    id: &ThreadId,
    value: Option<&str>,
    now: i64,
) -> Result<(), ThreadError> {
    let sql = format!("UPDATE threads SET {column} = $1, updated_at = $2 WHERE id = $3");
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .bind(now)
        .bind(id.as_str())
        .execute(store.pool())
        .await?;
    found(done.rows_affected(), id)
}

/// Moves `last_activity_at` forward to `at` (never back).
pub async fn touch(store: &Store, id: &ThreadId, at: i64) -> Result<(), ThreadError> {
    sqlx::query(
        "UPDATE threads SET last_activity_at = CASE WHEN last_activity_at < $1 THEN $1 \
         ELSE last_activity_at END WHERE id = $2",
    )
    .bind(at)
    .bind(id.as_str())
    .execute(store.pool())
    .await?;
    Ok(())
}

fn found(rows: u64, id: &ThreadId) -> Result<(), ThreadError> {
    if rows == 0 {
        return Err(ThreadError::NotFound {
            what: "thread",
            id: id.0.clone(),
        });
    }
    Ok(())
}
