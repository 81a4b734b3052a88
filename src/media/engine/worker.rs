//! The driver of one media worker: a plain OS thread with a `mio::Poll`
//! over its legs' RTP and RTCP sockets, a `mio::Waker` for commands from
//! the handles, and the worker's [`TickClock`] (DESIGN §4): a 5 ms grid
//! on which each leg has one phase, so it sends every 20 ms.
//!
//! Received datagrams are handled the moment the poll reports them (a
//! bridged packet is relayed before the worker sleeps again). The poll
//! sleeps until the next tick in whole milliseconds (epoll's resolution)
//! and covers the last sub-millisecond with short sleeps between
//! zero-timeout polls, so ticks start within tens of microseconds of the
//! grid without delaying received packets by more than that.
//!
//! Recordings are written by a companion thread per worker (file I/O never
//! runs on the media clock).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use tokio::sync::mpsc::UnboundedSender;

use super::clock::{PHASES, Tick, TickClock};
use super::leg::{LegConfig, LegCore, RecordOutput, Transmit, TransmitTo};
use super::stats::WorkerStats;
use super::{EngineConfig, EngineError, LegCommand, LegEvent, LegEventKind, LegId, LegSetup};
use crate::media::port_pool::PortLease;
use crate::media::recorder::{Layout, Recorder};
use crate::media::rtp::RtpSender;
use crate::media::rtp::rtcp::NtpTime;

const WAKER: Token = Token(usize::MAX);
/// Datagrams read from one socket per readiness event before the others
/// get a turn (the socket is polled again at once).
const READ_BUDGET: usize = 64;
/// Largest datagram read; longer ones are truncated (and fail to parse).
const MAX_DATAGRAM: usize = 2048;
/// Commands handled per wake-up before packets and ticks get a turn.
const COMMAND_BUDGET: usize = 1024;
/// Shortest sleep while waiting out the last millisecond before a tick.
const FINE_SLEEP: Duration = Duration::from_micros(200);

/// What a handle asks of a worker.
pub(crate) enum Command {
    Open(Box<(LegId, LegSetup)>),
    Leg(LegId, LegCommand),
    Bridge(LegId, LegId),
    Unbridge(LegId),
    Close(LegId),
    Shutdown,
}

/// The engine's side of one worker.
pub(crate) struct WorkerHandle {
    tx: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    pub stats: Arc<WorkerStats>,
}

impl WorkerHandle {
    pub fn send(&self, command: Command) -> Result<(), EngineError> {
        self.tx.send(command).map_err(|_| EngineError::Stopped)?;
        self.waker.wake().map_err(|_| EngineError::Stopped)
    }

    pub fn shutdown(&self) {
        let _ = self.send(Command::Shutdown);
    }
}

/// Starts worker `index` and its recorder thread.
pub(crate) fn spawn(index: usize, config: &EngineConfig) -> Result<WorkerHandle, EngineError> {
    let poll = Poll::new().map_err(EngineError::Poll)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(EngineError::Poll)?);
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(WorkerStats::default());
    let (rec_tx, rec_rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("{}-rec-{index}", config.thread_name))
        .spawn(move || run_recorder(rec_rx))
        .map_err(EngineError::Spawn)?;
    let worker = Worker {
        poll,
        commands: rx,
        slots: Vec::new(),
        free: Vec::new(),
        by_id: HashMap::new(),
        clock: TickClock::new(Instant::now()),
        stats: stats.clone(),
        config: config.leg.clone(),
        recorder: rec_tx,
        recv_buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
        send_buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
        again: Vec::new(),
        stopping: false,
    };
    thread::Builder::new()
        .name(format!("{}-{index}", config.thread_name))
        .spawn(move || worker.run())
        .map_err(EngineError::Spawn)?;
    Ok(WorkerHandle { tx, waker, stats })
}

/// One leg as the worker holds it.
struct Slot {
    id: LegId,
    core: LegCore,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// Returned to the pool when the slot is dropped.
    _lease: PortLease,
    events: UnboundedSender<LegEvent>,
    /// Slot index of the bridged leg.
    peer: Option<usize>,
}

struct Worker {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_id: HashMap<LegId, usize>,
    clock: TickClock,
    stats: Arc<WorkerStats>,
    config: LegConfig,
    recorder: mpsc::Sender<RecordJob>,
    recv_buf: Box<[u8]>,
    send_buf: Box<[u8]>,
    /// Sockets whose read budget ran out: read again before sleeping.
    again: Vec<Token>,
    stopping: bool,
}

fn token(slot: usize, via: TransmitTo) -> Token {
    Token(slot * 2 + usize::from(via == TransmitTo::Rtcp))
}

fn untoken(token: Token) -> (usize, TransmitTo) {
    let via = if token.0 % 2 == 1 {
        TransmitTo::Rtcp
    } else {
        TransmitTo::Rtp
    };
    (token.0 / 2, via)
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        while !self.stopping {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(cause = %e, "media worker poll failed");
                break;
            }
            let mut ready = std::mem::take(&mut self.again);
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                if !ready.contains(&event.token()) {
                    ready.push(event.token());
                }
            }
            for t in ready.drain(..) {
                self.read_socket(t);
            }
            self.handle_commands();
            if let Some(tick) = self.clock.poll_tick(Instant::now()) {
                self.tick(tick);
            }
        }
        self.close_all();
    }

    /// How long to sleep in the poll: until the tick in whole
    /// milliseconds; under a millisecond away, a short sleep and a
    /// zero-timeout poll.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let remaining = self.clock.poll_timeout().saturating_duration_since(now);
        if remaining >= Duration::from_millis(1) {
            return Some(Duration::from_millis(remaining.as_millis() as u64));
        }
        if !remaining.is_zero() {
            thread::sleep(remaining.min(FINE_SLEEP));
        }
        Some(Duration::ZERO)
    }

    fn read_socket(&mut self, t: Token) {
        let (index, via) = untoken(t);
        for _ in 0..READ_BUDGET {
            let Some(Some(slot)) = self.slots.get_mut(index) else {
                return;
            };
            let socket = match via {
                TransmitTo::Rtp => &slot.rtp,
                TransmitTo::Rtcp => &slot.rtcp,
            };
            let (len, src) = match socket.recv_from(&mut self.recv_buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here on Linux; the socket is fine.
                    tracing::trace!(cause = %e, "media socket receive error");
                    continue;
                }
            };
            let now = Instant::now();
            let bytes = self.recv_buf.get(..len).unwrap_or(&[]);
            match via {
                TransmitTo::Rtcp => slot.core.handle_rtcp(now, src, bytes),
                TransmitTo::Rtp => {
                    WorkerStats::add(&self.stats.packets_received, 1);
                    let peer = slot.peer;
                    let relay = slot.core.handle_rtp(now, src, bytes);
                    if let (Some(relay), Some(p)) = (relay, peer)
                        && let Some(Some(other)) = self.slots.get_mut(p)
                        && let Some(tx) = other.core.handle_relay(now, &relay, &mut self.send_buf)
                    {
                        WorkerStats::add(&self.stats.packets_forwarded, 1);
                        send(&self.stats, other, &self.send_buf, tx);
                    }
                }
            }
            self.drain(index);
        }
        self.again.push(t);
    }

    /// Hands the leg's events to its call and its audio to the recorder.
    fn drain(&mut self, index: usize) {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        while let Some(kind) = slot.core.poll_event() {
            if matches!(kind, LegEventKind::Digit { .. }) {
                WorkerStats::add(&self.stats.digits, 1);
            }
            // A call that went away no longer listens: nothing to do.
            let _ = slot.events.send(LegEvent { leg: slot.id, kind });
        }
        while let Some(out) = slot.core.poll_record() {
            let job = RecordJob {
                leg: slot.id,
                events: slot.events.clone(),
                out,
            };
            if self.recorder.send(job).is_err() {
                tracing::error!(leg = %slot.id, "recorder thread gone; audio dropped");
            }
        }
    }

    /// Runs the legs whose phase the tick (and any it skipped) holds;
    /// a leg's phase is its slot index modulo [`PHASES`].
    fn tick(&mut self, tick: Tick) {
        if tick.missed > 0 {
            WorkerStats::add(&self.stats.late_ticks, 1);
        }
        let mut frames = 0;
        for phase in 0..PHASES {
            let Some((missed, deadline)) = self.clock.phase_due(&tick, phase) else {
                continue;
            };
            let step = PHASES as usize;
            for index in (phase as usize..self.slots.len()).step_by(step) {
                let Some(Some(slot)) = self.slots.get_mut(index) else {
                    continue;
                };
                let now = Instant::now();
                if let Some(tx) = slot.core.handle_tick(now, missed, &mut self.send_buf) {
                    send(&self.stats, slot, &self.send_buf, tx);
                    let sent_at = Instant::now();
                    self.stats
                        .lateness
                        .record(sent_at.saturating_duration_since(deadline));
                    frames += 1;
                }
                while let Some(tx) = slot.core.poll_transmit(now, &mut self.send_buf) {
                    send(&self.stats, slot, &self.send_buf, tx);
                }
                self.drain(index);
            }
        }
        WorkerStats::add(&self.stats.frames_sent, frames);
    }

    fn handle_commands(&mut self) {
        for _ in 0..COMMAND_BUDGET {
            let Ok(command) = self.commands.try_recv() else {
                return;
            };
            let now = Instant::now();
            match command {
                Command::Open(open) => {
                    let (id, setup) = *open;
                    self.open(now, id, setup);
                }
                Command::Leg(id, command) => {
                    if let Some(&index) = self.by_id.get(&id) {
                        if let Some(Some(slot)) = self.slots.get_mut(index) {
                            slot.core.handle_command(now, command);
                        }
                        self.drain(index);
                    }
                }
                Command::Bridge(a, b) => self.bridge(a, b),
                Command::Unbridge(a) => {
                    if let Some(&index) = self.by_id.get(&a) {
                        self.unbridge(index);
                    }
                }
                Command::Close(id) => self.close(now, id),
                Command::Shutdown => {
                    self.stopping = true;
                    return;
                }
            }
        }
        // More commands wait: come back without sleeping.
        self.again.push(WAKER);
    }

    fn open(&mut self, now: Instant, id: LegId, setup: LegSetup) {
        let LegSetup {
            lease,
            rtp,
            rtcp,
            negotiated,
            events,
            ..
        } = setup;
        let index = self.free.pop().unwrap_or(self.slots.len());
        let mut rtp = UdpSocket::from_std(rtp);
        let mut rtcp = UdpSocket::from_std(rtcp);
        let registry: &Registry = self.poll.registry();
        let registered = registry
            .register(&mut rtp, token(index, TransmitTo::Rtp), Interest::READABLE)
            .and_then(|()| {
                registry.register(
                    &mut rtcp,
                    token(index, TransmitTo::Rtcp),
                    Interest::READABLE,
                )
            });
        if let Err(e) = registered {
            tracing::error!(leg = %id, cause = %e, "cannot register media sockets");
            let _ = registry.deregister(&mut rtp);
            self.free.push(index);
            self.stats
                .legs
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let _ = events.send(LegEvent {
                leg: id,
                kind: LegEventKind::Closed {
                    stats: Default::default(),
                },
            });
            return;
        }
        let sender = RtpSender::random(&mut rand::rng());
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ntp = NtpTime::from_unix(wall.as_secs(), wall.subsec_nanos());
        let core = LegCore::new(self.config.clone(), negotiated, sender, now, ntp);
        let slot = Slot {
            id,
            core,
            rtp,
            rtcp,
            _lease: lease,
            events,
            peer: None,
        };
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else if let Some(place) = self.slots.get_mut(index) {
            *place = Some(slot);
        }
        self.by_id.insert(id, index);
        tracing::debug!(leg = %id, "media leg open");
    }

    fn bridge(&mut self, a: LegId, b: LegId) {
        let (Some(&ia), Some(&ib)) = (self.by_id.get(&a), self.by_id.get(&b)) else {
            return;
        };
        if ia == ib {
            return;
        }
        self.unbridge(ia);
        self.unbridge(ib);
        for (me, other) in [(ia, ib), (ib, ia)] {
            if let Some(Some(slot)) = self.slots.get_mut(me) {
                slot.peer = Some(other);
                slot.core.set_bridged(true);
            }
        }
    }

    fn unbridge(&mut self, index: usize) {
        let peer = match self.slots.get_mut(index) {
            Some(Some(slot)) => {
                slot.core.set_bridged(false);
                slot.peer.take()
            }
            _ => None,
        };
        if let Some(Some(other)) = peer.and_then(|p| self.slots.get_mut(p)) {
            other.core.set_bridged(false);
            other.peer = None;
        }
    }

    fn close(&mut self, now: Instant, id: LegId) {
        let Some(index) = self.by_id.remove(&id) else {
            return;
        };
        self.unbridge(index);
        if let Some(Some(slot)) = self.slots.get_mut(index) {
            slot.core.close();
            while let Some(tx) = slot.core.poll_transmit(now, &mut self.send_buf) {
                send(&self.stats, slot, &self.send_buf, tx);
            }
        }
        self.drain(index);
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        let registry = self.poll.registry();
        let _ = registry.deregister(&mut slot.rtp);
        let _ = registry.deregister(&mut slot.rtcp);
        let stats = slot.core.stats();
        let _ = slot.events.send(LegEvent {
            leg: id,
            kind: LegEventKind::Closed { stats },
        });
        self.free.push(index);
        self.stats
            .legs
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(leg = %id, "media leg closed");
        // The slot (sockets, lease) drops here.
    }

    fn close_all(&mut self) {
        let ids: Vec<LegId> = self.by_id.keys().copied().collect();
        let now = Instant::now();
        for id in ids {
            self.close(now, id);
        }
    }
}

/// Sends one datagram from the slot's socket; a full socket buffer drops
/// it (media is not retransmitted).
fn send(stats: &WorkerStats, slot: &Slot, buf: &[u8], tx: Transmit) {
    let socket = match tx.via {
        TransmitTo::Rtp => &slot.rtp,
        TransmitTo::Rtcp => &slot.rtcp,
    };
    let Some(bytes) = buf.get(..tx.len) else {
        return;
    };
    if let Err(e) = socket.send_to(bytes, tx.to) {
        WorkerStats::add(&stats.send_errors, 1);
        tracing::trace!(leg = %slot.id, cause = %e, "media send failed");
    }
}

/// Work for the recorder thread.
struct RecordJob {
    leg: LegId,
    events: UnboundedSender<LegEvent>,
    out: RecordOutput,
}

/// The recorder thread: opens, appends to and finalizes WAV files for
/// every recording leg of one worker; reports the result to the leg's
/// call.
fn run_recorder(jobs: mpsc::Receiver<RecordJob>) {
    let mut open: HashMap<LegId, Recorder> = HashMap::new();
    let finished = |job: &RecordJob, result| {
        let _ = job.events.send(LegEvent {
            leg: job.leg,
            kind: LegEventKind::RecordingFinished(result),
        });
    };
    while let Ok(job) = jobs.recv() {
        match &job.out {
            RecordOutput::Start { path, layout } => match Recorder::create(path, *layout) {
                Ok(r) => {
                    open.insert(job.leg, r);
                }
                Err(e) => finished(&job, Err(e)),
            },
            RecordOutput::Samples { left, right } => {
                let Some(rec) = open.get_mut(&job.leg) else {
                    continue;
                };
                let written = match rec.layout() {
                    Layout::Mono => rec.write_mono(left),
                    Layout::Stereo => rec.write_stereo(left, right),
                };
                if let Err(e) = written {
                    open.remove(&job.leg);
                    finished(&job, Err(e));
                }
            }
            RecordOutput::Stop => {
                if let Some(rec) = open.remove(&job.leg) {
                    finished(&job, rec.finalize());
                }
            }
        }
    }
    // The worker stopped: finish what is open (no one to tell).
    for (_, rec) in open.drain() {
        if let Err(e) = rec.finalize() {
            tracing::error!(cause = %e, "recording not finalized at shutdown");
        }
    }
}
