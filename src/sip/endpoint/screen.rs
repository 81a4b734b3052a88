//! Checks every new request passes before the switch acts on it (RFC 3261
//! §8.2.1–§8.2.3): URI scheme, required extensions, body type and Accept.
//! Pure functions: the answer to give, or nothing.

use crate::sip::dialog::ALLOW;
use crate::sip::message::{HeaderName, Method, Request, Response, Scheme};

/// Option tags the switch implements (§8.2.2.3). None yet: a request that
/// requires any extension is refused with 420.
const SUPPORTED_OPTION_TAGS: &[&str] = &[];

/// Returns the error response a request must get, if any. ACK and CANCEL
/// are never refused here (§8.2.2.3).
pub fn screen_request(req: &Request) -> Option<Response> {
    if matches!(req.method, Method::Ack | Method::Cancel) {
        return None;
    }
    // §8.2.2.1: a scheme we cannot handle.
    if let Scheme::Other(_) = req.uri.scheme {
        return Some(Response::for_request(req, 416, "Unsupported URI Scheme"));
    }
    // §8.2.2.3: required extensions we do not know.
    let unsupported: Vec<&str> = req
        .headers
        .values(&HeaderName::Require)
        .into_iter()
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .filter(|tag| {
            !SUPPORTED_OPTION_TAGS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(tag))
        })
        .collect();
    if !unsupported.is_empty() {
        let mut resp = Response::for_request(req, 420, "Bad Extension");
        resp.headers
            .push(HeaderName::Unsupported, unsupported.join(", "));
        return Some(resp);
    }
    if req.method == Method::Invite {
        // §8.2.3: a body we cannot read.
        if !req.body.is_empty() {
            match req.headers.content_type() {
                Some(t) if t == "application/sdp" => {}
                _ => {
                    let mut resp = Response::for_request(req, 415, "Unsupported Media Type");
                    resp.headers.push(HeaderName::Accept, "application/sdp");
                    return Some(resp);
                }
            }
        }
        // §8.2.2.2 / §21.4.7: the caller would not accept our SDP answer.
        if !accepts_sdp(req) {
            let mut resp = Response::for_request(req, 406, "Not Acceptable");
            resp.headers.push(
                HeaderName::Warning,
                "399 switchboard \"only application/sdp bodies are sent\"",
            );
            return Some(resp);
        }
    }
    None
}

/// An absent Accept means application/sdp (§20.1).
fn accepts_sdp(req: &Request) -> bool {
    let values = req.headers.values(&HeaderName::Accept);
    if values.is_empty() {
        return true;
    }
    values.iter().any(|v| {
        let media = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(
            media.as_str(),
            "application/sdp" | "application/*" | "*/*" | ""
        )
    })
}

/// The 200 answer to OPTIONS (§11.2): what the switch can do.
pub fn options_response(req: &Request) -> Response {
    let mut resp = Response::for_request(req, 200, "OK");
    resp.headers.push(HeaderName::Allow, ALLOW);
    resp.headers.push(HeaderName::Accept, "application/sdp");
    resp.headers.push(HeaderName::Supported, "");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, Message, parse_message};

    fn request(text: &str) -> Request {
        match parse_message(text.replace('\n', "\r\n").as_bytes(), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn invite(extra: &str, body: &str) -> Request {
        request(&format!(
            "INVITE sip:100@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\n\
             From: <sip:a@example.com>;tag=1\nTo: <sip:100@example.com>\nCall-ID: c1\n\
             CSeq: 1 INVITE\nContact: <sip:a@10.0.0.1>\n{extra}Content-Length: {}\n\n{body}",
            body.len()
        ))
    }

    /// RFC 3261 §8.2.2.1 and RFC 4475 §3.3.2 (unkscm): unknown scheme → 416.
    #[test]
    fn unknown_scheme_gets_416() {
        let mut req = invite("", "");
        req.uri.scheme = Scheme::Other("nobodyknowsthisscheme".into());
        assert_eq!(screen_request(&req).map(|r| r.status), Some(416));
    }

    /// RFC 3261 §8.2.2.3 and RFC 4475 §3.3.5 (bext01): 420 lists the tags.
    #[test]
    fn required_extension_gets_420_with_unsupported() {
        let req = invite(
            "Require: nothingSupportsThis, nothingSupportsThisEither\n",
            "",
        );
        let resp = screen_request(&req).expect("refused");
        assert_eq!(resp.status, 420);
        assert_eq!(
            resp.headers.get(&HeaderName::Unsupported),
            Some("nothingSupportsThis, nothingSupportsThisEither")
        );
    }

    /// RFC 3261 §8.2.3 and RFC 4475 §3.3.6 (invut): a body we cannot read → 415.
    #[test]
    fn unknown_body_type_gets_415() {
        let req = invite("Content-Type: application/unknownformat\n", "<xml/>");
        let resp = screen_request(&req).expect("refused");
        assert_eq!(resp.status, 415);
        assert_eq!(
            resp.headers.get(&HeaderName::Accept),
            Some("application/sdp")
        );
    }

    /// RFC 4475 §3.3.15 (sdp01): Accept without application/sdp → 406.
    #[test]
    fn accept_without_sdp_gets_406() {
        let req = invite("Accept: text/nobodyKnowsThis\n", "");
        assert_eq!(screen_request(&req).map(|r| r.status), Some(406));
        let ok = invite(
            "Accept: application/sdp, text/html\nContent-Type: application/sdp\n",
            "v=0\r\n",
        );
        assert!(screen_request(&ok).is_none());
    }

    /// RFC 3261 §11.2: OPTIONS is answered with Allow and Accept.
    #[test]
    fn options_lists_capabilities() {
        let req = request(
            "OPTIONS sip:100@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKo\n\
             From: <sip:a@example.com>;tag=1\nTo: <sip:100@example.com>\nCall-ID: o1\n\
             CSeq: 7 OPTIONS\nContent-Length: 0\n\n",
        );
        let resp = options_response(&req);
        assert_eq!(resp.status, 200);
        assert!(
            resp.headers
                .get(&HeaderName::Allow)
                .unwrap()
                .contains("INVITE")
        );
        assert_eq!(resp.headers.cseq().unwrap().seq, 7);
    }
}
