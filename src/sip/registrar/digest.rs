//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).

use md5::Digest as _;

/// Digest hash algorithm (RFC 8760 adds SHA-256 to SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    /// The `algorithm=` token.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 => to_hex(&md5::Md5::digest(data)),
            DigestAlgorithm::Sha256 => to_hex(&sha2::Sha256::digest(data)),
        }
    }
}

/// HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2). The store
/// keeps this, never the password.
pub fn ha1(algorithm: DigestAlgorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hex(format!("{username}:{realm}:{password}").as_bytes())
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// Most auth-params accepted in one credentials value (bounds the parse).
const MAX_PARAMS: usize = 32;

/// Why an `Authorization` value could not be used (RFC 7235 §2.1, RFC 7616 §3.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("Malformed credentials")]
    Malformed,
    #[error("Too many credential parameters")]
    TooManyParams,
    #[error("Duplicate {0} parameter")]
    Duplicate(String),
    #[error("Missing {0} parameter")]
    Missing(&'static str),
    #[error("Unsupported digest algorithm")]
    UnsupportedAlgorithm,
}

/// Digest credentials from an `Authorization` or `Proxy-Authorization`
/// value (RFC 3261 §22.4, RFC 7616 §3.4). Values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The digest-uri, as the client wrote it (it is hashed verbatim).
    pub uri: String,
    pub response: String,
    /// Absent `algorithm` means MD5 (RFC 7616 §3.3).
    pub algorithm: DigestAlgorithm,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    /// The nonce count as sent (8 hex digits); it is hashed verbatim.
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

impl DigestAlgorithm {
    /// Maps an `algorithm=` token; the `-sess` variants are not offered and
    /// not accepted.
    pub fn from_token(token: &str) -> Option<DigestAlgorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(DigestAlgorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(DigestAlgorithm::Sha256)
        } else {
            None
        }
    }
}

impl Credentials {
    /// Parses one credentials value. `Ok(None)` when the scheme is not
    /// `Digest` (no credentials for us); parameters may come in any order,
    /// as tokens or quoted strings with quoted-pairs; unknown ones are
    /// ignored; a repeated parameter is an error (RFC 7235 §2.1).
    pub fn parse(value: &str) -> Result<Option<Credentials>, DigestError> {
        let value = value.trim_start();
        let scheme_end = value.find([' ', '\t']).unwrap_or(value.len());
        let (scheme, rest) = value.split_at(scheme_end);
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Ok(None);
        }
        let params = parse_auth_params(rest)?;
        let mut known: [Option<String>; 10] = Default::default();
        const NAMES: [&str; 10] = [
            "username",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "cnonce",
            "qop",
            "nc",
            "opaque",
        ];
        for (name, val) in params {
            if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(&name)) {
                if known[i].is_some() {
                    return Err(DigestError::Duplicate(name));
                }
                known[i] = Some(val);
            }
        }
        let [
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            qop,
            nc,
            opaque,
        ] = known;
        let algorithm = match algorithm {
            None => DigestAlgorithm::Md5,
            Some(a) => DigestAlgorithm::from_token(&a).ok_or(DigestError::UnsupportedAlgorithm)?,
        };
        Ok(Some(Credentials {
            username: username.ok_or(DigestError::Missing("username"))?,
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            uri: uri.ok_or(DigestError::Missing("uri"))?,
            response: response.ok_or(DigestError::Missing("response"))?,
            algorithm,
            cnonce,
            qop,
            nc,
            opaque,
        }))
    }

    /// The nonce count as a number: exactly 8 hex digits (RFC 7616 §3.4).
    pub fn nonce_count(&self) -> Option<u32> {
        let nc = self.nc.as_deref()?;
        if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(nc, 16).ok()
    }

    /// The `response` this request should carry for `ha1`, with qop=auth
    /// (RFC 7616 §3.4.1): H(HA1:nonce:nc:cnonce:qop:HA2), HA2 =
    /// H(method:digest-uri). `None` unless qop is `auth` with a cnonce and
    /// a valid nc: the RFC 2069 form without qop is not accepted, because
    /// it gives no nonce count to reject replays with (RFC 7616 §5.13).
    pub fn expected_response(&self, method: &str, ha1: &str) -> Option<String> {
        if !self.qop.as_deref()?.eq_ignore_ascii_case("auth") {
            return None;
        }
        let cnonce = self.cnonce.as_deref()?;
        self.nonce_count()?;
        let nc = self.nc.as_deref()?;
        let alg = self.algorithm;
        let ha2 = alg.hex(format!("{method}:{}", self.uri).as_bytes());
        Some(alg.hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce).as_bytes()))
    }

    /// Whether the client's `response` is right for `ha1` (constant-time
    /// comparison, DESIGN §10).
    pub fn verify(&self, method: &str, ha1: &str) -> bool {
        match self.expected_response(method, ha1) {
            Some(expected) => constant_time_eq(
                expected.as_bytes(),
                self.response.to_ascii_lowercase().as_bytes(),
            ),
            None => false,
        }
    }
}

/// Splits `name=value, name="quoted", …` into pairs (RFC 7235 §2.1
/// auth-param). Quoted strings lose their quotes and quoted-pairs.
fn parse_auth_params(text: &str) -> Result<Vec<(String, String)>, DigestError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        // Empty list elements are allowed (RFC 7230 §7).
        while i < bytes.len() && bytes[i] == b',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= bytes.len() {
            break;
        }
        if out.len() >= MAX_PARAMS {
            return Err(DigestError::TooManyParams);
        }
        let start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err(DigestError::Malformed);
        }
        let name = text[start..i].to_owned();
        skip_ws(&mut i);
        if bytes.get(i) != Some(&b'=') {
            return Err(DigestError::Malformed);
        }
        i += 1;
        skip_ws(&mut i);
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut v = Vec::new();
            loop {
                match bytes.get(i) {
                    None => return Err(DigestError::Malformed),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let escaped = *bytes.get(i + 1).ok_or(DigestError::Malformed)?;
                        v.push(escaped);
                        i += 2;
                    }
                    Some(&b) => {
                        v.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8(v).map_err(|_| DigestError::Malformed)?
        } else {
            let vstart = i;
            while i < bytes.len() && is_token_byte(bytes[i]) {
                i += 1;
            }
            if i == vstart {
                return Err(DigestError::Malformed);
            }
            text[vstart..i].to_owned()
        };
        out.push((name, value));
        skip_ws(&mut i);
        match bytes.get(i) {
            None => break,
            Some(b',') => i += 1,
            Some(_) => return Err(DigestError::Malformed),
        }
    }
    Ok(out)
}

/// RFC 7230 §3.2.6 tchar (also covers SIP's token, RFC 3261 §25.1).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One `WWW-Authenticate` / `Proxy-Authenticate` value offering qop=auth
/// (RFC 7616 §3.3); `stale` says the previous nonce was valid but too old.
pub fn challenge(algorithm: DigestAlgorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let mut out = format!(
        "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
        quote(realm),
        quote(nonce),
        algorithm.as_str()
    );
    if stale {
        out.push_str(", stale=true");
    }
    out
}

/// The challenges for one nonce, one per algorithm in the order given
/// (most preferred first, RFC 8760 §2.4, RFC 7616 §3.7). Each becomes its
/// own header line.
pub fn challenges(
    algorithms: &[DigestAlgorithm],
    realm: &str,
    nonce: &str,
    stale: bool,
) -> Vec<String> {
    algorithms
        .iter()
        .map(|a| challenge(*a, realm, nonce, stale))
        .collect()
}

/// Compares two byte strings in time that depends only on their lengths
/// (lengths are public: both sides are fixed-size hex).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1 example (Mufasa / http-auth@example.org / Circle of
    /// Life): these HA1 values give the RFC's published responses.
    #[test]
    fn ha1_matches_rfc7616_example() {
        let (u, r, p) = ("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            ha1(DigestAlgorithm::Md5, u, r, p),
            "3d78807defe7de2157e2b0b6573a855f"
        );
        assert_eq!(
            ha1(DigestAlgorithm::Sha256, u, r, p),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc_authorization(algorithm: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             uri=\"/dir/index.html\", algorithm={algorithm}, nonce=\"{RFC_NONCE}\", \
             nc=00000001, cnonce=\"{RFC_CNONCE}\", qop=auth, response=\"{response}\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    /// RFC 7616 §3.9.1: the published MD5 and SHA-256 responses verify
    /// against the stored HA1, and a one-digit change does not.
    #[test]
    fn rfc7616_example_responses_verify() {
        let (u, r, p) = ("Mufasa", "http-auth@example.org", "Circle of Life");
        for (alg, name, resp) in [
            (
                DigestAlgorithm::Md5,
                "MD5",
                "8ca523f5e9506fed4657c9700eebdbec",
            ),
            (
                DigestAlgorithm::Sha256,
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let creds = Credentials::parse(&rfc_authorization(name, resp))
                .unwrap()
                .unwrap();
            assert_eq!(creds.algorithm, alg);
            assert_eq!(creds.nonce_count(), Some(1));
            let ha1 = ha1(alg, u, r, p);
            assert!(creds.verify("GET", &ha1), "{name}");
            assert!(!creds.verify("POST", &ha1), "{name}");
            let mut bad = creds.clone();
            bad.response.replace_range(0..1, "0");
            assert!(!bad.verify("GET", &ha1), "{name}");
        }
    }

    /// RFC 7235 §2.1 / RFC 7616 §3.4: any order, tokens or quoted strings
    /// with quoted-pairs, unknown parameters ignored, algorithm defaults to
    /// MD5, other schemes are not ours.
    #[test]
    fn parses_credentials_forms() {
        let c = Credentials::parse(
            "digest  nc=0000000a,qop=auth , response=\"abc\",uri=\"sip:example.com\",\
             foo=bar, username=\"a\\\"b\\\\c\",realm=\"r\",nonce=\"n\",cnonce=\"x\"",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.username, "a\"b\\c");
        assert_eq!(c.algorithm, DigestAlgorithm::Md5);
        assert_eq!(c.nonce_count(), Some(10));
        assert_eq!(c.uri, "sip:example.com");
        assert_eq!(c.qop.as_deref(), Some("auth"));

        assert_eq!(Credentials::parse("Basic QWxhZGRpbjpvcGVu"), Ok(None));
        assert_eq!(Credentials::parse(""), Ok(None));
        for bad in [
            "Digest username=\"a",
            "Digest username",
            "Digest username=\"a\" realm=\"b\"",
            "Digest =x",
            "Digest username=\"a\\",
        ] {
            assert_eq!(
                Credentials::parse(bad),
                Err(DigestError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            Credentials::parse("Digest username=a, username=b"),
            Err(DigestError::Duplicate("username".into()))
        );
        assert_eq!(
            Credentials::parse(
                "Digest username=a, realm=r, nonce=n, uri=u, response=x, algorithm=MD5-sess"
            ),
            Err(DigestError::UnsupportedAlgorithm)
        );
        assert_eq!(
            Credentials::parse("Digest username=a, realm=r, uri=u, response=x"),
            Err(DigestError::Missing("nonce"))
        );
        let many = format!("Digest {}", "a=b,".repeat(40));
        assert_eq!(Credentials::parse(&many), Err(DigestError::TooManyParams));
    }

    /// RFC 7616 §3.4 / §5.13: no qop (RFC 2069 form), other qops, and
    /// malformed nc are refused.
    #[test]
    fn refuses_responses_without_qop_auth() {
        let base = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
                    uri=\"/dir/index.html\", nonce=\"n\", response=\"00\"";
        let ha1 = "x";
        for extra in [
            "",
            ", qop=auth-int, nc=00000001, cnonce=\"c\"",
            ", qop=auth, nc=1, cnonce=\"c\"",
            ", qop=auth, nc=0000000g, cnonce=\"c\"",
            ", qop=auth, nc=00000001",
        ] {
            let c = Credentials::parse(&format!("{base}{extra}"))
                .unwrap()
                .unwrap();
            assert_eq!(c.expected_response("GET", ha1), None, "{extra}");
            assert!(!c.verify("GET", ha1));
        }
    }

    /// RFC 8760 §2.4 / RFC 7616 §3.3: SHA-256 offered before MD5, qop
    /// quoted, stale only when asked, realm quoted and escaped.
    #[test]
    fn challenge_format() {
        let both = [DigestAlgorithm::Sha256, DigestAlgorithm::Md5];
        let [first, second] =
            <[String; 2]>::try_from(challenges(&both, "sw \"x\"", "abc", false)).unwrap();
        assert_eq!(
            first,
            "Digest realm=\"sw \\\"x\\\"\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\""
        );
        assert_eq!(
            second,
            "Digest realm=\"sw \\\"x\\\"\", nonce=\"abc\", algorithm=MD5, qop=\"auth\""
        );
        let [stale, _] = <[String; 2]>::try_from(challenges(&both, "r", "n", true)).unwrap();
        assert!(stale.ends_with(", stale=true"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
