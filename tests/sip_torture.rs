//! The RFC 4475 torture messages (tests/data/sip-torture, see its INDEX.md):
//! every file is classified here with what the parser must do with it.
//!
//! Where RFC 4475 allows a liberal reading (lwsstart, trws, escruri,
//! regbadct, badaspec, baddn, quotbal, ltgtruri, lwsruri) we reject with
//! 400: a B2BUA gains nothing from guessing, and refusing early keeps the
//! broken form from reaching a dialog. Choices that accept or drop instead
//! are noted next to the file.

use switchboard::sip::message::*;

/// What a file must give.
enum Expect {
    /// Parses; the function checks the key fields.
    Parse(fn(&Message)),
    /// Refused; `Some(status)` is the reply, `None` means dropped.
    Reject(Option<u16>),
}

use Expect::{Parse, Reject};

fn req(m: &Message) -> &Request {
    match m {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

fn resp(m: &Message) -> &Response {
    match m {
        Message::Response(r) => r,
        Message::Request(_) => panic!("expected a response"),
    }
}

fn addr(c: &ContactValue) -> &NameAddr {
    match c {
        ContactValue::Addr(a) => a,
        ContactValue::Star => panic!("unexpected *"),
    }
}

fn declared_length(r: &Request) -> usize {
    r.headers.content_length().unwrap().unwrap()
}

const CASES: &[(&str, Expect)] = &[
    // §3.1.1 valid messages.
    (
        "wsinv.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.method, Method::Invite);
            let h = &r.headers;
            assert_eq!(h.via().unwrap().len(), 3);
            assert_eq!(h.via().unwrap()[1].transport, "TCP");
            assert_eq!(h.via().unwrap()[2].branch(), Some("z9hG4bK30239"));
            assert_eq!(h.max_forwards().unwrap(), Some(68));
            assert_eq!(h.cseq().unwrap().seq, 9);
            assert_eq!(h.to().unwrap().tag(), Some("1918181833n"));
            let from = h.from().unwrap();
            assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
            assert_eq!(from.tag(), Some("98asjd8"));
            assert_eq!(h.get(&HeaderName::Subject), Some(""));
            let c = h.contacts().unwrap();
            assert_eq!(addr(&c[0]).params.get("q"), Some(Some("0.33")));
            assert_eq!(addr(&c[0]).params.get("newparam"), Some(Some("newvalue")));
            assert_eq!(h.routes().unwrap().len(), 1);
            assert_eq!(r.body.len(), 150);
        }),
    ),
    (
        "intmeth.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(
                r.method,
                Method::Other("!interesting-Method0123456789_*+`.%indeed'~".into())
            );
            let to = r.headers.to().unwrap();
            assert!(to.display.unwrap().contains('\0'));
            assert!(r.headers.call_id().unwrap().starts_with("intmeth.word%ZK"));
        }),
    ),
    (
        "esc01.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.uri.user.as_deref(), Some("sips%3Auser%40example.com"));
        }),
    ),
    (
        "escnull.dat",
        Parse(|m| {
            let c = req(m).headers.contacts().unwrap();
            assert_eq!(c.len(), 2);
            assert_eq!(addr(&c[1]).uri.user.as_deref(), Some("%00%00"));
        }),
    ),
    (
        "esc02.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));
            assert_eq!(r.headers.contacts().unwrap().len(), 2);
            assert_eq!(r.headers.from().unwrap().display.as_deref(), Some("%Z%45"));
        }),
    ),
    (
        "lwsdisp.dat",
        Parse(|m| {
            let from = req(m).headers.from().unwrap();
            assert_eq!(from.display.as_deref(), Some("caller"));
        }),
    ),
    (
        "longreq.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.headers.via().unwrap().len(), 34);
            let to = r.headers.to().unwrap();
            assert_eq!(to.display.unwrap().len(), 103);
            assert_eq!(to.uri.params.0.len(), 3);
            assert!(r.headers.from().unwrap().tag().unwrap().len() > 150);
            assert!(r.headers.call_id().unwrap().ends_with("reallylongcallid"));
            assert_eq!(r.body.len(), declared_length(r));
        }),
    ),
    // §18.3: the trailing INVITE in the datagram is ignored.
    (
        "dblreq.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.method, Method::Register);
            assert!(r.body.is_empty());
        }),
    ),
    (
        "semiuri.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.uri.user.as_deref(), Some("user;par=u%40example.net"));
            assert_eq!(r.uri.host, "example.com");
            assert_eq!(r.headers.values(&HeaderName::Accept).len(), 6);
        }),
    ),
    (
        "transports.dat",
        Parse(|m| {
            let vias = req(m).headers.via().unwrap();
            let t: Vec<&str> = vias.iter().map(|v| v.transport.as_str()).collect();
            assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
        }),
    ),
    (
        "mpart01.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.body.len(), declared_length(r));
            assert!(r.body.contains(&0));
        }),
    ),
    (
        "unreason.dat",
        Parse(|m| {
            let r = resp(m);
            assert_eq!(r.status, 200);
            assert!(!r.reason.is_ascii());
        }),
    ),
    (
        "noreason.dat",
        Parse(|m| {
            let r = resp(m);
            assert_eq!((r.status, r.reason.as_str()), (100, ""));
        }),
    ),
    // §3.1.2 invalid messages.
    ("badinv01.dat", Reject(Some(400))),
    // Over UDP: 400; over TCP frame_stream waits (see `stream_framing`).
    ("clerr.dat", Reject(Some(400))),
    ("ncl.dat", Reject(Some(400))),
    ("scalar02.dat", Reject(Some(400))),
    ("scalarlg.dat", Reject(None)),
    ("quotbal.dat", Reject(Some(400))),
    ("ltgtruri.dat", Reject(Some(400))),
    ("lwsruri.dat", Reject(Some(400))),
    ("lwsstart.dat", Reject(Some(400))),
    ("trws.dat", Reject(Some(400))),
    ("escruri.dat", Reject(Some(400))),
    // Accepted: the Date header is never interpreted by the switch, so a
    // non-GMT zone costs nothing (RFC 4475 §3.1.2.12 allows ignoring it).
    (
        "baddate.dat",
        Parse(|m| assert!(req(m).headers.get(&HeaderName::Date).is_some())),
    ),
    ("regbadct.dat", Reject(Some(400))),
    ("badaspec.dat", Reject(Some(400))),
    // This file also lacks the empty line after the headers.
    ("baddn.dat", Reject(Some(400))),
    ("badvers.dat", Reject(Some(505))),
    ("mismatch01.dat", Reject(Some(400))),
    // 400 rather than 501: the parser cannot know which methods the UAS
    // implements, and RFC 4475 §3.1.2.18 accepts 400.
    ("mismatch02.dat", Reject(Some(400))),
    ("bigcode.dat", Reject(None)),
    // §3.2 transaction layer: the empty branch after the cookie parses; the
    // transaction layer decides.
    (
        "badbranch.dat",
        Parse(|m| {
            let via = req(m).headers.top_via().unwrap();
            assert_eq!(via.branch(), Some("z9hG4bK"));
        }),
    ),
    // §3.3 application layer.
    // No Call-ID: no reply can be matched to it, so it is dropped.
    ("insuf.dat", Reject(None)),
    (
        "unkscm.dat",
        Parse(|m| {
            let r = req(m);
            assert_eq!(r.uri.scheme, Scheme::Other("nobodyKnowsThisScheme".into()));
        }),
    ),
    (
        "novelsc.dat",
        Parse(|m| {
            assert_eq!(req(m).uri.scheme, Scheme::Other("soap.beep".into()));
        }),
    ),
    (
        "unksm2.dat",
        Parse(|m| {
            let h = &req(m).headers;
            assert_eq!(h.to().unwrap().uri.scheme, Scheme::Other("isbn".into()));
            assert_eq!(h.from().unwrap().uri.scheme, Scheme::Other("http".into()));
        }),
    ),
    (
        "bext01.dat",
        Parse(|m| {
            let h = &req(m).headers;
            assert!(!h.values(&HeaderName::Require).is_empty());
            assert!(!h.values(&HeaderName::ProxyRequire).is_empty());
        }),
    ),
    (
        "invut.dat",
        Parse(|m| {
            let h = &req(m).headers;
            assert_eq!(
                h.content_type().as_deref(),
                Some("application/unknownformat")
            );
        }),
    ),
    (
        "regaut01.dat",
        Parse(|m| {
            assert!(req(m).headers.get(&HeaderName::Authorization).is_some());
        }),
    ),
    ("multi01.dat", Reject(Some(400))),
    ("mcl01.dat", Reject(Some(400))),
    (
        "bcast.dat",
        Parse(|m| {
            let vias = resp(m).headers.via().unwrap();
            assert_eq!(vias[1].host, "255.255.255.255");
        }),
    ),
    (
        "zeromf.dat",
        Parse(|m| assert_eq!(req(m).headers.max_forwards().unwrap(), Some(0))),
    ),
    (
        "cparam01.dat",
        Parse(|m| {
            let c = req(m).headers.contacts().unwrap();
            assert!(addr(&c[0]).params.has("unknownparam"));
            assert!(!addr(&c[0]).uri.params.has("unknownparam"));
        }),
    ),
    (
        "cparam02.dat",
        Parse(|m| {
            let c = req(m).headers.contacts().unwrap();
            assert!(addr(&c[0]).uri.params.has("unknownparam"));
            assert!(!addr(&c[0]).params.has("unknownparam"));
        }),
    ),
    (
        "regescrt.dat",
        Parse(|m| {
            let c = req(m).headers.contacts().unwrap();
            assert_eq!(
                addr(&c[0]).uri.headers.as_deref(),
                Some("Route=%3Csip:sip.example.com%3E")
            );
        }),
    ),
    (
        "sdp01.dat",
        Parse(|m| {
            let h = &req(m).headers;
            assert_eq!(h.values(&HeaderName::Accept), ["text/nobodyKnowsThis"]);
        }),
    ),
    // §3.4: RFC 2543 style, no Content-Length: the body is the rest.
    (
        "inv2543.dat",
        Parse(|m| {
            let r = req(m);
            assert!(r.headers.content_length().unwrap().is_none());
            assert!(r.body.starts_with(b"v=0"));
        }),
    ),
    // Not one of the 49: no SIP version in the request line and no Via, so
    // nothing can be answered.
    ("test.dat", Reject(None)),
];

/// Header lines other than Content-Length (the serializer writes its own).
fn non_length(m: &Message) -> Vec<(HeaderName, String)> {
    m.headers()
        .iter()
        .filter(|(n, _)| **n != HeaderName::ContentLength)
        .map(|(n, v)| (n.clone(), v.to_owned()))
        .collect()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/sip-torture/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_file_is_classified() {
    let dir = format!("{}/tests/data/sip-torture", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert_eq!(files.len(), 50);
}

#[test]
fn torture_messages() {
    for (name, expect) in CASES {
        let bytes = read(name);
        let result = parse_message(&bytes, &Limits::default());
        match (expect, result) {
            (Parse(check), Ok(msg)) => {
                check(&msg);
                // What we accept, we can write out and read back.
                let again = parse_message(&msg.to_bytes(), &Limits::default())
                    .unwrap_or_else(|e| panic!("{name}: reparse: {e}"));
                assert_eq!(non_length(&again), non_length(&msg), "{name}");
            }
            (Parse(_), Err(e)) => panic!("{name}: should parse, got {e:?}"),
            (Reject(_), Ok(_)) => panic!("{name}: should be rejected"),
            (Reject(status), Err(e)) => {
                let reply = e.response();
                assert_eq!(reply.map(|r| r.status), *status, "{name}: {e:?}");
                if let Some(r) = reply {
                    let phrase_ok = match r.status {
                        505 => r.reason == "Version Not Supported",
                        _ => r.reason == format!("Bad Request ({})", e.kind),
                    };
                    assert!(phrase_ok, "{name}: {}", r.reason);
                    // Copied as received (§8.2.6.2), even when malformed.
                    assert!(r.headers.get(&HeaderName::CallId).is_some(), "{name}");
                    assert!(r.headers.get(&HeaderName::CSeq).is_some(), "{name}");
                }
            }
        }
    }
}

/// The same files over a stream (RFC 3261 §18.3, RFC 4475 §3.1.2.2/3).
#[test]
fn stream_framing() {
    let max = MAX_MESSAGE_BYTES;
    let cases: &[(&str, Result<Option<()>, FramingError>)] = &[
        ("clerr.dat", Ok(None)),
        ("ncl.dat", Err(FramingError::BadContentLength)),
        ("mcl01.dat", Err(FramingError::BadContentLength)),
        ("inv2543.dat", Err(FramingError::MissingContentLength)),
        ("wsinv.dat", Ok(Some(()))),
    ];
    for (name, want) in cases {
        let got = frame_stream(&read(name), max).map(|f| f.map(|_| ()));
        assert_eq!(&got, want, "{name}");
    }
    let dbl = read("dblreq.dat");
    match frame_stream(&dbl, max) {
        Ok(Some(Frame::Message { len })) => assert!(len < dbl.len()),
        other => panic!("dblreq: {other:?}"),
    }
}
