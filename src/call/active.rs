//! The calls in progress (DESIGN §8 `GET /api/v1/calls`, `GET
//! /api/v1/calls/{id}`, `POST /api/v1/calls/{id}/hangup`): every call task
//! registers itself for as long as it runs; what the API shows comes from
//! the steps the call records (flow node, queue, agent) and from its call
//! record (row id, contact, thread) as the log task writes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::log::LogState;
use crate::thread::CallEvent;

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Ringing before the switch answers (a flow's `ring:`).
    Ringing,
    /// Answered and running its flow.
    Ivr,
    /// Waiting in a queue.
    Queued,
    /// Talking to an agent.
    Bridged,
}

/// A call in progress as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveCall {
    /// The call record's id (as in `GET /api/v1/cdrs`), once written.
    pub id: Option<String>,
    /// The SIP Call-ID.
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub flow: String,
    /// Epoch ms of the INVITE.
    pub started_at: i64,
    pub state: Stage,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub contact_id: Option<String>,
    pub thread_id: Option<String>,
}

/// What the call task updates.
#[derive(Debug)]
struct Live {
    stage: Stage,
    queue: Option<String>,
    agent: Option<String>,
}

#[derive(Debug)]
struct Slot {
    call_id: String,
    from: String,
    to: String,
    flow: String,
    started_at: i64,
    live: Mutex<Live>,
    log: watch::Receiver<LogState>,
    hangup: Notify,
}

impl Slot {
    fn view(&self) -> ActiveCall {
        let live = lock(&self.live);
        let log = self.log.borrow();
        ActiveCall {
            id: log.row.clone(),
            call_id: self.call_id.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            flow: self.flow.clone(),
            started_at: self.started_at,
            state: live.stage,
            queue: live.queue.clone(),
            agent: live.agent.clone(),
            contact_id: log.contact.as_ref().map(|c| c.0.clone()),
            thread_id: log.thread.as_ref().map(|t| t.0.clone()),
        }
    }
}

/// A poisoned lock only means a panic elsewhere mid-update; the data is
/// plain values, still fine to read.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every call in progress; cheap to clone, shared by the call tasks and the
/// API.
#[derive(Debug, Clone, Default)]
pub struct ActiveCalls {
    calls: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

/// What a new call registers.
pub struct NewActive<'a> {
    pub call_id: &'a str,
    pub from: String,
    pub to: String,
    pub flow: &'a str,
    pub started_at: i64,
    pub ringing: bool,
    pub log: watch::Receiver<LogState>,
}

impl ActiveCalls {
    /// Registers a call until the returned entry is dropped.
    pub fn register(&self, new: NewActive<'_>) -> ActiveEntry {
        let slot = Arc::new(Slot {
            call_id: new.call_id.to_owned(),
            from: new.from,
            to: new.to,
            flow: new.flow.to_owned(),
            started_at: new.started_at,
            live: Mutex::new(Live {
                stage: if new.ringing {
                    Stage::Ringing
                } else {
                    Stage::Ivr
                },
                queue: None,
                agent: None,
            }),
            log: new.log,
            hangup: Notify::new(),
        });
        lock(&self.calls).insert(new.call_id.to_owned(), slot.clone());
        ActiveEntry {
            calls: self.clone(),
            slot,
        }
    }

    /// Every call in progress, oldest first.
    pub fn list(&self) -> Vec<ActiveCall> {
        let slots: Vec<Arc<Slot>> = lock(&self.calls).values().cloned().collect();
        let mut calls: Vec<ActiveCall> = slots.iter().map(|s| s.view()).collect();
        calls.sort_by(|a, b| (a.started_at, &a.call_id).cmp(&(b.started_at, &b.call_id)));
        calls
    }

    fn find(&self, id: &str) -> Option<Arc<Slot>> {
        let calls = lock(&self.calls);
        if let Some(slot) = calls.get(id) {
            return Some(slot.clone());
        }
        calls
            .values()
            .find(|s| s.log.borrow().row.as_deref() == Some(id))
            .cloned()
    }

    /// The call whose record id or SIP Call-ID is `id`.
    pub fn get(&self, id: &str) -> Option<ActiveCall> {
        self.find(id).map(|s| s.view())
    }

    /// Asks the call to end (BYE to the caller, its agent leg ends too; a
    /// call still ringing is declined);
    /// `None` when no such call is in progress.
    pub fn hang_up(&self, id: &str) -> Option<ActiveCall> {
        let slot = self.find(id)?;
        slot.hangup.notify_one();
        Some(slot.view())
    }

    /// No call in progress.
    pub fn is_empty(&self) -> bool {
        lock(&self.calls).is_empty()
    }
}

/// A call's registration; dropping it (the call task ends) removes it.
#[derive(Debug)]
pub struct ActiveEntry {
    calls: ActiveCalls,
    slot: Arc<Slot>,
}

impl ActiveEntry {
    /// Resolves when the API asked this call to end.
    pub async fn hangup_requested(&self) {
        self.slot.hangup.notified().await;
    }

    /// The switch answered the call.
    pub fn answered(&self) {
        let mut live = lock(&self.slot.live);
        if live.stage == Stage::Ringing {
            live.stage = Stage::Ivr;
        }
    }

    /// A shared handle for the call's log.
    pub fn tracker(&self) -> ActiveTracker {
        ActiveTracker {
            slot: self.slot.clone(),
        }
    }
}

impl Drop for ActiveEntry {
    fn drop(&mut self) {
        let mut calls = lock(&self.calls.calls);
        if calls
            .get(&self.slot.call_id)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            calls.remove(&self.slot.call_id);
        }
    }
}

/// Lets the call's log move the call along as it records steps; it does
/// not keep the call registered.
#[derive(Debug, Clone)]
pub struct ActiveTracker {
    slot: Arc<Slot>,
}

impl ActiveTracker {
    /// The caller is back in the flow: it left the queue or the agent hung
    /// up.
    pub fn back_in_flow(&self) {
        let mut live = lock(&self.slot.live);
        live.stage = Stage::Ivr;
        live.agent = None;
    }

    /// A step the call recorded moves it along.
    pub fn follow(&self, event: &CallEvent) {
        let mut live = lock(&self.slot.live);
        match event {
            CallEvent::Queued { queue, .. } => {
                live.stage = Stage::Queued;
                live.queue = Some(queue.clone());
            }
            CallEvent::Answered { agent } => {
                live.stage = Stage::Bridged;
                live.agent = Some(agent.clone());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_call<'a>(
        calls: &ActiveCalls,
        id: &'a str,
        log: watch::Receiver<LogState>,
    ) -> ActiveEntry {
        calls.register(NewActive {
            call_id: id,
            from: "sip:+14155550123@example.com".into(),
            to: "sip:100@switch".into(),
            flow: "main",
            started_at: 1_000,
            ringing: true,
            log,
        })
    }

    #[tokio::test]
    async fn a_call_is_listed_while_its_entry_lives_and_moves_along() {
        let calls = ActiveCalls::default();
        let (log_tx, log) = watch::channel(LogState::default());
        let entry = new_call(&calls, "c1", log);
        assert_eq!(calls.get("c1").unwrap().state, Stage::Ringing);
        entry.answered();
        let tracker = entry.tracker();
        tracker.follow(&CallEvent::Queued {
            queue: "support".into(),
            priority: 1,
            reason: None,
        });
        assert_eq!(calls.get("c1").unwrap().state, Stage::Queued);
        tracker.follow(&CallEvent::Answered {
            agent: "alice".into(),
        });
        let call = calls.get("c1").unwrap();
        assert_eq!(
            (call.state, call.agent.as_deref()),
            (Stage::Bridged, Some("alice"))
        );
        tracker.back_in_flow();
        let call = calls.get("c1").unwrap();
        assert_eq!((call.state, call.agent), (Stage::Ivr, None));
        assert_eq!(call.queue.as_deref(), Some("support"));

        // Once the call record is written, its id names the call too.
        assert!(calls.get("row-1").is_none());
        log_tx.send_modify(|s| s.row = Some("row-1".into()));
        assert_eq!(calls.get("row-1").unwrap().call_id, "c1");

        drop(entry);
        assert!(calls.is_empty());
        assert!(calls.hang_up("c1").is_none());
    }

    #[tokio::test]
    async fn a_hang_up_request_reaches_the_call() {
        let calls = ActiveCalls::default();
        let (_log_tx, log) = watch::channel(LogState::default());
        let entry = new_call(&calls, "c2", log);
        assert!(calls.hang_up("c2").is_some());
        // The request is kept until the call task looks.
        tokio::time::timeout(std::time::Duration::from_secs(1), entry.hangup_requested())
            .await
            .expect("hang-up request");
    }

    #[tokio::test]
    async fn oldest_calls_are_listed_first() {
        let calls = ActiveCalls::default();
        let (_tx, log) = watch::channel(LogState::default());
        let _later = calls.register(NewActive {
            call_id: "b",
            from: String::new(),
            to: String::new(),
            flow: "main",
            started_at: 2_000,
            ringing: false,
            log: log.clone(),
        });
        let _first = new_call(&calls, "a", log);
        let ids: Vec<String> = calls.list().into_iter().map(|c| c.call_id).collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
