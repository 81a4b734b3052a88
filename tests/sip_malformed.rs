//! Our own malformed-message corpus (tests/data/malformed, see its README):
//! every file is refused by the parser without panicking, and gets the reply
//! listed in `EXPECTED` (400, 505 or dropped). Oversized inputs are built
//! here rather than stored.

use switchboard::sip::message::*;

fn dir() -> String {
    format!("{}/tests/data/malformed", env!("CARGO_MANIFEST_DIR"))
}

/// `(file, expected status or None for drop)` from `EXPECTED`.
fn expected() -> Vec<(String, Option<u16>)> {
    let text = std::fs::read_to_string(format!("{}/EXPECTED", dir())).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let file = it.next().unwrap().to_owned();
            let reply = match it.next().unwrap() {
                "drop" => None,
                code => Some(code.parse().unwrap()),
            };
            (file, reply)
        })
        .collect()
}

fn check(name: &str, bytes: &[u8], want: Option<u16>) {
    let err = match parse_message(bytes, &Limits::default()) {
        Ok(m) => panic!("{name}: parsed: {m:?}"),
        Err(e) => e,
    };
    assert_eq!(err.response().map(|r| r.status), want, "{name}: {err:?}");
    if let Some(r) = err.response() {
        let text = r.to_bytes();
        assert!(text.starts_with(b"SIP/2.0 "), "{name}");
    }
    // Framing a stream never panics either.
    let _ = frame_stream(bytes, MAX_MESSAGE_BYTES);
}

#[test]
fn corpus_is_listed_and_large_enough() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sip"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = expected().into_iter().map(|(f, _)| f).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert!(files.len() >= 20);
}

#[test]
fn every_file_is_refused_as_expected() {
    for (file, want) in expected() {
        let bytes = std::fs::read(format!("{}/{file}", dir())).unwrap();
        check(&file, &bytes, want);
    }
}

const HEAD: &str = "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKgen\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
From: <sip:alice@atlanta.example.com>;tag=1\r\n\
Call-ID: generated@atlanta.example.com\r\n\
CSeq: 1 OPTIONS\r\n";

#[test]
fn too_many_headers() {
    let mut text = HEAD.to_owned();
    for i in 0..(MAX_HEADERS + 10) {
        text.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    text.push_str("\r\n");
    let err = parse_message(text.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooManyHeaders);
    assert_eq!(err.response().map(|r| r.status), Some(400));
}

#[test]
fn line_too_long() {
    let text = format!("{HEAD}Subject: {}\r\n\r\n", "a".repeat(MAX_LINE_BYTES + 1));
    let err = parse_message(text.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::LineTooLong);
    assert_eq!(err.response().map(|r| r.status), Some(400));
}

#[test]
fn message_too_large() {
    let body = "x".repeat(MAX_MESSAGE_BYTES);
    let text = format!("{HEAD}Content-Length: {}\r\n\r\n{body}", body.len());
    let err = parse_message(text.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooLarge);
    assert!(err.response().is_none());
    assert_eq!(
        frame_stream(text.as_bytes(), MAX_MESSAGE_BYTES),
        Err(FramingError::TooLarge(MAX_MESSAGE_BYTES))
    );
}

#[test]
fn every_prefix_of_every_file_is_safe() {
    for (file, _) in expected() {
        let bytes = std::fs::read(format!("{}/{file}", dir())).unwrap();
        for end in 0..bytes.len() {
            let _ = parse_message(&bytes[..end], &Limits::default());
            let _ = frame_stream(&bytes[..end], MAX_MESSAGE_BYTES);
        }
    }
}
