//! Lexical helpers shared by the header and URI parsers (RFC 3261 §25.1):
//! tokens, LWS, quoted strings, generic parameters and comma lists.
//! All of them work on already unfolded header values and never allocate.

/// `token` characters (§25.1): alphanum and `-.!%*_+` `` ` `` `'~`.
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

/// Lookup table behind [`is_token_byte`].
const TOKEN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// A non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Index of the first byte at or after `i` that is not SP or HT.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Trims SP and HT on both ends.
pub(crate) fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let start = skip_ws(b, 0);
    let mut end = b.len();
    while end > start && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    s.get(start..end).unwrap_or_default()
}

/// `b[i]` is an opening `"`: the index just after the closing quote of the
/// quoted-string (quoted-pairs skipped, §25.1), or `None` when unterminated.
pub(crate) fn quoted_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The content of a quoted-string body (between the quotes) with its
/// quoted-pairs resolved.
pub(crate) fn unescape_quoted(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a header value on commas that are outside quoted strings and
/// `<...>` (§7.3.1), trimming each item. An empty value gives no items;
/// empty items between commas are kept so that callers can refuse them.
pub(crate) fn split_commas(value: &str) -> CommaSplit<'_> {
    CommaSplit {
        s: value,
        pos: 0,
        done: trim_ws(value).is_empty(),
    }
}

/// Iterator behind [`split_commas`].
pub(crate) struct CommaSplit<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        let mut angle = false;
        while i < b.len() {
            match b[i] {
                b'"' if !angle => match quoted_end(b, i) {
                    Some(e) => {
                        i = e;
                        continue;
                    }
                    None => i = b.len(),
                },
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    self.pos = i + 1;
                    return self.s.get(start..i).map(trim_ws);
                }
                _ => {}
            }
            i += 1;
        }
        self.done = true;
        self.s.get(start..).map(trim_ws)
    }
}

/// Bytes allowed in an unquoted generic-param value (token, host, IPv6
/// reference; §25.1 `gen-value`), a little wider to keep real traffic.
fn is_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b'[' | b']' | b':' | b'/' | b'@' | b'?' | b'&' | b'$')
}

/// Parses header parameters `*( LWS ";" LWS name [ LWS "=" LWS value ] ) LWS`
/// (§25.1 `generic-param`), calling `f` for each. Values keep their quotes.
pub(crate) fn parse_params<'a>(
    s: &'a str,
    mut f: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), ()> {
    let b = s.as_bytes();
    let mut i = skip_ws(b, 0);
    while i < b.len() {
        if b[i] != b';' {
            return Err(());
        }
        i = skip_ws(b, i + 1);
        let ns = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if ns == i {
            return Err(());
        }
        let name = s.get(ns..i).ok_or(())?;
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b'=' {
            i = skip_ws(b, i + 1);
            let vs = i;
            if i < b.len() && b[i] == b'"' {
                i = quoted_end(b, i).ok_or(())?;
            } else {
                while i < b.len() && is_value_byte(b[i]) {
                    i += 1;
                }
            }
            if vs == i {
                return Err(());
            }
            f(name, Some(s.get(vs..i).ok_or(())?));
            i = skip_ws(b, i);
        } else {
            f(name, None);
        }
    }
    Ok(())
}

/// Parses a decimal number of at most `max_digits` digits (leading zeros
/// allowed, §20.16 / §20.22).
pub(crate) fn parse_u64(s: &str, max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Splits around the first ASCII `delim` (a plain loop: the strings are
/// short and `str::split_once` costs a searcher set-up per call).
pub(crate) fn split_byte(s: &str, delim: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == delim)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Position of the first `needle` in `hay`, eight bytes at a time
/// (the parser's hot loop: line ends and colons).
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

/// Appends the decimal form of `n` without going through `format!`.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §7.3.1: commas inside quotes and `<>` do not split.
    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("  ", &[]),
            ("a, b ,c", &["a", "b", "c"]),
            (
                "\"x, y\" <sip:a@b>, <sip:c,d@e>",
                &["\"x, y\" <sip:a@b>", "<sip:c,d@e>"],
            ),
            ("\"q\\\",\" <sip:a@b>,x", &["\"q\\\",\" <sip:a@b>", "x"]),
            ("a,,b", &["a", "", "b"]),
            ("a,", &["a", ""]),
        ];
        for (input, want) in cases {
            let got: Vec<&str> = split_commas(input).collect();
            assert_eq!(&got, want, "{input:?}");
        }
    }

    /// §25.1 generic-param with LWS around `;` and `=`.
    #[test]
    fn params_with_lws() {
        let mut got = Vec::new();
        parse_params(" ;  tag = 19 ; lr;q=\"a;b\" ", |n, v| got.push((n, v))).unwrap();
        assert_eq!(
            got,
            vec![("tag", Some("19")), ("lr", None), ("q", Some("\"a;b\""))]
        );
        for bad in [";;", ";", "x", ";a=", ";a=\"open", "; a b"] {
            assert!(parse_params(bad, |_, _| {}).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_bytes() {
        let hay = b"0123456789abcdef\nXYZ:";
        for n in 0..hay.len() {
            let h = &hay[n..];
            for needle in [b'\n', b':', b'0', b'f', b'Q'] {
                assert_eq!(find_byte(h, needle), h.iter().position(|&b| b == needle));
            }
        }
        assert_eq!(find_byte(&[0x80, 0x0a, 0xff, 0x0a], 0x0a), Some(1));
        assert_eq!(find_byte(&[0xff; 9], 0xfe), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0009", 10), Some(9));
        assert_eq!(parse_u64("", 10), None);
        assert_eq!(parse_u64("-1", 10), None);
        assert_eq!(parse_u64("99999999999", 10), None);
        let mut v = Vec::new();
        push_decimal(&mut v, 0);
        push_decimal(&mut v, 1234567);
        assert_eq!(v, b"01234567");
    }
}

/// `b` without leading and trailing spaces and tabs (LWS after unfolding).
pub(crate) fn trim_bytes(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}
