//! The load generator (DESIGN §9): places many concurrent SIP calls with
//! real RTP against the switch and measures media quality, which SIPp
//! cannot do at these call counts.
//!
//! Each call sends an INVITE with an SDP offer, ACKs the 200, sends 20 ms
//! G.711 frames (a tone or silence, optionally an RFC 4733 digit) and
//! receives the switch's RTP: loss and reordering from sequence numbers
//! (RFC 3550 A.1, A.3), interarrival jitter (A.8) and each packet's arrival
//! deviation from the stream's ideal 20 ms grid ([`stats`]). After the hold
//! time it sends BYE, unless the switch hung up first.
//!
//! [`run`] places the calls on a few worker threads ([`worker`]) and
//! returns a [`Report`]; `src/bin/callgen.rs` is its command line.

pub mod rtp;
pub mod sip;
pub mod stats;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::media::dtmf::Digit;

pub use rtp::{Codec, SendAudio};
use stats::{Histogram, Percentiles};

/// Settings of one generator run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The switch's SIP address (UDP).
    pub target: SocketAddr,
    /// The number dialed (Request-URI user part).
    pub number: String,
    /// Calls placed in total; with a hold longer than `calls / rate`, all
    /// of them are up at once.
    pub calls: u64,
    /// New calls per second.
    pub rate: f64,
    /// How long each answered call is held before the generator's BYE.
    pub duration: Duration,
    pub codec: Codec,
    /// An RFC 4733 digit sent this long after the answer.
    pub dtmf: Option<(Digit, Duration)>,
    pub send_audio: SendAudio,
    /// Address the SIP and RTP sockets bind and the SDP offers.
    pub local_ip: IpAddr,
    /// RTP ports (even ones are used), both ends inclusive.
    pub rtp_ports: (u16, u16),
    pub workers: usize,
    /// Keep the decoded audio this call (by index) receives, for checks.
    pub capture_call: Option<u64>,
}

/// Why the generator could not run.
#[derive(Debug, thiserror::Error)]
pub enum CallgenError {
    #[error("poll: {0}")]
    Poll(#[source] std::io::Error),
    #[error("bind SIP socket: {0}")]
    SipSocket(#[source] std::io::Error),
    #[error("start worker thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("a worker thread panicked")]
    WorkerPanicked,
}

/// Outcome of the calls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallCounts {
    pub attempted: u64,
    pub answered: u64,
    pub failed: u64,
    /// Failures by final status code, or `timeout`, `no-sdp`, `socket`.
    pub failures: BTreeMap<String, u64>,
    /// Answered calls the switch hung up before the hold ended.
    pub ended_by_switch: u64,
    /// Most calls up at the same time.
    pub peak_concurrent: u64,
}

/// RTP totals across calls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RtpTotals {
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub out_of_order: u64,
    /// 20 ms frames the received timestamps span that no packet carried:
    /// silence the switch did not send, or media ticks it skipped.
    pub grid_skipped: u64,
    /// Answered calls that received no RTP at all.
    pub silent_calls: u64,
}

/// The generator's own CPU use, to show it was not the bottleneck.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneratorLoad {
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    /// `cpu_seconds / wall_seconds`.
    pub cores: f64,
    /// Worker ticks that ran more than 20 ms late.
    pub late_ticks: u64,
}

/// The summary of a run, printed as text or JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub calls: CallCounts,
    /// INVITE → 200, in milliseconds.
    pub setup_ms: Percentiles,
    pub rtp: RtpTotals,
    /// RFC 3550 A.8 interarrival jitter at the end of each call, in ms.
    pub jitter_ms: Percentiles,
    /// Each received packet's arrival deviation from its stream's ideal
    /// 20 ms grid, in ms (see [`stats::StreamStats::deviations_ns`]).
    pub grid_deviation_ms: Percentiles,
    /// `kernel` (SO_TIMESTAMPNS) or `user` (time of the read).
    pub arrival_timestamps: &'static str,
    pub generator: GeneratorLoad,
    /// Decoded audio of [`Config::capture_call`].
    #[serde(skip)]
    pub captured: Vec<i16>,
}

impl Report {
    /// Lost packets as a percentage of those expected.
    pub fn loss_percent(&self) -> f64 {
        self.rtp.loss_percent
    }
}

/// Places the calls and waits for all of them to end.
pub fn run(config: Config) -> Result<Report, CallgenError> {
    let workers = config.workers.clamp(1, 64);
    // The kernel turns receive timestamps on some time after the first
    // socket asks (a deferred switch); asking now, and holding this socket
    // for the run, has them on before the first call's RTP.
    let _timestamps_on = mio::net::UdpSocket::bind(SocketAddr::new(config.local_ip, 0))
        .inspect(|s| {
            rtp::enable_timestamps(s);
        })
        .map_err(CallgenError::SipSocket)?;
    let cpu_before = process_cpu_seconds();
    let wall_start = Instant::now();
    let shared = Arc::new(worker::Shared {
        ports: rtp::PortRange::new(config.rtp_ports.0, config.rtp_ports.1),
        frames: rtp::AudioFrames::new(config.codec, config.send_audio),
        // Time for every worker to reach its loop and for timestamps to
        // be on.
        start: Instant::now() + Duration::from_millis(100),
        active: AtomicU64::new(0),
        peak: AtomicU64::new(0),
        user_timestamps: AtomicBool::new(false),
        config,
    });
    let mut handles = Vec::with_capacity(workers);
    for id in 0..workers {
        let shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("callgen-{id}"))
            .spawn(move || worker::run(shared, id, workers))
            .map_err(CallgenError::Thread)?;
        handles.push(handle);
    }
    let mut results = Vec::with_capacity(workers);
    for h in handles {
        results.push(h.join().map_err(|_| CallgenError::WorkerPanicked)??);
    }
    let wall = wall_start.elapsed().as_secs_f64();
    let cpu = (process_cpu_seconds() - cpu_before).max(0.0);
    let mut report = summarize(results, shared.peak.load(Ordering::Relaxed));
    report.arrival_timestamps = if shared.user_timestamps.load(Ordering::Relaxed) {
        "user"
    } else {
        "kernel"
    };
    report.generator.cpu_seconds = cpu;
    report.generator.wall_seconds = wall;
    report.generator.cores = if wall > 0.0 { cpu / wall } else { 0.0 };
    Ok(report)
}

fn summarize(results: Vec<worker::WorkerResult>, peak: u64) -> Report {
    let mut report = Report::default();
    let mut setup = Vec::new();
    let mut jitter = Vec::new();
    let mut deviations = Histogram::default();
    for w in results {
        deviations.merge(&w.deviations);
        report.generator.late_ticks += w.late_ticks;
        if report.captured.is_empty() {
            report.captured = w.captured;
        }
        for c in w.calls {
            let calls = &mut report.calls;
            calls.attempted += 1;
            if c.answered {
                calls.answered += 1;
            }
            if let Some(why) = c.failure {
                calls.failed += 1;
                *calls.failures.entry(why).or_default() += 1;
            }
            if c.ended_by_switch {
                calls.ended_by_switch += 1;
            }
            if let Some(d) = c.setup {
                setup.push(d.as_secs_f64() * 1e3);
            }
            if let Some(j) = c.jitter {
                jitter.push(j * 1e3);
            }
            let rtp = &mut report.rtp;
            rtp.sent += c.sent;
            rtp.received += c.received;
            rtp.expected += c.expected;
            rtp.lost += c.lost;
            rtp.out_of_order += c.out_of_order;
            rtp.grid_skipped += c.grid_skipped;
            if c.answered && c.received == 0 {
                rtp.silent_calls += 1;
            }
        }
    }
    report.calls.peak_concurrent = peak;
    if report.rtp.expected > 0 {
        report.rtp.loss_percent = report.rtp.lost as f64 * 100.0 / report.rtp.expected as f64;
    }
    report.setup_ms = Percentiles::of(&mut setup);
    report.jitter_ms = Percentiles::of(&mut jitter);
    report.grid_deviation_ms = deviations.percentiles().scaled(1e-6);
    report
}

/// CPU time (user + system) this process has used, from `/proc/self/stat`
/// fields 14 and 15; 0 where there is no `/proc`.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces: count from after its ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field 14 is index 11.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux architecture's user-space ABI.
    (ticks(11) + ticks(12)) / 100.0
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.calls;
        writeln!(
            f,
            "calls: {} attempted, {} answered, {} failed, {} ended by the switch (peak {} up at once)",
            c.attempted, c.answered, c.failed, c.ended_by_switch, c.peak_concurrent
        )?;
        if !c.failures.is_empty() {
            let list: Vec<String> = c
                .failures
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            writeln!(f, "  failures: {}", list.join(", "))?;
        }
        let p = &self.setup_ms;
        writeln!(
            f,
            "setup INVITE->200: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p.p50, p.p99, p.max
        )?;
        let r = &self.rtp;
        writeln!(
            f,
            "RTP: sent {}, received {} of {} expected, lost {} ({:.4} %), out of order {}, \
             frames not sent on the timestamp grid {}, calls without RTP {}",
            r.sent,
            r.received,
            r.expected,
            r.lost,
            r.loss_percent,
            r.out_of_order,
            r.grid_skipped,
            r.silent_calls
        )?;
        let j = &self.jitter_ms;
        writeln!(
            f,
            "jitter (RFC 3550 A.8, per call): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            j.p50, j.p99, j.max
        )?;
        let d = &self.grid_deviation_ms;
        writeln!(
            f,
            "arrival off the 20 ms grid ({} timestamps, {} packets): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            self.arrival_timestamps, d.count, d.p50, d.p99, d.p999, d.max
        )?;
        let g = &self.generator;
        write!(
            f,
            "generator CPU: {:.1} s over {:.1} s = {:.2} cores, {} late ticks",
            g.cpu_seconds, g.wall_seconds, g.cores, g.late_ticks
        )
    }
}
