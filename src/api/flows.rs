//! `GET /api/v1/flows` and `POST /api/v1/flows/reload` (DESIGN §8): the
//! running flow set and a validated reload of the flow folder (DESIGN §5).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, diagnostic_json};
use crate::ivr::reload::LoadedFlows;

/// The running version: its number, load time, flows and warnings.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(loaded_json(&state.flows.handle().loaded()))
}

/// Validates the whole folder and swaps it in; 422 `invalid_flows` with
/// every diagnostic otherwise (the running version is kept).
pub async fn reload(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let reloader = state.flows.clone();
    match tokio::task::spawn_blocking(move || reloader.reload_now()).await? {
        Ok(report) => Ok(Json(loaded_json(&report.loaded))),
        Err(diagnostics) => Err(ApiError::InvalidFlows {
            running: state.flows.handle().loaded().version,
            diagnostics,
        }),
    }
}

fn loaded_json(loaded: &LoadedFlows) -> Value {
    let flows: Vec<Value> = loaded
        .set
        .flows()
        .map(|f| {
            json!({
                "name": f.name,
                "file": f.file.display().to_string(),
                "numbers": f.numbers,
                "nodes": f.nodes.len(),
                "public": f.public,
            })
        })
        .collect();
    json!({
        "version": loaded.version,
        "loaded_at": loaded.loaded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "flows": flows,
        "warnings": loaded.warnings.iter().map(diagnostic_json).collect::<Vec<_>>(),
    })
}
