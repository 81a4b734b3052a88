//! Header names (RFC 3261 §7.3, §20): the known ones, their compact forms
//! (§7.3.3) and case-insensitive comparison.

/// A header name. Known names are matched case-insensitively and in their
/// compact form (§7.3.3: i, m, e, l, c, f, s, k, t, v, o, u, r, b, x, y);
/// others are kept as received and compare case-insensitively.
#[derive(Debug, Clone)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Route,
    RecordRoute,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    AuthenticationInfo,
    Expires,
    MinExpires,
    Allow,
    Accept,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    UserAgent,
    Server,
    Subject,
    Date,
    Warning,
    RetryAfter,
    Event,
    ReferTo,
    ReferredBy,
    PAssertedIdentity,
    CallInfo,
    Reason,
    SessionExpires,
    /// Any other header, name as received.
    Other(String),
}

impl HeaderName {
    /// Recognises a name (long or compact form, any case).
    pub fn from_name(name: &str) -> HeaderName {
        if name.len() == 1 {
            let compact = match name.as_bytes()[0].to_ascii_lowercase() {
                b'i' => Some(HeaderName::CallId),
                b'm' => Some(HeaderName::Contact),
                b'e' => Some(HeaderName::ContentEncoding),
                b'l' => Some(HeaderName::ContentLength),
                b'c' => Some(HeaderName::ContentType),
                b'f' => Some(HeaderName::From),
                b's' => Some(HeaderName::Subject),
                b'k' => Some(HeaderName::Supported),
                b't' => Some(HeaderName::To),
                b'v' => Some(HeaderName::Via),
                b'o' => Some(HeaderName::Event),
                b'u' => return HeaderName::Other("Allow-Events".to_owned()),
                b'r' => Some(HeaderName::ReferTo),
                b'b' => Some(HeaderName::ReferredBy),
                b'x' => Some(HeaderName::SessionExpires),
                b'y' => return HeaderName::Other("Identity".to_owned()),
                _ => None,
            };
            if let Some(h) = compact {
                return h;
            }
        }
        known_long(name).unwrap_or_else(|| HeaderName::Other(name.to_owned()))
    }

    /// The canonical long form used when serializing (`Call-ID`, `CSeq`, `WWW-Authenticate`).
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Other(s) => s,
            known => known.static_str(),
        }
    }

    /// Canonical name of a known header (`""` for `Other`).
    pub(crate) fn static_str(&self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::AuthenticationInfo => "Authentication-Info",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Subject => "Subject",
            HeaderName::Date => "Date",
            HeaderName::Warning => "Warning",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Event => "Event",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::PAssertedIdentity => "P-Asserted-Identity",
            HeaderName::CallInfo => "Call-Info",
            HeaderName::Reason => "Reason",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::Other(_) => "",
        }
    }
}

/// A known long name, any case; `None` for others.
fn known_long(name: &str) -> Option<HeaderName> {
    let eq = |s: &str| name.eq_ignore_ascii_case(s);
    Some(match name.len() {
        2 if eq("To") => HeaderName::To,
        3 if eq("Via") => HeaderName::Via,
        4 if eq("From") => HeaderName::From,
        4 if eq("CSeq") => HeaderName::CSeq,
        4 if eq("Date") => HeaderName::Date,
        5 if eq("Route") => HeaderName::Route,
        5 if eq("Allow") => HeaderName::Allow,
        5 if eq("Event") => HeaderName::Event,
        6 if eq("Accept") => HeaderName::Accept,
        6 if eq("Server") => HeaderName::Server,
        6 if eq("Reason") => HeaderName::Reason,
        7 if eq("Call-ID") => HeaderName::CallId,
        7 if eq("Contact") => HeaderName::Contact,
        7 if eq("Expires") => HeaderName::Expires,
        7 if eq("Require") => HeaderName::Require,
        7 if eq("Subject") => HeaderName::Subject,
        7 if eq("Warning") => HeaderName::Warning,
        8 if eq("Refer-To") => HeaderName::ReferTo,
        9 if eq("Supported") => HeaderName::Supported,
        9 if eq("Call-Info") => HeaderName::CallInfo,
        10 if eq("User-Agent") => HeaderName::UserAgent,
        11 if eq("Min-Expires") => HeaderName::MinExpires,
        11 if eq("Unsupported") => HeaderName::Unsupported,
        11 if eq("Retry-After") => HeaderName::RetryAfter,
        11 if eq("Referred-By") => HeaderName::ReferredBy,
        12 if eq("Max-Forwards") => HeaderName::MaxForwards,
        12 if eq("Content-Type") => HeaderName::ContentType,
        12 if eq("Record-Route") => HeaderName::RecordRoute,
        13 if eq("Authorization") => HeaderName::Authorization,
        13 if eq("Proxy-Require") => HeaderName::ProxyRequire,
        14 if eq("Content-Length") => HeaderName::ContentLength,
        15 if eq("Session-Expires") => HeaderName::SessionExpires,
        16 if eq("Content-Encoding") => HeaderName::ContentEncoding,
        16 if eq("WWW-Authenticate") => HeaderName::WwwAuthenticate,
        18 if eq("Proxy-Authenticate") => HeaderName::ProxyAuthenticate,
        19 if eq("Proxy-Authorization") => HeaderName::ProxyAuthorization,
        19 if eq("Authentication-Info") => HeaderName::AuthenticationInfo,
        19 if eq("P-Asserted-Identity") => HeaderName::PAssertedIdentity,
        _ => return None,
    })
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for HeaderName {}

impl std::hash::Hash for HeaderName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let HeaderName::Other(s) = self {
            for b in s.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}
