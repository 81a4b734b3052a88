//! Stream framing for SIP over TCP (RFC 3261 §18.3): Content-Length is
//! mandatory on streams and cuts the body.

/// One unit found at the start of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `len` bytes of CRLF keep-alives (RFC 5626 §3.5.1) to skip.
    KeepAlive { len: usize },
    /// One whole message of `len` bytes (headers + body), ready for
    /// [`super::parse_message`].
    Message { len: usize },
}

/// Why the stream can no longer be framed: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("missing Content-Length on a stream")]
    MissingContentLength,
    #[error("invalid Content-Length")]
    BadContentLength,
}

/// Looks at the start of `buf`: `Ok(None)` means more bytes are needed.
pub fn frame_stream(buf: &[u8], max_message: usize) -> Result<Option<Frame>, FramingError> {
    let _ = (buf, max_message);
    todo!("message layer")
}
