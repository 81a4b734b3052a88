//! Header storage and the typed views of the headers the switch uses
//! (RFC 3261 §20): Via, From/To, Contact, CSeq, Call-ID, Max-Forwards,
//! Content-Length, Content-Type, Expires, Route/Record-Route and friends.

use super::addr::{self, DisplayRef, NameAddrRef, ViaRef};
use super::lex::{self, split_commas, trim_ws, unescape_quoted};
pub use super::name::HeaderName;
use super::{Method, ParseErrorKind, Uri};

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
    /// An empty list with room for `n` lines.
    pub fn with_capacity(n: usize) -> Headers {
        Headers {
            entries: Vec::with_capacity(n),
        }
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
        self.lines(name).flat_map(split_commas).collect()
    }

    /// Every line's value of `name`, borrowing only `self`.
    fn lines<'s>(&'s self, name: &HeaderName) -> impl Iterator<Item = &'s str> + use<'s> {
        let name = name.clone();
        self.entries
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The only line of a single-valued header; a second line is an error.
    fn single(
        &self,
        name: &HeaderName,
        label: &'static str,
    ) -> Result<Option<&str>, ParseErrorKind> {
        let mut it = self
            .entries
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let first = it.next();
        if it.next().is_some() {
            return Err(ParseErrorKind::DuplicateHeader(label));
        }
        Ok(first)
    }

    /// The only line of a mandatory single-valued header.
    fn required(&self, name: &HeaderName, label: &'static str) -> Result<&str, ParseErrorKind> {
        self.single(name, label)?
            .ok_or(ParseErrorKind::MissingHeader(label))
    }

    /// All Via values, topmost first.
    pub fn via(&self) -> Result<Vec<Via>, ParseErrorKind> {
        let vias: Vec<Via> = self
            .get_all(&HeaderName::Via)
            .flat_map(split_commas)
            .map(Via::parse)
            .collect::<Result<_, _>>()?;
        if vias.is_empty() {
            return Err(ParseErrorKind::MissingHeader("Via"));
        }
        Ok(vias)
    }
    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseErrorKind> {
        self.lines(&HeaderName::Via)
            .flat_map(split_commas)
            .next()
            .ok_or(ParseErrorKind::MissingHeader("Via"))
            .and_then(Via::parse)
    }
    pub fn from(&self) -> Result<NameAddr, ParseErrorKind> {
        let v = self.required(&HeaderName::From, "From")?;
        NameAddr::parse(v).map_err(|_| ParseErrorKind::BadHeader("From"))
    }
    pub fn to(&self) -> Result<NameAddr, ParseErrorKind> {
        let v = self.required(&HeaderName::To, "To")?;
        NameAddr::parse(v).map_err(|_| ParseErrorKind::BadHeader("To"))
    }
    pub fn call_id(&self) -> Result<&str, ParseErrorKind> {
        let v = trim_ws(self.required(&HeaderName::CallId, "Call-ID")?);
        if v.is_empty() || v.contains([' ', '\t']) {
            return Err(ParseErrorKind::BadHeader("Call-ID"));
        }
        Ok(v)
    }
    pub fn cseq(&self) -> Result<CSeq, ParseErrorKind> {
        CSeq::parse(self.required(&HeaderName::CSeq, "CSeq")?)
    }
    /// Max-Forwards, when present.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseErrorKind> {
        self.single(&HeaderName::MaxForwards, "Max-Forwards")?
            .map(|v| addr::number(v, 255).ok_or(ParseErrorKind::BadHeader("Max-Forwards")))
            .transpose()
    }
    /// Contact values (`*` is [`ContactValue::Star`]).
    pub fn contacts(&self) -> Result<Vec<ContactValue>, ParseErrorKind> {
        self.get_all(&HeaderName::Contact)
            .flat_map(split_commas)
            .map(|v| {
                if v == "*" {
                    Ok(ContactValue::Star)
                } else {
                    NameAddr::parse(v)
                        .map(ContactValue::Addr)
                        .map_err(|_| ParseErrorKind::BadHeader("Contact"))
                }
            })
            .collect()
    }
    /// Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseErrorKind> {
        self.addr_list(&HeaderName::Route, "Route")
    }
    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseErrorKind> {
        self.addr_list(&HeaderName::RecordRoute, "Record-Route")
    }
    fn addr_list(
        &self,
        name: &HeaderName,
        label: &'static str,
    ) -> Result<Vec<NameAddr>, ParseErrorKind> {
        self.get_all(name)
            .flat_map(split_commas)
            .map(|v| NameAddr::parse(v).map_err(|_| ParseErrorKind::BadHeader(label)))
            .collect()
    }
    /// Expires header (delta-seconds), when present.
    pub fn expires(&self) -> Result<Option<u32>, ParseErrorKind> {
        self.single(&HeaderName::Expires, "Expires")?
            .map(|v| {
                addr::number(v, u64::from(u32::MAX)).ok_or(ParseErrorKind::BadHeader("Expires"))
            })
            .transpose()
    }
    /// Content-Type media type, lower-cased, without parameters (`application/sdp`).
    pub fn content_type(&self) -> Option<String> {
        let v = self.get(&HeaderName::ContentType)?;
        let media = trim_ws(v.split(';').next().unwrap_or(""));
        let (t, sub) = media.split_once('/')?;
        let (t, sub) = (trim_ws(t), trim_ws(sub));
        if !lex::is_token(t) || !lex::is_token(sub) {
            return None;
        }
        let mut out = String::with_capacity(t.len() + sub.len() + 1);
        out.push_str(t);
        out.push('/');
        out.push_str(sub);
        out.make_ascii_lowercase();
        Some(out)
    }
    /// Content-Length, when present.
    pub fn content_length(&self) -> Result<Option<usize>, ParseErrorKind> {
        self.single(&HeaderName::ContentLength, "Content-Length")?
            .map(|v| {
                lex::parse_u64(trim_ws(v), 10)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(ParseErrorKind::BadContentLength)
            })
            .transpose()
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
        addr::via(text)
            .map(Via::from_ref)
            .ok_or(ParseErrorKind::BadHeader("Via"))
    }
    fn from_ref(v: ViaRef<'_>) -> Via {
        Via {
            transport: v.transport.to_ascii_uppercase(),
            host: v.host.to_ascii_lowercase(),
            port: v.port,
            params: owned_header_params(v.params),
        }
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
        f.write_str("SIP/2.0/")?;
        f.write_str(&self.transport)?;
        f.write_str(" ")?;
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        self.params.fmt_params(f)
    }
}

impl Params {
    /// Writes `;name[=value]` for each parameter.
    fn fmt_params(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, v) in &self.0 {
            f.write_str(";")?;
            f.write_str(n)?;
            if let Some(v) = v {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// Owned header parameters from text already checked by `lex::parse_params`.
fn owned_header_params(s: &str) -> Params {
    let mut out = Vec::new();
    let _ = lex::parse_params(s, |n, v| out.push((n.to_owned(), v.map(str::to_owned))));
    Params(out)
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
    /// Parses a name-addr or addr-spec; errors say `BadHeader("Contact")`
    /// as a neutral default, the header accessors name their own header.
    pub fn parse(text: &str) -> Result<NameAddr, ParseErrorKind> {
        addr::name_addr(text)
            .map(NameAddr::from_ref)
            .ok_or(ParseErrorKind::BadHeader("Contact"))
    }
    fn from_ref(r: NameAddrRef<'_>) -> NameAddr {
        NameAddr {
            display: r.display.map(|d| match d {
                DisplayRef::Quoted(q) => unescape_quoted(q),
                DisplayRef::Tokens(t) => t.to_owned(),
            }),
            uri: r.uri.to_owned(),
            params: owned_header_params(r.params),
        }
    }
    /// The `tag` parameter (§19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

impl std::fmt::Display for NameAddr {
    /// Always writes the name-addr form `"Display" <uri>;params`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(d) = &self.display {
            f.write_str("\"")?;
            for c in d.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        self.params.fmt_params(f)
    }
}

/// One Contact value.
// The unboxed NameAddr is the agreed public shape of this enum.
#[allow(clippy::large_enum_variant)]
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
        addr::cseq(text)
            .map(|(seq, m)| CSeq {
                seq,
                method: Method::from_token(m),
            })
            .ok_or(ParseErrorKind::BadHeader("CSeq"))
    }
}

impl std::fmt::Display for CSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}
