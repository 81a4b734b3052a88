//! Agents over HTTP against the real binary (DESIGN §6, §8): create, read,
//! change and delete agents; validation errors name the field; a pause set
//! through the API survives a restart of the switch on the same database.

mod common;

use common::{Switch, api};
use serde_json::json;
use switchboard::sip::registrar::digest::{DigestAlgorithm, ha1};
use switchboard::store::Store;

fn queues(dir: &common::Scratch) {
    dir.write(
        "flows/queues.yaml",
        "queues:\n  support:\n    skills: { support: 1 }\n  sales:\n    skills: { sales: 2 }\n",
    );
}

#[test]
fn agents_are_created_changed_and_deleted() {
    let switch = Switch::start_with("agents-api", &[], queues);

    let (status, body) = api(&switch, "GET", "/api/v1/agents", None);
    assert_eq!((status, body), (200, json!({ "agents": [] })));

    let alice = json!({
        "login": "alice",
        "password": "s3cret",
        "display_name": "Alice A.",
        "extension": "1001",
        "skills": { "support": 3 },
    });
    let (status, body) = api(&switch, "POST", "/api/v1/agents", Some(&alice));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["login"], "alice");
    assert_eq!(body["display_name"], "Alice A.");
    assert_eq!(body["extension"], "1001");
    assert_eq!(body["skills"], json!({ "support": 3 }));
    assert_eq!(body["state"], "offline");
    assert_eq!(body["pause_reason"], json!(null));
    assert_eq!(body["registered"], false);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    // The new agent's credentials work at once: the CLI sees the same row.
    let out = switch.cli(&["agent", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));

    // Errors: each names its field.
    let cases = [
        (alice.clone(), 409, "conflict", "login"),
        (
            json!({ "login": "bob", "password": "x", "extension": "1001" }),
            409,
            "conflict",
            "extension",
        ),
        (
            json!({ "login": "bob", "password": "x", "skills": { "support": 9 } }),
            400,
            "invalid_request",
            "skills.support",
        ),
        (
            json!({ "login": "bob", "password": "x", "skills": { "support": "high" } }),
            400,
            "invalid_request",
            "skills.support",
        ),
        (
            json!({ "login": "bob", "password": "x", "skills": { "Sup port": 1 } }),
            400,
            "invalid_request",
            "skills.Sup port",
        ),
        (
            json!({ "login": "bob" }),
            400,
            "invalid_request",
            "password",
        ),
        (
            json!({ "login": "b o b", "password": "x" }),
            400,
            "invalid_request",
            "login",
        ),
        (
            json!({ "login": "bob", "password": "x", "extension": "12a" }),
            400,
            "invalid_request",
            "extension",
        ),
        (
            json!({ "login": "bob", "password": "x", "color": "red" }),
            400,
            "invalid_request",
            "color",
        ),
    ];
    for (request, want_status, code, field) in cases {
        let (status, body) = api(&switch, "POST", "/api/v1/agents", Some(&request));
        assert_eq!(status, want_status, "{request} -> {body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(body["error"]["message"].is_string());
    }
    let (_, body) = api(&switch, "GET", "/api/v1/agents", None);
    assert_eq!(body["agents"].as_array().unwrap().len(), 1, "{body}");

    let (status, body) = api(&switch, "GET", "/api/v1/agents/alice", None);
    assert_eq!((status, &body["login"]), (200, &json!("alice")));
    let (status, body) = api(&switch, "GET", "/api/v1/agents/nobody", None);
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = api(
        &switch,
        "PATCH",
        "/api/v1/agents/nobody",
        Some(&json!({ "display_name": "x" })),
    );
    assert_eq!(status, 404);

    // Only `available` and `paused` can be set.
    for state in ["on_call", "offline", "wrap_up", "busy"] {
        let (status, body) = api(
            &switch,
            "PATCH",
            "/api/v1/agents/alice",
            Some(&json!({ "state": state })),
        );
        assert_eq!(status, 422, "{state}: {body}");
        assert_eq!(body["error"]["field"], "state");
    }
    let (status, body) = api(
        &switch,
        "PATCH",
        "/api/v1/agents/alice",
        Some(&json!({ "skills": { "support": 0 } })),
    );
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("skills.support"))
    );

    // Profile, skills and a pause at once; a null extension clears it.
    let (status, body) = api(
        &switch,
        "PATCH",
        "/api/v1/agents/alice",
        Some(&json!({
            "display_name": "Alice B.",
            "extension": null,
            "skills": { "support": 5, "sales": 2 },
            "state": "paused",
            "reason": "lunch",
        })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["display_name"], "Alice B.");
    assert_eq!(body["extension"], json!(null));
    assert_eq!(body["skills"], json!({ "sales": 2, "support": 5 }));
    // Not registered: offline, and paused when she comes back.
    assert_eq!(body["state"], "offline");
    assert_eq!(body["pause_reason"], "lunch");

    // The password is re-hashed: the old one no longer matches.
    let (status, _) = api(
        &switch,
        "PATCH",
        "/api/v1/agents/alice",
        Some(&json!({ "password": "n3w", "state": "available" })),
    );
    assert_eq!(status, 200);
    let (_, body) = api(&switch, "GET", "/api/v1/agents/alice", None);
    assert_eq!(body["pause_reason"], json!(null), "{body}");
    let account = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::connect(&common::db_url(&switch.dir)).await.unwrap();
        store.agents().credentials("alice").await.unwrap().unwrap()
    });
    assert_eq!(
        account.ha1(DigestAlgorithm::Md5),
        ha1(DigestAlgorithm::Md5, "alice", "127.0.0.1", "n3w")
    );

    // The extension is free again for another agent.
    let (status, body) = api(
        &switch,
        "POST",
        "/api/v1/agents",
        Some(&json!({ "login": "bob", "password": "x", "extension": "1001" })),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["skills"], json!({}));

    let (status, body) = api(&switch, "DELETE", "/api/v1/agents/alice", None);
    assert_eq!((status, body), (204, json!(null)));
    let (status, _) = api(&switch, "GET", "/api/v1/agents/alice", None);
    assert_eq!(status, 404);
    let (status, _) = api(&switch, "DELETE", "/api/v1/agents/alice", None);
    assert_eq!(status, 404);
    let (_, body) = api(&switch, "GET", "/api/v1/agents", None);
    let logins: Vec<&str> = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["bob"]);

    // The API wants the token.
    let (status, _) = common::http(&switch, "GET", "/api/v1/agents", None);
    assert_eq!(status, 401);
}

#[test]
fn a_pause_survives_a_restart() {
    let mut switch = Switch::start_with("agents-restart", &[], queues);
    let (status, body) = api(
        &switch,
        "POST",
        "/api/v1/agents",
        Some(&json!({ "login": "carol", "password": "pw", "skills": { "support": 1 } })),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        &switch,
        "PATCH",
        "/api/v1/agents/carol",
        Some(&json!({ "state": "paused", "reason": "training" })),
    );
    assert_eq!(status, 200, "{body}");

    switch.restart();
    let (status, body) = api(&switch, "GET", "/api/v1/agents/carol", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pause_reason"], "training", "{body}");
    assert_eq!(body["state"], "offline");
    assert_eq!(body["skills"], json!({ "support": 1 }));

    // Unpaused, she stays unpaused after the next restart.
    let (status, body) = api(
        &switch,
        "PATCH",
        "/api/v1/agents/carol",
        Some(&json!({ "state": "available" })),
    );
    assert_eq!(
        (status, &body["pause_reason"]),
        (200, &json!(null)),
        "{body}"
    );
    switch.restart();
    let (_, body) = api(&switch, "GET", "/api/v1/agents/carol", None);
    assert_eq!(body["pause_reason"], json!(null), "{body}");
    // Registrations do not outlive the process: the store says offline
    // (not the `available` of the last run) until her phone registers.
    let url = common::db_url(&switch.dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored = rt.block_on(async {
            let store = Store::connect(&url).await.unwrap();
            let agent = store.agents().get("carol").await.unwrap().unwrap();
            store.close().await;
            agent.state
        });
        if stored == "offline" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stored state {stored}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// GET the agent until its state is `want` (the routing engine applies
/// changes a moment after the API answers).
fn wait_for_state(switch: &Switch, login: &str, want: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = api(switch, "GET", &format!("/api/v1/agents/{login}"), None);
        assert_eq!(status, 200, "{body}");
        if body["state"] == want {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{login} never became {want}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An agent deleted and created again while her phone stays registered is
/// available at once: the registration did not go away with the row, and
/// the phone will not register again for up to an hour.
#[test]
fn an_agent_created_again_while_registered_is_available_at_once() {
    if !common::have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("agents-readd", &["--digest-algorithms", "MD5"], queues);
    let dave = json!({ "login": "dave", "password": "pw", "skills": { "support": 1 } });
    let (status, body) = api(&switch, "POST", "/api/v1/agents", Some(&dave));
    assert_eq!(status, 201, "{body}");
    let _phone = common::RawAgent::register(&switch, "dave", "pw");
    let body = wait_for_state(&switch, "dave", "available");
    assert_eq!(body["registered"], true, "{body}");

    let (status, body) = api(&switch, "DELETE", "/api/v1/agents/dave", None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = api(&switch, "POST", "/api/v1/agents", Some(&dave));
    assert_eq!(status, 201, "{body}");
    let body = wait_for_state(&switch, "dave", "available");
    assert_eq!(body["registered"], true, "{body}");
}
