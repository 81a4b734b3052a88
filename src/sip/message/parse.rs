//! The bounded parser (RFC 3261 §7, §25). Never panics on any input.

use super::addr;
use super::lex::{self, find_byte, is_token, is_token_byte, split_commas, trim_bytes, trim_ws};
use super::{HeaderName, Headers, Message, Method, Request, Response, Uri};

/// Bounds applied while parsing (defaults: DESIGN §3).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message: usize,
    pub max_headers: usize,
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message: super::MAX_MESSAGE_BYTES,
            max_headers: super::MAX_HEADERS,
            max_line: super::MAX_LINE_BYTES,
        }
    }
}

/// What was wrong. `Display` is short, human and fit for a reason phrase
/// (`Bad Request (Malformed Via header)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("Message too large")]
    TooLarge,
    #[error("Too many headers")]
    TooManyHeaders,
    #[error("Line too long")]
    LineTooLong,
    #[error("Malformed start line")]
    BadStartLine,
    #[error("Unsupported SIP version")]
    BadVersion,
    #[error("Malformed Request-URI")]
    BadRequestUri,
    #[error("Malformed {0} header")]
    BadHeader(&'static str),
    #[error("Missing {0} header")]
    MissingHeader(&'static str),
    #[error("Duplicate {0} header")]
    DuplicateHeader(&'static str),
    #[error("CSeq method does not match request method")]
    CSeqMethodMismatch,
    #[error("Content-Length does not match body")]
    BadContentLength,
    #[error("Malformed header line")]
    BadHeaderLine,
    #[error("Not UTF-8 where text is required")]
    NotText,
}

/// A message that could not be parsed, with enough of it kept to answer
/// when it was a request whose Via, From, To, Call-ID and CSeq were readable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    reply: Option<Box<Response>>,
}

impl ParseError {
    /// An error that gets no reply.
    pub fn new(kind: ParseErrorKind) -> ParseError {
        ParseError { kind, reply: None }
    }

    /// The response to send back (400 with the reason in the phrase, or 505
    /// for a bad version), when the request allows one; `None` means drop.
    pub fn response(&self) -> Option<&Response> {
        self.reply.as_deref()
    }
}

/// Parses one message (datagram, or one frame cut by [`super::frame_stream`]).
/// Checks the mandatory headers of §8.1.1 (Via, From, To, Call-ID, CSeq,
/// single-valued ones not repeated), CSeq method = request method, and
/// Content-Length against the bytes present (a datagram may carry trailing
/// bytes after the body: they are ignored, §18.3).
pub fn parse_message(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if bytes.len() > limits.max_message {
        return Err(ParseError::new(ParseErrorKind::TooLarge));
    }
    // §7.5: CRLFs before the start line are ignored.
    let skip = bytes
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let buf = &bytes[skip..];
    let mut lines = HeadLines {
        buf,
        pos: 0,
        body_start: None,
    };
    let first = lines.next().unwrap_or_default();
    let is_request = !first
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"));
    let start = if first.len() > limits.max_line {
        Err(ParseErrorKind::LineTooLong)
    } else {
        start_line(first)
    };
    let (headers, header_err) = read_headers(&mut lines, limits);
    // Without the empty line (§7) the message is refused, but only after
    // the headers were checked so that the reply names a sharper problem.
    let (body_start, unterminated) = match lines.body_start {
        Some(b) => (b, false),
        None => (buf.len(), true),
    };
    // The first problem found is the one reported.
    let checked = match (start, header_err) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(start), None) => body(&start, &headers, buf, body_start).and_then(|b| {
            if unterminated {
                Err(ParseErrorKind::BadHeaderLine)
            } else {
                Ok((start, b))
            }
        }),
    };
    match checked {
        Ok((start, body)) => Ok(build(start, headers, body)),
        Err(kind) => {
            let reply = if is_request {
                error_reply(&kind, &headers).map(Box::new)
            } else {
                None
            };
            Err(ParseError { kind, reply })
        }
    }
}

/// The parsed start line (§7.1, §7.2).
enum Start<'a> {
    Request(Method, Uri),
    Response(u16, &'a str),
}

/// The lines of the header section (CR/LF removed), up to the empty line
/// that ends it; `body_start` is set once that line is seen.
struct HeadLines<'a> {
    buf: &'a [u8],
    pos: usize,
    body_start: Option<usize>,
}

impl<'a> Iterator for HeadLines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.body_start.is_some() {
            return None;
        }
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        let (line, ended) = match find_byte(rest, b'\n') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        self.pos += line.len() + usize::from(ended);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && ended {
            self.body_start = Some(self.pos);
            return None;
        }
        Some(line)
    }
}

/// `Request-Line` or `Status-Line`, single SP separators (RFC 4475 §3.1.2.9
/// and §3.1.2.10: extra or trailing SP is refused).
fn start_line(line: &[u8]) -> Result<Start<'_>, ParseErrorKind> {
    let line = std::str::from_utf8(line).map_err(|_| ParseErrorKind::NotText)?;
    if line.is_empty() || line.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(ParseErrorKind::BadStartLine);
    }
    let is_version = |v: &str| v.eq_ignore_ascii_case("SIP/2.0");
    let looks_versioned = |v: &str| {
        let num = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
            && v.get(4..)
                .and_then(|r| r.split_once('.'))
                .is_some_and(|(a, b)| num(a) && num(b))
    };
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line.split_once(' ').ok_or(ParseErrorKind::BadStartLine)?;
        if !is_version(version) {
            return Err(if looks_versioned(version) {
                ParseErrorKind::BadVersion
            } else {
                ParseErrorKind::BadStartLine
            });
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::BadStartLine);
        }
        let status: u16 = code.parse().map_err(|_| ParseErrorKind::BadStartLine)?;
        if !(100..=699).contains(&status) {
            return Err(ParseErrorKind::BadStartLine);
        }
        return Ok(Start::Response(status, reason));
    }
    let (Some(sp1), Some(sp2)) = (line.find(' '), line.rfind(' ')) else {
        return Err(ParseErrorKind::BadStartLine);
    };
    let method = &line[..sp1];
    let version = &line[sp2 + 1..];
    if sp1 == sp2 || !is_token(method) || version.is_empty() {
        return Err(ParseErrorKind::BadStartLine);
    }
    if !is_version(version) {
        return Err(if looks_versioned(version) {
            ParseErrorKind::BadVersion
        } else {
            ParseErrorKind::BadStartLine
        });
    }
    let uri = &line[sp1 + 1..sp2];
    if uri.is_empty() || uri.starts_with(' ') || uri.ends_with(' ') {
        return Err(ParseErrorKind::BadStartLine);
    }
    // §19.1.5: no `<>`, no LWS and no headers in a Request-URI.
    let uri = Uri::parse(uri).map_err(|_| ParseErrorKind::BadRequestUri)?;
    if uri.headers.is_some() {
        return Err(ParseErrorKind::BadRequestUri);
    }
    Ok(Start::Request(Method::from_token(method), uri))
}

/// Reads header lines, unfolding continuations (§7.3.1). Bad lines are
/// skipped so that a reply can still be built; the first problem is kept.
fn read_headers<'a>(
    lines: &mut HeadLines<'a>,
    limits: &Limits,
) -> (Headers, Option<ParseErrorKind>) {
    let mut headers = Headers::with_capacity(16);
    let mut err = None;
    let mut current: Option<(&[u8], Vec<u8>)> = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match current.as_mut() {
                Some((_, value)) => {
                    let more = trim_bytes(line);
                    if !value.is_empty() && !more.is_empty() {
                        value.push(b' ');
                    }
                    value.extend_from_slice(more);
                }
                None => {
                    err.get_or_insert(ParseErrorKind::BadHeaderLine);
                }
            }
            continue;
        }
        if let Some((name, value)) = current.take()
            && let Err(e) = store(&mut headers, name, value, limits)
        {
            let stop = e == ParseErrorKind::TooManyHeaders;
            err.get_or_insert(e);
            if stop {
                return (headers, err);
            }
        }
        match find_byte(line, b':') {
            Some(colon) => {
                let mut value = Vec::with_capacity(line.len() - colon);
                value.extend_from_slice(trim_bytes(&line[colon + 1..]));
                current = Some((&line[..colon], value));
            }
            None => {
                err.get_or_insert(ParseErrorKind::BadHeaderLine);
            }
        }
    }
    if let Some((name, value)) = current.take()
        && let Err(e) = store(&mut headers, name, value, limits)
    {
        err.get_or_insert(e);
    }
    (headers, err)
}

/// Checks and appends one unfolded header line.
fn store(
    headers: &mut Headers,
    name: &[u8],
    value: Vec<u8>,
    limits: &Limits,
) -> Result<(), ParseErrorKind> {
    if headers.len() >= limits.max_headers {
        return Err(ParseErrorKind::TooManyHeaders);
    }
    if name.len() + value.len() + 2 > limits.max_line {
        return Err(ParseErrorKind::LineTooLong);
    }
    let name = trim_bytes(name);
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return Err(ParseErrorKind::BadHeaderLine);
    }
    // Controls only as quoted-pairs (§25.1 `quoted-pair`).
    let has_control = value.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
    });
    if has_control {
        let mut prev = 0u8;
        for &b in &value {
            if (b < 0x20 && b != b'\t' || b == 0x7f) && prev != b'\\' {
                return Err(ParseErrorKind::BadHeaderLine);
            }
            prev = if prev == b'\\' { 0 } else { b };
        }
    }
    let value = String::from_utf8(value).map_err(|_| ParseErrorKind::NotText)?;
    // Token bytes are ASCII.
    let name = std::str::from_utf8(name).map_err(|_| ParseErrorKind::BadHeaderLine)?;
    headers.push(HeaderName::from_name(name), value);
    Ok(())
}

/// Checks the message as a whole (§8.1.1, §20) and cuts the body by
/// Content-Length (the rest of the datagram when absent, §18.3).
fn body<'b>(
    start: &Start<'_>,
    headers: &Headers,
    buf: &'b [u8],
    body_start: usize,
) -> Result<&'b [u8], ParseErrorKind> {
    let method = match start {
        Start::Request(m, _) => Some(m),
        Start::Response(..) => None,
    };
    let content_length = check_headers(headers, method)?;
    let rest = buf.get(body_start..).unwrap_or_default();
    match content_length {
        Some(n) => rest.get(..n).ok_or(ParseErrorKind::BadContentLength),
        None => Ok(rest),
    }
}

fn build(start: Start<'_>, headers: Headers, body: &[u8]) -> Message {
    let body = body.to_vec();
    match start {
        Start::Request(method, uri) => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        Start::Response(status, reason) => Message::Response(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body,
        }),
    }
}

/// Mandatory, single-valued and well-formed headers; gives Content-Length.
fn check_headers(
    headers: &Headers,
    method: Option<&Method>,
) -> Result<Option<usize>, ParseErrorKind> {
    // Call-ID, From, To, CSeq, Max-Forwards, Content-Length: one line each.
    const LABELS: [&str; 6] = [
        "Call-ID",
        "From",
        "To",
        "CSeq",
        "Max-Forwards",
        "Content-Length",
    ];
    let mut single: [Option<&str>; 6] = [None; 6];
    let mut vias = 0usize;
    for (name, value) in headers.iter() {
        let slot = match name {
            HeaderName::Via => {
                for v in split_commas(value) {
                    addr::via(v).ok_or(ParseErrorKind::BadHeader("Via"))?;
                    vias += 1;
                }
                continue;
            }
            HeaderName::Contact => {
                for v in split_commas(value) {
                    if v != "*" {
                        addr::name_addr(v).ok_or(ParseErrorKind::BadHeader("Contact"))?;
                    }
                }
                continue;
            }
            HeaderName::CallId => 0,
            HeaderName::From => 1,
            HeaderName::To => 2,
            HeaderName::CSeq => 3,
            HeaderName::MaxForwards => 4,
            HeaderName::ContentLength => 5,
            _ => continue,
        };
        if single[slot].replace(value).is_some() {
            return Err(ParseErrorKind::DuplicateHeader(LABELS[slot]));
        }
    }
    let [call_id, from, to, cseq, max_forwards, content_length] = single;
    if vias == 0 {
        return Err(ParseErrorKind::MissingHeader("Via"));
    }
    for (value, label) in [(from, "From"), (to, "To")] {
        let v = value.ok_or(ParseErrorKind::MissingHeader(label))?;
        addr::name_addr(v).ok_or(ParseErrorKind::BadHeader(label))?;
    }
    let call_id = trim_ws(call_id.ok_or(ParseErrorKind::MissingHeader("Call-ID"))?);
    if call_id.is_empty() || call_id.bytes().any(|b| b == b' ' || b == b'\t') {
        return Err(ParseErrorKind::BadHeader("Call-ID"));
    }
    let cseq = cseq.ok_or(ParseErrorKind::MissingHeader("CSeq"))?;
    let (_, cseq_method) = addr::cseq(cseq).ok_or(ParseErrorKind::BadHeader("CSeq"))?;
    if method.is_some_and(|m| m.as_str() != cseq_method) {
        return Err(ParseErrorKind::CSeqMethodMismatch);
    }
    if let Some(v) = max_forwards {
        addr::number(v, 255).ok_or(ParseErrorKind::BadHeader("Max-Forwards"))?;
    }
    content_length
        .map(|v| {
            lex::parse_u64(trim_ws(v), 10)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(ParseErrorKind::BadContentLength)
        })
        .transpose()
}

/// The stateless reply to a bad request (§8.2.6.2 copies), when its Via,
/// Call-ID and CSeq can be read; 505 for a bad version (§8.2.1 / §21.5.21).
fn error_reply(kind: &ParseErrorKind, headers: &Headers) -> Option<Response> {
    // The sent-by is what the reply needs (§18.2.2); junk parameters after
    // it do not prevent answering.
    let top = headers
        .get(&HeaderName::Via)
        .and_then(|v| split_commas(v).next())?;
    addr::via(top.split(';').next().unwrap_or(top))?;
    let present = |n: &HeaderName| headers.get(n).is_some_and(|v| !trim_ws(v).is_empty());
    if !present(&HeaderName::CallId) || !present(&HeaderName::CSeq) {
        return None;
    }
    let (status, reason) = match kind {
        ParseErrorKind::BadVersion => (505, "Version Not Supported".to_owned()),
        other => (400, format!("Bad Request ({other})")),
    };
    let mut reply = Headers::with_capacity(8);
    for v in headers.get_all(&HeaderName::Via) {
        reply.push(HeaderName::Via, v);
    }
    for name in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        if let Some(v) = headers.get(&name) {
            reply.push(name, v);
        }
    }
    Some(Response {
        status,
        reason,
        headers: reply,
        body: Vec::new(),
    })
}
