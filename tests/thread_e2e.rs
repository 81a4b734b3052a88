//! The unified customer thread end to end (DESIGN §7, §8): an SMS opens the
//! caller's thread; a call from the same number reaches a queue, the agent
//! is offered it with a screen pop (the `call.offered` event on
//! `GET /api/v1/events` with the contact and the SMS; `Call-Info` and
//! `X-Switchboard-Thread` on the agent's INVITE, checked by SIPp), and the
//! thread then holds the SMS and the call in time order. A second call
//! from the number joins the same thread and goes to the same agent first,
//! although another agent with a better skill is free.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{RawCaller, Switch, assert_sipp_ok, have_peer};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

const TOKEN: &str = "test-token";
const CALLER: &str = "+14155550123";
const LINE: &str = "+14155550111";

fn prepare(dir: &common::Scratch) {
    // best-skill would pick bob; the thread's agent is alice.
    common::add_agent(dir, "alice", "s3cret", &["--skills", "support=2"]);
    common::add_agent(dir, "bob", "s3cret", &["--skills", "support=5"]);
    dir.write(
        "flows/queues.yaml",
        "queues:\n  support:\n    skills: { support: 1 }\n    strategy: best-skill\n    ring_timeout: 8s\n    prefer_last_agent: 30s\n",
    );
    dir.write(
        "flows/support.yaml",
        &format!(
            "name: support-line\nnumbers: [\"{LINE}\"]\nstart: greet\nnodes:\n  greet: {{ play: tone.wav, next: q }}\n  q: {{ queue: support, next: bye }}\n  bye: {{ hangup: {{}} }}\n"
        ),
    );
}

/// Everything the events WebSocket delivered so far.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Value>>>);

impl Received {
    /// Waits (bounded) for an event of `kind` that `pick` accepts.
    fn wait(&self, kind: &str, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|e| e["type"] == kind && pick(&e["data"]))
                .cloned();
            if let Some(event) = found {
                return event["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event ({what}); got: {:#?}",
                self.0.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn all(&self, kind: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["data"].clone())
            .collect()
    }
}

/// Opens `GET /api/v1/events` (token as a query parameter, as a browser
/// would) and collects its frames on the runtime.
fn subscribe(rt: &tokio::runtime::Runtime, switch: &Switch, types: &str) -> Received {
    let url = format!(
        "ws://{}/api/v1/events?token={TOKEN}&types={types}",
        switch.http
    );
    let (mut ws, _) = rt
        .block_on(tokio_tungstenite::connect_async(url))
        .expect("events WebSocket");
    let received = Received::default();
    let sink = received.clone();
    rt.spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                let value: Value = serde_json::from_str(&text).expect("event JSON");
                sink.0.lock().unwrap().push(value);
            }
        }
    });
    received
}

fn get_json(switch: &Switch, path: &str) -> Value {
    let (status, body) = common::http(switch, "GET", path, Some(TOKEN));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Answers SIPp screen-pop agent: checks the INVITE's headers and logs
/// them to `log`.
fn screen_pop_phone(switch: &Switch, login: &str, log: &std::path::Path) -> std::process::Child {
    let scenario = common::scenario("agent_screen_pop.xml");
    let log = log.display().to_string();
    common::agent_phone_with(
        switch,
        login,
        "s3cret",
        &[
            "-sf",
            &scenario,
            "-m",
            "1",
            "-trace_logs",
            "-log_file",
            &log,
        ],
    )
}

/// The `url=… thread=…` line the SIPp phone logged from the INVITE.
fn logged_screen_pop(log: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains("screen-pop"))
        .unwrap_or_else(|| panic!("the phone logged no screen pop:\n{text}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    (field("url="), field("thread="))
}

/// Places a call from CALLER, waits until an agent is bridged, talks a
/// little and hangs up; the agent's SIPp must have passed.
fn talk(switch: &Switch, call_id: &str, bridged_before: usize, phone: std::process::Child) {
    let caller = RawCaller::dial(switch, LINE, CALLER, call_id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while switch
        .log()
        .matches("bridged the caller to the queue agent")
        .count()
        <= bridged_before
    {
        assert!(
            Instant::now() < deadline,
            "never bridged:\n{}",
            switch.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1200));
    caller.bye();
    let out = phone.wait_with_output().expect("agent phone");
    assert_sipp_ok(&out, switch, "agent phone with screen pop");
}

#[test]
fn a_call_pops_the_sms_thread_and_returns_to_its_agent() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("thread-e2e", &["--digest-algorithms", "MD5"], prepare);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let events = subscribe(&rt, &switch, "call.,thread.");

    // 1. The SMS opens the thread.
    let (status, body) = rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/api/v1/messages", switch.http))
            .bearer_auth(TOKEN)
            .json(&json!({
                "channel": "sms", "direction": "inbound", "from": CALLER,
                "to": LINE, "body": "My order #4521 is late", "external_id": "SM-e2e-1",
            }))
            .send()
            .await
            .expect("POST /messages");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    });
    assert_eq!(status, 201, "{body}");
    let sms: Value = serde_json::from_str(&body).unwrap();
    let thread_id = sms["thread"]["id"].as_str().unwrap().to_owned();
    let contact_id = sms["contact"]["id"].as_str().unwrap().to_owned();
    events.wait("thread.event", "the SMS", |d| {
        d["thread_id"] == thread_id.as_str() && d["channel"] == "sms" && d["kind"] == "message"
    });

    // 2. The call: alice is the only agent registered.
    let pop_log_1 = switch.dir.path().join("alice-1.log");
    let alice = screen_pop_phone(&switch, "alice", &pop_log_1);
    talk(&switch, "e2e-call-1", 0, alice);

    let started = events.wait("call.started", "call 1", |d| d["call_id"] == "e2e-call-1");
    assert_eq!(started["contact_id"], contact_id.as_str(), "{started}");
    assert_eq!(started["thread_id"], thread_id.as_str(), "{started}");
    let call_1 = started["id"].as_str().unwrap().to_owned();
    let offered = events.wait("call.offered", "alice, call 1", |d| {
        d["call_id"] == "e2e-call-1"
    });
    assert_eq!(offered["agent"], "alice", "{offered}");
    assert_eq!(offered["queue"], "support");
    assert_eq!(offered["caller"], CALLER);
    assert_eq!(offered["contact"]["id"], contact_id.as_str(), "{offered}");
    assert_eq!(offered["contact"]["vip"], false);
    assert_eq!(offered["thread"]["id"], thread_id.as_str());
    assert_eq!(offered["thread"]["status"], "open");
    let last = offered["last_events"].as_array().expect("last events");
    assert!(last.len() <= 5, "{offered}");
    assert!(
        last.iter()
            .any(|e| e["channel"] == "sms" && e["body"] == "My order #4521 is late"),
        "the SMS is among the last events: {offered}"
    );
    assert!(offered["reason"].as_str().is_some_and(|r| !r.is_empty()));

    // The agent's INVITE carried the screen pop.
    let (url, thread) = logged_screen_pop(&pop_log_1);
    assert_eq!(
        url,
        format!("http://{}/api/v1/threads/{thread_id}", switch.http)
    );
    assert_eq!(thread, thread_id);

    let answered = events.wait("call.answered", "call 1", |d| d["id"] == call_1.as_str());
    assert_eq!(answered["agent"], "alice");
    let ended = events.wait("call.ended", "call 1", |d| d["id"] == call_1.as_str());
    assert_eq!(ended["disposition"], "answered", "{ended}");
    assert!(ended["duration_ms"].as_i64().unwrap() >= 1000, "{ended}");
    assert!(
        events
            .all("thread.event")
            .iter()
            .any(|d| d["thread_id"] == thread_id.as_str() && d["channel"] == "voice"),
        "the call's steps are announced as thread events"
    );

    // The thread: the SMS, then the call with its IVR path, queue, agent
    // and duration, in time order.
    let deadline = Instant::now() + Duration::from_secs(10);
    let thread = loop {
        let thread = get_json(&switch, &format!("/api/v1/threads/{thread_id}"));
        let has_end = thread["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["metadata"]["call"] == call_1.as_str() && e["metadata"]["event"] == "ended"
            })
        });
        if has_end {
            break thread;
        }
        assert!(
            Instant::now() < deadline,
            "call not in the thread: {thread}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let evs = thread["events"].as_array().unwrap();
    assert_eq!(evs[0]["channel"], "sms", "{thread}");
    assert_eq!(evs[0]["body"], "My order #4521 is late");
    let times: Vec<&str> = evs
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time order: {times:?}"
    );
    let step = |name: &str| {
        evs.iter()
            .find(|e| e["metadata"]["call"] == call_1.as_str() && e["metadata"]["event"] == name)
            .unwrap_or_else(|| panic!("no {name} step: {thread}"))
    };
    assert_eq!(step("queued")["metadata"]["queue"], "support");
    assert_eq!(step("answered")["metadata"]["agent"], "alice");
    let end = &step("ended")["metadata"];
    assert_eq!(end["agent"], "alice");
    assert_eq!(end["queue"], "support");
    assert_eq!(end["disposition"], "answered");
    assert!(end["duration_ms"].as_i64().unwrap() >= 1000, "{end}");
    let path: Vec<&str> = end["ivr_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["node"].as_str())
        .collect();
    assert_eq!(path, ["greet", "q"], "{end}");
    assert_eq!(thread["last_agent"], "alice");

    // 3. A second call while the thread is open: bob (best skill) is free
    // too, but alice, the thread's agent, is offered the call first.
    let bob = common::agent_phone_with(&switch, "bob", "s3cret", &["-sn", "uas", "-m", "1"]);
    let bob = common::ChildGuard::new("bob's phone", bob);
    let pop_log_2 = switch.dir.path().join("alice-2.log");
    let alice = screen_pop_phone(&switch, "alice", &pop_log_2);
    talk(&switch, "e2e-call-2", 1, alice);

    let started = events.wait("call.started", "call 2", |d| d["call_id"] == "e2e-call-2");
    assert_eq!(started["thread_id"], thread_id.as_str(), "{started}");
    let call_2 = started["id"].as_str().unwrap().to_owned();
    let offers: Vec<Value> = events
        .all("call.offered")
        .into_iter()
        .filter(|d| d["call_id"] == "e2e-call-2")
        .collect();
    assert_eq!(offers.len(), 1, "one offer, to alice: {offers:#?}");
    assert_eq!(offers[0]["agent"], "alice");
    assert_eq!(offers[0]["reason"], "last agent alice");
    assert_eq!(offers[0]["thread"]["id"], thread_id.as_str());
    let ended = events.wait("call.ended", "call 2", |d| d["id"] == call_2.as_str());
    assert_eq!(ended["agent"], "alice", "{ended}");
    assert_eq!(ended["thread_id"], thread_id.as_str());
    let (_, thread) = logged_screen_pop(&pop_log_2);
    assert_eq!(thread, thread_id);
    drop(bob);

    // Still one thread, now holding both calls.
    let threads = get_json(&switch, &format!("/api/v1/contacts/{contact_id}/threads"));
    assert_eq!(
        threads["threads"].as_array().map(Vec::len),
        Some(1),
        "{threads}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let thread = get_json(&switch, &format!("/api/v1/threads/{thread_id}"));
        let calls: std::collections::BTreeSet<String> = thread["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["metadata"]["event"] == "ended")
            .filter_map(|e| e["metadata"]["call"].as_str().map(str::to_owned))
            .collect();
        if calls.contains(&call_2) {
            assert!(calls.contains(&call_1), "{thread}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "call 2 not in the thread: {thread}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// DESIGN §10: at SIGTERM the events WebSocket is closed cleanly (Close
/// 1001 Going Away, RFC 6455 §7.4.1) and does not hold the switch up.
#[test]
fn the_event_stream_closes_cleanly_at_shutdown() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let mut switch = Switch::start("events-shutdown");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = format!("ws://{}/api/v1/events?token={TOKEN}", switch.http);
    let (mut ws, _) = rt
        .block_on(tokio_tungstenite::connect_async(url))
        .expect("events WebSocket");
    switch.wait_log("event stream opened");
    let started = Instant::now();
    let status = switch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the open stream held the shutdown up: {:?}",
        started.elapsed()
    );
    let close = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    other => panic!("no close frame: {other:?}"),
                }
            }
        })
        .await
        .expect("close frame in time")
    });
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
}

/// A flow's `transfer` to an agent pops the screen too: `call.offered`
/// names the agent, no queue, and the reason `transfer to alice`.
#[test]
fn a_transfer_to_an_agent_is_offered_on_the_event_stream() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("e2e-transfer", &["--digest-algorithms", "MD5"], |dir| {
        common::add_agent(dir, "alice", "s3cret", &[]);
        dir.write(
            "flows/transfer.yaml",
            "name: transfer\nnumbers: [\"400\"]\nstart: xfer\nnodes:\n  xfer: { transfer: alice, timeout: 10s, next: bye }\n  bye: { hangup: {} }\n",
        );
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = subscribe(&rt, &switch, "call.");
    let phone = common::agent_phone(&switch, "alice", "s3cret");
    let caller = RawCaller::dial(&switch, "400", CALLER, "e2e-xfer-1");
    let offered = events.wait("call.offered", "transfer to alice", |d| {
        d["call_id"] == "e2e-xfer-1"
    });
    assert_eq!(offered["agent"], "alice", "{offered}");
    assert_eq!(offered["queue"], Value::Null, "{offered}");
    assert_eq!(offered["reason"], "transfer to alice", "{offered}");
    assert!(
        offered["caller"].as_str().unwrap().contains("4155550123"),
        "{offered}"
    );
    switch.wait_log("bridged to the transfer target");
    caller.bye();
    let out = phone.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone answering");
}
