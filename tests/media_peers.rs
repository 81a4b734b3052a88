//! The switch's media with real SIP peers on 127.0.0.1 (DESIGN §4, issue 4
//! "How it is checked"): a SIPp caller that presses a key with RFC 4733
//! events played from a pcap the test builds, a headless baresip caller,
//! and raw-socket callers that press a key as in-band audio or SIP INFO.
//! Each caller must hear the flow's menu prompt (`tone.wav`, 440 Hz) and
//! its key "1" must take the menu option that hangs up, well before the
//! menu's own 30 s timeout would.
//!
//! SIPp and baresip are skipped when not installed, unless
//! `SWITCHBOARD_REQUIRE_PEERS=1` (CI), which makes a missing peer a failure.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    ChildGuard, Switch, assert_sipp_ok, free_port, have_peer, netstring, read_wav_lenient,
    rfc4733_payload, rtp_bytes, scenario, sipp, take_netstrings, tone_share, write_pcap,
    write_sine_wav,
};
use switchboard::media::g711::{ulaw_decode, ulaw_encode};
use switchboard::media::rtp::RtpPacket;

/// Samples in one 20 ms G.711 frame.
const FRAME: usize = 160;

/// The prompt is 1 s: a caller that heard it got nearly all of its frames.
const PROMPT_FRAMES_HEARD: usize = 40;

/// Whether the switch's log shows the menu taking key "1": the flow path
/// the call logs just before its BYE. Any other key also ends this menu
/// (its failure branch hangs up too), so the BYE alone does not prove the
/// digit. Polls briefly, since the log arrives through a pipe.
fn flow_took_key_1(switch: &Switch) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if switch.log().contains("\"outcome\":\"key 1\"") {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Collects the RTP that arrives on `sock` for `limit`, or until `enough`
/// PCMU frames came: (decoded samples, packets, source addresses).
fn capture_pcmu(
    sock: &UdpSocket,
    limit: Duration,
    enough: usize,
) -> (Vec<i16>, usize, Vec<SocketAddr>) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let mut pcm = Vec::new();
    let mut packets = 0;
    let mut sources = Vec::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && packets < enough {
        let Ok((n, src)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(pkt) = RtpPacket::parse(&buf[..n]) else {
            continue;
        };
        if pkt.payload_type() != 0 {
            continue;
        }
        packets += 1;
        if !sources.contains(&src) {
            sources.push(src);
        }
        pcm.extend(pkt.payload().iter().map(|&b| ulaw_decode(b)));
    }
    (pcm, packets, sources)
}

/// The pcap SIPp plays: ONE RTP stream (one SSRC) of PCMU silence with
/// digit "1" as RFC 4733 events in the middle, 20 ms apart: 0.4 s of
/// audio, the event (marker on its first packet, updates every 20 ms, the
/// end packet sent three times with the final duration, RFC 4733
/// §2.5.1.3-4), then 0.4 s more audio on the same clock.
fn dtmf1_pcap(path: &Path) {
    const SSRC: u32 = 0x5eed_0001;
    const TE: u8 = 101;
    let silence = [ulaw_encode(0); FRAME];
    // (payload type, marker, timestamp, payload), one per 20 ms slot.
    let mut stream: Vec<(u8, bool, u32, Vec<u8>)> = Vec::new();
    for i in 0..20u32 {
        stream.push((0, i == 0, i * FRAME as u32, silence.to_vec()));
    }
    // The event starts at the next frame's timestamp and keeps it.
    let event_ts = 20 * FRAME as u32;
    for k in 1..=5u16 {
        let payload = rfc4733_payload(1, false, 10, k * FRAME as u16);
        stream.push((TE, k == 1, event_ts, payload.to_vec()));
    }
    let end = rfc4733_payload(1, true, 10, 6 * FRAME as u16);
    for _ in 0..3 {
        stream.push((TE, false, event_ts, end.to_vec()));
    }
    for i in 28..48u32 {
        stream.push((0, false, i * FRAME as u32, silence.to_vec()));
    }
    let packets: Vec<(Duration, Vec<u8>)> = stream
        .iter()
        .enumerate()
        .map(|(i, (pt, marker, ts, payload))| {
            let seq = 1000u16.wrapping_add(i as u16);
            (
                Duration::from_millis(20 * i as u64),
                rtp_bytes(*pt, *marker, seq, *ts, SSRC, payload),
            )
        })
        .collect();
    let src: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
    let dst: SocketAddr = "127.0.0.1:6002".parse().expect("addr");
    write_pcap(path, src, dst, &packets);
}

/// DESIGN §4, RFC 3264 §6 and RFC 4733 §2.5: a SIPp caller offering PCMU
/// and telephone-event 101 hears the menu prompt (440 Hz, captured on the
/// media port its SDP advertises), then presses "1" with RFC 4733 events
/// replayed from a pcap on one SSRC; the switch sees the digit and the
/// flow's hangup sends the BYE SIPp waits for.
///
/// Symmetric RTP (src/media/engine/leg.rs) sends to the SDP address until
/// the caller's first RTP packet latches the source. The SDP names the
/// test's socket and SIPp's RTP only starts 2.5 s after the ACK, when the
/// 1 s prompt has been sent; so the whole prompt comes to the test, and
/// the digit still arrives from SIPp's own port. SIPp replays a pcap
/// through a raw socket, so this needs root (or CAP_NET_RAW), as on CI.
#[test]
fn sipp_caller_hears_the_prompt_and_presses_1_with_rfc4733() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start("media-sipp-dtmf");
    let sipp_dir = switch.dir.path().join("sipp");
    std::fs::create_dir_all(&sipp_dir).expect("sipp dir");
    dtmf1_pcap(&sipp_dir.join("dtmf1.pcap"));

    let capture = UdpSocket::bind("127.0.0.1:0").expect("bind capture");
    let capture_port = capture.local_addr().expect("addr").port().to_string();
    let listener = std::thread::spawn(move || capture_pcmu(&capture, Duration::from_secs(8), 50));
    let sf = scenario("uac_dtmf_pcap.xml");
    let out = sipp(
        &switch,
        &[
            "-sf",
            &sf,
            "-s",
            "100",
            "-m",
            "1",
            "-l",
            "1",
            "-key",
            "capture_port",
            &capture_port,
        ],
    );
    let (pcm, packets, sources) = listener.join().expect("capture thread");
    assert_sipp_ok(&out, &switch, "RFC 4733 digit from SIPp");
    assert!(
        packets >= PROMPT_FRAMES_HEARD,
        "the caller got {packets} PCMU frames of the 1 s prompt\n{}",
        switch.log()
    );
    assert_eq!(pcm.len(), packets * FRAME, "20 ms frames");
    let share = tone_share(&pcm, 440.0);
    assert!(
        share > 0.5,
        "the prompt's 440 Hz tone is {share:.2} of what the caller heard"
    );
    assert_eq!(sources.len(), 1, "one RTP source: {sources:?}");
    assert!(
        flow_took_key_1(&switch),
        "the flow did not take key 1:\n{}",
        switch.log()
    );
}

/// A raw-socket caller (INVITE with an SDP offer, ACK, RTP on its own
/// socket): what ivr_media.rs does, for the in-band and INFO tests.
struct RawCaller {
    sip: UdpSocket,
    rtp: UdpSocket,
    switch: SocketAddr,
    call_id: String,
    /// The 200's To (with the switch's tag), once answered.
    to: String,
}

impl RawCaller {
    fn new(switch: &Switch, call_id: &str) -> RawCaller {
        let sip = UdpSocket::bind("127.0.0.1:0").expect("bind sip");
        sip.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind rtp");
        RawCaller {
            sip,
            rtp,
            switch: switch.sip,
            call_id: call_id.to_owned(),
            to: String::new(),
        }
    }

    fn me(&self) -> SocketAddr {
        self.sip.local_addr().expect("addr")
    }

    fn send(&self, text: &str) {
        self.sip
            .send_to(text.as_bytes(), self.switch)
            .expect("send SIP");
    }

    /// The next SIP message, or None after the socket's timeout.
    fn recv(&self) -> Option<String> {
        let mut buf = [0u8; 8192];
        let (n, _) = self.sip.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// INVITE offering `codecs` (RFC 3264 §5), then ACK the 200.
    fn call(&mut self, switch: &Switch, codecs: &str, rtpmaps: &str) {
        let me = self.me();
        let media = self.rtp.local_addr().expect("addr").port();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {media} RTP/AVP {codecs}\r\n{rtpmaps}"
        );
        self.send(&format!(
            "INVITE sip:100@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKinv-{id};rport\r\n\
             From: <sip:caller@{me}>;tag=c1\r\nTo: <sip:100@{sw}>\r\nCall-ID: {id}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            sw = self.switch,
            id = self.call_id,
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        let ok = loop {
            assert!(Instant::now() < deadline, "no 200:\n{}", switch.log());
            let Some(msg) = self.recv() else { continue };
            match msg.split_whitespace().nth(1).unwrap_or("") {
                "100" | "180" | "183" => continue,
                "200" => break msg,
                _ => panic!("unexpected answer:\n{msg}"),
            }
        };
        assert!(ok.contains("a=rtpmap:0 PCMU/8000"), "{ok}");
        self.to = header(&ok, "To:").to_owned();
        self.send(&format!(
            "ACK sip:100@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack-{id}\r\n\
             From: <sip:caller@{me}>;tag=c1\r\nTo: {to}\r\nCall-ID: {id}\r\nCSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            sw = self.switch,
            id = self.call_id,
            to = self.to,
        ));
    }

    /// Waits up to `limit` for the switch's BYE (skipping other messages,
    /// which `seen` collects) and answers it 200 (RFC 3261 §15.1.2).
    fn expect_bye(&self, switch: &Switch, limit: Duration, seen: &mut Vec<String>) {
        let deadline = Instant::now() + limit;
        loop {
            assert!(
                Instant::now() < deadline,
                "no BYE within {limit:?}; got {seen:?}\n{}",
                switch.log()
            );
            let Some(msg) = self.recv() else { continue };
            if !msg.starts_with("BYE ") {
                seen.push(msg);
                continue;
            }
            let via: String = msg
                .lines()
                .filter(|l| l.starts_with("Via:") || l.starts_with("v:"))
                .map(|l| format!("{l}\r\n"))
                .collect();
            self.send(&format!(
                "SIP/2.0 200 OK\r\n{via}From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
                 Content-Length: 0\r\n\r\n",
                header(&msg, "From:"),
                header(&msg, "To:"),
                header(&msg, "Call-ID:"),
                header(&msg, "CSeq:"),
            ));
            return;
        }
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

/// DESIGN §4 (in-band DTMF, ITU-T Q.23/Q.24): a caller that offers PCMU
/// WITHOUT telephone-event hears the prompt, then sends the key "1" as
/// audio (697 Hz + 1209 Hz for 100 ms between silences, μ-law, 20 ms
/// RTP frames on one stream); the switch's Goertzel detector sees it and
/// the flow hangs up.
#[test]
fn in_band_tone_digit_is_detected() {
    let switch = Switch::start("media-inband");
    let mut caller = RawCaller::new(&switch, "inband-1");
    caller.call(&switch, "0", "a=rtpmap:0 PCMU/8000\r\n");

    let (pcm, packets, sources) = capture_pcmu(&caller.rtp, Duration::from_secs(5), 50);
    assert!(
        packets >= PROMPT_FRAMES_HEARD,
        "heard {packets} frames of the prompt\n{}",
        switch.log()
    );
    let share = tone_share(&pcm, 440.0);
    assert!(
        share > 0.5,
        "the prompt's 440 Hz is {share:.2} of the audio"
    );
    let to = sources[0];

    // 200 ms silence, 100 ms of the "1" tone pair, 200 ms silence. Each
    // tone at -10 dBm0 (Q.24 accepts down to about -25 dBm0).
    let amp = 22_647.0 * 10f64.powf(-10.0 / 20.0);
    let mut pcm = vec![0i16; 10 * FRAME];
    pcm.extend((0..5 * FRAME).map(|n| {
        let t = n as f64 / 8000.0;
        let s = amp
            * ((std::f64::consts::TAU * 697.0 * t).sin()
                + (std::f64::consts::TAU * 1209.0 * t).sin());
        s as i16
    }));
    pcm.extend(std::iter::repeat_n(0i16, 10 * FRAME));
    let ssrc = 0x1b1b_0001;
    let start = Instant::now();
    for (i, frame) in pcm.chunks(FRAME).enumerate() {
        let payload: Vec<u8> = frame.iter().map(|&s| ulaw_encode(s)).collect();
        let pkt = rtp_bytes(
            0,
            i == 0,
            500 + i as u16,
            i as u32 * FRAME as u32,
            ssrc,
            &payload,
        );
        caller.rtp.send_to(&pkt, to).expect("send RTP");
        // Paced on the 20 ms grid, like a phone.
        let next = start + Duration::from_millis(20 * (i as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let mut seen = Vec::new();
    caller.expect_bye(&switch, Duration::from_secs(8), &mut seen);
    assert!(
        flow_took_key_1(&switch),
        "the flow did not take key 1:\n{}",
        switch.log()
    );
}

/// DESIGN §4 (SIP INFO DTMF, `application/dtmf-relay`): a caller that
/// sends `Signal=1` in an in-dialog INFO gets 200 for it and the flow
/// takes key 1 and hangs up.
#[test]
fn sip_info_digit_is_seen() {
    let switch = Switch::start("media-info");
    let mut caller = RawCaller::new(&switch, "info-1");
    caller.call(
        &switch,
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    // The caller hears the prompt first.
    let (pcm, packets, _) = capture_pcmu(&caller.rtp, Duration::from_secs(5), 50);
    assert!(
        packets >= PROMPT_FRAMES_HEARD,
        "heard {packets} frames of the prompt\n{}",
        switch.log()
    );
    let share = tone_share(&pcm, 440.0);
    assert!(
        share > 0.5,
        "the prompt's 440 Hz is {share:.2} of the audio"
    );

    let me = caller.me();
    let body = "Signal=1\r\nDuration=160\r\n";
    caller.send(&format!(
        "INFO sip:100@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKinfo-{id};rport\r\n\
         From: <sip:caller@{me}>;tag=c1\r\nTo: {to}\r\nCall-ID: {id}\r\nCSeq: 2 INFO\r\n\
         Contact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
        body.len(),
        sw = caller.switch,
        id = caller.call_id,
        to = caller.to,
    ));
    let mut seen = Vec::new();
    caller.expect_bye(&switch, Duration::from_secs(8), &mut seen);
    assert!(
        seen.iter()
            .any(|m| m.starts_with("SIP/2.0 200") && m.contains("CSeq: 2 INFO")),
        "no 200 for the INFO: {seen:?}"
    );
    assert!(
        flow_took_key_1(&switch),
        "the flow did not take key 1:\n{}",
        switch.log()
    );
}

/// baresip driven over its `ctrl_tcp` module: netstring-framed JSON
/// commands in, responses and call events out.
struct Baresip {
    conn: TcpStream,
    buf: Vec<u8>,
    /// Every message received so far (for failure messages).
    seen: Vec<String>,
    token: u32,
}

impl Baresip {
    /// Connects to `ctrl_tcp`, retrying while baresip starts (bounded).
    fn connect(port: u16, process: &mut ChildGuard, log: &Path) -> Baresip {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(conn) = TcpStream::connect(("127.0.0.1", port)) {
                conn.set_read_timeout(Some(Duration::from_millis(100)))
                    .expect("timeout");
                return Baresip {
                    conn,
                    buf: Vec::new(),
                    seen: Vec::new(),
                    token: 0,
                };
            }
            if Instant::now() > deadline {
                let status = process.wait_for(Duration::ZERO);
                panic!(
                    "baresip's ctrl_tcp did not open (exit {status:?}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let json = serde_json::json!({
            "command": command,
            "params": params,
            "token": self.token.to_string(),
        })
        .to_string();
        self.conn
            .write_all(&netstring(&json))
            .expect("send ctrl_tcp command");
    }

    /// Waits up to `limit` for an event of `kind` (`CALL_ESTABLISHED`, …);
    /// false if it did not come.
    fn wait_event(&mut self, kind: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 4096];
        let mut from = self.seen.len();
        while Instant::now() < deadline {
            for msg in take_netstrings(&mut self.buf) {
                self.seen.push(msg);
            }
            for msg in &self.seen[from..] {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(msg) else {
                    continue;
                };
                if v["event"] == true && v["type"] == kind {
                    return true;
                }
            }
            from = self.seen.len();
            match self.conn.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
        false
    }
}

/// The WAV sndfile writes with what baresip decoded from the switch.
fn decoded_wav(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
}

/// The issue 4 check with a real softphone: a headless baresip (its
/// microphone a 10 s WAV through `aufile`, what it hears recorded by
/// `sndfile`) calls number 100 over `ctrl_tcp`; the call is answered, the
/// recording of what baresip decoded holds the 440 Hz prompt, and
/// baresip's key "1" (RFC 4733, `sndcode`) makes the flow hang up, which
/// baresip reports as the call closed.
#[test]
fn baresip_caller_hears_the_prompt_and_presses_1() {
    if !have_peer("baresip") {
        return;
    }
    let modules = Path::new("/usr/lib/baresip/modules");
    assert!(
        modules.join("sndfile.so").exists() && modules.join("ctrl_tcp.so").exists(),
        "baresip modules not found in {}",
        modules.display()
    );
    let switch = Switch::start("media-baresip");
    let dir = switch.dir.path().join("baresip");
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).expect("baresip dirs");
    let mic = dir.join("mic.wav");
    write_sine_wav(&mic, 300.0, 10, 6000.0);
    let sip_port = free_port();
    let ctrl_port = free_port();
    // RTP outside the switch's 40000-49999 and the kernel's ephemeral range.
    let rtp = 30_000 + (std::process::id() % 200) as u16 * 10;
    let config = format!(
        "poll_method\t\tpoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         net_interface\t\t127.0.0.1\n\
         dns_server\t\t127.0.0.1:53\n\
         rtp_ports\t\t{rtp}-{}\n\
         rtcp_mux\t\tno\n\
         audio_source\t\taufile,{}\n\
         module_path\t\t{}\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module\t\t\tsndfile.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         module_app\t\tctrl_tcp.so\n\
         ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n\
         snd_path\t\t{}\n",
        rtp + 9,
        mic.display(),
        modules.display(),
        rec.display(),
    );
    std::fs::write(dir.join("config"), config).expect("baresip config");
    // No registration: the switch's number 100 is public.
    std::fs::write(dir.join("accounts"), "<sip:caller@127.0.0.1>;regint=0\n")
        .expect("baresip accounts");
    let log = dir.join("baresip.log");
    let out = std::fs::File::create(&log).expect("baresip log");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log fd"))
        .stderr(out)
        .spawn()
        .expect("spawn baresip");
    let mut process = ChildGuard::new("baresip", child);
    let mut ctl = Baresip::connect(ctrl_port, &mut process, &log);
    let baresip_log = |ctl: &Baresip| {
        format!(
            "ctrl_tcp: {:?}\nbaresip log:\n{}\nswitch log:\n{}",
            ctl.seen,
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .replace('\r', "\n")
                .lines()
                .filter(|l| !l.contains("audio="))
                .collect::<Vec<_>>()
                .join("\n"),
            switch.log()
        )
    };

    ctl.command("dial", &format!("sip:100@{}", switch.sip));
    assert!(
        ctl.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)),
        "the call was not answered\n{}",
        baresip_log(&ctl)
    );

    // What baresip decoded grows in its recording as the prompt plays.
    let deadline = Instant::now() + Duration::from_secs(8);
    let heard = loop {
        let pcm = decoded_wav(&rec)
            .map(|p| read_wav_lenient(&p))
            .unwrap_or_default();
        if pcm.len() >= PROMPT_FRAMES_HEARD * FRAME || Instant::now() > deadline {
            break pcm;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        heard.len() >= PROMPT_FRAMES_HEARD * FRAME,
        "baresip recorded {} samples of the 1 s prompt\n{}",
        heard.len(),
        baresip_log(&ctl)
    );
    let loud: Vec<i16> = heard
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 500)
        .collect();
    let share = tone_share(&loud[..loud.len().min(8000)], 440.0);
    assert!(
        share > 0.5,
        "the prompt's 440 Hz is {share:.2} of what baresip heard ({} samples)",
        loud.len()
    );

    // Key 1 (RFC 4733 from baresip): the flow hangs up.
    ctl.command("sndcode", "1");
    assert!(
        ctl.wait_event("CALL_CLOSED", Duration::from_secs(8)),
        "no hang-up after key 1\n{}",
        baresip_log(&ctl)
    );
    assert!(
        flow_took_key_1(&switch),
        "the flow did not take key 1:\n{}",
        baresip_log(&ctl)
    );
    ctl.command("quit", "");
    if process.wait_for(Duration::from_secs(5)).is_none() {
        eprintln!("baresip did not quit by itself; killed it");
    }
}
