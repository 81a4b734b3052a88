//! Serializer: start line, one line per header entry, Content-Length, body
//! (RFC 3261 §7). Writes straight into one preallocated buffer.

use super::lex::push_decimal;
use super::{HeaderName, Headers, Request, Response, Uri};

/// `fmt::Write` over a byte buffer, so a `Display` value is written without
/// an intermediate `String`.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Bytes the header section and body will need (Content-Length included).
fn size_hint(headers: &Headers, body: usize) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    lines + 24 + 2 + body
}

/// Appends the headers (Content-Length dropped), a fresh Content-Length,
/// the empty line and the body.
fn write_rest(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for (name, value) in headers.iter() {
        if *name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

fn write_uri(out: &mut Vec<u8>, uri: &Uri) {
    use std::fmt::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(ByteWriter(out), "{uri}");
}

/// `Method SP Request-URI SP SIP/2.0 CRLF headers CRLF body` (§7.1).
pub(crate) fn request(req: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + size_hint(&req.headers, req.body.len()));
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    write_uri(&mut out, &req.uri);
    out.extend_from_slice(b" SIP/2.0\r\n");
    write_rest(&mut out, &req.headers, &req.body);
    out
}

/// `SIP/2.0 SP Status-Code SP Reason-Phrase CRLF headers CRLF body` (§7.2).
pub(crate) fn response(resp: &Response) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + resp.reason.len() + size_hint(&resp.headers, resp.body.len()));
    out.extend_from_slice(b"SIP/2.0 ");
    push_decimal(&mut out, usize::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(resp.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_rest(&mut out, &resp.headers, &resp.body);
    out
}
