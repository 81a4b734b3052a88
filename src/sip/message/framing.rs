//! Stream framing for SIP over TCP (RFC 3261 §18.3): Content-Length is
//! mandatory on streams and cuts the body.

use super::lex::{find_byte, parse_u64, trim_ws};

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

/// The end of the header section: `(end of the last header line, start of
/// the body)`. Accepts CRLF and bare LF line ends.
pub(crate) fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = find_byte(buf.get(i..)?, b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl + 1, nl + 2)),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some((nl + 1, nl + 3)),
            _ => i = nl + 1,
        }
    }
    None
}

/// Looks at the start of `buf`: `Ok(None)` means more bytes are needed.
pub fn frame_stream(buf: &[u8], max_message: usize) -> Result<Option<Frame>, FramingError> {
    let crlf = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if crlf > 0 {
        return Ok(Some(Frame::KeepAlive { len: crlf }));
    }
    let window = &buf[..buf.len().min(max_message)];
    let Some((head_end, body_start)) = header_end(window) else {
        return if buf.len() >= max_message {
            Err(FramingError::TooLarge(max_message))
        } else {
            Ok(None)
        };
    };
    let mut length: Option<usize> = None;
    for line in window[..head_end].split(|&b| b == b'\n') {
        // Continuation lines (§7.3.1) never start a Content-Length.
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        let Some(colon) = find_byte(line, b':') else {
            continue;
        };
        let name = super::lex::trim_bytes(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value =
            std::str::from_utf8(&line[colon + 1..]).map_err(|_| FramingError::BadContentLength)?;
        let value = trim_ws(value.trim_end_matches('\r'));
        let n = parse_u64(value, 10)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(FramingError::BadContentLength)?;
        if length.is_some_and(|l| l != n) {
            return Err(FramingError::BadContentLength);
        }
        length = Some(n);
    }
    let length = length.ok_or(FramingError::MissingContentLength)?;
    let total = body_start
        .checked_add(length)
        .ok_or(FramingError::TooLarge(max_message))?;
    if total > max_message {
        return Err(FramingError::TooLarge(max_message));
    }
    Ok((buf.len() >= total).then_some(Frame::Message { len: total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §18.3 framing by Content-Length; RFC 5626 §3.5.1 CRLF keep-alives.
    #[test]
    fn frames() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nbody";
        type Case<'a> = (&'a [u8], usize, Result<Option<Frame>, FramingError>);
        let cases: &[Case] = &[
            (b"\r\n\r\n", 100, Ok(Some(Frame::KeepAlive { len: 4 }))),
            (b"\r\nOPT", 100, Ok(Some(Frame::KeepAlive { len: 2 }))),
            (b"", 100, Ok(None)),
            (b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n", 100, Ok(None)),
            (&msg[..msg.len() - 1], 100, Ok(None)),
            (msg, 100, Ok(Some(Frame::Message { len: msg.len() }))),
            (
                b"A\r\nContent-Length: 0\r\n\r\nNEXT",
                100,
                Ok(Some(Frame::Message { len: 24 })),
            ),
            (
                b"A\r\nX: y\r\n\r\n",
                100,
                Err(FramingError::MissingContentLength),
            ),
            (
                b"A\r\ncontent-LENGTH: -1\r\n\r\n",
                100,
                Err(FramingError::BadContentLength),
            ),
            (
                b"A\r\nl: 1x\r\n\r\n",
                100,
                Err(FramingError::BadContentLength),
            ),
            (
                b"A\r\nl: 1\r\nl: 2\r\n\r\n",
                100,
                Err(FramingError::BadContentLength),
            ),
            (
                b"A\r\nl: 99999999999999999999\r\n\r\n",
                100,
                Err(FramingError::BadContentLength),
            ),
            (b"A\r\nl: 90\r\n\r\n", 50, Err(FramingError::TooLarge(50))),
            (&[b'A'; 60], 50, Err(FramingError::TooLarge(50))),
            (&[b'A'; 40], 50, Ok(None)),
        ];
        for (input, max, want) in cases {
            assert_eq!(
                &frame_stream(input, *max),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
