//! The HTTP API (DESIGN §8): `GET /healthz` and `GET /metrics` without a
//! token; `/api/v1` behind the admin bearer token. Errors are [`ApiError`].

mod agents;
mod calls;
mod cdrs;
mod contacts;
pub mod error;
pub mod events;
mod flows;
mod ingest;
mod queues;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest as _, Sha256};

pub use error::ApiError;

use crate::config::Config;
use crate::ivr::reload::FlowReloader;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::thread::ingest::twilio::TwilioAuth;

/// What every handler can reach; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub admin: Arc<AdminAuth>,
    /// The running flow set and its reloads.
    pub flows: Arc<FlowReloader>,
    /// Twilio's auth token (`SWITCHBOARD_TWILIO_AUTH_TOKEN`): when set,
    /// the SMS webhook checks `X-Twilio-Signature` instead of the bearer
    /// token.
    pub twilio: Option<Arc<TwilioAuth>>,
    /// The routing engine: agents, queues and their live figures.
    pub acd: crate::acd::driver::AcdHandle,
    /// The live event stream (`GET /api/v1/events`).
    pub events: crate::events::EventBus,
    /// The calls in progress (`GET /api/v1/calls`).
    pub calls: crate::call::ActiveCalls,
}

/// Checks the `/api/v1` bearer token. Only the token's SHA-256 is kept, and
/// it is compared in constant time (DESIGN §10).
#[derive(Clone)]
pub struct AdminAuth {
    sha256: [u8; 32],
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(..)")
    }
}

impl AdminAuth {
    /// From the token itself (configured with `--admin-token`).
    pub fn from_token(token: &str) -> AdminAuth {
        AdminAuth {
            sha256: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// From the stored lower-case hex SHA-256 of the token.
    pub fn from_sha256_hex(hex: &str) -> Option<AdminAuth> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut sha256 = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            sha256[i] = (hi << 4) | lo;
        }
        Some(AdminAuth { sha256 })
    }

    /// Lower-case hex SHA-256 of `token`, the form kept in the store.
    pub fn sha256_hex(token: &str) -> String {
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `presented` is the admin token; constant time in its content.
    pub fn verify(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let diff = digest
            .iter()
            .zip(self.sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }

    /// Whether an `Authorization: Bearer TOKEN` header value carries the
    /// admin token.
    pub fn verify_header(&self, value: &str) -> bool {
        match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.verify(token.trim())
            }
            _ => false,
        }
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The whole HTTP surface; tests call `router(state).oneshot(request)`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/flows", get(flows::list))
        .route("/flows/reload", post(flows::reload))
        .route("/agents", get(agents::list).post(agents::create))
        .route(
            "/agents/{login}",
            get(agents::show)
                .patch(agents::update)
                .delete(agents::remove),
        )
        .route("/queues", get(queues::list))
        .route("/messages", post(ingest::messages))
        .route("/emails", post(ingest::emails))
        .route(ingest::TWILIO_SMS_PATH, post(ingest::twilio_sms))
        .route("/contacts", get(contacts::search))
        .route("/contacts/{id}", get(contacts::show))
        .route("/contacts/{id}/threads", get(contacts::threads))
        .route("/contacts/{id}/merge", post(contacts::merge))
        .route("/threads/{id}", get(contacts::thread))
        .route("/calls", get(calls::list))
        .route("/calls/{id}", get(calls::show))
        .route("/calls/{id}/hangup", post(calls::hang_up))
        .route("/cdrs", get(cdrs::list))
        .route("/recordings/{id}", get(cdrs::recording))
        .route(events::PATH, get(events::stream))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    Metrics::inc(&state.metrics.http_requests_total);
    next.run(request).await
}

/// `/api/v1` needs `Authorization: Bearer TOKEN` with the admin token
/// (RFC 6750 §2.1); anything else is 401 before any handler runs. The
/// events WebSocket also takes the token as `?token=` (browsers cannot set
/// headers on a WebSocket). The other exception is Twilio's webhook when a Twilio auth token is configured: its
/// handler checks the request's signature instead.
async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.twilio.is_some() && request.uri().path().ends_with(ingest::TWILIO_SMS_PATH) {
        return Ok(next.run(request).await);
    }
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| state.admin.verify_header(v))
        || (request.uri().path().ends_with(events::PATH)
            && events::query_token_ok(&state.admin, request.uri()));
    if !authorized {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}

/// Liveness: the process answers HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus text exposition (format version 0.0.4): the process
/// counters and the routing engine's queue figures at scrape time.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.metrics.render();
    body.push_str(&crate::metrics::render_queues(
        &state.acd.queue_stats().await,
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_verification() {
        let auth = AdminAuth::from_token("correct-horse-battery");
        assert!(auth.verify("correct-horse-battery"));
        assert!(!auth.verify("correct-horse-batterx"));
        assert!(!auth.verify(""));
        assert!(auth.verify_header("Bearer correct-horse-battery"));
        assert!(auth.verify_header("bearer correct-horse-battery"));
        assert!(!auth.verify_header("Basic correct-horse-battery"));
        let hex = AdminAuth::sha256_hex("correct-horse-battery");
        let stored = AdminAuth::from_sha256_hex(&hex).unwrap();
        assert!(stored.verify("correct-horse-battery"));
        assert!(AdminAuth::from_sha256_hex("zz").is_none());
    }

    /// A scratch flow folder with one flow on number 100.
    struct Folder(std::path::PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let dir =
                std::env::temp_dir().join(format!("switchboard-api-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("flows")).unwrap();
            std::fs::create_dir_all(dir.join("sounds")).unwrap();
            let folder = Folder(dir);
            folder.write(
                "main.yaml",
                "name: main\nnumbers: [\"100\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n",
            );
            folder
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join("flows").join(name), text).unwrap();
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The router served on 127.0.0.1:0 (tower's `oneshot` is not a
    /// dependency; reqwest is).
    async fn serve(folder: &Folder) -> String {
        serve_with_events(folder).await.0
    }

    /// Like [`serve`], also giving the switch's event bus.
    async fn serve_with_events(folder: &Folder) -> (String, crate::events::EventBus) {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let events = crate::events::EventBus::new();
        (serve_with(folder, events.clone(), store).await, events)
    }

    /// [`serve`] on `store`, publishing on `events`.
    async fn serve_with(folder: &Folder, events: crate::events::EventBus, store: Store) -> String {
        let flows = FlowReloader::load(&folder.0.join("flows"), &folder.0.join("sounds")).unwrap();
        let acd =
            crate::acd::driver::spawn_acd(store.clone(), flows.handle().clone(), events.clone());
        let state = AppState {
            config: Arc::new(Config::loopback("sqlite::memory:")),
            store,
            acd,
            events,
            calls: Default::default(),
            metrics: Arc::new(Metrics::default()),
            admin: Arc::new(AdminAuth::from_token("t0ken")),
            flows: Arc::new(flows),
            twilio: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        format!("http://{addr}")
    }

    async fn send(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// DESIGN §8: `/api/v1` wants the bearer token; the error is JSON.
    #[tokio::test]
    async fn api_needs_the_bearer_token() {
        let folder = Folder::new("auth");
        let base = serve(&folder).await;
        let http = reqwest::Client::new();
        for auth in [None, Some("Bearer wrong"), Some("Basic t0ken")] {
            let mut req = http.get(format!("{base}/api/v1/flows"));
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{auth:?}");
            assert!(resp.headers().contains_key("www-authenticate"));
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(body["error"]["message"].is_string());
        }
        let (status, body) = send(http.post(format!("{base}/api/v1/flows/reload"))).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (401, &"unauthorized".into())
        );
        // Unknown API paths are JSON 404s, but only behind the token.
        let (status, _) = send(http.get(format!("{base}/api/v1/nothing"))).await;
        assert_eq!(status, 401);
        let (status, body) = send(
            http.get(format!("{base}/api/v1/nothing"))
                .bearer_auth("t0ken"),
        )
        .await;
        assert_eq!((status, &body["error"]["code"]), (404, &"not_found".into()));
        // Health stays open.
        let health = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }

    #[tokio::test]
    async fn list_and_reload_flows() {
        let folder = Folder::new("flows");
        let base = serve(&folder).await;
        let http = reqwest::Client::new();
        let (status, body) = send(
            http.get(format!("{base}/api/v1/flows"))
                .bearer_auth("t0ken"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["version"], 1);
        assert!(body["loaded_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(body["flows"][0]["name"], "main");
        assert_eq!(body["flows"][0]["numbers"], serde_json::json!(["100"]));
        assert_eq!(body["flows"][0]["nodes"], 1);
        assert_eq!(body["flows"][0]["public"], true);
        assert!(
            body["flows"][0]["file"]
                .as_str()
                .unwrap()
                .ends_with("main.yaml")
        );

        // An unreachable node is a warning: the reload succeeds with it.
        folder.write(
            "extra.yaml",
            "numbers: [\"555\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n  lost: { hangup: {} }\n",
        );
        let reload = || {
            http.post(format!("{base}/api/v1/flows/reload"))
                .bearer_auth("t0ken")
        };
        let (status, body) = send(reload()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["version"], 2);
        assert_eq!(body["flows"].as_array().unwrap().len(), 2);
        assert_eq!(body["warnings"][0]["severity"], "warning");
        assert_eq!(body["warnings"][0]["line"], 5);

        // An unknown node: 422 with the diagnostic, version 2 kept.
        folder.write(
            "extra.yaml",
            "numbers: [\"555\"]\nstart: bye\nnodes:\n  bye: { play: x.wav, next: nowhere }\n",
        );
        let (status, body) = send(reload()).await;
        assert_eq!(status, 422, "{body}");
        let error = &body["error"];
        assert_eq!(error["code"], "invalid_flows");
        assert!(error["message"].as_str().unwrap().contains("version 2"));
        let details = error["details"].as_array().unwrap();
        let unknown = details
            .iter()
            .find(|d| d["message"].as_str().unwrap().contains("nowhere"))
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(unknown["severity"], "error");
        assert!(unknown["file"].as_str().unwrap().ends_with("extra.yaml"));
        assert_eq!(unknown["line"], 4);
        assert!(unknown["col"].as_u64().unwrap() > 0);
        let (_, body) = send(
            http.get(format!("{base}/api/v1/flows"))
                .bearer_auth("t0ken"),
        )
        .await;
        assert_eq!(body["version"], 2);
    }

    /// DESIGN §8 event stream: the agents API publishes `agent.changed`
    /// with the agent as the API shows it, and `agent.removed`.
    #[tokio::test]
    async fn agent_changes_are_published() {
        let folder = Folder::new("agent-events");
        let events = crate::events::EventBus::new();
        let mut rx = events.subscribe();
        let db = crate::store::testing::TestDb::sqlite().await;
        let base = serve_with(&folder, events, db.store.clone()).await;
        let http = reqwest::Client::new();
        let (status, body) = send(
            http.post(format!("{base}/api/v1/agents"))
                .bearer_auth("t0ken")
                .body(r#"{"login":"dora","password":"pw","skills":{"support":2}}"#),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let (status, _) = send(
            http.patch(format!("{base}/api/v1/agents/dora"))
                .bearer_auth("t0ken")
                .body(r#"{"state":"paused","reason":"break"}"#),
        )
        .await;
        assert_eq!(status, 200);
        let resp = http
            .delete(format!("{base}/api/v1/agents/dora"))
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);

        let mut seen = Vec::new();
        while seen.len() < 3 {
            let p = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .expect("an event")
                .unwrap();
            if p.kind.starts_with("agent.") && &*p.kind != "agent.state" {
                let v: serde_json::Value = serde_json::from_str(&p.json).unwrap();
                seen.push((p.kind.to_string(), v["data"].clone()));
            }
        }
        assert_eq!(seen[0].0, "agent.changed");
        assert_eq!(seen[0].1["login"], "dora");
        assert_eq!(seen[0].1["skills"]["support"], 2);
        assert_eq!(seen[1].0, "agent.changed");
        assert_eq!(seen[1].1["pause_reason"], "break");
        assert_eq!(
            seen[2],
            (
                "agent.removed".to_owned(),
                serde_json::json!({ "login": "dora" })
            )
        );
    }

    mod event_stream {
        use super::*;
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::{self, Message};

        type Ws = tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >;

        fn ws_url(base: &str, query: &str) -> String {
            format!("{}/api/v1/events{query}", base.replacen("http", "ws", 1))
        }

        async fn connect(url: &str, bearer: Option<&str>) -> Result<Ws, tungstenite::Error> {
            use tungstenite::client::IntoClientRequest as _;
            let mut req = url.into_client_request().unwrap();
            if let Some(token) = bearer {
                req.headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            tokio_tungstenite::connect_async(req)
                .await
                .map(|(ws, _)| ws)
        }

        /// The next text frame as JSON (pongs and other frames skipped).
        async fn next_json(ws: &mut Ws) -> serde_json::Value {
            loop {
                let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
                    .await
                    .expect("a frame in time")
                    .expect("stream open")
                    .expect("frame");
                if let Message::Text(text) = msg {
                    return serde_json::from_str(&text).unwrap();
                }
            }
        }

        /// Publishes until the stream has registered its subscriber (the
        /// upgrade finishes on the server a little after the client's).
        async fn until_subscribed(bus: &crate::events::EventBus, n: usize) {
            for _ in 0..200 {
                if bus.subscribers() >= n {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("the event stream never subscribed");
        }

        /// DESIGN §8: the stream is behind the admin token; browsers give
        /// it as `?token=`.
        #[tokio::test]
        async fn needs_the_token_in_a_header_or_the_query() {
            let folder = Folder::new("ws-auth");
            let (base, bus) = serve_with_events(&folder).await;
            for (query, bearer) in [("", None), ("?token=wrong", None), ("", Some("wrong"))] {
                match connect(&ws_url(&base, query), bearer).await {
                    Err(tungstenite::Error::Http(resp)) => {
                        assert_eq!(resp.status(), 401, "{query} {bearer:?}");
                    }
                    other => panic!("{query} {bearer:?}: expected 401, got {other:?}"),
                }
            }
            // A query token is only for this route.
            let http = reqwest::Client::new();
            let (status, _) = send(http.get(format!("{base}/api/v1/flows?token=t0ken"))).await;
            assert_eq!(status, 401);
            // Not a WebSocket handshake: a JSON error.
            let (status, body) = send(
                http.get(format!("{base}/api/v1/events"))
                    .bearer_auth("t0ken"),
            )
            .await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (400, &"invalid_request".into()),
                "{body}"
            );

            let mut by_query = connect(&ws_url(&base, "?token=t0ken"), None).await.unwrap();
            let mut by_header = connect(&ws_url(&base, ""), Some("t0ken")).await.unwrap();
            until_subscribed(&bus, 2).await;
            bus.publish("call.started", serde_json::json!({ "id": "c1" }));
            for ws in [&mut by_query, &mut by_header] {
                let v = next_json(ws).await;
                assert_eq!(v["type"], "call.started");
                assert_eq!(v["data"]["id"], "c1");
                assert!(v["at"].as_i64().unwrap() > 0);
            }
        }

        /// `?types=` keeps the listed prefixes only; pings get pongs
        /// (RFC 6455 §5.5.2); shutdown closes with 1001 (§7.4.1).
        #[tokio::test]
        async fn filters_types_answers_pings_and_closes_at_shutdown() {
            let folder = Folder::new("ws-filter");
            let (base, bus) = serve_with_events(&folder).await;
            let (status, body) = send(
                reqwest::Client::new()
                    .get(format!("{base}/api/v1/events?types=call.;x"))
                    .bearer_auth("t0ken"),
            )
            .await;
            assert_eq!(status, 400, "{body}");
            let mut ws = connect(&ws_url(&base, "?types=call.,thread.&token=t0ken"), None)
                .await
                .unwrap();
            until_subscribed(&bus, 1).await;
            bus.publish("agent.state", serde_json::json!({ "login": "alice" }));
            bus.publish("call.offered", serde_json::json!({ "agent": "alice" }));
            bus.publish("queue.stats", serde_json::json!({}));
            bus.publish("thread.event", serde_json::json!({ "kind": "message" }));
            assert_eq!(next_json(&mut ws).await["type"], "call.offered");
            assert_eq!(next_json(&mut ws).await["type"], "thread.event");

            ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
            let pong = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Pong(data))) => return data,
                        Some(Ok(_)) => continue,
                        other => panic!("no pong: {other:?}"),
                    }
                }
            })
            .await
            .expect("pong in time");
            assert_eq!(&pong[..], b"hi");

            bus.close();
            let close = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Close(frame))) => return frame,
                        Some(Ok(_)) => continue,
                        other => panic!("no close frame: {other:?}"),
                    }
                }
            })
            .await
            .expect("close in time")
            .expect("a close code");
            assert_eq!(
                close.code,
                tungstenite::protocol::frame::coding::CloseCode::Away
            );
        }

        /// A client that falls behind is told how many events it missed
        /// and goes on with the newest.
        #[tokio::test]
        async fn a_lagging_client_is_told_and_continues() {
            let folder = Folder::new("ws-lag");
            let (base, bus) = serve_with_events(&folder).await;
            let mut ws = connect(&ws_url(&base, "?token=t0ken"), None).await.unwrap();
            until_subscribed(&bus, 1).await;
            // No await between publishes: the stream task cannot keep up.
            let extra = 50;
            for i in 0..crate::events::CAPACITY + extra {
                bus.publish("queue.stats", serde_json::json!({ "i": i }));
            }
            let first = next_json(&mut ws).await;
            assert_eq!(first["type"], "stream.lagged", "{first}");
            assert_eq!(first["data"]["missed"], extra as u64);
            let next = next_json(&mut ws).await;
            assert_eq!(next["type"], "queue.stats");
            assert_eq!(next["data"]["i"], extra as u64);
        }
    }
}
