//! The SIP side of a generated call (RFC 3261 UAC over UDP): the INVITE
//! with its SDP offer (RFC 3264 §5), the ACK for a 2xx (§13.2.2.4) or for a
//! failure (§17.1.1.3), the BYE (§15.1.1), answers to the switch's requests
//! (§8.2.6), and what the generator needs from the switch's answers.
//!
//! Messages are built as [`Request`]s and [`Response`]s of the switch's own
//! message model and parsed with its parser.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::media::sdp::SessionDescription;
use crate::sip::message::{HeaderName, Headers, Method, Request, Response, Uri};

use super::rtp::Codec;

/// The RTP payload type the generator offers for telephone-event
/// (RFC 4733 §7.1.1).
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// Identifiers of one generated call's dialog (RFC 3261 §12).
#[derive(Debug, Clone)]
pub struct CallIds {
    pub call_id: String,
    pub from_tag: String,
    /// Branch of the INVITE transaction (and its failure ACK).
    pub invite_branch: String,
    /// The dialed number: the Request-URI's user part.
    pub number: String,
    /// The switch's SIP address.
    pub target: SocketAddr,
    /// This worker's SIP socket address (Via, Contact, From).
    pub local: SocketAddr,
}

impl CallIds {
    fn local_party(&self) -> String {
        format!("<sip:callgen@{}>;tag={}", self.local, self.from_tag)
    }

    fn request_uri(&self) -> Uri {
        Uri::sip(
            Some(&self.number),
            &self.target.ip().to_string(),
            Some(self.target.port()),
        )
    }

    fn headers(&self, branch: &str, to: &str, cseq: u32, method: &Method) -> Headers {
        let mut h = Headers::with_capacity(9);
        h.push(
            HeaderName::Via,
            format!("SIP/2.0/UDP {};branch={branch};rport", self.local),
        );
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, self.local_party());
        h.push(HeaderName::To, to);
        h.push(HeaderName::CallId, self.call_id.as_str());
        h.push(HeaderName::CSeq, format!("{cseq} {method}"));
        h
    }

    fn initial_to(&self) -> String {
        format!("<{}>", self.request_uri())
    }

    /// The INVITE with an SDP offer of `codec` and telephone-event on
    /// `rtp` (RFC 3264 §5).
    pub fn invite(&self, codec: Codec, rtp: SocketAddr) -> Vec<u8> {
        let mut headers = self.headers(&self.invite_branch, &self.initial_to(), 1, &Method::Invite);
        headers.push(HeaderName::Contact, format!("<sip:callgen@{}>", self.local));
        headers.push(HeaderName::ContentType, "application/sdp");
        Request {
            method: Method::Invite,
            uri: self.request_uri(),
            headers,
            body: sdp_offer(codec, rtp).into_bytes(),
        }
        .to_bytes()
    }

    /// The ACK for a 2xx: a new transaction to the remote target, with the
    /// To of the answer (RFC 3261 §13.2.2.4).
    pub fn ack_2xx(&self, to: &str, target: &Uri) -> Vec<u8> {
        let branch = format!("{}a", self.invite_branch);
        Request {
            method: Method::Ack,
            uri: target.clone(),
            headers: self.headers(&branch, to, 1, &Method::Ack),
            body: Vec::new(),
        }
        .to_bytes()
    }

    /// The ACK for a failure answer: part of the INVITE transaction, same
    /// branch and Request-URI, To from the answer (RFC 3261 §17.1.1.3).
    pub fn ack_failure(&self, to: &str) -> Vec<u8> {
        Request {
            method: Method::Ack,
            uri: self.request_uri(),
            headers: self.headers(&self.invite_branch, to, 1, &Method::Ack),
            body: Vec::new(),
        }
        .to_bytes()
    }

    /// The BYE ending the dialog (RFC 3261 §15.1.1), CSeq 2.
    pub fn bye(&self, to: &str, target: &Uri) -> Vec<u8> {
        let branch = format!("{}b", self.invite_branch);
        Request {
            method: Method::Bye,
            uri: target.clone(),
            headers: self.headers(&branch, to, 2, &Method::Bye),
            body: Vec::new(),
        }
        .to_bytes()
    }
}

/// The SDP offer: one audio stream of `codec` plus telephone-event 101
/// (RFC 4566, RFC 4733 §7.1.1).
pub fn sdp_offer(codec: Codec, rtp: SocketAddr) -> String {
    let ip = rtp.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let pt = codec.payload_type();
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=callgen 1 1 IN {family} {ip}\r\ns=callgen\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} {TELEPHONE_EVENT_PT}\r\na=rtpmap:{pt} {map}\r\n\
         a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000\r\na=fmtp:{TELEPHONE_EVENT_PT} 0-16\r\n\
         a=ptime:20\r\na=sendrecv\r\n",
        port = rtp.port(),
        map = codec.rtpmap(),
    );
    s
}

/// Where the answer's audio stream wants RTP (RFC 3264 §6: the first
/// audio section with a non-zero port, its `c=` or the session's).
pub fn answer_rtp(body: &[u8]) -> Option<SocketAddr> {
    let sdp = SessionDescription::parse(body).ok()?;
    let (_, media) = sdp.audio().find(|(_, m)| m.port != 0)?;
    let conn = sdp.connection_for(media)?;
    let host = conn.address.split('/').next()?;
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, media.port))
}

/// The 2xx's remote target: its Contact URI, else the Request-URI
/// (RFC 3261 §12.1.2).
pub fn remote_target(resp: &Response, fallback: &CallIds) -> Uri {
    resp.headers
        .contacts()
        .ok()
        .and_then(|c| {
            c.into_iter().find_map(|v| match v {
                crate::sip::message::ContactValue::Addr(a) => Some(a.uri),
                crate::sip::message::ContactValue::Star => None,
            })
        })
        .unwrap_or_else(|| fallback.request_uri())
}

/// An answer to a request from the switch (RFC 3261 §8.2.6): a To tag is
/// already there for in-dialog requests.
pub fn answer(req: &Request, status: u16, reason: &str) -> Vec<u8> {
    Response::for_request(req, status, reason).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, Message, parse_message};

    fn ids() -> CallIds {
        CallIds {
            call_id: "cg-1-7@callgen".into(),
            from_tag: "t7".into(),
            invite_branch: "z9hG4bKcg7".into(),
            number: "100".into(),
            target: "127.0.0.1:5060".parse().unwrap(),
            local: "127.0.0.1:40000".parse().unwrap(),
        }
    }

    fn parse(bytes: &[u8]) -> Request {
        match parse_message(bytes, &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("a response"),
        }
    }

    /// RFC 3261 §8.1.1 and RFC 3264 §5: the INVITE parses back with the
    /// mandatory headers and an SDP offer of PCMA and telephone-event.
    #[test]
    fn invite_round_trips() {
        let rtp = "127.0.0.1:40002".parse().unwrap();
        let req = parse(&ids().invite(Codec::Pcma, rtp));
        assert_eq!(req.method, Method::Invite);
        assert_eq!(req.uri.to_string(), "sip:100@127.0.0.1:5060");
        assert_eq!(req.headers.call_id().unwrap(), "cg-1-7@callgen");
        assert_eq!(req.headers.top_via().unwrap().branch(), Some("z9hG4bKcg7"));
        assert_eq!(req.headers.from().unwrap().tag(), Some("t7"));
        let body = String::from_utf8(req.body).unwrap();
        assert!(body.contains("m=audio 40002 RTP/AVP 8 101\r\n"), "{body}");
        assert!(body.contains("a=rtpmap:101 telephone-event/8000"), "{body}");
        assert_eq!(answer_rtp(body.as_bytes()), Some(rtp));
    }

    /// RFC 3261 §13.2.2.4: the ACK of a 2xx goes to the Contact with the
    /// answer's To tag and its own branch; §17.1.1.3: a failure's ACK
    /// reuses the INVITE's branch.
    #[test]
    fn acks_and_bye() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKcg7\r\n\
From: <sip:callgen@127.0.0.1:40000>;tag=t7\r\nTo: <sip:100@127.0.0.1:5060>;tag=sw1\r\n\
Call-ID: cg-1-7@callgen\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5070>\r\n\
Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n";
        let Message::Response(resp) = parse_message(ok, &Limits::default()).unwrap() else {
            panic!("response expected");
        };
        let target = remote_target(&resp, &ids());
        assert_eq!(target.to_string(), "sip:100@127.0.0.1:5070");
        let to = resp.headers.get(&HeaderName::To).unwrap();
        let ack = parse(&ids().ack_2xx(to, &target));
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.headers.to().unwrap().tag(), Some("sw1"));
        assert_ne!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKcg7"));
        let fail_ack = parse(&ids().ack_failure(to));
        assert_eq!(
            fail_ack.headers.top_via().unwrap().branch(),
            Some("z9hG4bKcg7")
        );
        let bye = parse(&ids().bye(to, &target));
        assert_eq!(bye.headers.cseq().unwrap().seq, 2);
        assert_eq!(bye.uri.to_string(), "sip:100@127.0.0.1:5070");
    }

    #[test]
    fn answer_without_audio_port() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(answer_rtp(sdp), None);
        assert_eq!(answer_rtp(b"garbage"), None);
    }
}
