//! A flow's `queue` node with live calls (DESIGN §6): the routing engine
//! offers a waiting caller to a registered agent with the skills, the
//! switch rings the agent's phone (SIPp) and bridges the caller when it
//! answers; the caller's BYE ends the agent's leg. With no agent
//! registered, the caller leaves through the node's `next` at once.

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Switch, assert_sipp_ok, free_port, have_peer, scenario};

fn prepare(dir: &common::Scratch) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["agent", "add", "alice", "--password", "s3cret"])
        .args(["--skills", "support=3"])
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
        "flows/queues.yaml",
        "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 5s\n    music: tone.wav\n",
    );
    dir.write(
        "flows/queue.yaml",
        "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
    );
}

/// A raw SIP caller on UDP: INVITE to 500, answered and ACKed.
struct Caller {
    sock: UdpSocket,
    _rtp: UdpSocket,
    to: String,
    call_id: &'static str,
}

impl Caller {
    fn dial(switch: &Switch, call_id: &'static str) -> Caller {
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
                "INVITE sip:500@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKq1;rport\r\n\
                 From: <sip:+14155550123@{me}>;tag=c1\r\nTo: <sip:500@{sw}>\r\nCall-ID: {call_id}\r\n\
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
                "ACK sip:500@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKq2\r\nFrom: <sip:+14155550123@{me}>;tag=c1\r\n\
                 To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
            sw,
        )
        .unwrap();
        Caller {
            sock,
            _rtp: rtp,
            to,
            call_id,
        }
    }

    fn bye(&self, switch: &Switch) {
        let sw = switch.sip;
        let me = self.sock.local_addr().unwrap();
        let (to, call_id) = (&self.to, self.call_id);
        self.sock
            .send_to(
                format!(
                    "BYE sip:500@{sw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKq3\r\nFrom: <sip:+14155550123@{me}>;tag=c1\r\n\
                     To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
                sw,
            )
            .unwrap();
    }

    /// Waits for a BYE from the switch and answers it.
    fn expect_bye(&self) {
        let mut buf = [0u8; 8192];
        loop {
            let (n, from) = self.sock.recv_from(&mut buf).expect("BYE from the switch");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with("BYE ") {
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
}

#[test]
fn queued_caller_is_bridged_to_the_registered_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue", &["--digest-algorithms", "MD5"], prepare);
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

    let caller = Caller::dial(&switch, "queue-1");
    switch.wait_log("caller enqueued");
    switch.wait_log("offering caller");
    switch.wait_log("bridged the caller to the queue agent");

    // The caller hangs up: the switch ends the agent's leg with BYE.
    caller.bye(&switch);
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone answering");
    switch.wait_log("queue segment");
}

#[test]
fn without_a_registered_agent_the_caller_leaves_through_next() {
    let switch = Switch::start_with("queue-empty", &[], prepare);
    let caller = Caller::dial(&switch, "queue-2");
    switch.wait_log("caller left the queue");
    // `next` is `bye`: the switch hangs up.
    caller.expect_bye();
    let log = switch.log();
    assert!(log.contains("NoAgents"), "{log}");
}
