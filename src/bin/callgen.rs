//! `callgen`: the load generator's command line (DESIGN §9). Places
//! `--calls` SIP calls at `--rate` per second against `--target`, each with
//! real RTP for `--duration`, and prints loss, jitter, timing off the 20 ms
//! grid and its own CPU use. With `--agent-listen` it also answers the
//! calls the switch transfers to that address and reports both media
//! directions of each bridged call with the switch's added delay. Exits 1
//! when a call failed, a bridged call went silent, or the loss is above
//! `--max-loss`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;

use switchboard::callgen::{self, Codec, Config, SendAudio};
use switchboard::config::PortRange;
use switchboard::ivr::duration::parse_duration;
use switchboard::media::dtmf::Digit;

/// Switchboard's load generator: concurrent SIP calls with real RTP.
#[derive(Debug, Parser)]
#[command(name = "callgen", version, about)]
struct Args {
    /// The switch's SIP address (UDP).
    #[arg(long)]
    target: SocketAddr,
    /// Number to dial.
    #[arg(long, default_value = "100")]
    number: String,
    /// Calls to place; all are up at once when the hold outlasts the ramp.
    #[arg(long, default_value_t = 100)]
    calls: u64,
    /// New calls per second (call k starts at a random point of the k-th
    /// 1/RATE slot).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Hold time of each call before the BYE, e.g. 60s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, value_enum, default_value_t = Codec::Pcmu)]
    codec: Codec,
    /// Send an RFC 4733 digit this long after the answer: DIGIT@DURATION,
    /// e.g. 1@5s.
    #[arg(long, value_parser = parse_dtmf)]
    dtmf: Option<(Digit, Duration)>,
    /// What the calls send.
    #[arg(long, value_enum, default_value_t = SendAudio::Tone)]
    send_audio: SendAudio,
    /// Local address for SIP and RTP sockets (and the SDP).
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// RTP port range; even ports are used.
    #[arg(long, default_value = "40000-59999")]
    rtp_ports: PortRange,
    /// Worker threads [default: available cores, at most 4].
    #[arg(long)]
    workers: Option<usize>,
    /// Bridged run: answer the switch's INVITEs on this SIP address, as
    /// the agents' phones (the flow transfers to sip:agent@ADDRESS).
    #[arg(long)]
    agent_listen: Option<SocketAddr>,
    /// Highest tolerated RTP loss in percent.
    #[arg(long, default_value_t = 0.0)]
    max_loss: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_dtmf(text: &str) -> Result<(Digit, Duration), String> {
    let (digit, at) = text
        .split_once('@')
        .ok_or_else(|| format!("expected DIGIT@DURATION, e.g. 1@5s, not {text:?}"))?;
    let mut chars = digit.chars();
    let digit = match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => None,
    }
    .ok_or_else(|| format!("{digit:?} is not a key (0-9, *, #, A-D)"))?;
    let at = parse_duration(at).map_err(|e| e.to_string())?;
    Ok((digit, at))
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("callgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number");
    }
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(2)
    });
    let config = Config {
        target: args.target,
        number: args.number,
        calls: args.calls,
        rate: args.rate,
        duration: args.duration,
        codec: args.codec,
        dtmf: args.dtmf,
        send_audio: args.send_audio,
        local_ip: args.local_ip,
        rtp_ports: (args.rtp_ports.start, args.rtp_ports.end),
        workers,
        capture_call: None,
        agent_listen: args.agent_listen,
    };
    let report = callgen::run(config).context("load generator")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("encode report")?
        );
    } else {
        println!("{report}");
    }
    let bridge_failed = report.bridge.as_ref().is_some_and(|b| {
        b.agent_answered < report.calls.answered
            || b.caller_to_agent.silent_calls > 0
            || b.agent_to_caller.silent_calls > 0
    });
    let failed = report.calls.failed > 0 || bridge_failed || report.loss_percent() > args.max_loss;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
