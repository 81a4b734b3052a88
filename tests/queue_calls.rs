//! A flow's `queue` node with live calls (DESIGN §6): the routing engine
//! offers a waiting caller to a registered agent with the skills, the
//! switch rings the agent's phone (SIPp) and bridges the caller when it
//! answers; the caller's BYE ends the agent's leg. With no agent
//! registered, the caller leaves through the node's `next` at once.

mod common;

use common::{RawCaller, Switch, assert_sipp_ok, have_peer};

fn prepare(dir: &common::Scratch) {
    common::add_agent(dir, "alice", "s3cret", &["--skills", "support=3"]);
    dir.write(
        "flows/queues.yaml",
        "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 5s\n    music: tone.wav\n",
    );
    dir.write(
        "flows/queue.yaml",
        "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
    );
}

#[test]
fn queued_caller_is_bridged_to_the_registered_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue", &["--digest-algorithms", "MD5"], prepare);
    let agent = common::agent_phone(&switch, "alice", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-1");
    switch.wait_log("caller enqueued");
    switch.wait_log("offering caller");
    switch.wait_log("bridged the caller to the queue agent");

    // The caller hangs up: the switch ends the agent's leg with BYE.
    caller.bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone answering");
    switch.wait_log("queue segment");
}

#[test]
fn without_a_registered_agent_the_caller_leaves_through_next() {
    let switch = Switch::start_with("queue-empty", &[], prepare);
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-2");
    switch.wait_log("caller left the queue");
    // `next` is `bye`: the switch hangs up.
    caller.expect_bye();
    let log = switch.log();
    assert!(log.contains("NoAgents"), "{log}");
}
