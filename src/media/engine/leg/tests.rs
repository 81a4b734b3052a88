//! LegCore with a fake clock and raw RTP bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::media::dtmf::rfc4733::TelephoneEvent;
use crate::media::rtp::RtpHeader;
use crate::media::rtp::rtcp::{RtcpCompound, RtcpPacket};
use crate::media::sdp::Direction;

const SDP_RTP: &str = "192.0.2.10:4000";
const NAT_RTP: &str = "198.51.100.7:61000";
const OUR_SSRC: u32 = 0x5555_0001;
const OUR_SEQ: u16 = 1000;
const OUR_TS: u32 = 50_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn negotiated(codec: Codec, te: Option<u8>) -> Negotiated {
    Negotiated {
        codec,
        codec_pt: codec.payload_type(),
        telephone_event_pt: te,
        remote_rtp: addr(SDP_RTP),
        remote_rtcp: addr("192.0.2.10:4001"),
        direction: Direction::SendRecv,
        held: false,
        remote_ptime: None,
        media_index: 0,
    }
}

struct Harness {
    leg: LegCore,
    t0: Instant,
    tick: u64,
    buf: [u8; 1500],
}

impl Harness {
    fn new(codec: Codec, te: Option<u8>) -> Harness {
        Harness::with_config(codec, te, LegConfig::default())
    }

    fn with_config(codec: Codec, te: Option<u8>, config: LegConfig) -> Harness {
        let t0 = Instant::now();
        let sender = RtpSender::new(OUR_SSRC, OUR_SEQ, OUR_TS);
        let leg = LegCore::new(
            config,
            negotiated(codec, te),
            sender,
            t0,
            NtpTime::new(3_900_000_000, 0),
        );
        Harness {
            leg,
            t0,
            tick: 0,
            buf: [0; 1500],
        }
    }

    fn now(&self) -> Instant {
        self.t0 + TICK_MS * self.tick as u32
    }

    /// Runs one tick; returns the packet sent, parsed.
    fn tick(&mut self) -> Option<(Sent, SocketAddr)> {
        self.tick += 1;
        let now = self.now();
        let tx = self.leg.handle_tick(now, 0, &mut self.buf)?;
        assert_eq!(tx.via, TransmitTo::Rtp);
        Some((Sent::parse(&self.buf[..tx.len]), tx.to))
    }

    fn rtp(&mut self, src: &str, packet: &[u8]) -> Option<(Option<Codec>, u32, bool, Vec<u8>)> {
        let now = self.now();
        self.leg
            .handle_rtp(now, addr(src), packet)
            .map(|r| (r.codec, r.timestamp, r.marker, r.payload.to_vec()))
    }

    fn events(&mut self) -> Vec<LegEventKind> {
        std::iter::from_fn(|| self.leg.poll_event()).collect()
    }

    fn digits(&mut self) -> Vec<(char, DigitSource, Option<PlaybackId>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                LegEventKind::Digit {
                    digit,
                    source,
                    barged,
                } => Some((digit.as_char(), source, barged)),
                _ => None,
            })
            .collect()
    }
}

const TICK_MS: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

impl Sent {
    fn parse(bytes: &[u8]) -> Sent {
        let p = RtpPacket::parse(bytes).unwrap();
        Sent {
            marker: p.marker(),
            pt: p.payload_type(),
            seq: p.sequence(),
            ts: p.timestamp(),
            ssrc: p.ssrc(),
            payload: p.payload().to_vec(),
        }
    }
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
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

/// A prompt whose frame `i` is filled with the μ-law code `base + i` (and
/// its own A-law frames), so frames can be told apart on the wire.
fn marked_prompt(name: &str, frames: usize, base: u8) -> Arc<Prompt> {
    let mut p = Prompt::from_pcm(name, vec![0; frames * FRAME_SAMPLES]);
    let pcmu: Vec<[u8; FRAME_SAMPLES]> = (0..frames)
        .map(|i| [base.wrapping_add(i as u8); FRAME_SAMPLES])
        .collect();
    p.pcmu = Arc::from(pcmu);
    Arc::new(p)
}

fn play(h: &mut Harness, id: u64, prompts: Vec<Arc<Prompt>>, barge: bool, looped: bool) {
    let now = h.now();
    h.leg.handle_command(
        now,
        LegCommand::Play {
            playback: PlaybackId(id),
            prompts,
            barge,
            looped,
        },
    );
}

fn sine(freqs: &[f32], samples: usize, amplitude: f32) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f32 / 8000.0;
            let v: f32 = freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum();
            (v * amplitude) as i16
        })
        .collect()
}

#[test]
fn playback_numbers_frames_continuously_across_prompts_rfc3550_5_1() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    // Nothing plays: nothing is sent, but the RTP clock runs.
    assert_eq!(h.tick(), None);
    play(&mut h, 1, vec![marked_prompt("a", 3, 10)], false, false);
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(h.tick().unwrap().0);
    }
    assert_eq!(
        h.events()
            .iter()
            .filter(|e| matches!(e, LegEventKind::PlaybackFinished { playback } if *playback == PlaybackId(1)))
            .count(),
        1,
        "finished right after the last frame"
    );
    // Two silent ticks, then the next prompt.
    assert_eq!(h.tick(), None);
    assert_eq!(h.tick(), None);
    play(&mut h, 2, vec![marked_prompt("b", 2, 40)], false, false);
    sent.push(h.tick().unwrap().0);
    sent.push(h.tick().unwrap().0);

    let summary: Vec<(bool, u16, u32, u8)> = sent
        .iter()
        .map(|s| (s.marker, s.seq, s.ts, s.payload[0]))
        .collect();
    // The first tick (nothing to play) advanced the clock by 160.
    let ts = |k: u32| OUR_TS + 160 * k;
    assert_eq!(
        summary,
        vec![
            (true, 1000, ts(1), 10),
            (false, 1001, ts(2), 11),
            (false, 1002, ts(3), 12),
            // RFC 3551 §4.1: marker on the new talk-spurt; the timestamp
            // counts the two silent frames, the sequence does not.
            (true, 1003, ts(6), 40),
            (false, 1004, ts(7), 41),
        ]
    );
    assert!(sent.iter().all(|s| s.ssrc == OUR_SSRC && s.pt == 0));
    assert!(sent.iter().all(|s| s.payload.len() == 160));
}

#[test]
fn a_new_playback_without_a_gap_sets_the_marker_and_pcma_uses_alaw_frames() {
    let mut h = Harness::new(Codec::Pcma, None);
    let a = marked_prompt("a", 2, 10);
    play(&mut h, 1, vec![a.clone()], false, false);
    let first = h.tick().unwrap().0;
    assert_eq!(first.pt, 8);
    assert_eq!(first.payload, a.pcma[0].to_vec());
    play(&mut h, 2, vec![a.clone()], false, false);
    let next = h.tick().unwrap().0;
    assert!(next.marker);
    assert_eq!((next.seq, next.ts), (first.seq + 1, first.ts + 160));
    assert!(h.events().iter().all(|e| !matches!(
        e,
        LegEventKind::PlaybackFinished {
            playback: PlaybackId(1)
        }
    )));
}

#[test]
fn looping_playback_starts_over_and_never_finishes() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(
        &mut h,
        7,
        vec![marked_prompt("a", 2, 10), marked_prompt("b", 1, 20)],
        false,
        true,
    );
    let firsts: Vec<u8> = (0..7).map(|_| h.tick().unwrap().0.payload[0]).collect();
    assert_eq!(firsts, vec![10, 11, 20, 10, 11, 20, 10]);
    assert!(h.events().is_empty());
    h.leg.handle_command(h.now(), LegCommand::Stop);
    assert_eq!(h.tick(), None);
}

#[test]
fn an_interjection_pauses_the_music_which_goes_on_where_it_stopped() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 1, vec![marked_prompt("moh", 10, 30)], false, true);
    let firsts: Vec<u8> = (0..3).map(|_| h.tick().unwrap().0.payload[0]).collect();
    assert_eq!(firsts, vec![30, 31, 32]);
    let now = h.now();
    let announce = vec![marked_prompt("a", 2, 100)];
    h.leg.handle_command(
        now,
        LegCommand::Interject {
            playback: PlaybackId(2),
            prompts: announce.clone(),
        },
    );
    let sent: Vec<(u8, bool)> = (0..4)
        .map(|_| {
            let (p, _) = h.tick().unwrap();
            (p.payload[0], p.marker)
        })
        .collect();
    // The announcement, then the music from its fourth frame on; each
    // change starts a talk-spurt (RFC 3550 §5.1 marker).
    assert_eq!(
        sent,
        vec![(100, true), (101, false), (33, true), (34, false)]
    );
    assert!(matches!(
        h.events().as_slice(),
        [LegEventKind::PlaybackFinished {
            playback: PlaybackId(2)
        }]
    ));
    // Stop ends both; a new play forgets the paused music.
    h.leg.handle_command(
        h.now(),
        LegCommand::Interject {
            playback: PlaybackId(3),
            prompts: announce.clone(),
        },
    );
    h.leg.handle_command(h.now(), LegCommand::Stop);
    assert_eq!(h.tick(), None);
    play(&mut h, 4, vec![marked_prompt("moh", 10, 30)], false, true);
    h.leg.handle_command(
        h.now(),
        LegCommand::Interject {
            playback: PlaybackId(5),
            prompts: announce,
        },
    );
    play(&mut h, 6, vec![marked_prompt("b", 1, 60)], false, false);
    assert_eq!(h.tick().unwrap().0.payload[0], 60);
    assert_eq!(h.tick(), None);
}

#[test]
fn a_single_looping_prompt_keeps_playing() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 8, vec![marked_prompt("moh", 2, 30)], false, true);
    let firsts: Vec<u8> = (0..5).map(|_| h.tick().unwrap().0.payload[0]).collect();
    assert_eq!(firsts, vec![30, 31, 30, 31, 30]);
    assert!(h.events().is_empty());
}

#[test]
fn empty_playback_finishes_at_once() {
    let mut h = Harness::new(Codec::Pcmu, None);
    play(&mut h, 3, vec![], false, false);
    assert!(matches!(
        h.events()[..],
        [LegEventKind::PlaybackFinished {
            playback: PlaybackId(3)
        }]
    ));
    assert_eq!(h.tick(), None);
}

#[test]
fn rfc4733_digit_barges_in_before_the_next_frame_rfc4733_2_5() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 9, vec![marked_prompt("menu", 50, 0)], true, false);
    h.tick().unwrap();
    h.tick().unwrap();
    // '5' pressed: first packet with the marker, then updates and three
    // end packets, all with the event's timestamp (§2.5.1).
    let ev = |end, duration| {
        TelephoneEvent {
            event: 5,
            end,
            reserved: false,
            volume: 10,
            duration,
        }
        .to_bytes()
    };
    let p1 = packet(101, 7, 8000, 0xCA11, true, &ev(false, 160));
    assert!(
        h.rtp(SDP_RTP, &p1).is_none(),
        "not bridged: nothing relayed"
    );
    assert_eq!(
        h.digits(),
        vec![('5', DigitSource::Rfc4733, Some(PlaybackId(9)))]
    );
    // No further frame of the barged prompt leaves.
    assert_eq!(h.tick(), None);
    // Updates, a retransmitted first packet and the triple end: no more digits.
    for (seq, payload) in [
        (8, ev(false, 320)),
        (7, ev(false, 160)),
        (9, ev(true, 480)),
        (10, ev(true, 480)),
        (11, ev(true, 480)),
    ] {
        h.rtp(SDP_RTP, &packet(101, seq, 8000, 0xCA11, false, &payload));
    }
    assert_eq!(h.digits(), vec![]);
    // The same key again is a new event: a new timestamp (§2.5.1.2).
    h.rtp(
        SDP_RTP,
        &packet(101, 12, 9600, 0xCA11, true, &ev(false, 160)),
    );
    assert_eq!(h.digits(), vec![('5', DigitSource::Rfc4733, None)]);
}

#[test]
fn a_digit_during_a_non_barge_playback_does_not_stop_it() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 1, vec![marked_prompt("a", 5, 0)], false, false);
    h.tick().unwrap();
    h.leg
        .handle_command(h.now(), LegCommand::Digit(Digit::from_char('#').unwrap()));
    assert_eq!(h.digits(), vec![('#', DigitSource::SipInfo, None)]);
    assert!(h.tick().is_some());
}

#[test]
fn sip_info_digit_barges_like_rtp() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 4, vec![marked_prompt("a", 5, 0)], true, false);
    h.tick().unwrap();
    h.leg
        .handle_command(h.now(), LegCommand::Digit(Digit::from_char('1').unwrap()));
    assert_eq!(
        h.digits(),
        vec![('1', DigitSource::SipInfo, Some(PlaybackId(4)))]
    );
    assert_eq!(h.tick(), None);
}

#[test]
fn inband_tone_is_detected_without_telephone_event_itu_q23() {
    let mut h = Harness::new(Codec::Pcmu, None);
    play(&mut h, 2, vec![marked_prompt("a", 50, 0)], true, false);
    // '6' = 770 Hz + 1477 Hz, 100 ms, then silence.
    let mut pcm = sine(&[770.0, 1477.0], 800, 6000.0);
    pcm.extend(vec![0i16; 800]);
    let mut found = Vec::new();
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let mut payload = [0u8; 160];
        g711::encode_ulaw(chunk, &mut payload);
        h.rtp(
            SDP_RTP,
            &packet(0, i as u16, 160 * i as u32, 0xCA11, i == 0, &payload),
        );
        found.extend(h.digits());
        h.tick();
    }
    assert_eq!(found, vec![('6', DigitSource::Inband, Some(PlaybackId(2)))]);
}

#[test]
fn inband_detection_is_off_when_telephone_event_was_negotiated() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    let pcm = sine(&[770.0, 1477.0], 800, 6000.0);
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let mut payload = [0u8; 160];
        g711::encode_ulaw(chunk, &mut payload);
        h.rtp(
            SDP_RTP,
            &packet(0, i as u16, 160 * i as u32, 0xCA11, false, &payload),
        );
    }
    assert_eq!(h.digits(), vec![]);
}

#[test]
fn symmetric_rtp_latches_to_the_source_and_ignores_strangers() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 1, vec![marked_prompt("a", 10, 0)], false, true);
    // Before any RTP arrives: the SDP address.
    assert_eq!(h.tick().unwrap().1, addr(SDP_RTP));
    // The caller is behind NAT: its RTP comes from elsewhere.
    h.rtp(NAT_RTP, &packet(0, 1, 0, 0xCA11, true, &[0xFF; 160]));
    assert!(matches!(
        h.events()[..],
        [LegEventKind::RemoteLatched { rtp }] if rtp == addr(NAT_RTP)
    ));
    assert_eq!(h.tick().unwrap().1, addr(NAT_RTP));
    // Another source with another SSRC: ignored, no re-latch.
    h.rtp(
        "203.0.113.66:5000",
        &packet(0, 1, 0, 0xBAD, false, &[0xFF; 160]),
    );
    assert!(h.events().is_empty());
    assert_eq!(h.tick().unwrap().1, addr(NAT_RTP));
    assert_eq!(h.leg.stats().packets_ignored, 1);
    // The NAT rebinds the same stream to a new port: follow it.
    h.rtp(
        "198.51.100.7:61002",
        &packet(0, 2, 160, 0xCA11, false, &[0xFF; 160]),
    );
    assert_eq!(h.tick().unwrap().1, addr("198.51.100.7:61002"));
    // A re-INVITE moving the media unlatches: back to the new SDP address.
    let mut moved = negotiated(Codec::Pcmu, Some(101));
    moved.remote_rtp = addr("192.0.2.20:6000");
    h.leg.handle_command(h.now(), LegCommand::Update(moved));
    assert_eq!(h.tick().unwrap().1, addr("192.0.2.20:6000"));
}

#[test]
fn garbage_is_ignored_not_latched() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    for bytes in [&b""[..], &[0x00; 20], &[0x80, 0x00, 0x01], &[0xFF; 200]] {
        assert!(h.rtp(NAT_RTP, bytes).is_none());
        h.leg.handle_rtcp(h.now(), addr(NAT_RTP), bytes);
    }
    assert!(h.events().is_empty());
    assert_eq!(h.leg.remote_rtp(), addr(SDP_RTP));
}

#[test]
fn media_timeout_fires_once_and_not_while_held() {
    let config = LegConfig {
        media_timeout: Duration::from_millis(200),
        ..LegConfig::default()
    };
    let mut h = Harness::with_config(Codec::Pcmu, Some(101), config);
    let timeouts = |h: &mut Harness| {
        h.events()
            .iter()
            .filter(|e| matches!(e, LegEventKind::MediaTimeout { .. }))
            .count()
    };
    for _ in 0..9 {
        h.tick();
    }
    assert_eq!(timeouts(&mut h), 0);
    h.tick();
    assert_eq!(timeouts(&mut h), 1, "200 ms without media");
    for _ in 0..20 {
        h.tick();
    }
    assert_eq!(timeouts(&mut h), 0, "reported once");
    // Media comes back, then the remote holds: no timeout while held.
    h.rtp(SDP_RTP, &packet(0, 1, 0, 0xCA11, true, &[0xFF; 160]));
    h.leg.handle_command(h.now(), LegCommand::Hold(true));
    for _ in 0..30 {
        h.tick();
    }
    assert_eq!(timeouts(&mut h), 0);
    // Unhold: the silence is counted from then.
    h.leg.handle_command(h.now(), LegCommand::Hold(false));
    for _ in 0..9 {
        h.tick();
    }
    assert_eq!(timeouts(&mut h), 0);
    h.tick();
    assert_eq!(timeouts(&mut h), 1);
}

#[test]
fn rtcp_keeps_the_media_timeout_away_and_reports_go_out_rfc3550_6_4() {
    let config = LegConfig {
        media_timeout: Duration::from_millis(200),
        rtcp_interval: Duration::from_millis(100),
        ..LegConfig::default()
    };
    let mut h = Harness::with_config(Codec::Pcmu, Some(101), config);
    play(&mut h, 1, vec![marked_prompt("a", 100, 0)], false, false);
    let mut reports = Vec::new();
    for i in 0..20 {
        h.tick();
        if i % 5 == 0 {
            // A remote SR (RFC 3550 §6.4.1) every 100 ms.
            let sr = SenderReport {
                ssrc: 0xCA11,
                info: crate::media::rtp::rtcp::SenderInfo {
                    ntp: NtpTime::new(1, 2),
                    rtp_timestamp: 3,
                    packet_count: 4,
                    octet_count: 5,
                },
                report: None,
            };
            let mut b = [0u8; 64];
            let n = sr.write(&mut b).unwrap();
            h.leg.handle_rtcp(h.now(), addr("192.0.2.10:4001"), &b[..n]);
        }
        let mut buf = [0u8; 256];
        while let Some(tx) = h.leg.poll_transmit(h.now(), &mut buf) {
            assert_eq!(tx.via, TransmitTo::Rtcp);
            reports.push(buf[..tx.len].to_vec());
        }
    }
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, LegEventKind::MediaTimeout { .. }))
    );
    assert_eq!(reports.len(), 4, "one report per 100 ms over 400 ms");
    // An SR from us (we sent RTP), then SDES with the CNAME.
    let kinds: Vec<u8> = RtcpCompound::new(&reports[0])
        .map(|p| match p.unwrap() {
            RtcpPacket::SenderReport { ssrc, info, .. } => {
                assert_eq!(ssrc, OUR_SSRC);
                assert!(info.packet_count > 0);
                200
            }
            RtcpPacket::ReceiverReport { .. } => 201,
            RtcpPacket::Bye(_) => 203,
            RtcpPacket::Other { packet_type, .. } => packet_type,
        })
        .collect();
    assert_eq!(kinds, vec![200, 202]);
    // Closing sends a BYE (RFC 3550 §6.6).
    h.leg.close(h.now());
    let mut buf = [0u8; 256];
    let tx = h.leg.poll_transmit(h.now(), &mut buf).unwrap();
    let last = RtcpCompound::new(&buf[..tx.len]).last().unwrap().unwrap();
    assert!(matches!(last, RtcpPacket::Bye(_)));
}

/// Two legs as a worker bridges them: `a` receives, `b` sends.
fn relay_to(
    a: &mut Harness,
    b: &mut Harness,
    src: &str,
    bytes: &[u8],
) -> Option<(Sent, SocketAddr)> {
    let now = a.now();
    let relay = a.leg.handle_rtp(now, addr(src), bytes)?;
    let tx = b.leg.handle_relay(now, &relay, &mut b.buf)?;
    Some((Sent::parse(&b.buf[..tx.len]), tx.to))
}

#[test]
fn bridge_rewrites_headers_transcodes_and_forwards_events() {
    // Caller on μ-law (event PT 101), agent on A-law (event PT 96).
    let mut a = Harness::new(Codec::Pcmu, Some(101));
    let mut b = Harness::new(Codec::Pcma, Some(96));
    // The agent leg played a prompt first: its numbering has moved on.
    play(&mut b, 1, vec![marked_prompt("hello", 2, 0)], false, false);
    let last = {
        b.tick().unwrap();
        b.tick().unwrap().0
    };
    b.tick();
    a.leg.set_bridged(true);
    b.leg.set_bridged(true);
    a.tick = b.tick;

    let pcm = sine(&[440.0], 160, 8000.0);
    let mut ulaw = [0u8; 160];
    g711::encode_ulaw(&pcm, &mut ulaw);
    let mut sent = Vec::new();
    for i in 0..3u16 {
        let p = packet(
            0,
            500 + i,
            90_000 + 160 * u32::from(i),
            0xCA11,
            i == 0,
            &ulaw,
        );
        let (s, to) = relay_to(&mut a, &mut b, NAT_RTP, &p).unwrap();
        assert_eq!(to, addr(SDP_RTP));
        sent.push(s);
    }
    // The agent's SSRC and sequence continue; the timestamp continues the
    // agent leg's clock (one silent tick after the prompt), the spacing is
    // the caller's; the marker starts the talk-spurt.
    assert_eq!(
        sent.iter()
            .map(|s| (s.ssrc, s.seq, s.ts, s.marker, s.pt))
            .collect::<Vec<_>>(),
        vec![
            (OUR_SSRC, last.seq + 1, last.ts + 320, true, 8),
            (OUR_SSRC, last.seq + 2, last.ts + 480, false, 8),
            (OUR_SSRC, last.seq + 3, last.ts + 640, false, 8),
        ]
    );
    // μ-law → A-law by table (G.711).
    let expected: Vec<u8> = ulaw.iter().map(|&c| g711::ulaw_to_alaw(c)).collect();
    assert_eq!(sent[0].payload, expected);

    // A digit from the caller: reported on the caller's leg and forwarded
    // as RFC 4733 with the agent's payload type and rewritten timestamp.
    let ev = TelephoneEvent {
        event: 11,
        end: false,
        reserved: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    let p = packet(101, 503, 90_480, 0xCA11, true, &ev);
    let (s, _) = relay_to(&mut a, &mut b, NAT_RTP, &p).unwrap();
    assert_eq!((s.pt, s.ts, s.marker), (96, last.ts + 800, true));
    assert_eq!(s.payload, ev.to_vec());
    assert_eq!(a.digits(), vec![('#', DigitSource::Rfc4733, None)]);

    // A prompt on the agent leg wins over relayed audio while it plays.
    play(
        &mut b,
        2,
        vec![marked_prompt("whisper", 1, 0)],
        false,
        false,
    );
    let p = packet(0, 504, 90_640, 0xCA11, false, &ulaw);
    assert!(relay_to(&mut a, &mut b, NAT_RTP, &p).is_none());
    b.tick().unwrap();
    // Unbridged: nothing is relayed.
    a.leg.set_bridged(false);
    let p = packet(0, 505, 90_800, 0xCA11, false, &ulaw);
    assert!(a.rtp(NAT_RTP, &p).is_none());
}

#[test]
fn same_codec_bridge_copies_the_payload() {
    let mut a = Harness::new(Codec::Pcma, None);
    let mut b = Harness::new(Codec::Pcma, None);
    a.leg.set_bridged(true);
    b.leg.set_bridged(true);
    let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();
    let (s, _) = relay_to(
        &mut a,
        &mut b,
        SDP_RTP,
        &packet(8, 1, 1, 7, false, &payload),
    )
    .unwrap();
    assert_eq!(s.payload, payload);
    assert!(s.marker, "first relayed packet starts a talk-spurt");
    // Events are dropped when the other leg has no telephone-event.
    let ev = [1, 0x0A, 0, 160];
    a.leg.set_bridged(true);
    let mut c = Harness::new(Codec::Pcmu, Some(101));
    c.leg.set_bridged(true);
    let bytes = packet(101, 1, 1, 9, true, &ev);
    let relay = c.leg.handle_rtp(c.now(), addr(SDP_RTP), &bytes);
    assert!(relay.is_some());
    assert!(
        b.leg
            .handle_relay(b.now(), &relay.unwrap(), &mut [0u8; 200])
            .is_none()
    );
}

#[test]
fn recording_writes_heard_left_and_sent_right() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    h.leg.handle_command(
        h.now(),
        LegCommand::StartRecording {
            path: "rec.wav".into(),
            layout: Layout::Stereo,
        },
    );
    assert_eq!(
        h.leg.poll_record(),
        Some(RecordOutput::Start {
            path: "rec.wav".into(),
            layout: Layout::Stereo
        })
    );
    // The caller speaks a tone; we play a loud prompt back.
    let heard = sine(&[500.0], 160 * 30, 8000.0);
    let prompt = Arc::new(Prompt::from_pcm("p", sine(&[1000.0], 160 * 30, 12000.0)));
    play(&mut h, 1, vec![prompt], false, false);
    for (i, chunk) in heard.chunks(160).enumerate() {
        let mut payload = [0u8; 160];
        g711::encode_ulaw(chunk, &mut payload);
        h.rtp(
            SDP_RTP,
            &packet(0, i as u16, 160 * i as u32, 0xCA11, i == 0, &payload),
        );
        h.tick();
    }
    h.leg.handle_command(h.now(), LegCommand::StopRecording);
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut stopped = false;
    while let Some(out) = h.leg.poll_record() {
        match out {
            RecordOutput::Audio {
                codec,
                left: l,
                right: r,
            } => {
                assert_eq!(codec, Codec::Pcmu);
                assert_eq!(l.len(), r.len());
                left.extend(l.iter().map(|&c| g711::ulaw_decode(c)));
                right.extend(r.iter().map(|&c| g711::ulaw_decode(c)));
            }
            RecordOutput::Stop => stopped = true,
            RecordOutput::Start { .. } => panic!("started twice"),
        }
    }
    assert!(stopped);
    // One frame per channel per tick.
    assert_eq!(left.len(), 30 * 160);
    let rms = |s: &[i16]| {
        (s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len() as f64).sqrt()
    };
    // Both channels carry their audio: the caller's tone (~5657 rms)
    // left, the prompt (~8485 rms) right.
    let tail = 10 * 160;
    assert!(
        (5000.0..6300.0).contains(&rms(&left[tail..])),
        "{}",
        rms(&left[tail..])
    );
    assert!(
        (7800.0..9200.0).contains(&rms(&right[tail..])),
        "{}",
        rms(&right[tail..])
    );
}

/// A bridged caller leg recording in stereo: the caller's packets
/// (after the first, reordered in pairs) land left by their timestamps, the agent's relayed
/// ones (A-law, transcoded to the caller's μ-law) right from when the agent
/// began; a chunk of 400 ms leaves once the head is 60 ms past its end.
#[test]
fn recording_places_audio_by_timestamp_and_hands_over_chunks_after_the_delay() {
    let mut c = Harness::new(Codec::Pcmu, Some(101));
    let mut a = Harness::new(Codec::Pcma, None);
    c.leg.set_bridged(true);
    a.leg.set_bridged(true);
    c.leg.handle_command(
        c.now(),
        LegCommand::StartRecording {
            path: "call.wav".into(),
            layout: Layout::Stereo,
        },
    );
    assert!(matches!(
        c.leg.poll_record(),
        Some(RecordOutput::Start { .. })
    ));
    // Caller frame k is all code 0x80 + k; agent frame k all A-law 0x10 + k.
    let caller = |k: u16| {
        packet(
            0,
            k,
            8000 + 160 * u32::from(k),
            0xCA11,
            k == 0,
            &[0x80 + k as u8; 160],
        )
    };
    let agent = |k: u16| {
        packet(
            8,
            k,
            160 * u32::from(k),
            0xA6E,
            k == 0,
            &[0x10 + k as u8; 160],
        )
    };
    let mut chunks = Vec::new();
    for tick in 0..50u16 {
        // Pairs swapped: 2 before 1, 4 before 3, ...
        let k = match tick {
            0 => 0,
            t if t % 2 == 1 => t + 1,
            t => t - 1,
        };
        c.rtp(SDP_RTP, &caller(k));
        if tick >= 5 {
            let now = c.now();
            a.tick = c.tick;
            let bytes = agent(tick - 5);
            let relay = a.leg.handle_rtp(now, addr(SDP_RTP), &bytes).unwrap();
            c.leg.handle_relay(now, &relay, &mut [0u8; 300]).unwrap();
        }
        c.tick();
        while let Some(out) = c.leg.poll_record() {
            chunks.push((c.tick, out));
        }
    }
    // Head 3680 (60 ms past the first chunk's end) is reached at tick 23,
    // 6880 at tick 43.
    let at: Vec<u64> = chunks.iter().map(|(at, _)| *at).collect();
    assert_eq!(at, [23, 43]);
    let mut left = Vec::new();
    let mut right = Vec::new();
    for (_, out) in &chunks {
        let RecordOutput::Audio {
            codec,
            left: l,
            right: r,
        } = out
        else {
            panic!("{out:?}");
        };
        assert_eq!(*codec, Codec::Pcmu);
        assert_eq!((l.len(), r.len()), (3200, 3200));
        left.extend_from_slice(l);
        right.extend_from_slice(r);
    }
    for (k, frame) in left.chunks(160).enumerate() {
        assert!(frame.iter().all(|&x| x == 0x80 + k as u8), "left frame {k}");
    }
    for (k, frame) in right.chunks(160).enumerate() {
        let want = if k < 5 {
            0xFF
        } else {
            g711::alaw_to_ulaw(0x10 + (k - 5) as u8)
        };
        assert!(frame.iter().all(|&x| x == want), "right frame {k}");
    }
    // Stopping hands over the rest, up to the head (50 ticks = 8000).
    c.leg.handle_command(c.now(), LegCommand::StopRecording);
    let rest: Vec<RecordOutput> = std::iter::from_fn(|| c.leg.poll_record()).collect();
    let [RecordOutput::Audio { left, right, .. }, RecordOutput::Stop] = &rest[..] else {
        panic!("{rest:?}");
    };
    assert_eq!((left.len(), right.len()), (1600, 1600));
    // Frame 49 never came (tick 49 sent frame 50, ahead of the head).
    let frames: Vec<u8> = left.chunks(160).map(|f| f[0]).collect();
    let mut want: Vec<u8> = (40..49).map(|k| 0x80 + k).collect();
    want.push(0xFF);
    assert_eq!(frames, want);
}

#[test]
fn mono_recording_holds_only_the_remote() {
    let mut h = Harness::new(Codec::Pcma, None);
    h.leg.handle_command(
        h.now(),
        LegCommand::StartRecording {
            path: "vm.wav".into(),
            layout: Layout::Mono,
        },
    );
    for i in 0..12u16 {
        h.rtp(
            SDP_RTP,
            &packet(8, i, 160 * u32::from(i), 1, i == 0, &[0xD5; 160]),
        );
        h.tick();
    }
    h.leg.close(h.now());
    let outs: Vec<RecordOutput> = std::iter::from_fn(|| h.leg.poll_record()).collect();
    assert!(matches!(outs.first(), Some(RecordOutput::Start { .. })));
    assert_eq!(outs.last(), Some(&RecordOutput::Stop));
    let samples: usize = outs
        .iter()
        .map(|o| match o {
            RecordOutput::Audio { codec, left, right } => {
                assert_eq!(*codec, Codec::Pcma);
                assert!(right.is_empty());
                left.len()
            }
            _ => 0,
        })
        .sum();
    assert_eq!(samples, 12 * 160);
}

#[test]
fn send_dtmf_replaces_audio_with_events_rfc4733_2_5_1() {
    let mut h = Harness::new(Codec::Pcmu, Some(101));
    play(&mut h, 1, vec![marked_prompt("a", 50, 0)], false, true);
    h.tick().unwrap();
    h.leg.handle_command(
        h.now(),
        LegCommand::SendDtmf(Digit::from_char('7').unwrap()),
    );
    let mut events = Vec::new();
    for _ in 0..10 {
        if let Some((s, _)) = h.tick() {
            if s.pt == 101 {
                events.push(s);
            } else {
                assert!(events.len() >= 3, "audio resumes after the end packets");
                assert!(s.marker);
                break;
            }
        }
    }
    let first = &events[0];
    assert!(first.marker);
    assert!(events.iter().all(|e| e.ts == first.ts && e.payload[0] == 7));
    assert!(events.last().unwrap().payload[1] & 0x80 != 0, "E bit");
}

#[test]
fn a_late_tick_advances_the_clock_but_sends_one_frame() {
    let mut h = Harness::new(Codec::Pcmu, None);
    play(&mut h, 1, vec![marked_prompt("a", 10, 0)], false, false);
    let a = h.tick().unwrap().0;
    h.tick += 3;
    let tx = h.leg.handle_tick(h.now(), 2, &mut h.buf).unwrap();
    let b = Sent::parse(&h.buf[..tx.len]);
    assert_eq!((b.seq, b.ts, b.payload[0]), (a.seq + 1, a.ts + 3 * 160, 1));
    assert!(b.marker);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// DESIGN §10: no datagram breaks a leg.
        #[test]
        fn any_datagram_is_safe(bytes in proptest::collection::vec(any::<u8>(), 0..400), rtcp: bool) {
            let mut a = Harness::new(Codec::Pcmu, Some(101));
            let mut b = Harness::new(Codec::Pcma, Some(96));
            a.leg.set_bridged(true);
            b.leg.set_bridged(true);
            a.leg.handle_command(a.now(), LegCommand::StartRecording { path: "x".into(), layout: Layout::Stereo });
            if rtcp {
                a.leg.handle_rtcp(a.now(), addr(SDP_RTP), &bytes);
            } else if let Some(relay) = a.leg.handle_rtp(a.now(), addr(SDP_RTP), &bytes) {
                let _ = b.leg.handle_relay(b.now(), &relay, &mut b.buf);
            }
            a.tick();
        }
    }
}

/// DESIGN §9: an IVR call's media state is a small part of its 64 KiB.
#[test]
fn leg_core_is_small() {
    let size = std::mem::size_of::<LegCore>();
    println!("LegCore: {size} bytes");
    assert!(size < 4096, "LegCore is {size} bytes");
}
