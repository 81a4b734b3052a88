//! One generator worker: a thread owning a share of the calls, one SIP
//! socket for them (calls told apart by Call-ID, polled with mio) and one
//! RTP socket per call. One 2 ms timer drives every call of the worker:
//! each tick starts the calls that are due, reads and then sends a frame
//! for each answered call whose 20 ms slot has come, and runs the SIP
//! retransmission and hold timers. RTP is read at the call's slot, not
//! when it arrives: arrival times are the kernel's receive timestamps, so
//! reading later changes no figure, and the switch's sends do not wake
//! the generator for every packet (which would cost both sides CPU the
//! phones they stand for never charge the switch). A call starts at a
//! random point of its 1/rate slot and its frame slots start at the tick
//! after its answer, so the calls arrive and their frames spread over the
//! 20 ms like those of independent phones, rather than in step with the
//! switch's clock or all in one burst (which no real traffic does).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use rand::Rng as _;

use crate::media::dtmf::rfc4733::{Rfc4733Sender, SenderConfig};
use crate::media::rtp::{RTP_HEADER_LEN, RtpPacket, RtpSender};
use crate::sip::message::{
    HeaderName, Limits, Message, Method, Request, Response, Uri, parse_message,
};

use super::rtp::{
    AudioFrames, FRAME_SAMPLES, PortRange, enable_timestamps, read_tag, realtime_ns,
    recv_timestamped, write_tag,
};
use super::sip::{CallIds, TELEPHONE_EVENT_PT, answer, answer_rtp, remote_target};
use super::stats::{Histogram, StreamStats};
use super::{CallgenError, Config};

/// The frame interval (RFC 3551 §4.5.14 G.711 frames of 20 ms).
pub(super) const FRAME: Duration = Duration::from_millis(20);
/// The worker's tick: a tenth of a frame, so calls take ten slots.
pub(super) const TICK: Duration = Duration::from_millis(2);
/// RFC 3261 §17.1.1.2 timer T1 (first retransmission), T2 (cap), and
/// 64×T1 (Timer B / F: give up).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_B: Duration = Duration::from_secs(32);
/// Token of the worker's SIP socket (the only one polled).
const SIP: Token = Token(usize::MAX);
/// Datagrams read from one socket per readiness event before moving on.
const MAX_READS: usize = 256;
/// A call reads one datagram at each of its slots (the switch sends one
/// per 20 ms), and empties its socket every this many frames.
const DRAIN_EVERY: u64 = 8;
/// Length of a generated RFC 4733 key press.
const DTMF_LENGTH: Duration = Duration::from_millis(100);

/// What the workers share: the settings, the port range, the frames sent
/// and the count of calls up (for the peak).
#[derive(Debug)]
pub(super) struct Shared {
    pub config: Config,
    pub ports: PortRange,
    pub frames: AudioFrames,
    /// When call 0 is due; call k is due at `start + k / rate`.
    pub start: Instant,
    pub active: AtomicU64,
    pub peak: AtomicU64,
    /// Set by the first RTP socket that refused kernel timestamps.
    pub user_timestamps: std::sync::atomic::AtomicBool,
    /// Bridged run: audio frames carry their send time
    /// ([`super::rtp::write_tag`]) and received ones give the added delay.
    pub tagged: bool,
    /// Every caller worker has finished (the answering side may stop).
    pub callers_done: std::sync::atomic::AtomicBool,
}

/// How one call ended.
#[derive(Debug, Clone, Default)]
pub(super) struct CallResult {
    pub answered: bool,
    /// The final status of the INVITE, if one came.
    pub status: Option<u16>,
    /// Why the call failed: `"486"`, `"timeout"`, `"no-sdp"`, `"socket"`.
    pub failure: Option<String>,
    pub setup: Option<Duration>,
    pub ended_by_switch: bool,
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub lost: u64,
    pub out_of_order: u64,
    pub grid_skipped: u64,
    pub jitter: Option<f64>,
    /// The ACK's send to the first RTP packet's arrival (0 when the
    /// switch's audio came first), in ns.
    pub first_audio_ns: Option<i64>,
    /// The first RFC 4733 packet's send to the arrival of the last RTP
    /// packet, on calls the switch ended after the digit: how long the
    /// prompt went on after the key, in ns.
    pub digit_to_last_ns: Option<i64>,
}

/// Everything a worker hands back.
#[derive(Debug, Default)]
pub(super) struct WorkerResult {
    pub calls: Vec<CallResult>,
    pub deviations: Histogram,
    /// Bridged run: each tagged packet's delay from the answering side's
    /// send to its arrival here, in ns.
    pub delays: Histogram,
    /// Frames sent more than one frame interval late (the generator fell
    /// behind).
    pub late_ticks: u64,
    /// Decoded audio received on the captured call.
    pub captured: Vec<i16>,
}

#[derive(Debug)]
enum Phase {
    /// Not started yet.
    Pending,
    /// INVITE sent; `proceeding` after a provisional answer (no more
    /// retransmissions, RFC 3261 §17.1.1.2).
    Inviting {
        sent: Instant,
        next_retx: Instant,
        interval: Duration,
        proceeding: bool,
    },
    Up {
        ends: Instant,
    },
    Byeing {
        sent: Instant,
        next_retx: Instant,
        interval: Duration,
    },
    Done,
}

#[derive(Debug)]
struct Call {
    ids: CallIds,
    phase: Phase,
    due: Instant,
    invite: Vec<u8>,
    ack: Vec<u8>,
    bye: Vec<u8>,
    rtp: Option<mio::net::UdpSocket>,
    remote_rtp: Option<SocketAddr>,
    sender: RtpSender,
    /// Frames of the call's own timeline since its media started.
    frame: u64,
    /// When the call's next frame is due (on the worker's tick grid).
    next_frame: Option<Instant>,
    media_ts: u32,
    after_dtmf: bool,
    dtmf: Rfc4733Sender,
    dtmf_due: Option<Instant>,
    rx: StreamStats,
    /// Wall-clock times (ns, the clock of the kernel's receive
    /// timestamps): the ACK's send, the digit's first packet, the first
    /// and the last RTP arrival.
    acked_ns: Option<i64>,
    digit_ns: Option<i64>,
    first_rx_ns: Option<i64>,
    last_rx_ns: Option<i64>,
    result: CallResult,
    capture: bool,
}

/// Runs worker `id` over the calls whose global index is `id` modulo
/// `workers`, until every one has ended.
pub(super) fn run(
    shared: Arc<Shared>,
    id: usize,
    workers: usize,
) -> Result<WorkerResult, CallgenError> {
    let cfg = &shared.config;
    let poll = Poll::new().map_err(CallgenError::Poll)?;
    let mut sip = mio::net::UdpSocket::bind(SocketAddr::new(cfg.local_ip, 0))
        .map_err(CallgenError::SipSocket)?;
    poll.registry()
        .register(&mut sip, SIP, Interest::READABLE)
        .map_err(CallgenError::Poll)?;
    let local = sip.local_addr().map_err(CallgenError::SipSocket)?;
    let mut rng = rand::rng();
    let run_id = std::process::id();

    let mut calls: Vec<Call> = (id..cfg.calls as usize)
        .step_by(workers)
        .map(|k| {
            // Call k starts at a random point of its own 1/rate slot: the
            // rate and the order hold, but the calls do not arrive in
            // lockstep with the switch's 2 ms media grid (real callers
            // don't), which would hand every new leg the same point of it.
            let slot = k as f64 + rng.random::<f64>();
            let due = shared.start + Duration::from_secs_f64(slot / cfg.rate.max(0.001));
            Call {
                ids: CallIds {
                    call_id: format!("cg-{run_id}-{k}@callgen"),
                    from_tag: format!("cg{k}"),
                    invite_branch: format!("z9hG4bKcg{run_id}x{k}"),
                    number: cfg.number.clone(),
                    target: cfg.target,
                    local,
                },
                phase: Phase::Pending,
                due,
                invite: Vec::new(),
                ack: Vec::new(),
                bye: Vec::new(),
                rtp: None,
                remote_rtp: None,
                sender: RtpSender::random(&mut rng),
                frame: 0,
                next_frame: None,
                media_ts: 0,
                after_dtmf: false,
                dtmf: Rfc4733Sender::new(SenderConfig::default()),
                dtmf_due: None,
                rx: StreamStats::default(),
                acked_ns: None,
                digit_ns: None,
                first_rx_ns: None,
                last_rx_ns: None,
                result: CallResult::default(),
                capture: cfg.capture_call == Some(k as u64),
            }
        })
        .collect();
    let by_call_id: HashMap<String, usize> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.ids.call_id.clone(), i))
        .collect();

    let mut w = Worker {
        shared: &shared,
        poll,
        sip,
        by_call_id,
        buf: vec![0u8; 65536],
        out: vec![0u8; 1500],
        result: WorkerResult::default(),
        next_start: 0,
        open: calls.len(),
        next_tick: shared.start,
    };
    let mut events = Events::with_capacity(1024);
    let mut tick = shared.start;
    while w.open > 0 {
        let now = Instant::now();
        if now >= tick {
            tick += TICK;
            while tick <= now {
                tick += TICK;
            }
            w.next_tick = tick;
            w.tick(&mut calls, now);
            continue;
        }
        match w.poll.poll(&mut events, Some(tick - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CallgenError::Poll(e)),
        }
        for ev in &events {
            if ev.token() == SIP {
                w.read_sip(&mut calls);
            }
        }
    }
    let mut result = w.result;
    for call in calls {
        result.calls.push(call.result);
    }
    Ok(result)
}

/// Datagrams a call reads at the slot of its frame `frame` (see
/// [`DRAIN_EVERY`]).
pub(super) fn reads_at_slot(frame: u64) -> usize {
    if frame % DRAIN_EVERY == 0 {
        MAX_READS
    } else {
        1
    }
}

/// Whole frame intervals between a frame's slot and `now` (frames to skip
/// so the next one is on time).
pub(super) fn frames_missed(due: Instant, now: Instant) -> u64 {
    (now.saturating_duration_since(due).as_nanos() / FRAME.as_nanos()) as u64
}

struct Worker<'a> {
    shared: &'a Shared,
    poll: Poll,
    sip: mio::net::UdpSocket,
    by_call_id: HashMap<String, usize>,
    buf: Vec<u8>,
    out: Vec<u8>,
    result: WorkerResult,
    /// Calls before this index have been started.
    next_start: usize,
    /// Calls not yet done.
    open: usize,
    /// When the next tick is due: a newly answered call's first slot.
    next_tick: Instant,
}

impl Worker<'_> {
    fn send_sip(&self, bytes: &[u8]) {
        // A full socket buffer drops the message; the retransmission timers
        // cover INVITE and BYE.
        let _ = self.sip.send_to(bytes, self.shared.config.target);
    }

    fn tick(&mut self, calls: &mut [Call], now: Instant) {
        while self.next_start < calls.len() && calls[self.next_start].due <= now {
            let i = self.next_start;
            self.next_start += 1;
            self.start_call(&mut calls[i], now);
        }
        for call in calls.iter_mut() {
            match call.phase {
                Phase::Pending | Phase::Done => {}
                Phase::Inviting {
                    sent,
                    next_retx,
                    interval,
                    proceeding,
                } => {
                    if now >= sent + TIMER_B {
                        call.result.failure = Some("timeout".into());
                        self.finish(call);
                    } else if !proceeding && now >= next_retx {
                        self.send_sip(&call.invite);
                        call.phase = Phase::Inviting {
                            sent,
                            next_retx: now + interval * 2,
                            interval: interval * 2,
                            proceeding,
                        };
                    }
                }
                Phase::Up { ends } => {
                    if now >= ends {
                        self.send_sip(&call.bye);
                        call.phase = Phase::Byeing {
                            sent: now,
                            next_retx: now + T1,
                            interval: T1,
                        };
                        self.shared.active.fetch_sub(1, Ordering::Relaxed);
                    } else if let Some(due) = call.next_frame
                        && now >= due
                    {
                        let missed = frames_missed(due, now);
                        if missed > 0 {
                            self.result.late_ticks += 1;
                        }
                        call.next_frame = Some(due + FRAME * (1 + missed) as u32);
                        self.read_rtp(call, reads_at_slot(call.frame));
                        self.send_media(call, now, missed);
                    }
                }
                Phase::Byeing {
                    sent,
                    next_retx,
                    interval,
                } => {
                    if now >= sent + TIMER_B {
                        self.finish(call);
                    } else if now >= next_retx {
                        self.send_sip(&call.bye);
                        let interval = (interval * 2).min(T2);
                        call.phase = Phase::Byeing {
                            sent,
                            next_retx: now + interval,
                            interval,
                        };
                    }
                }
            }
        }
    }

    fn start_call(&mut self, call: &mut Call, now: Instant) {
        let cfg = &self.shared.config;
        let sock = match self.shared.ports.bind(cfg.local_ip) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cause = %e, "call not started");
                call.result.failure = Some("socket".into());
                self.finish(call);
                return;
            }
        };
        if !enable_timestamps(&sock) {
            self.shared.user_timestamps.store(true, Ordering::Relaxed);
        }
        let rtp_addr = match sock.local_addr() {
            Ok(a) => a,
            Err(_) => {
                call.result.failure = Some("socket".into());
                self.finish(call);
                return;
            }
        };
        call.rtp = Some(sock);
        call.invite = call.ids.invite(cfg.codec, rtp_addr);
        self.send_sip(&call.invite);
        call.phase = Phase::Inviting {
            sent: now,
            next_retx: now + T1,
            interval: T1,
            proceeding: false,
        };
    }

    /// Ends a call: its RTP socket closes and its statistics are kept.
    fn finish(&mut self, call: &mut Call) {
        if matches!(call.phase, Phase::Up { .. }) {
            self.shared.active.fetch_sub(1, Ordering::Relaxed);
        }
        call.phase = Phase::Done;
        // What the switch sent since the last slot.
        self.read_rtp(call, MAX_READS);
        call.rtp = None;
        let rx = &call.rx;
        let r = &mut call.result;
        r.sent = u64::from(call.sender.packets_sent());
        r.received = rx.received;
        r.expected = rx.expected();
        r.lost = rx.lost();
        r.out_of_order = rx.out_of_order;
        r.grid_skipped = rx.grid_skipped();
        r.jitter = (rx.received > 1).then(|| rx.jitter_seconds());
        r.first_audio_ns = call
            .acked_ns
            .zip(call.first_rx_ns)
            .map(|(acked, first)| (first - acked).max(0));
        r.digit_to_last_ns = match (call.digit_ns, call.last_rx_ns) {
            (Some(digit), Some(last)) if r.ended_by_switch => Some((last - digit).max(0)),
            _ => None,
        };
        for d in rx.deviations_ns() {
            self.result.deviations.record(d);
        }
        call.rx = StreamStats::default();
        call.invite = Vec::new();
        self.open -= 1;
    }

    /// One 20 ms frame (or the RFC 4733 packet replacing it, §2.5.1).
    fn send_media(&mut self, call: &mut Call, now: Instant, missed: u64) {
        let (Some(sock), Some(to)) = (&call.rtp, call.remote_rtp) else {
            return;
        };
        let cfg = &self.shared.config;
        let ts = call
            .media_ts
            .wrapping_add((call.frame as u32).wrapping_mul(FRAME_SAMPLES as u32));
        call.frame += 1 + missed;
        if let Some(due) = call.dtmf_due
            && now >= due
            && let Some((digit, _)) = cfg.dtmf
        {
            call.dtmf_due = None;
            if call.dtmf.start(now, digit, ts, DTMF_LENGTH).is_ok() {
                call.digit_ns = Some(realtime_ns());
            }
        }
        let len = if call.dtmf.is_busy() {
            call.after_dtmf = true;
            let Some(p) = call.dtmf.poll_packet(now) else {
                return;
            };
            call.sender.next_packet_at(
                TELEPHONE_EVENT_PT,
                &p.payload,
                p.timestamp,
                p.marker,
                &mut self.out,
            )
        } else {
            let frame = self.shared.frames.frame(call.frame);
            let marker = std::mem::take(&mut call.after_dtmf);
            call.sender
                .next_packet_at(cfg.codec.payload_type(), frame, ts, marker, &mut self.out)
                .inspect(|&len| {
                    if self.shared.tagged
                        && let Some(payload) = self.out.get_mut(RTP_HEADER_LEN..len)
                    {
                        write_tag(payload, realtime_ns());
                    }
                })
        };
        if let Ok(len) = len {
            let _ = sock.send_to(&self.out[..len], to);
        }
    }

    /// Reads up to `reads` datagrams queued on the call's RTP socket.
    fn read_rtp(&mut self, call: &mut Call, reads: usize) {
        let Some(sock) = &call.rtp else {
            return;
        };
        let pt = self.shared.config.codec.payload_type();
        for _ in 0..reads {
            let (n, at) = match recv_timestamped(sock, &mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let Some(data) = self.buf.get(..n) else {
                continue;
            };
            let Ok(pkt) = RtpPacket::parse(data) else {
                continue;
            };
            call.rx
                .handle_packet(pkt.ssrc(), pkt.sequence(), pkt.timestamp(), at);
            call.first_rx_ns.get_or_insert(at);
            call.last_rx_ns = call.last_rx_ns.max(Some(at));
            if self.shared.tagged
                && let Some(sent) = read_tag(pkt.payload())
            {
                self.result
                    .delays
                    .record(u64::try_from(at - sent).unwrap_or(0));
            }
            if call.capture && pkt.payload_type() == pt && self.result.captured.len() < 8000 * 60 {
                let codec = self.shared.config.codec;
                self.result
                    .captured
                    .extend(pkt.payload().iter().map(|&b| codec.decode(b)));
            }
        }
    }

    fn read_sip(&mut self, calls: &mut [Call]) {
        for _ in 0..MAX_READS * 16 {
            let n = match self.sip.recv_from(&mut self.buf) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let Some(data) = self.buf.get(..n) else {
                continue;
            };
            let Ok(msg) = parse_message(data, &Limits::default()) else {
                continue;
            };
            let now = Instant::now();
            let index = msg
                .headers()
                .call_id()
                .ok()
                .and_then(|id| self.by_call_id.get(id).copied());
            match (msg, index) {
                (Message::Response(resp), Some(i)) => {
                    if let Some(call) = calls.get_mut(i) {
                        self.handle_response(call, &resp, now);
                    }
                }
                (Message::Request(req), Some(i)) => {
                    if let Some(call) = calls.get_mut(i) {
                        self.handle_request(call, &req);
                    }
                }
                (Message::Request(req), None) if req.method != Method::Ack => {
                    self.send_sip(&answer(&req, 481, "Call/Transaction Does Not Exist"));
                }
                _ => {}
            }
        }
    }

    fn handle_response(&mut self, call: &mut Call, resp: &Response, now: Instant) {
        let Ok(cseq) = resp.headers.cseq() else {
            return;
        };
        let to = resp
            .headers
            .get(&HeaderName::To)
            .unwrap_or_default()
            .to_owned();
        match cseq.method {
            Method::Invite => self.handle_invite_response(call, resp, to, now),
            Method::Bye if resp.status >= 200 => {
                if matches!(call.phase, Phase::Byeing { .. }) {
                    self.finish(call);
                }
            }
            _ => {}
        }
    }

    fn handle_invite_response(
        &mut self,
        call: &mut Call,
        resp: &Response,
        to: String,
        now: Instant,
    ) {
        let Phase::Inviting {
            sent,
            next_retx,
            interval,
            ..
        } = call.phase
        else {
            // A retransmitted 2xx: the ACK was lost (RFC 3261 §13.2.2.4).
            if resp.is_success() && !call.ack.is_empty() {
                self.send_sip(&call.ack);
            }
            return;
        };
        if resp.is_provisional() {
            call.phase = Phase::Inviting {
                sent,
                next_retx,
                interval,
                proceeding: true,
            };
            return;
        }
        call.result.status = Some(resp.status);
        if !resp.is_success() {
            self.send_sip(&call.ids.ack_failure(&to));
            call.result.failure = Some(resp.status.to_string());
            self.finish(call);
            return;
        }
        let target: Uri = remote_target(resp, &call.ids);
        call.ack = call.ids.ack_2xx(&to, &target);
        call.bye = call.ids.bye(&to, &target);
        self.send_sip(&call.ack);
        call.acked_ns = Some(realtime_ns());
        call.result.setup = Some(now.saturating_duration_since(sent));
        let Some(rtp) = answer_rtp(&resp.body) else {
            call.result.failure = Some("no-sdp".into());
            self.send_sip(&call.bye);
            call.phase = Phase::Byeing {
                sent: now,
                next_retx: now + T1,
                interval: T1,
            };
            return;
        };
        call.result.answered = true;
        call.remote_rtp = Some(rtp);
        call.next_frame = Some(self.next_tick);
        call.media_ts = call.sender.next_timestamp();
        let cfg = &self.shared.config;
        call.dtmf_due = cfg.dtmf.map(|(_, at)| now + at);
        call.phase = Phase::Up {
            ends: now + cfg.duration,
        };
        let active = self.shared.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.peak.fetch_max(active, Ordering::Relaxed);
    }

    fn handle_request(&mut self, call: &mut Call, req: &Request) {
        match req.method {
            Method::Ack => {}
            Method::Bye => {
                self.send_sip(&answer(req, 200, "OK"));
                if matches!(call.phase, Phase::Up { .. } | Phase::Byeing { .. }) {
                    call.result.ended_by_switch = matches!(call.phase, Phase::Up { .. });
                    self.finish(call);
                }
            }
            Method::Options | Method::Info | Method::Notify => {
                self.send_sip(&answer(req, 200, "OK"));
            }
            _ => self.send_sip(&answer(req, 501, "Not Implemented")),
        }
    }
}
