//! A flow's `transfer` to an agent login (DESIGN §5): the switch places its
//! own call (B2BUA) to the agent's registered phone, bridges the caller to
//! it when it answers, and ends the agent's leg with BYE when the caller
//! hangs up. The agent's phone is SIPp: it registers with digest, then
//! answers.

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Switch, assert_sipp_ok, free_port, have_peer, scenario};

fn add_alice(dir: &common::Scratch) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "agent",
            "add",
            "alice",
            "--password",
            "s3cret",
            "--extension",
            "1001",
        ])
        .arg("--database-url")
        .arg(common::db_url(dir))
        .env("SWITCHBOARD_DOMAIN", "127.0.0.1")
        .output()
        .expect("agent add");
    assert!(
        out.status.success(),
        "agent add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.write(
        "flows/transfer.yaml",
        "name: transfer\nnumbers: [\"400\"]\nstart: xfer\nnodes:\n  xfer: { transfer: alice, timeout: 10s, next: bye }\n  bye: { hangup: {} }\n",
    );
}

#[test]
fn transfer_to_a_registered_agent_bridges_and_hangs_up_both() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("transfer", &["--digest-algorithms", "MD5"], add_alice);
    // The agent's phone registers from PORT, then answers on PORT.
    let port = free_port().to_string();
    let out = common::sipp_from(
        &switch,
        &port,
        &[
            "-sf",
            &scenario("agent_register.xml"),
            "-s",
            "alice",
            "-au",
            "alice",
            "-ap",
            "s3cret",
            "-m",
            "1",
        ],
    );
    assert_sipp_ok(&out, &switch, "agent registration");
    let dir = switch.dir.path().join("sipp");
    let agent = Command::new("sipp")
        .current_dir(&dir)
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
        .args(["-timeout", "40s", "-timeout_error", "-trace_err"])
        .args(["-sn", "uas", "-m", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp agent");
    switch.wait_log("agent registered");

    // The caller dials 400, whose flow transfers to alice.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sock.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
        rtp.local_addr().unwrap().port()
    );
    let sw = switch.sip;
    sock.send_to(
        format!(
            "INVITE sip:400@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKx1;rport\r\n\
             From: <sip:+14155550123@{me}>;tag=c1\r\nTo: <sip:400@{sw}>\r\nCall-ID: xfer-1\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
        .as_bytes(),
        sw,
    )
    .unwrap();
    let mut buf = [0u8; 8192];
    let to = loop {
        let (n, _) = sock.recv_from(&mut buf).expect("answer");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with("SIP/2.0 200") {
            break msg
                .lines()
                .find_map(|l| l.strip_prefix("To:").map(str::trim).map(str::to_owned))
                .unwrap();
        }
    };
    sock.send_to(
        format!(
            "ACK sip:400@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKx2\r\nFrom: <sip:+14155550123@{me}>;tag=c1\r\n\
             To: {to}\r\nCall-ID: xfer-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
        sw,
    )
    .unwrap();
    switch.wait_log("bridged to the transfer target");

    // The caller hangs up: the switch answers and ends the agent's leg.
    sock.send_to(
        format!(
            "BYE sip:400@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKx3\r\nFrom: <sip:+14155550123@{me}>;tag=c1\r\n\
             To: {to}\r\nCall-ID: xfer-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
        sw,
    )
    .unwrap();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone answering");

    // DESIGN §4: the bridged call was recorded as a stereo WAV.
    let recordings = switch.dir.path().join("recordings");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let wav = loop {
        let found = std::fs::read_dir(&recordings)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("call-"))
            });
        if let Some(p) = found
            && hound::WavReader::open(&p).is_ok()
        {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no call recording in {}",
            recordings.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let spec = hound::WavReader::open(&wav).unwrap().spec();
    assert_eq!(
        (spec.channels, spec.sample_rate),
        (2, 8000),
        "{}",
        wav.display()
    );
}
