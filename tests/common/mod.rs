//! Shared harness of the integration tests: a real `switchboard serve`
//! process on 127.0.0.1 with port 0, a scratch folder per test, and the
//! real SIP peers (SIPp, sipsak) when installed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch folder removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "switchboard-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test flow folder: number 100 answers at once, 200 rings 3 s first,
/// 300 is not public (callers must be trusted or authenticate). Each plays
/// `tone.wav` as a menu prompt and waits 30 s for a key (1 hangs up), so a
/// call stays up until the caller ends it.
pub const TEST_FLOWS: &[(&str, &str)] = &[
    (
        "main.yaml",
        "name: main\nnumbers: [\"100\", \"+14155550100\"]\n",
    ),
    (
        "ringing.yaml",
        "name: ringing\nnumbers: [\"200\"]\nring: 3s\n",
    ),
    (
        "private.yaml",
        "name: private\nnumbers: [\"300\"]\npublic: false\n",
    ),
];

/// The nodes every test flow shares.
pub const TEST_NODES: &str = "start: wait\nnodes:\n  wait:\n    menu:\n      prompt: tone.wav\n      options: { \"1\": bye }\n      timeout: 30s\n      tries: 1\n      failure: bye\n  bye: { hangup: {} }\n";

/// Writes a 1 s, 440 Hz, 8 kHz mono 16-bit WAV: the test prompt.
pub fn write_tone(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create tone");
    for n in 0..8000 {
        let t = n as f32 / 8000.0;
        w.write_sample(((t * 440.0 * std::f32::consts::TAU).sin() * 12000.0) as i16)
            .expect("write tone");
    }
    w.finalize().expect("finalize tone");
}

/// A running switch.
pub struct Switch {
    child: Option<Child>,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub dir: Scratch,
    /// The extra CLI arguments, kept for [`Switch::restart`].
    extra: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts `switchboard serve` on `dir` and waits for its listening line.
fn launch(
    dir: &Scratch,
    extra: &[String],
) -> (Child, SocketAddr, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("serve")
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--public-ip", "127.0.0.1", "--domain", "127.0.0.1"])
        .args(["--rtp-ports", "10000-19999", "--admin-token", "test-token"])
        .arg("--database-url")
        .arg(db_url(dir))
        .arg("--flows")
        .arg(dir.path().join("flows"))
        .arg("--sounds")
        .arg(dir.path().join("sounds"))
        .arg("--recordings")
        .arg(dir.path().join("recordings"))
        .args(extra)
        .env("RUST_LOG", "info,switchboard=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn switchboard");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening sip=").nth(1) {
                let _ = tx.send(rest.to_owned());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("switch did not start:\n{}", log.lock().unwrap().join("\n"));
        }
    };
    let (sip, http) = parse_listening(&line);
    (child, sip, http, log)
}

impl Switch {
    /// Starts `switchboard serve` with the test flows and a fresh SQLite file.
    pub fn start(name: &str) -> Switch {
        Switch::start_with(name, &[], |_| {})
    }

    /// Starts with extra CLI args; `prepare` runs on the scratch folder first
    /// (to add agents with the CLI, say).
    pub fn start_with(name: &str, extra: &[&str], prepare: impl FnOnce(&Scratch)) -> Switch {
        let dir = Scratch::new(name);
        for (file, head) in TEST_FLOWS {
            dir.write(&format!("flows/{file}"), &format!("{head}{TEST_NODES}"));
        }
        std::fs::create_dir_all(dir.path().join("sounds")).expect("sounds dir");
        write_tone(&dir.path().join("sounds/tone.wav"));
        prepare(&dir);
        let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        let (child, sip, http, log) = launch(&dir, &extra);
        Switch {
            child: Some(child),
            sip,
            http,
            dir,
            extra,
            log,
        }
    }

    /// Stops the switch (SIGTERM) and starts it again on the same folder
    /// and database; the log starts over.
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "switch exit status {status}");
        let (child, sip, http, log) = launch(&self.dir, &self.extra);
        self.child = Some(child);
        self.sip = sip;
        self.http = http;
        self.log = log;
    }

    /// What the switch logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until the log holds `text`: the log is read by a
    /// thread, a little behind the switch.
    pub fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "never logged {text:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("switch did not stop after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the switch CLI against this switch's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .arg("--database-url")
            .arg(db_url(&self.dir))
            .output()
            .expect("run switchboard cli")
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn db_url(dir: &Scratch) -> String {
    format!("sqlite://{}", dir.path().join("switchboard.db").display())
}

fn parse_listening(rest: &str) -> (SocketAddr, SocketAddr) {
    let mut parts = rest.split_whitespace();
    let sip = parts.next().expect("sip addr").parse().expect("sip addr");
    let http = parts
        .next()
        .and_then(|p| p.strip_prefix("http="))
        .expect("http addr")
        .parse()
        .expect("http addr");
    (sip, http)
}

/// Whether a peer program is installed. When it is not: with
/// `SWITCHBOARD_REQUIRE_PEERS=1` (set by `.ci/run`) the test fails, otherwise
/// it prints why it is skipped and returns false.
pub fn have_peer(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("SWITCHBOARD_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("{program} is required (SWITCHBOARD_REQUIRE_PEERS=1) but not installed");
        }
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// A free UDP port on 127.0.0.1 (also free for TCP at the time of asking).
pub fn free_port() -> u16 {
    loop {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = sock.local_addr().expect("addr").port();
        if port % 2 == 0 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Runs SIPp against the switch with the flags every run needs (loopback
/// only, own control port, bounded calls and time). `args` come last.
pub fn sipp(switch: &Switch, args: &[&str]) -> Output {
    let dir = switch.dir.path().join("sipp");
    std::fs::create_dir_all(&dir).expect("sipp dir");
    let local = free_port().to_string();
    let media = free_port().to_string();
    let control = free_port().to_string();
    Command::new("sipp")
        .current_dir(&dir)
        .arg(switch.sip.to_string())
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
        .args(["-p", &local, "-mp", &media, "-cp", &control])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err"])
        .args(args)
        .output()
        .expect("run sipp")
}

/// Like [`sipp`], from a given local SIP port (a phone that registered
/// from that port and answers there later).
pub fn sipp_from(switch: &Switch, local_port: &str, args: &[&str]) -> Output {
    let dir = switch.dir.path().join("sipp");
    std::fs::create_dir_all(&dir).expect("sipp dir");
    Command::new("sipp")
        .current_dir(&dir)
        .arg(switch.sip.to_string())
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
        .args([
            "-p",
            local_port,
            "-mp",
            &free_port().to_string(),
            "-cp",
            &free_port().to_string(),
        ])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err"])
        .args(args)
        .output()
        .expect("run sipp")
}

/// Path of a scenario under tests/sipp/.
pub fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
}

/// Asserts SIPp exited 0, printing its output and the switch's log if not.
pub fn assert_sipp_ok(out: &Output, switch: &Switch, what: &str) {
    if !out.status.success() {
        let errs = std::fs::read_dir(switch.dir.path().join("sipp"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{what}: sipp failed ({})\nstdout:\n{}\nstderr:\n{}\nerrors:\n{}\nswitch log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            errs,
            switch.log()
        );
    }
}

/// One HTTP/1.1 request to the switch's API over a plain TCP connection;
/// returns the status and the body.
pub fn http(switch: &Switch, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    http_body(switch, method, path, token, "")
}

/// An admin API call with a JSON body (empty for none): the status and the
/// body as JSON (`null` when empty).
pub fn api(
    switch: &Switch,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(ToString::to_string).unwrap_or_default();
    let (status, text) = http_body(switch, method, path, Some("test-token"), &body);
    let value = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    };
    (status, value)
}

/// Like [`http`], with a JSON request body.
pub fn http_body(
    switch: &Switch,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(switch.http).expect("connect HTTP");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        switch.http,
        body.len()
    );
    conn.write_all(request.as_bytes()).expect("send HTTP");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("read HTTP");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Sends an INVITE without SDP for `number` over UDP and returns the final
/// status code (the call, if answered, is left to time out).
pub fn invite_status(switch: &Switch, number: &str) -> u16 {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let me = sock.local_addr().expect("addr");
    let invite = format!(
        "INVITE sip:{number}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKinv{n}x{pid};rport\r\n\
         From: <sip:caller@{me}>;tag=a{n}\r\nTo: <sip:{number}@{sip}>\r\nCall-ID: inv-{n}-{pid}@test\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sip = switch.sip,
        pid = std::process::id(),
    );
    sock.send_to(invite.as_bytes(), switch.sip).expect("send");
    let mut buf = [0u8; 4096];
    loop {
        let (len, _) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no response to INVITE {number}: {e}\n{}", switch.log()));
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let code: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if code >= 200 {
            return code;
        }
    }
}

/// A child process (a SIP peer) killed by its pid and reaped when dropped,
/// so a failing test leaves nothing running.
pub struct ChildGuard {
    child: Option<Child>,
    pub what: &'static str,
}

impl ChildGuard {
    pub fn new(what: &'static str, child: Child) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            what,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits up to `limit` for the process to exit by itself; kills it
    /// after that. Returns the exit status if it exited in time.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    return None;
                }
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Power of `freq` in 8 kHz `pcm` relative to the total power: a one-bin
/// DFT, 1.0 for a pure tone at `freq`, near 0 for silence or other tones.
pub fn tone_share(pcm: &[i16], freq: f64) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
    for (n, &s) in pcm.iter().enumerate() {
        let x = f64::from(s);
        let w = std::f64::consts::TAU * freq * n as f64 / 8000.0;
        re += x * w.cos();
        im += x * w.sin();
        total += x * x;
    }
    (re * re + im * im) * 2.0 / (pcm.len() as f64 * f64::max(total, 1.0))
}

/// Writes an 8 kHz mono 16-bit WAV of a sine at `freq` Hz lasting `secs`
/// seconds (a caller's microphone for baresip's `aufile` source).
pub fn write_sine_wav(path: &Path, freq: f32, secs: u32, amplitude: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for n in 0..8000 * secs {
        let t = n as f32 / 8000.0;
        w.write_sample(((t * freq * std::f32::consts::TAU).sin() * amplitude) as i16)
            .expect("write wav");
    }
    w.finalize().expect("finalize wav");
}

/// The 16-bit PCM samples of a WAV file, read leniently: the `data` chunk
/// runs to the end of the file whatever its header says, since a peer that
/// is still recording (or was killed) may not have finalized the sizes.
pub fn read_wav_lenient(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        if id == b"data" {
            return bytes[at + 8..]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        at = at.saturating_add(8).saturating_add(len + (len & 1));
    }
    Vec::new()
}

/// One RTP packet (RFC 3550 §5.1, version 2, no CSRC or extension).
pub fn rtp_bytes(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(if marker {
        0x80 | (pt & 0x7f)
    } else {
        pt & 0x7f
    });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The payload of an RFC 4733 §2.3 named event: event code, end bit,
/// volume (-dBm0) and duration in timestamp units.
pub fn rfc4733_payload(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    let flags = if end { 0x80 } else { 0 } | (volume & 0x3f);
    [event, flags, d[0], d[1]]
}

/// Writes a classic libpcap file (link type 1, Ethernet) holding `packets`:
/// (time since the first packet, UDP payload), each wrapped in Ethernet,
/// IPv4 (with its header checksum) and UDP (checksum 0, "none") from
/// `src` to `dst`. SIPp's `play_pcap_audio` replays the UDP payloads at the
/// recorded times, rewriting addresses and ports.
pub fn write_pcap(path: &Path, src: SocketAddr, dst: SocketAddr, packets: &[(Duration, Vec<u8>)]) {
    let ip = |a: SocketAddr| match a.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => panic!("pcap helper writes IPv4 only"),
    };
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let start = 1_700_000_000u64 * 1_000_000;
    for (i, (at, payload)) in packets.iter().enumerate() {
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        let frame_len = 14 + ip_len;
        let when = start + at.as_micros() as u64;
        out.extend_from_slice(&((when / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((when % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        // Ethernet II: destination, source, EtherType IPv4.
        out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        // IPv4 (RFC 791): no options, DF, TTL 64, UDP.
        let mut hdr = [0u8; 20];
        hdr[0] = 0x45;
        hdr[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        hdr[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        hdr[6] = 0x40;
        hdr[8] = 64;
        hdr[9] = 17;
        hdr[12..16].copy_from_slice(&ip(src));
        hdr[16..20].copy_from_slice(&ip(dst));
        let mut sum: u32 = hdr
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        hdr[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        out.extend_from_slice(&hdr);
        // UDP (RFC 768): ports, length, checksum 0.
        out.extend_from_slice(&src.port().to_be_bytes());
        out.extend_from_slice(&dst.port().to_be_bytes());
        out.extend_from_slice(&(udp_len as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(payload);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// Frames `json` as a netstring (`LEN:DATA,`), baresip's `ctrl_tcp` framing.
pub fn netstring(json: &str) -> Vec<u8> {
    format!("{}:{json},", json.len()).into_bytes()
}

/// Takes every complete netstring off the front of `buf`.
pub fn take_netstrings(buf: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(colon) = buf.iter().take(10).position(|&b| b == b':') {
        let Some(len) = std::str::from_utf8(&buf[..colon])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            buf.clear();
            break;
        };
        let end = colon + 1 + len;
        if buf.len() <= end {
            break;
        }
        out.push(String::from_utf8_lossy(&buf[colon + 1..end]).into_owned());
        buf.drain(..=end);
    }
    out
}

/// Adds an agent with the CLI into a scratch folder's database, under the
/// realm the test switch uses (127.0.0.1).
pub fn add_agent(dir: &Scratch, login: &str, password: &str, extra: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["agent", "add", login, "--password", password])
        .args(extra)
        .arg("--database-url")
        .arg(db_url(dir))
        .env("SWITCHBOARD_DOMAIN", "127.0.0.1")
        .output()
        .expect("agent add");
    assert!(
        out.status.success(),
        "agent add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Registers `login` from SIPp on a fresh port, then starts SIPp's built-in
/// answering scenario on that port: the agent's phone. Returns the running
/// answering SIPp (one call).
pub fn agent_phone(switch: &Switch, login: &str, password: &str) -> Child {
    agent_phone_with(switch, login, password, &["-sn", "uas"])
}

/// Like [`agent_phone`], with the answering SIPp's own arguments (`-sf
/// FILE`, `-set NAME VALUE`, logs, ...) in place of the built-in `uas`;
/// one call unless they say `-m N`. Returns once the switch logged this
/// login's registration (a second device of a login already registered
/// replaces nothing and is not waited for).
pub fn agent_phone_with(switch: &Switch, login: &str, password: &str, answer: &[&str]) -> Child {
    let port = free_port().to_string();
    let register = scenario("agent_register.xml");
    let out = sipp_from(
        switch,
        &port,
        &[
            "-sf", &register, "-s", login, "-au", login, "-ap", password, "-m", "1",
        ],
    );
    assert_sipp_ok(&out, switch, "agent registration");
    let calls: &[&str] = if answer.contains(&"-m") {
        &[]
    } else {
        &["-m", "1"]
    };
    let phone = Command::new("sipp")
        .current_dir(switch.dir.path().join("sipp"))
        .arg(switch.sip.to_string())
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
        .args([
            "-p",
            &port,
            "-mp",
            &free_port().to_string(),
            "-cp",
            &free_port().to_string(),
        ])
        .args(["-timeout", "60s", "-timeout_error", "-trace_err"])
        .args(answer)
        .args(calls)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp agent phone");
    switch.wait_log(&format!("agent registered login={login}"));
    phone
}

/// A raw SIP caller on UDP from `from_user`: INVITE with a PCMU (+ RFC 4733)
/// offer, answered and ACKed; then BYE either way.
pub struct RawCaller {
    pub sock: UdpSocket,
    pub rtp: UdpSocket,
    number: String,
    from_user: String,
    to: String,
    call_id: String,
    switch: SocketAddr,
    /// Where the switch takes the caller's RTP (its SDP answer).
    pub remote_rtp: Option<SocketAddr>,
}

impl RawCaller {
    pub fn dial(switch: &Switch, number: &str, from_user: &str, call_id: &str) -> RawCaller {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = sock.local_addr().unwrap();
        let sw = switch.sip;
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
            rtp.local_addr().unwrap().port()
        );
        let invite = format!(
            "INVITE sip:{number}@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}-1;rport\r\n\
             From: <sip:{from_user}@{me}>;tag=c1\r\nTo: <sip:{number}@{sw}>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        sock.send_to(invite.as_bytes(), sw).unwrap();
        let mut buf = [0u8; 8192];
        let (to, remote_rtp) = loop {
            let (n, _) = sock.recv_from(&mut buf).expect("answer to the INVITE");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            // Stray datagrams (RTP/RTCP of an earlier test's call to a port
            // the kernel handed out again) are not the switch's answer.
            if !msg.starts_with("SIP/2.0 ") {
                continue;
            }
            if msg.starts_with("SIP/2.0 200") {
                let to = msg
                    .lines()
                    .find_map(|l| l.strip_prefix("To:").map(|t| t.trim().to_owned()))
                    .unwrap();
                break (to, sdp_audio_addr(&msg));
            }
            assert!(msg.starts_with("SIP/2.0 1"), "INVITE refused:\n{msg}");
        };
        let caller = RawCaller {
            sock,
            rtp,
            number: number.to_owned(),
            from_user: from_user.to_owned(),
            to,
            call_id: call_id.to_owned(),
            switch: sw,
            remote_rtp,
        };
        caller.request("ACK", 1, "2");
        caller
    }

    fn request(&self, method: &str, cseq: u32, branch: &str) {
        let me = self.sock.local_addr().unwrap();
        let (sw, number, from, to, call_id) = (
            self.switch,
            &self.number,
            &self.from_user,
            &self.to,
            &self.call_id,
        );
        let msg = format!(
            "{method} sip:{number}@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}-{branch}\r\n\
             From: <sip:{from}@{me}>;tag=c1\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        self.sock.send_to(msg.as_bytes(), sw).unwrap();
    }

    /// What the caller hears for `length`: the switch's RTP (PCMU) decoded
    /// to 8 kHz samples, each packet put at its place by sequence number
    /// (lost or missing packets as silence). Empty if nothing came.
    pub fn listen(&self, length: Duration) -> Vec<i16> {
        self.rtp
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + length;
        let mut packets: Vec<(u32, Vec<i16>)> = Vec::new();
        let mut first: Option<u16> = None;
        let mut last_ext: u32 = 0;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.rtp.recv_from(&mut buf) else {
                continue;
            };
            if n < 12 || buf[0] >> 6 != 2 || buf[1] & 0x7f != 0 {
                continue;
            }
            let csrc = usize::from(buf[0] & 0x0f) * 4;
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let base = *first.get_or_insert(seq);
            // Extended sequence relative to the first packet.
            let delta = u32::from(seq.wrapping_sub(base));
            let mut ext = (last_ext & !0xffff) | delta;
            if ext + 0x8000 < last_ext {
                ext += 0x1_0000;
            }
            last_ext = last_ext.max(ext);
            let pcm = buf[12 + csrc..n]
                .iter()
                .map(|&b| switchboard::media::g711::ulaw_decode(b))
                .collect();
            packets.push((ext, pcm));
        }
        let Some(end) = packets.iter().map(|(i, _)| *i).max() else {
            return Vec::new();
        };
        let mut out = vec![0i16; (end as usize + 1) * 160];
        for (i, pcm) in packets {
            let at = i as usize * 160;
            let len = pcm.len().min(160);
            out[at..at + len].copy_from_slice(&pcm[..len]);
        }
        out
    }

    /// The caller hangs up.
    pub fn bye(&self) {
        self.request("BYE", 2, "3");
    }

    /// Waits for the switch's BYE and answers it 200.
    pub fn expect_bye(&self) {
        let mut buf = [0u8; 8192];
        loop {
            let (n, from) = self.sock.recv_from(&mut buf).expect("BYE from the switch");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !msg.starts_with("BYE ") {
                continue;
            }
            let mut resp = String::from("SIP/2.0 200 OK\r\n");
            for line in msg.lines() {
                let lower = line.to_ascii_lowercase();
                if ["via:", "from:", "to:", "call-id:", "cseq:"]
                    .iter()
                    .any(|h| lower.starts_with(h))
                {
                    resp.push_str(line);
                    resp.push_str("\r\n");
                }
            }
            resp.push_str("Content-Length: 0\r\n\r\n");
            self.sock.send_to(resp.as_bytes(), from).unwrap();
            return;
        }
    }
}

/// The audio address of the SDP in a SIP message's body (`c=` and the
/// `m=audio` port).
pub fn sdp_audio_addr(msg: &str) -> Option<SocketAddr> {
    let body = msg.split_once("\r\n\r\n")?.1;
    let ip = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim();
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

/// Copies Via, From, To (with `to_tag` added when it has none), Call-ID
/// and CSeq of `request` into a response (RFC 3261 §8.2.6.2).
pub fn response_to(request: &str, status: &str, to_tag: &str, extra: &str, body: &str) -> String {
    let mut resp = format!("SIP/2.0 {status}\r\n");
    for line in request.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("to:") && !lower.contains("tag=") {
            resp.push_str(&format!("{line};tag={to_tag}\r\n"));
        } else if ["via:", "from:", "to:", "call-id:", "cseq:"]
            .iter()
            .any(|h| lower.starts_with(h))
        {
            resp.push_str(line);
            resp.push_str("\r\n");
        }
    }
    resp.push_str(extra);
    resp.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    resp
}

/// An agent's phone played by the test itself: it registers with SIPp
/// (digest) from a port, then takes that port over to answer the switch's
/// INVITE with its own RTP socket, so a test can send and hear audio on
/// the agent's side.
pub struct RawAgent {
    pub sock: UdpSocket,
    pub rtp: UdpSocket,
}

impl RawAgent {
    pub fn register(switch: &Switch, login: &str, password: &str) -> RawAgent {
        let port = free_port().to_string();
        let register = scenario("agent_register.xml");
        let out = sipp_from(
            switch,
            &port,
            &[
                "-sf", &register, "-s", login, "-au", login, "-ap", password, "-m", "1",
            ],
        );
        assert_sipp_ok(&out, switch, "agent registration");
        switch.wait_log(&format!("agent registered login={login}"));
        let sock = UdpSocket::bind(format!("127.0.0.1:{port}")).expect("take the agent's port");
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        RawAgent { sock, rtp }
    }

    /// Waits for the switch's INVITE, answers 200 with a PCMU offer answer
    /// on our RTP socket, and waits for the ACK. Returns the switch's RTP
    /// address for this leg.
    pub fn answer(&self) -> SocketAddr {
        let mut buf = [0u8; 8192];
        let (invite, from) = loop {
            let (n, from) = self.sock.recv_from(&mut buf).expect("INVITE to the agent");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with("INVITE ") {
                break (msg, from);
            }
        };
        let remote = sdp_audio_addr(&invite).expect("SDP offer in the INVITE");
        let me = self.sock.local_addr().unwrap();
        let sdp = format!(
            "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            self.rtp.local_addr().unwrap().port()
        );
        let ok = response_to(
            &invite,
            "200 OK",
            "agent1",
            &format!("Contact: <sip:agent@{me}>\r\nContent-Type: application/sdp\r\n"),
            &sdp,
        );
        self.sock.send_to(ok.as_bytes(), from).unwrap();
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).expect("ACK from the switch");
            if buf[..n].starts_with(b"ACK ") {
                return remote;
            }
        }
    }
}

/// Sends `secs` seconds of a PCMU sine at `freq` Hz from `sock` to `dest`
/// in 20 ms packets (RFC 3550 timing), on a thread.
pub fn send_tone(
    sock: &UdpSocket,
    dest: SocketAddr,
    freq: f32,
    secs: u32,
) -> std::thread::JoinHandle<()> {
    let sock = sock.try_clone().expect("clone RTP socket");
    std::thread::spawn(move || {
        let ssrc = 0x5157_0000 | (freq as u32);
        let start = Instant::now();
        for frame in 0..(secs * 50) {
            let payload: Vec<u8> = (0..160)
                .map(|i| {
                    let n = (frame * 160 + i) as f32;
                    let x = (n / 8000.0 * freq * std::f32::consts::TAU).sin() * 8000.0;
                    switchboard::media::g711::ulaw_encode_table(x as i16)
                })
                .collect();
            let pkt = rtp_bytes(0, frame == 0, frame as u16, frame * 160, ssrc, &payload);
            let _ = sock.send_to(&pkt, dest);
            let due = start + Duration::from_millis(u64::from(frame + 1) * 20);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    })
}

/// Collects the PCMU audio arriving on `sock` for `limit`, decoded, in
/// arrival order.
pub fn receive_pcmu(sock: &UdpSocket, limit: Duration) -> Vec<i16> {
    let sock = sock.try_clone().expect("clone RTP socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut pcm = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf)
            && n > 12
            && buf[1] & 0x7f == 0
        {
            let mut out = vec![0i16; n - 12];
            switchboard::media::g711::decode_ulaw(&buf[12..n], &mut out);
            pcm.extend_from_slice(&out);
        }
    }
    pcm
}
