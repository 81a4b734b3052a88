//! The SIP endpoint: sorts every inbound message into its transaction,
//! dialog or call, answers what needs no call (OPTIONS, REGISTER, stray
//! requests), starts a call task for each new INVITE to a served number,
//! and carries the calls' responses and requests out through the
//! transaction layer. It is the thin tokio driver around the sans-IO
//! transaction layer and registrar.

mod driver;
pub mod screen;

pub use driver::{Endpoint, EndpointConfig, run_endpoint};

use crate::sip::message::{CSeq, Request, Response};
use crate::sip::peer::Peer;
use crate::sip::transaction::ServerTxId;

/// What the endpoint tells a call task.
#[derive(Debug)]
pub enum CallEvent {
    /// A request within the call's dialog (BYE, re-INVITE, INFO, …).
    Request { tx: ServerTxId, request: Request },
    /// The caller cancelled the INVITE (§9.2); the CANCEL is answered already.
    Cancelled,
    /// An ACK for the call's 2xx (§13.2.2.4).
    Ack(Request),
    /// No ACK came for the 2xx within 64*T1 (§13.3.1.4).
    AckTimeout,
    /// A response to a request the call sent.
    Response(Response),
    /// A request the call sent (named by its CSeq) got no final response
    /// (Timer B/F) or its transport failed.
    RequestFailed(CSeq),
    /// The switch is shutting down: end the call now.
    Shutdown,
}

/// What a call task asks the endpoint to do.
#[derive(Debug)]
pub enum EndpointCommand {
    /// Send a response in a server transaction.
    Respond { tx: ServerTxId, response: Response },
    /// Send a request in a new client transaction; its responses come back
    /// as [`CallEvent::Response`] to the call with this Call-ID.
    Send {
        call_id: String,
        request: Request,
        dest: Peer,
    },
    /// Send an ACK for a 2xx (no transaction).
    Ack { request: Request, dest: Peer },
    /// Place a call (to an agent): the INVITE goes out in a client
    /// transaction, and responses and in-dialog requests for `call_id` come
    /// back on `events`.
    Originate {
        call_id: String,
        request: Request,
        dest: Peer,
        events: tokio::sync::mpsc::UnboundedSender<CallEvent>,
    },
    /// Cancel the pending INVITE the switch sent for `call_id` (§9.1).
    Cancel { call_id: String },
    /// The live registrations of an agent (its reachable devices).
    Contacts {
        login: String,
        reply: tokio::sync::oneshot::Sender<Vec<crate::sip::registrar::Binding>>,
    },
    /// The call is over: forget it.
    Ended { call_id: String },
}
