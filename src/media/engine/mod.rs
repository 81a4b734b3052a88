//! The media engine runtime: moves RTP for every call leg (DESIGN §4, §9).
//!
//! A [`MediaEngine`] runs N worker threads (default: one per core). Each
//! worker is a plain OS thread with one `mio::Poll` over the UDP sockets of
//! its legs and **one media clock**: a tick grid computed from the
//! worker's start instant ([`TickClock`]): 20 ms split into ten 2 ms phases,
//! the legs spread evenly over them ([`PhasePlan`]). At each of its ticks every playing leg sends
//! exactly one frame, so thousands of calls cost thousands of `sendto`s,
//! not thousands of timer wake-ups. Received packets are handled as soon
//! as the poll reports them, not on the tick, so bridged audio is relayed
//! within microseconds and a DTMF digit cuts a barge-in prompt before its
//! next frame.
//!
//! Each leg's behaviour lives in the sans-IO [`LegCore`] (symmetric RTP,
//! prompt playback, barge-in, RFC 4733 / in-band / SIP INFO digits, RTCP,
//! media timeout, recording, bridging with header rewrite and μ-law↔A-law
//! transcoding). The worker owns the sockets and makes the syscalls.
//!
//! # Usage
//!
//! The call task owns a [`LegHandle`] per leg. Every method only queues a
//! command to the leg's worker and wakes it: nothing blocks or awaits.
//! Results come back as [`LegEvent`]s on the channel given at open.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::media::engine::{EngineConfig, LegEventKind, LegSetup, MediaEngine};
//! use switchboard::media::port_pool::PortPool;
//! # fn demo(negotiated: switchboard::media::sdp::Negotiated,
//! #         welcome: Arc<switchboard::media::prompt::Prompt>) -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Runtime::new()?;
//! # rt.block_on(async {
//! let engine = MediaEngine::start(EngineConfig::default())?;
//! let pool = PortPool::new(20000..=29999)?;
//! let (rtp, rtcp, lease) = {
//!     let lease = pool.allocate().ok_or("no port")?;
//!     let rtp = std::net::UdpSocket::bind(("0.0.0.0", lease.rtp_port()))?;
//!     let rtcp = std::net::UdpSocket::bind(("0.0.0.0", lease.rtcp_port()))?;
//!     (rtp, rtcp, lease)
//! };
//! let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let caller = engine.open_leg(LegSetup { lease, rtp, rtcp, negotiated, events, near: None })?;
//! let playing = caller.play(vec![welcome], true, false);
//! while let Some(event) = rx.recv().await {
//!     match event.kind {
//!         LegEventKind::Digit { digit, .. } => println!("caller pressed {digit}"),
//!         LegEventKind::PlaybackFinished { playback } if playback == playing => break,
//!         LegEventKind::MediaTimeout { .. } => break,
//!         _ => {}
//!     }
//! }
//! caller.close(); // also on drop; the port lease returns to the pool
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok(()) }
//! ```
//!
//! To bridge a caller to an agent, open the agent's leg with
//! `near: Some(caller.id())` (bridged legs must share a worker), then
//! `caller.bridge(&agent)`.

mod batch;
#[cfg(target_os = "linux")]
mod bufring;
mod clock;
mod leg;
mod priority;
#[cfg(target_os = "linux")]
mod ring;
mod stats;
mod worker;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use clock::{PHASES, PhasePlan, TICK, Tick, TickClock};
pub use leg::{LegConfig, LegCore, LegStats, RecordOutput, Relay, Transmit, TransmitTo};
pub use stats::{EngineStats, LatenessHistogram, LatenessSummary};

use crate::media::dtmf::Digit;
use crate::media::port_pool::PortLease;
use crate::media::prompt::Prompt;
use crate::media::recorder::{Layout, RecorderError, RecordingInfo};
use crate::media::sdp::Negotiated;

use worker::{Command, WorkerHandle};

/// Why the engine could not start or take a leg.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start media worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot create the media poller: {0}")]
    Poll(#[source] std::io::Error),
    #[error("cannot make the RTP/RTCP socket non-blocking: {0}")]
    Socket(#[source] std::io::Error),
    #[error("the media engine has stopped")]
    Stopped,
    /// Bridged legs must live on one worker: open the second leg with
    /// `near: Some(first)`.
    #[error("legs {a} and {b} are on different media workers")]
    DifferentWorkers { a: LegId, b: LegId },
}

/// When to run the in-band (Goertzel) DTMF detector on received audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InbandDtmf {
    /// Only for legs that negotiated no telephone-event (RFC 4733): their
    /// gateway can only send tones as audio.
    #[default]
    Auto,
    /// On every leg (costs a decode and 8 Goertzel filters per frame).
    Always,
    /// Never.
    Off,
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// Per-leg behaviour (media timeout, RTCP interval, jitter buffer, …).
    pub leg: LegConfig,
    /// Name prefix of the worker threads (`{prefix}-{n}`).
    pub thread_name: String,
    /// Hand each tick phase's reads and frames to the kernel in one
    /// `io_uring` submission each (Linux, where the kernel allows it);
    /// off, or where it is unavailable, one syscall per datagram.
    pub batched_io: bool,
    /// Nice value each worker thread asks for at start (Linux), so the
    /// media clock goes first when the machine is busy; `None` leaves the
    /// threads at the process's priority. A value below the process's
    /// needs `CAP_SYS_NICE` (or `RLIMIT_NICE`): without it the workers
    /// keep their priority and the engine says so once.
    pub nice: Option<i32>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 0,
            leg: LegConfig::default(),
            thread_name: "media".to_owned(),
            batched_io: true,
            nice: None,
        }
    }
}

/// Identity of one leg, unique within an engine. It also names the worker
/// the leg lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(u64);

impl LegId {
    const WORKER_SHIFT: u32 = 48;

    fn new(worker: usize, serial: u64) -> LegId {
        LegId(((worker as u64) << Self::WORKER_SHIFT) | (serial & ((1 << Self::WORKER_SHIFT) - 1)))
    }

    /// Index of the worker thread the leg runs on.
    pub fn worker(self) -> usize {
        (self.0 >> Self::WORKER_SHIFT) as usize
    }

    /// The raw value (for logs and metrics labels).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.worker(),
            self.0 & ((1 << Self::WORKER_SHIFT) - 1)
        )
    }
}

/// Identity of one `play` request, so the call can tell which playback a
/// [`LegEventKind::PlaybackFinished`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaybackId(pub u64);

/// Where a reported digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// RTP telephone-event (RFC 4733).
    Rfc4733,
    /// Tones heard in the audio (Goertzel).
    Inband,
    /// SIP INFO, passed in by the call with [`LegHandle::dtmf_from_signalling`].
    SipInfo,
}

/// Something a leg reports to its call.
#[derive(Debug)]
pub struct LegEvent {
    pub leg: LegId,
    pub kind: LegEventKind,
}

/// What happened on a leg.
#[derive(Debug)]
pub enum LegEventKind {
    /// A key press, reported once however it arrived. `barged` names the
    /// barge-in playback it stopped (no further frame of it was sent).
    Digit {
        digit: Digit,
        source: DigitSource,
        barged: Option<PlaybackId>,
    },
    /// A non-looping playback sent its last frame.
    PlaybackFinished { playback: PlaybackId },
    /// No RTP or RTCP from the remote for the configured time while it is
    /// not on hold (reported once; again only after media resumed).
    MediaTimeout { silent_for: Duration },
    /// Symmetric RTP: media now goes to where the remote's RTP comes from.
    RemoteLatched { rtp: std::net::SocketAddr },
    /// A recording ended ([`LegHandle::stop_recording`], close, or an error
    /// while writing).
    RecordingFinished(Result<RecordingInfo, RecorderError>),
    /// The leg is closed; its sockets and port lease are released. Final
    /// counters for the call record.
    Closed { stats: LegStats },
}

/// What the engine needs to run one leg.
pub struct LegSetup {
    /// The leased port pair; returned to the pool when the leg closes.
    pub lease: PortLease,
    /// The bound RTP socket (made non-blocking by the engine).
    pub rtp: UdpSocket,
    /// The bound RTCP socket (RTP port + 1).
    pub rtcp: UdpSocket,
    /// The offer/answer result: codec, payload types, remote address.
    pub negotiated: Negotiated,
    /// Where the leg's [`LegEvent`]s go.
    pub events: tokio::sync::mpsc::UnboundedSender<LegEvent>,
    /// Put the leg on the same worker as this one (to bridge them later).
    pub near: Option<LegId>,
}

/// Shared state behind every clone of [`MediaEngine`].
struct Shared {
    workers: Vec<WorkerHandle>,
    next_serial: AtomicU64,
    next_playback: AtomicU64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for w in &self.workers {
            w.shutdown();
        }
    }
}

/// The media engine: a cheap-to-clone handle on the worker threads. The
/// workers stop when the last clone (and every [`LegHandle`]) is dropped.
#[derive(Clone)]
pub struct MediaEngine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("workers", &self.shared.workers.len())
            .finish_non_exhaustive()
    }
}

impl MediaEngine {
    /// Spawns the worker threads.
    pub fn start(config: EngineConfig) -> Result<MediaEngine, EngineError> {
        let n = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut workers = Vec::with_capacity(n);
        let epoch = std::time::Instant::now();
        for index in 0..n {
            let origin = epoch + clock::stagger(index, n);
            workers.push(worker::spawn(index, origin, &config)?);
        }
        Ok(MediaEngine {
            shared: Arc::new(Shared {
                workers,
                next_serial: AtomicU64::new(1),
                next_playback: AtomicU64::new(1),
            }),
        })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Hands a leg to a worker (the least loaded, or `near`'s) and returns
    /// its handle at once; the worker registers the sockets.
    pub fn open_leg(&self, setup: LegSetup) -> Result<LegHandle, EngineError> {
        let workers = &self.shared.workers;
        let index = match setup.near {
            Some(near) if near.worker() < workers.len() => near.worker(),
            _ => workers
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| w.stats.legs.load(Ordering::Relaxed))
                .map_or(0, |(i, _)| i),
        };
        let worker = workers.get(index).ok_or(EngineError::Stopped)?;
        setup
            .rtp
            .set_nonblocking(true)
            .map_err(EngineError::Socket)?;
        setup
            .rtcp
            .set_nonblocking(true)
            .map_err(EngineError::Socket)?;
        let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let id = LegId::new(index, serial);
        // Counted here so the next open sees the load at once.
        worker.stats.legs.fetch_add(1, Ordering::Relaxed);
        worker.send(Command::Open(Box::new((id, setup))))?;
        Ok(LegHandle {
            id,
            engine: self.clone(),
            closed: false,
        })
    }

    /// Counters summed over every worker, for `/metrics`.
    pub fn stats(&self) -> EngineStats {
        let mut total = EngineStats::default();
        for w in &self.shared.workers {
            total.add(&w.stats.snapshot());
        }
        total
    }

    /// Send-time deviation from the 20 ms grid, per worker (p50/p99/max).
    pub fn lateness(&self) -> Vec<LatenessSummary> {
        self.shared
            .workers
            .iter()
            .map(|w| w.stats.lateness.summary())
            .collect()
    }

    /// Send-time deviation over all workers together.
    pub fn lateness_total(&self) -> LatenessSummary {
        let mut all = LatenessHistogram::default();
        for w in &self.shared.workers {
            all.merge(&w.stats.lateness);
        }
        all.summary()
    }

    /// How late the workers woke for their ticks (p50/p99/max), all
    /// workers together.
    pub fn wake_lateness_total(&self) -> LatenessSummary {
        let mut all = LatenessHistogram::default();
        for w in &self.shared.workers {
            all.merge(&w.stats.wake_lateness);
        }
        all.summary()
    }

    /// How long one tick's sends took (p50/p99/max), all workers together.
    pub fn tick_work_total(&self) -> LatenessSummary {
        let mut all = LatenessHistogram::default();
        for w in &self.shared.workers {
            all.merge(&w.stats.tick_work);
        }
        all.summary()
    }

    fn send(&self, leg: LegId, command: Command) {
        if let Some(w) = self.shared.workers.get(leg.worker())
            && w.send(command).is_err()
        {
            tracing::debug!(%leg, "media command after the engine stopped");
        }
    }

    fn next_playback(&self) -> PlaybackId {
        PlaybackId(self.shared.next_playback.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a [`LegHandle`] asks of its leg.
#[derive(Debug)]
pub enum LegCommand {
    /// Replaces any playback: `prompts` in order, once or looping.
    Play {
        playback: PlaybackId,
        prompts: Vec<Arc<Prompt>>,
        barge: bool,
        looped: bool,
    },
    /// Plays `prompts` once over the current playback, which pauses and
    /// goes on from where it stopped after the last frame (an announcement
    /// over music on hold). `PlaybackFinished` names `playback`.
    Interject {
        playback: PlaybackId,
        prompts: Vec<Arc<Prompt>>,
    },
    /// Stops the playback, and one paused under it (no event).
    Stop,
    /// A digit from SIP INFO.
    Digit(Digit),
    /// New offer/answer result (re-INVITE, UPDATE).
    Update(Negotiated),
    /// The remote is on hold: no media timeout.
    Hold(bool),
    StartRecording {
        path: PathBuf,
        layout: Layout,
    },
    StopRecording,
    /// Sends `digit` as RFC 4733 events.
    SendDtmf(Digit),
}

/// One leg of a call on the engine. Methods queue a command and return at
/// once; commands to a closed leg are ignored. Dropping the handle closes
/// the leg.
#[derive(Debug)]
pub struct LegHandle {
    id: LegId,
    engine: MediaEngine,
    closed: bool,
}

impl LegHandle {
    pub fn id(&self) -> LegId {
        self.id
    }

    fn command(&self, command: LegCommand) {
        self.engine.send(self.id, Command::Leg(self.id, command));
    }

    /// Plays `prompts` in order (replacing what plays). With `barge`, the
    /// first digit stops it at once and is reported with `barged`. With
    /// `looped` it starts over after the last prompt (music on hold) and
    /// never finishes; otherwise [`LegEventKind::PlaybackFinished`] follows
    /// the last frame.
    pub fn play(&self, prompts: Vec<Arc<Prompt>>, barge: bool, looped: bool) -> PlaybackId {
        let playback = self.engine.next_playback();
        self.command(LegCommand::Play {
            playback,
            prompts,
            barge,
            looped,
        });
        playback
    }

    /// Plays `prompts` once while what plays now (music on hold) pauses;
    /// after the last frame [`LegEventKind::PlaybackFinished`] follows and
    /// the paused playback goes on from where it stopped. [`Self::play`]
    /// or [`Self::stop`] end both.
    pub fn interject(&self, prompts: Vec<Arc<Prompt>>) -> PlaybackId {
        let playback = self.engine.next_playback();
        self.command(LegCommand::Interject { playback, prompts });
        playback
    }

    /// Stops the playback; no event follows.
    pub fn stop(&self) {
        self.command(LegCommand::Stop);
    }

    /// A digit the call received by SIP INFO: reported (and barging) like
    /// one heard in the media.
    pub fn dtmf_from_signalling(&self, digit: Digit) {
        self.command(LegCommand::Digit(digit));
    }

    /// A re-INVITE or UPDATE changed the media: codec, payload types,
    /// remote address (symmetric RTP latches afresh when it moves), hold.
    pub fn update(&self, negotiated: Negotiated) {
        self.command(LegCommand::Update(negotiated));
    }

    /// The remote put the call on hold (`true`) or took it off: no media
    /// timeout while held.
    pub fn hold(&self, held: bool) {
        self.command(LegCommand::Hold(held));
    }

    /// Records into a new WAV file at `path`: [`Layout::Mono`] is what the
    /// remote says (voicemail); [`Layout::Stereo`] is the remote on the
    /// left and what the leg sends it (the bridged agent, prompts) on the
    /// right. Replaces a running recording (which is finished first).
    pub fn start_recording(&self, path: PathBuf, layout: Layout) {
        self.command(LegCommand::StartRecording { path, layout });
    }

    /// Finishes the recording; [`LegEventKind::RecordingFinished`] follows.
    pub fn stop_recording(&self) {
        self.command(LegCommand::StopRecording);
    }

    /// Sends `digit` to the remote as RFC 4733 events (ignored if the leg
    /// negotiated no telephone-event).
    pub fn send_dtmf(&self, digit: Digit) {
        self.command(LegCommand::SendDtmf(digit));
    }

    /// Relays media both ways between this leg and `other` (DESIGN §4):
    /// headers rewritten into each leg's numbering, μ-law↔A-law
    /// transcoding when the codecs differ, digits forwarded as RFC 4733.
    /// A leg already bridged is unbridged first. A playback on either leg
    /// takes precedence over the relayed audio until it ends.
    pub fn bridge(&self, other: &LegHandle) -> Result<(), EngineError> {
        if self.id.worker() != other.id.worker() {
            return Err(EngineError::DifferentWorkers {
                a: self.id,
                b: other.id,
            });
        }
        self.engine
            .send(self.id, Command::Bridge(self.id, other.id));
        Ok(())
    }

    /// Ends the bridge this leg is in (both sides).
    pub fn unbridge(&self) {
        self.engine.send(self.id, Command::Unbridge(self.id));
    }

    /// Closes the leg: sends an RTCP BYE, finishes a recording, drops the
    /// sockets and returns the port lease; [`LegEventKind::Closed`] follows.
    pub fn close(mut self) {
        self.close_now();
    }

    fn close_now(&mut self) {
        if !self.closed {
            self.closed = true;
            self.engine.send(self.id, Command::Close(self.id));
        }
    }
}

impl Drop for LegHandle {
    fn drop(&mut self) {
        self.close_now();
    }
}
