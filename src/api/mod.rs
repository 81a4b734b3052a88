//! The HTTP API (DESIGN §8): `GET /healthz` and `GET /metrics` without a
//! token; `/api/v1` behind the admin bearer token.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler can reach; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub admin: Arc<AdminAuth>,
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
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
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

/// Liveness: the process answers HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus text exposition (format version 0.0.4).
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
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
}
