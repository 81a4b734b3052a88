//! Call records (DESIGN §8): `GET /api/v1/cdrs?since=&until=` as JSON or,
//! with `Accept: text/csv`, RFC 4180 CSV; `GET /api/v1/recordings/{id}`
//! serves a call's recording (or, with `?kind=voicemail`, its voicemail)
//! from the recordings folder only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::store::now_ms;
use crate::thread::calls::{self, CallRecord};
use crate::thread::{parse_rfc3339, rfc3339};

/// Largest recording served.
const MAX_RECORDING: u64 = 512 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct Range {
    since: Option<String>,
    until: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Which {
    kind: Option<String>,
}

/// RFC 3339 or epoch milliseconds.
fn time_param(field: &str, value: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .or_else(|| parse_rfc3339(v))
            .ok_or_else(|| ApiError::Invalid {
                field: field.to_owned(),
                reason: "must be RFC 3339 or epoch milliseconds".to_owned(),
            }),
    }
}

/// `GET /api/v1/cdrs`: calls started in `[since, until)`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> Result<Response, ApiError> {
    let since = time_param("since", range.since.as_deref(), 0)?;
    let until = time_param("until", range.until.as_deref(), now_ms().saturating_add(1))?;
    let rows = calls::between(&state.store, since, until).await?;
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/csv"));
    if csv {
        let body = to_csv(&rows);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    // Each call's times in queues (DESIGN §6), in the order it entered them.
    let mut segments: std::collections::HashMap<String, Vec<serde_json::Value>> =
        std::collections::HashMap::new();
    for s in state
        .store
        .segments()
        .for_calls_started(since, until)
        .await?
    {
        segments.entry(s.call_id.clone()).or_default().push(json!({
            "queue": s.queue,
            "enqueued_at": rfc3339(s.enqueued_at),
            "left_at": rfc3339(s.left_at),
            "outcome": s.outcome,
            "agent": s.agent,
            "wait_ms": s.wait_ms,
            "offers": s.offers,
        }));
    }
    let cdrs: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut cdr = json!(row);
            cdr["queue_segments"] = segments.remove(&row.call_id).unwrap_or_default().into();
            cdr
        })
        .collect();
    Ok(Json(json!({ "cdrs": cdrs })).into_response())
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "call_id",
    "from",
    "to",
    "caller",
    "contact_id",
    "thread_id",
    "flow",
    "ivr_path",
    "queue",
    "priority",
    "routing_reason",
    "started_at",
    "enqueued_at",
    "answered_at",
    "ended_at",
    "wait_ms",
    "duration_ms",
    "agent",
    "disposition",
    "recording_path",
    "voicemail_path",
    "survey_score",
];

/// One CSV field, quoted when it holds a comma, quote, CR or LF (RFC 4180
/// §2.6–2.7).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// CDR rows as CSV with a header line and CRLF line ends.
fn to_csv(rows: &[CallRecord]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let time = |v: Option<i64>| v.map(rfc3339).unwrap_or_default();
    for r in rows {
        let fields = [
            r.id.clone(),
            r.call_id.clone(),
            r.from_uri.clone(),
            r.to_uri.clone(),
            opt(&r.caller),
            r.contact_id
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            r.thread_id
                .as_ref()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            opt(&r.flow),
            r.ivr_path.to_string(),
            opt(&r.queue),
            num(r.priority),
            opt(&r.routing_reason),
            rfc3339(r.started_at),
            time(r.enqueued_at),
            time(r.answered_at),
            time(r.ended_at),
            num(r.wait_ms),
            num(r.duration_ms()),
            opt(&r.agent),
            r.disposition
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default(),
            opt(&r.recording_path),
            opt(&r.voicemail_path),
            num(r.survey_score),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `GET /api/v1/recordings/{id}`: the WAV of call `id` (row id or SIP
/// Call-ID); 404 when the call, the file, or a path outside the recordings
/// folder.
pub async fn recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(which): Query<Which>,
) -> Result<Response, ApiError> {
    let call = match calls::get(&state.store, &id).await? {
        Some(c) => c,
        None => calls::by_call_id(&state.store, &id)
            .await?
            .ok_or(ApiError::NotFound)?,
    };
    let stored = match which.kind.as_deref() {
        None | Some("recording") => call.recording_path,
        Some("voicemail") => call.voicemail_path,
        Some(_) => {
            return Err(ApiError::Invalid {
                field: "kind".to_owned(),
                reason: "must be recording or voicemail".to_owned(),
            });
        }
    }
    .ok_or(ApiError::NotFound)?;
    let folder = state.config.recordings.clone();
    let bytes = tokio::task::spawn_blocking(move || read_confined(&folder, &stored)).await?;
    let bytes = bytes.ok_or(ApiError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response())
}

/// The file `stored` (relative to `folder`, or absolute inside it) when it
/// resolves, symlinks followed, to a regular file inside `folder`.
fn read_confined(folder: &std::path::Path, stored: &str) -> Option<Vec<u8>> {
    let root = folder.canonicalize().ok()?;
    let path = root.join(stored).canonicalize().ok()?;
    if !path.starts_with(&root) {
        tracing::warn!(path = %path.display(), "recording path outside the recordings folder refused");
        return None;
    }
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_RECORDING {
        return None;
    }
    std::fs::read(&path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4180 §2.6–2.7: fields with commas, quotes or line breaks are
    /// quoted, quotes doubled.
    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\r\nlines"), "\"two\r\nlines\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn recordings_stay_in_their_folder() {
        let dir = crate::store::testing::TempDir::new("rec").unwrap();
        let inside = dir.path().join("rec");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("a.wav"), b"RIFF").unwrap();
        std::fs::write(dir.path().join("secret.wav"), b"no").unwrap();
        assert_eq!(
            read_confined(&inside, "a.wav").as_deref(),
            Some(&b"RIFF"[..])
        );
        let abs = inside.join("a.wav").display().to_string();
        assert!(read_confined(&inside, &abs).is_some());
        assert_eq!(read_confined(&inside, "../secret.wav"), None);
        let outside = dir.path().join("secret.wav").display().to_string();
        assert_eq!(read_confined(&inside, &outside), None);
        assert_eq!(read_confined(&inside, "missing.wav"), None);
        assert_eq!(read_confined(&inside, "."), None);
    }

    #[test]
    fn time_params() {
        assert_eq!(time_param("since", None, 5).unwrap(), 5);
        assert_eq!(time_param("since", Some("1000"), 5).unwrap(), 1000);
        assert_eq!(
            time_param("since", Some("1970-01-01T00:00:01Z"), 5).unwrap(),
            1000
        );
        assert!(time_param("since", Some("later"), 5).is_err());
    }
}
