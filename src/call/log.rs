//! The call's record (DESIGN §7): the CDR row written at INVITE and updated
//! at every step, and the same steps written into the caller's thread. A
//! small task per call does the writes in order, off the call's loop, so a
//! slow database never delays media or signalling; a crash loses nothing
//! already written.

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::sip::message::Request;
use crate::store::{Store, now_ms};
use crate::thread::identity::{E164, parse_phone};
use crate::thread::linking::{LinkResult, record, start_call};
use crate::thread::{CallEvent, NewCall};

/// Sends the call's steps to its log task.
#[derive(Clone)]
pub struct CallLog {
    tx: mpsc::UnboundedSender<CallEvent>,
    /// A voicemail was left: the call ends as `voicemail`.
    voicemail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// 1 once queued, 2 once an agent answered: a caller who leaves while
    /// queued abandoned the queue, not the IVR.
    queue: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

impl CallLog {
    /// Writes the CDR row for `invite` and starts the log task; the routing
    /// facts (contact, thread) arrive on the receiver once looked up.
    /// `trusted` callers (SIP trunks) are identified by P-Asserted-Identity,
    /// others by From (DESIGN §7).
    pub fn begin(
        store: Store,
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
        tokio::spawn(
            async move {
                let row = match start_call(&store, &call, now_ms()).await {
                    Ok((row, link)) => {
                        let _ = link_tx.send(link);
                        row.id
                    }
                    Err(err) => {
                        tracing::error!(cause = %err, "cannot write the call record");
                        return;
                    }
                };
                while let Some(event) = rx.recv().await {
                    if let Err(err) = record(&store, &row, event, now_ms()).await {
                        tracing::error!(cause = %err, "cannot update the call record");
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
            },
            link_rx,
        )
    }

    /// Records one step (in order with the others).
    pub fn record(&self, event: CallEvent) {
        use crate::thread::Disposition;
        use std::sync::atomic::Ordering;
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
            CallEvent::Ended {
                disposition: crate::thread::Disposition::Answered,
            } if self.voicemail.load(Ordering::Relaxed) => CallEvent::Ended {
                disposition: crate::thread::Disposition::Voicemail,
            },
            other => other,
        };
        let _ = self.tx.send(event);
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
