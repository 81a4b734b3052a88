//! A flow's `queue` node with live calls (DESIGN §6): the routing engine
//! offers a waiting caller to a registered agent with the skills, the
//! switch rings the agent's phone (SIPp) and bridges the caller when it
//! answers; the caller's BYE ends the agent's leg. With no agent
//! registered, the caller leaves through the node's `next` at once.

mod common;

use std::time::Duration;

use common::{RawCaller, Switch, assert_sipp_ok, have_peer, tone_share};

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

/// A queue flow for `queues_yaml`: number 500 enters `support`; when the
/// queue gives up the caller goes to `gaveup` (a prompt, then hang up).
fn queue_flow(dir: &common::Scratch, queues_yaml: &str) {
    dir.write("flows/queues.yaml", queues_yaml);
    dir.write(
        "flows/queue.yaml",
        "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: support, next: gaveup }\n  gaveup: { play: tone.wav, next: bye }\n  bye: { hangup: {} }\n",
    );
}

/// The logins of every "offering caller" log line so far.
fn offered_lines(switch: &Switch) -> Vec<String> {
    switch
        .log()
        .lines()
        .filter(|l| l.contains("offering caller"))
        .map(str::to_owned)
        .collect()
}

/// DESIGN §6 "Missed offer → next agent": the best-skilled agent's phone
/// rings (180) and is never picked up; after the queue's ring_timeout the
/// switch CANCELs it (RFC 3261 §9.1) and the next agent answers and is
/// bridged.
#[test]
fn no_answer_moves_the_caller_to_the_next_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-noanswer", &["--digest-algorithms", "MD5"], |dir| {
        common::add_agent(dir, "slow", "s3cret", &["--skills", "support=5"]);
        common::add_agent(dir, "quick", "s3cret", &["--skills", "support=2"]);
        queue_flow(
            dir,
            "queues:\n  support:\n    skills: { support: 1 }\n    strategy: best-skill\n    ring_timeout: 2s\n    music: tone.wav\n",
        );
    });
    let no_answer = common::scenario("agent_no_answer.xml");
    let slow = common::agent_phone_with(&switch, "slow", "s3cret", &["-sf", &no_answer]);
    let quick = common::agent_phone(&switch, "quick", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-noanswer");
    switch.wait_log("bridged the caller to the queue agent agent=quick");

    // The ringing phone was offered first and saw the CANCEL (its SIPp
    // scenario fails without it).
    let offers = offered_lines(&switch);
    assert!(
        offers.first().is_some_and(|l| l.contains("slow")),
        "{offers:?}"
    );
    let out = slow.wait_with_output().expect("sipp slow agent");
    assert_sipp_ok(&out, &switch, "ringing agent cancelled");
    assert!(switch.log().contains("offer cancelled"), "{}", switch.log());

    caller.bye();
    let out = quick.wait_with_output().expect("sipp quick agent");
    assert_sipp_ok(&out, &switch, "second agent answering");
}

/// DESIGN §6: an agent is offered calls only when reachable (a live
/// registration). The unregistered agent has the better skill, yet every
/// offer goes to the registered one.
#[test]
fn an_unregistered_agent_is_never_offered() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-unreg", &["--digest-algorithms", "MD5"], |dir| {
        common::add_agent(dir, "away", "s3cret", &["--skills", "support=5"]);
        common::add_agent(dir, "here", "s3cret", &["--skills", "support=1"]);
        queue_flow(
            dir,
            "queues:\n  support:\n    skills: { support: 1 }\n    strategy: best-skill\n    ring_timeout: 5s\n    music: tone.wav\n",
        );
    });
    let here = common::agent_phone(&switch, "here", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-unreg");
    switch.wait_log("bridged the caller to the queue agent agent=here");
    let log = switch.log();
    let offers = offered_lines(&switch);
    assert!(
        !offers.is_empty() && offers.iter().all(|l| !l.contains("away")),
        "{offers:?}"
    );
    assert!(!log.contains("offered agent has no registration"), "{log}");
    caller.bye();
    let out = here.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "registered agent answering");
}

/// DESIGN §6: with only unregistered agents able to serve the queue, the
/// caller leaves through the queue node's `next` at once, and none of them
/// is offered.
#[test]
fn with_only_unregistered_agents_the_caller_takes_next() {
    let switch = Switch::start_with("queue-unreg-only", &[], |dir| {
        common::add_agent(dir, "away", "s3cret", &["--skills", "support=5"]);
        common::add_agent(dir, "gone", "s3cret", &["--skills", "support=3"]);
        queue_flow(
            dir,
            "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 5s\n    music: tone.wav\n",
        );
    });
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-unreg-only");
    switch.wait_log("caller left the queue");
    caller.expect_bye();
    switch.wait_log("flow path");
    let log = switch.log();
    assert!(log.contains("NoAgents"), "{log}");
    assert!(offered_lines(&switch).is_empty(), "{log}");
    // The IVR path went through the `next` node.
    let path = log.lines().find(|l| l.contains("flow path")).unwrap();
    assert!(path.contains("gaveup"), "{path}");
}

/// DESIGN §6: a queue whose hours are closed now sends the caller down the
/// node's `next` (the flow's closed branch) with reason Closed, even with
/// an available agent, who is never offered the call.
#[test]
fn closed_hours_send_the_caller_to_the_closed_branch() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-closed", &["--digest-algorithms", "MD5"], |dir| {
        common::add_agent(dir, "alice", "s3cret", &["--skills", "support=3"]);
        // A set with no opening hours in its week is closed at all times.
        dir.write(
            "flows/hours.yaml",
            "hours:\n  never:\n    timezone: UTC\n    week: { mon-sun: [] }\n",
        );
        dir.write(
            "flows/queues.yaml",
            "queues:\n  support:\n    skills: { support: 1 }\n    hours: never\n    music: tone.wav\n",
        );
        dir.write(
            "flows/queue.yaml",
            "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: support, next: closed }\n  closed: { play: tone.wav, next: bye }\n  bye: { hangup: {} }\n",
        );
    });
    let agent = common::agent_phone(&switch, "alice", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-closed");
    switch.wait_log("caller left the queue");
    // The closed prompt plays (1 s), then the flow hangs up.
    caller.expect_bye();
    switch.wait_log("flow path");
    let log = switch.log();
    assert!(log.contains("reason=Closed"), "{log}");
    assert!(offered_lines(&switch).is_empty(), "{log}");
    let path = log.lines().find(|l| l.contains("flow path")).unwrap();
    assert!(path.contains("closed"), "{path}");
    drop(agent);
}

/// DESIGN §4 bridge: once the agent answers, each side hears the other.
/// The caller sends 1000 Hz, the agent 600 Hz; each side's received audio
/// (after the hold music) is dominated by the other's tone.
#[test]
fn bridged_audio_flows_both_ways() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-audio", &["--digest-algorithms", "MD5"], prepare);
    let agent = common::RawAgent::register(&switch, "alice", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "queue-audio");
    let caller_dest = caller.remote_rtp.expect("SDP answer to the caller");
    // The caller talks from the start (the switch latches its address).
    let caller_tone = common::send_tone(&caller.rtp, caller_dest, 1000.0, 5);
    let agent_dest = agent.answer();
    let agent_tone = common::send_tone(&agent.rtp, agent_dest, 600.0, 4);
    switch.wait_log("bridged the caller to the queue agent");
    // Let the bridge settle, then listen on both sides at once.
    std::thread::sleep(Duration::from_millis(500));
    let heard_by_agent = {
        let rtp = agent.rtp.try_clone().unwrap();
        std::thread::spawn(move || common::receive_pcmu(&rtp, Duration::from_millis(1500)))
    };
    let heard_by_caller = common::receive_pcmu(&caller.rtp, Duration::from_millis(1500));
    let heard_by_agent = heard_by_agent.join().unwrap();
    caller_tone.join().unwrap();
    agent_tone.join().unwrap();
    assert!(
        heard_by_caller.len() >= 4000,
        "caller heard {} samples",
        heard_by_caller.len()
    );
    assert!(
        heard_by_agent.len() >= 4000,
        "agent heard {} samples",
        heard_by_agent.len()
    );
    let caller_600 = tone_share(&heard_by_caller, 600.0);
    let caller_1000 = tone_share(&heard_by_caller, 1000.0);
    let agent_1000 = tone_share(&heard_by_agent, 1000.0);
    let agent_600 = tone_share(&heard_by_agent, 600.0);
    eprintln!(
        "caller heard 600 Hz {caller_600:.3} / 1000 Hz {caller_1000:.3}; \
         agent heard 1000 Hz {agent_1000:.3} / 600 Hz {agent_600:.3}"
    );
    assert!(
        caller_600 > 0.5 && caller_1000 < 0.1,
        "caller heard 600 Hz {caller_600:.3}, 1000 Hz {caller_1000:.3}"
    );
    assert!(
        agent_1000 > 0.5 && agent_600 < 0.1,
        "agent heard 1000 Hz {agent_1000:.3}, 600 Hz {agent_600:.3}"
    );
    caller.bye();
}
