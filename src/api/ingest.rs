//! Ingest endpoints (DESIGN §7): `POST /api/v1/messages`,
//! `POST /api/v1/emails` and `POST /api/v1/webhooks/twilio/sms`. Each is
//! idempotent: a repeated key gets the first answer (status and body) and
//! writes nothing; the same key with another body is 409.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::store::now_ms;
use crate::thread::ingest::{self, Reply, check_key, email, messages, request_hash, twilio};

/// The Twilio webhook's path under `/api/v1`.
pub const TWILIO_SMS_PATH: &str = "/webhooks/twilio/sms";

const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The client's `Idempotency-Key`, checked.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().map_err(|_| ApiError::Invalid {
                field: "Idempotency-Key".to_owned(),
                reason: "must be printable ASCII".to_owned(),
            })?;
            check_key(key)?;
            Ok(Some(key.to_owned()))
        }
    }
}

fn reply_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let content_type = HeaderValue::from_str(&reply.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    (status, [(header::CONTENT_TYPE, content_type)], reply.body).into_response()
}

/// Replays the first answer to `key`, or runs `work` and keeps its answer.
async fn once<F>(state: &AppState, key: String, body: &[u8], work: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Reply, ApiError>>,
{
    check_key(&key)?;
    let hash = request_hash(&[body]);
    if let Some(first) = ingest::replay(&state.store, &key, &hash).await? {
        return Ok(reply_response(first));
    }
    let reply = work.await?;
    let kept = ingest::keep(&state.store, &key, &hash, reply, now_ms()).await?;
    Ok(reply_response(kept))
}

fn json_reply(status: u16, value: &impl serde::Serialize) -> Result<Reply, ApiError> {
    let body = serde_json::to_string(value).map_err(|e| ApiError::Thread(e.into()))?;
    Ok(Reply {
        status,
        content_type: "application/json".to_owned(),
        body,
    })
}

/// Tells the event stream a message or email went into a thread
/// (`thread.event`; small: ids, kind and channel).
fn publish_stored(bus: &crate::events::EventBus, event: &crate::thread::Event) {
    bus.publish(
        "thread.event",
        serde_json::json!({
            "thread_id": event.thread_id,
            "event_id": event.id,
            "kind": event.kind,
            "channel": event.channel,
            "direction": event.direction,
        }),
    );
}

/// `POST /api/v1/messages`: 201 with contact, thread and event; 200 when
/// the event was already stored under the same channel and external_id.
pub async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let msg = messages::validate(&body)?;
    let key = match idempotency_key(&headers)? {
        Some(k) => k,
        None => msg.external_id.clone().ok_or_else(|| ApiError::Invalid {
            field: "external_id".to_owned(),
            reason: "is required without an Idempotency-Key header".to_owned(),
        })?,
    };
    let store = state.store.clone();
    let bus = state.events.clone();
    once(&state, format!("messages:{key}"), &body, async move {
        let done = messages::ingest(&store, &msg, now_ms()).await?;
        if done.created {
            publish_stored(&bus, &done.event);
        }
        json_reply(if done.created { 201 } else { 200 }, &done)
    })
    .await
}

/// `POST /api/v1/emails` with `Content-Type: message/rfc822`.
pub async fn emails(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = header_text(&headers, "content-type").unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("message/rfc822") {
        return Err(ApiError::UnsupportedMediaType("message/rfc822"));
    }
    let mail = email::parse(&body)?;
    let key = match idempotency_key(&headers)? {
        Some(k) => k,
        None => format!("message-id:{}", mail.message_id),
    };
    let store = state.store.clone();
    let bus = state.events.clone();
    once(&state, format!("emails:{key}"), &body, async move {
        let done = email::ingest(&store, &mail, now_ms()).await?;
        if let (true, Some(event)) = (done.created, &done.event) {
            publish_stored(&bus, event);
        }
        let status = match (done.created, done.event.is_some()) {
            (true, _) => 201,
            (false, true) => 200,
            (false, false) => 202,
        };
        json_reply(status, &done)
    })
    .await
}

/// The URL Twilio signed: scheme (`X-Forwarded-Proto`, else http), Host
/// and the path (under `/api/v1`, which nesting strips) and query.
fn signed_url(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = header_text(headers, "host")?;
    let scheme = header_text(headers, "x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let prefix = if path.starts_with("/api/v1/") {
        ""
    } else {
        "/api/v1"
    };
    Some(format!("{scheme}://{host}{prefix}{path}"))
}

/// `POST /api/v1/webhooks/twilio/sms`: Twilio's form fields; answers empty
/// TwiML.
pub async fn twilio_sms(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = twilio::parse_form(&body)?;
    if let Some(auth) = &state.twilio {
        let url = signed_url(&headers, &uri).ok_or(ApiError::BadSignature)?;
        let signature = header_text(&headers, "x-twilio-signature").unwrap_or_default();
        if !auth.verify(&url, &params, signature) {
            tracing::warn!("Twilio webhook with a bad signature refused");
            return Err(ApiError::BadSignature);
        }
    }
    let msg = twilio::to_message(&params)?;
    let sid = msg.external_id.clone().unwrap_or_default();
    let store = state.store.clone();
    let bus = state.events.clone();
    once(&state, format!("twilio:{sid}"), &body, async move {
        let done = messages::ingest(&store, &msg, now_ms()).await?;
        if done.created {
            publish_stored(&bus, &done.event);
        }
        Ok(Reply {
            status: 200,
            content_type: "text/xml; charset=utf-8".to_owned(),
            body: twilio::EMPTY_TWIML.to_owned(),
        })
    })
    .await
}
