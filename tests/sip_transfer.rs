//! A flow's `transfer` to an agent login (DESIGN §5): the switch places its
//! own call (B2BUA) to the agent's registered phone, bridges the caller to
//! it when it answers, and ends the agent's leg with BYE when the caller
//! hangs up. The agent's phone is SIPp: it registers with digest, then
//! answers.

mod common;

use std::time::Duration;

use common::{RawCaller, Switch, assert_sipp_ok, have_peer};

fn prepare(dir: &common::Scratch) {
    common::add_agent(dir, "alice", "s3cret", &["--extension", "1001"]);
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
    let switch = Switch::start_with("transfer", &["--digest-algorithms", "MD5"], prepare);
    let agent = common::agent_phone(&switch, "alice", "s3cret");
    // The caller dials 400, whose flow transfers to alice.
    let caller = RawCaller::dial(&switch, "400", "+14155550123", "xfer-1");
    switch.wait_log("bridged to the transfer target");
    // The caller hangs up: the switch answers and ends the agent's leg.
    caller.bye();
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

/// DESIGN §5 `transfer` to an agent with two registered devices: both
/// ring at once (parallel forking by the switch's own UAC
/// legs); the one that answers is bridged and the other is cancelled.
#[test]
fn transfer_rings_every_device_of_the_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("transfer-fork", &["--digest-algorithms", "MD5"], prepare);
    let answers = common::scenario("agent_ring_then_answer.xml");
    let cancelled = common::scenario("agent_ring_cancelled.xml");
    let desk =
        common::agent_phone_with(&switch, "alice", "s3cret", &["-sf", &answers, "-d", "1000"]);
    let mobile = common::agent_phone_with(&switch, "alice", "s3cret", &["-sf", &cancelled]);
    std::thread::sleep(Duration::from_millis(500));
    let caller = RawCaller::dial(&switch, "400", "+14155550123", "xfer-fork-1");
    switch.wait_log("bridged to the transfer target");
    // The device that did not answer saw CANCEL (its scenario requires it).
    let out = mobile.wait_with_output().expect("sipp mobile");
    assert_sipp_ok(&out, &switch, "cancelled device");
    caller.bye();
    let out = desk.wait_with_output().expect("sipp desk");
    assert_sipp_ok(&out, &switch, "answering device");
}

/// An agent reached by a flow's `transfer` is on a call for the routing
/// engine too: a caller waiting in a queue the agent serves is offered to
/// it only once the transferred call ended.
#[test]
fn an_agent_on_a_transferred_call_gets_no_queue_offer() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("transfer-busy", &["--digest-algorithms", "MD5"], |dir| {
        common::add_agent(dir, "alice", "s3cret", &["--skills", "support=3"]);
        dir.write(
            "flows/transfer.yaml",
            "name: transfer\nnumbers: [\"400\"]\nstart: xfer\nnodes:\n  xfer: { transfer: alice, timeout: 10s, next: bye }\n  bye: { hangup: {} }\n",
        );
        dir.write(
            "flows/queues.yaml",
            "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 5s\n    wrap_up: 0s\n",
        );
        dir.write(
            "flows/queue.yaml",
            "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
        );
    });
    let agent = common::agent_phone_with(&switch, "alice", "s3cret", &["-sn", "uas", "-m", "2"]);
    let first = RawCaller::dial(&switch, "400", "+14155550123", "busy-1");
    switch.wait_log("bridged to the transfer target");
    let second = RawCaller::dial(&switch, "500", "+14155550124", "busy-2");
    switch.wait_log("caller enqueued");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !switch.log().contains("offering caller"),
        "offered while on the transferred call:\n{}",
        switch.log()
    );
    first.bye();
    switch.wait_log("offering caller");
    switch.wait_log("bridged the caller to the queue agent");
    second.bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone answering both calls");
}
