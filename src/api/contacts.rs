//! Reading the unified thread back (DESIGN §8): contacts by phone or
//! email, a contact with its identities, its threads, a thread with its
//! events in time order, and merging two contacts.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::store::now_ms;
use crate::thread::contacts::{self, Contact};
use crate::thread::identity::{self, IdentityKind};
use crate::thread::{ThreadError, events, threads};

/// Most threads listed for one contact.
const MAX_THREADS: i64 = 500;

#[derive(Debug, Deserialize)]
pub struct Search {
    phone: Option<String>,
    email: Option<String>,
}

fn invalid(field: &str, reason: &str) -> ApiError {
    ApiError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

async fn contact_json(state: &AppState, contact: &Contact) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(contact).map_err(ThreadError::from)?;
    let ids = contacts::identities(&state.store, &contact.id).await?;
    value["identities"] = serde_json::to_value(ids).map_err(ThreadError::from)?;
    Ok(value)
}

/// `GET /api/v1/contacts?phone=|email=`: the contacts holding it (several
/// for a shared number).
pub async fn search(
    State(state): State<AppState>,
    Query(q): Query<Search>,
) -> Result<Json<Value>, ApiError> {
    let (kind, value) = match (&q.phone, &q.email) {
        (Some(phone), _) => {
            // A '+' in a query string decodes as a space.
            let phone = phone.trim_end();
            let phone = match phone.strip_prefix(' ') {
                Some(rest) => format!("+{}", rest.trim_start()),
                None => phone.to_owned(),
            };
            let n = identity::parse_phone(&phone, None)
                .ok_or_else(|| invalid("phone", "not a valid E.164 number"))?;
            (IdentityKind::Phone, n.as_str().to_owned())
        }
        (None, Some(email)) => (
            IdentityKind::Email,
            identity::normalize_email(email)
                .ok_or_else(|| invalid("email", "not an email address"))?,
        ),
        (None, None) => return Err(invalid("phone", "give phone or email")),
    };
    let mut list = Vec::new();
    for (contact, role) in contacts::by_identity(&state.store, kind, &value).await? {
        let mut c = contact_json(&state, &contact).await?;
        c["role"] = json!(role);
        list.push(c);
    }
    Ok(Json(json!({ "contacts": list })))
}

/// The contact `id`, following a merge to the survivor.
async fn resolved(state: &AppState, id: &str) -> Result<Contact, ApiError> {
    contacts::resolve(&state.store, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/contacts/{id}`; a merged id answers with the survivor and
/// `resolved_from`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let contact = resolved(&state, &id).await?;
    let mut value = contact_json(&state, &contact).await?;
    if contact.id.as_str() != id {
        value["resolved_from"] = json!(id);
    }
    Ok(Json(value))
}

/// `GET /api/v1/contacts/{id}/threads`, most recently active first.
pub async fn threads(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let contact = resolved(&state, &id).await?;
    let list = threads::for_contact(&state.store, &contact.id, MAX_THREADS).await?;
    Ok(Json(json!({ "contact_id": contact.id, "threads": list })))
}

/// `GET /api/v1/threads/{id}` with its contact and events in time order.
pub async fn thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let thread = threads::get(&state.store, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let events = events::list(&state.store, &thread.id).await?;
    let contact = contacts::resolve(&state.store, thread.contact_id.as_str()).await?;
    let mut value = serde_json::to_value(&thread).map_err(ThreadError::from)?;
    value["contact"] = serde_json::to_value(contact).map_err(ThreadError::from)?;
    value["events"] = serde_json::to_value(events).map_err(ThreadError::from)?;
    Ok(Json(value))
}

/// `POST /api/v1/contacts/{id}/merge` with `{ "into": ID }`: answers the
/// survivor.
pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| invalid("body", "must be a JSON object"))?;
    let into = body
        .get("into")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("into", "is required (a contact id)"))?;
    if contacts::get(&state.store, &id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    if contacts::get(&state.store, into).await?.is_none() {
        return Err(invalid("into", "no such contact"));
    }
    let survivor = contacts::merge(&state.store, &id, into, now_ms()).await?;
    let mut value = contact_json(&state, &survivor).await?;
    value["merged"] = json!([id]);
    Ok(Json(value))
}
