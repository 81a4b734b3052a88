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
}
