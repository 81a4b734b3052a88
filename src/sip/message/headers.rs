//! Header storage and the typed views of the headers the switch uses
//! (RFC 3261 §20): Via, From/To, Contact, CSeq, Call-ID, Max-Forwards,
//! Content-Length, Content-Type, Expires, Route/Record-Route and friends.

use super::{Method, ParseErrorKind, Uri};

/// A header name. Known names are matched case-insensitively and in their
/// compact form (§7.3.3: i, m, e, l, c, f, s, k, t, v, o, u, r, b, x, y);
/// others are kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
        let _ = name;
        todo!("message layer")
    }

    /// The canonical long form used when serializing (`Call-ID`, `CSeq`, `WWW-Authenticate`).
    pub fn as_str(&self) -> &str {
        todo!("message layer")
    }
}

/// Ordered header list. Each entry is one header line (value unfolded and
/// trimmed); a line may hold several comma-separated values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(HeaderName, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Every entry in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.entries.iter().map(|(n, v)| (n, v.as_str()))
    }
    /// Appends one header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.push((name, value.into()));
    }
    /// Inserts one header line before all others (a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.insert(0, (name, value.into()));
    }
    /// Replaces every line of `name` by one line holding `value`, in the
    /// position of the first one (appended when absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                self.entries[i].1 = value;
                let mut j = 0;
                self.entries.retain(|(n, _)| {
                    j += 1;
                    j - 1 == i || *n != name
                });
            }
            None => self.entries.push((name, value)),
        }
    }
    /// Removes every line of `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.entries.retain(|(n, _)| n != name);
    }
    /// The first line's value.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every line's value, in order (not split on commas).
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a comma-list header (Via, Contact, Route, Record-Route,
    /// Allow, Supported…), split on top-level commas (not inside quotes or
    /// `<>`), in order across lines.
    pub fn values(&self, name: &HeaderName) -> Vec<&str> {
        let _ = name;
        todo!("message layer")
    }

    /// All Via values, topmost first.
    pub fn via(&self) -> Result<Vec<Via>, ParseErrorKind> {
        todo!("message layer")
    }
    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseErrorKind> {
        todo!("message layer")
    }
    pub fn from(&self) -> Result<NameAddr, ParseErrorKind> {
        todo!("message layer")
    }
    pub fn to(&self) -> Result<NameAddr, ParseErrorKind> {
        todo!("message layer")
    }
    pub fn call_id(&self) -> Result<&str, ParseErrorKind> {
        todo!("message layer")
    }
    pub fn cseq(&self) -> Result<CSeq, ParseErrorKind> {
        todo!("message layer")
    }
    /// Max-Forwards, when present.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseErrorKind> {
        todo!("message layer")
    }
    /// Contact values (`*` is [`ContactValue::Star`]).
    pub fn contacts(&self) -> Result<Vec<ContactValue>, ParseErrorKind> {
        todo!("message layer")
    }
    /// Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseErrorKind> {
        todo!("message layer")
    }
    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseErrorKind> {
        todo!("message layer")
    }
    /// Expires header (delta-seconds), when present.
    pub fn expires(&self) -> Result<Option<u32>, ParseErrorKind> {
        todo!("message layer")
    }
    /// Content-Type media type, lower-cased, without parameters (`application/sdp`).
    pub fn content_type(&self) -> Option<String> {
        todo!("message layer")
    }
    /// Content-Length, when present.
    pub fn content_length(&self) -> Result<Option<usize>, ParseErrorKind> {
        todo!("message layer")
    }
}

/// Header or URI parameters, order kept; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Sets (or replaces) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// One Via value (§20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`, `WS`, …).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(text: &str) -> Result<Via, ParseErrorKind> {
        let _ = text;
        todo!("message layer")
    }
    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }
    /// `host[:port]` as written (the sent-by of §18.2.1).
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!("message layer")
    }
}

/// A name-addr or addr-spec with header parameters (From, To, Contact,
/// Route, Record-Route, P-Asserted-Identity; §20.10, §25.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters after the address (`;tag=…`, `;expires=…`).
    pub params: Params,
}

impl NameAddr {
    pub fn parse(text: &str) -> Result<NameAddr, ParseErrorKind> {
        let _ = text;
        todo!("message layer")
    }
    /// The `tag` parameter (§19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

impl std::fmt::Display for NameAddr {
    /// Always writes the name-addr form `"Display" <uri>;params`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!("message layer")
    }
}

/// One Contact value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue {
    /// `Contact: *` (REGISTER removing all bindings, §10.2.2).
    Star,
    Addr(NameAddr),
}

/// CSeq (§20.16): sequence number below 2^31 and the method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(text: &str) -> Result<CSeq, ParseErrorKind> {
        let _ = text;
        todo!("message layer")
    }
}

#[allow(dead_code)]
fn _uses(_: Uri, _: Method) {}
