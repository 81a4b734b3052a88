//! `GET /api/v1/queues` (DESIGN §6, §8): live figures of every queue of the
//! running flow set, straight from the routing engine.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::acd::routing::QueueStats;

/// Every queue of the running flow set with its live figures, by name.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let queues: Vec<Value> = state
        .acd
        .queue_stats()
        .await
        .iter()
        .map(|(name, stats)| queue_json(name, stats))
        .collect();
    Json(json!({ "queues": queues }))
}

/// Seconds with millisecond precision.
fn secs(d: std::time::Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// One queue as the API shows it. Service level is answered within the
/// queue's `service_level` ÷ (answered + abandoned); ASA is the mean wait of
/// answered callers; AHT the moving average of completed handle times.
fn queue_json(name: &str, s: &QueueStats) -> Value {
    json!({
        "name": name,
        "waiting": s.waiting,
        "longest_wait_s": secs(s.longest_wait),
        "agents": {
            "staffed": s.agents_staffed,
            "available": s.agents_available,
            "offered": s.agents_offered,
            "on_call": s.agents_on_call,
            "wrap_up": s.agents_wrap_up,
            "paused": s.agents_paused,
        },
        "offered": s.offered,
        "answered": s.answered,
        "abandoned": s.abandoned,
        "left": s.left,
        "service_level": s.service_level,
        "asa_s": s.asa.map(secs),
        "aht_s": secs(s.aht),
    })
}
