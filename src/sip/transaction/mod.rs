//! The sans-IO SIP transaction layer (RFC 3261 §17, updated by RFC 6026).
//!
//! [`TransactionLayer`] owns every client and server transaction. It takes
//! parsed messages and the time as input (`handle_*`, `send_*`) and gives
//! back datagrams to send ([`poll_transmit`](TransactionLayer::poll_transmit)),
//! events for the transaction user ([`poll_event`](TransactionLayer::poll_event))
//! and its next deadline ([`poll_timeout`](TransactionLayer::poll_timeout)).
//! It never reads a clock or touches a socket.
//!
//! Choices worth knowing:
//! - The INVITE server transaction also performs the UAS core's 2xx
//!   retransmission (§13.3.1.4) and reports [`Event::AckTimeout`] after
//!   64*T1 without an ACK, so the dialog layer only has to send BYE. That
//!   retransmission runs over TCP too, as §13.3.1.4 asks (later hops may be
//!   UDP); every other retransmission is UDP-only.
//! - Timer A doubles without a cap (§17.1.1.2 caps only non-INVITE requests
//!   and INVITE responses at T2): retransmissions at 0.5, 1.5, 3.5, 7.5,
//!   15.5 and 31.5 s with the default T1.
//! - Responses go back to the peer the request came from (the connection
//!   for TCP, the source address for UDP, as with RFC 3581 `rport`).
//! - Timers D, I, J and K are zero on reliable transports: the transaction
//!   ends at once instead of arming a zero timer.
//! - CANCEL for an INVITE we sent is built and sent here ([`TransactionLayer::cancel`], §9.1).
//! - The layer does not bound how many transactions exist; admission
//!   control (rate limits per source) happens before it. Transactions the
//!   RFC leaves without a timer are the TU's to finish: a request it never
//!   answers, or an INVITE we sent that stays in Proceeding until the TU
//!   cancels it ([`TransactionLayer::cancel`] then bounds it to 64*T1).

mod client;
mod key;
mod server;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::sip::message::{Method, ParseErrorKind, Request, Response};
use crate::sip::peer::Peer;

pub use client::ClientState;
pub use key::MAGIC_COOKIE;
pub use server::ServerState;
pub use timer::{Timer, TimerConfig};

use client::{CancelState, ClientTx};
use key::{ClientKey, ServerKey};
use server::{AckKey, AckOutcome, ServerTx};
use timer::{DeadlineQueue, TxRef};

/// Handle of a server transaction (a request we received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(pub u64);

/// Handle of a client transaction (a request we sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(pub u64);

/// Bytes to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dest: Peer,
    pub bytes: Vec<u8>,
}

/// What an incoming request means for the transaction user (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new request; answer it with [`TransactionLayer::send_response`].
    Request { tx: ServerTxId, request: Request },
    /// A new CANCEL (§9.2), in its own non-INVITE server transaction `tx`.
    /// `cancelled` is the INVITE server transaction it matches, if one still
    /// exists: answer the CANCEL 200 and, when no final response was sent
    /// yet ([`TransactionLayer::server_state`] is `Proceeding`), the INVITE
    /// 487; with `None` answer the CANCEL 481.
    Cancel {
        tx: ServerTxId,
        cancelled: Option<ServerTxId>,
        request: Request,
    },
    /// An ACK outside any transaction: the ACK for a 2xx (§13.2.2.4,
    /// §17.1.1.3). `matched_2xx` is true when it acknowledged a 2xx this
    /// layer was retransmitting (now stopped, §13.3.1.4); ACK
    /// retransmissions for that 2xx are absorbed. An unmatched ACK is the
    /// dialog layer's to judge.
    Ack { request: Request, matched_2xx: bool },
}

/// An event for the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A response for a client transaction (§17.1.1.2, §17.1.2.2). After a
    /// 2xx to INVITE every further 2xx is passed up too (RFC 6026 §8.4) so
    /// the dialog layer can ACK each one.
    Response { tx: ClientTxId, response: Response },
    /// Timer B or F fired (§17.1.1.2, §17.1.2.2), or an INVITE got no final
    /// response within 64*T1 of its CANCEL (§9.1).
    Timeout(ClientTxId),
    /// The transport failed towards the transaction's peer (§17.1.4).
    TransportError(ClientTxId),
    /// No ACK arrived within 64*T1 for the 2xx of this INVITE server
    /// transaction (§13.3.1.4): the UAS should end the dialog with BYE.
    AckTimeout { tx: ServerTxId, call_id: String },
    /// Timer H fired: no ACK for a non-2xx final response (§17.2.1).
    ServerTimeout(ServerTxId),
}

/// Why the transaction user's call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("a final response was already sent")]
    FinalSent,
    #[error("a final response was already received")]
    FinalReceived,
    #[error("status code {0} is outside 100-699")]
    BadStatus(u16),
    #[error("the top Via has no branch starting with z9hG4bK")]
    MissingBranch,
    #[error("a client transaction with this branch and method exists")]
    DuplicateTransaction,
    #[error("ACK is sent outside transactions; use send_ack")]
    AckIsNotATransaction,
    #[error("only INVITE transactions can be cancelled")]
    NotInvite,
    #[error("malformed message: {0}")]
    Malformed(#[from] ParseErrorKind),
}

/// Outputs queued by the machines.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
}

/// Every transaction of one SIP endpoint, and the matching between them
/// and the messages that come and go.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    clients: HashMap<ClientTxId, ClientTx>,
    client_index: HashMap<ClientKey, ClientTxId>,
    servers: HashMap<ServerTxId, ServerTx>,
    server_index: HashMap<ServerKey, ServerTxId>,
    /// 2xx awaiting (or recently given) their ACK, §13.3.1.4.
    ack_index: HashMap<AckKey, ServerTxId>,
    deadlines: DeadlineQueue,
    out: Out,
}

impl TransactionLayer {
    pub fn new(config: TimerConfig) -> TransactionLayer {
        TransactionLayer {
            config,
            next_id: 0,
            clients: HashMap::new(),
            client_index: HashMap::new(),
            servers: HashMap::new(),
            server_index: HashMap::new(),
            ack_index: HashMap::new(),
            deadlines: DeadlineQueue::default(),
            out: Out::default(),
        }
    }

    // ----- getters -----

    /// Number of live transactions, client and server.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// The state of a live server transaction.
    pub fn server_state(&self, tx: ServerTxId) -> Option<ServerState> {
        self.servers.get(&tx).map(|t| t.state)
    }

    /// The state of a live client transaction.
    pub fn client_state(&self, tx: ClientTxId) -> Option<ClientState> {
        self.clients.get(&tx).map(|t| t.state)
    }

    // ----- inputs -----

    /// A request arrived from `source` (§17.2.3 matching). Retransmissions
    /// are absorbed (the last response is re-sent, §17.2.1, §17.2.2); a new
    /// INVITE is answered `100 Trying` at once (§17.2.1). `None` means
    /// nothing for the transaction user (absorbed, or a request without a
    /// readable top Via, CSeq or Call-ID, which the parser already refuses).
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
        source: Peer,
    ) -> Option<Incoming> {
        match self.try_handle_request(now, request, source) {
            Ok(incoming) => incoming,
            Err(err) => {
                tracing::debug!(cause = %err, "request dropped by the transaction layer");
                None
            }
        }
    }

    fn try_handle_request(
        &mut self,
        now: Instant,
        request: Request,
        source: Peer,
    ) -> Result<Option<Incoming>, ParseErrorKind> {
        if request.method == Method::Ack {
            return self.handle_ack(now, request);
        }
        let key = ServerKey::for_request(&request)?;
        if let Some(id) = self.server_index.get(&key).copied() {
            if let Some(tx) = self.servers.get(&id) {
                tracing::trace!(tx = id.0, "request retransmission absorbed");
                tx.on_retransmission(&mut self.out);
            }
            return Ok(None);
        }
        let call_id = request.headers.call_id()?.to_owned();
        let cseq = request.headers.cseq()?.seq;
        let id = ServerTxId(self.alloc_id());
        let invite = request.method == Method::Invite;
        let mut tx = ServerTx::new(
            id,
            key.clone(),
            invite,
            source,
            call_id.clone(),
            cseq,
            &self.config,
        );
        if invite {
            // §17.2.1: 100 Trying at once so the client stops retransmitting.
            let trying = Response::for_request(&request, 100, "Trying");
            // A 1xx in Proceeding cannot be refused.
            let _ = tx.send(
                100,
                trying.to_bytes(),
                None,
                now,
                &self.config,
                &mut self.out,
            );
        }
        let cancelled = if request.method == Method::Cancel {
            ServerKey::with_method(&request.headers, Method::Invite)
                .ok()
                .and_then(|k| self.server_index.get(&k).copied())
                .filter(|inv| {
                    self.servers
                        .get(inv)
                        .is_some_and(|t| t.invite && t.call_id == call_id && t.cseq == cseq)
                })
        } else {
            None
        };
        self.server_index.insert(key, id);
        self.servers.insert(id, tx);
        self.reschedule(TxRef::Server(id.0));
        Ok(Some(if request.method == Method::Cancel {
            Incoming::Cancel {
                tx: id,
                cancelled,
                request,
            }
        } else {
            Incoming::Request { tx: id, request }
        }))
    }

    /// ACK: for a non-2xx it belongs to the INVITE server transaction
    /// (§17.2.1, matched by branch); for a 2xx it is its own transaction and
    /// stops the 2xx retransmission (§13.3.1.4, matched by Call-ID, CSeq
    /// number and To tag).
    fn handle_ack(
        &mut self,
        now: Instant,
        request: Request,
    ) -> Result<Option<Incoming>, ParseErrorKind> {
        let key = ServerKey::for_request(&request)?;
        let by_branch = self.server_index.get(&key).copied();
        let by_dialog = || -> Result<Option<ServerTxId>, ParseErrorKind> {
            let ack_key: AckKey = (
                request.headers.call_id()?.to_owned(),
                request.headers.cseq()?.seq,
                request.headers.to()?.tag().unwrap_or("").to_owned(),
            );
            Ok(self.ack_index.get(&ack_key).copied())
        };
        let Some(id) = by_branch.or(by_dialog()?) else {
            return Ok(Some(Incoming::Ack {
                request,
                matched_2xx: false,
            }));
        };
        let Some(tx) = self.servers.get_mut(&id) else {
            return Ok(None);
        };
        let outcome = tx.on_ack(now, &self.config);
        self.reschedule(TxRef::Server(id.0));
        Ok(match outcome {
            AckOutcome::Absorbed => None,
            AckOutcome::Acked2xx => Some(Incoming::Ack {
                request,
                matched_2xx: true,
            }),
        })
    }

    /// A response arrived. Matched to a client transaction by top Via branch
    /// and CSeq method (§17.1.3), it becomes [`Event::Response`] (or is
    /// absorbed) and `None` is returned. An unmatched response is returned
    /// as stray: a 2xx retransmission after the transaction ended is for the
    /// dialog layer to ACK again (§13.2.2.4); anything else is dropped.
    pub fn handle_response(&mut self, now: Instant, response: Response) -> Option<Response> {
        let key = match ClientKey::for_response(&response) {
            Ok(Some(key)) => key,
            Ok(None) => return Some(response),
            Err(err) => {
                tracing::debug!(cause = %err, "response dropped by the transaction layer");
                return None;
            }
        };
        let Some(id) = self.client_index.get(&key).copied() else {
            return Some(response);
        };
        let Some(tx) = self.clients.get_mut(&id) else {
            return Some(response);
        };
        let send_cancel = tx.on_response(response, now, &self.config, &mut self.out);
        if send_cancel {
            self.start_cancel(now, id);
        }
        self.reschedule(TxRef::Client(id.0));
        None
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each pass fires one timer or drops one stale entry; the bound only
        // guards against a logic error looping forever.
        let mut budget = 4 * self.deadlines.len() + 64;
        while let Some((at, tx)) = self.deadlines.peek() {
            if at > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.deadlines.pop();
            let fired = match tx {
                TxRef::Client(raw) => match self.clients.get_mut(&ClientTxId(raw)) {
                    Some(t) if t.timers.next_deadline() == Some(at) => {
                        t.timers.pop_expired(now).map(|timer| {
                            t.on_timer(timer, at, now, &self.config, &mut self.out);
                        })
                    }
                    _ => None,
                },
                TxRef::Server(raw) => match self.servers.get_mut(&ServerTxId(raw)) {
                    Some(t) if t.timers.next_deadline() == Some(at) => {
                        t.timers.pop_expired(now).map(|timer| {
                            t.on_timer(timer, at, now, &self.config, &mut self.out);
                        })
                    }
                    _ => None,
                },
            };
            if fired.is_some() {
                self.reschedule(tx);
            }
        }
    }

    /// The transport could not reach `dest` (§17.1.4): every client
    /// transaction towards it ends with [`Event::TransportError`].
    pub fn handle_transport_error(&mut self, _now: Instant, dest: Peer) {
        let mut hit: Vec<ClientTxId> = self
            .clients
            .values()
            .filter(|t| t.dest == dest)
            .map(|t| t.id)
            .collect();
        hit.sort();
        for id in hit {
            if let Some(tx) = self.clients.get_mut(&id) {
                if !tx.internal {
                    self.out.events.push_back(Event::TransportError(id));
                }
                tx.terminate();
            }
            self.reschedule(TxRef::Client(id.0));
        }
    }

    // ----- mutators -----

    /// Sends a response in server transaction `tx` (§17.2.1, §17.2.2).
    pub fn send_response(
        &mut self,
        now: Instant,
        tx: ServerTxId,
        response: Response,
    ) -> Result<(), TransactionError> {
        let t = self
            .servers
            .get_mut(&tx)
            .ok_or(TransactionError::UnknownTransaction)?;
        let to_tag = if response.is_success() {
            response.headers.to()?.tag().map(str::to_owned)
        } else {
            None
        };
        t.send(
            response.status,
            response.to_bytes(),
            to_tag.as_deref(),
            now,
            &self.config,
            &mut self.out,
        )?;
        if let Some(key) = &t.ack_key {
            self.ack_index.insert(key.clone(), tx);
        }
        self.reschedule(TxRef::Server(tx.0));
        Ok(())
    }

    /// Sends a request in a new client transaction (§17.1.1, §17.1.2). The
    /// top Via must carry a branch from [`new_branch`].
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        dest: Peer,
    ) -> Result<ClientTxId, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckIsNotATransaction);
        }
        let key = ClientKey::for_request(&request)?.ok_or(TransactionError::MissingBranch)?;
        if self.client_index.contains_key(&key) {
            return Err(TransactionError::DuplicateTransaction);
        }
        let id = ClientTxId(self.alloc_id());
        let tx = ClientTx::start(
            id,
            key.clone(),
            request,
            dest,
            now,
            &self.config,
            &mut self.out,
        );
        self.client_index.insert(key, id);
        self.clients.insert(id, tx);
        self.reschedule(TxRef::Client(id.0));
        Ok(id)
    }

    /// Sends an ACK for a 2xx, built by the dialog layer (§13.2.2.4). It is
    /// no transaction: one transmission, repeated by the dialog layer for
    /// each retransmitted 2xx.
    pub fn send_ack(&mut self, ack: &Request, dest: Peer) {
        self.send_stateless(ack.to_bytes(), dest);
    }

    /// Sends bytes outside any transaction (a stateless 400, §8.2.2).
    pub fn send_stateless(&mut self, bytes: Vec<u8>, dest: Peer) {
        self.out.transmits.push_back(Transmit { dest, bytes });
    }

    /// Cancels the INVITE client transaction `tx` (§9.1): the CANCEL goes
    /// out now if a provisional response arrived, else on the first one. If
    /// the INVITE gets no final response within 64*T1 of the CANCEL it ends
    /// with [`Event::Timeout`]. The INVITE's 487 arrives as usual.
    pub fn cancel(&mut self, now: Instant, tx: ClientTxId) -> Result<(), TransactionError> {
        let t = self
            .clients
            .get_mut(&tx)
            .ok_or(TransactionError::UnknownTransaction)?;
        if !t.is_invite() {
            return Err(TransactionError::NotInvite);
        }
        match (t.state, t.cancel) {
            (
                ClientState::Calling | ClientState::Proceeding,
                CancelState::Pending | CancelState::Sent,
            ) => Ok(()),
            (ClientState::Calling, CancelState::None) => {
                t.cancel = CancelState::Pending;
                Ok(())
            }
            (ClientState::Proceeding, CancelState::None) => {
                self.start_cancel(now, tx);
                self.reschedule(TxRef::Client(tx.0));
                Ok(())
            }
            _ => Err(TransactionError::FinalReceived),
        }
    }

    fn start_cancel(&mut self, now: Instant, invite: ClientTxId) {
        let Some(t) = self.clients.get_mut(&invite) else {
            return;
        };
        t.cancel = CancelState::Sent;
        t.timers.set(Timer::B, now + self.config.t1x64());
        let cancel = client::build_cancel(&t.request);
        let dest = t.dest;
        let Ok(Some(key)) = ClientKey::for_request(&cancel) else {
            return;
        };
        if self.client_index.contains_key(&key) {
            return;
        }
        let id = ClientTxId(self.alloc_id());
        let mut tx = ClientTx::start(
            id,
            key.clone(),
            cancel,
            dest,
            now,
            &self.config,
            &mut self.out,
        );
        tx.internal = true;
        self.client_index.insert(key, id);
        self.clients.insert(id, tx);
        self.reschedule(TxRef::Client(id.0));
    }

    // ----- outputs -----

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some((at, tx)) = self.deadlines.peek() {
            if self.next_deadline_of(tx) == Some(at) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    // ----- internals -----

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn next_deadline_of(&self, tx: TxRef) -> Option<Instant> {
        match tx {
            TxRef::Client(raw) => self.clients.get(&ClientTxId(raw))?.timers.next_deadline(),
            TxRef::Server(raw) => self.servers.get(&ServerTxId(raw))?.timers.next_deadline(),
        }
    }

    /// After a transaction changed: removes it when terminated, else queues
    /// its next deadline.
    fn reschedule(&mut self, tx: TxRef) {
        match tx {
            TxRef::Client(raw) => {
                let id = ClientTxId(raw);
                let Some(t) = self.clients.get(&id) else {
                    return;
                };
                if t.state == ClientState::Terminated {
                    if let Some(t) = self.clients.remove(&id) {
                        self.client_index.remove(&t.key);
                        tracing::trace!(tx = raw, "client transaction terminated");
                    }
                } else if let Some(at) = t.timers.next_deadline() {
                    self.deadlines.push(at, tx);
                }
            }
            TxRef::Server(raw) => {
                let id = ServerTxId(raw);
                let Some(t) = self.servers.get(&id) else {
                    return;
                };
                if t.state == ServerState::Terminated {
                    if let Some(t) = self.servers.remove(&id) {
                        self.server_index.remove(&t.key);
                        if let Some(k) = &t.ack_key
                            && self.ack_index.get(k) == Some(&id)
                        {
                            self.ack_index.remove(k);
                        }
                        tracing::trace!(tx = raw, "server transaction terminated");
                    }
                } else if let Some(at) = t.timers.next_deadline() {
                    self.deadlines.push(at, tx);
                }
            }
        }
    }
}

/// A fresh RFC 3261 branch: the magic cookie and 96 random bits (§8.1.1.7).
pub fn new_branch() -> String {
    format!(
        "{MAGIC_COOKIE}{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// A fresh From/To tag with 64 random bits (§19.3 asks for at least 32).
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}
