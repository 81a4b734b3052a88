//! `GET /api/v1/events` (DESIGN §8): the live event stream over a
//! WebSocket (RFC 6455). Each event is one JSON text frame
//! `{"type", "at", "data"}`; `?types=call.,agent.` keeps only events whose
//! type starts with one of the prefixes. A client that falls behind gets
//! `{"type": "stream.lagged", "data": {"missed": N}}` and goes on with the
//! newest events. The stream closes cleanly (1001 Going Away) when the
//! switch shuts down.
//!
//! Browsers cannot set headers on a WebSocket, so besides the bearer token
//! this route alone also takes the admin token as `?token=`.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{AdminAuth, ApiError, AppState};
use crate::events::{EventBus, Published};

/// The route under `/api/v1`.
pub const PATH: &str = "/events";

/// Most prefixes one `types` filter may hold.
const MAX_PREFIXES: usize = 32;

/// Longest prefix accepted.
const MAX_PREFIX_LEN: usize = 64;

/// Whether `uri` carries the admin token as `?token=` (compared in constant
/// time).
pub fn query_token_ok(admin: &AdminAuth, uri: &Uri) -> bool {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .ok()
        .and_then(|Query(q)| q.get("token").map(|t| admin.verify(t)))
        .unwrap_or(false)
}

/// Which event types a client wants: every one when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter {
    prefixes: Vec<String>,
}

impl TypeFilter {
    /// Parses `call.,agent.` (comma-separated prefixes; blanks ignored).
    pub fn parse(text: &str) -> Result<TypeFilter, ApiError> {
        let prefixes: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if prefixes.len() > MAX_PREFIXES {
            return Err(invalid(format!("at most {MAX_PREFIXES} prefixes")));
        }
        if let Some(bad) = prefixes.iter().find(|p| {
            p.len() > MAX_PREFIX_LEN
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }) {
            return Err(invalid(format!(
                "{bad:?} is not an event type prefix (letters, digits, `.`, `_`, `-`; at most {MAX_PREFIX_LEN})"
            )));
        }
        Ok(TypeFilter { prefixes })
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| kind.starts_with(p.as_str()))
    }
}

fn invalid(reason: String) -> ApiError {
    ApiError::Invalid {
        field: "types".to_owned(),
        reason,
    }
}

/// `GET /api/v1/events`: upgrades to a WebSocket.
pub async fn stream(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::Invalid {
        field: "query".to_owned(),
        reason: "is not a valid query string".to_owned(),
    })?;
    let upgrade = upgrade.map_err(|_| ApiError::Invalid {
        field: "Upgrade".to_owned(),
        reason: "this route speaks WebSocket only (RFC 6455 §4.1)".to_owned(),
    })?;
    let filter = match query.get("types") {
        Some(text) => TypeFilter::parse(text)?,
        None => TypeFilter::default(),
    };
    let bus = state.events.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        tracing::debug!(?filter, "event stream opened");
        run(socket, bus, filter).await;
        tracing::debug!("event stream closed");
    }))
}

/// The `stream.lagged` frame telling a client how many events it missed.
fn lagged_frame(missed: u64) -> String {
    json!({
        "type": "stream.lagged",
        "at": crate::store::now_ms(),
        "data": { "missed": missed },
    })
    .to_string()
}

/// Moves events to one client until it leaves or the switch shuts down.
/// Pings are answered by the WebSocket layer as the socket is read.
async fn run(mut socket: WebSocket, bus: EventBus, filter: TypeFilter) {
    let mut events = bus.subscribe();
    let closed = bus.closed();
    tokio::pin!(closed);
    loop {
        let frame = tokio::select! {
            () = &mut closed => {
                let close = CloseFrame {
                    code: close_code::AWAY,
                    reason: Utf8Bytes::from_static("switch shutting down"),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
                // Wait (briefly) for the client's Close answer (RFC 6455 §7.1.1).
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                return;
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pings get their Pong from the WebSocket layer; a client's
                // text or binary frames mean nothing here.
                Some(Ok(_)) => continue,
            },
            event = events.recv() => match event {
                Ok(Published { kind, json }) => {
                    if !filter.wants(&kind) {
                        continue;
                    }
                    Utf8Bytes::from(json.as_ref())
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "event stream client lagging");
                    Utf8Bytes::from(lagged_frame(missed))
                }
                Err(RecvError::Closed) => return,
            },
        };
        if socket.send(Message::Text(frame)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filter_matches_prefixes() {
        let all = TypeFilter::parse("").unwrap();
        assert!(all.wants("call.started") && all.wants("agent.state"));
        let f = TypeFilter::parse("call., agent.").unwrap();
        assert!(f.wants("call.offered"));
        assert!(f.wants("agent.state"));
        assert!(!f.wants("thread.event"));
        assert!(!f.wants("queue.stats"));
        let exact = TypeFilter::parse("thread.event").unwrap();
        assert!(exact.wants("thread.event") && !exact.wants("call.ended"));
        assert!(TypeFilter::parse("call.;drop").is_err());
        assert!(TypeFilter::parse(&"a,".repeat(MAX_PREFIXES + 1)).is_err());
    }

    #[test]
    fn query_token_is_checked() {
        let admin = AdminAuth::from_token("s3cret");
        let uri = |q: &str| q.parse::<Uri>().unwrap();
        assert!(query_token_ok(&admin, &uri("/events?token=s3cret")));
        assert!(query_token_ok(
            &admin,
            &uri("/events?types=call.&token=s3cret")
        ));
        assert!(!query_token_ok(&admin, &uri("/events?token=s3cre")));
        assert!(!query_token_ok(&admin, &uri("/events")));
        assert!(!query_token_ok(&admin, &uri("/events?token=")));
    }

    #[test]
    fn lagged_frame_says_how_many() {
        let v: serde_json::Value = serde_json::from_str(&lagged_frame(7)).unwrap();
        assert_eq!(v["type"], "stream.lagged");
        assert_eq!(v["data"]["missed"], 7);
        assert!(v["at"].is_i64());
    }
}
