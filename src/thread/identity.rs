//! Who a caller or sender is: phone numbers normalized to E.164 with
//! `phonenumber` (ITU-T E.164), `sip:`/`tel:` URIs (RFC 3261 §19.1, RFC 3966),
//! email addresses (RFC 5321 §2.4: compared case-insensitively here), and
//! WhatsApp, chat and SIP handles.

use phonenumber::country;

use super::text_enum;

/// Longest raw identity text looked at; longer input is not an identity.
const MAX_RAW: usize = 512;

text_enum!(
    /// The kind of an identity; a value is unique per kind.
    IdentityKind, "identity kind" {
        Phone => "phone",
        Email => "email",
        Whatsapp => "whatsapp",
        Chat => "chat",
        Sip => "sip",
    }
);

/// A valid phone number in E.164 form (`+14155550123`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct E164(String);

impl E164 {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number's country (ISO 3166 region), the default region for
    /// national numbers dialled to or from it.
    pub fn region(&self) -> Option<country::Id> {
        phonenumber::parse(None, &self.0).ok()?.country().id()
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Caller ids that mean "no number" (RFC 3323 §4.1.1.3 anonymous URIs and
/// what carriers put in From for withheld numbers).
const ANONYMOUS: &[&str] = &[
    "anonymous",
    "restricted",
    "private",
    "unknown",
    "unavailable",
    "withheld",
    "blocked",
];

/// An ISO 3166 region code (`US`, `de`) as `phonenumber`'s id.
pub fn region(code: &str) -> Option<country::Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// Normalizes a phone number, a `tel:` URI or the user part of a `sip:`
/// URI (with or without `<…>` and display name) to E.164. National numbers
/// are read in `default_region` (the dialled number's country). Anonymous,
/// restricted, invalid or impossible numbers give `None`.
pub fn parse_phone(raw: &str, default_region: Option<country::Id>) -> Option<E164> {
    if raw.len() > MAX_RAW {
        return None;
    }
    let user = phone_user_part(raw)?;
    if ANONYMOUS.iter().any(|a| user.eq_ignore_ascii_case(a)) {
        return None;
    }
    let (plus, digits) = match user.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, user),
    };
    // RFC 3966 §5.1.1 visual separators; anything else is not a number.
    let mut clean = String::with_capacity(digits.len() + 1);
    if plus {
        clean.push('+');
    }
    for c in digits.chars() {
        match c {
            '0'..='9' => clean.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    let count = clean.chars().filter(char::is_ascii_digit).count();
    if !(3..=17).contains(&count) {
        return None;
    }
    let region = if plus { None } else { default_region };
    if !plus && region.is_none() {
        return None;
    }
    let number = phonenumber::parse(region, &clean).ok()?;
    if !number.is_valid() {
        return None;
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    Some(E164(e164))
}

/// The number text inside `raw`: the user part of a SIP URI, the number of
/// a tel URI, or `raw` itself.
fn phone_user_part(raw: &str) -> Option<&str> {
    let mut s = raw.trim();
    // `"Name" <sip:…>;tag=x`: keep what is inside the angle brackets.
    if let Some(start) = s.find('<') {
        let rest = s.get(start + 1..)?;
        s = &rest[..rest.find('>')?];
    }
    let lower = s
        .get(..s.len().min(5))
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        let after = &s[s.find(':')? + 1..];
        // RFC 3261 §19.1.1: user part ends at '@'; no '@' means no user.
        let user = &after[..after.find('@')?];
        // Telephone-subscriber parameters (`;isub=`, `;npdi`) follow ';'.
        return Some(user.split(';').next().unwrap_or(user).trim());
    }
    if lower.starts_with("tel:") {
        let number = &s[4..];
        return Some(number.split(';').next().unwrap_or(number).trim());
    }
    Some(s)
}

/// Lower-cased `local@domain`, or `None` when it is not an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let Some(start) = s.find('<') {
        let rest = s.get(start + 1..)?;
        s = &rest[..rest.find('>')?];
    }
    let s = s.trim();
    let s = s
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map_or(s, |_| &s[7..]);
    if s.is_empty() || s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = s.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || local.contains('@') || !domain.contains('.') {
        return None;
    }
    Some(s.to_lowercase())
}

/// Lower-cased `user@host` of a SIP URI (no scheme, port kept, no
/// parameters).
pub fn normalize_sip(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let Some(start) = s.find('<') {
        let rest = s.get(start + 1..)?;
        s = &rest[..rest.find('>')?];
    }
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
        .unwrap_or(&lower);
    let rest = rest.split([';', '?']).next().unwrap_or_default().trim();
    let (user, host) = rest.split_once('@')?;
    if user.is_empty() || host.is_empty() || rest.len() > 256 {
        return None;
    }
    Some(rest.to_owned())
}

/// A chat handle: trimmed, 1–256 characters, no control characters.
pub fn normalize_chat(raw: &str) -> Option<String> {
    let s = raw.trim();
    (!s.is_empty() && s.chars().count() <= 256 && !s.chars().any(char::is_control))
        .then(|| s.to_owned())
}

/// The stored value of an identity of `kind`, or `None` when `raw` is not
/// one. WhatsApp ids are E.164 numbers (a `whatsapp:` prefix is dropped).
pub fn normalize(
    kind: IdentityKind,
    raw: &str,
    default_region: Option<country::Id>,
) -> Option<String> {
    match kind {
        IdentityKind::Phone => parse_phone(raw, default_region).map(|n| n.0),
        IdentityKind::Whatsapp => {
            let t = raw.trim();
            let t = t
                .get(..9)
                .filter(|p| p.eq_ignore_ascii_case("whatsapp:"))
                .map_or(t, |_| &t[9..]);
            parse_phone(t, default_region).map(|n| n.0)
        }
        IdentityKind::Email => normalize_email(raw),
        IdentityKind::Chat => normalize_chat(raw),
        IdentityKind::Sip => normalize_sip(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Option<country::Id> {
        region("US")
    }

    #[test]
    fn phone_forms() {
        let want = Some("+14155550123");
        let cases: &[(&str, Option<country::Id>, Option<&str>)] = &[
            ("+14155550123", None, want),
            ("+1 (415) 555-0123", None, want),
            // National number read in the dialled number's country.
            ("(415) 555-0123", us(), want),
            ("4155550123", us(), want),
            ("4155550123", None, None),
            ("030 1234567", region("DE"), Some("+49301234567")),
            ("+44 20 7946 0958", None, Some("+442079460958")),
            // RFC 3966 tel URI with visual separators and parameters.
            ("tel:+1-415-555-0123", None, want),
            ("tel:+1-415-555-0123;ext=12", None, want),
            // RFC 3261 §19.1.6: user=phone SIP URI, in angle brackets.
            ("sip:+14155550123@gw.example.com;user=phone", None, want),
            (
                "\"Ann\" <sip:+14155550123@10.0.0.1:5060;user=phone>;tag=9",
                None,
                want,
            ),
            ("sip:4155550123@pbx", us(), want),
            // No number at all.
            ("sip:anonymous@anonymous.invalid", us(), None),
            (
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
                us(),
                None,
            ),
            ("Restricted", us(), None),
            ("sip:Restricted@carrier.example", us(), None),
            ("sip:pbx.example.com", us(), None),
            ("", us(), None),
            ("123", us(), None),
            ("+1415", None, None),
            ("+1415555012345678901", None, None),
            ("+1 415 555 0123 x", None, None),
            ("+10005550123", None, None),
            ("sip:alice@example.com", us(), None),
        ];
        for (raw, region, want) in cases {
            let got = parse_phone(raw, *region);
            assert_eq!(got.as_ref().map(E164::as_str), *want, "{raw:?}");
        }
    }

    #[test]
    fn phone_input_is_bounded() {
        assert_eq!(parse_phone(&"1".repeat(10_000), us()), None);
        assert_eq!(parse_phone("<sip:+1415", us()), None);
        assert_eq!(parse_phone("sip:", us()), None);
        assert_eq!(parse_phone("tel:", us()), None);
    }

    #[test]
    fn region_of_a_number() {
        let n = parse_phone("+442079460958", None).unwrap();
        assert_eq!(n.region(), region("GB"));
    }

    #[test]
    fn email_addresses() {
        assert_eq!(
            normalize_email("\"Ann Lee\" <Ann.Lee@Example.COM>").as_deref(),
            Some("ann.lee@example.com")
        );
        assert_eq!(normalize_email("mailto:a@b.co").as_deref(), Some("a@b.co"));
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a@b"), None);
        assert_eq!(normalize_email("a b@c.com"), None);
        assert_eq!(normalize_email("@c.com"), None);
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            normalize(IdentityKind::Whatsapp, "whatsapp:+14155550123", None).as_deref(),
            Some("+14155550123")
        );
        assert_eq!(
            normalize(
                IdentityKind::Sip,
                "<sips:Alice@Example.com;transport=tls>",
                None
            )
            .as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            normalize(IdentityKind::Chat, "  web:42 ", None).as_deref(),
            Some("web:42")
        );
        assert_eq!(normalize(IdentityKind::Chat, " ", None), None);
    }
}
