//! The screen pop (DESIGN §7): what an agent sees of the caller when a call
//! is offered — the contact, the thread and its latest events — read from
//! the store once per offer, off the call's signalling path.

use serde_json::{Value, json};

use super::contacts::{self, Contact, ContactId};
use super::events::{self, Event, truncate};
use super::threads::{self, Thread, ThreadId};
use super::{ThreadError, rfc3339};
use crate::store::Store;

/// How many of the thread's latest events the screen pop shows.
pub const LAST_EVENTS: i64 = 5;

/// Longest event body shown in the screen pop.
pub const SUMMARY_LEN: usize = 200;

/// The caller as the store knows them.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenFacts {
    pub contact: Option<Contact>,
    pub thread: Option<Thread>,
    /// The thread's latest [`LAST_EVENTS`] events, oldest first.
    pub last_events: Vec<Event>,
}

/// Reads the contact (following merges), the thread and its latest events.
pub async fn facts(
    store: &Store,
    contact: Option<&ContactId>,
    thread: Option<&ThreadId>,
) -> Result<ScreenFacts, ThreadError> {
    let thread = match thread {
        Some(id) => threads::get(store, id.as_str()).await?,
        None => None,
    };
    let contact_id = contact.or(thread.as_ref().map(|t| &t.contact_id));
    let contact = match contact_id {
        Some(id) => contacts::resolve(store, id.as_str()).await?,
        None => None,
    };
    let last_events = match &thread {
        Some(t) => events::latest(store, &t.id, LAST_EVENTS).await?,
        None => Vec::new(),
    };
    Ok(ScreenFacts {
        contact,
        thread,
        last_events,
    })
}

impl ScreenFacts {
    /// `{"id", "name", "vip"}` of the contact, or null.
    pub fn contact_json(&self) -> Value {
        match &self.contact {
            Some(c) => json!({ "id": c.id, "name": c.display_name, "vip": c.vip }),
            None => Value::Null,
        }
    }

    /// `{"id", "subject", "status", "priority"}` of the thread, or null.
    pub fn thread_json(&self) -> Value {
        match &self.thread {
            Some(t) => json!({
                "id": t.id,
                "subject": t.subject,
                "status": t.status,
                "priority": t.priority,
            }),
            None => Value::Null,
        }
    }

    /// The latest events, small: channel, kind, direction, time and a
    /// summary of the body.
    pub fn last_events_json(&self) -> Value {
        Value::Array(
            self.last_events
                .iter()
                .map(|e| {
                    json!({
                        "channel": e.channel,
                        "kind": e.kind,
                        "direction": e.direction,
                        "at": rfc3339(e.occurred_at),
                        "body": e.body.as_deref().map(|b| truncate(b, SUMMARY_LEN)),
                    })
                })
                .collect(),
        )
    }
}
