//! End-to-end SIP tests: the real switch on 127.0.0.1 driven by SIPp and
//! sipsak (DESIGN §3). Each test starts its own switch on port 0.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Switch, assert_sipp_ok, have_peer, scenario, sipp};

/// RFC 3261 §13 (basic call): INVITE → 100/180 → 200 with SDP → ACK → BYE
/// → 200, over UDP, with SIPp's built-in caller.
#[test]
fn basic_call_over_udp() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start("udp-call");
    let out = sipp(
        &switch,
        &[
            "-sn", "uac", "-s", "100", "-m", "5", "-l", "5", "-r", "10", "-d", "200",
        ],
    );
    assert_sipp_ok(&out, &switch, "UDP calls");
}

/// The same over TCP (RFC 3261 §18.3 framing, connection reuse §18.2.2).
#[test]
fn basic_call_over_tcp() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start("tcp-call");
    let out = sipp(
        &switch,
        &[
            "-sn", "uac", "-t", "t1", "-s", "100", "-m", "5", "-l", "5", "-r", "10", "-d", "200",
        ],
    );
    assert_sipp_ok(&out, &switch, "TCP calls");
}

/// RFC 3261 §9.2: CANCEL while ringing gets 200 and the INVITE 487.
#[test]
fn cancel_while_ringing() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start("cancel");
    let sf = scenario("cancel_ringing.xml");
    let out = sipp(&switch, &["-sf", &sf, "-s", "200", "-m", "2", "-l", "1"]);
    assert_sipp_ok(&out, &switch, "CANCEL while ringing");
}

fn add_alice(dir: &common::Scratch) {
    common::add_agent(dir, "alice", "s3cret", &["--name", "Alice"]);
}

/// RFC 3261 §10.3, §22.4: REGISTER is challenged, the right password
/// registers (and unregisters), a wrong one is refused. SIPp only speaks
/// MD5 and answers the first challenge, so this switch offers MD5 alone.
#[test]
fn register_with_digest_md5() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("register", &["--digest-algorithms", "MD5"], add_alice);
    let good = scenario("register_digest.xml");
    let out = sipp(
        &switch,
        &[
            "-sf", &good, "-s", "alice", "-au", "alice", "-ap", "s3cret", "-m", "1",
        ],
    );
    assert_sipp_ok(&out, &switch, "REGISTER with the right password");
    switch.wait_log("agent registered");

    let bad = scenario("register_bad_password.xml");
    let out = sipp(
        &switch,
        &[
            "-sf", &bad, "-s", "alice", "-au", "alice", "-ap", "wrong", "-m", "1",
        ],
    );
    assert_sipp_ok(&out, &switch, "REGISTER with a wrong password");
}

/// RFC 3261 §11.2: OPTIONS is answered 200, checked with sipsak.
#[test]
fn options_with_sipsak() {
    if !have_peer("sipsak") {
        return;
    }
    let switch = Switch::start("options");
    let target = format!("sip:100@{}", switch.sip);
    let out = std::process::Command::new("sipsak")
        .args(["-s", &target, "-H", "127.0.0.1", "-v"])
        .output()
        .expect("run sipsak");
    assert!(
        out.status.success(),
        "sipsak OPTIONS failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        switch.log()
    );
}

/// RFC 3261 §15.1.1 and DESIGN §10: on SIGTERM the switch ends live calls
/// with BYE and exits cleanly.
#[test]
fn shutdown_ends_calls_with_bye() {
    if !have_peer("sipp") {
        return;
    }
    let mut switch = Switch::start("shutdown");
    let sf = scenario("uac_wait_bye.xml");
    let sip = switch.sip.to_string();
    let dir = switch.dir.path().join("sipp");
    std::fs::create_dir_all(&dir).unwrap();
    let child = std::process::Command::new("sipp")
        .current_dir(&dir)
        .arg(&sip)
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
        .args([
            "-p",
            &common::free_port().to_string(),
            "-mp",
            &common::free_port().to_string(),
        ])
        .args(["-cp", &common::free_port().to_string()])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err"])
        .args(["-sf", &sf, "-s", "100", "-m", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sipp");
    // Wait until the call is answered, then stop the switch.
    switch.wait_log("answered");
    let status = switch.terminate();
    let out = child.wait_with_output().expect("sipp output");
    assert_sipp_ok(&out, &switch, "BYE at shutdown");
    assert!(
        status.success(),
        "switch exit status {status}\n{}",
        switch.log()
    );
}

/// An INVITE to a number no flow serves gets 404 (DESIGN §5 `numbers`).
#[test]
fn unknown_number_gets_404() {
    let switch = Switch::start("unknown-number");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:999@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKnf1;rport\r\n\
         From: <sip:caller@{me}>;tag=a1\r\nTo: <sip:999@{sip}>\r\nCall-ID: nf-1@test\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sip = switch.sip
    );
    sock.send_to(invite.as_bytes(), switch.sip).unwrap();
    let mut codes = Vec::new();
    let mut buf = [0u8; 4096];
    while !codes.iter().any(|c: &u16| *c >= 200) {
        let (n, _) = sock.recv_from(&mut buf).expect("response");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let code: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        codes.push(code);
    }
    assert_eq!(codes.last(), Some(&404), "{codes:?}");
}

/// RFC 8760 §2.4 end to end: by default the 401 offers SHA-256 first and
/// MD5 second; a phone answering with SHA-256 registers, a wrong password
/// does not, and a replayed nonce count is refused (RFC 7616 §3.4.5).
#[test]
fn register_with_digest_sha256() {
    use switchboard::sip::registrar::digest::DigestAlgorithm;

    let switch = Switch::start_with("register-sha256", &[], add_alice);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let uri = format!("sip:{}", switch.sip);
    let register = |cseq: u32, auth: Option<String>| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsha{cseq};rport\r\n\
             From: <sip:alice@127.0.0.1>;tag=s1\r\nTo: <sip:alice@127.0.0.1>\r\n\
             Call-ID: sha256-reg@test\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:alice@{me}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n"
        );
        sock.send_to(msg.as_bytes(), switch.sip).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("response");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let status = |resp: &str| resp.split_whitespace().nth(1).unwrap().to_owned();
    let first = register(1, None);
    assert_eq!(status(&first), "401", "{first}");
    let challenges: Vec<&str> = first
        .lines()
        .filter(|l| l.starts_with("WWW-Authenticate:"))
        .collect();
    assert_eq!(challenges.len(), 2, "{first}");
    assert!(challenges[0].contains("algorithm=SHA-256"), "{first}");
    assert!(challenges[1].contains("algorithm=MD5"), "{first}");
    let nonce = challenges[0]
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let answer = |password: &str, nc: &str| {
        let sha = DigestAlgorithm::Sha256;
        let ha1 = sha.hex(format!("alice:127.0.0.1:{password}").as_bytes());
        let ha2 = sha.hex(format!("REGISTER:{uri}").as_bytes());
        let response = sha.hex(format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}").as_bytes());
        format!(
            "Digest username=\"alice\", realm=\"127.0.0.1\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=SHA-256, cnonce=\"c0ffee\", qop=auth, nc={nc}"
        )
    };
    let wrong = register(2, Some(answer("wrong", "00000001")));
    assert_eq!(status(&wrong), "401", "{wrong}");
    let ok = register(3, Some(answer("s3cret", "00000002")));
    assert_eq!(status(&ok), "200", "{ok}\n{}", switch.log());
    assert!(ok.contains("expires="), "{ok}");
    let replay = register(4, Some(answer("s3cret", "00000002")));
    assert_eq!(
        status(&replay),
        "401",
        "replayed nc must be refused: {replay}"
    );
}

/// DESIGN §3 and RFC 3261 §22.3: a non-public number challenges callers
/// with 407; an agent's credentials get the call through.
#[test]
fn private_number_needs_proxy_auth() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("private", &["--digest-algorithms", "MD5"], add_alice);
    let sf = scenario("uac_digest.xml");
    let out = sipp(
        &switch,
        &[
            "-sf", &sf, "-s", "300", "-au", "alice", "-ap", "s3cret", "-m", "1",
        ],
    );
    assert_sipp_ok(&out, &switch, "authenticated call");
    // Without credentials the plain caller never gets past the 407.
    let out = sipp(&switch, &["-sn", "uac", "-s", "300", "-m", "1"]);
    assert!(
        !out.status.success(),
        "an unauthenticated call to 300 was answered"
    );
}

/// DESIGN §3: calls from `--trusted-peers` need no authentication.
#[test]
fn trusted_peer_calls_private_number() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("trusted", &["--trusted-peers", "127.0.0.0/8"], |_| {});
    let out = sipp(
        &switch,
        &["-sn", "uac", "-s", "300", "-m", "2", "-d", "100"],
    );
    assert_sipp_ok(&out, &switch, "trusted peer call");
}
