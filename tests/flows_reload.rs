//! Hot reload of a running switch's flow folder (DESIGN §5, last
//! paragraph) and the flows API (DESIGN §8): a broken change is refused and
//! the running version keeps answering; a new flow file is picked up by the
//! watcher without any API call.

mod common;

use std::time::{Duration, Instant};

use common::{Switch, http, invite_status};
use serde_json::Value;

const TOKEN: Option<&str> = Some("test-token");

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn reload_refuses_broken_flows_and_watcher_picks_up_new_ones() {
    let switch = Switch::start("flows-reload");

    // (d) The API wants the token.
    for (method, path) in [("GET", "/api/v1/flows"), ("POST", "/api/v1/flows/reload")] {
        let (status, body) = http(&switch, method, path, None);
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(json(&body)["error"]["code"], "unauthorized");
        let (status, _) = http(&switch, method, path, Some("wrong"));
        assert_eq!(status, 401);
    }
    let (status, body) = http(&switch, "GET", "/api/v1/flows", TOKEN);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["version"], 1);
    assert_eq!(invite_status(&switch, "100"), 200);
    assert_eq!(invite_status(&switch, "555"), 404);

    // (a) A broken change: 422 with the diagnostic; number 100 still answers.
    switch.dir.write(
        "flows/broken.yaml",
        "name: broken\nnumbers: [\"310\"]\nstart: bye\nnodes:\n  bye: { play: x.wav, next: nowhere }\n",
    );
    let (status, body) = http(&switch, "POST", "/api/v1/flows/reload", TOKEN);
    assert_eq!(status, 422, "{body}");
    let body = json(&body);
    assert_eq!(body["error"]["code"], "invalid_flows");
    let details = body["error"]["details"].as_array().expect("details");
    let unknown = details
        .iter()
        .find(|d| d["message"].as_str().is_some_and(|m| m.contains("nowhere")))
        .unwrap_or_else(|| panic!("no unknown-node diagnostic: {body}"));
    assert!(unknown["file"].as_str().unwrap().ends_with("broken.yaml"));
    assert_eq!(unknown["line"], 5);
    assert_eq!(unknown["severity"], "error");
    assert_eq!(invite_status(&switch, "100"), 200);
    assert_eq!(invite_status(&switch, "310"), 404);
    // Every diagnostic is logged as FILE:LINE:COL: message.
    switch.wait_log("broken.yaml:5:");

    // (b) Remove the broken file and add number 555: the watcher reloads.
    std::fs::remove_file(switch.dir.path().join("flows/broken.yaml")).expect("remove");
    switch.dir.write(
        "flows/new.yaml",
        "name: new\nnumbers: [\"555\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let code = invite_status(&switch, "555");
        if code == 200 {
            break;
        }
        assert_eq!(code, 404);
        assert!(
            Instant::now() < deadline,
            "555 not served after 5 s\n{}",
            switch.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(invite_status(&switch, "100"), 200);

    switch.wait_log("flows reloaded");

    // (c) The API lists it.
    let (status, body) = http(&switch, "GET", "/api/v1/flows", TOKEN);
    assert_eq!(status, 200, "{body}");
    let body = json(&body);
    assert!(body["version"].as_u64().unwrap() >= 2, "{body}");
    let new = body["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "new")
        .unwrap_or_else(|| panic!("new flow not listed: {body}"));
    assert_eq!(new["numbers"], serde_json::json!(["555"]));
    assert_eq!(new["nodes"], 1);
    assert_eq!(new["public"], true);
    assert!(new["file"].as_str().unwrap().ends_with("new.yaml"));
}
