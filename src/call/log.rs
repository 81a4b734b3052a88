//! The call's record (DESIGN §7): the CDR row written at INVITE and updated
//! at every step, and the same steps written into the caller's thread. A
//! small task per call does the writes in order, off the call's loop, so a
//! slow database never delays media or signalling; a crash loses nothing
//! already written.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::events::EventBus;
use crate::sip::message::Request;
use crate::store::{Store, now_ms};
use crate::thread::identity::{E164, parse_phone};
use crate::thread::linking::{LinkResult, record, start_call};
use crate::thread::{CallEvent, CallRecord, ContactId, NewCall, ThreadId};

/// What the log task has written so far: the call's row, contact and
/// thread once chosen (for the screen pop of an offer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogState {
    /// Steps handled so far (in the order they were recorded).
    pub written: u64,
    /// The CDR row id.
    pub row: Option<String>,
    pub contact: Option<ContactId>,
    pub thread: Option<ThreadId>,
    /// The agent of the caller's open thread (last agent, else assignee),
    /// as found at INVITE.
    pub preferred_agent: Option<String>,
    /// The caller's queue priority and routing reason, once queued.
    pub priority: Option<i64>,
    pub routing_reason: Option<String>,
}

/// Sends the call's steps to its log task.
#[derive(Clone)]
pub struct CallLog {
    tx: mpsc::UnboundedSender<CallEvent>,
    /// A voicemail was left: the call ends as `voicemail`.
    voicemail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// 1 once queued, 2 once an agent answered: a caller who leaves while
    /// queued abandoned the queue, not the IVR.
    queue: std::sync::Arc<std::sync::atomic::AtomicU8>,
    /// Steps sent to the log task.
    sent: Arc<AtomicU64>,
    /// What the log task has written.
    state: watch::Receiver<LogState>,
    /// The call's entry among the calls in progress.
    active: Option<super::active::ActiveTracker>,
}

impl CallLog {
    /// Writes the CDR row for `invite` and starts the log task; the routing
    /// facts (contact, thread) arrive on the receiver once looked up.
    /// `trusted` callers (SIP trunks) are identified by P-Asserted-Identity,
    /// others by From (DESIGN §7).
    pub fn begin(
        store: Store,
        bus: EventBus,
        invite: &Request,
        flow: &str,
        trusted: bool,
    ) -> (CallLog, oneshot::Receiver<LinkResult>) {
        let call = NewCall {
            call_id: invite.headers.call_id().unwrap_or_default().to_owned(),
            from_uri: invite
                .headers
                .from()
                .map(|f| f.uri.to_string())
                .unwrap_or_default(),
            to_uri: invite.uri.to_string(),
            caller: caller_number(invite, trusted),
            flow: Some(flow.to_owned()),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (link_tx, link_rx) = oneshot::channel();
        let (state_tx, state) = watch::channel(LogState::default());
        tokio::spawn(
            async move {
                let row = match start_call(&store, &call, now_ms()).await {
                    Ok((row, link)) => {
                        bus.publish(
                            "call.started",
                            json!({
                                "id": row.id,
                                "call_id": row.call_id,
                                "from": row.from_uri,
                                "to": row.to_uri,
                                "caller": row.caller,
                                "contact_id": row.contact_id,
                                "thread_id": link.thread.as_ref().map(|t| &t.id),
                            }),
                        );
                        state_tx.send_modify(|s| {
                            s.row = Some(row.id.clone());
                            s.contact = row.contact_id.clone();
                            s.preferred_agent = link
                                .thread
                                .as_ref()
                                .and_then(|t| t.last_agent.clone().or_else(|| t.assignee.clone()));
                        });
                        let _ = link_tx.send(link);
                        row.id
                    }
                    Err(err) => {
                        tracing::error!(cause = %err, "cannot write the call record");
                        return;
                    }
                };
                while let Some(event) = rx.recv().await {
                    let published = Published::of(&event);
                    match record(&store, &row, event, now_ms()).await {
                        Ok(written) => {
                            published.publish(&bus, &written);
                            state_tx.send_modify(|s| {
                                s.written += 1;
                                s.contact = written.contact_id.clone();
                                s.thread = written.thread_id.clone();
                                s.priority = written.priority;
                                s.routing_reason = written.routing_reason.clone();
                            });
                        }
                        Err(err) => {
                            tracing::error!(cause = %err, "cannot update the call record");
                            state_tx.send_modify(|s| s.written += 1);
                        }
                    }
                }
            }
            .instrument(tracing::Span::current()),
        );
        (
            CallLog {
                tx,
                voicemail: Default::default(),
                queue: Default::default(),
                sent: Default::default(),
                state,
                active: None,
            },
            link_rx,
        )
    }

    /// What the log task has written, as it changes.
    pub fn state(&self) -> watch::Receiver<LogState> {
        self.state.clone()
    }

    /// Steps recorded from now on also move the call along in the calls in
    /// progress.
    pub fn track(&mut self, active: super::active::ActiveTracker) {
        self.active = Some(active);
    }

    /// The caller is back in the flow (left the queue, or the agent hung
    /// up).
    pub fn back_in_flow(&self) {
        if let Some(active) = &self.active {
            active.back_in_flow();
        }
    }

    /// The agent of the caller's open thread, once the INVITE's lookup is
    /// done (no waiting).
    pub fn preferred_agent(&self) -> Option<String> {
        self.state.borrow().preferred_agent.clone()
    }

    /// What the log task knows once it has written every step recorded so
    /// far, waiting at most `limit` (then what it knows by then).
    pub async fn settled(&self, limit: Duration) -> LogState {
        let target = self.sent.load(std::sync::atomic::Ordering::Acquire);
        let mut state = self.state.clone();
        let _ = tokio::time::timeout(limit, state.wait_for(|s| s.written >= target)).await;
        let now = state.borrow().clone();
        now
    }

    /// Records one step (in order with the others).
    pub fn record(&self, event: CallEvent) {
        use crate::thread::Disposition;
        use std::sync::atomic::Ordering;
        if let Some(active) = &self.active {
            active.follow(&event);
        }
        let event = match event {
            CallEvent::Voicemail { .. } => {
                self.voicemail.store(true, Ordering::Relaxed);
                event
            }
            CallEvent::Queued { .. } => {
                self.queue.store(1, Ordering::Relaxed);
                event
            }
            CallEvent::Answered { .. } => {
                self.queue.store(2, Ordering::Relaxed);
                event
            }
            CallEvent::Ended {
                disposition: Disposition::AbandonedIvr,
            } if self.queue.load(Ordering::Relaxed) == 1 => CallEvent::Ended {
                disposition: Disposition::AbandonedQueue,
            },
            // The caller hung up after talking to the agent.
            CallEvent::Ended {
                disposition: Disposition::AbandonedIvr,
            } if self.queue.load(Ordering::Relaxed) == 2 => CallEvent::Ended {
                disposition: Disposition::Answered,
            },
            CallEvent::Ended {
                disposition: crate::thread::Disposition::Answered,
            } if self.voicemail.load(Ordering::Relaxed) => CallEvent::Ended {
                disposition: crate::thread::Disposition::Voicemail,
            },
            other => other,
        };
        if self.tx.send(event).is_ok() {
            self.sent.fetch_add(1, Ordering::Release);
        }
    }
}

/// The live events a recorded step gives (DESIGN §8): `thread.event` when
/// the step went into the caller's thread, and `call.answered` /
/// `call.ended`.
enum Published {
    Step { kind: &'static str },
    Answered { agent: String, kind: &'static str },
    Ended { kind: &'static str },
}

impl Published {
    fn of(event: &CallEvent) -> Published {
        let kind = match event {
            CallEvent::Voicemail { .. } => "voicemail",
            CallEvent::Survey { .. } => "survey",
            _ => "call",
        };
        match event {
            CallEvent::Answered { agent } => Published::Answered {
                agent: agent.clone(),
                kind,
            },
            CallEvent::Ended { .. } => Published::Ended { kind },
            _ => Published::Step { kind },
        }
    }

    fn publish(self, bus: &EventBus, call: &CallRecord) {
        let kind = match self {
            Published::Step { kind } => kind,
            Published::Answered { agent, kind } => {
                bus.publish(
                    "call.answered",
                    json!({
                        "id": call.id,
                        "call_id": call.call_id,
                        "agent": agent,
                        "queue": call.queue,
                        "wait_ms": call.wait_ms,
                        "thread_id": call.thread_id,
                    }),
                );
                kind
            }
            Published::Ended { kind } => {
                bus.publish(
                    "call.ended",
                    json!({
                        "id": call.id,
                        "call_id": call.call_id,
                        "disposition": call.disposition,
                        "duration_ms": call.duration_ms(),
                        "agent": call.agent,
                        "queue": call.queue,
                        "thread_id": call.thread_id,
                    }),
                );
                kind
            }
        };
        if let Some(thread) = &call.thread_id {
            bus.publish(
                "thread.event",
                json!({
                    "thread_id": thread,
                    "kind": kind,
                    "channel": "voice",
                    "call": call.id,
                }),
            );
        }
    }
}

/// The caller's E.164 number: P-Asserted-Identity for trusted peers, else
/// the From user; national numbers read with the dialled number's country.
fn caller_number(invite: &Request, trusted: bool) -> Option<E164> {
    use crate::sip::message::{HeaderName, NameAddr};
    let dialled_region = invite
        .uri
        .user
        .as_deref()
        .and_then(|d| parse_phone(d, None))
        .and_then(|e| e.region());
    let asserted = trusted
        .then(|| invite.headers.get(&HeaderName::PAssertedIdentity))
        .flatten()
        .and_then(|v| NameAddr::parse(v).ok());
    let from = invite.headers.from().ok();
    let uri = asserted.or(from)?.uri;
    let raw = uri.to_string();
    parse_phone(&raw, dialled_region)
}
