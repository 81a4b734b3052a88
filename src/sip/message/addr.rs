//! Borrowed parsers for name-addr / addr-spec (§20.10, §25.1), Via
//! (§20.42) and CSeq (§20.16). They validate without allocating; the
//! owned types in `headers` are built from them.

use super::lex::{is_token, is_token_byte, parse_params, parse_u64, quoted_end, skip_ws, trim_ws};
use super::uri::{UriRef, parse_ref, split_hostport};

/// A display name as written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DisplayRef<'a> {
    /// Inside the quotes, quoted-pairs still escaped.
    Quoted(&'a str),
    /// Unquoted `*(token LWS)`.
    Tokens(&'a str),
}

/// A checked name-addr or addr-spec with its header parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameAddrRef<'a> {
    pub display: Option<DisplayRef<'a>>,
    pub uri: UriRef<'a>,
    /// Header parameters (`;tag=…`), validated, leading LWS kept.
    pub params: &'a str,
}

/// Parses `[display] <uri> *(;param)` or `addr-spec *(;param)`; in the
/// addr-spec form the parameters belong to the header (§20.10), so the URI
/// may not carry `;`, `?` or `,` of its own.
pub(crate) fn name_addr(text: &str) -> Option<NameAddrRef<'_>> {
    let t = trim_ws(text);
    let b = t.as_bytes();
    let (display, uri_text, rest) = if b.first() == Some(&b'"') {
        let end = quoted_end(b, 0)?;
        let display = DisplayRef::Quoted(t.get(1..end - 1)?);
        let lt = skip_ws(b, end);
        if b.get(lt) != Some(&b'<') {
            return None;
        }
        let (uri, rest) = angle(t, lt)?;
        (Some(display), uri, rest)
    } else if let Some(lt) = t.bytes().position(|c| c == b'<') {
        let words = trim_ws(t.get(..lt)?);
        if !words
            .split([' ', '\t'])
            .all(|w| w.is_empty() || is_token(w))
        {
            return None;
        }
        let (uri, rest) = angle(t, lt)?;
        let display = (!words.is_empty()).then_some(DisplayRef::Tokens(words));
        (display, uri, rest)
    } else {
        let end = t.bytes().position(|c| c == b';').unwrap_or(t.len());
        let uri = trim_ws(t.get(..end)?);
        if uri.bytes().any(|c| c == b'?' || c == b',') {
            return None;
        }
        (None, uri, t.get(end..)?)
    };
    let uri = parse_ref(uri_text)?;
    parse_params(rest, |_, _| {}).ok()?;
    Some(NameAddrRef {
        display,
        uri,
        params: rest,
    })
}

/// `t[lt]` is `<`: the URI inside and the text after `>`.
fn angle(t: &str, lt: usize) -> Option<(&str, &str)> {
    let close = lt + t.get(lt..)?.bytes().position(|c| c == b'>')?;
    Some((t.get(lt + 1..close)?, t.get(close + 1..)?))
}

/// A checked Via value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViaRef<'a> {
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    /// Via parameters, validated, leading LWS kept.
    pub params: &'a str,
}

/// Takes a token starting at `i`: (token, index after it).
fn token_at(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let mut j = i;
    while j < b.len() && is_token_byte(b[j]) {
        j += 1;
    }
    (j > i).then(|| s.get(i..j).map(|t| (t, j))).flatten()
}

/// Expects `c` at `i` after optional LWS, returns the index after it and LWS.
fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    let i = skip_ws(b, i);
    (b.get(i) == Some(&c)).then(|| skip_ws(b, i + 1))
}

/// Parses `sent-protocol LWS sent-by *(SEMI via-params)` with LWS allowed
/// around `/` and `:` (§20.42, §25.1).
pub(crate) fn via(text: &str) -> Option<ViaRef<'_>> {
    let b = text.as_bytes();
    let (_name, i) = token_at(text, skip_ws(b, 0))?;
    let (_version, i) = token_at(text, expect(b, i, b'/')?)?;
    let (transport, i) = token_at(text, expect(b, i, b'/')?)?;
    let hs = skip_ws(b, i);
    if hs == i {
        return None;
    }
    let mut he = hs;
    if b.get(hs) == Some(&b'[') {
        he = hs + text.get(hs..)?.bytes().position(|c| c == b']')? + 1;
    } else {
        while he < b.len() && (b[he].is_ascii_alphanumeric() || matches!(b[he], b'-' | b'.' | b'_'))
        {
            he += 1;
        }
    }
    let host = text.get(hs..he)?;
    let mut i = skip_ws(b, he);
    let mut port = None;
    if b.get(i) == Some(&b':') {
        let ps = skip_ws(b, i + 1);
        let mut pe = ps;
        while pe < b.len() && b[pe].is_ascii_digit() {
            pe += 1;
        }
        port = Some(u16::try_from(parse_u64(text.get(ps..pe)?, 5)?).ok()?);
        i = pe;
    }
    split_hostport(host)?;
    let params = text.get(i..)?;
    parse_params(params, |_, _| {}).ok()?;
    Some(ViaRef {
        transport,
        host,
        port,
        params,
    })
}

/// Parses `1*DIGIT LWS Method` with the number below 2^31 (§8.1.1.5, §20.16).
pub(crate) fn cseq(text: &str) -> Option<(u32, &str)> {
    let t = trim_ws(text);
    let (num, method) = t.split_once([' ', '\t'])?;
    let method = trim_ws(method);
    let n = parse_u64(num, 10)?;
    if n >= 1 << 31 || !is_token(method) {
        return None;
    }
    Some((u32::try_from(n).ok()?, method))
}

/// Parses Max-Forwards / Expires style delta numbers bounded by `max`.
pub(crate) fn number(text: &str, max: u64) -> Option<u32> {
    let n = parse_u64(trim_ws(text), 10)?;
    if n > max {
        return None;
    }
    u32::try_from(n).ok()
}
