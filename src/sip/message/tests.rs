//! Parser, serializer and reply tests on raw SIP text (RFC 3261 §7, §8.2.6,
//! §18.3, §20, §25).

use super::*;

/// `\n` → CRLF, so the literals stay readable.
fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn parse(s: &str) -> Result<Message, ParseError> {
    parse_message(&crlf(s), &Limits::default())
}

fn req(s: &str) -> Request {
    match parse(s) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

const OPTIONS: &str = "OPTIONS sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 63104 OPTIONS
Content-Length: 0

";

/// §7.1 request line, §8.1.1 mandatory headers and the typed views.
#[test]
fn parses_a_request() {
    let r = req(OPTIONS);
    assert_eq!(r.method, Method::Options);
    assert_eq!(r.uri.to_string(), "sip:bob@biloxi.example.com");
    let h = &r.headers;
    assert_eq!(h.len(), 7);
    let via = h.top_via().unwrap();
    assert_eq!(
        (via.transport.as_str(), via.host.as_str(), via.port),
        ("UDP", "pc33.atlanta.example.com", None)
    );
    assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(h.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(h.to().unwrap().display.as_deref(), Some("Bob"));
    assert_eq!(
        h.call_id().unwrap(),
        "a84b4c76e66710@pc33.atlanta.example.com"
    );
    assert_eq!(
        h.cseq().unwrap(),
        CSeq {
            seq: 63104,
            method: Method::Options
        }
    );
    assert_eq!(h.max_forwards().unwrap(), Some(70));
    assert_eq!(h.content_length().unwrap(), Some(0));
    assert!(r.body.is_empty());
}

/// §7.5 leading CRLFs, §7.3.1 folding and LWS around `:`, §7.3.3 compact
/// forms, §7.3.1 several values on one line kept as one entry.
#[test]
fn lexical_forms() {
    let r = req("\n\nINVITE sip:b@example.com SIP/2.0
v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070
  ;branch=z9hG4bK2
VIA  : SIP / 2.0 / udp c.example.com
f: <sip:a@example.com>;tag=1
t:
 sip:b@example.com
i: abc
CSeq: 1
   INVITE
m: \"A, \\\"B\\\"\" <sip:a@h1>;expires=5, sip:a@h2;q=0.5
c: Application/SDP; charset=x
k: 100rel, timer
X-Thing: raw ;; value
l: 4

v=0
");
    let h = &r.headers;
    assert_eq!(h.get_all(&HeaderName::Via).count(), 2);
    let vias = h.via().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].sent_by(), "b.example.com:5070");
    assert_eq!(vias[1].branch(), Some("z9hG4bK2"));
    assert_eq!(vias[2].transport, "UDP");
    assert_eq!(h.to().unwrap().uri.user.as_deref(), Some("b"));
    assert_eq!(h.cseq().unwrap().method, Method::Invite);
    let contacts = h.contacts().unwrap();
    assert_eq!(contacts.len(), 2);
    match &contacts[0] {
        ContactValue::Addr(a) => {
            assert_eq!(a.display.as_deref(), Some("A, \"B\""));
            assert_eq!(a.params.get("expires"), Some(Some("5")));
        }
        ContactValue::Star => panic!("star"),
    }
    // §20.10: in the addr-spec form the parameters are header parameters.
    match &contacts[1] {
        ContactValue::Addr(a) => {
            assert_eq!(a.params.get("q"), Some(Some("0.5")));
            assert!(a.uri.params.0.is_empty());
        }
        ContactValue::Star => panic!("star"),
    }
    assert_eq!(h.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(h.values(&HeaderName::Supported), vec!["100rel", "timer"]);
    assert_eq!(
        h.get(&HeaderName::Other("x-thing".into())),
        Some("raw ;; value")
    );
    assert_eq!(r.body, b"v=0\r");
}

/// §18.3: bytes after the declared body of a datagram are ignored; without
/// Content-Length the body is the rest of the datagram.
#[test]
fn body_framing() {
    let mut text = OPTIONS.replace("Content-Length: 0", "Content-Length: 3");
    text.push_str("abcTRAILING");
    assert_eq!(req(&text).body, b"abc");
    let text = OPTIONS.replace("Content-Length: 0\n", "") + "xyz";
    assert_eq!(req(&text).body, b"xyz");
}

/// §7.2 status line, empty reason phrase allowed.
#[test]
fn parses_responses() {
    let text = "SIP/2.0 180 Ringing
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1
From: <sip:a@example.com>;tag=1
To: <sip:b@example.com>;tag=2
Call-ID: x
CSeq: 1 INVITE

";
    match parse(text).unwrap() {
        Message::Response(r) => {
            assert_eq!((r.status, r.reason.as_str()), (180, "Ringing"));
            assert!(r.is_provisional());
        }
        other => panic!("{other:?}"),
    }
    let text = text.replace("180 Ringing", "100 ");
    assert!(matches!(parse(&text), Ok(Message::Response(r)) if r.reason.is_empty()));
}

/// §7.1: methods are case-sensitive; unknown ones are kept.
#[test]
fn methods() {
    for (tok, m) in [
        ("INVITE", Method::Invite),
        ("invite", Method::Other("invite".into())),
        ("PUBLISH", Method::Publish),
        ("FOO", Method::Other("FOO".into())),
    ] {
        assert_eq!(Method::from_token(tok), m);
        assert_eq!(m.as_str(), tok);
    }
    let text = OPTIONS.replace("OPTIONS", "FOO");
    assert_eq!(req(&text).method, Method::Other("FOO".into()));
}

/// Errors and whether a reply is possible (§8.1.1, §8.2.2, §20, §21.5.21).
#[test]
fn errors_table() {
    use ParseErrorKind as K;
    let cases: Vec<(String, K, Option<u16>)> = vec![
        (
            OPTIONS.replace("SIP/2.0\n", "SIP/3.0\n"),
            K::BadVersion,
            Some(505),
        ),
        (
            OPTIONS.replace("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\n", ""),
            K::MissingHeader("Call-ID"),
            None,
        ),
        (
            OPTIONS.replace(
                "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\n",
                "",
            ),
            K::MissingHeader("Via"),
            None,
        ),
        (
            OPTIONS.replace("To: Bob", "From: X <sip:x@y>\nTo: Bob"),
            K::DuplicateHeader("From"),
            Some(400),
        ),
        (
            OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 70\nMax-Forwards: 69"),
            K::DuplicateHeader("Max-Forwards"),
            Some(400),
        ),
        (
            OPTIONS.replace("Content-Length: 0", "Content-Length: 0\nl: 0"),
            K::DuplicateHeader("Content-Length"),
            Some(400),
        ),
        (
            OPTIONS.replace("63104 OPTIONS", "63104 INVITE"),
            K::CSeqMethodMismatch,
            Some(400),
        ),
        (
            OPTIONS.replace("63104 OPTIONS", "2147483648 OPTIONS"),
            K::BadHeader("CSeq"),
            Some(400),
        ),
        (
            OPTIONS.replace("63104 OPTIONS", "x OPTIONS"),
            K::BadHeader("CSeq"),
            Some(400),
        ),
        (
            OPTIONS.replace("Content-Length: 0", "Content-Length: 10"),
            K::BadContentLength,
            Some(400),
        ),
        (
            OPTIONS.replace("Content-Length: 0", "Content-Length: -1"),
            K::BadContentLength,
            Some(400),
        ),
        (
            OPTIONS.replace("Content-Length: 0", "Content-Length: ten"),
            K::BadContentLength,
            Some(400),
        ),
        (
            OPTIONS.replace(
                "sip:bob@biloxi.example.com SIP",
                "<sip:bob@biloxi.example.com> SIP",
            ),
            K::BadRequestUri,
            Some(400),
        ),
        (
            OPTIONS.replace(
                "sip:bob@biloxi.example.com SIP",
                "sip:bob@biloxi.example.com; lr SIP",
            ),
            K::BadRequestUri,
            Some(400),
        ),
        (
            OPTIONS.replace(
                "sip:bob@biloxi.example.com SIP",
                "sip:bob@biloxi.example.com?Route=x SIP",
            ),
            K::BadRequestUri,
            Some(400),
        ),
        (
            OPTIONS.replace("OPTIONS sip", "OPTIONS  sip"),
            K::BadStartLine,
            Some(400),
        ),
        (
            OPTIONS.replace("SIP/2.0\n", "SIP/2.0 \n"),
            K::BadStartLine,
            Some(400),
        ),
        (
            OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 256"),
            K::BadHeader("Max-Forwards"),
            Some(400),
        ),
        (
            OPTIONS.replace("Max-Forwards: 70", "Max-Forwards 70"),
            K::BadHeaderLine,
            Some(400),
        ),
        (
            OPTIONS.replace("Max-Forwards: 70", "Max Forwards: 70"),
            K::BadHeaderLine,
            Some(400),
        ),
        (
            OPTIONS.replace(";branch=z9hG4bK776asdhds", ";;"),
            K::BadHeader("Via"),
            Some(400),
        ),
        (
            OPTIONS.replace("pc33.atlanta.example.com;branch", "bad host;branch"),
            K::BadHeader("Via"),
            None,
        ),
        (
            OPTIONS.replace("To: Bob <sip", "To: \"Bob <sip"),
            K::BadHeader("To"),
            Some(400),
        ),
        (
            OPTIONS.replace("To: Bob", "To: Bob, Jr"),
            K::BadHeader("To"),
            Some(400),
        ),
        (OPTIONS.replace("\n\n", "\n"), K::BadHeaderLine, Some(400)),
        (
            "SIP/2.0 99 Odd\nVia: SIP/2.0/UDP h\n\n".into(),
            K::BadStartLine,
            None,
        ),
        (
            "SIP/2.0 700 Odd\nVia: SIP/2.0/UDP h\n\n".into(),
            K::BadStartLine,
            None,
        ),
        (
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP h\n\n".into(),
            K::MissingHeader("From"),
            None,
        ),
        ("\n\n".into(), K::BadStartLine, None),
    ];
    for (text, kind, status) in cases {
        let err = parse(&text).expect_err(&text);
        assert_eq!(err.kind, kind, "{text}");
        assert_eq!(err.response().map(|r| r.status), status, "{text}");
    }
}

/// The 400's phrase names the problem and the copied headers are raw.
#[test]
fn error_reply_text() {
    let text = OPTIONS.replace(
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\n",
        "Call-ID: x\nCall-ID: y\n",
    );
    let err = parse(&text).unwrap_err();
    let reply = err.response().unwrap();
    let bytes = String::from_utf8(reply.to_bytes()).unwrap();
    assert!(
        bytes.starts_with("SIP/2.0 400 Bad Request (Duplicate Call-ID header)\r\n"),
        "{bytes}"
    );
    assert!(bytes.contains("\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"));
    assert!(bytes.contains("\r\nCall-ID: x\r\n"));
    assert!(bytes.ends_with("Content-Length: 0\r\n\r\n"));
}

/// §7.3.1 bounds: sizes, header count, line length.
#[test]
fn limits() {
    let small = Limits {
        max_message: 100,
        ..Limits::default()
    };
    assert_eq!(
        parse_message(&crlf(OPTIONS), &small).unwrap_err().kind,
        ParseErrorKind::TooLarge
    );
    let few = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    let err = parse_message(&crlf(OPTIONS), &few).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooManyHeaders);
    let short = Limits {
        max_line: 40,
        ..Limits::default()
    };
    assert_eq!(
        parse_message(&crlf(OPTIONS), &short).unwrap_err().kind,
        ParseErrorKind::LineTooLong
    );
}

/// Control bytes and non-UTF-8 in header values.
#[test]
fn bytes_in_values() {
    let mut bad = crlf(OPTIONS);
    let at = bad.windows(5).position(|w| w == b"Alice").unwrap();
    bad[at] = 0xff;
    assert_eq!(
        parse_message(&bad, &Limits::default()).unwrap_err().kind,
        ParseErrorKind::NotText
    );
    bad[at] = 0;
    assert_eq!(
        parse_message(&bad, &Limits::default()).unwrap_err().kind,
        ParseErrorKind::BadHeaderLine
    );
    // A NUL as a quoted-pair is legal (RFC 4475 §3.1.1.2).
    let ok = OPTIONS.replace("To: Bob", "To: \"B\\\0b\"");
    assert_eq!(
        req(&ok).headers.to().unwrap().display.as_deref(),
        Some("B\0b")
    );
}

/// §7: serializer writes canonical names and its own Content-Length last.
#[test]
fn serializes() {
    let mut r = req(&OPTIONS.replace("To:", "t:"));
    r.body = b"hello".to_vec();
    let out = String::from_utf8(r.to_bytes()).unwrap();
    assert!(out.starts_with("OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP"));
    assert!(out.contains("\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n"));
    assert!(
        out.ends_with("CSeq: 63104 OPTIONS\r\nContent-Length: 5\r\n\r\nhello"),
        "{out}"
    );
    assert_eq!(out.matches("Content-Length").count(), 1);
    let again = parse_message(out.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        again.headers().get(&HeaderName::To),
        r.headers.get(&HeaderName::To)
    );
}

/// §8.2.6.2 copies; §12.1.1 Record-Route for 101–299 to INVITE.
#[test]
fn response_for_request() {
    let text = "INVITE sip:b@example.com SIP/2.0
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/UDP p0.example.com;branch=z9hG4bK0
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa
Record-Route: <sip:p1.example.com;lr>
From: <sip:a@example.com>;tag=1
To: <sip:b@example.com>
Call-ID: c1
CSeq: 7 INVITE
Max-Forwards: 69
Content-Length: 0

";
    let r = req(text);
    let resp = Response::for_request(&r, 180, "Ringing");
    let names: Vec<&str> = resp.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Via",
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Record-Route"
        ]
    );
    assert_eq!(resp.headers.via().unwrap().len(), 3);
    assert!(
        Response::for_request(&r, 100, "Trying")
            .headers
            .get(&HeaderName::RecordRoute)
            .is_none()
    );
    assert!(
        Response::for_request(&r, 486, "Busy")
            .headers
            .get(&HeaderName::RecordRoute)
            .is_none()
    );
    let bytes = resp.to_bytes();
    assert!(bytes.starts_with(b"SIP/2.0 180 Ringing\r\n"));
    assert!(matches!(
        parse_message(&bytes, &Limits::default()),
        Ok(Message::Response(_))
    ));
}

/// §7.3.3 compact names and case-insensitive matching.
#[test]
fn header_names() {
    for (text, name, canon) in [
        ("i", HeaderName::CallId, "Call-ID"),
        ("M", HeaderName::Contact, "Contact"),
        ("l", HeaderName::ContentLength, "Content-Length"),
        ("cseq", HeaderName::CSeq, "CSeq"),
        (
            "www-authenticate",
            HeaderName::WwwAuthenticate,
            "WWW-Authenticate",
        ),
        ("x", HeaderName::SessionExpires, "Session-Expires"),
        (
            "u",
            HeaderName::Other("Allow-Events".into()),
            "Allow-Events",
        ),
        ("X-Custom", HeaderName::Other("x-custom".into()), "X-Custom"),
    ] {
        let n = HeaderName::from_name(text);
        assert_eq!(n, name, "{text}");
        assert_eq!(n.as_str(), canon);
    }
}

/// Display forms (§20.10 name-addr always with `<>`, §20.42 Via).
#[test]
fn displays() {
    let a = NameAddr::parse("sip:a@example.com;tag=9").unwrap();
    assert_eq!(a.to_string(), "<sip:a@example.com>;tag=9");
    let a = NameAddr::parse("\"Q \\\"x\\\"\"<sip:a@example.com;lr>").unwrap();
    assert_eq!(a.to_string(), "\"Q \\\"x\\\"\" <sip:a@example.com;lr>");
    assert_eq!(NameAddr::parse(&a.to_string()).unwrap(), a);
    let v = Via::parse("SIP/2.0/tcp Host.example.com:5061 ;branch=z9hG4bKx;rport").unwrap();
    assert_eq!(
        v.to_string(),
        "SIP/2.0/TCP host.example.com:5061;branch=z9hG4bKx;rport"
    );
    assert!(Via::parse("SIP/2.0/UDP").is_err());
    assert!(Via::parse("SIP/2.0/UDP host:x").is_err());
    assert!(Via::parse("SIP/2.0 UDP host").is_err());
    assert_eq!(CSeq::parse("0009 INVITE").unwrap().to_string(), "9 INVITE");
    assert!(CSeq::parse("1 INVITE extra").is_err());
}
