//! The answering side of a bridged load run (DESIGN §9, "bridged
//! caller↔agent calls"): a thread with its own SIP socket that plays the
//! agents' phones. The switch's flow transfers each generated call to this
//! socket's URI; every INVITE is answered at once with a 200 and an SDP
//! answer (RFC 3264 §6), the 2xx is retransmitted until the ACK comes
//! (RFC 3261 §13.3.1.4), and each answered call sends 20 ms frames and
//! receives the caller's audio relayed by the switch until the switch's
//! BYE (§15.1.2).
//!
//! Both ends of every bridged call live in this process, so every audio
//! frame carries its send time ([`super::rtp::write_tag`]) and the far end
//! measures the switch's added delay on one clock: send time at one end,
//! kernel arrival time at the other. As on the calling side, RTP is read
//! at each call's frame slot rather than when it arrives (the arrival time
//! is the kernel's timestamp either way).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::media::rtp::{RTP_HEADER_LEN, RtpPacket, RtpSender};
use crate::media::sdp::SessionDescription;
use crate::sip::message::{HeaderName, Limits, Message, Method, Request, Response, parse_message};

use super::rtp::{
    FRAME_SAMPLES, enable_timestamps, read_tag, realtime_ns, recv_timestamped, write_tag,
};
use super::sip::{answer, answer_rtp, sdp_offer};
use super::stats::{Histogram, StreamStats};
use super::worker::{FRAME, Shared, TICK, frames_missed, reads_at_slot};
use super::{CallgenError, Codec};

/// RFC 3261 §13.3.1.4: the 2xx is retransmitted from T1, doubling up to
/// T2, until the ACK or 64×T1.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_H: Duration = Duration::from_secs(32);
const SIP: Token = Token(usize::MAX);
const MAX_READS: usize = 256;
/// How long the answering side waits for the switch's last BYEs once
/// every caller is done.
const LINGER: Duration = Duration::from_secs(5);

/// What the answering side hands back.
#[derive(Debug, Default)]
pub(super) struct AgentResult {
    /// INVITEs answered with a 200.
    pub answered: u64,
    /// INVITEs refused (no SDP offer of a G.711 law, no RTP port).
    pub refused: u64,
    /// Answered calls the switch ended with BYE.
    pub ended_by_switch: u64,
    /// Answered calls never ACKed (the 2xx retransmissions ran out).
    pub not_acked: u64,
    /// Calls still up when the run ended.
    pub still_up: u64,
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub lost: u64,
    pub out_of_order: u64,
    /// Answered calls that received no RTP.
    pub silent_calls: u64,
    /// RFC 3550 A.8 jitter of each call's received stream, in seconds.
    pub jitter: Vec<f64>,
    /// Each tagged packet's delay from the caller's send to its arrival
    /// here, in ns.
    pub delays: Histogram,
    /// Per answered call: the 200's send to the arrival of the first
    /// packet of the caller's audio (tagged by the caller), in ns.
    pub answer_to_audio_ns: Vec<i64>,
    pub late_ticks: u64,
}

#[derive(Debug)]
struct AnsweredCall {
    /// The last 2xx sent (retransmitted until the ACK).
    ok: Vec<u8>,
    /// Where the switch's requests come from: responses go there.
    peer: SocketAddr,
    acked: bool,
    answered_at: Instant,
    /// Wall-clock time (ns, the clock of the receive timestamps) of the
    /// 200's first send, and of the first caller packet's arrival.
    answered_ns: i64,
    first_heard_ns: Option<i64>,
    next_retx: Instant,
    interval: Duration,
    rtp: Option<mio::net::UdpSocket>,
    remote_rtp: SocketAddr,
    codec: Codec,
    sender: RtpSender,
    frame: u64,
    /// When the next frame is due (the first at the tick after the answer).
    next_frame: Instant,
    media_ts: u32,
    rx: StreamStats,
    done: bool,
}

/// Binds the answering side's SIP socket (before any call is placed, so
/// the switch finds it listening).
pub(super) fn bind(addr: SocketAddr) -> Result<mio::net::UdpSocket, CallgenError> {
    mio::net::UdpSocket::bind(addr).map_err(CallgenError::AgentSocket)
}

/// Answers calls on `sip` until every caller worker is done and the
/// switch has ended its calls (or [`LINGER`] passed).
pub(super) fn run(
    shared: Arc<Shared>,
    mut sip: mio::net::UdpSocket,
) -> Result<AgentResult, CallgenError> {
    let poll = Poll::new().map_err(CallgenError::Poll)?;
    poll.registry()
        .register(&mut sip, SIP, Interest::READABLE)
        .map_err(CallgenError::Poll)?;
    let local = sip.local_addr().map_err(CallgenError::AgentSocket)?;
    let mut agent = Agent {
        shared: &shared,
        poll,
        sip,
        local,
        calls: Vec::new(),
        by_call_id: HashMap::new(),
        live: 0,
        buf: vec![0u8; 65536],
        out: vec![0u8; 1500],
        result: AgentResult::default(),
        rng: rand::rng(),
        next_tick: Instant::now(),
    };
    let mut events = Events::with_capacity(1024);
    let mut tick = Instant::now();
    let mut done_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if shared.callers_done.load(Ordering::Acquire) {
            let since = *done_since.get_or_insert(now);
            if agent.live == 0 || now >= since + LINGER {
                break;
            }
        }
        if now >= tick {
            tick += TICK;
            while tick <= now {
                tick += TICK;
            }
            agent.next_tick = tick;
            agent.tick(now);
            continue;
        }
        // Wake at least every tick to notice the callers finishing.
        match agent.poll.poll(&mut events, Some(tick - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CallgenError::Poll(e)),
        }
        for ev in &events {
            if ev.token() == SIP {
                agent.read_sip();
            }
        }
    }
    for i in 0..agent.calls.len() {
        if !agent.calls[i].done {
            agent.result.still_up += 1;
            agent.finish(i);
        }
    }
    Ok(agent.result)
}

struct Agent<'a> {
    shared: &'a Shared,
    poll: Poll,
    sip: mio::net::UdpSocket,
    local: SocketAddr,
    calls: Vec<AnsweredCall>,
    by_call_id: HashMap<String, usize>,
    /// Answered calls not yet ended.
    live: usize,
    buf: Vec<u8>,
    out: Vec<u8>,
    result: AgentResult,
    rng: rand::rngs::ThreadRng,
    /// When the next tick is due: a new call's first frame slot.
    next_tick: Instant,
}

impl Agent<'_> {
    fn read_sip(&mut self) {
        for _ in 0..MAX_READS * 16 {
            let (n, from) = match self.sip.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let Some(data) = self.buf.get(..n) else {
                continue;
            };
            // Responses (to nothing we sent) and garbage are ignored.
            let Ok(Message::Request(req)) = parse_message(data, &Limits::default()) else {
                continue;
            };
            self.handle_request(&req, from, Instant::now());
        }
    }

    fn respond(&self, bytes: &[u8], to: SocketAddr) {
        // A full buffer drops it; the peer's retransmissions cover that.
        let _ = self.sip.send_to(bytes, to);
    }

    fn handle_request(&mut self, req: &Request, from: SocketAddr, now: Instant) {
        let index = req
            .headers
            .call_id()
            .ok()
            .and_then(|id| self.by_call_id.get(id).copied());
        match (&req.method, index) {
            (Method::Invite, None) => self.answer_invite(req, from, now),
            // A retransmitted INVITE or a re-INVITE: the same answer.
            (Method::Invite, Some(i)) => {
                if let Some(call) = self.calls.get_mut(i)
                    && !call.done
                {
                    let ok = ok_response(req, &call.ok, self.local);
                    call.ok = ok;
                    let bytes = call.ok.clone();
                    self.respond(&bytes, from);
                }
            }
            (Method::Ack, Some(i)) => {
                if let Some(call) = self.calls.get_mut(i) {
                    call.acked = true;
                }
            }
            (Method::Ack, None) => {}
            (Method::Bye, Some(i)) => {
                self.respond(&answer(req, 200, "OK"), from);
                if self.calls.get(i).is_some_and(|c| !c.done) {
                    self.result.ended_by_switch += 1;
                    self.finish(i);
                }
            }
            (Method::Bye | Method::Cancel, None) => {
                self.respond(&answer(req, 481, "Call/Transaction Does Not Exist"), from);
            }
            // The call is answered at once: nothing left to cancel
            // (RFC 3261 §9.2).
            (Method::Cancel, Some(_)) => self.respond(&answer(req, 200, "OK"), from),
            (Method::Options | Method::Info | Method::Notify, _) => {
                self.respond(&answer(req, 200, "OK"), from);
            }
            _ => self.respond(&answer(req, 501, "Not Implemented"), from),
        }
    }

    /// RFC 3264 §6: answers with the run's G.711 law if offered, else the
    /// other one, plus telephone-event.
    fn answer_invite(&mut self, req: &Request, from: SocketAddr, now: Instant) {
        let offered = SessionDescription::parse(&req.body).ok().and_then(|sdp| {
            let (_, media) = sdp.audio().find(|(_, m)| m.port != 0)?;
            let has = |c: Codec| {
                media
                    .formats
                    .iter()
                    .any(|f| *f == c.payload_type().to_string())
            };
            let want = self.shared.config.codec;
            let other = match want {
                Codec::Pcmu => Codec::Pcma,
                Codec::Pcma => Codec::Pcmu,
            };
            [want, other].into_iter().find(|&c| has(c))
        });
        let (Some(codec), Some(remote_rtp)) = (offered, answer_rtp(&req.body)) else {
            self.result.refused += 1;
            self.respond(&answer(req, 488, "Not Acceptable Here"), from);
            return;
        };
        let cfg = &self.shared.config;
        let sock = match self.shared.ports.bind(cfg.local_ip) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cause = %e, "agent call not answered");
                self.result.refused += 1;
                self.respond(&answer(req, 503, "Service Unavailable"), from);
                return;
            }
        };
        let index = self.calls.len();
        let Ok(rtp_addr) = sock.local_addr() else {
            self.result.refused += 1;
            self.respond(&answer(req, 503, "Service Unavailable"), from);
            return;
        };
        if !enable_timestamps(&sock) {
            self.shared.user_timestamps.store(true, Ordering::Relaxed);
        }
        let tag = format!("cga{index}");
        let body = sdp_offer(codec, rtp_addr);
        let ok = ok_with_tag(req, &tag, self.local, body);
        self.respond(&ok, from);
        let answered_ns = realtime_ns();
        let sender = RtpSender::random(&mut self.rng);
        let media_ts = sender.next_timestamp();
        if let Ok(id) = req.headers.call_id() {
            self.by_call_id.insert(id.to_owned(), index);
        }
        self.calls.push(AnsweredCall {
            ok,
            peer: from,
            acked: false,
            answered_at: now,
            answered_ns,
            first_heard_ns: None,
            next_retx: now + T1,
            interval: T1,
            rtp: Some(sock),
            remote_rtp,
            codec,
            sender,
            frame: 0,
            next_frame: self.next_tick,
            media_ts,
            rx: StreamStats::default(),
            done: false,
        });
        self.live += 1;
        self.result.answered += 1;
    }

    fn tick(&mut self, now: Instant) {
        for i in 0..self.calls.len() {
            let Some(call) = self.calls.get_mut(i) else {
                continue;
            };
            if call.done {
                continue;
            }
            let mut retransmit = None;
            if !call.acked && now >= call.next_retx {
                if now >= call.answered_at + TIMER_H {
                    self.result.not_acked += 1;
                    self.finish(i);
                    continue;
                }
                call.interval = (call.interval * 2).min(T2);
                call.next_retx = now + call.interval;
                retransmit = Some((call.ok.clone(), call.peer));
            }
            let mut frame = None;
            if now >= call.next_frame {
                let missed = frames_missed(call.next_frame, now);
                call.next_frame += FRAME * (1 + missed) as u32;
                frame = Some(missed);
            }
            if let Some((ok, peer)) = retransmit {
                self.respond(&ok, peer);
            }
            if let Some(missed) = frame {
                if missed > 0 {
                    self.result.late_ticks += 1;
                }
                let frame = self.calls.get(i).map_or(0, |c| c.frame);
                self.read_rtp(i, reads_at_slot(frame));
                self.send_frame(i, missed);
            }
        }
    }

    /// One 20 ms frame, its payload tagged with the send time.
    fn send_frame(&mut self, index: usize, missed: u64) {
        let Some(call) = self.calls.get_mut(index) else {
            return;
        };
        let Some(sock) = &call.rtp else {
            return;
        };
        let ts = call
            .media_ts
            .wrapping_add((call.frame as u32).wrapping_mul(FRAME_SAMPLES as u32));
        call.frame += 1 + missed;
        let frame = self.shared.frames.frame(call.frame);
        let Ok(len) = call.sender.next_packet_at(
            call.codec.payload_type(),
            frame,
            ts,
            call.frame == 1,
            &mut self.out,
        ) else {
            return;
        };
        if let Some(payload) = self.out.get_mut(RTP_HEADER_LEN..len) {
            write_tag(payload, realtime_ns());
        }
        let _ = sock.send_to(&self.out[..len], call.remote_rtp);
    }

    /// Reads up to `reads` datagrams queued on the call's RTP socket.
    fn read_rtp(&mut self, index: usize, reads: usize) {
        let Some(call) = self.calls.get_mut(index) else {
            return;
        };
        let Some(sock) = &call.rtp else {
            return;
        };
        for _ in 0..reads {
            let (n, at) = match recv_timestamped(sock, &mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let Some(Ok(pkt)) = self.buf.get(..n).map(RtpPacket::parse) else {
                continue;
            };
            call.rx
                .handle_packet(pkt.ssrc(), pkt.sequence(), pkt.timestamp(), at);
            if let Some(sent) = read_tag(pkt.payload()) {
                self.result
                    .delays
                    .record(u64::try_from(at - sent).unwrap_or(0));
                call.first_heard_ns.get_or_insert(at);
            }
        }
    }

    /// Ends a call: its socket closes and its statistics are kept.
    fn finish(&mut self, index: usize) {
        let Some(call) = self.calls.get_mut(index) else {
            return;
        };
        if call.done {
            return;
        }
        call.done = true;
        self.live = self.live.saturating_sub(1);
        // What the switch relayed since the last slot.
        self.read_rtp(index, MAX_READS);
        let Some(call) = self.calls.get_mut(index) else {
            return;
        };
        call.rtp = None;
        let rx = std::mem::take(&mut call.rx);
        let r = &mut self.result;
        r.sent += u64::from(call.sender.packets_sent());
        r.received += rx.received;
        r.expected += rx.expected();
        r.lost += rx.lost();
        r.out_of_order += rx.out_of_order;
        if rx.received == 0 {
            r.silent_calls += 1;
        } else if rx.received > 1 {
            r.jitter.push(rx.jitter_seconds());
        }
        if let Some(heard) = call.first_heard_ns {
            r.answer_to_audio_ns.push((heard - call.answered_ns).max(0));
        }
        call.ok = Vec::new();
    }
}

/// The 200 for a new INVITE: To gets our tag (RFC 3261 §12.1.1), a
/// Contact and the SDP answer.
fn ok_with_tag(req: &Request, tag: &str, local: SocketAddr, sdp: String) -> Vec<u8> {
    let mut resp = Response::for_request(req, 200, "OK");
    if let Some(to) = req.headers.get(&HeaderName::To) {
        let to = if to.contains(";tag=") {
            to.to_owned()
        } else {
            format!("{to};tag={tag}")
        };
        resp.headers.set(HeaderName::To, to);
    }
    resp.headers
        .push(HeaderName::Contact, format!("<sip:agent@{local}>"));
    resp.headers
        .push(HeaderName::ContentType, "application/sdp");
    resp.body = sdp.into_bytes();
    resp.to_bytes()
}

/// The 200 for a retransmitted INVITE or a re-INVITE of an answered call:
/// the To tag and SDP of the first answer, the CSeq and Via of this
/// request.
fn ok_response(req: &Request, first: &[u8], local: SocketAddr) -> Vec<u8> {
    let Ok(Message::Response(first)) = parse_message(first, &Limits::default()) else {
        return answer(req, 500, "Server Internal Error");
    };
    let tag = first
        .headers
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned))
        .unwrap_or_default();
    let sdp = String::from_utf8_lossy(&first.body).into_owned();
    ok_with_tag(req, &tag, local, sdp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(to: &str) -> Request {
        let text = format!(
            "INVITE sip:agent@127.0.0.1:5090 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsw1;rport\r\n\
From: <sip:caller@127.0.0.1>;tag=sw\r\nTo: {to}\r\nCall-ID: a1@switch\r\n\
CSeq: 1 INVITE\r\nContact: <sip:switchboard@127.0.0.1:5060>\r\n\
Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_message(text.as_bytes(), &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("a request"),
        }
    }

    /// RFC 3261 §12.1.1 and RFC 3264 §6: the 200 adds our To tag and a
    /// Contact, carries the SDP answer; a retransmitted INVITE gets the
    /// same tag and SDP.
    #[test]
    fn ok_carries_tag_contact_and_answer() {
        let local: SocketAddr = "127.0.0.1:5090".parse().unwrap();
        let req = invite("<sip:agent@127.0.0.1:5090>");
        let sdp = sdp_offer(Codec::Pcmu, "127.0.0.1:40002".parse().unwrap());
        let ok = ok_with_tag(&req, "cga3", local, sdp);
        let Message::Response(resp) = parse_message(&ok, &Limits::default()).unwrap() else {
            panic!("a response");
        };
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers.to().unwrap().tag(), Some("cga3"));
        assert_eq!(resp.headers.cseq().unwrap().method, Method::Invite);
        assert!(
            resp.headers
                .get(&HeaderName::Contact)
                .unwrap()
                .contains("agent@127.0.0.1:5090")
        );
        assert_eq!(
            answer_rtp(&resp.body),
            Some("127.0.0.1:40002".parse().unwrap())
        );
        let again = ok_response(&req, &ok, local);
        let Message::Response(again) = parse_message(&again, &Limits::default()).unwrap() else {
            panic!("a response");
        };
        assert_eq!(again.headers.to().unwrap().tag(), Some("cga3"));
        assert_eq!(again.body, resp.body);
    }
}
