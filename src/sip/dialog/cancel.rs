//! CANCEL of a pending INVITE (RFC 3261 §9.1).

use crate::sip::message::{HeaderName, Headers, Method, Request};

/// The CANCEL for `invite`, one of our INVITEs still waiting for a final
/// response (§9.1): same Request-URI, Call-ID, From and To (so no To tag),
/// only the INVITE's top Via (same branch, so it matches the INVITE's server
/// transaction), CSeq with the INVITE's number and method CANCEL, the Route
/// values copied, Max-Forwards 70, no body.
pub fn cancel_for(invite: &Request) -> Request {
    let h = &invite.headers;
    let mut headers = Headers::new();
    if let Some(via) = h.values(&HeaderName::Via).first() {
        headers.push(HeaderName::Via, *via);
    }
    headers.push(HeaderName::MaxForwards, "70");
    for route in h.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, route);
    }
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(value) = h.get(&name) {
            headers.push(name, value);
        }
    }
    let seq = match h.cseq() {
        Ok(cseq) => cseq.seq.to_string(),
        // Our own INVITE always has a valid CSeq; keep its number as written.
        Err(_) => h
            .get(&HeaderName::CSeq)
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or("1")
            .to_owned(),
    };
    headers.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}
