//! A caller hears the flow's prompt and its keys drive the flow, end to end
//! over real sockets: INVITE with an SDP offer, ACK, RTP frames of the menu
//! prompt on the negotiated codec, an RFC 4733 digit, and the flow's BYE.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::Switch;
use switchboard::media::g711::{alaw_decode, ulaw_decode};
use switchboard::media::rtp::RtpPacket;

struct Caller {
    sip: UdpSocket,
    rtp: UdpSocket,
    switch: SocketAddr,
}

impl Caller {
    fn new(switch: &Switch) -> Caller {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Caller {
            sip,
            rtp,
            switch: switch.sip,
        }
    }

    fn send(&self, text: &str) {
        self.sip.send_to(text.as_bytes(), self.switch).unwrap();
    }

    /// The next SIP message received.
    fn recv(&self) -> String {
        let mut buf = [0u8; 8192];
        let (n, _) = self.sip.recv_from(&mut buf).expect("SIP message");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn invite(&self, call_id: &str, codecs: &str, rtpmaps: &str) -> String {
        let me = self.sip.local_addr().unwrap();
        let media = self.rtp.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {media} RTP/AVP {codecs}\r\n{rtpmaps}"
        );
        format!(
            "INVITE sip:100@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
             From: <sip:caller@{me}>;tag=c1\r\nTo: <sip:100@{sw}>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            sw = self.switch
        )
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

/// Answers until the 200 and returns it.
fn until_ok(caller: &Caller) -> String {
    loop {
        let msg = caller.recv();
        let code = msg.split_whitespace().nth(1).unwrap_or("");
        match code {
            "100" | "180" | "183" => continue,
            "200" => return msg,
            _ => panic!("unexpected answer:\n{msg}"),
        }
    }
}

fn ack_for(caller: &Caller, ok: &str, call_id: &str) {
    let me = caller.sip.local_addr().unwrap();
    caller.send(&format!(
        "ACK sip:100@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack{call_id}\r\n\
         From: <sip:caller@{me}>;tag=c1\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        to = header(ok, "To:"),
        sw = caller.switch
    ));
}

/// Reads RTP for `wanted` frames; returns (payload type, decoded samples,
/// sequence numbers, the address they came from).
fn listen(caller: &Caller, wanted: usize) -> (u8, Vec<i16>, Vec<u16>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let mut pcm = Vec::new();
    let mut seqs = Vec::new();
    let mut pt = 255;
    let mut from = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seqs.len() < wanted && Instant::now() < deadline {
        let Ok((n, src)) = caller.rtp.recv_from(&mut buf) else {
            continue;
        };
        let Ok(pkt) = RtpPacket::parse(&buf[..n]) else {
            continue;
        };
        pt = pkt.payload_type();
        from = Some(src);
        seqs.push(pkt.sequence());
        pcm.extend(pkt.payload().iter().map(|&b| {
            if pt == 8 {
                alaw_decode(b)
            } else {
                ulaw_decode(b)
            }
        }));
    }
    (pt, pcm, seqs, from.expect("no RTP received"))
}

/// Power of `freq` in `pcm` relative to the total (a one-bin DFT).
fn tone_share(pcm: &[i16], freq: f64) -> f64 {
    let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
    for (n, &s) in pcm.iter().enumerate() {
        let x = f64::from(s);
        let w = 2.0 * std::f64::consts::PI * freq * n as f64 / 8000.0;
        re += x * w.cos();
        im += x * w.sin();
        total += x * x;
    }
    (re * re + im * im) * 2.0 / (pcm.len() as f64 * total.max(1.0))
}

fn rfc4733(seq: u16, ts: u32, event: u8, end: bool, duration: u16, marker: bool) -> Vec<u8> {
    let mut p = vec![0x80, if marker { 0x80 | 101 } else { 101 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.push(event);
    p.push(if end { 0x80 | 10 } else { 10 });
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

/// DESIGN §4 and RFC 3264 §6: a PCMU offer gets PCMU; the menu prompt
/// (a 440 Hz tone) arrives as 20 ms frames with consecutive sequence
/// numbers; the RFC 4733 digit "1" takes the menu option and the flow's
/// hangup node sends BYE.
#[test]
fn caller_hears_the_prompt_and_a_digit_drives_the_flow() {
    let switch = Switch::start("ivr-media");
    let caller = Caller::new(&switch);
    caller.send(&caller.invite(
        "media-1",
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    ));
    let ok = until_ok(&caller);
    assert!(ok.contains("m=audio "), "{ok}");
    assert!(ok.contains("a=rtpmap:0 PCMU/8000"), "{ok}");
    assert!(ok.contains("telephone-event/8000"), "{ok}");
    ack_for(&caller, &ok, "media-1");

    let (pt, pcm, seqs, from) = listen(&caller, 40);
    assert_eq!(pt, 0, "PCMU expected");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "gaps: {seqs:?}"
    );
    assert_eq!(pcm.len(), seqs.len() * 160, "20 ms frames");
    let share = tone_share(&pcm[..4000], 440.0);
    assert!(
        share > 0.5,
        "the prompt's 440 Hz tone is {share:.2} of the audio"
    );

    // Press 1: start, two updates, three end packets (RFC 4733 §2.5.1.4).
    let ts = 160_000;
    for (i, (end, dur, marker)) in [
        (false, 160, true),
        (false, 320, false),
        (false, 480, false),
        (true, 640, false),
        (true, 640, false),
        (true, 640, false),
    ]
    .into_iter()
    .enumerate()
    {
        caller
            .rtp
            .send_to(&rfc4733(100 + i as u16, ts, 1, end, dur, marker), from)
            .unwrap();
    }
    // The flow takes option 1 (hangup): the switch sends BYE.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            Instant::now() < deadline,
            "no BYE after the digit:\n{}",
            switch.log()
        );
        let msg = caller.recv();
        if msg.starts_with("BYE ") {
            break;
        }
    }
    // DESIGN §7: the call's record holds the path the caller took.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = common::http(&switch, "GET", "/api/v1/cdrs", Some("test-token"));
        assert_eq!(status, 200, "{body}");
        if body.contains("media-1") && body.contains("\"answered\"") && body.contains("wait") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no complete CDR for the call: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RFC 3264 §6: a PCMA-only offer is answered PCMA and the prompt arrives
/// A-law encoded.
#[test]
fn pcma_only_offer_is_answered_pcma() {
    let switch = Switch::start("ivr-pcma");
    let caller = Caller::new(&switch);
    caller.send(&caller.invite("media-2", "8", "a=rtpmap:8 PCMA/8000\r\n"));
    let ok = until_ok(&caller);
    assert!(ok.contains("RTP/AVP 8"), "{ok}");
    ack_for(&caller, &ok, "media-2");
    let (pt, pcm, _, _) = listen(&caller, 30);
    assert_eq!(pt, 8);
    let share = tone_share(&pcm[..4000], 440.0);
    assert!(
        share > 0.5,
        "the prompt's 440 Hz tone is {share:.2} of the audio"
    );
}
