//! The screen pop of an agent call (DESIGN §7): the agent's INVITE names
//! the caller's thread (`Call-Info`, RFC 3261 §20.9, pointing at the
//! thread in the API, plus `X-Switchboard-Thread` / `X-Switchboard-Contact`)
//! and the event stream carries `call.offered` with the contact, the thread
//! and its latest events.

use std::time::Duration;

use serde_json::json;

use super::Call;
use super::log::LogState;
use crate::events::EventBus;
use crate::sip::message::HeaderName;
use crate::store::Store;
use crate::thread::{ContactId, ThreadId};

/// The caller's thread and contact as named on the agent's INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenPop {
    pub thread: ThreadId,
    pub contact: Option<ContactId>,
    /// The thread in the API: `{base}/api/v1/threads/{id}`.
    pub url: String,
}

/// Ids go into header values as they are: UUIDv7 text, nothing else.
fn header_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl ScreenPop {
    /// The screen pop of `thread` on the switch whose HTTP address (as
    /// agents reach it) is `base`, e.g. `http://192.0.2.10:8080`. `None`
    /// when an id is not header-safe.
    pub fn new(base: &str, thread: ThreadId, contact: Option<ContactId>) -> Option<ScreenPop> {
        if !header_safe(thread.as_str())
            || contact.as_ref().is_some_and(|c| !header_safe(c.as_str()))
        {
            return None;
        }
        let url = format!(
            "{}/api/v1/threads/{}",
            base.trim_end_matches('/'),
            thread.as_str()
        );
        Some(ScreenPop {
            thread,
            contact,
            url,
        })
    }

    /// The headers the agent's INVITE carries: `Call-Info: <URL>;purpose=info`
    /// (RFC 3261 §20.9), `X-Switchboard-Thread` and, when known,
    /// `X-Switchboard-Contact`.
    pub fn headers(&self) -> Vec<(HeaderName, String)> {
        let mut headers = vec![
            (HeaderName::CallInfo, format!("<{}>;purpose=info", self.url)),
            (
                HeaderName::Other("X-Switchboard-Thread".to_owned()),
                self.thread.to_string(),
            ),
        ];
        if let Some(contact) = &self.contact {
            headers.push((
                HeaderName::Other("X-Switchboard-Contact".to_owned()),
                contact.to_string(),
            ));
        }
        headers
    }
}

/// How long an offer waits for the caller's thread to be written before
/// ringing the agent without a screen pop.
const SCREEN_POP_WAIT: Duration = Duration::from_millis(500);

impl Call {
    /// The screen pop for an agent leg: the caller's thread and contact
    /// once the log task has written every step so far (the thread is
    /// chosen when the call reaches a queue or an agent). Waits briefly;
    /// the pop is `None` when the caller has no thread.
    pub(super) async fn screen_pop(&self) -> (Option<ScreenPop>, LogState) {
        let state = self.log.settled(SCREEN_POP_WAIT).await;
        let pop = state
            .thread
            .clone()
            .and_then(|t| ScreenPop::new(&self.services.http_base, t, state.contact.clone()));
        (pop, state)
    }

    /// Publishes `call.offered` for ringing `agent` from `queue`.
    /// Publishes `call.offered`: `queue` offers the caller to `agent`, or
    /// with `None` a transfer (the flow's or an agent's REFER) rings it.
    pub(super) fn announce_offer(&self, state: LogState, agent: &str, queue: Option<&str>) {
        let reason = match queue {
            Some(queue) => offer_reason(
                agent,
                state.preferred_agent.as_deref(),
                state.priority.unwrap_or(0),
                queue,
            ),
            None => format!("transfer to {agent}"),
        };
        publish_offered(
            self.services.store.clone(),
            self.services.events.clone(),
            Offer {
                id: state.row,
                call_id: self.setup.call_id.clone(),
                agent: agent.to_owned(),
                queue: queue.map(str::to_owned),
                caller: self.caller_number(),
                contact: state.contact,
                thread: state.thread,
                reason,
            },
        );
    }
}

/// Why the engine offered the caller to `agent`, in words.
fn offer_reason(agent: &str, preferred: Option<&str>, priority: i64, queue: &str) -> String {
    if preferred == Some(agent) {
        format!("last agent {agent}")
    } else if priority > 0 {
        format!("priority {priority} caller in {queue}")
    } else {
        format!("next caller in {queue}")
    }
}

/// One offer of a caller to an agent, as known on the call's side.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The CDR row id.
    pub id: Option<String>,
    /// The caller's SIP Call-ID.
    pub call_id: String,
    pub agent: String,
    /// The queue offering the caller; `None` for a transfer.
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub contact: Option<ContactId>,
    pub thread: Option<ThreadId>,
    /// Why this agent: `last agent alice`, `priority 2 caller in support`…
    pub reason: String,
}

/// Publishes `call.offered` for `offer` with the store's facts about the
/// caller, on its own task; nothing is read when nobody listens.
pub fn publish_offered(store: Store, bus: EventBus, offer: Offer) {
    if !bus.has_subscribers() {
        return;
    }
    tokio::spawn(async move {
        let facts =
            crate::thread::screen::facts(&store, offer.contact.as_ref(), offer.thread.as_ref())
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(cause = %err, "cannot read the screen pop facts");
                    crate::thread::screen::ScreenFacts {
                        contact: None,
                        thread: None,
                        last_events: Vec::new(),
                    }
                });
        bus.publish(
            "call.offered",
            json!({
                "id": offer.id,
                "call_id": offer.call_id,
                "agent": offer.agent,
                "queue": offer.queue,
                "caller": offer.caller,
                "contact": facts.contact_json(),
                "thread": facts.thread_json(),
                "last_events": facts.last_events_json(),
                "reason": offer.reason,
            }),
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3261 §20.9: `Call-Info: <URI>;purpose=info`.
    #[test]
    fn screen_pop_headers() {
        let pop = ScreenPop::new(
            "http://192.0.2.10:8080/",
            ThreadId("0190-abc".to_owned()),
            Some(ContactId("0190-def".to_owned())),
        )
        .unwrap();
        assert_eq!(pop.url, "http://192.0.2.10:8080/api/v1/threads/0190-abc");
        let headers = pop.headers();
        assert_eq!(
            headers[0],
            (
                HeaderName::CallInfo,
                "<http://192.0.2.10:8080/api/v1/threads/0190-abc>;purpose=info".to_owned()
            )
        );
        assert_eq!(headers[1].1, "0190-abc");
        assert_eq!(
            headers[2],
            (
                HeaderName::Other("X-Switchboard-Contact".to_owned()),
                "0190-def".to_owned()
            )
        );
        let no_contact = ScreenPop::new("http://h:1", ThreadId("t1".to_owned()), None).unwrap();
        assert_eq!(no_contact.headers().len(), 2);
    }

    #[test]
    fn offer_reasons() {
        assert_eq!(
            offer_reason("alice", Some("alice"), 2, "support"),
            "last agent alice"
        );
        assert_eq!(
            offer_reason("bob", Some("alice"), 2, "support"),
            "priority 2 caller in support"
        );
        assert_eq!(
            offer_reason("bob", None, 0, "support"),
            "next caller in support"
        );
    }

    #[test]
    fn ids_that_would_break_a_header_are_refused() {
        assert!(ScreenPop::new("http://h:1", ThreadId("a\r\nX: y".to_owned()), None).is_none());
        assert!(ScreenPop::new("http://h:1", ThreadId(String::new()), None).is_none());
        assert!(
            ScreenPop::new(
                "http://h:1",
                ThreadId("ok".to_owned()),
                Some(ContactId("a>b".to_owned()))
            )
            .is_none()
        );
    }
}
