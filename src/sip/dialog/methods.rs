//! The methods our UA handles, and the answer to the others: 405 with Allow
//! for a method we recognise but do not take, 501 for one we do not
//! recognise (RFC 3261 §8.2.1, §20.5, §21.4.6, §21.5.2).

use super::{ensure_to_tag, new_tag};
use crate::sip::message::{HeaderName, Method, Request, Response};

/// The Allow header value of our UA (§20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK, REGISTER";

/// The methods of [`ALLOW`], in the same order.
pub const ALLOWED_METHODS: [Method; 9] = [
    Method::Invite,
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Options,
    Method::Info,
    Method::Update,
    Method::Prack,
    Method::Register,
];

/// Whether our UA handles `method` at all.
pub fn is_allowed(method: &Method) -> bool {
    ALLOWED_METHODS.contains(method)
}

/// The answer to a request whose method the target does not take (§8.2.1):
/// 405 Method Not Allowed for a method we recognise (SUBSCRIBE, REFER, or
/// REGISTER sent to a target that is not the registrar), with an Allow
/// listing our methods minus the refused one; 501 Not Implemented for an
/// extension method we do not recognise. A To tag is added when absent
/// (§8.2.6.2).
pub fn method_not_supported(req: &Request) -> Response {
    let mut resp = match &req.method {
        Method::Other(_) => Response::for_request(req, 501, "Not Implemented"),
        refused => {
            let mut resp = Response::for_request(req, 405, "Method Not Allowed");
            let allow: Vec<&str> = ALLOWED_METHODS
                .iter()
                .filter(|m| *m != refused)
                .map(Method::as_str)
                .collect();
            resp.headers.set(HeaderName::Allow, allow.join(", "));
            resp
        }
    };
    ensure_to_tag(&mut resp, &new_tag());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, Message, parse_message};

    fn request(method: &str) -> Request {
        let text = format!(
            "{method} sip:switch.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-m1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@example.com>;tag=a1\r\n\
             To: <sip:switch.example.com>\r\n\
             Call-ID: m1@192.0.2.10\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        match parse_message(text.as_bytes(), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// RFC 3261 §20.5: ALLOW and ALLOWED_METHODS agree.
    #[test]
    fn allow_constant_matches_methods() {
        let names: Vec<&str> = ALLOWED_METHODS.iter().map(Method::as_str).collect();
        assert_eq!(names.join(", "), ALLOW);
        assert!(is_allowed(&Method::Prack));
        assert!(!is_allowed(&Method::Subscribe));
    }

    /// RFC 3261 §8.2.1 / §21.4.6: a recognised method we do not take gets
    /// 405 with an Allow header; the refused method is not listed.
    #[test]
    fn known_method_gets_405_with_allow() {
        for method in ["SUBSCRIBE", "REGISTER", "REFER"] {
            let resp = method_not_supported(&request(method));
            assert_eq!(resp.status, 405, "{method}");
            assert_eq!(resp.reason, "Method Not Allowed");
            let allow = resp.headers.values(&HeaderName::Allow);
            assert!(allow.contains(&"INVITE"), "{allow:?}");
            assert!(!allow.contains(&method), "{method} in {allow:?}");
            let to = resp.headers.to().expect("To");
            assert!(to.tag().is_some(), "§8.2.6.2 To tag");
        }
    }

    /// RFC 3261 §8.2.1 / §21.5.2: an unknown method gets 501, no Allow needed.
    #[test]
    fn unknown_method_gets_501() {
        let resp = method_not_supported(&request("FROBNICATE"));
        assert_eq!(resp.status, 501);
        assert_eq!(resp.reason, "Not Implemented");
        assert!(resp.headers.get(&HeaderName::Allow).is_none());
    }
}
