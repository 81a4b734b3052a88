//! Media engine hot paths (DESIGN §9): the per-tick frame a playing leg
//! sends, a received packet relayed across a bridge, and 20 ms of a
//! thousand recorded bridged calls, on the sans-IO leg core (no syscalls).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use switchboard::media::engine::{InbandDtmf, LegCommand, LegConfig, LegCore, PlaybackId};
use switchboard::media::g711;
use switchboard::media::prompt::Prompt;
use switchboard::media::recorder::Layout;
use switchboard::media::rtp::rtcp::NtpTime;
use switchboard::media::rtp::{RtpHeader, RtpSender};
use switchboard::media::sdp::{Codec, Direction, Negotiated};

const TICK: Duration = Duration::from_millis(20);

fn negotiated(codec: Codec, te: Option<u8>) -> Negotiated {
    let remote: SocketAddr = "192.0.2.10:4000".parse().unwrap();
    Negotiated {
        codec,
        codec_pt: codec.payload_type(),
        telephone_event_pt: te,
        remote_rtp: remote,
        remote_rtcp: "192.0.2.10:4001".parse().unwrap(),
        direction: Direction::SendRecv,
        held: false,
        remote_ptime: None,
        media_index: 0,
    }
}

fn leg(codec: Codec, te: Option<u8>, config: LegConfig, t0: Instant) -> LegCore {
    LegCore::new(
        config,
        negotiated(codec, te),
        RtpSender::new(1, 2, 3),
        t0,
        NtpTime::new(3_900_000_000, 0),
    )
}

fn speech_frame() -> [u8; 160] {
    let pcm: Vec<i16> = (0..160)
        .map(|n| ((n as f32 * 0.21).sin() * 7000.0) as i16)
        .collect();
    let mut ulaw = [0u8; 160];
    g711::encode_ulaw(&pcm, &mut ulaw);
    ulaw
}

fn packet(pt: u8, seq: u16, ts: u32, payload: &[u8], buf: &mut [u8]) -> usize {
    RtpHeader {
        marker: false,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0xCA11,
    }
    .write_packet(payload, buf)
    .unwrap()
}

fn tick(c: &mut Criterion) {
    let t0 = Instant::now();
    let pcm: Vec<i16> = (0..8000)
        .map(|n| ((n as f32 * 0.1).sin() * 8000.0) as i16)
        .collect();
    let prompt = Arc::new(Prompt::from_pcm("moh", pcm));
    let mut core = leg(Codec::Pcmu, Some(101), LegConfig::default(), t0);
    core.handle_command(
        t0,
        LegCommand::Play {
            playback: PlaybackId(1),
            prompts: vec![prompt],
            barge: true,
            looped: true,
        },
    );
    let mut buf = [0u8; 1500];
    let mut now = t0;
    let mut g = c.benchmark_group("media");
    g.throughput(Throughput::Elements(1));
    g.bench_function("leg_tick_frame", |b| {
        b.iter(|| {
            now += TICK;
            let tx = core.handle_tick(now, 0, &mut buf);
            black_box(tx);
            black_box(core.poll_transmit(now, &mut buf));
        })
    });
    g.finish();
}

fn relay(c: &mut Criterion) {
    let t0 = Instant::now();
    let src: SocketAddr = "198.51.100.7:61000".parse().unwrap();
    let frame = speech_frame();
    let mut g = c.benchmark_group("media");
    g.throughput(Throughput::Elements(1));
    for (name, codec_b) in [
        ("handle_rtp_bridged_same_codec", Codec::Pcmu),
        ("handle_rtp_bridged_transcode", Codec::Pcma),
    ] {
        let mut a = leg(Codec::Pcmu, Some(101), LegConfig::default(), t0);
        let mut b = leg(codec_b, Some(101), LegConfig::default(), t0);
        a.set_bridged(true);
        b.set_bridged(true);
        let mut inbuf = [0u8; 1500];
        let mut out = [0u8; 1500];
        let mut seq = 0u16;
        let mut now = t0;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                seq = seq.wrapping_add(1);
                now += TICK;
                let n = packet(0, seq, u32::from(seq) * 160, &frame, &mut inbuf);
                if let Some(r) = a.handle_rtp(now, src, &inbuf[..n]) {
                    black_box(b.handle_relay(now, &r, &mut out));
                }
            })
        });
    }
    // Receive only (IVR leg with telephone-event), and with the in-band
    // detector forced on: what `InbandDtmf::Always` would cost per frame.
    for (name, inband) in [
        ("handle_rtp_ivr", InbandDtmf::Auto),
        ("handle_rtp_ivr_inband_goertzel", InbandDtmf::Always),
    ] {
        let config = LegConfig {
            inband_dtmf: inband,
            ..LegConfig::default()
        };
        let mut a = leg(Codec::Pcmu, Some(101), config, t0);
        let mut inbuf = [0u8; 1500];
        let mut seq = 0u16;
        let mut now = t0;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                seq = seq.wrapping_add(1);
                now += TICK;
                let n = packet(0, seq, u32::from(seq) * 160, &frame, &mut inbuf);
                black_box(a.handle_rtp(now, src, &inbuf[..n]));
                while let Some(e) = a.poll_event() {
                    black_box(e);
                }
            })
        });
    }
    g.finish();
}

/// 20 ms of `CALLS` bridged calls, each recorded in stereo on its caller
/// leg as the switch records every bridged call: a packet each way through
/// the bridge, both legs' tick, and the recording's chunks handed over
/// (not written: the recorder thread's work is not in this figure). The
/// calls' state is spread as on a loaded worker, so cache misses count.
fn bridged_recorded(c: &mut Criterion) {
    const CALLS: usize = 1000;
    let t0 = Instant::now();
    let src: SocketAddr = "198.51.100.7:61000".parse().unwrap();
    let frame = speech_frame();
    let mut calls: Vec<(LegCore, LegCore)> = (0..CALLS)
        .map(|_| {
            let mut caller = leg(Codec::Pcmu, Some(101), LegConfig::default(), t0);
            let mut agent = leg(Codec::Pcmu, Some(101), LegConfig::default(), t0);
            caller.set_bridged(true);
            agent.set_bridged(true);
            caller.handle_command(
                t0,
                LegCommand::StartRecording {
                    path: "bench.wav".into(),
                    layout: Layout::Stereo,
                },
            );
            (caller, agent)
        })
        .collect();
    let mut inbuf = [0u8; 1500];
    let mut out = [0u8; 1500];
    let mut seq = 0u16;
    let mut now = t0;
    let mut g = c.benchmark_group("media");
    g.throughput(Throughput::Elements(CALLS as u64));
    g.bench_function("bridged_recorded_call_20ms", |bench| {
        bench.iter(|| {
            seq = seq.wrapping_add(1);
            now += TICK;
            let n = packet(0, seq, u32::from(seq) * 160, &frame, &mut inbuf);
            for (caller, agent) in calls.iter_mut() {
                if let Some(r) = caller.handle_rtp(now, src, &inbuf[..n]) {
                    black_box(agent.handle_relay(now, &r, &mut out));
                }
                if let Some(r) = agent.handle_rtp(now, src, &inbuf[..n]) {
                    black_box(caller.handle_relay(now, &r, &mut out));
                }
                for leg in [&mut *caller, &mut *agent] {
                    black_box(leg.handle_tick(now, 0, &mut out));
                    while leg.poll_transmit(now, &mut out).is_some() {}
                    while leg.poll_event().is_some() {}
                    while let Some(chunk) = leg.poll_record() {
                        black_box(chunk);
                    }
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, tick, relay, bridged_recorded);
criterion_main!(benches);
