//! The calls in progress (DESIGN §8): `GET /api/v1/calls`, `GET
//! /api/v1/calls/{id}` and `POST /api/v1/calls/{id}/hangup`. A call is named
//! by its call record id (as in `/cdrs`) or its SIP Call-ID.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

/// Every call in progress, oldest first.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let calls = state.calls.list();
    Json(json!({ "count": calls.len(), "calls": calls }))
}

/// One call in progress; 404 when it is not (or no longer) in progress.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let call = state.calls.get(&id).ok_or(ApiError::NotFound)?;
    Ok(Json(json!(call)))
}

/// Ends the call: the caller gets BYE (a call still ringing is declined)
/// and its agent leg ends with it. 202: the call ends as soon as its task
/// hears of it; its record says `hung up by the API`.
pub async fn hang_up(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let call = state.calls.hang_up(&id).ok_or(ApiError::NotFound)?;
    tracing::info!(call_id = %call.call_id, "hang-up asked through the API");
    Ok((StatusCode::ACCEPTED, Json(json!(call))))
}
