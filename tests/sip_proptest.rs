//! Property tests for the SIP message layer (RFC 3261 §7, §18.3, §25):
//! generated requests and responses survive serialize → parse unchanged,
//! header names in any legal form (compact, any case) map to the same
//! header, and no input — random or a mutated valid message — makes the
//! parser or the stream framer panic.

use proptest::prelude::*;
use switchboard::sip::message::*;

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,5}){0,2}",
        (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::1]".to_owned()),
    ]
}

fn uri_params() -> impl Strategy<Value = Params> {
    prop::collection::vec(
        (
            "[a-z][a-z0-9-]{0,6}",
            prop::option::of("[a-zA-Z0-9.-]{1,8}"),
        ),
        0..3,
    )
    .prop_map(Params)
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        prop::bool::ANY,
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,-]{1,10}(%[0-9A-F]{2})?"),
        host(),
        prop::option::of(1u16..),
        uri_params(),
    )
        .prop_map(|(secure, user, host, port, params)| {
            let mut u = Uri::sip(user.as_deref(), &host, port);
            if secure {
                u.scheme = Scheme::Sips;
            }
            u.params = params;
            u
        })
}

fn header_params() -> impl Strategy<Value = Params> {
    prop::collection::vec(
        (
            "[a-z][a-z0-9-]{0,6}",
            prop::option::of(prop_oneof!["[a-zA-Z0-9.-]{1,8}", "\"[a-z ;,]{0,6}\""]),
        ),
        0..3,
    )
    .prop_map(Params)
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (prop::option::of("[ -~]{0,12}"), uri(), header_params()).prop_map(|(display, uri, params)| {
        NameAddr {
            display,
            uri,
            params,
        }
    })
}

fn via() -> impl Strategy<Value = Via> {
    (
        prop::sample::select(vec!["UDP", "TCP", "TLS", "WS"]),
        host(),
        prop::option::of(1u16..),
        "[a-zA-Z0-9]{1,12}",
        prop::bool::ANY,
    )
        .prop_map(|(t, host, port, branch, rport)| {
            let mut params = Params::default();
            params.set("branch", Some(&format!("z9hG4bK{branch}")));
            if rport {
                params.set("rport", None);
            }
            Via {
                transport: t.to_owned(),
                host,
                port,
                params,
            }
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Options,
            Method::Register,
            Method::Info,
            Method::Message,
        ]),
        "[A-Z][A-Za-z]{2,8}".prop_map(|t| Method::from_token(&t)),
    ]
}

/// Extra opaque headers: name, then a value without controls or edge spaces.
fn extras() -> impl Strategy<Value = Vec<(HeaderName, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                Just(HeaderName::Subject),
                Just(HeaderName::Supported),
                Just(HeaderName::UserAgent),
                Just(HeaderName::ContentType),
                "X-[A-Za-z]{1,8}".prop_map(|n| HeaderName::from_name(&n)),
            ],
            "([!-~]([ -~]{0,30}[!-~])?)?",
        ),
        0..5,
    )
}

/// The common header set of a request or response.
#[derive(Debug, Clone)]
struct Common {
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    seq: u32,
    contact: Option<NameAddr>,
    extras: Vec<(HeaderName, String)>,
    body: Vec<u8>,
}

fn common() -> impl Strategy<Value = Common> {
    (
        prop::collection::vec(via(), 1..4),
        name_addr(),
        name_addr(),
        "[a-zA-Z0-9.@-]{1,20}",
        0u32..(1 << 31),
        prop::option::of(name_addr()),
        extras(),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(vias, from, to, call_id, seq, contact, extras, body)| Common {
                vias,
                from,
                to,
                call_id,
                seq,
                contact,
                extras,
                body,
            },
        )
}

fn headers_of(c: &Common, method: &Method) -> Headers {
    let mut h = Headers::new();
    // Several Vias on one line, then the rest on their own lines.
    let (first, rest) = c.vias.split_at(1.min(c.vias.len()));
    let joined: Vec<String> = first
        .iter()
        .chain(rest.iter().take(1))
        .map(|v| v.to_string())
        .collect();
    h.push(HeaderName::Via, joined.join(", "));
    for v in rest.iter().skip(1) {
        h.push(HeaderName::Via, v.to_string());
    }
    h.push(HeaderName::MaxForwards, "70");
    h.push(HeaderName::From, c.from.to_string());
    h.push(HeaderName::To, c.to.to_string());
    h.push(HeaderName::CallId, c.call_id.clone());
    h.push(HeaderName::CSeq, format!("{} {}", c.seq, method));
    if let Some(ct) = &c.contact {
        h.push(HeaderName::Contact, ct.to_string());
    }
    for (n, v) in &c.extras {
        h.push(n.clone(), v.clone());
    }
    h
}

/// The parsed headers without the Content-Length the serializer adds.
fn without_length(h: &Headers) -> Headers {
    let mut h = h.clone();
    h.remove(&HeaderName::ContentLength);
    h
}

fn check_typed(h: &Headers, c: &Common, method: &Method) {
    assert_eq!(h.via().unwrap(), c.vias);
    assert_eq!(h.from().unwrap(), c.from);
    assert_eq!(h.to().unwrap(), c.to);
    assert_eq!(h.call_id().unwrap(), c.call_id);
    assert_eq!(
        h.cseq().unwrap(),
        CSeq {
            seq: c.seq,
            method: method.clone()
        }
    );
    assert_eq!(h.content_length().unwrap(), Some(c.body.len()));
    let contacts = h.contacts().unwrap();
    assert_eq!(
        contacts,
        c.contact
            .iter()
            .cloned()
            .map(ContactValue::Addr)
            .collect::<Vec<_>>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// §7.1 / §7.3: what we write, we read back identically.
    #[test]
    fn request_round_trip(method in method(), uri in uri(), c in common()) {
        let req = Request { method: method.clone(), uri, headers: headers_of(&c, &method), body: c.body.clone() };
        let bytes = req.to_bytes();
        prop_assert_eq!(frame_stream(&bytes, MAX_MESSAGE_BYTES), Ok(Some(Frame::Message { len: bytes.len() })));
        let parsed = match parse_message(&bytes, &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}\n{}", String::from_utf8_lossy(&bytes)),
        };
        check_typed(&parsed.headers, &c, &method);
        let parsed = Request { headers: without_length(&parsed.headers), ..parsed };
        prop_assert_eq!(parsed, req);
    }

    /// §7.2: responses too.
    #[test]
    fn response_round_trip(status in 100u16..=699, reason in "[ -~]{0,20}", method in method(), c in common()) {
        let resp = Response { status, reason, headers: headers_of(&c, &method), body: c.body.clone() };
        let bytes = resp.to_bytes();
        let parsed = match parse_message(&bytes, &Limits::default()) {
            Ok(Message::Response(r)) => r,
            other => panic!("{other:?}\n{}", String::from_utf8_lossy(&bytes)),
        };
        check_typed(&parsed.headers, &c, &method);
        let parsed = Response { headers: without_length(&parsed.headers), ..parsed };
        prop_assert_eq!(parsed, resp);
    }

    /// §7.3.3 / §7.3.1: compact and odd-case names, LWS around the colon and
    /// folded values all read as the canonical header.
    #[test]
    fn header_name_forms(forms in prop::collection::vec((0usize..8, any::<bool>(), any::<bool>(), any::<bool>()), 1..8)) {
        const NAMES: [(&str, &str, &str); 8] = [
            ("Call-ID", "i", "c1@h"),
            ("Contact", "m", "<sip:a@h>"),
            ("Subject", "s", "hi there"),
            ("Supported", "k", "timer"),
            ("Event", "o", "presence"),
            ("Refer-To", "r", "<sip:b@h>"),
            ("Session-Expires", "x", "1800"),
            ("Content-Encoding", "e", "gzip"),
        ];
        let mut text = String::from("OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCSeq: 1 OPTIONS\r\n");
        let mut want = Vec::new();
        let mut seen_call_id = false;
        for (i, compact, upper, fold) in forms {
            let (long, short, value) = NAMES[i];
            if long == "Call-ID" {
                if seen_call_id { continue; }
                seen_call_id = true;
            }
            let mut name = if compact { short.to_owned() } else { long.to_owned() };
            if upper { name = name.to_ascii_uppercase(); }
            let sep = if fold { " :\r\n  " } else { ": " };
            text.push_str(&format!("{name}{sep}{value}\r\n"));
            want.push((HeaderName::from_name(long), value.to_owned()));
        }
        if !seen_call_id {
            text.push_str("Call-ID: c1@h\r\n");
            want.push((HeaderName::CallId, "c1@h".to_owned()));
        }
        text.push_str("\r\n");
        let msg = parse_message(text.as_bytes(), &Limits::default()).unwrap();
        let got: Vec<(HeaderName, String)> = msg.headers().iter()
            .skip(4)
            .map(|(n, v)| (n.clone(), v.to_owned()))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// No byte string panics the parser or the framer.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_message(&bytes, &Limits::default());
        let _ = frame_stream(&bytes, MAX_MESSAGE_BYTES);
        let _ = frame_stream(&bytes, 64);
    }

    /// Nor does a valid message with bytes flipped, inserted, removed or cut.
    #[test]
    fn mutated_messages_never_panic(
        method in method(), uri in uri(), c in common(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..8),
    ) {
        let req = Request { method: method.clone(), uri, headers: headers_of(&c, &method), body: c.body.clone() };
        let mut bytes = req.to_bytes();
        for (at, kind, byte) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        let _ = parse_message(&bytes, &Limits::default());
        let _ = frame_stream(&bytes, MAX_MESSAGE_BYTES);
        if let Err(e) = parse_message(&bytes, &Limits::default())
            && let Some(r) = e.response()
        {
            let _ = r.to_bytes();
        }
    }
}
