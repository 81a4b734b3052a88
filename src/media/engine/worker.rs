//! The driver of one media worker: a plain OS thread with a `mio::Poll`
//! over its legs' RTP and RTCP sockets, a `mio::Waker` for commands from
//! the handles, and the worker's [`TickClock`] (DESIGN §4): a 2 ms grid
//! on which each leg has one phase ([`PhasePlan`]), so it sends every
//! 20 ms.
//!
//! Received datagrams are handled the moment the poll reports them (a
//! bridged packet is relayed before the worker sleeps again), but a due
//! tick goes first: between two sockets the worker checks the clock, so a
//! burst of arriving packets never holds back the frames due to leave.
//! A worker sleeping in its ring (below) wakes at the tick's deadline by
//! the ring wait's own timeout; otherwise the deadline is a `timerfd` in
//! the poll (Linux; [`timer`]): either way the kernel wakes the worker at
//! the deadline to the microsecond, where epoll's own timeout has
//! millisecond resolution and 50 µs of slack. Elsewhere the poll sleeps
//! in whole milliseconds and covers the last one with short sleeps
//! between zero-timeout polls.
//!
//! Each frame leaves from its leg's own socket (symmetric RTP: the source
//! port is the leg's), so `sendmmsg`, which batches datagrams of one
//! socket, has nothing to batch. Where the kernel offers a usable
//! `io_uring` ([`TickRing`], Linux) a tick phase's reads go in one
//! submission and its frames in another, and the sockets a wake-up found
//! ready are read one datagram each per round, with the relays of the
//! previous round in the same submission. Otherwise (or with
//! `EngineConfig::batched_io` off) a readable socket is read with one
//! `recvmmsg` for all it holds ([`RecvBatch`]) and each datagram is one
//! `sendto`.
//!
//! Where the ring also takes multishot reads, a bridged leg's RTP socket
//! is read by one of them instead of waking the poll: the worker then
//! sleeps in the ring ([`TickRing::wait`]), which wakes it for arrived
//! datagrams (a batch of them, or the first after a short gathering
//! time), for anything the `epoll` poll has (commands, RTCP) and at the
//! tick's deadline, and which submits the relays queued since the last
//! wait in the same call.
//!
//! Every [`STATS_INTERVAL`] a worker with legs logs (at `debug`) its
//! timing over the interval: send time off the grid, wake-up lateness and
//! tick work, p50/p99/max.
//!
//! Recordings are written by a companion thread per worker (file I/O never
//! runs on the media clock).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use tokio::sync::mpsc::UnboundedSender;

use super::batch::RecvBatch;
use super::clock::{PHASES, PhasePlan, Tick, TickClock, aligned_start};
use super::leg::{LegConfig, LegCore, RecordOutput, Transmit, TransmitTo};
#[cfg(target_os = "linux")]
use super::ring::TickRing;
use super::stats::{LatenessHistogram, WorkerStats};
use super::{EngineConfig, EngineError, LegCommand, LegEvent, LegEventKind, LegId, LegSetup};
use crate::media::port_pool::PortLease;
use crate::media::recorder::Recorder;
use crate::media::rtp::RtpSender;
use crate::media::rtp::rtcp::NtpTime;

const WAKER: Token = Token(usize::MAX);
const TIMER: Token = Token(usize::MAX - 1);
/// How often a busy worker logs its timing (at `debug`).
pub(crate) const STATS_INTERVAL: Duration = Duration::from_secs(10);
/// Batches read from one socket per readiness event before the others get
/// a turn (the socket is read again before the worker sleeps).
const READ_ROUNDS: usize = 4;
/// Largest datagram read; longer ones are truncated (and fail to parse).
const MAX_DATAGRAM: usize = 2048;
/// Commands handled per wake-up before packets and ticks get a turn.
const COMMAND_BUDGET: usize = 1024;
/// An unwatched leg reads one datagram per tick (its stream brings one
/// per 20 ms); every this many ticks, or while it is behind, it drains
/// its socket instead, so a burst never queues up for long.
const DRAIN_EVERY: u32 = 8;
/// How long a recorder thread with open recordings sleeps between looks
/// at its queue (a recording is finished at most this late).
const RECORDER_NAP: Duration = Duration::from_millis(50);
/// Shortest sleep while waiting out the last millisecond before a tick.
const FINE_SLEEP: Duration = Duration::from_micros(200);
/// How long a worker waiting in its ring lets arriving datagrams gather
/// before it wakes for fewer than [`super::ring::GATHER_COMPLETIONS`]:
/// the most a relay waits for its wake-up.
#[cfg(target_os = "linux")]
const RELAY_GATHER: Duration = Duration::from_micros(300);

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

/// Starts worker `index` and its recorder thread. `origin` is the
/// worker's tick grid (the engine staggers its workers').
pub(crate) fn spawn(
    index: usize,
    origin: Instant,
    config: &EngineConfig,
) -> Result<WorkerHandle, EngineError> {
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
        clock: TickClock::new(origin),
        origin,
        phases: PhasePlan::default(),
        timer: None,
        armed: None,
        window: Window::new(Instant::now(), &stats),
        stats: stats.clone(),
        config: config.leg.clone(),
        recorder: rec_tx,
        batch: Some(Box::new(RecvBatch::new(MAX_DATAGRAM))),
        send_buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
        again: Vec::new(),
        stopping: false,
        batched_io: config.batched_io,
        #[cfg(target_os = "linux")]
        ring: None,
        ring_waits: false,
        multishot_generation: 0,
        members: Vec::new(),
        touched: Vec::new(),
        #[cfg(target_os = "linux")]
        scratch: Vec::with_capacity(MAX_DATAGRAM),
    };
    let nice = config.nice;
    thread::Builder::new()
        .name(format!("{}-{index}", config.thread_name))
        .spawn(move || {
            if let Some(nice) = nice {
                super::priority::apply_to_current_thread(nice);
            }
            worker.run()
        })
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
    /// The phase of the 20 ms interval the leg sends in.
    phase: u64,
    /// The RTP socket wakes the worker when a packet arrives (bridged
    /// legs relay at once). Other legs' RTP is read at their phase of the
    /// tick, just before their frame goes out: one read per 20 ms instead
    /// of one wake-up per packet, and a digit still cuts a barge-in prompt
    /// at the next frame.
    rtp_watched: bool,
    /// The multishot read that takes the leg's RTP while it is bridged
    /// (instead of `rtp_watched`), by its id.
    multishot: Option<u64>,
    /// The last multishot read cancelled (unbridged): datagrams it took
    /// before it ended are still the leg's.
    cancelled: Option<u64>,
    /// Ticks the leg's RTP was read at (counts to [`DRAIN_EVERY`]).
    reads: u32,
    /// The last drain found more than one datagram queued: drain at every
    /// tick until it catches up.
    backlog: bool,
}

impl Slot {
    /// The leg's RTP is read the moment it arrives, not at its tick.
    fn reads_at_once(&self) -> bool {
        self.rtp_watched || self.multishot.is_some()
    }
}

/// A multishot read's id: a generation (so a reused slot's reads are not
/// taken for an earlier leg's) above the slot index.
const MULTISHOT_SLOT_BITS: u32 = 32;
const MULTISHOT_GENERATIONS: u64 = (1 << 28) - 1;

struct Worker {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_id: HashMap<LegId, usize>,
    clock: TickClock,
    /// A point of the worker's tick grid, staggered from the other
    /// workers' ([`super::clock::stagger`]).
    origin: Instant,
    phases: PhasePlan,
    /// The tick deadline as a kernel timer in the poll, where there is one.
    timer: Option<timer::TickTimer>,
    /// The deadline the timer is armed for.
    armed: Option<Instant>,
    /// Where the current stats interval started.
    window: Window,
    stats: Arc<WorkerStats>,
    config: LegConfig,
    recorder: mpsc::Sender<RecordJob>,
    /// Receive buffers (taken while a socket is read).
    batch: Option<Box<RecvBatch>>,
    send_buf: Box<[u8]>,
    /// Sockets whose read budget ran out: read again before sleeping.
    again: Vec<Token>,
    stopping: bool,
    /// Use [`TickRing`] where the kernel allows.
    batched_io: bool,
    /// Batched tick I/O, once the worker thread has set it up.
    #[cfg(target_os = "linux")]
    ring: Option<TickRing>,
    /// The worker sleeps in the ring and bridged legs' RTP comes by
    /// multishot reads (the ring has them).
    ring_waits: bool,
    /// The last multishot read's generation.
    multishot_generation: u64,
    /// The legs of the phase being run (reused).
    members: Vec<usize>,
    /// Legs that received since their events were last drained (reused).
    touched: Vec<usize>,
    /// A received datagram while its relay is built (reused).
    #[cfg(target_os = "linux")]
    scratch: Vec<u8>,
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
        self.timer = self.register_timer();
        self.start_ring();
        let mut events = Events::with_capacity(1024);
        while !self.stopping {
            let asked = self.sleep();
            let mut ready = std::mem::take(&mut self.again);
            if let Some(timeout) = asked {
                if let Err(e) = self.poll.poll(&mut events, timeout)
                    && e.kind() != io::ErrorKind::Interrupted
                {
                    tracing::error!(cause = %e, "media worker poll failed");
                    break;
                }
                for event in events.iter() {
                    match event.token() {
                        WAKER => {}
                        TIMER => {
                            if let Some(timer) = &self.timer {
                                timer.clear();
                            }
                        }
                        t if !ready.contains(&t) => ready.push(t),
                        _ => {}
                    }
                }
            }
            self.run_due_tick();
            #[cfg(target_os = "linux")]
            self.relay_arrivals();
            #[cfg(target_os = "linux")]
            self.read_ready_batched(&mut ready);
            // Without a ring: socket by socket.
            for t in ready.drain(..) {
                let _ = self.read_socket(t);
                // Frames due to leave go before the rest of the burst.
                self.run_due_tick();
            }
            self.handle_commands();
            self.run_due_tick();
        }
        self.close_all();
    }

    /// Sets up batched tick I/O on the worker's own thread (the ring has
    /// one submitter), or says why datagrams go one syscall each.
    fn start_ring(&mut self) {
        if !self.batched_io {
            return;
        }
        #[cfg(target_os = "linux")]
        match TickRing::new(MAX_DATAGRAM) {
            Ok(mut ring) => {
                use std::os::fd::AsRawFd;

                if ring.multishot() {
                    match ring.arm_poll(self.poll.as_raw_fd()) {
                        Ok(()) => self.ring_waits = true,
                        Err(e) => {
                            tracing::debug!(cause = %e, "media worker does not wait in its ring")
                        }
                    }
                }
                tracing::debug!(
                    multishot = self.ring_waits,
                    "media worker batches tick I/O (io_uring)"
                );
                self.ring = Some(ring);
            }
            Err(e) => {
                tracing::info!(cause = %e, "no batched media I/O; one syscall per datagram");
            }
        }
    }

    /// Sleeps in the ring where the worker does; says whether the `epoll`
    /// poll is to be asked, and with what timeout: `None` when it has
    /// nothing (the ring's poll of it did not fire).
    fn sleep(&mut self) -> Option<Option<Duration>> {
        #[cfg(target_os = "linux")]
        if self.ring_waits {
            match self.wait_ring(self.ring_timeout()) {
                Some(false) => return None,
                Some(true) => return Some(Some(Duration::ZERO)),
                // The ring failed: the poll waits instead.
                None => self.ring_lost(),
            }
        }
        Some(self.poll_timeout())
    }

    /// How long the ring may sleep: until the tick (its own timeout is a
    /// precise timer, so the `timerfd` is not armed), not at all while
    /// sockets wait their turn, without limit while idle.
    #[cfg(target_os = "linux")]
    fn ring_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.by_id.is_empty() {
            return None;
        }
        Some(
            self.clock
                .poll_timeout()
                .saturating_duration_since(Instant::now()),
        )
    }

    /// [`TickRing::wait`]: submits the queued relays and sleeps until a
    /// datagram arrives, the `epoll` poll has something or `timeout`
    /// passes. `Some(true)` when the poll has something; `None` when the
    /// ring failed.
    #[cfg(target_os = "linux")]
    fn wait_ring(&mut self, timeout: Option<Duration>) -> Option<bool> {
        use std::os::fd::AsRawFd;

        let mut ring = self.ring.take()?;
        let mut waited = Ok(0);
        if !ring.poll_armed() {
            waited = ring.arm_poll(self.poll.as_raw_fd()).map(|()| 0);
        }
        if waited.is_ok() {
            waited = ring.wait(timeout, RELAY_GATHER);
        }
        match waited {
            Ok(failed) => {
                WorkerStats::add(&self.stats.send_errors, failed);
                let polled = ring.take_poll_ready();
                self.ring = Some(ring);
                Some(polled)
            }
            Err(e) => {
                tracing::error!(cause = %e, "batched media I/O failed; one syscall per datagram from now");
                None
            }
        }
    }

    /// The ring is gone (it failed): bridged legs' RTP wakes the poll.
    #[cfg(target_os = "linux")]
    fn ring_lost(&mut self) {
        if !self.ring_waits {
            return;
        }
        self.ring_waits = false;
        for index in 0..self.slots.len() {
            if let Some(Some(slot)) = self.slots.get_mut(index)
                && slot.multishot.take().is_some()
            {
                self.watch_rtp(index, true);
            }
        }
    }

    /// Handles the datagrams the bridged legs' multishot reads brought:
    /// each relayed to the other leg (the relay leaves with the next
    /// submission), its buffer handed back. A read that ended is armed
    /// again when it ran out of buffers, or gives way to the poll.
    #[cfg(target_os = "linux")]
    fn relay_arrivals(&mut self) {
        if !self.ring_waits {
            return;
        }
        let Some(mut ring) = self.ring.take() else {
            self.ring_lost();
            return;
        };
        let mut touched = std::mem::take(&mut self.touched);
        let mut ended = Vec::new();
        let mut broken = None;
        while let Some(a) = ring.pop_arrival() {
            let index = (a.id & ((1 << MULTISHOT_SLOT_BITS) - 1)) as usize;
            let (live, cancelled) = match self.slots.get_mut(index) {
                Some(Some(s)) if s.multishot == Some(a.id) => (true, false),
                Some(Some(s)) if s.cancelled == Some(a.id) => {
                    if a.ended() {
                        s.cancelled = None;
                    }
                    (false, true)
                }
                // A closed leg's.
                _ => (false, false),
            };
            if !live && !cancelled {
                ring.release(&a);
                continue;
            }
            let relay = match ring.arrival(&a) {
                Some((bytes, Some(src))) => {
                    WorkerStats::add(&self.stats.multishot_packets, 1);
                    touched.push(index);
                    self.receive_datagram(index, TransmitTo::Rtp, bytes, src)
                }
                _ => None,
            };
            ring.release(&a);
            if let Some((peer, tx)) = relay
                && let Some(Some(other)) = self.slots.get(peer)
                && let Err(e) = push_send(&mut ring, peer, other, &self.send_buf, tx)
            {
                broken = Some(e);
                break;
            }
            if live && a.ended() {
                if let Some(Some(slot)) = self.slots.get_mut(index) {
                    slot.multishot = None;
                }
                ended.push((index, a.error()));
            }
        }
        ring.publish_buffers();
        touched.dedup();
        for index in touched.drain(..) {
            self.drain(index);
        }
        self.touched = touched;
        if let Some(e) = broken {
            tracing::error!(cause = %e, "batched media I/O failed; one syscall per datagram from now");
            self.ring_lost();
            for (index, _) in ended {
                self.watch_rtp(index, true);
            }
            return;
        }
        self.ring = Some(ring);
        for (index, error) in ended {
            // Out of buffers: what is queued waits in the socket for the
            // new read (the buffers are back now).
            if error == Some(libc::ENOBUFS) && self.arm_multishot(index) {
                continue;
            }
            tracing::debug!(errno = ?error, "multishot read ended; the leg's RTP wakes the poll");
            self.watch_rtp(index, true);
        }
    }

    /// Starts a multishot read of a bridged leg's RTP; `false` (the leg
    /// is then watched by the poll) when the ring cannot take it.
    #[cfg(target_os = "linux")]
    fn arm_multishot(&mut self, index: usize) -> bool {
        use std::os::fd::AsRawFd;

        let (Some(ring), Some(Some(slot))) = (self.ring.as_mut(), self.slots.get_mut(index)) else {
            return false;
        };
        self.multishot_generation = (self.multishot_generation + 1) & MULTISHOT_GENERATIONS;
        let id = (self.multishot_generation << MULTISHOT_SLOT_BITS) | index as u64;
        let target = ring.target(index, TransmitTo::Rtp, slot.rtp.as_raw_fd());
        match ring.arm_multishot(id, target) {
            Ok(()) => {
                slot.multishot = Some(id);
                true
            }
            Err(e) => {
                tracing::debug!(leg = %slot.id, cause = %e, "no multishot read");
                false
            }
        }
    }

    /// The kernel timer for tick deadlines, registered in the poll; `None`
    /// (the poll timeout is used) where there is none.
    fn register_timer(&self) -> Option<timer::TickTimer> {
        let timer = match timer::TickTimer::new() {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(cause = %e, "no tick timer; ticks wait on the poll timeout");
                return None;
            }
        };
        match timer.register(self.poll.registry(), TIMER) {
            Ok(()) => Some(timer),
            Err(e) => {
                tracing::debug!(cause = %e, "cannot poll the tick timer");
                None
            }
        }
    }

    /// Runs the tick if its deadline has passed and the worker has legs (an
    /// idle worker sleeps until a leg opens), and the stats interval.
    fn run_due_tick(&mut self) {
        let now = Instant::now();
        if let Some(tick) = self.clock.poll_tick(now)
            && !self.by_id.is_empty()
        {
            self.stats
                .wake_lateness
                .record(now.saturating_duration_since(tick.deadline));
            WorkerStats::add(&self.stats.ticks, 1);
            self.tick(tick);
            self.stats.tick_work.record(now.elapsed());
            if now >= self.window.ends {
                self.window.log(now, &self.stats, &self.phases);
            }
        }
    }

    /// How long to sleep in the poll. With the kernel timer: until a
    /// packet, a command or the timer (armed for the next deadline).
    /// Without: until the tick in whole milliseconds; under a millisecond
    /// away, a short sleep and a zero-timeout poll.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.by_id.is_empty() {
            // Idle: no tick until a leg opens (which starts a new grid).
            return None;
        }
        let now = Instant::now();
        let deadline = self.clock.poll_timeout();
        let remaining = deadline.saturating_duration_since(now);
        if let Some(timer) = &self.timer {
            if remaining.is_zero() {
                return Some(Duration::ZERO);
            }
            if self.armed == Some(deadline) {
                return None;
            }
            match timer.arm(remaining) {
                Ok(()) => {
                    self.armed = Some(deadline);
                    return None;
                }
                Err(e) => {
                    tracing::debug!(cause = %e, "tick timer not armed");
                }
            }
        }
        if remaining >= Duration::from_millis(1) {
            return Some(Duration::from_millis(remaining.as_millis() as u64));
        }
        if !remaining.is_zero() {
            thread::sleep(remaining.min(FINE_SLEEP));
        }
        Some(Duration::ZERO)
    }

    /// Reads what is queued on one socket, in batches ([`RecvBatch`]); a
    /// socket with more than [`READ_ROUNDS`] batches waiting gets another
    /// turn after the others.
    fn read_socket(&mut self, t: Token) -> usize {
        let (index, via) = untoken(t);
        let Some(mut batch) = self.batch.take() else {
            return 0;
        };
        let mut read = 0;
        for round in 0.. {
            if round == READ_ROUNDS {
                self.again.push(t);
                break;
            }
            let Some(Some(slot)) = self.slots.get(index) else {
                break;
            };
            let socket = match via {
                TransmitTo::Rtp => &slot.rtp,
                TransmitTo::Rtcp => &slot.rtcp,
            };
            let drained = match batch.recv(socket) {
                Ok(drained) => drained,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors surface here on Linux; the socket is fine.
                    tracing::trace!(cause = %e, "media socket receive error");
                    continue;
                }
            };
            read += batch.len();
            for i in 0..batch.len() {
                if let Some((bytes, Some(src))) = batch.get(i) {
                    self.handle_datagram(index, via, bytes, src);
                }
            }
            self.drain(index);
            if drained {
                break;
            }
        }
        self.batch = Some(batch);
        read
    }

    /// One datagram received on a leg's socket: RTCP to the core, RTP to
    /// the core and, across a bridge, relayed to the other leg at once.
    fn handle_datagram(&mut self, index: usize, via: TransmitTo, bytes: &[u8], src: SocketAddr) {
        if let Some((peer, tx)) = self.receive_datagram(index, via, bytes, src)
            && let Some(Some(other)) = self.slots.get(peer)
        {
            send(&self.stats, other, &self.send_buf, tx);
        }
    }

    /// [`Worker::handle_datagram`] without the send: the relayed packet,
    /// if any, is in `send_buf`, to leave from slot `peer`'s socket.
    fn receive_datagram(
        &mut self,
        index: usize,
        via: TransmitTo,
        bytes: &[u8],
        src: SocketAddr,
    ) -> Option<(usize, Transmit)> {
        let slot = self.slots.get_mut(index)?.as_mut()?;
        let now = Instant::now();
        match via {
            TransmitTo::Rtcp => {
                slot.core.handle_rtcp(now, src, bytes);
                None
            }
            TransmitTo::Rtp => {
                WorkerStats::add(&self.stats.packets_received, 1);
                let relay = slot.core.handle_rtp(now, src, bytes);
                let (relay, peer) = (relay?, slot.peer?);
                let other = self.slots.get_mut(peer)?.as_mut()?;
                let tx = other.core.handle_relay(now, &relay, &mut self.send_buf)?;
                WorkerStats::add(&self.stats.packets_forwarded, 1);
                Some((peer, tx))
            }
        }
    }

    /// Reads every ready socket through the ring, in rounds of one
    /// submission: one datagram from each socket, with the relays of the
    /// previous round's datagrams leaving in the same submission. A socket
    /// that gave a datagram is read again next round (the poll is
    /// edge-triggered: a socket is read until it is empty); after
    /// [`READ_ROUNDS`] rounds the rest waits its turn (`again`), so frames
    /// due go first. Leaves `ready` empty, or holding what is left to read
    /// socket by socket when the ring fails.
    #[cfg(target_os = "linux")]
    fn read_ready_batched(&mut self, ready: &mut Vec<Token>) {
        use std::os::fd::AsRawFd;

        if ready.is_empty() {
            return;
        }
        let mut pending = std::mem::take(ready);
        let mut next = Vec::new();
        let mut touched = Vec::new();
        let mut scratch = std::mem::take(&mut self.scratch);
        for round in 0.. {
            let Some(mut ring) = self.ring.take() else {
                break;
            };
            // Set on a failed submission: the ring is dropped (nothing of
            // it is in flight) and the worker goes on without it.
            let mut broken = None;
            ring.start_reads();
            if round < READ_ROUNDS {
                for &t in &pending {
                    let (index, via) = untoken(t);
                    let Some(Some(slot)) = self.slots.get(index) else {
                        continue;
                    };
                    let fd = match via {
                        TransmitTo::Rtp => slot.rtp.as_raw_fd(),
                        TransmitTo::Rtcp => slot.rtcp.as_raw_fd(),
                    };
                    if let Err(e) = ring.push_recv(t.0, ring.target(index, via, fd)) {
                        broken = Some(e);
                        break;
                    }
                }
            } else {
                self.again.append(&mut pending);
            }
            if broken.is_none() && ring.is_idle() {
                self.ring = Some(ring);
                break;
            }
            match ring.submit() {
                Ok(failed) if broken.is_none() => {
                    WorkerStats::add(&self.stats.send_errors, failed);
                }
                Ok(_) => {}
                Err(e) => broken = Some(e),
            }
            if let Some(e) = broken {
                tracing::error!(cause = %e, "batched media I/O failed; one syscall per datagram from now");
                break;
            }
            pending.clear();
            for k in 0..ring.recv_count() {
                let Some((owner, got)) = ring.recv_result(k) else {
                    break;
                };
                let t = Token(owner);
                let (index, via) = untoken(t);
                match got {
                    Ok((bytes, src)) => {
                        next.push(t);
                        let Some(src) = src else {
                            continue;
                        };
                        scratch.clear();
                        scratch.extend_from_slice(bytes);
                        touched.push(index);
                        if let Some((peer, tx)) = self.receive_datagram(index, via, &scratch, src)
                            && let Some(Some(other)) = self.slots.get(peer)
                            && let Err(e) = push_send(&mut ring, peer, other, &self.send_buf, tx)
                        {
                            broken = Some(e);
                        }
                    }
                    Err(errno) if errno == libc::EAGAIN => {}
                    Err(errno) => {
                        // ICMP errors surface here on Linux; the socket is
                        // fine and may hold more.
                        tracing::trace!(errno, "media socket receive error");
                        next.push(t);
                    }
                }
            }
            touched.dedup();
            for index in touched.drain(..) {
                self.drain(index);
            }
            if let Some(e) = broken {
                tracing::error!(cause = %e, "batched media I/O failed; one syscall per datagram from now");
                break;
            }
            self.ring = Some(ring);
            std::mem::swap(&mut pending, &mut next);
        }
        self.scratch = scratch;
        // The ring failed: the rest goes socket by socket.
        ready.append(&mut pending);
        ready.append(&mut next);
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

    /// Runs the legs whose phase the tick (and any it skipped) holds.
    fn tick(&mut self, tick: Tick) {
        if tick.missed > 0 {
            WorkerStats::add(&self.stats.late_ticks, 1);
        }
        let mut frames = 0;
        let mut members = std::mem::take(&mut self.members);
        for phase in 0..PHASES {
            let Some((missed, deadline)) = self.clock.phase_due(&tick, phase) else {
                continue;
            };
            members.clear();
            members.extend_from_slice(self.phases.members(phase));
            frames += self.run_phase(&members, missed, deadline);
        }
        self.members = members;
        WorkerStats::add(&self.stats.frames_sent, frames);
    }

    /// One phase's legs, one syscall per datagram: each leg reads what
    /// arrived since its last frame, then sends its frame.
    #[cfg(not(target_os = "linux"))]
    fn run_phase(&mut self, members: &[usize], missed: u64, deadline: Instant) -> u64 {
        self.run_phase_direct(members, missed, deadline)
    }

    /// One phase's legs, through the ring where there is one.
    #[cfg(target_os = "linux")]
    fn run_phase(&mut self, members: &[usize], missed: u64, deadline: Instant) -> u64 {
        let Some(mut ring) = self.ring.take() else {
            return self.run_phase_direct(members, missed, deadline);
        };
        let frames = match self.run_phase_batched(&mut ring, members, missed, deadline) {
            Ok(frames) => frames,
            Err(e) => {
                // The ring's operations all completed or never started;
                // the legs carry on one syscall per datagram.
                tracing::error!(cause = %e, "batched media I/O failed; one syscall per datagram from now");
                return self.run_phase_direct(members, missed, deadline);
            }
        };
        self.ring = Some(ring);
        frames
    }

    fn run_phase_direct(&mut self, members: &[usize], missed: u64, deadline: Instant) -> u64 {
        let mut frames = 0;
        for &index in members {
            // What arrived since the last frame, first: a digit in it
            // cuts a barge-in prompt before this frame.
            self.read_at_tick(index);
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
        frames
    }

    /// Drains an unwatched leg's RTP socket at its tick.
    fn read_at_tick(&mut self, index: usize) {
        if matches!(self.slots.get(index), Some(Some(slot)) if !slot.reads_at_once()) {
            let _ = self.read_socket(token(index, TransmitTo::Rtp));
        }
    }

    /// One phase's legs in two submissions: every unwatched leg's read
    /// (one datagram each, or a drain when due, see [`DRAIN_EVERY`]),
    /// then, with what arrived handled, every leg's frame and reports.
    #[cfg(target_os = "linux")]
    fn run_phase_batched(
        &mut self,
        ring: &mut TickRing,
        members: &[usize],
        missed: u64,
        deadline: Instant,
    ) -> io::Result<u64> {
        use std::os::fd::AsRawFd;

        ring.clear()?;
        for &index in members {
            let Some(Some(slot)) = self.slots.get_mut(index) else {
                continue;
            };
            if slot.reads_at_once() {
                continue;
            }
            slot.reads = slot.reads.wrapping_add(1);
            if slot.backlog || slot.reads % DRAIN_EVERY == 0 {
                let read = self.read_socket(token(index, TransmitTo::Rtp));
                if let Some(Some(slot)) = self.slots.get_mut(index) {
                    slot.backlog = read > 1;
                }
            } else {
                let target = ring.target(index, TransmitTo::Rtp, slot.rtp.as_raw_fd());
                ring.push_recv(index, target)?;
            }
        }
        ring.submit()?;
        for k in 0..ring.recv_count() {
            match ring.recv_result(k) {
                Some((index, Ok((bytes, Some(src))))) => {
                    self.handle_datagram(index, TransmitTo::Rtp, bytes, src);
                }
                Some((_, Err(errno))) if errno != libc::EAGAIN => {
                    // ICMP errors surface here on Linux; the socket is fine.
                    tracing::trace!(errno, "media socket receive error");
                }
                _ => {}
            }
        }
        let mut frames = 0;
        for &index in members {
            let Some(Some(slot)) = self.slots.get_mut(index) else {
                continue;
            };
            let now = Instant::now();
            if let Some(tx) = slot.core.handle_tick(now, missed, &mut self.send_buf) {
                push_send(ring, index, slot, &self.send_buf, tx)?;
                frames += 1;
            }
            while let Some(tx) = slot.core.poll_transmit(now, &mut self.send_buf) {
                push_send(ring, index, slot, &self.send_buf, tx)?;
            }
            self.drain(index);
        }
        let failed = ring.submit()?;
        let sent_at = Instant::now();
        WorkerStats::add(&self.stats.send_errors, failed);
        self.stats
            .lateness
            .record_n(sent_at.saturating_duration_since(deadline), frames);
        Ok(frames)
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
                        let plays = matches!(
                            command,
                            LegCommand::Play { .. } | LegCommand::Interject { .. }
                        );
                        if let Some(Some(slot)) = self.slots.get_mut(index) {
                            slot.core.handle_command(now, command);
                        }
                        if plays {
                            self.rephase_unsent(index);
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
        if self.by_id.is_empty() {
            // The first leg after an idle spell: the grid again from its
            // next point, so the first tick does not count the idle time
            // as missed.
            self.clock = TickClock::new(aligned_start(self.origin, now));
            self.armed = None;
        }
        let index = self.free.pop().unwrap_or(self.slots.len());
        let rtp = UdpSocket::from_std(rtp);
        let mut rtcp = UdpSocket::from_std(rtcp);
        let registry: &Registry = self.poll.registry();
        // RTP is read at the leg's tick phase until it is bridged (see
        // `Slot::rtp_watched`); RTCP is rare and read when it comes.
        let registered = registry.register(
            &mut rtcp,
            token(index, TransmitTo::Rtcp),
            Interest::READABLE,
        );
        if let Err(e) = registered {
            tracing::error!(leg = %id, cause = %e, "cannot register media sockets");
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
        let phase = self.phases.add(index, self.clock.next_phase());
        let slot = Slot {
            id,
            core,
            rtp,
            rtcp,
            _lease: lease,
            events,
            peer: None,
            phase,
            rtp_watched: false,
            multishot: None,
            cancelled: None,
            reads: 0,
            backlog: false,
        };
        #[cfg(target_os = "linux")]
        if let Some(ring) = &mut self.ring {
            use std::os::fd::AsRawFd;
            ring.register(index, slot.rtp.as_raw_fd(), slot.rtcp.as_raw_fd());
        }
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else if let Some(place) = self.slots.get_mut(index) {
            *place = Some(slot);
        }
        self.by_id.insert(id, index);
        tracing::debug!(leg = %id, "media leg open");
    }

    /// A leg about to send its first frame joins the phase due soonest
    /// ([`PhasePlan::add`]): its first prompt packet leaves within a tick
    /// or two, not up to 20 ms later at the phase it got when it opened.
    /// A leg that has sent keeps its phase.
    fn rephase_unsent(&mut self, index: usize) {
        let next = self.clock.next_phase();
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        if slot.core.has_sent() {
            return;
        }
        self.phases.remove(index, slot.phase);
        slot.phase = self.phases.add(index, next);
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
            self.read_at_once(me, true);
        }
    }

    /// Whether a leg's RTP is read the moment it arrives (bridged) or at
    /// its tick: by a multishot read where the worker waits in its ring,
    /// else by the poll.
    fn read_at_once(&mut self, index: usize, at_once: bool) {
        #[cfg(target_os = "linux")]
        if at_once && self.ring_waits && self.arm_multishot(index) {
            return;
        }
        #[cfg(target_os = "linux")]
        if !at_once
            && let Some(Some(slot)) = self.slots.get_mut(index)
            && let Some(id) = slot.multishot.take()
        {
            // Datagrams it took before it ends are still handled (not
            // relayed).
            slot.cancelled = Some(id);
            if let Some(ring) = self.ring.as_mut()
                && let Err(e) = ring.cancel_multishot(id)
            {
                tracing::warn!(leg = %slot.id, cause = %e, "multishot read not cancelled");
            }
            return;
        }
        self.watch_rtp(index, at_once);
    }

    /// Whether the leg's RTP socket wakes the worker (`Slot::rtp_watched`).
    /// Registering a socket with packets already queued reports it ready at
    /// once, so nothing waits for the next packet.
    fn watch_rtp(&mut self, index: usize, watch: bool) {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        if slot.rtp_watched == watch {
            return;
        }
        let registry = self.poll.registry();
        let done = if watch {
            registry.register(
                &mut slot.rtp,
                token(index, TransmitTo::Rtp),
                Interest::READABLE,
            )
        } else {
            registry.deregister(&mut slot.rtp)
        };
        match done {
            Ok(()) => slot.rtp_watched = watch,
            // Unwatched, the socket is still read at every tick.
            Err(e) => tracing::warn!(leg = %slot.id, cause = %e, "media socket watch not changed"),
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
        self.read_at_once(index, false);
        if let Some(p) = peer {
            if let Some(Some(other)) = self.slots.get_mut(p) {
                other.core.set_bridged(false);
                other.peer = None;
            }
            self.read_at_once(p, false);
        }
    }

    fn close(&mut self, now: Instant, id: LegId) {
        let Some(index) = self.by_id.remove(&id) else {
            return;
        };
        self.unbridge(index);
        if let Some(Some(slot)) = self.slots.get_mut(index) {
            slot.core.close(now);
            while let Some(tx) = slot.core.poll_transmit(now, &mut self.send_buf) {
                send(&self.stats, slot, &self.send_buf, tx);
            }
        }
        self.drain(index);
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        self.phases.remove(index, slot.phase);
        let registry = self.poll.registry();
        if slot.rtp_watched {
            let _ = registry.deregister(&mut slot.rtp);
        }
        let _ = registry.deregister(&mut slot.rtcp);
        #[cfg(target_os = "linux")]
        if let Some(ring) = &mut self.ring {
            ring.unregister(index);
        }
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

/// Queues one datagram from the slot's socket on the ring.
#[cfg(target_os = "linux")]
fn push_send(
    ring: &mut TickRing,
    index: usize,
    slot: &Slot,
    buf: &[u8],
    tx: Transmit,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    let fd = match tx.via {
        TransmitTo::Rtp => slot.rtp.as_raw_fd(),
        TransmitTo::Rtcp => slot.rtcp.as_raw_fd(),
    };
    let Some(bytes) = buf.get(..tx.len) else {
        return Ok(());
    };
    ring.push_send(ring.target(index, tx.via, fd), bytes, tx.to)
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

/// The worker's timing over one stats interval, logged at its end.
struct Window {
    ends: Instant,
    lateness: LatenessHistogram,
    wake: LatenessHistogram,
    work: LatenessHistogram,
    late_ticks: u64,
}

impl Window {
    fn new(now: Instant, stats: &WorkerStats) -> Window {
        Window {
            ends: now + STATS_INTERVAL,
            lateness: stats.lateness.snapshot(),
            wake: stats.wake_lateness.snapshot(),
            work: stats.tick_work.snapshot(),
            late_ticks: stats.late_ticks.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Logs the interval (when the worker has legs) and starts the next.
    fn log(&mut self, now: Instant, stats: &WorkerStats, phases: &PhasePlan) {
        let legs = stats.legs.load(std::sync::atomic::Ordering::Relaxed);
        if legs > 0 {
            let sent = stats.lateness.summary_since(&self.lateness);
            let wake = stats.wake_lateness.summary_since(&self.wake);
            let work = stats.tick_work.summary_since(&self.work);
            let late_ticks = stats
                .late_ticks
                .load(std::sync::atomic::Ordering::Relaxed)
                .saturating_sub(self.late_ticks);
            let sizes = phases.sizes();
            tracing::debug!(
                legs,
                frames = sent.count,
                send_p50_us = sent.p50.as_micros() as u64,
                send_p99_us = sent.p99.as_micros() as u64,
                send_max_us = sent.max.as_micros() as u64,
                wake_p50_us = wake.p50.as_micros() as u64,
                wake_p99_us = wake.p99.as_micros() as u64,
                wake_max_us = wake.max.as_micros() as u64,
                work_p50_us = work.p50.as_micros() as u64,
                work_p99_us = work.p99.as_micros() as u64,
                work_max_us = work.max.as_micros() as u64,
                late_ticks,
                phase_min = sizes.iter().min().copied().unwrap_or(0),
                phase_max = sizes.iter().max().copied().unwrap_or(0),
                "media worker timing"
            );
        }
        *self = Window::new(now, stats);
    }
}

/// The tick deadline as a kernel timer the poll waits on.
mod timer {
    #[cfg(target_os = "linux")]
    pub use linux::TickTimer;
    #[cfg(not(target_os = "linux"))]
    pub use other::TickTimer;

    #[cfg(target_os = "linux")]
    mod linux {
        use std::io;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::time::Duration;

        use mio::unix::SourceFd;
        use mio::{Interest, Registry, Token};

        /// A non-blocking `timerfd` on `CLOCK_MONOTONIC` (the clock of
        /// `Instant` on Linux). Its expiry is exact to the kernel's
        /// high-resolution timer, with no slack added.
        pub struct TickTimer {
            fd: OwnedFd,
        }

        impl TickTimer {
            pub fn new() -> io::Result<TickTimer> {
                // SAFETY: plain syscall with constant arguments; a
                // non-negative result is a new fd we own.
                let fd = unsafe {
                    libc::timerfd_create(
                        libc::CLOCK_MONOTONIC,
                        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                    )
                };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `fd` was just created and nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                Ok(TickTimer { fd })
            }

            pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
                registry.register(
                    &mut SourceFd(&self.fd.as_raw_fd()),
                    token,
                    Interest::READABLE,
                )
            }

            /// Fires once, `after` from now (at least 1 ns: zero disarms).
            pub fn arm(&self, after: Duration) -> io::Result<()> {
                let after = after.max(Duration::from_nanos(1));
                let spec = libc::itimerspec {
                    it_interval: libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                    it_value: libc::timespec {
                        tv_sec: after.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                        tv_nsec: after.subsec_nanos().into(),
                    },
                };
                // SAFETY: a valid timerfd, a pointer to a live itimerspec,
                // and a null old-value pointer (allowed).
                let rc = unsafe {
                    libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
                };
                if rc < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            }

            /// Reads the expiry count so the fd stops being readable.
            pub fn clear(&self) {
                let mut count = [0u8; 8];
                // SAFETY: reads at most 8 bytes into a live 8-byte buffer.
                // A would-block (not expired) result is fine to ignore.
                let _ = unsafe {
                    libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len())
                };
            }
        }
    }

    /// No kernel timer here: the poll timeout stands in.
    #[cfg(not(target_os = "linux"))]
    mod other {
        use std::io;
        use std::time::Duration;

        use mio::{Registry, Token};

        pub struct TickTimer;

        impl TickTimer {
            pub fn new() -> io::Result<TickTimer> {
                Err(io::ErrorKind::Unsupported.into())
            }
            pub fn register(&self, _: &Registry, _: Token) -> io::Result<()> {
                Err(io::ErrorKind::Unsupported.into())
            }
            pub fn arm(&self, _: Duration) -> io::Result<()> {
                Err(io::ErrorKind::Unsupported.into())
            }
            pub fn clear(&self) {}
        }
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
    loop {
        // While recordings are open the thread looks for work every
        // RECORDER_NAP instead of sleeping on the channel: a chunk handed
        // over then wakes no one (each would cost the media worker a
        // wake-up call), and a nap's chunks are written in one wake-up.
        let job = if open.is_empty() {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        } else {
            match jobs.try_recv() {
                Ok(job) => job,
                Err(mpsc::TryRecvError::Empty) => {
                    thread::sleep(RECORDER_NAP);
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        };
        match &job.out {
            RecordOutput::Start { path, layout } => match Recorder::create(path, *layout) {
                Ok(r) => {
                    open.insert(job.leg, r);
                }
                Err(e) => finished(&job, Err(e)),
            },
            RecordOutput::Audio { codec, left, right } => {
                let Some(rec) = open.get_mut(&job.leg) else {
                    continue;
                };
                if let Err(e) = rec.write(*codec, left, right) {
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
