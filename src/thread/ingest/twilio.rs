//! Twilio's inbound SMS webhook (`POST /api/v1/webhooks/twilio/sms`):
//! form fields From, To, Body, MessageSid, NumMedia; the
//! `X-Twilio-Signature` (base64 HMAC-SHA1 under the account's auth token of
//! the full URL followed by every parameter name and value, sorted by name)
//! is checked when a token is configured; the answer is empty TwiML.

use serde_json::json;

use super::messages::InboundMessage;
use super::sha1::{base64, constant_time_eq, hmac_sha1};
use crate::thread::{Channel, Direction, ThreadError};

/// Environment variable holding the Twilio auth token; without it
/// signatures are not checked.
pub const AUTH_TOKEN_ENV: &str = "SWITCHBOARD_TWILIO_AUTH_TOKEN";

/// The answer Twilio gets: no reply message.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/// Most form parameters read.
const MAX_PARAMS: usize = 256;

/// The auth token that signs Twilio's requests; never printed.
#[derive(Clone)]
pub struct TwilioAuth {
    token: String,
}

impl std::fmt::Debug for TwilioAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TwilioAuth(..)")
    }
}

impl TwilioAuth {
    pub fn new(token: &str) -> TwilioAuth {
        TwilioAuth {
            token: token.to_owned(),
        }
    }

    /// From [`AUTH_TOKEN_ENV`], when set and not empty.
    pub fn from_env() -> Option<TwilioAuth> {
        std::env::var(AUTH_TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| TwilioAuth::new(t.trim()))
    }

    /// The signature Twilio sends for `url` and form `params`.
    pub fn signature(&self, url: &str, params: &[(String, String)]) -> String {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        let mut data = url.to_owned();
        for (k, v) in sorted {
            data.push_str(k);
            data.push_str(v);
        }
        base64(&hmac_sha1(self.token.as_bytes(), data.as_bytes()))
    }

    /// Whether `presented` signs `url` and `params`.
    pub fn verify(&self, url: &str, params: &[(String, String)], presented: &str) -> bool {
        let want = self.signature(url, params);
        constant_time_eq(want.as_bytes(), presented.trim().as_bytes())
    }
}

/// Parses an `application/x-www-form-urlencoded` body (WHATWG URL §5.1).
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, ThreadError> {
    let mut out = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_PARAMS {
            return Err(ThreadError::invalid("body", "too many form fields"));
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        out.push((decode(k), decode(v)));
    }
    Ok(out)
}

fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex_val(raw.get(i + 1)), hex_val(raw.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The value of form field `name`.
pub fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The inbound message of a webhook's fields. A `whatsapp:` From is a
/// WhatsApp message.
pub fn to_message(params: &[(String, String)]) -> Result<InboundMessage, ThreadError> {
    let from = field(params, "From")
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| ThreadError::invalid("From", "is required"))?;
    let sid = field(params, "MessageSid")
        .or_else(|| field(params, "SmsSid"))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ThreadError::invalid("MessageSid", "is required"))?;
    let media = match field(params, "NumMedia") {
        None => 0,
        Some(n) => n
            .trim()
            .parse::<u32>()
            .map_err(|_| ThreadError::invalid("NumMedia", "must be a number"))?,
    };
    let channel = if from.to_ascii_lowercase().starts_with("whatsapp:") {
        Channel::Whatsapp
    } else {
        Channel::Sms
    };
    Ok(InboundMessage {
        channel,
        direction: Direction::Inbound,
        from: from.to_owned(),
        to: field(params, "To").map(str::to_owned),
        body: field(params, "Body").unwrap_or_default().to_owned(),
        external_id: Some(sid.to_owned()),
        occurred_at: None,
        extra: json!({ "provider": "twilio", "num_media": media }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f = parse_form(b"From=%2B14155550123&Body=Hello+there%21&Bad=%zz&Empty=&Flag").unwrap();
        assert_eq!(field(&f, "From"), Some("+14155550123"));
        assert_eq!(field(&f, "Body"), Some("Hello there!"));
        assert_eq!(field(&f, "Bad"), Some("%zz"));
        assert_eq!(field(&f, "Empty"), Some(""));
        assert_eq!(field(&f, "Flag"), Some(""));
        assert_eq!(parse_form(b"a=%4").unwrap()[0].1, "%4");
        assert_eq!(parse_form(b"a=%").unwrap()[0].1, "%");
        assert!(parse_form("a=1&".repeat(300).as_bytes()).is_err());
    }

    /// Twilio signs the URL followed by the parameters sorted by name.
    #[test]
    fn signature_covers_url_and_sorted_params() {
        let auth = TwilioAuth::new("12345");
        let url = "https://example.com/api/v1/webhooks/twilio/sms";
        let params = vec![
            ("To".to_owned(), "+14155550100".to_owned()),
            ("From".to_owned(), "+14155550123".to_owned()),
            ("Body".to_owned(), "hi".to_owned()),
        ];
        let want = base64(&hmac_sha1(
            b"12345",
            format!("{url}Bodyhi From+14155550123To+14155550100")
                .replace(' ', "")
                .as_bytes(),
        ));
        assert_eq!(auth.signature(url, &params), want);
        assert!(auth.verify(url, &params, &want));
        assert!(!auth.verify(&format!("{url}?x=1"), &params, &want));
        let mut tampered = params.clone();
        tampered[2].1 = "hj".to_owned();
        assert!(!auth.verify(url, &tampered, &want));
        assert_eq!(format!("{auth:?}"), "TwilioAuth(..)");
    }

    #[test]
    fn message_from_fields() {
        let f = parse_form(
            b"From=whatsapp%3A%2B14155550123&To=whatsapp%3A%2B14155550100&Body=Hi&MessageSid=SM1&NumMedia=0",
        )
        .unwrap();
        let m = to_message(&f).unwrap();
        assert_eq!(m.channel, Channel::Whatsapp);
        assert_eq!(m.external_id.as_deref(), Some("SM1"));
        let missing = parse_form(b"Body=Hi&MessageSid=SM1").unwrap();
        assert!(matches!(
            to_message(&missing),
            Err(ThreadError::Invalid { field: "From", .. })
        ));
        let bad = parse_form(b"From=%2B1&MessageSid=SM1&NumMedia=x").unwrap();
        assert!(matches!(
            to_message(&bad),
            Err(ThreadError::Invalid {
                field: "NumMedia",
                ..
            })
        ));
    }
}
