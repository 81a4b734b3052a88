//! Server transactions: INVITE (RFC 3261 §17.2.1 with RFC 6026's Accepted
//! state, plus the UAS core's 2xx retransmission of §13.3.1.4) and
//! non-INVITE (§17.2.2).

use std::time::{Duration, Instant};

use super::key::ServerKey;
use super::timer::{Timer, TimerConfig, TimerTable, next_after};
use super::{Event, Out, ServerTxId, TransactionError, Transmit};
use crate::sip::peer::Peer;

/// The state of a server transaction (Figures 7 and 8 of RFC 3261, RFC 6026 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, nothing sent yet.
    Trying,
    /// INVITE received (100 Trying sent), or a provisional response sent.
    Proceeding,
    /// A final response was sent (non-2xx for INVITE); absorbing retransmissions.
    Completed,
    /// INVITE: the ACK for the non-2xx arrived (Timer I).
    Confirmed,
    /// INVITE: a 2xx was sent; it is retransmitted until its ACK (Timer L).
    Accepted,
    /// Over; the layer removes it.
    Terminated,
}

/// The §13.3.1.4 ACK-matching key of a 2xx: Call-ID, CSeq number, To tag.
pub(crate) type AckKey = (String, u32, String);

#[derive(Debug)]
pub(crate) struct ServerTx {
    pub(crate) id: ServerTxId,
    pub(crate) key: ServerKey,
    pub(crate) invite: bool,
    pub(crate) state: ServerState,
    pub(crate) source: Peer,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    /// The last response sent, for retransmissions.
    last: Option<Vec<u8>>,
    pub(crate) timers: TimerTable,
    /// Current Timer G / 2xx retransmission interval.
    interval: Duration,
    /// Set while a 2xx waits for (or got) its ACK.
    pub(crate) ack_key: Option<AckKey>,
    pub(crate) acked: bool,
}

/// What an incoming ACK did to an INVITE server transaction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Retransmission or ACK for a non-2xx: nothing for the TU.
    Absorbed,
    /// First ACK of the 2xx: the TU hears of it.
    Acked2xx,
}

impl ServerTx {
    pub(crate) fn new(
        id: ServerTxId,
        key: ServerKey,
        invite: bool,
        source: Peer,
        call_id: String,
        cseq: u32,
        cfg: &TimerConfig,
    ) -> ServerTx {
        ServerTx {
            id,
            key,
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            source,
            call_id,
            cseq,
            last: None,
            timers: TimerTable::default(),
            interval: cfg.t1,
            ack_key: None,
            acked: false,
        }
    }

    fn transmit(&self, bytes: Vec<u8>, out: &mut Out) {
        out.transmits.push_back(Transmit {
            dest: self.source,
            bytes,
        });
    }

    fn resend_last(&self, out: &mut Out) {
        if let Some(last) = &self.last {
            self.transmit(last.clone(), out);
        }
    }

    /// The request was received again (§17.2.1, §17.2.2): re-send the last
    /// response, except in Trying (nothing to send) and in Accepted, where
    /// the 2xx has its own retransmission (RFC 6026 §8.7 absorbs it).
    pub(crate) fn on_retransmission(&self, out: &mut Out) {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => self.resend_last(out),
            _ => {}
        }
    }

    /// The TU sends a response (`to_tag` is the response's To tag, for 2xx
    /// ACK matching).
    pub(crate) fn send(
        &mut self,
        status: u16,
        bytes: Vec<u8>,
        to_tag: Option<&str>,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) -> Result<(), TransactionError> {
        if !(100..=699).contains(&status) {
            return Err(TransactionError::BadStatus(status));
        }
        let reliable = self.source.transport.is_reliable();
        match (self.invite, self.state) {
            (true, ServerState::Proceeding) => {
                self.transmit(bytes.clone(), out);
                self.last = Some(bytes);
                if status < 200 {
                    return Ok(());
                }
                if status < 300 {
                    // RFC 6026 §8.7 plus §13.3.1.4: the 2xx is retransmitted
                    // over any transport (hops beyond the next may be UDP).
                    self.state = ServerState::Accepted;
                    self.timers.set(Timer::L, now + cfg.t1x64());
                    self.interval = cfg.t1;
                    self.timers.set(Timer::Retransmit2xx, now + cfg.t1);
                    self.ack_key = Some((
                        self.call_id.clone(),
                        self.cseq,
                        to_tag.unwrap_or("").to_owned(),
                    ));
                } else {
                    self.state = ServerState::Completed;
                    if !reliable {
                        self.interval = cfg.t1;
                        self.timers.set(Timer::G, now + cfg.t1);
                    }
                    self.timers.set(Timer::H, now + cfg.t1x64());
                }
                Ok(())
            }
            (true, ServerState::Accepted) if (200..300).contains(&status) => {
                // A 2xx again from the TU: pass it on (RFC 6026 §8.7).
                self.transmit(bytes.clone(), out);
                self.last = Some(bytes);
                Ok(())
            }
            (false, ServerState::Trying | ServerState::Proceeding) => {
                self.transmit(bytes.clone(), out);
                self.last = Some(bytes);
                if status < 200 {
                    self.state = ServerState::Proceeding;
                } else if reliable {
                    self.terminate();
                } else {
                    self.state = ServerState::Completed;
                    self.timers.set(Timer::J, now + cfg.t1x64());
                }
                Ok(())
            }
            _ => Err(TransactionError::FinalSent),
        }
    }

    /// An ACK matched this INVITE transaction, by branch (§17.2.3) or, for
    /// a 2xx, by Call-ID, CSeq and To tag (§13.3.1.4).
    pub(crate) fn on_ack(&mut self, now: Instant, cfg: &TimerConfig) -> AckOutcome {
        match self.state {
            ServerState::Completed => {
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                if self.source.transport.is_reliable() {
                    self.terminate();
                } else {
                    self.state = ServerState::Confirmed;
                    self.timers.set(Timer::I, now + cfg.t4);
                }
                AckOutcome::Absorbed
            }
            ServerState::Accepted if !self.acked => {
                self.acked = true;
                self.timers.stop(Timer::Retransmit2xx);
                AckOutcome::Acked2xx
            }
            _ => AckOutcome::Absorbed,
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
            Timer::G if self.state == ServerState::Completed => {
                self.resend_last(out);
                self.interval = self.interval.saturating_mul(2).min(cfg.t2);
                self.timers
                    .set(Timer::G, next_after(at, self.interval, now));
            }
            Timer::Retransmit2xx if self.state == ServerState::Accepted && !self.acked => {
                self.resend_last(out);
                self.interval = self.interval.saturating_mul(2).min(cfg.t2);
                self.timers
                    .set(Timer::Retransmit2xx, next_after(at, self.interval, now));
            }
            Timer::H => {
                out.events.push_back(Event::ServerTimeout(self.id));
                self.terminate();
            }
            Timer::L => {
                if !self.acked {
                    out.events.push_back(Event::AckTimeout {
                        tx: self.id,
                        call_id: self.call_id.clone(),
                    });
                }
                self.terminate();
            }
            Timer::I | Timer::J => self.terminate(),
            _ => {}
        }
    }

    pub(crate) fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.timers.stop_all();
    }
}
