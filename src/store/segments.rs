//! Queue segments (DESIGN §6, §7): a caller's time in one queue, one row
//! per enqueue, written by the routing engine's driver when the caller
//! leaves the queue. Rows are keyed by the SIP Call-ID, like
//! `calls.call_id`, so a CDR finds its segments.

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use super::{StoreError, new_id};

/// How a caller's time in a queue ended.
pub const OUTCOMES: &[&str] = &["answered", "abandoned", "max_wait", "closed", "no_agents"];

/// One offer made while the caller waited: the agent rung and when (epoch
/// ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentOffer {
    pub login: String,
    pub at: i64,
}

/// One caller's time in one queue. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSegment {
    pub id: String,
    /// The SIP Call-ID of the caller's call.
    pub call_id: String,
    pub queue: String,
    pub enqueued_at: i64,
    pub left_at: i64,
    /// One of [`OUTCOMES`].
    pub outcome: String,
    /// The agent who answered.
    pub agent: Option<String>,
    pub offers: Vec<SegmentOffer>,
    pub wait_ms: i64,
}

/// What the driver writes; the id is made on insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueSegment {
    pub call_id: String,
    pub queue: String,
    pub enqueued_at: i64,
    pub left_at: i64,
    pub outcome: &'static str,
    pub agent: Option<String>,
    pub offers: Vec<SegmentOffer>,
    pub wait_ms: i64,
}

#[derive(sqlx::FromRow)]
struct SegmentRow {
    id: String,
    call_id: String,
    queue: String,
    enqueued_at: i64,
    left_at: i64,
    outcome: String,
    agent: Option<String>,
    offers: String,
    wait_ms: i64,
}

impl SegmentRow {
    fn into_segment(self) -> QueueSegment {
        let offers = serde_json::from_str(&self.offers).unwrap_or_else(|err| {
            tracing::warn!(cause = %err, id = %self.id, "unreadable offers of a queue segment");
            Vec::new()
        });
        QueueSegment {
            id: self.id,
            call_id: self.call_id,
            queue: self.queue,
            enqueued_at: self.enqueued_at,
            left_at: self.left_at,
            outcome: self.outcome,
            agent: self.agent,
            offers,
            wait_ms: self.wait_ms,
        }
    }
}

const COLUMNS: &str = "id, call_id, queue, enqueued_at, left_at, outcome, agent, offers, wait_ms";

/// The queue_segments table; from [`super::Store::segments`].
pub struct Segments<'a> {
    pool: &'a AnyPool,
}

impl<'a> Segments<'a> {
    pub(super) fn new(pool: &'a AnyPool) -> Segments<'a> {
        Segments { pool }
    }

    /// Writes one segment; returns its id.
    pub async fn insert(&self, segment: &NewQueueSegment) -> Result<String, StoreError> {
        if !OUTCOMES.contains(&segment.outcome) {
            return Err(StoreError::Invalid {
                what: "outcome",
                value: segment.outcome.to_owned(),
                reason: "must be answered, abandoned, max_wait, closed or no_agents",
            });
        }
        let id = new_id();
        let offers = serde_json::to_string(&segment.offers).unwrap_or_else(|_| "[]".to_owned());
        sqlx::query(
            "INSERT INTO queue_segments (id, call_id, queue, enqueued_at, left_at, outcome, \
             agent, offers, wait_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&segment.call_id)
        .bind(&segment.queue)
        .bind(segment.enqueued_at)
        .bind(segment.left_at)
        .bind(segment.outcome)
        .bind(segment.agent.clone())
        .bind(offers)
        .bind(segment.wait_ms)
        .execute(self.pool)
        .await?;
        Ok(id)
    }

    /// The segments of one call (SIP Call-ID), in the order it entered the
    /// queues.
    pub async fn for_call(&self, call_id: &str) -> Result<Vec<QueueSegment>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_segments WHERE call_id = $1 ORDER BY enqueued_at, id"
        );
        let rows: Vec<SegmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(call_id)
            .fetch_all(self.pool)
            .await?;
        Ok(rows.into_iter().map(SegmentRow::into_segment).collect())
    }

    /// The segments of every call started in `[since, until)` (the CDR
    /// listing's range), by call then entry time.
    pub async fn for_calls_started(
        &self,
        since: i64,
        until: i64,
    ) -> Result<Vec<QueueSegment>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_segments WHERE call_id IN \
             (SELECT call_id FROM calls WHERE started_at >= $1 AND started_at < $2) \
             ORDER BY call_id, enqueued_at, id"
        );
        let rows: Vec<SegmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .bind(until)
            .fetch_all(self.pool)
            .await?;
        Ok(rows.into_iter().map(SegmentRow::into_segment).collect())
    }
}
