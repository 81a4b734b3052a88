//! Client transactions: INVITE (RFC 3261 §17.1.1, with RFC 6026's
//! Accepted state) and non-INVITE (§17.1.2).

use std::time::{Duration, Instant};

use super::key::ClientKey;
use super::timer::{Timer, TimerConfig, TimerTable, next_after};
use super::{ClientTxId, Event, Out, Transmit};
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::peer::Peer;

/// The state of a client transaction (Figures 5 and 6 of RFC 3261, RFC 6026 Figure 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, no response yet.
    Calling,
    /// Non-INVITE sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A non-2xx final (INVITE) or any final (non-INVITE) arrived.
    Completed,
    /// INVITE: a 2xx arrived; further 2xx are passed up (RFC 6026 §8.4).
    Accepted,
    /// Over; the layer removes it.
    Terminated,
}

/// Client-side CANCEL progress for an INVITE (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelState {
    None,
    /// Asked for before any provisional response: sent on the first one.
    Pending,
    Sent,
}

#[derive(Debug)]
pub(crate) struct ClientTx {
    pub(crate) id: ClientTxId,
    pub(crate) key: ClientKey,
    pub(crate) state: ClientState,
    pub(crate) request: Request,
    bytes: Vec<u8>,
    pub(crate) dest: Peer,
    pub(crate) timers: TimerTable,
    /// Current Timer A / E interval.
    interval: Duration,
    /// The ACK for a non-2xx final response, re-sent on its retransmissions.
    ack: Option<Vec<u8>>,
    pub(crate) cancel: CancelState,
    /// A CANCEL the layer sends on the TU's behalf: no events for it.
    pub(crate) internal: bool,
}

impl ClientTx {
    /// Creates the transaction and sends the request (§17.1.1.2, §17.1.2.2).
    pub(crate) fn start(
        id: ClientTxId,
        key: ClientKey,
        request: Request,
        dest: Peer,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) -> ClientTx {
        let bytes = request.to_bytes();
        out.transmits.push_back(Transmit {
            dest,
            bytes: bytes.clone(),
        });
        let mut timers = TimerTable::default();
        let invite = request.method == Method::Invite;
        let (retransmit, timeout, state) = if invite {
            (Timer::A, Timer::B, ClientState::Calling)
        } else {
            (Timer::E, Timer::F, ClientState::Trying)
        };
        if !dest.transport.is_reliable() {
            timers.set(retransmit, now + cfg.t1);
        }
        timers.set(timeout, now + cfg.t1x64());
        ClientTx {
            id,
            key,
            state,
            request,
            bytes,
            dest,
            timers,
            interval: cfg.t1,
            ack: None,
            cancel: CancelState::None,
            internal: false,
        }
    }

    pub(crate) fn is_invite(&self) -> bool {
        self.request.method == Method::Invite
    }

    fn emit(&self, out: &mut Out, event: Event) {
        if !self.internal {
            out.events.push_back(event);
        }
    }

    /// A response matched this transaction. Returns true when a pending
    /// CANCEL should now be sent (§9.1).
    pub(crate) fn on_response(
        &mut self,
        resp: Response,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) -> bool {
        if self.is_invite() {
            self.on_invite_response(resp, now, cfg, out)
        } else {
            self.on_non_invite_response(resp, now, cfg, out);
            false
        }
    }

    /// §17.1.1.2 and RFC 6026 §8.4.
    fn on_invite_response(
        &mut self,
        resp: Response,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) -> bool {
        let reliable = self.dest.transport.is_reliable();
        match self.state {
            ClientState::Calling | ClientState::Proceeding => {
                let was_calling = self.state == ClientState::Calling;
                self.timers.stop(Timer::A);
                if resp.is_provisional() {
                    self.state = ClientState::Proceeding;
                    if self.cancel == CancelState::None {
                        // Timer B only guards the Calling state (Figure 5).
                        self.timers.stop(Timer::B);
                    }
                    self.emit(
                        out,
                        Event::Response {
                            tx: self.id,
                            response: resp,
                        },
                    );
                    return was_calling && self.cancel == CancelState::Pending;
                }
                self.timers.stop(Timer::B);
                if resp.is_success() {
                    self.state = ClientState::Accepted;
                    self.timers.set(Timer::M, now + cfg.t1x64());
                } else {
                    let ack = build_ack(&self.request, &resp).to_bytes();
                    out.transmits.push_back(Transmit {
                        dest: self.dest,
                        bytes: ack.clone(),
                    });
                    self.ack = Some(ack);
                    if reliable {
                        self.state = ClientState::Terminated;
                    } else {
                        self.state = ClientState::Completed;
                        self.timers.set(Timer::D, now + cfg.timer_d());
                    }
                }
                self.emit(
                    out,
                    Event::Response {
                        tx: self.id,
                        response: resp,
                    },
                );
            }
            ClientState::Completed => {
                // A retransmitted non-2xx final: ACK again, nothing for the TU.
                if !resp.is_provisional()
                    && !resp.is_success()
                    && let Some(ack) = &self.ack
                {
                    out.transmits.push_back(Transmit {
                        dest: self.dest,
                        bytes: ack.clone(),
                    });
                }
            }
            ClientState::Accepted => {
                // Every 2xx goes up so the dialog layer can ACK it (RFC 6026 §8.4).
                if resp.is_success() {
                    self.emit(
                        out,
                        Event::Response {
                            tx: self.id,
                            response: resp,
                        },
                    );
                }
            }
            ClientState::Trying | ClientState::Terminated => {}
        }
        false
    }

    /// §17.1.2.2.
    fn on_non_invite_response(
        &mut self,
        resp: Response,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if resp.is_provisional() {
                    self.state = ClientState::Proceeding;
                } else {
                    self.timers.stop_all();
                    if self.dest.transport.is_reliable() {
                        self.state = ClientState::Terminated;
                    } else {
                        self.state = ClientState::Completed;
                        self.timers.set(Timer::K, now + cfg.t4);
                    }
                }
                self.emit(
                    out,
                    Event::Response {
                        tx: self.id,
                        response: resp,
                    },
                );
            }
            _ => {}
        }
    }

    /// A timer that was due at `at` fired.
    pub(crate) fn on_timer(
        &mut self,
        timer: Timer,
        at: Instant,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) {
        match timer {
            Timer::A if self.state == ClientState::Calling => {
                // Intervals double with no cap for INVITE (§17.1.1.2).
                self.retransmit(out);
                self.interval = self.interval.saturating_mul(2);
                self.timers
                    .set(Timer::A, next_after(at, self.interval, now));
            }
            Timer::E if matches!(self.state, ClientState::Trying | ClientState::Proceeding) => {
                self.retransmit(out);
                self.interval = if self.state == ClientState::Trying {
                    self.interval.saturating_mul(2).min(cfg.t2)
                } else {
                    cfg.t2
                };
                self.timers
                    .set(Timer::E, next_after(at, self.interval, now));
            }
            Timer::B | Timer::F => {
                self.emit(out, Event::Timeout(self.id));
                self.terminate();
            }
            Timer::D | Timer::K | Timer::M => self.terminate(),
            _ => {}
        }
    }

    fn retransmit(&self, out: &mut Out) {
        out.transmits.push_back(Transmit {
            dest: self.dest,
            bytes: self.bytes.clone(),
        });
    }

    pub(crate) fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.timers.stop_all();
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): Request-URI, Call-ID,
/// From, the top Via and the Route set of the INVITE, the To of the
/// response, CSeq number of the INVITE with method ACK.
pub(crate) fn build_ack(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers: Default::default(),
        body: Vec::new(),
    };
    let h = &mut ack.headers;
    if let Some(via) = invite.headers.values(&HeaderName::Via).first() {
        h.push(HeaderName::Via, *via);
    }
    h.push(HeaderName::MaxForwards, "70");
    copy(invite, &HeaderName::From, h);
    if let Some(to) = resp.headers.get(&HeaderName::To) {
        h.push(HeaderName::To, to);
    }
    copy(invite, &HeaderName::CallId, h);
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
    h.push(HeaderName::CSeq, format!("{seq} ACK"));
    for route in invite.headers.get_all(&HeaderName::Route) {
        h.push(HeaderName::Route, route);
    }
    ack
}

/// The CANCEL for an INVITE (§9.1): same Request-URI, Call-ID, From, To,
/// CSeq number and top Via (so the same branch) and Route set.
pub(crate) fn build_cancel(invite: &Request) -> Request {
    let mut cancel = Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers: Default::default(),
        body: Vec::new(),
    };
    let h = &mut cancel.headers;
    if let Some(via) = invite.headers.values(&HeaderName::Via).first() {
        h.push(HeaderName::Via, *via);
    }
    h.push(HeaderName::MaxForwards, "70");
    copy(invite, &HeaderName::From, h);
    copy(invite, &HeaderName::To, h);
    copy(invite, &HeaderName::CallId, h);
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
    h.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    for route in invite.headers.get_all(&HeaderName::Route) {
        h.push(HeaderName::Route, route);
    }
    cancel
}

fn copy(from: &Request, name: &HeaderName, into: &mut crate::sip::message::Headers) {
    if let Some(v) = from.headers.get(name) {
        into.push(name.clone(), v);
    }
}
