//! The media engine on real UDP sockets on 127.0.0.1 (DESIGN §4): a
//! prompt played to a plain socket, RFC 4733 digits received, and two
//! legs bridged with rewritten headers and transcoding.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::media::dtmf::rfc4733::TelephoneEvent;
use switchboard::media::engine::{
    DigitSource, EngineConfig, LegEvent, LegEventKind, LegHandle, LegSetup, MediaEngine,
};
use switchboard::media::g711;
use switchboard::media::port_pool::PortPool;
use switchboard::media::prompt::Prompt;
use switchboard::media::rtp::{RtpHeader, RtpPacket};
use switchboard::media::sdp::{Codec, Direction, Negotiated};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(5);

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-engine-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A "phone": a plain UDP socket for RTP.
fn phone() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

struct Leg {
    handle: LegHandle,
    events: UnboundedReceiver<LegEvent>,
    /// The leg's RTP address.
    addr: SocketAddr,
}

fn open(
    engine: &MediaEngine,
    pool: &PortPool,
    remote: SocketAddr,
    codec: Codec,
    te: Option<u8>,
    near: Option<&Leg>,
) -> Leg {
    let (rtp, rtcp, lease) = {
        let mut sockets = None;
        let lease = pool
            .allocate_bindable(|port| {
                let rtp = UdpSocket::bind(("127.0.0.1", port));
                let rtcp = UdpSocket::bind(("127.0.0.1", port + 1));
                match (rtp, rtcp) {
                    (Ok(a), Ok(b)) => {
                        sockets = Some((a, b));
                        true
                    }
                    _ => false,
                }
            })
            .expect("a free port pair");
        let (rtp, rtcp) = sockets.unwrap();
        (rtp, rtcp, lease)
    };
    let addr = rtp.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let negotiated = Negotiated {
        codec,
        codec_pt: codec.payload_type(),
        telephone_event_pt: te,
        remote_rtp: remote,
        remote_rtcp: SocketAddr::new(remote.ip(), remote.port() + 1),
        direction: Direction::SendRecv,
        held: false,
        remote_ptime: None,
        media_index: 0,
    };
    let handle = engine
        .open_leg(LegSetup {
            lease,
            rtp,
            rtcp,
            negotiated,
            events: tx,
            near: near.map(|l| l.handle.id()),
        })
        .unwrap();
    Leg {
        handle,
        events: rx,
        addr,
    }
}

fn next_event(
    rx: &mut UnboundedReceiver<LegEvent>,
    mut want: impl FnMut(&LegEventKind) -> bool,
) -> LegEventKind {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(ev) if want(&ev.kind) => return ev.kind,
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    panic!("event not seen within {WAIT:?}");
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; 12 + payload.len()];
    RtpHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
    }
    .write_packet(payload, &mut buf)
    .unwrap();
    buf
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

fn engine() -> MediaEngine {
    engine_with(true)
}

/// `batched_io: false`: one syscall per datagram, the path taken where the
/// kernel offers no usable io_uring.
fn engine_with(batched_io: bool) -> MediaEngine {
    MediaEngine::start(EngineConfig {
        workers: 2,
        batched_io,
        ..EngineConfig::default()
    })
    .unwrap()
}

#[test]
fn a_prompt_arrives_frame_by_frame_on_the_20ms_grid() {
    prompt_frame_by_frame(engine(), "play", 31000);
}

#[test]
fn a_prompt_arrives_frame_by_frame_one_syscall_per_datagram() {
    prompt_frame_by_frame(engine_with(false), "play-direct", 35000);
}

fn prompt_frame_by_frame(engine: MediaEngine, tag: &str, ports: u16) {
    let dir = temp_dir(tag);
    let wav = dir.join("tone.wav");
    // 0.5 s of 440 Hz at 16 kHz stereo: the loader converts it.
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    let mut source = Vec::new();
    for n in 0..8000 {
        let v = (2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 16_000.0).sin() * 10_000.0;
        w.write_sample(v as i16).unwrap();
        w.write_sample(v as i16).unwrap();
        source.push(v as i16);
    }
    w.finalize().unwrap();
    let prompt = Arc::new(Prompt::load(&wav, "tone").unwrap());
    assert_eq!(prompt.frame_count(), 25);

    let pool = PortPool::new(ports..=ports + 999).unwrap();
    let caller = phone();
    let mut leg = open(
        &engine,
        &pool,
        caller.local_addr().unwrap(),
        Codec::Pcma,
        None,
        None,
    );
    let playing = leg.handle.play(vec![prompt.clone(), prompt], false, false);

    let mut buf = [0u8; 1500];
    let mut pcm = Vec::new();
    let mut headers = Vec::new();
    let mut arrivals = Vec::new();
    while headers.len() < 50 {
        let (n, from) = caller.recv_from(&mut buf).expect("a frame every 20 ms");
        assert_eq!(from, leg.addr);
        arrivals.push(Instant::now());
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        headers.push((
            p.marker(),
            p.sequence(),
            p.timestamp(),
            p.ssrc(),
            p.payload_type(),
        ));
        let mut frame = [0i16; 160];
        g711::decode_alaw(p.payload(), &mut frame);
        pcm.extend_from_slice(&frame[..p.payload().len().min(160)]);
    }
    assert!(matches!(
        next_event(&mut leg.events, |k| matches!(k, LegEventKind::PlaybackFinished { .. })),
        LegEventKind::PlaybackFinished { playback } if playback == playing
    ));
    // One stream: one SSRC, consecutive sequence numbers, timestamps 160
    // apart, the marker only on the first packet (RFC 3550 §5.1).
    let (_, seq0, ts0, ssrc, pt) = headers[0];
    assert!(headers[0].0);
    assert_eq!(pt, 8);
    for (i, &(m, seq, ts, s, _)) in headers.iter().enumerate().skip(1) {
        assert!(!m, "no marker inside one playback");
        assert_eq!(seq, seq0.wrapping_add(i as u16));
        assert_eq!(ts, ts0.wrapping_add(160 * i as u32));
        assert_eq!(s, ssrc);
    }
    // 1 s of audio in 49 intervals of 20 ms (loose bounds: shared CPU).
    let span = arrivals[49].duration_since(arrivals[0]);
    assert!(
        span > Duration::from_millis(900) && span < Duration::from_millis(1200),
        "{span:?}"
    );
    // What arrived is the tone: same length, same energy (7071 rms).
    assert_eq!(pcm.len(), 8000);
    let level = rms(&pcm[400..3600]);
    assert!((6500.0..7600.0).contains(&level), "rms {level}");
    // Nothing more after the end.
    assert!(caller.recv_from(&mut buf).is_err());

    let stats = engine.stats();
    assert!(stats.frames_sent >= 50);
    let late = engine.lateness_total();
    assert!(late.count >= 50);
    assert!(late.p50 < Duration::from_millis(5), "{late:?}");

    leg.handle.close();
    let closed = next_event(&mut leg.events, |k| {
        matches!(k, LegEventKind::Closed { .. })
    });
    let LegEventKind::Closed { stats } = closed else {
        unreachable!()
    };
    assert_eq!(stats.frames_sent, 50);
    // The port went back to the pool.
    let deadline = Instant::now() + WAIT;
    while pool.in_use() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn rfc4733_packets_become_one_digit_event() {
    rfc4733_one_digit(engine(), 32000);
}

#[test]
fn rfc4733_packets_become_one_digit_event_one_syscall_per_datagram() {
    rfc4733_one_digit(engine_with(false), 36000);
}

fn rfc4733_one_digit(engine: MediaEngine, ports: u16) {
    let pool = PortPool::new(ports..=ports + 999).unwrap();
    let caller = phone();
    let mut leg = open(
        &engine,
        &pool,
        caller.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        None,
    );
    // RFC 4733 §2.5.1: a '9' in three updates and three end packets.
    for (i, (end, duration)) in [
        (false, 160),
        (false, 320),
        (false, 480),
        (true, 640),
        (true, 640),
        (true, 640),
    ]
    .into_iter()
    .enumerate()
    {
        let ev = TelephoneEvent {
            event: 9,
            end,
            reserved: false,
            volume: 10,
            duration,
        }
        .to_bytes();
        caller
            .send_to(
                &rtp(101, 10 + i as u16, 4000, 0xABCD, i == 0, &ev),
                leg.addr,
            )
            .unwrap();
    }
    let latched = next_event(&mut leg.events, |k| {
        matches!(k, LegEventKind::RemoteLatched { .. })
    });
    assert!(
        matches!(latched, LegEventKind::RemoteLatched { rtp } if rtp == caller.local_addr().unwrap())
    );
    let digit = next_event(&mut leg.events, |k| matches!(k, LegEventKind::Digit { .. }));
    let LegEventKind::Digit {
        digit,
        source,
        barged,
    } = digit
    else {
        unreachable!()
    };
    assert_eq!(
        (digit.as_char(), source, barged),
        ('9', DigitSource::Rfc4733, None)
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        std::iter::from_fn(|| leg.events.try_recv().ok())
            .all(|e| !matches!(e.kind, LegEventKind::Digit { .. })),
        "duplicates absorbed"
    );
    assert_eq!(engine.stats().digits, 1);
}

#[test]
fn bridged_legs_relay_with_rewritten_headers_and_transcoding() {
    let engine = engine();
    bridged_relay(&engine, 33000);
    // Where the kernel has multishot reads, every relayed packet came by
    // one (and the one sent after the unbridge did not).
    let stats = engine.stats();
    if stats.multishot_packets == 0 {
        eprintln!("no multishot reads here: the relays came by readiness events");
    } else {
        assert_eq!(stats.multishot_packets, stats.packets_forwarded);
    }
}

#[test]
fn bridged_legs_relay_one_syscall_per_datagram() {
    let engine = engine_with(false);
    bridged_relay(&engine, 37000);
    assert_eq!(engine.stats().multishot_packets, 0);
}

/// A caller's leg (μ-law, events on 101) and an agent's leg on its
/// worker, with the agent's codec and event payload type.
fn caller_and_agent(
    engine: &MediaEngine,
    pool: &PortPool,
    caller: &UdpSocket,
    agent: &UdpSocket,
    agent_codec: Codec,
    agent_te: u8,
) -> (Leg, Leg) {
    let a = open(
        engine,
        pool,
        caller.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        None,
    );
    let b = open(
        engine,
        pool,
        agent.local_addr().unwrap(),
        agent_codec,
        Some(agent_te),
        Some(&a),
    );
    (a, b)
}

fn bridged_relay(engine: &MediaEngine, ports: u16) {
    let pool = PortPool::new(ports..=ports + 999).unwrap();
    let caller = phone();
    let agent = phone();
    let (a, b) = caller_and_agent(engine, &pool, &caller, &agent, Codec::Pcma, 96);
    assert_eq!(a.handle.id().worker(), b.handle.id().worker());
    a.handle.bridge(&b.handle).unwrap();
    // Let the bridge command land before media flows.
    std::thread::sleep(Duration::from_millis(50));

    let tone: Vec<i16> = (0..160)
        .map(|n| ((n as f64 * 0.3).sin() * 9000.0) as i16)
        .collect();
    let mut ulaw = [0u8; 160];
    g711::encode_ulaw(&tone, &mut ulaw);
    let mut buf = [0u8; 1500];
    let mut got = Vec::new();
    for i in 0..5u16 {
        let sent_at = Instant::now();
        caller
            .send_to(
                &rtp(0, 100 + i, 8000 + 160 * u32::from(i), 0x1111, i == 0, &ulaw),
                a.addr,
            )
            .unwrap();
        let (n, from) = agent.recv_from(&mut buf).expect("relayed packet");
        let delay = sent_at.elapsed();
        assert_eq!(from, b.addr);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        got.push((
            p.marker(),
            p.sequence(),
            p.timestamp(),
            p.ssrc(),
            p.payload_type(),
            delay,
        ));
        let want: Vec<u8> = ulaw.iter().map(|&c| g711::ulaw_to_alaw(c)).collect();
        assert_eq!(p.payload(), &want[..], "μ-law → A-law");
    }
    let (_, seq0, ts0, ssrc, _, _) = got[0];
    assert!(got[0].0, "marker on the first relayed packet");
    assert_ne!(ssrc, 0x1111, "the agent leg's own SSRC");
    for (i, &(_, seq, ts, s, pt, delay)) in got.iter().enumerate() {
        assert_eq!(pt, 8);
        assert_eq!(s, ssrc);
        assert_eq!(seq, seq0.wrapping_add(i as u16));
        assert_eq!(ts, ts0.wrapping_add(160 * i as u32));
        assert!(delay < Duration::from_millis(50), "{delay:?}");
    }
    // A digit from the caller goes to the agent as RFC 4733 with PT 96.
    let ev = TelephoneEvent {
        event: 1,
        end: false,
        reserved: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    caller
        .send_to(&rtp(101, 105, 8800, 0x1111, true, &ev), a.addr)
        .unwrap();
    let (n, _) = agent.recv_from(&mut buf).unwrap();
    let p = RtpPacket::parse(&buf[..n]).unwrap();
    assert_eq!(
        (p.payload_type(), p.ssrc(), p.payload()),
        (96, ssrc, &ev[..])
    );
    assert_eq!(p.timestamp(), ts0.wrapping_add(800));
    assert!(engine.stats().packets_forwarded >= 6);

    // And back: the agent speaks A-law, the caller hears μ-law.
    let mut alaw = [0u8; 160];
    g711::encode_alaw(&tone, &mut alaw);
    agent
        .send_to(&rtp(8, 1, 0, 0x2222, true, &alaw), b.addr)
        .unwrap();
    let (n, _) = caller.recv_from(&mut buf).unwrap();
    let p = RtpPacket::parse(&buf[..n]).unwrap();
    assert_eq!(p.payload_type(), 0);
    let want: Vec<u8> = alaw.iter().map(|&c| g711::alaw_to_ulaw(c)).collect();
    assert_eq!(p.payload(), &want[..]);

    // Unbridged: nothing more is relayed.
    a.handle.unbridge();
    std::thread::sleep(Duration::from_millis(50));
    caller
        .send_to(&rtp(0, 106, 8960, 0x1111, false, &ulaw), a.addr)
        .unwrap();
    assert!(agent.recv_from(&mut buf).is_err());
}

/// Sends one RTP packet from `phone` to a leg's `addr`; whether `to`
/// got a packet within `wait`.
fn relayed(phone: &UdpSocket, seq: u16, addr: SocketAddr, to: &UdpSocket, wait: Duration) -> bool {
    let payload = [0x55u8; 160];
    phone
        .send_to(
            &rtp(0, seq, 160 * u32::from(seq), 0x3333, false, &payload),
            addr,
        )
        .unwrap();
    to.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1500];
    to.recv_from(&mut buf).is_ok()
}

/// A bridge undone and made again relays each time (with multishot reads,
/// each bridge arms a new read and each unbridge cancels it), and a leg
/// bridged after its peer closed (taking the closed leg's place in the
/// worker) gets the relays, not the closed leg's phone.
#[test]
fn bridges_undone_remade_and_replaced_relay_to_the_current_peer() {
    let engine = engine();
    let pool = PortPool::new(38000..=38999).unwrap();
    let (caller, agent, agent2) = (phone(), phone(), phone());
    let (a, b) = caller_and_agent(&engine, &pool, &caller, &agent, Codec::Pcmu, 101);
    let settle = || std::thread::sleep(Duration::from_millis(50));
    let (yes, no) = (Duration::from_millis(500), Duration::from_millis(100));
    let mut seq = 0u16;
    let mut next = || {
        seq += 1;
        seq
    };
    for round in 0..3 {
        a.handle.bridge(&b.handle).unwrap();
        settle();
        assert!(
            relayed(&caller, next(), a.addr, &agent, yes),
            "round {round}: caller → agent"
        );
        assert!(
            relayed(&agent, next(), b.addr, &caller, yes),
            "round {round}: agent → caller"
        );
        a.handle.unbridge();
        settle();
        assert!(
            !relayed(&caller, next(), a.addr, &agent, no),
            "round {round}: unbridged"
        );
    }

    a.handle.bridge(&b.handle).unwrap();
    settle();
    assert!(relayed(&caller, next(), a.addr, &agent, yes));
    b.handle.close();
    settle();
    let c = open(
        &engine,
        &pool,
        agent2.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Some(&a),
    );
    a.handle.bridge(&c.handle).unwrap();
    settle();
    assert!(
        relayed(&caller, next(), a.addr, &agent2, yes),
        "to the new peer"
    );
    assert!(
        !relayed(&caller, next(), a.addr, &agent, no),
        "not to the closed one"
    );
    assert!(relayed(&agent2, next(), c.addr, &caller, yes), "and back");
    let stats = engine.stats();
    assert!(stats.packets_forwarded >= 9, "{stats:?}");
    if stats.multishot_packets == 0 {
        eprintln!("no multishot reads here: the relays came by readiness events");
    }
}

/// A recorded bridged call: a second of audio each way is relayed and
/// recorded whole (the caller's left, the agent's right), and when the
/// caller's phone starts a new stream the agent hears it on a timestamp
/// that went on with time.
#[test]
fn a_recorded_bridged_call_keeps_both_sides_and_its_media_clock() {
    let dir = temp_dir("bridged-rec");
    let engine = engine();
    let pool = PortPool::new(36000..=36999).unwrap();
    let (caller, agent) = (phone(), phone());
    let (mut a, b) = caller_and_agent(&engine, &pool, &caller, &agent, Codec::Pcmu, 101);
    a.handle.bridge(&b.handle).unwrap();
    let path = dir.join("call.wav");
    a.handle
        .start_recording(path.clone(), switchboard::media::recorder::Layout::Stereo);
    std::thread::sleep(Duration::from_millis(50));

    let tone = |gain: f64| -> [u8; 160] {
        let pcm: Vec<i16> = (0..160)
            .map(|n| ((n as f64 * 0.3).sin() * gain) as i16)
            .collect();
        let mut ulaw = [0u8; 160];
        g711::encode_ulaw(&pcm, &mut ulaw);
        ulaw
    };
    let (loud, soft) = (tone(9000.0), tone(3000.0));
    let mut buf = [0u8; 1500];
    let mut last_ts = 0;
    for i in 0..50u16 {
        let ts = 160 * u32::from(i);
        caller
            .send_to(&rtp(0, i, ts, 0xAAAA, i == 0, &loud), a.addr)
            .unwrap();
        agent
            .send_to(&rtp(0, i, ts, 0xA6E, i == 0, &soft), b.addr)
            .unwrap();
        let (n, _) = agent.recv_from(&mut buf).expect("caller → agent");
        last_ts = RtpPacket::parse(&buf[..n]).unwrap().timestamp();
        caller.recv_from(&mut buf).expect("agent → caller");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A new stream from the caller's phone (another SSRC, another clock).
    caller
        .send_to(&rtp(0, 9, 777_777, 0xBBBB, true, &loud), a.addr)
        .unwrap();
    let (n, _) = agent.recv_from(&mut buf).expect("the new stream");
    let p = RtpPacket::parse(&buf[..n]).unwrap();
    assert!(p.marker(), "a new stream starts a talk-spurt");
    let step = p.timestamp().wrapping_sub(last_ts);
    assert!(
        (1..=160 * 15).contains(&step),
        "the agent's timestamps went on with time: {step} after the last"
    );

    a.handle.stop_recording();
    let done = next_event(&mut a.events, |k| {
        matches!(k, LegEventKind::RecordingFinished(_))
    });
    let LegEventKind::RecordingFinished(Ok(_)) = done else {
        panic!("{done:?}")
    };
    let mut reader = hound::WavReader::open(&path).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(left.len() >= 8000, "a second and more: {}", left.len());
    // Both sides' audio is there: the caller's loud tone left (rms about
    // 6,400 while it spoke), the agent's soft one right (about 2,100).
    let spoke = |s: &[i16]| s.iter().filter(|x| x.unsigned_abs() > 1000).count();
    assert!(spoke(&left) >= 160 * 40, "left: {}", spoke(&left));
    assert!(
        rms(&right) > 1000.0 && rms(&right) < 2500.0,
        "right rms {}",
        rms(&right)
    );
}

/// Bad input on a bridged leg loses nothing else: a datagram too long for
/// a receive buffer and one that is not RTP are dropped, and the next
/// packet is relayed as usual.
#[test]
fn a_bridged_leg_drops_oversized_and_garbage_datagrams_and_relays_on() {
    let engine = engine();
    let pool = PortPool::new(39000..=39999).unwrap();
    let (caller, agent) = (phone(), phone());
    let (a, b) = caller_and_agent(&engine, &pool, &caller, &agent, Codec::Pcmu, 101);
    a.handle.bridge(&b.handle).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (yes, no) = (Duration::from_millis(500), Duration::from_millis(100));
    assert!(relayed(&caller, 1, a.addr, &agent, yes));
    let mut big = rtp(0, 2, 320, 0x3333, false, &[0x55; 4000]);
    caller.send_to(&big, a.addr).unwrap();
    big.truncate(3);
    caller.send_to(&big, a.addr).unwrap();
    agent.set_read_timeout(Some(no)).unwrap();
    let mut buf = [0u8; 8192];
    assert!(
        agent.recv_from(&mut buf).is_err(),
        "nothing relayed for them"
    );
    assert!(
        relayed(&caller, 3, a.addr, &agent, yes),
        "the relay goes on"
    );
    assert!(relayed(&agent, 1, b.addr, &caller, yes));
}

#[test]
fn a_stereo_recording_is_written_and_reported() {
    let dir = temp_dir("rec");
    let engine = engine();
    let pool = PortPool::new(34000..=34999).unwrap();
    let caller = phone();
    let mut leg = open(
        &engine,
        &pool,
        caller.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        None,
    );
    let path = dir.join("call.wav");
    leg.handle
        .start_recording(path.clone(), switchboard::media::recorder::Layout::Stereo);
    let tone: Vec<i16> = (0..160 * 25)
        .map(|n| ((n as f64 * 0.2).sin() * 8000.0) as i16)
        .collect();
    for (i, chunk) in tone.chunks(160).enumerate() {
        let mut ulaw = [0u8; 160];
        g711::encode_ulaw(chunk, &mut ulaw);
        caller
            .send_to(
                &rtp(0, i as u16, 160 * i as u32, 7, i == 0, &ulaw),
                leg.addr,
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    leg.handle.stop_recording();
    let done = next_event(&mut leg.events, |k| {
        matches!(k, LegEventKind::RecordingFinished(_))
    });
    let LegEventKind::RecordingFinished(Ok(info)) = done else {
        panic!("{done:?}")
    };
    assert_eq!(info.path, path);
    let mut reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    // About half a second, the caller's audio on the left.
    assert!(left.len() >= 160 * 20, "{}", left.len());
    assert!(rms(&left) > 3000.0, "{}", rms(&left));
}

/// Load check (DESIGN §9): `LEGS` legs (default 1,000) play music on hold
/// for 5 s to one sink; prints the send-time deviation from the 20 ms
/// grid and what the sink received. Run with
/// `cargo test --release --test media_engine -- --ignored --nocapture`.
#[test]
#[ignore]
fn load_many_playing_legs() {
    let legs: usize = std::env::var("LEGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let engine = engine();
    let pool = PortPool::new(40000..=59999).unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut n = 0u64;
        while sink.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    let pcm: Vec<i16> = (0..8000 * 3)
        .map(|n| ((n as f64 * 0.05).sin() * 5000.0) as i16)
        .collect();
    let moh = Arc::new(Prompt::from_pcm("moh", pcm));
    let open_legs: Vec<Leg> = (0..legs)
        .map(|_| {
            let l = open(&engine, &pool, sink_addr, Codec::Pcmu, Some(101), None);
            l.handle.play(vec![moh.clone()], false, true);
            l
        })
        .collect();
    let start_cpu = cpu_time();
    let start = Instant::now();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let s = engine.stats();
        println!(
            "t={:?} frames_sent={} late_ticks={}",
            start.elapsed(),
            s.frames_sent,
            s.late_ticks
        );
    }
    let cpu = cpu_time().saturating_sub(start_cpu);
    let wall = start.elapsed();
    let stats = engine.stats();
    let late = engine.lateness_total();
    drop(open_legs);
    let received = counter.join().unwrap();
    println!(
        "legs={legs} frames_sent={} received={received} late_ticks={} send_errors={} \
         lateness p50={:?} p99={:?} max={:?} cpu={:.2} cores",
        stats.frames_sent,
        stats.late_ticks,
        stats.send_errors,
        late.p50,
        late.p99,
        late.max,
        cpu.as_secs_f64() / wall.as_secs_f64()
    );
}

/// CPU time of this process (user + system) from /proc, Linux only.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
