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
//! With [`Config::agent_listen`] the run is bridged: the generator also
//! plays the agents' phones ([`agent`]), answering the calls the switch's
//! flow transfers to that address, and both ends send tagged audio, so the
//! report gives loss, jitter and the switch's added delay in each
//! direction.
//!
//! [`run`] places the calls on a few worker threads ([`worker`]) and
//! returns a [`Report`]; `src/bin/callgen.rs` is its command line.

mod agent;
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
    /// New calls per second: call k starts at a random point of
    /// `[k, k + 1) / rate` seconds into the run.
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
    /// Bridged run: answer the switch's INVITEs on this SIP address (the
    /// flow transfers the calls to `sip:agent@` it).
    pub agent_listen: Option<SocketAddr>,
}

/// Why the generator could not run.
#[derive(Debug, thiserror::Error)]
pub enum CallgenError {
    #[error("poll: {0}")]
    Poll(#[source] std::io::Error),
    #[error("bind SIP socket: {0}")]
    SipSocket(#[source] std::io::Error),
    #[error("bind the answering side's SIP socket: {0}")]
    AgentSocket(#[source] std::io::Error),
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
    /// Frames the generator sent more than one frame interval (20 ms) late
    /// (it fell behind; the JSON name is kept from when it counted ticks).
    pub late_ticks: u64,
}

/// One direction of a bridged call's media.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Direction {
    /// Packets the sending end sent (including before the bridge was up).
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub out_of_order: u64,
    /// Calls whose receiving end got no RTP at all.
    pub silent_calls: u64,
    /// RFC 3550 A.8 jitter at the end of each call, in ms.
    pub jitter_ms: Percentiles,
    /// Each packet's send at one end to its kernel arrival at the other,
    /// through the switch, in ms.
    pub added_delay_ms: Percentiles,
}

impl Direction {
    fn set_loss(&mut self) {
        if self.expected > 0 {
            self.loss_percent = self.lost as f64 * 100.0 / self.expected as f64;
        }
    }
}

/// The answering side of a bridged run and both media directions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BridgeReport {
    /// INVITEs from the switch answered.
    pub agent_answered: u64,
    /// INVITEs from the switch refused (no usable offer, no port).
    pub agent_refused: u64,
    /// Answered calls the switch ended with BYE.
    pub agent_ended_by_switch: u64,
    /// Answered calls whose 200 was never ACKed.
    pub agent_not_acked: u64,
    /// Answered calls still up when the run ended.
    pub agent_still_up: u64,
    /// The answering side's 200 to the arrival there of the caller's
    /// first relayed packet, per call, in ms (DESIGN §9: agent answer →
    /// audio). The caller sends every 20 ms, so up to one frame of it is
    /// the caller's cadence.
    pub answer_to_audio_ms: Percentiles,
    pub caller_to_agent: Direction,
    pub agent_to_caller: Direction,
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
    /// The ACK's send to the first RTP packet's arrival, per answered
    /// call, in ms (DESIGN §9: first prompt packet after the ACK).
    pub first_audio_ms: Percentiles,
    /// The digit's first RFC 4733 packet to the arrival of the last RTP
    /// packet, on calls the switch ended after the digit (a flow whose key
    /// cuts the prompt and hangs up), in ms (DESIGN §9: DTMF → prompt
    /// stops).
    pub digit_to_last_audio_ms: Percentiles,
    pub generator: GeneratorLoad,
    /// Bridged runs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeReport>,
    /// Decoded audio of [`Config::capture_call`].
    #[serde(skip)]
    pub captured: Vec<i16>,
}

impl Report {
    /// Lost packets as a percentage of those expected (the worse
    /// direction of a bridged run).
    pub fn loss_percent(&self) -> f64 {
        match &self.bridge {
            Some(b) => self
                .rtp
                .loss_percent
                .max(b.caller_to_agent.loss_percent)
                .max(b.agent_to_caller.loss_percent),
            None => self.rtp.loss_percent,
        }
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
    let agent_sip = config.agent_listen.map(agent::bind).transpose()?;
    let cpu_before = process_cpu_seconds();
    let wall_start = Instant::now();
    let shared = Arc::new(worker::Shared {
        tagged: config.agent_listen.is_some(),
        callers_done: AtomicBool::new(false),
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
    let agent = match agent_sip {
        Some(sip) => {
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name("callgen-agent".into())
                .spawn(move || agent::run(shared, sip))
                .map_err(CallgenError::Thread)?;
            Some(handle)
        }
        None => None,
    };
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
    let mut failed = None;
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(_) => failed = failed.or(Some(CallgenError::WorkerPanicked)),
        }
    }
    shared.callers_done.store(true, Ordering::Release);
    let agent = agent
        .map(|h| h.join().map_err(|_| CallgenError::WorkerPanicked)?)
        .transpose()?;
    if let Some(e) = failed {
        return Err(e);
    }
    let wall = wall_start.elapsed().as_secs_f64();
    let cpu = (process_cpu_seconds() - cpu_before).max(0.0);
    let mut report = summarize(results, agent, shared.peak.load(Ordering::Relaxed));
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

fn summarize(
    results: Vec<worker::WorkerResult>,
    agent: Option<agent::AgentResult>,
    peak: u64,
) -> Report {
    let mut report = Report::default();
    let mut setup = Vec::new();
    let mut jitter = Vec::new();
    let mut first_audio = Vec::new();
    let mut digit_to_last = Vec::new();
    let mut deviations = Histogram::default();
    let mut delays = Histogram::default();
    for w in results {
        deviations.merge(&w.deviations);
        delays.merge(&w.delays);
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
            if let Some(ns) = c.first_audio_ns {
                first_audio.push(ns as f64 * 1e-6);
            }
            if let Some(ns) = c.digit_to_last_ns {
                digit_to_last.push(ns as f64 * 1e-6);
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
    report.first_audio_ms = Percentiles::of(&mut first_audio);
    report.digit_to_last_audio_ms = Percentiles::of(&mut digit_to_last);
    report.grid_deviation_ms = deviations.percentiles().scaled(1e-6);
    if let Some(mut a) = agent {
        report.generator.late_ticks += a.late_ticks;
        let r = &report.rtp;
        let mut agent_to_caller = Direction {
            sent: a.sent,
            received: r.received,
            expected: r.expected,
            lost: r.lost,
            out_of_order: r.out_of_order,
            silent_calls: r.silent_calls,
            jitter_ms: report.jitter_ms,
            added_delay_ms: delays.percentiles().scaled(1e-6),
            ..Direction::default()
        };
        agent_to_caller.set_loss();
        let mut agent_jitter: Vec<f64> = a.jitter.iter().map(|j| j * 1e3).collect();
        let mut caller_to_agent = Direction {
            sent: r.sent,
            received: a.received,
            expected: a.expected,
            lost: a.lost,
            out_of_order: a.out_of_order,
            silent_calls: a.silent_calls,
            jitter_ms: Percentiles::of(&mut agent_jitter),
            added_delay_ms: a.delays.percentiles().scaled(1e-6),
            ..Direction::default()
        };
        caller_to_agent.set_loss();
        a.jitter.clear();
        let mut answer_to_audio: Vec<f64> = a
            .answer_to_audio_ns
            .iter()
            .map(|&ns| ns as f64 * 1e-6)
            .collect();
        report.bridge = Some(BridgeReport {
            agent_answered: a.answered,
            agent_refused: a.refused,
            agent_ended_by_switch: a.ended_by_switch,
            agent_not_acked: a.not_acked,
            agent_still_up: a.still_up,
            answer_to_audio_ms: Percentiles::of(&mut answer_to_audio),
            caller_to_agent,
            agent_to_caller,
        });
    }
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

/// `what (N counted): p50 … ms, p99 … ms, max … ms`, when anything was
/// counted.
fn latency_line(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    counted: &str,
    p: &Percentiles,
) -> fmt::Result {
    if p.count == 0 {
        return Ok(());
    }
    writeln!(
        f,
        "{what} ({} {counted}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p.count, p.p50, p.p99, p.max
    )
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
        latency_line(f, "first RTP after the ACK", "calls", &self.first_audio_ms)?;
        latency_line(
            f,
            "digit -> last RTP packet",
            "calls the switch ended after the digit",
            &self.digit_to_last_audio_ms,
        )?;
        if let Some(b) = &self.bridge {
            writeln!(
                f,
                "agent side: {} answered, {} refused, {} ended by the switch, {} not ACKed, {} still up at the end",
                b.agent_answered,
                b.agent_refused,
                b.agent_ended_by_switch,
                b.agent_not_acked,
                b.agent_still_up
            )?;
            latency_line(
                f,
                "agent answer -> caller's first packet at the agent",
                "calls",
                &b.answer_to_audio_ms,
            )?;
            for (name, d) in [
                ("caller->agent", &b.caller_to_agent),
                ("agent->caller", &b.agent_to_caller),
            ] {
                writeln!(
                    f,
                    "{name}: sent {}, received {} of {} expected, lost {} ({:.4} %), out of order {}, calls without RTP {}",
                    d.sent,
                    d.received,
                    d.expected,
                    d.lost,
                    d.loss_percent,
                    d.out_of_order,
                    d.silent_calls
                )?;
                let a = &d.added_delay_ms;
                writeln!(
                    f,
                    "  added delay through the switch ({} packets): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; jitter p50 {:.3} ms, p99 {:.3} ms",
                    a.count, a.p50, a.p99, a.p999, a.max, d.jitter_ms.p50, d.jitter_ms.p99
                )?;
            }
        }
        let g = &self.generator;
        write!(
            f,
            "generator CPU: {:.1} s over {:.1} s = {:.2} cores, {} frames sent over 20 ms late",
            g.cpu_seconds, g.wall_seconds, g.cores, g.late_ticks
        )
    }
}
