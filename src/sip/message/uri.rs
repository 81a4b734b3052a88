//! SIP/SIPS/tel URIs (RFC 3261 §19.1, RFC 3966) as used in Request-URIs and
//! name-addr values.

use super::headers::Params;
use super::lex::{parse_u64, split_byte};

/// URI scheme; unknown schemes are kept so the UAS can answer 416 (§8.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

/// A parsed URI. For `sip:`/`sips:` every field is filled; for `tel:` the
/// number is in `user` and `host` is empty; for other schemes the text after
/// the colon is in `opaque`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// User part, still %-escaped as received (§19.1.4 compares unescaped).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host name, IPv4 or bracketed IPv6 literal, lower-cased.
    pub host: String,
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The `?headers` part, raw, without the `?`.
    pub headers: Option<String>,
    /// For `Scheme::Other`: everything after `scheme:`.
    pub opaque: Option<String>,
}

/// Which of the known schemes a borrowed URI has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sip,
    Sips,
    Tel,
    Other,
}

/// A URI checked but not copied: the parser validates with this and only
/// [`Uri::parse`] allocates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UriRef<'a> {
    pub kind: Kind,
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
    /// URI parameters without the leading `;` (validated), may be empty.
    pub params: &'a str,
    pub headers: Option<&'a str>,
    pub opaque: Option<&'a str>,
}

/// Printable ASCII allowed somewhere in a URI (§25.1 reserved, unreserved,
/// escaped, plus `[]` for IPv6): no space, controls, `"<>\^{|}#` or non-ASCII.
fn is_uri_byte(b: u8) -> bool {
    URI_BYTES[usize::from(b)]
}

/// Lookup table behind [`is_uri_byte`].
const URI_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x21;
    while i < 0x7f {
        t[i] = !matches!(
            i as u8,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'{' | b'|' | b'}' | b'#'
        );
        i += 1;
    }
    t
};

/// `b[i]` is `%`: is it followed by two hex digits (§19.1.2)?
fn escape_at(b: &[u8], i: usize) -> bool {
    matches!((b.get(i + 1), b.get(i + 2)), (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit())
}

/// `%HH` escapes are well formed (§19.1.2).
fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// `uri-parameter` characters (§25.1 paramchar, `=` separates).
fn is_param_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'['
                | b']'
                | b'/'
                | b':'
                | b'&'
                | b'+'
                | b'$'
        )
}

/// Validates `;`-separated URI parameters (text after the first `;`).
fn uri_params_ok(s: &str) -> bool {
    s.split(';').all(|p| {
        let (n, v) = split_byte(p, b'=').unwrap_or((p, ""));
        !n.is_empty() && n.bytes().all(is_param_byte) && v.bytes().all(is_param_byte)
    })
}

/// Host: hostname / IPv4 (alnum, `-`, `.`, `_`) or `[IPv6]` (§25.1).
fn host_ok(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(v6) => {
                !v6.is_empty()
                    && v6
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            }
            None => false,
        }
    } else {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    }
}

/// Splits `host[:port]`; `None` when malformed.
pub(crate) fn split_hostport(s: &str) -> Option<(&str, Option<u16>)> {
    let port_at = if s.starts_with('[') {
        let close = s.bytes().position(|c| c == b']')?;
        match s.get(close + 1..)? {
            "" => None,
            rest if rest.starts_with(':') => Some(close + 1),
            _ => return None,
        }
    } else {
        s.bytes().position(|c| c == b':')
    };
    let (host, port) = match port_at {
        Some(i) => {
            let p = parse_u64(s.get(i + 1..)?, 5)?;
            (s.get(..i)?, Some(u16::try_from(p).ok()?))
        }
        None => (s, None),
    };
    host_ok(host).then_some((host, port))
}

/// Parses and validates a URI without allocating (§19.1.1, §25.1).
pub(crate) fn parse_ref(text: &str) -> Option<UriRef<'_>> {
    if text.is_empty() || !text.bytes().all(is_uri_byte) {
        return None;
    }
    let (scheme, rest) = split_byte(text, b':')?;
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok || rest.is_empty() {
        return None;
    }
    let kind = if scheme.eq_ignore_ascii_case("sip") {
        Kind::Sip
    } else if scheme.eq_ignore_ascii_case("sips") {
        Kind::Sips
    } else if scheme.eq_ignore_ascii_case("tel") {
        Kind::Tel
    } else {
        Kind::Other
    };
    let mut uri = UriRef {
        kind,
        scheme,
        user: None,
        password: None,
        host: "",
        port: None,
        params: "",
        headers: None,
        opaque: None,
    };
    match kind {
        Kind::Other => {
            uri.opaque = Some(rest);
            return Some(uri);
        }
        Kind::Tel => {
            let (number, params) = split_byte(rest, b';').unwrap_or((rest, ""));
            if number.is_empty()
                || !escapes_ok(number)
                || (!params.is_empty() && !uri_params_ok(params))
            {
                return None;
            }
            uri.user = Some(number);
            uri.params = params;
            return Some(uri);
        }
        Kind::Sip | Kind::Sips => {}
    }
    // One pass finds the delimiters and checks the escapes. '@' cannot
    // appear unescaped in the user, password, host, parameters or headers,
    // so there is at most one and it ends the userinfo (§25.1).
    let b = rest.as_bytes();
    let (mut at, mut colon, mut semi, mut q) = (None, None, None, None);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' if !escape_at(b, i) => return None,
            b'@' if at.is_some() => return None,
            b'@' => {
                at = Some(i);
                semi = None;
                q = None;
            }
            b':' if colon.is_none() => colon = Some(i),
            b';' if semi.is_none() && q.is_none() => semi = Some(i),
            b'?' if q.is_none() => q = Some(i),
            _ => {}
        }
    }
    let host_start = match at {
        Some(a) => {
            let (user, password) = match colon.filter(|&c| c < a) {
                Some(c) => (rest.get(..c)?, Some(rest.get(c + 1..a)?)),
                None => (rest.get(..a)?, None),
            };
            if user.is_empty() {
                return None;
            }
            uri.user = Some(user);
            uri.password = password;
            a + 1
        }
        None => 0,
    };
    let end = q.unwrap_or(b.len());
    let headers = match q {
        Some(q) => Some(rest.get(q + 1..)?),
        None => None,
    };
    let (hostport, params) = match semi {
        Some(s) => {
            let params = rest.get(s + 1..end)?;
            if !uri_params_ok(params) {
                return None;
            }
            (rest.get(host_start..s)?, params)
        }
        None => (rest.get(host_start..end)?, ""),
    };
    let (host, port) = split_hostport(hostport)?;
    uri.host = host;
    uri.port = port;
    uri.params = params;
    uri.headers = headers;
    Some(uri)
}

/// Splits `;`-separated URI parameters into owned pairs.
fn owned_params(s: &str) -> Params {
    if s.is_empty() {
        return Params::default();
    }
    Params(
        s.split(';')
            .map(|p| match split_byte(p, b'=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (p.to_owned(), None),
            })
            .collect(),
    )
}

impl UriRef<'_> {
    /// The owned form.
    pub(crate) fn to_owned(self) -> Uri {
        Uri {
            scheme: match self.kind {
                Kind::Sip => Scheme::Sip,
                Kind::Sips => Scheme::Sips,
                Kind::Tel => Scheme::Tel,
                Kind::Other => Scheme::Other(self.scheme.to_owned()),
            },
            user: self.user.map(str::to_owned),
            password: self.password.map(str::to_owned),
            host: self.host.to_ascii_lowercase(),
            port: self.port,
            params: owned_params(self.params),
            headers: self.headers.map(str::to_owned),
            opaque: self.opaque.map(str::to_owned),
        }
    }
}

impl Uri {
    /// Parses a URI (no surrounding `<>`, no LWS inside).
    pub fn parse(text: &str) -> Result<Uri, super::ParseErrorKind> {
        parse_ref(text)
            .map(UriRef::to_owned)
            .ok_or(super::ParseErrorKind::BadRequestUri)
    }

    /// A `sip:` URI for `user@host:port`.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_ascii_lowercase(),
            port,
            params: Params::default(),
            headers: None,
            opaque: None,
        }
    }

    /// The scheme as written in the URI.
    pub fn scheme_str(&self) -> &str {
        match &self.scheme {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }

    /// `true` for `sip:` and `sips:`.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }
}

impl std::fmt::Display for Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.scheme_str())?;
        f.write_str(":")?;
        if let Scheme::Other(_) = self.scheme {
            return f.write_str(self.opaque.as_deref().unwrap_or(""));
        }
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                f.write_str(":")?;
                f.write_str(pw)?;
            }
            if self.scheme != Scheme::Tel {
                f.write_str("@")?;
            }
        }
        if self.scheme != Scheme::Tel {
            f.write_str(&self.host)?;
            if let Some(p) = self.port {
                write!(f, ":{p}")?;
            }
        }
        for (n, v) in &self.params.0 {
            f.write_str(";")?;
            f.write_str(n)?;
            if let Some(v) = v {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        if let Some(h) = &self.headers {
            f.write_str("?")?;
            f.write_str(h)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §19.1.1 / §25.1: the parts of SIP, tel and other URIs.
    #[test]
    fn parses_parts() {
        let u = Uri::parse("sip:alice:pw@Atlanta.COM:5061;transport=tcp;lr?subject=x").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, "atlanta.com");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.get("transport"), Some(Some("tcp")));
        assert_eq!(u.params.get("LR"), Some(None));
        assert_eq!(u.headers.as_deref(), Some("subject=x"));

        // RFC 4475 §3.1.1.9: `;` and an escaped `@` in the user part.
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");

        let u = Uri::parse("sips:[2001:db8::1]:5061").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[2001:db8::1]", Some(5061)));

        let u = Uri::parse("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(
            (u.scheme.clone(), u.user.as_deref(), u.host.as_str()),
            (Scheme::Tel, Some("+1-201-555-0123"), "")
        );

        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme, Scheme::Other("soap.beep".into()));
        assert_eq!(u.opaque.as_deref(), Some("//192.0.2.103:3002"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sip:",
            "sip:user@",
            "sip:a b@host",
            "<sip:a@b>",
            "sip:host:99999",
            "sip:host:",
            "sip:ho st",
            "sip:host;;lr",
            "sip:host;=x",
            "sip:u%zz@host",
            "nocolon",
            "1x:foo",
            "sip:[::1",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Display writes back what parse accepted (host lower-cased).
    #[test]
    fn display_round_trips() {
        for text in [
            "sip:alice@atlanta.com",
            "sips:bob:secret@[2001:db8::1]:5061;transport=tls;lr?x=y&z=w",
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
            "tel:+15551234;ext=7",
            "urn:uuid:1234",
            "sip:example.com;maddr=239.255.255.1;ttl=15",
        ] {
            let u = Uri::parse(text).unwrap();
            assert_eq!(u.to_string(), text);
            assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        }
        assert_eq!(
            Uri::sip(Some("a"), "H.com", Some(5060)).to_string(),
            "sip:a@h.com:5060"
        );
    }
}
