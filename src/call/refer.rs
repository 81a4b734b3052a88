//! Blind transfer by an agent with REFER (RFC 3515), the pure parts: the
//! one Refer-To a REFER must carry (§2.4.1), where its user part sends the
//! caller (a queue, an agent login, an extension, or the URI itself), and
//! the NOTIFYs that report the transfer as `message/sipfrag` (§2.4.4,
//! §2.4.5). The agent leg ([`super::agent`]) and the caller's task do the
//! I/O.

use crate::sip::message::{HeaderName, NameAddr, Request, Scheme, Uri};

/// Why a REFER is refused with 400 Bad Request (RFC 3515 §2.4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferError {
    #[error("REFER without Refer-To")]
    Missing,
    #[error("REFER with {0} Refer-To values")]
    Several(usize),
    #[error("Refer-To is not a SIP URI")]
    BadUri,
}

impl ReferError {
    /// The reason phrase of the 400 that refuses the REFER.
    pub fn reason(&self) -> &'static str {
        match self {
            ReferError::Missing => "Missing Refer-To",
            ReferError::Several(_) => "Multiple Refer-To",
            ReferError::BadUri => "Bad Refer-To URI",
        }
    }
}

/// The target of a REFER: exactly one Refer-To value (§2.4.1: "A REFER
/// request MUST contain exactly one Refer-To header field value"), a
/// `sip:` or `sips:` URI. Embedded headers (`?Replaces=…`, attended
/// transfer) are dropped: the switch transfers blind.
pub fn refer_to(request: &Request) -> Result<Uri, ReferError> {
    let values = request.headers.values(&HeaderName::ReferTo);
    let value = match values.as_slice() {
        [] => return Err(ReferError::Missing),
        [one] => one.trim(),
        several => return Err(ReferError::Several(several.len())),
    };
    let mut uri = NameAddr::parse(value).map_err(|_| ReferError::BadUri)?.uri;
    if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips) || uri.host.is_empty() {
        return Err(ReferError::BadUri);
    }
    uri.headers = None;
    Ok(uri)
}

/// Where a REFER sends the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferTarget {
    /// A queue of the caller's flow set: the caller waits there again.
    Queue(String),
    /// An agent, by login.
    Agent(String),
    /// An agent, by extension.
    Extension(String),
    /// Any other SIP URI: dialled as it is.
    Uri(Uri),
    /// A user of ours (the URI names the switch) that is no queue, agent
    /// or extension.
    Unknown,
}

/// What the switch knows to sort a Refer-To by its user part.
pub struct Directory<'a> {
    /// Whether a queue of the running flow set has this name.
    pub is_queue: &'a dyn Fn(&str) -> bool,
    /// Every agent: login and extension.
    pub agents: &'a [(String, Option<String>)],
    /// Whether a host names the switch itself.
    pub is_local: &'a dyn Fn(&str) -> bool,
}

/// Sorts a Refer-To URI: its user part names a queue, else an agent login,
/// else an extension; otherwise the URI is dialled, unless it names the
/// switch itself (a user we do not have).
pub fn classify(uri: &Uri, dir: &Directory<'_>) -> ReferTarget {
    let user = uri.user.as_deref().unwrap_or_default();
    if !user.is_empty() {
        if (dir.is_queue)(user) {
            return ReferTarget::Queue(user.to_owned());
        }
        if dir.agents.iter().any(|(login, _)| login == user) {
            return ReferTarget::Agent(user.to_owned());
        }
        if dir
            .agents
            .iter()
            .any(|(_, ext)| ext.as_deref() == Some(user))
        {
            return ReferTarget::Extension(user.to_owned());
        }
    }
    if (dir.is_local)(&uri.host) {
        return ReferTarget::Unknown;
    }
    ReferTarget::Uri(uri.clone())
}

/// The reason phrase the switch writes for a status in a sipfrag.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        200 => "OK",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ if status < 200 => "Trying",
        _ if status < 300 => "OK",
        _ => "Failed",
    }
}

/// A `message/sipfrag` body holding only a Status-Line (RFC 3515 §2.4.5:
/// "the body of a NOTIFY MUST begin with a SIP Response Status-Line").
pub fn sipfrag(status: u16) -> String {
    format!("SIP/2.0 {status} {}\r\n", reason_phrase(status))
}

/// Turns an in-dialog NOTIFY into the report on the REFER whose CSeq
/// number is `refer_cseq`: Event `refer` with that `id` (§2.4.6), a
/// Subscription-State that stays `active` while the status is provisional
/// and is `terminated` with the final one (§2.4.7, RFC 6665 §4.1.3), and
/// the sipfrag body (§2.4.4, §2.4.5).
pub fn fill_notify(notify: &mut Request, refer_cseq: u32, status: u16) {
    let h = &mut notify.headers;
    h.set(HeaderName::Event, format!("refer;id={refer_cseq}"));
    let state = if status < 200 {
        "active;expires=60"
    } else {
        "terminated;reason=noresource"
    };
    h.set(
        HeaderName::Other("Subscription-State".to_owned()),
        state.to_owned(),
    );
    h.set(HeaderName::ContentType, "message/sipfrag;version=2.0");
    notify.body = sipfrag(status).into_bytes();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, Message, Method, parse_message};

    fn refer(extra: &str) -> Request {
        let text = format!(
            "REFER sip:switchboard@192.0.2.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-r1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@192.0.2.20>;tag=a1\r\n\
             To: <sip:+14155550123@192.0.2.1>;tag=s1\r\n\
             Call-ID: r1@192.0.2.1\r\n\
             CSeq: 7 REFER\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        );
        match parse_message(text.as_bytes(), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// RFC 3515 §2.4.1: exactly one Refer-To; none, several (one line or
    /// two) or one that is no SIP URI is a 400.
    #[test]
    fn refer_to_must_be_exactly_one_sip_uri() {
        let cases: &[(&str, Result<&str, ReferError>)] = &[
            ("Refer-To: <sip:bob@192.0.2.1>\r\n", Ok("bob")),
            ("Refer-To: sip:support@192.0.2.1\r\n", Ok("support")),
            ("r: <sip:1002@192.0.2.1;transport=udp>\r\n", Ok("1002")),
            (
                "Refer-To: \"Bob\" <sip:bob@192.0.2.1?Replaces=abc%40x>\r\n",
                Ok("bob"),
            ),
            ("", Err(ReferError::Missing)),
            (
                "Refer-To: <sip:a@192.0.2.1>, <sip:b@192.0.2.1>\r\n",
                Err(ReferError::Several(2)),
            ),
            (
                "Refer-To: <sip:a@192.0.2.1>\r\nRefer-To: <sip:b@192.0.2.1>\r\n",
                Err(ReferError::Several(2)),
            ),
            (
                "Refer-To: <http://example.com/x>\r\n",
                Err(ReferError::BadUri),
            ),
            ("Refer-To: <tel:+14155550100>\r\n", Err(ReferError::BadUri)),
            ("Refer-To: not a uri at all\r\n", Err(ReferError::BadUri)),
        ];
        for (header, want) in cases {
            let got = refer_to(&refer(header));
            match (got, want) {
                (Ok(uri), Ok(user)) => {
                    assert_eq!(uri.user.as_deref(), Some(*user), "{header}");
                    assert!(uri.headers.is_none(), "{header}: blind transfer only");
                }
                (Err(e), Err(w)) => assert_eq!(&e, w, "{header}"),
                (got, want) => panic!("{header}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// The user part picks the target: queue, then login, then extension;
    /// else the URI is dialled, unless it names the switch itself.
    #[test]
    fn refer_targets_are_sorted_by_user_part() {
        let agents = vec![
            ("bob".to_owned(), Some("1002".to_owned())),
            ("carol".to_owned(), None),
        ];
        let is_queue = |name: &str| name == "support";
        let is_local = |host: &str| host == "192.0.2.1";
        let dir = Directory {
            is_queue: &is_queue,
            agents: &agents,
            is_local: &is_local,
        };
        let uri = |text: &str| Uri::parse(text).expect("uri");
        let cases = [
            (
                "sip:support@192.0.2.1",
                ReferTarget::Queue("support".into()),
            ),
            ("sip:bob@192.0.2.1", ReferTarget::Agent("bob".into())),
            ("sip:1002@192.0.2.1", ReferTarget::Extension("1002".into())),
            ("sip:nobody@192.0.2.1", ReferTarget::Unknown),
            (
                "sip:dave@198.51.100.7:5070",
                ReferTarget::Uri(uri("sip:dave@198.51.100.7:5070")),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(classify(&uri(text), &dir), want, "{text}");
        }
    }

    /// RFC 3515 §2.4.4-2.4.7: the NOTIFY carries Event `refer;id=CSeq`, a
    /// message/sipfrag body that is a Status-Line, and a subscription that
    /// ends with the final status.
    #[test]
    fn notify_reports_the_refer_as_sipfrag() {
        let mut notify = refer("");
        notify.method = Method::Notify;
        fill_notify(&mut notify, 7, 100);
        assert_eq!(notify.headers.get(&HeaderName::Event), Some("refer;id=7"));
        let state = HeaderName::Other("Subscription-State".to_owned());
        assert_eq!(notify.headers.get(&state), Some("active;expires=60"));
        assert_eq!(
            notify.headers.content_type().as_deref(),
            Some("message/sipfrag")
        );
        assert_eq!(notify.body, b"SIP/2.0 100 Trying\r\n");

        fill_notify(&mut notify, 7, 200);
        assert_eq!(notify.body, b"SIP/2.0 200 OK\r\n");
        assert_eq!(
            notify.headers.get(&state),
            Some("terminated;reason=noresource")
        );
        fill_notify(&mut notify, 7, 486);
        assert_eq!(notify.body, b"SIP/2.0 486 Busy Here\r\n");
        // The serialized NOTIFY parses back with its body intact.
        let text = String::from_utf8(notify.to_bytes()).expect("utf-8");
        assert!(text.contains("Event: refer;id=7\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\nSIP/2.0 486 Busy Here\r\n"),
            "{text}"
        );
    }
}
