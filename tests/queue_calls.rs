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

/// The `support` queue's entry of `GET /api/v1/queues` once `ready` holds
/// (polled, bounded).
fn queue_when(
    switch: &Switch,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, body) = common::api(switch, "GET", "/api/v1/queues", None);
        assert_eq!(status, 200, "{body}");
        let support = body["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["name"] == "support"))
            .cloned()
            .unwrap_or_else(|| panic!("no support queue: {body}"));
        if ready(&support) {
            return support;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {what}: {support}\n{}",
            switch.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// DESIGN §6, §8: `GET /api/v1/queues` shows the live figures (agents by
/// state, a caller waiting while the only agent talks), `/metrics` has
/// them labelled by queue, and each caller's time in the queue is stored
/// and shown in its CDR.
#[test]
fn queue_figures_follow_the_calls() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-stats", &["--digest-algorithms", "MD5"], prepare);
    let q = queue_when(&switch, "listed", |_| true);
    assert_eq!(q["waiting"], 0);
    assert_eq!(q["agents"]["staffed"], 0);
    assert_eq!(q["service_level"], serde_json::Value::Null);

    let agent = common::agent_phone(&switch, "alice", "s3cret");
    queue_when(&switch, "alice available", |q| {
        q["agents"]["available"] == 1 && q["agents"]["staffed"] == 1
    });
    // A pause set through the API counts at once; so does its end.
    let (status, body) = common::api(
        &switch,
        "PATCH",
        "/api/v1/agents/alice",
        Some(&serde_json::json!({ "state": "paused", "reason": "coaching" })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["state"], &body["pause_reason"], &body["registered"]),
        (&"paused".into(), &"coaching".into(), &true.into())
    );
    let q = queue_when(&switch, "alice paused", |q| q["agents"]["paused"] == 1);
    assert_eq!(
        (&q["agents"]["available"], &q["agents"]["staffed"]),
        (&0.into(), &1.into())
    );
    let (status, _) = common::api(
        &switch,
        "PATCH",
        "/api/v1/agents/alice",
        Some(&serde_json::json!({ "state": "available" })),
    );
    assert_eq!(status, 200);
    queue_when(&switch, "alice back", |q| q["agents"]["available"] == 1);

    let first = RawCaller::dial(&switch, "500", "+14155550123", "queue-stats-1");
    switch.wait_log("bridged the caller to the queue agent");
    queue_when(&switch, "alice on the call", |q| {
        q["agents"]["on_call"] == 1 && q["answered"] == 1
    });
    let (_, body) = common::api(&switch, "GET", "/api/v1/agents/alice", None);
    assert_eq!(body["state"], "on_call", "{body}");

    // The only agent talks: the second caller waits.
    let second = RawCaller::dial(&switch, "500", "+14155550124", "queue-stats-2");
    let q = queue_when(&switch, "a caller waiting", |q| q["waiting"] == 1);
    assert_eq!(q["offered"], 2);
    assert!(q["longest_wait_s"].as_f64().unwrap() >= 0.0);
    let (status, metrics) = common::http(&switch, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        metrics.contains("switchboard_queue_waiting{queue=\"support\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_queue_agents{queue=\"support\",state=\"on_call\"} 1\n"),
        "{metrics}"
    );

    // The waiting caller hangs up, then the first call ends.
    second.bye();
    queue_when(&switch, "the abandon counted", |q| q["abandoned"] == 1);
    first.bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone answering");
    let q = queue_when(&switch, "the call over", |q| {
        q["waiting"] == 0 && q["agents"]["on_call"] == 0
    });
    assert_eq!(
        (&q["answered"], &q["abandoned"], &q["left"]),
        (&1.into(), &1.into(), &0.into())
    );
    // One of two answered within the 20 s service level.
    assert_eq!(q["service_level"], 0.5);
    assert!(q["asa_s"].as_f64().unwrap() < 20.0, "{q}");
    assert!(q["aht_s"].as_f64().unwrap() > 0.0, "{q}");

    // Each call's time in the queue is in its CDR.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let cdrs = loop {
        let (_, body) = common::api(&switch, "GET", "/api/v1/cdrs", None);
        let cdrs = body["cdrs"].as_array().cloned().unwrap_or_default();
        let done = cdrs
            .iter()
            .filter(|c| {
                c["queue_segments"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())
            })
            .count();
        if done == 2 {
            break cdrs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "segments missing: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let segment = |call_id: &str| {
        let cdr = cdrs.iter().find(|c| c["call_id"] == call_id).unwrap();
        cdr["queue_segments"][0].clone()
    };
    let answered = segment("queue-stats-1");
    assert_eq!(answered["queue"], "support");
    assert_eq!(answered["outcome"], "answered");
    assert_eq!(answered["agent"], "alice");
    assert_eq!(answered["offers"][0]["login"], "alice");
    let abandoned = segment("queue-stats-2");
    assert_eq!(abandoned["outcome"], "abandoned");
    assert_eq!(abandoned["agent"], serde_json::Value::Null);
    assert!(abandoned["wait_ms"].as_i64().unwrap() > 0);
}

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

/// The calls in progress, polled until `ready` holds (bounded).
fn calls_when(
    switch: &Switch,
    what: &str,
    ready: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = common::api(switch, "GET", "/api/v1/calls", None);
        assert_eq!(status, 200, "{body}");
        let calls = body["calls"].as_array().cloned().unwrap_or_default();
        assert_eq!(body["count"], calls.len());
        if ready(&calls) {
            return calls;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "calls never {what}: {body}\n{}",
            switch.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// DESIGN §8: `GET /api/v1/calls` lists the calls in progress with where
/// they stand (flow, queue, agent), `GET /api/v1/calls/{id}` shows one by
/// record id or Call-ID, and `POST /api/v1/calls/{id}/hangup` ends it:
/// the caller and the agent both get BYE and the call leaves the list.
#[test]
fn calls_in_progress_are_listed_and_hung_up() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("calls-api", &["--digest-algorithms", "MD5"], prepare);
    let (status, body) = common::api(&switch, "GET", "/api/v1/calls/nope", None);
    assert_eq!((status, &body["error"]["code"]), (404, &"not_found".into()));
    let agent = common::agent_phone(&switch, "alice", "s3cret");
    let caller = RawCaller::dial(&switch, "500", "+14155550123", "calls-api-1");
    let calls = calls_when(&switch, "bridged", |c| {
        c.len() == 1 && c[0]["state"] == "bridged" && c[0]["id"].is_string()
    });
    let call = &calls[0];
    assert_eq!(call["call_id"], "calls-api-1");
    assert_eq!(call["queue"], "support");
    assert_eq!(call["agent"], "alice");
    assert_eq!(call["flow"], "queue");
    assert!(
        call["from"].as_str().unwrap().contains("+14155550123"),
        "{call}"
    );
    // The record id and the Call-ID both name the call.
    let id = call["id"].as_str().unwrap().to_owned();
    for name in [id.as_str(), "calls-api-1"] {
        let (status, one) = common::api(&switch, "GET", &format!("/api/v1/calls/{name}"), None);
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["id"], id.as_str());
    }

    let (status, body) = common::api(&switch, "POST", &format!("/api/v1/calls/{id}/hangup"), None);
    assert_eq!(status, 202, "{body}");
    caller.expect_bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone hung up by the switch");
    calls_when(&switch, "empty", |c| c.is_empty());
    let (status, _) = common::api(&switch, "POST", &format!("/api/v1/calls/{id}/hangup"), None);
    assert_eq!(status, 404);
    switch.wait_log("hung up by the API");
}

/// A call in its flow shows as `ivr` with its flow; the caller's BYE
/// takes it off the list.
#[test]
fn a_call_in_its_flow_is_listed_until_the_caller_hangs_up() {
    let switch = Switch::start("calls-ivr");
    let caller = RawCaller::dial(&switch, "100", "+14155550123", "calls-ivr-1");
    let calls = calls_when(&switch, "in the flow", |c| c.len() == 1);
    assert_eq!(calls[0]["state"], "ivr", "{:?}", calls[0]);
    assert_eq!(calls[0]["call_id"], "calls-ivr-1");
    assert_eq!(calls[0]["queue"], serde_json::Value::Null);
    caller.bye();
    calls_when(&switch, "empty", |c| c.is_empty());
}
