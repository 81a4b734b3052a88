//! Linking calls and messages to contacts and threads (DESIGN §7).
//!
//! A caller's number (E.164) names its contact: one owner → that contact;
//! a shared number → ambiguous (the agent chooses). A call or message joins
//! the contact's most recently active open thread (within 7 days), else
//! reopens one resolved within 72 hours, else starts a new thread. A call
//! abandoned in the IVR is logged into an open thread but never creates or
//! reopens one, so the choice is made at the first call event that needs a
//! thread ([`CallStage`]).
//!
//! The call task uses [`start_call`] at INVITE (the CDR row and the
//! routing facts: contact, VIP, open thread, priority, assignee, last agent),
//! then [`record`] for every step; [`attach_call`] forces the choice early.

use serde::Serialize;
use serde_json::json;

use super::calls::{self, CallEvent, CallRecord, Disposition, NewCall};
use super::contacts::{self, Contact, ContactId, Role};
use super::events::{self, NewEvent};
use super::identity::{E164, IdentityKind};
use super::threads::{self, Status, Thread, ThreadId};
use super::{Channel, Direction, EventKind, ThreadError};
use crate::store::Store;

/// An open thread older than this (last activity) is not joined.
pub const OPEN_WINDOW_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A resolved thread is reopened only this long after resolution.
pub const REOPEN_WINDOW_MS: i64 = 72 * 60 * 60 * 1000;

/// Why a caller is (not) linked to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkReason {
    /// Anonymous, restricted or invalid number.
    NoCaller,
    /// A valid number no contact holds yet.
    Unknown,
    /// The number's owner.
    Owner,
    /// Several contacts share the number; the agent chooses.
    Ambiguous,
}

/// Who is calling, for routing and the screen pop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkResult {
    pub caller: Option<E164>,
    pub contact: Option<Contact>,
    /// The contacts sharing the number when the link is ambiguous.
    pub ambiguous: Vec<Contact>,
    /// The contact's open thread the call would join (within 7 days); its
    /// `priority`, `assignee` and `last_agent` feed routing.
    pub thread: Option<Thread>,
    pub reason: LinkReason,
}

/// How far a call got: what its thread choice may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStage {
    /// Still in (or abandoned in) the IVR: join an open thread only.
    Ivr,
    /// Reached a queue: join, reopen or create.
    Queue,
    /// Reached an agent: join, reopen or create.
    Agent,
    /// Left a voicemail: join, reopen or create.
    Voicemail,
}

impl CallStage {
    fn may_create(self) -> bool {
        self != CallStage::Ivr
    }
}

/// How a thread was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadChoice {
    /// The call already had its thread.
    AlreadyBound,
    /// Joined the most recently active open thread.
    JoinedOpen,
    /// Reopened a thread resolved within 72 h.
    Reopened,
    /// Started a new thread.
    Created,
    /// No contact (anonymous, or an ambiguous number not yet chosen).
    NoContact,
    /// IVR only, and no open thread: nothing is created.
    NoOpenThread,
}

/// Links `caller` to its contact and open thread; writes nothing.
pub async fn link_caller(
    store: &Store,
    caller: Option<&E164>,
    now: i64,
) -> Result<LinkResult, ThreadError> {
    let Some(caller) = caller else {
        return Ok(LinkResult {
            caller: None,
            contact: None,
            ambiguous: Vec::new(),
            thread: None,
            reason: LinkReason::NoCaller,
        });
    };
    let (contact, ambiguous, reason) = contact_of_number(store, caller.as_str()).await?;
    let thread = match &contact {
        Some(c) => threads::latest_open(store, &c.id, now - OPEN_WINDOW_MS).await?,
        None => None,
    };
    Ok(LinkResult {
        caller: Some(caller.clone()),
        contact,
        ambiguous,
        thread,
        reason,
    })
}

/// The contact a phone number names: its owner when no one else shares it.
async fn contact_of_number(
    store: &Store,
    number: &str,
) -> Result<(Option<Contact>, Vec<Contact>, LinkReason), ThreadError> {
    let linked = contacts::by_identity(store, IdentityKind::Phone, number).await?;
    Ok(match linked.as_slice() {
        [] => (None, Vec::new(), LinkReason::Unknown),
        [(contact, Role::Owner)] => (Some(contact.clone()), Vec::new(), LinkReason::Owner),
        _ => (
            None,
            linked.into_iter().map(|(c, _)| c).collect(),
            LinkReason::Ambiguous,
        ),
    })
}

/// Writes the CDR row of a new call (at INVITE) with the caller's contact
/// when the number names exactly one, and returns the routing facts.
pub async fn start_call(
    store: &Store,
    call: &NewCall,
    now: i64,
) -> Result<(CallRecord, LinkResult), ThreadError> {
    let link = link_caller(store, call.caller.as_ref(), now).await?;
    let contact = link.contact.as_ref().map(|c| &c.id);
    let record = calls::insert(store, call, contact, now).await?;
    Ok((record, link))
}

/// The thread for new activity of `contact` on `channel`: the most recently
/// active open thread (7 days), else one resolved within 72 h (reopened),
/// else a new one when `may_create`.
pub async fn choose_thread(
    store: &Store,
    contact: &ContactId,
    channel: Channel,
    may_create: bool,
    subject: Option<&str>,
    now: i64,
) -> Result<(Option<Thread>, ThreadChoice), ThreadError> {
    if let Some(open) = threads::latest_open(store, contact, now - OPEN_WINDOW_MS).await? {
        return Ok((Some(open), ThreadChoice::JoinedOpen));
    }
    if !may_create {
        return Ok((None, ThreadChoice::NoOpenThread));
    }
    if let Some(resolved) = threads::latest_resolved(store, contact, now - REOPEN_WINDOW_MS).await?
    {
        threads::set_status(store, &resolved.id, Status::Open, now).await?;
        let thread = threads::get(store, resolved.id.as_str()).await?;
        return Ok((thread, ThreadChoice::Reopened));
    }
    let thread = threads::create(store, contact, channel, subject, now).await?;
    Ok((Some(thread), ThreadChoice::Created))
}

/// Chooses the thread of call row `call` for `stage` and binds it (once:
/// later calls return the bound thread). A valid number no one holds gets a
/// new contact when the stage may create a thread. When a thread is bound
/// here, a "call started" event with the IVR path so far is written.
pub async fn attach_call(
    store: &Store,
    call: &str,
    stage: CallStage,
    now: i64,
) -> Result<(Option<Thread>, ThreadChoice), ThreadError> {
    let record = calls::get(store, call)
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "call",
            id: call.to_owned(),
        })?;
    if let Some(bound) = &record.thread_id {
        return Ok((
            threads::get(store, bound.as_str()).await?,
            ThreadChoice::AlreadyBound,
        ));
    }
    let Some(contact) = call_contact(store, &record, stage, now).await? else {
        return Ok((None, ThreadChoice::NoContact));
    };
    let (thread, choice) = choose_thread(
        store,
        &contact,
        Channel::Voice,
        stage.may_create(),
        None,
        now,
    )
    .await?;
    let Some(thread) = thread else {
        return Ok((None, choice));
    };
    let bound = calls::bind_thread(store, call, &thread.id).await?;
    if bound.as_ref() != Some(&thread.id) {
        // Another step of the same call bound a thread first.
        let other = match bound {
            Some(id) => threads::get(store, id.as_str()).await?,
            None => None,
        };
        return Ok((other, ThreadChoice::AlreadyBound));
    }
    let started = NewEvent {
        channel: Channel::Voice,
        kind: EventKind::Call,
        direction: Direction::Inbound,
        body: Some(format!(
            "Call from {}",
            record.caller.as_deref().unwrap_or("unknown")
        )),
        metadata: json!({
            "call": record.id,
            "event": "started",
            "from": record.from_uri,
            "to": record.to_uri,
            "flow": record.flow,
            "ivr_path": record.ivr_path,
        }),
        occurred_at: record.started_at,
        external_id: Some(format!("{}:started", record.id)),
    };
    events::append(store, &thread.id, started, now).await?;
    Ok((Some(thread), choice))
}

/// The call's contact, found or (when the stage may create) made now.
async fn call_contact(
    store: &Store,
    record: &CallRecord,
    stage: CallStage,
    now: i64,
) -> Result<Option<ContactId>, ThreadError> {
    if let Some(id) = &record.contact_id {
        return Ok(contacts::resolve(store, id.as_str()).await?.map(|c| c.id));
    }
    let Some(number) = &record.caller else {
        return Ok(None);
    };
    let (contact, _, reason) = contact_of_number(store, number).await?;
    let contact = match (contact, reason) {
        (Some(c), _) => Some(c.id),
        (None, LinkReason::Unknown) if stage.may_create() => {
            let c = contacts::ensure_owner(store, IdentityKind::Phone, number, None, now).await?;
            Some(c.id)
        }
        _ => None,
    };
    if let Some(c) = &contact {
        calls::set_contact(store, &record.id, c).await?;
    }
    Ok(contact)
}

/// The stage a call event shows the call reached.
fn stage_of(event: &CallEvent) -> CallStage {
    match event {
        CallEvent::Queued { .. } => CallStage::Queue,
        CallEvent::Answered { .. } | CallEvent::Recording { .. } => CallStage::Agent,
        CallEvent::Voicemail { .. } => CallStage::Voicemail,
        CallEvent::Ended { disposition } => match disposition {
            Disposition::Answered => CallStage::Agent,
            Disposition::AbandonedQueue => CallStage::Queue,
            Disposition::Voicemail => CallStage::Voicemail,
            Disposition::AbandonedIvr | Disposition::Transferred | Disposition::Failed => {
                CallStage::Ivr
            }
        },
        CallEvent::Ivr { .. } | CallEvent::Survey { .. } => CallStage::Ivr,
    }
}

/// Writes a call step into its CDR row and, choosing the thread when this
/// step is the first to need one, into the call's thread. Repeating a step
/// adds no second thread event (IVR steps are numbered).
pub async fn record(
    store: &Store,
    call: &str,
    event: CallEvent,
    now: i64,
) -> Result<CallRecord, ThreadError> {
    let record = calls::apply(store, call, &event, now).await?;
    let (thread, _) = attach_call(store, call, stage_of(&event), now).await?;
    let Some(thread) = thread else {
        return Ok(record);
    };
    if let CallEvent::Answered { agent } = &event {
        threads::set_last_agent(store, &thread.id, agent, now).await?;
    }
    let new = call_event(&record, &event, now);
    events::append(store, &thread.id, new, now).await?;
    calls::get(store, call)
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "call",
            id: call.to_owned(),
        })
}

/// The thread event of a call step: a readable summary in the body, the
/// facts in the metadata.
fn call_event(call: &CallRecord, event: &CallEvent, now: i64) -> NewEvent {
    let id = &call.id;
    let recording_url = format!("/api/v1/recordings/{id}");
    let (kind, step, body, extra) = match event {
        CallEvent::Ivr { node, digits } => {
            let n = call.ivr_path.as_array().map_or(0, Vec::len);
            let body = match digits {
                Some(d) => format!("IVR {node}: pressed {d}"),
                None => format!("IVR {node}"),
            };
            let extra = json!({ "node": node, "digits": digits });
            (EventKind::Call, format!("ivr:{n}"), body, extra)
        }
        CallEvent::Queued {
            queue,
            priority,
            reason,
        } => (
            EventKind::Call,
            "queued".to_owned(),
            format!("Queued in {queue} (priority {priority})"),
            json!({ "queue": queue, "priority": priority, "reason": reason }),
        ),
        CallEvent::Answered { agent } => (
            EventKind::Call,
            "answered".to_owned(),
            match call.wait_ms {
                Some(w) => format!("Answered by {agent} after {} s in queue", w / 1000),
                None => format!("Answered by {agent}"),
            },
            json!({ "agent": agent, "wait_ms": call.wait_ms }),
        ),
        CallEvent::Ended { disposition } => (
            EventKind::Call,
            "ended".to_owned(),
            match call.duration_ms() {
                Some(d) => format!("Call ended ({disposition}), {} s", d / 1000),
                None => format!("Call ended ({disposition})"),
            },
            json!({
                "disposition": disposition,
                "duration_ms": call.duration_ms(),
                "ivr_path": call.ivr_path,
                "queue": call.queue,
                "wait_ms": call.wait_ms,
                "agent": call.agent,
            }),
        ),
        CallEvent::Recording { .. } => (
            EventKind::Call,
            "recording".to_owned(),
            "Call recording".to_owned(),
            json!({ "recording": recording_url }),
        ),
        CallEvent::Voicemail { .. } => (
            EventKind::Voicemail,
            "voicemail".to_owned(),
            "Voicemail".to_owned(),
            json!({ "voicemail": format!("{recording_url}?kind=voicemail") }),
        ),
        CallEvent::Survey { score } => (
            EventKind::Survey,
            "survey".to_owned(),
            format!("Survey score {score}"),
            json!({ "score": score }),
        ),
    };
    let mut metadata = json!({ "call": id, "call_id": call.call_id, "event": step });
    if let (Some(m), Some(e)) = (metadata.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    NewEvent {
        channel: Channel::Voice,
        kind,
        direction: Direction::Inbound,
        body: Some(body),
        metadata,
        occurred_at: now,
        external_id: Some(format!("{id}:{step}")),
    }
}

/// The contact and thread of an already-chosen thread id (for callers that
/// hold one).
pub async fn thread_of_call(store: &Store, call: &str) -> Result<Option<ThreadId>, ThreadError> {
    Ok(calls::get(store, call).await?.and_then(|c| c.thread_id))
}
