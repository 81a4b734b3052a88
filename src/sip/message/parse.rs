//! The bounded parser (RFC 3261 §7, §25). Never panics on any input.

use super::{Message, Response};

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
    let _ = (bytes, limits);
    todo!("message layer")
}
