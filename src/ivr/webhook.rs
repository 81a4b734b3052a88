//! The HTTP client of the `webhook` action (DESIGN §5): POSTs the call
//! context as JSON and returns the JSON object of the reply, whose keys the
//! flow may take as variables. Every failure is a typed [`WebhookError`];
//! the interpreter takes the node's failure exit (or `next`) on any of them.
//!
//! Bounds: only `http` and `https` URLs, no redirects (a 3xx is an error
//! status), the whole exchange within the node's timeout, and at most
//! [`MAX_REPLY_BYTES`] of reply body.

use std::time::Duration;

use serde_json::{Map, Value};

/// Largest reply body read; a bigger one is [`WebhookError::TooLarge`].
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Longest time a connection may take to open, whatever the node's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a webhook gave no variables.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook URL is not a valid URL")]
    InvalidUrl,
    #[error("webhook URL scheme `{0}` is not http or https")]
    UnsupportedScheme(String),
    #[error("webhook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("webhook request failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("webhook answered with status {0}")]
    Status(u16),
    #[error("webhook reply is larger than {MAX_REPLY_BYTES} bytes")]
    TooLarge,
    #[error("webhook reply is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("webhook reply is JSON but not an object")]
    NotObject,
}

/// One HTTP client for the whole process (connection pool, rustls).
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    /// Builds the client; fails only if the TLS backend cannot start.
    pub fn new() -> Result<WebhookClient, WebhookError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(WebhookError::Request)?;
        Ok(WebhookClient { http })
    }

    /// POSTs `body` to `url` and returns the reply's JSON object, all
    /// within `timeout`.
    pub async fn call(
        &self,
        url: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Map<String, Value>, WebhookError> {
        let url = reqwest::Url::parse(url).map_err(|_| WebhookError::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let exchange = async {
            let response = self
                .http
                .post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .json(body)
                .send()
                .await
                .map_err(|e| request_error(e, timeout))?;
            let status = response.status();
            if !status.is_success() {
                return Err(WebhookError::Status(status.as_u16()));
            }
            read_capped(response, timeout).await
        };
        let bytes = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| WebhookError::Timeout(timeout))??;
        match serde_json::from_slice::<Value>(&bytes).map_err(WebhookError::NotJson)? {
            Value::Object(map) => Ok(map),
            _ => Err(WebhookError::NotObject),
        }
    }
}

fn request_error(e: reqwest::Error, timeout: Duration) -> WebhookError {
    if e.is_timeout() {
        WebhookError::Timeout(timeout)
    } else {
        WebhookError::Request(e)
    }
}

/// The body, refused as soon as it passes [`MAX_REPLY_BYTES`].
async fn read_capped(
    mut response: reqwest::Response,
    timeout: Duration,
) -> Result<Vec<u8>, WebhookError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
    {
        return Err(WebhookError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(e, timeout))?
    {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(WebhookError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use serde_json::json;

    /// A local webhook server on 127.0.0.1:0 with one route per behaviour.
    async fn server() -> String {
        async fn echo(axum::Json(body): axum::Json<Value>) -> impl IntoResponse {
            axum::Json(json!({ "seen": body["caller"], "tier": "gold", "n": 3 }))
        }
        let app = Router::new()
            .route("/ok", post(echo))
            .route(
                "/error",
                post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "{}") }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "{}"
                }),
            )
            .route("/garbage", post(|| async { "<html>hello</html>" }))
            .route("/array", post(|| async { "[1, 2]" }))
            .route(
                "/huge",
                post(|| async { format!("{{\"x\": \"{}\"}}", "a".repeat(MAX_REPLY_BYTES)) }),
            )
            .route(
                "/redirect",
                post(|| async { (StatusCode::FOUND, [("location", "/ok")], "") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn object_reply_becomes_variables() {
        let base = server().await;
        let client = WebhookClient::new().unwrap();
        let vars = client
            .call(&format!("{base}/ok"), &json!({ "caller": "+1415" }), T)
            .await
            .unwrap();
        assert_eq!(vars["seen"], "+1415");
        assert_eq!(vars["tier"], "gold");
        assert_eq!(vars["n"], 3);
    }

    #[tokio::test]
    async fn failures_are_typed() {
        let base = server().await;
        let client = WebhookClient::new().unwrap();
        let call = |path: &'static str, timeout: Duration| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move { client.call(&url, &json!({}), timeout).await }
        };
        assert!(matches!(
            call("/error", T).await,
            Err(WebhookError::Status(500))
        ));
        assert!(matches!(
            call("/redirect", T).await,
            Err(WebhookError::Status(302))
        ));
        let started = std::time::Instant::now();
        let slow = Duration::from_millis(200);
        assert!(matches!(
            call("/slow", slow).await,
            Err(WebhookError::Timeout(d)) if d == slow
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(
            call("/garbage", T).await,
            Err(WebhookError::NotJson(_))
        ));
        assert!(matches!(
            call("/array", T).await,
            Err(WebhookError::NotObject)
        ));
        assert!(matches!(
            call("/huge", T).await,
            Err(WebhookError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn only_http_urls() {
        let client = WebhookClient::new().unwrap();
        let body = json!({});
        assert!(matches!(
            client.call("file:///etc/passwd", &body, T).await,
            Err(WebhookError::UnsupportedScheme(s)) if s == "file"
        ));
        assert!(matches!(
            client.call("not a url", &body, T).await,
            Err(WebhookError::InvalidUrl)
        ));
    }

    #[tokio::test]
    async fn refused_connection_is_a_request_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = WebhookClient::new().unwrap();
        let got = client
            .call(&format!("http://127.0.0.1:{port}/"), &json!({}), T)
            .await;
        assert!(matches!(got, Err(WebhookError::Request(_))), "{got:?}");
    }
}
