//! The call records (CDR, DESIGN §7): a row written at INVITE and updated
//! at every step (IVR path, queue, answer, end, recording, voicemail,
//! survey), so a crash loses nothing already known.

use serde::Serialize;
use serde_json::{Value, json};

use super::contacts::ContactId;
use super::identity::E164;
use super::threads::ThreadId;
use super::{ThreadError, ser_opt_time, ser_time, text_enum};
use crate::store::{Store, new_id};

/// Most IVR steps kept on one call.
pub const MAX_IVR_STEPS: usize = 256;

/// Most rows one CDR read returns.
pub const MAX_CDR_ROWS: i64 = 10_000;

text_enum!(
    /// How a call ended.
    Disposition, "disposition" {
        Answered => "answered",
        AbandonedIvr => "abandoned_ivr",
        AbandonedQueue => "abandoned_queue",
        Voicemail => "voicemail",
        Transferred => "transferred",
        Failed => "failed",
    }
);

/// What is known at INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// The SIP Call-ID.
    pub call_id: String,
    pub from_uri: String,
    pub to_uri: String,
    /// The caller's number (P-Asserted-Identity for trusted peers, else
    /// From), `None` when anonymous or invalid.
    pub caller: Option<E164>,
    pub flow: Option<String>,
}

/// A step of a call, written into the CDR and, once the call has a thread,
/// into the thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// An IVR node ran; `digits` the caller entered there.
    Ivr {
        node: String,
        digits: Option<String>,
    },
    /// The caller entered a queue with this priority; `reason` says why
    /// (routing reason, e.g. "vip", "thread priority 2", "last agent").
    Queued {
        queue: String,
        priority: i64,
        reason: Option<String>,
    },
    /// An agent (login) answered.
    Answered {
        agent: String,
    },
    Ended {
        disposition: Disposition,
    },
    /// A recording was written (path under the recordings folder).
    Recording {
        path: String,
    },
    /// The caller left a voicemail (path under the recordings folder).
    Voicemail {
        path: String,
    },
    Survey {
        score: i64,
    },
}

/// A CDR row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub id: String,
    pub call_id: String,
    #[serde(rename = "from")]
    pub from_uri: String,
    #[serde(rename = "to")]
    pub to_uri: String,
    pub caller: Option<String>,
    pub contact_id: Option<ContactId>,
    pub thread_id: Option<ThreadId>,
    pub flow: Option<String>,
    /// `[{ "node": …, "digits": …, "at": ms }]`
    pub ivr_path: Value,
    pub queue: Option<String>,
    pub priority: Option<i64>,
    pub routing_reason: Option<String>,
    #[serde(serialize_with = "ser_time")]
    pub started_at: i64,
    #[serde(serialize_with = "ser_opt_time")]
    pub enqueued_at: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub answered_at: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub ended_at: Option<i64>,
    pub wait_ms: Option<i64>,
    pub agent: Option<String>,
    pub disposition: Option<Disposition>,
    pub recording_path: Option<String>,
    pub voicemail_path: Option<String>,
    pub survey_score: Option<i64>,
}

impl CallRecord {
    /// Talk time: answer to end.
    pub fn duration_ms(&self) -> Option<i64> {
        Some(self.ended_at? - self.answered_at?)
    }
}

#[derive(sqlx::FromRow)]
struct CallRow {
    id: String,
    call_id: String,
    from_uri: String,
    to_uri: String,
    caller: Option<String>,
    contact_id: Option<String>,
    thread_id: Option<String>,
    flow: Option<String>,
    ivr_path: String,
    queue: Option<String>,
    priority: Option<i64>,
    routing_reason: Option<String>,
    started_at: i64,
    enqueued_at: Option<i64>,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    wait_ms: Option<i64>,
    agent: Option<String>,
    disposition: Option<String>,
    recording_path: Option<String>,
    voicemail_path: Option<String>,
    survey_score: Option<i64>,
}

impl TryFrom<CallRow> for CallRecord {
    type Error = ThreadError;
    fn try_from(r: CallRow) -> Result<CallRecord, ThreadError> {
        Ok(CallRecord {
            id: r.id,
            call_id: r.call_id,
            from_uri: r.from_uri,
            to_uri: r.to_uri,
            caller: r.caller,
            contact_id: r.contact_id.map(ContactId),
            thread_id: r.thread_id.map(ThreadId),
            flow: r.flow,
            ivr_path: serde_json::from_str(&r.ivr_path)?,
            queue: r.queue,
            priority: r.priority,
            routing_reason: r.routing_reason,
            started_at: r.started_at,
            enqueued_at: r.enqueued_at,
            answered_at: r.answered_at,
            ended_at: r.ended_at,
            wait_ms: r.wait_ms,
            agent: r.agent,
            disposition: r
                .disposition
                .as_deref()
                .map(Disposition::from_column)
                .transpose()?,
            recording_path: r.recording_path,
            voicemail_path: r.voicemail_path,
            survey_score: r.survey_score,
        })
    }
}

const COLUMNS: &str = "id, call_id, from_uri, to_uri, caller, contact_id, thread_id, flow, \
     ivr_path, queue, priority, routing_reason, started_at, enqueued_at, answered_at, ended_at, \
     wait_ms, agent, disposition, recording_path, voicemail_path, survey_score";

/// Writes the row of a new call (at INVITE). A repeated Call-ID (a
/// retransmitted INVITE) gives back the first row.
pub async fn insert(
    store: &Store,
    call: &NewCall,
    contact: Option<&ContactId>,
    now: i64,
) -> Result<CallRecord, ThreadError> {
    sqlx::query(
        "INSERT INTO calls (id, call_id, from_uri, to_uri, caller, contact_id, flow, ivr_path, \
         started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '[]', $8) ON CONFLICT (call_id) DO NOTHING",
    )
    .bind(new_id())
    .bind(&call.call_id)
    .bind(&call.from_uri)
    .bind(&call.to_uri)
    .bind(call.caller.as_ref().map(E164::as_str))
    .bind(contact.map(ContactId::as_str))
    .bind(call.flow.as_deref())
    .bind(now)
    .execute(store.pool())
    .await?;
    by_call_id(store, &call.call_id)
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "call",
            id: call.call_id.clone(),
        })
}

async fn one(store: &Store, column: &str, value: &str) -> Result<Option<CallRecord>, ThreadError> {
    let sql = format!("SELECT {COLUMNS} FROM calls WHERE {column} = $1");
    let row: Option<CallRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(store.pool())
        .await?;
    row.map(CallRecord::try_from).transpose()
}

/// The row `id`.
pub async fn get(store: &Store, id: &str) -> Result<Option<CallRecord>, ThreadError> {
    one(store, "id", id).await
}

/// The row of SIP Call-ID `call_id`.
pub async fn by_call_id(store: &Store, call_id: &str) -> Result<Option<CallRecord>, ThreadError> {
    one(store, "call_id", call_id).await
}

/// Calls started in `[since, until)`, oldest first (at most
/// [`MAX_CDR_ROWS`]).
pub async fn between(
    store: &Store,
    since: i64,
    until: i64,
) -> Result<Vec<CallRecord>, ThreadError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM calls WHERE started_at >= $1 AND started_at < $2 \
         ORDER BY started_at, id LIMIT $3"
    );
    let rows: Vec<CallRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .bind(until)
        .bind(MAX_CDR_ROWS)
        .fetch_all(store.pool())
        .await?;
    rows.into_iter().map(CallRecord::try_from).collect()
}

/// Sets the call's contact (an agent chose one of an ambiguous number's
/// contacts, or linking found one).
pub async fn set_contact(store: &Store, id: &str, contact: &ContactId) -> Result<(), ThreadError> {
    exec(
        store,
        "UPDATE calls SET contact_id = $1 WHERE id = $2",
        contact.as_str(),
        id,
    )
    .await
}

/// Binds the call to `thread` unless it already has one; returns the
/// thread it is bound to afterwards.
pub(crate) async fn bind_thread(
    store: &Store,
    id: &str,
    thread: &ThreadId,
) -> Result<Option<ThreadId>, ThreadError> {
    sqlx::query("UPDATE calls SET thread_id = $1 WHERE id = $2 AND thread_id IS NULL")
        .bind(thread.as_str())
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(get(store, id).await?.and_then(|c| c.thread_id))
}

async fn exec(store: &Store, sql: &'static str, value: &str, id: &str) -> Result<(), ThreadError> {
    let done = sqlx::query(sql)
        .bind(value)
        .bind(id)
        .execute(store.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ThreadError::NotFound {
            what: "call",
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Writes `event` into the CDR row `id` and returns the updated row.
pub async fn apply(
    store: &Store,
    id: &str,
    event: &CallEvent,
    now: i64,
) -> Result<CallRecord, ThreadError> {
    let Some(call) = get(store, id).await? else {
        return Err(ThreadError::NotFound {
            what: "call",
            id: id.to_owned(),
        });
    };
    let pool = store.pool();
    match event {
        CallEvent::Ivr { node, digits } => {
            let mut path = match call.ivr_path {
                Value::Array(steps) => steps,
                _ => Vec::new(),
            };
            if path.len() < MAX_IVR_STEPS {
                path.push(json!({ "node": node, "digits": digits, "at": now }));
            }
            sqlx::query("UPDATE calls SET ivr_path = $1 WHERE id = $2")
                .bind(Value::Array(path).to_string())
                .bind(id)
                .execute(pool)
                .await?;
        }
        CallEvent::Queued {
            queue,
            priority,
            reason,
        } => {
            sqlx::query(
                "UPDATE calls SET queue = $1, priority = $2, routing_reason = $3, \
                 enqueued_at = $4 WHERE id = $5",
            )
            .bind(queue)
            .bind(*priority)
            .bind(reason.as_deref())
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
        }
        CallEvent::Answered { agent } => {
            let wait = call.enqueued_at.map(|q| (now - q).max(0));
            sqlx::query(
                "UPDATE calls SET agent = $1, answered_at = $2, wait_ms = $3 WHERE id = $4",
            )
            .bind(agent)
            .bind(now)
            .bind(wait)
            .bind(id)
            .execute(pool)
            .await?;
        }
        CallEvent::Ended { disposition } => {
            let wait = call
                .wait_ms
                .or_else(|| call.enqueued_at.map(|q| (now - q).max(0)));
            sqlx::query(
                "UPDATE calls SET ended_at = $1, disposition = $2, wait_ms = $3 WHERE id = $4",
            )
            .bind(now)
            .bind(disposition.as_str())
            .bind(wait)
            .bind(id)
            .execute(pool)
            .await?;
        }
        CallEvent::Recording { path } => {
            exec(
                store,
                "UPDATE calls SET recording_path = $1 WHERE id = $2",
                path,
                id,
            )
            .await?;
        }
        CallEvent::Voicemail { path } => {
            exec(
                store,
                "UPDATE calls SET voicemail_path = $1 WHERE id = $2",
                path,
                id,
            )
            .await?;
        }
        CallEvent::Survey { score } => {
            sqlx::query("UPDATE calls SET survey_score = $1 WHERE id = $2")
                .bind(*score)
                .bind(id)
                .execute(pool)
                .await?;
        }
    }
    get(store, id).await?.ok_or_else(|| ThreadError::NotFound {
        what: "call",
        id: id.to_owned(),
    })
}
