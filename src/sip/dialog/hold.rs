//! Hold and unhold in a re-INVITE's SDP (RFC 3264 §5.1, §8.4; RFC 6337
//! §5.3 on common practice). A minimal reader: the full SDP model lives in
//! the media layer.

/// Whether the peer's offer puts the call on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Active,
    Held,
}

/// Reads hold from an SDP body: the call is held when the audio stream
/// (else the first stream, else the session) is `a=sendonly` or
/// `a=inactive` (RFC 3264 §8.4), or its connection address is
/// `c=IN IP4 0.0.0.0` (the RFC 2543 style, RFC 3264 §8.4, RFC 6337 §5.3).
/// Media-level attributes override session-level ones. An empty body (a
/// re-INVITE without an offer) or anything unreadable reads as active.
pub fn hold_state(sdp: &[u8]) -> HoldState {
    let mut session = Section::default();
    let mut media: Vec<Section> = Vec::new();
    for raw in sdp.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let line = line.trim_end_matches('\r');
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        if kind == "m" {
            let mut fields = value.split_whitespace();
            let audio = fields.next() == Some("audio");
            let port_zero = fields
                .next()
                .and_then(|p| p.split('/').next())
                .is_some_and(|p| p == "0");
            media.push(Section {
                audio,
                port_zero,
                ..Section::default()
            });
            continue;
        }
        let section = media.last_mut().unwrap_or(&mut session);
        match kind {
            "a" => {
                let attr = value.trim();
                if matches!(attr, "sendonly" | "recvonly" | "sendrecv" | "inactive") {
                    section.direction = Some(attr == "sendonly" || attr == "inactive");
                }
            }
            "c" => section.null_connection = Some(is_null_ipv4(value)),
            _ => {}
        }
    }
    let live = |s: &&Section| !s.port_zero;
    let stream = media
        .iter()
        .filter(live)
        .find(|s| s.audio)
        .or_else(|| media.iter().find(live));
    let (held_dir, null_conn) = match stream {
        Some(s) => (
            s.direction.or(session.direction),
            s.null_connection.or(session.null_connection),
        ),
        None => (session.direction, session.null_connection),
    };
    if held_dir == Some(true) || null_conn == Some(true) {
        HoldState::Held
    } else {
        HoldState::Active
    }
}

/// What one SDP level (session or one m= section) says.
#[derive(Debug, Default)]
struct Section {
    audio: bool,
    port_zero: bool,
    /// `Some(true)` for sendonly/inactive, `Some(false)` for sendrecv/recvonly.
    direction: Option<bool>,
    /// `Some(true)` for `c=IN IP4 0.0.0.0`.
    null_connection: Option<bool>,
}

/// `IN IP4 0.0.0.0` (a TTL suffix such as `/127` allowed).
fn is_null_ipv4(value: &str) -> bool {
    let mut fields = value.split_whitespace();
    fields.next() == Some("IN")
        && fields.next() == Some("IP4")
        && fields
            .next()
            .and_then(|a| a.split('/').next())
            .is_some_and(|a| a == "0.0.0.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(conn: &str, session_attr: &str, media_attr: &str) -> Vec<u8> {
        format!(
            "v=0\r\n\
             o=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\n\
             s=-\r\n\
             c=IN IP4 {conn}\r\n\
             t=0 0\r\n\
             {session_attr}\
             m=audio 49170 RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             {media_attr}"
        )
        .into_bytes()
    }

    /// RFC 3264 §8.4: `a=sendonly` in the re-offer puts the stream on hold.
    #[test]
    fn sendonly_is_held() {
        let body = sdp("192.0.2.10", "", "a=sendonly\r\n");
        assert_eq!(hold_state(&body), HoldState::Held);
    }

    /// RFC 3264 §8.4: `a=inactive` (hold when the peer already held us).
    #[test]
    fn inactive_is_held() {
        let body = sdp("192.0.2.10", "", "a=inactive\r\n");
        assert_eq!(hold_state(&body), HoldState::Held);
        let body = sdp("192.0.2.10", "a=inactive\r\n", "");
        assert_eq!(hold_state(&body), HoldState::Held, "session-level");
    }

    /// RFC 3264 §8.4 / RFC 6337 §5.3: `c=IN IP4 0.0.0.0` (RFC 2543 hold).
    #[test]
    fn null_connection_is_held() {
        let body = sdp("0.0.0.0", "", "");
        assert_eq!(hold_state(&body), HoldState::Held);
    }

    /// RFC 3264 §8.4: back to sendrecv (or no direction) is unhold;
    /// media-level sendrecv overrides a session-level sendonly.
    #[test]
    fn sendrecv_is_active() {
        assert_eq!(
            hold_state(&sdp("192.0.2.10", "", "a=sendrecv\r\n")),
            HoldState::Active
        );
        assert_eq!(hold_state(&sdp("192.0.2.10", "", "")), HoldState::Active);
        assert_eq!(
            hold_state(&sdp("192.0.2.10", "a=sendonly\r\n", "a=sendrecv\r\n")),
            HoldState::Active
        );
        assert_eq!(
            hold_state(&sdp("192.0.2.10", "", "a=recvonly\r\n")),
            HoldState::Active
        );
    }

    /// RFC 3261 §14.1: a re-INVITE without an offer, or junk, is not hold.
    #[test]
    fn empty_or_junk_is_active() {
        assert_eq!(hold_state(b""), HoldState::Active);
        assert_eq!(hold_state(&[0xff, 0xfe, b'\n', b'=']), HoldState::Active);
    }
}
