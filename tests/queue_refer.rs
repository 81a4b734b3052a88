//! Blind transfer by an agent with REFER (RFC 3515; DESIGN §3, §6): a
//! caller bridged to agent A through a queue; A's phone (SIPp) sends REFER
//! in the dialog. The switch answers 202, reports the transfer in NOTIFYs
//! (Event: refer, message/sipfrag "SIP/2.0 100 Trying" then "SIP/2.0 200
//! OK"), ends A's leg with BYE and moves the caller: rung through to the
//! named agent, or back into the named queue where the next agent answers.

mod common;

use common::{RawCaller, Switch, assert_sipp_ok, have_peer};

/// Alice serves `support` (best skill); bob has no support skill but
/// serves `sales`; carol serves no queue (reached by transfer only).
/// Number 500 enters `support`.
fn prepare(dir: &common::Scratch) {
    common::add_agent(dir, "alice", "s3cret", &["--skills", "support=5"]);
    common::add_agent(dir, "carol", "s3cret", &["--extension", "1003"]);
    common::add_agent(
        dir,
        "bob",
        "s3cret",
        &["--skills", "sales=3", "--extension", "1002"],
    );
    dir.write(
        "flows/queues.yaml",
        "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 5s\n    music: tone.wav\n  sales:\n    skills: { sales: 1 }\n    ring_timeout: 5s\n    music: tone.wav\n",
    );
    dir.write(
        "flows/queue.yaml",
        "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
    );
}

/// An agent's phone (SIPp) that answers one call and runs `scenario` in
/// it, REFERring the caller to `target`.
fn refers(switch: &Switch, login: &str, scenario: &str, target: &str) -> std::process::Child {
    common::agent_phone_with(
        switch,
        login,
        "s3cret",
        &["-sf", scenario, "-set", "target", target],
    )
}

/// Alice's phone refers the caller to bob; bob's refers it on to carol
/// and expects that transfer to fail (final NOTIFY with an error).
fn alice_then_bob_whose_refer_fails(switch: &Switch) -> (std::process::Child, std::process::Child) {
    let alice = refers(switch, "alice", &common::scenario("agent_refer.xml"), "bob");
    let bob = refers(
        switch,
        "bob",
        &common::scenario("agent_refer_fails.xml"),
        "carol",
    );
    (alice, bob)
}

fn start(name: &str) -> Switch {
    Switch::start_with(name, &["--digest-algorithms", "MD5"], prepare)
}

/// Like [`start`], with only `support` and a 2 s ring timeout (targets
/// that never answer are given up quickly).
fn start_short_ring(name: &str) -> Switch {
    Switch::start_with(name, &["--digest-algorithms", "MD5"], |dir| {
        prepare(dir);
        dir.write(
            "flows/queues.yaml",
            "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 2s\n    music: tone.wav\n",
        );
    })
}

/// The caller stays with its agent: 300 ms on, the switch has not logged
/// `ended` (the agent's leg ending).
fn assert_agent_keeps_the_caller(switch: &Switch, ended: &str) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!switch.log().contains(ended), "{}", switch.log());
}

/// RFC 3515 §2.4.2-2.4.5: REFER to an agent login. A gets 202, NOTIFY 100
/// and NOTIFY 200 (its scenario checks the sipfrag bodies), then BYE; bob
/// is rung and bridged to the caller.
#[test]
fn refer_to_an_agent_login_moves_the_caller_to_that_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-agent");
    let refer = common::scenario("agent_refer.xml");
    let alice = refers(&switch, "alice", &refer, "bob");
    let bob = common::agent_phone(&switch, "bob", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-agent");
    switch.wait_log("bridged the caller to the queue agent agent=alice");
    switch.wait_log("agent transfers the caller with REFER");
    switch.wait_log("bridged to the transfer target");
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER: 202, NOTIFY 100/200, BYE");
    assert!(
        switch
            .log()
            .contains("agent transfers the caller agent=bob"),
        "{}",
        switch.log()
    );

    // The caller hangs up: bob's leg ends with BYE.
    caller.bye();
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(&out, &switch, "bob answering the transferred caller");
}

/// A transfer's target transfers again (RFC 3515 from the agent the first
/// REFER reached): alice refers the caller to bob, bob refers it to
/// carol. Each transferring agent gets 202, NOTIFY 100/200 and BYE, and
/// the caller ends up with carol.
#[test]
fn a_transferred_caller_can_be_transferred_again() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-chain");
    let refer = common::scenario("agent_refer.xml");
    let alice = refers(&switch, "alice", &refer, "bob");
    let bob = refers(&switch, "bob", &refer, "carol");
    let carol = common::agent_phone(&switch, "carol", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-chain");
    switch.wait_log("agent transfers the caller agent=bob");
    switch.wait_log("transfer target transfers the caller on agent=carol");
    switch.wait_log("transfer target's REFER carried out");
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER: 202, NOTIFY 100/200, BYE");
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(&out, &switch, "bob's REFER: 202, NOTIFY 100/200, BYE");

    // The caller hangs up: carol's leg ends with BYE.
    caller.bye();
    let out = carol.wait_with_output().expect("sipp carol");
    assert_sipp_ok(
        &out,
        &switch,
        "carol answering the twice-transferred caller",
    );
}

/// RFC 3515 §2.4.5 on a second transfer: bob, reached by alice's REFER,
/// refers the caller to carol, whose phone is not registered. Bob's final
/// NOTIFY reports the failure and he keeps the caller until it hangs up.
#[test]
fn a_second_transfer_that_fails_leaves_the_caller_with_its_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-chain-fails");
    let (alice, bob) = alice_then_bob_whose_refer_fails(&switch);
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-chain-fails");
    switch.wait_log("agent transfers the caller agent=bob");
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER: 202, NOTIFY 100/200, BYE");
    switch.wait_log("REFER target not reachable");
    assert_agent_keeps_the_caller(&switch, "transfer target hung up");
    caller.bye();
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(&out, &switch, "bob's REFER failing with a NOTIFY, then BYE");
}

/// A transfer's target sends the caller into a queue: bob, reached by
/// alice's REFER, refers it to `sales`; his leg ends (202, NOTIFY 100/200,
/// BYE) and the caller waits in `sales`.
#[test]
fn a_transfer_target_can_send_the_caller_to_a_queue() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-chain-queue");
    let refer = common::scenario("agent_refer.xml");
    let alice = refers(&switch, "alice", &refer, "bob");
    let bob = refers(&switch, "bob", &refer, "sales");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-chain-queue");
    switch.wait_log("agent transfers the caller agent=bob");
    switch.wait_log("transfer target moved the caller to a queue queue=sales");
    switch.wait_log("queue=sales priority=0");
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER: 202, NOTIFY 100/200, BYE");
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(
        &out,
        &switch,
        "bob's REFER to a queue: 202, NOTIFY 100/200, BYE",
    );
    caller.bye();
}

/// REFER to a queue name: the caller waits in `sales` again, and bob, who
/// serves it, is offered the call and answers.
#[test]
fn refer_to_a_queue_requeues_the_caller() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-queue");
    let refer = common::scenario("agent_refer.xml");
    let alice = refers(&switch, "alice", &refer, "sales");
    let bob = common::agent_phone(&switch, "bob", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-queue");
    switch.wait_log("bridged the caller to the queue agent agent=alice");
    switch.wait_log("agent moved the caller to a queue queue=sales");
    switch.wait_log("bridged the caller to the queue agent agent=bob");
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER: 202, NOTIFY 100/200, BYE");

    caller.bye();
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(&out, &switch, "bob answering the requeued caller");
}

/// RFC 3515 §2.4.1: a REFER without Refer-To gets 400 and changes nothing:
/// the caller stays with the agent until hanging up, when the agent's leg
/// ends with BYE (the scenario expects 400, then BYE).
#[test]
fn refer_without_refer_to_is_refused_with_400() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-400");
    let refer = common::scenario("agent_refer_no_target.xml");
    let alice = common::agent_phone_with(&switch, "alice", "s3cret", &["-sf", &refer]);
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-400");
    switch.wait_log("bridged the caller to the queue agent agent=alice");
    switch.wait_log("REFER refused");
    assert_agent_keeps_the_caller(&switch, "queue agent hung up");
    caller.bye();
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER refused with 400, then BYE");
}

/// RFC 3515 §2.4.5: a REFER naming a user the switch does not have is
/// accepted (202) and then fails: the final NOTIFY carries "SIP/2.0 404
/// Not Found" and the caller stays with the agent (no BYE until the caller
/// hangs up).
#[test]
fn refer_to_an_unknown_user_fails_and_the_agent_keeps_the_caller() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start("refer-unknown");
    let refer = common::scenario("agent_refer_fails.xml");
    let alice = refers(&switch, "alice", &refer, "nobody");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-unknown");
    switch.wait_log("bridged the caller to the queue agent agent=alice");
    switch.wait_log("REFER names no queue, agent or extension of ours");
    assert_agent_keeps_the_caller(&switch, "queue agent hung up");
    caller.bye();
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER failing with a NOTIFY");
}

/// RFC 3515 §2.4.5: the REFER's target rings but never answers: after the
/// ring timeout the switch CANCELs it, the final NOTIFY reports the
/// failure, and the caller is bridged back to the transferring agent.
#[test]
fn refer_to_an_agent_who_does_not_answer_returns_the_caller() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start_short_ring("refer-noanswer");
    let refer = common::scenario("agent_refer_fails.xml");
    let alice = refers(&switch, "alice", &refer, "1002");
    let no_answer = common::scenario("agent_no_answer.xml");
    let bob = common::agent_phone_with(&switch, "bob", "s3cret", &["-sf", &no_answer]);
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-noanswer");
    switch.wait_log("bridged the caller to the queue agent agent=alice");
    switch.wait_log("agent transfers the caller agent=bob");
    switch.wait_log("transfer failed; the caller is back with the agent");
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(&out, &switch, "bob rang and saw the CANCEL");
    caller.bye();
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER failing, then BYE");
}

/// RFC 3515 §2.4.5 on a second transfer whose target rings out: bob,
/// reached by alice's REFER, refers the caller to carol, who never
/// answers. After the queue's ring timeout the switch CANCELs carol, the
/// caller is bridged back to bob and bob's final NOTIFY reports the
/// failure; bob's leg ends when the caller hangs up.
#[test]
fn a_second_transfer_that_rings_out_returns_the_caller() {
    if !have_peer("sipp") {
        return;
    }
    let switch = start_short_ring("refer-chain-noanswer");
    let (alice, bob) = alice_then_bob_whose_refer_fails(&switch);
    let no_answer = common::scenario("agent_no_answer.xml");
    let carol = common::agent_phone_with(&switch, "carol", "s3cret", &["-sf", &no_answer]);
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "refer-chain-noanswer");
    switch.wait_log("transfer target transfers the caller on agent=carol");
    switch.wait_log("transfer failed; the caller is back with the agent");
    let out = carol.wait_with_output().expect("sipp carol");
    assert_sipp_ok(&out, &switch, "carol rang and saw the CANCEL");
    let out = alice.wait_with_output().expect("sipp alice");
    assert_sipp_ok(&out, &switch, "alice's REFER: 202, NOTIFY 100/200, BYE");
    caller.bye();
    let out = bob.wait_with_output().expect("sipp bob");
    assert_sipp_ok(&out, &switch, "bob's REFER failing, then BYE");
}
