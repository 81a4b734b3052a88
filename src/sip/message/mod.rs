//! SIP messages on bytes (RFC 3261 §7, §20, §25): the data model, the
//! bounded parser, the serializer and stream framing.
//!
//! Header values are kept as text (unfolded, trimmed) in the order they
//! arrived; the typed accessors on [`Headers`] parse the headers the switch
//! uses on demand. A header line holding several comma-separated values
//! (`Via: a, b`) stays one entry; the typed accessors split it.

mod addr;
mod framing;
mod headers;
mod lex;
mod name;
mod parse;
mod serialize;
#[cfg(test)]
mod tests;
mod uri;

pub use framing::{Frame, FramingError, frame_stream};
pub use headers::{CSeq, ContactValue, HeaderName, Headers, NameAddr, Params, Via};
pub use parse::{Limits, ParseError, ParseErrorKind, parse_message};
pub use uri::{Scheme, Uri};

/// Largest message the switch accepts (DESIGN §3).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most header lines in one message.
pub const MAX_HEADERS: usize = 256;
/// Longest single (unfolded) line, start line or header.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// A SIP method (RFC 3261 §7.1); extension methods are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Refer,
    Notify,
    Subscribe,
    Message,
    Publish,
    /// Any other token, case preserved (methods are case-sensitive, §7.1).
    Other(String),
}

/// A request: method, Request-URI, headers and body. The version is always
/// `SIP/2.0`; anything else is refused by the parser (505).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A response: status code (100–699), reason phrase, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Either kind of SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Method {
    /// Maps a method token; the token is case-sensitive (§7.1).
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Request {
    /// Serializes with a Content-Length that matches the body (any
    /// Content-Length header in `headers` is replaced).
    pub fn to_bytes(&self) -> Vec<u8> {
        serialize::request(self)
    }
}

impl Response {
    /// A response to `req` per RFC 3261 §8.2.6.2: copies Via (all values,
    /// in order), From, To, Call-ID and CSeq; the caller adds a To tag when
    /// one is needed. Record-Route is copied for 2xx/18x to INVITE (§12.1.1).
    pub fn for_request(req: &Request, status: u16, reason: &str) -> Response {
        let mut headers = Headers::with_capacity(8);
        for v in req.headers.get_all(&HeaderName::Via) {
            headers.push(HeaderName::Via, v);
        }
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if let Some(v) = req.headers.get(&name) {
                headers.push(name, v);
            }
        }
        if req.method == Method::Invite && (101..300).contains(&status) {
            for v in req.headers.get_all(&HeaderName::RecordRoute) {
                headers.push(HeaderName::RecordRoute, v);
            }
        }
        Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
    /// Serializes with a Content-Length that matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        serialize::response(self)
    }
    /// 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}
