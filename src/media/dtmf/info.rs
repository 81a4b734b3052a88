//! DTMF in SIP INFO bodies (DESIGN §3, §4): `application/dtmf-relay`
//! (`Signal=5` and `Duration=160` lines, the de-facto format of Cisco and
//! most PBXs) and `application/dtmf` (the body is the key).
//!
//! Parsing is bounded and tolerant: any line ending, spaces around `=`,
//! any case in keys, unknown lines skipped.

use std::time::Duration;

use super::Digit;

/// Largest body looked at; real ones are under 40 bytes.
pub const MAX_BODY: usize = 512;

/// Most lines read from a `dtmf-relay` body.
const MAX_LINES: usize = 16;

/// Longest press accepted in `Duration=` (milliseconds).
const MAX_DURATION_MS: u64 = 60_000;

/// Why an INFO body gave no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoDtmfError {
    #[error("body of {0} bytes is too large for a DTMF INFO")]
    TooLarge(usize),
    #[error("body is not text")]
    NotText,
    #[error("no Signal line in the dtmf-relay body")]
    MissingSignal,
    #[error("signal {0:?} is not a DTMF key")]
    BadSignal(String),
    #[error("duration {0:?} is not a number of milliseconds up to 60000")]
    BadDuration(String),
    #[error("content type {0:?} does not carry DTMF")]
    NotDtmf(String),
}

/// A key press carried in an INFO request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDtmf {
    pub digit: Digit,
    /// How long the key was held, when the body says.
    pub duration: Option<Duration>,
}

/// Parses an INFO body by its Content-Type (parameters and case ignored).
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Result<InfoDtmf, InfoDtmfError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/dtmf-relay" => parse_dtmf_relay(body),
        "application/dtmf" => parse_dtmf(body).map(|digit| InfoDtmf {
            digit,
            duration: None,
        }),
        _ => Err(InfoDtmfError::NotDtmf(truncate(content_type))),
    }
}

/// Parses an `application/dtmf-relay` body: `Signal=5\r\nDuration=160\r\n`.
/// `Signal` is a key (`0`–`9`, `*`, `#`, `A`–`D`) or an event code
/// (`10` = `*`, `11` = `#`, `12`–`15` = `A`–`D`, as in RFC 4733 §3.2);
/// `Duration` is in milliseconds and optional.
pub fn parse_dtmf_relay(body: &[u8]) -> Result<InfoDtmf, InfoDtmfError> {
    let text = body_text(body)?;
    let mut digit = None;
    let mut duration = None;
    for line in text.lines().take(MAX_LINES) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let key = key.trim();
        if key.eq_ignore_ascii_case("signal") {
            digit = Some(parse_signal(value)?);
        } else if key.eq_ignore_ascii_case("duration") {
            let ms = value
                .parse::<u64>()
                .ok()
                .filter(|&ms| ms <= MAX_DURATION_MS)
                .ok_or_else(|| InfoDtmfError::BadDuration(truncate(value)))?;
            duration = Some(Duration::from_millis(ms));
        }
    }
    let digit = digit.ok_or(InfoDtmfError::MissingSignal)?;
    Ok(InfoDtmf { digit, duration })
}

/// Parses an `application/dtmf` body: the key alone, spaces and line
/// ending allowed.
pub fn parse_dtmf(body: &[u8]) -> Result<Digit, InfoDtmfError> {
    let text = body_text(body)?.trim();
    parse_signal(text)
}

fn body_text(body: &[u8]) -> Result<&str, InfoDtmfError> {
    if body.len() > MAX_BODY {
        return Err(InfoDtmfError::TooLarge(body.len()));
    }
    std::str::from_utf8(body).map_err(|_| InfoDtmfError::NotText)
}

fn parse_signal(value: &str) -> Result<Digit, InfoDtmfError> {
    let bad = || InfoDtmfError::BadSignal(truncate(value));
    let mut chars = value.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(c), None, _) => Digit::from_char(c).ok_or_else(bad),
        (Some('1'), Some(c @ '0'..='5'), None) => {
            let code = 10
                + c.to_digit(10)
                    .and_then(|d| u8::try_from(d).ok())
                    .unwrap_or(0);
            Digit::from_event_code(code).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// Bounds what an error quotes from the peer.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(c: char) -> Digit {
        Digit::from_char(c).unwrap()
    }

    #[test]
    fn dtmf_relay_bodies() {
        let cases: &[(&[u8], char, Option<u64>)] = &[
            (b"Signal=5\r\nDuration=160\r\n", '5', Some(160)),
            (b"Signal=5\r\nDuration=160", '5', Some(160)),
            (b"signal = *\nduration = 250\n", '*', Some(250)),
            (b"SIGNAL=#\r\n", '#', None),
            (b"Signal=10\r\nDuration=100\r\n", '*', Some(100)),
            (b"Signal=11\r\nDuration=100\r\n", '#', Some(100)),
            (b"Signal=d\r\n", 'D', None),
            (b"Signal=12\r\n", 'A', None),
            (b"Duration=90\r\nSignal=0\r\n", '0', Some(90)),
            (
                b"  Signal=  7  \r\n  Duration=  40 \r\nVolume=10\r\n",
                '7',
                Some(40),
            ),
        ];
        for &(body, want, ms) in cases {
            let got = parse_dtmf_relay(body).unwrap();
            assert_eq!(
                got.digit,
                digit(want),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(got.duration, ms.map(Duration::from_millis));
        }
    }

    #[test]
    fn dtmf_relay_errors() {
        assert_eq!(
            parse_dtmf_relay(b"Duration=160\r\n"),
            Err(InfoDtmfError::MissingSignal)
        );
        assert_eq!(parse_dtmf_relay(b""), Err(InfoDtmfError::MissingSignal));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=E\r\n"),
            Err(InfoDtmfError::BadSignal(_))
        ));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=16\r\n"),
            Err(InfoDtmfError::BadSignal(_))
        ));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=55\r\n"),
            Err(InfoDtmfError::BadSignal(_))
        ));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=\r\n"),
            Err(InfoDtmfError::BadSignal(_))
        ));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=1\r\nDuration=-5\r\n"),
            Err(InfoDtmfError::BadDuration(_))
        ));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=1\r\nDuration=99999999999999999999\r\n"),
            Err(InfoDtmfError::BadDuration(_))
        ));
        assert_eq!(
            parse_dtmf_relay(b"Signal=\xff\r\n"),
            Err(InfoDtmfError::NotText)
        );
        let big = vec![b'x'; MAX_BODY + 1];
        assert_eq!(
            parse_dtmf_relay(&big),
            Err(InfoDtmfError::TooLarge(MAX_BODY + 1))
        );
        // A Signal line past the line bound is not looked for.
        let mut many = "x\r\n".repeat(MAX_LINES);
        many.push_str("Signal=1\r\n");
        assert_eq!(
            parse_dtmf_relay(many.as_bytes()),
            Err(InfoDtmfError::MissingSignal)
        );
    }

    #[test]
    fn dtmf_bodies() {
        assert_eq!(parse_dtmf(b"5"), Ok(digit('5')));
        assert_eq!(parse_dtmf(b" #\r\n"), Ok(digit('#')));
        assert_eq!(parse_dtmf(b"b"), Ok(digit('B')));
        assert_eq!(parse_dtmf(b"11"), Ok(digit('#')));
        assert!(matches!(parse_dtmf(b""), Err(InfoDtmfError::BadSignal(_))));
        assert!(matches!(
            parse_dtmf(b"12a"),
            Err(InfoDtmfError::BadSignal(_))
        ));
    }

    #[test]
    fn dispatch_by_content_type() {
        assert_eq!(
            parse_info_body("Application/DTMF-Relay", b"Signal=9\r\nDuration=100\r\n"),
            Ok(InfoDtmf {
                digit: digit('9'),
                duration: Some(Duration::from_millis(100))
            })
        );
        assert_eq!(
            parse_info_body("application/dtmf; charset=utf-8", b"*"),
            Ok(InfoDtmf {
                digit: Digit::STAR,
                duration: None
            })
        );
        assert!(matches!(
            parse_info_body("application/sdp", b"v=0"),
            Err(InfoDtmfError::NotDtmf(_))
        ));
    }

    proptest::proptest! {
        /// Any body and content type gives a key or an error, never a panic.
        #[test]
        fn any_body_is_handled(
            body in proptest::collection::vec(0u8..=255, 0..700),
            relay in proptest::bool::ANY,
        ) {
            let ct = if relay { "application/dtmf-relay" } else { "application/dtmf" };
            let _ = parse_info_body(ct, &body);
        }

        #[test]
        fn any_relay_text_is_handled(body in "[Ss]ignal *= *[0-9A-Za-z#*]{0,3}\\r?\\n(Duration=[0-9-]{0,8})?") {
            let _ = parse_dtmf_relay(body.as_bytes());
        }
    }
}
