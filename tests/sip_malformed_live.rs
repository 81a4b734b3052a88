//! The malformed corpus (tests/data/malformed) and the RFC 4475 messages
//! fired at a live switch over UDP: each gets the reply its EXPECTED line
//! names (400, 505) or none, the switch keeps answering OPTIONS, and
//! `/metrics` counts what it refused (DESIGN §3, §10).

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::Switch;

fn corpus() -> Vec<(String, Vec<u8>, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/malformed");
    let expected = std::fs::read_to_string(dir.join("EXPECTED")).expect("EXPECTED");
    expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            let file = parts.next().unwrap().to_owned();
            let reply = parts.next().unwrap().to_owned();
            let bytes = std::fs::read(dir.join(&file)).expect("corpus file");
            (file, bytes, reply)
        })
        .collect()
}

/// The status code of the first SIP response read within `wait`, if any.
fn reply_status(sock: &UdpSocket, wait: Duration) -> Option<u16> {
    sock.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn options(switch: &Switch) -> Option<u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKalive\r\n\
         From: <sip:probe@{me}>;tag=p\r\nTo: <sip:100@{sip}>\r\nCall-ID: alive@test\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sip = switch.sip
    );
    sock.send_to(msg.as_bytes(), switch.sip).unwrap();
    reply_status(&sock, Duration::from_secs(5))
}

fn metric(switch: &Switch, name: &str) -> u64 {
    let mut conn = TcpStream::connect(switch.http).expect("http");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in metrics:\n{text}"))
}

#[test]
fn malformed_corpus_at_a_live_switch() {
    let switch = Switch::start("malformed-live");
    let corpus = corpus();
    assert!(corpus.len() >= 20, "corpus too small");
    let mut wrong = Vec::new();
    for (file, bytes, expected) in &corpus {
        // A fresh socket per message: a late reply cannot be taken for the next one's.
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(bytes, switch.sip).unwrap();
        let wait = if expected == "drop" {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(5)
        };
        let got = reply_status(&sock, wait);
        let ok = match expected.as_str() {
            "drop" => got.is_none(),
            code => got.map(|c| c.to_string()).as_deref() == Some(code),
        };
        if !ok {
            wrong.push(format!("{file}: expected {expected}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), switch.log());
    assert_eq!(
        options(&switch),
        Some(200),
        "switch stopped answering:\n{}",
        switch.log()
    );
    let malformed = metric(&switch, "switchboard_sip_messages_malformed_total");
    assert!(
        malformed >= corpus.len() as u64 - 1,
        "malformed counter {malformed}"
    );
    assert!(metric(&switch, "switchboard_sip_messages_dropped_total") > 0);
}

/// RFC 4475 §3.1.2 (invalid messages) and the valid ones, all at once, then
/// an oversized datagram: the switch survives and still answers.
#[test]
fn torture_messages_at_a_live_switch() {
    let switch = Switch::start("torture-live");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip-torture");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "dat") {
            sock.send_to(&std::fs::read(entry.path()).unwrap(), switch.sip)
                .unwrap();
            sent += 1;
        }
    }
    assert!(sent >= 49);
    let mut big = b"OPTIONS sip:x@y SIP/2.0\r\nX-Pad: ".to_vec();
    big.resize(65_000, b'a');
    sock.send_to(&big, switch.sip).unwrap();
    assert_eq!(
        options(&switch),
        Some(200),
        "switch stopped answering:\n{}",
        switch.log()
    );
}

/// Over TCP a framing error (RFC 4475 §3.1.2.3, negative Content-Length)
/// closes the connection; the switch keeps serving new ones.
#[test]
fn tcp_framing_error_closes_the_connection() {
    let switch = Switch::start("tcp-framing");
    let mut conn = TcpStream::connect(switch.sip).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(
        b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKt1\r\n\
          From: <sip:a@b>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: tcp1\r\nCSeq: 1 OPTIONS\r\n\
          Content-Length: -999\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "connection not closed: {e}; got {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    // A second connection is served normally.
    let mut conn = TcpStream::connect(switch.sip).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(
        b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKt2\r\n\
          From: <sip:a@b>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: tcp2\r\nCSeq: 1 OPTIONS\r\n\
          Content-Length: 0\r\n\r\n",
    )
    .unwrap();
    let n = conn.read(&mut buf).expect("reply");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
}
