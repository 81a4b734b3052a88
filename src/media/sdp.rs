//! SDP (RFC 4566) and the offer/answer model (RFC 3264) for the switch's
//! audio legs.
//!
//! [`SessionDescription::parse`] reads a body into the data model below;
//! `Display` writes it back with CRLF line endings in the order of
//! RFC 4566 §5. [`answer`] negotiates an answer to a caller's offer,
//! [`offer`] builds the offer the switch sends to agents and
//! [`read_answer`] reads the agent's answer to it. Everything here is pure:
//! no sockets, no clock.

mod answer;
mod parse;

use std::fmt;
use std::net::IpAddr;

pub use answer::{
    Codec, LocalMedia, Negotiated, TELEPHONE_EVENT_PT, answer, offer, offer_with_direction,
    read_answer,
};

/// Largest SDP body the parser accepts (DESIGN §10: every bound explicit).
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Most lines in one SDP body.
pub const MAX_SDP_LINES: usize = 1_000;
/// Most media sections (`m=` lines) in one SDP body.
pub const MAX_MEDIA_SECTIONS: usize = 64;

/// Why an SDP body was refused, or why negotiation failed.
///
/// Parse errors name the 1-based line that was wrong. Use
/// [`SdpError::status_code`] to pick the SIP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is {len} bytes, more than {max}")]
    TooLarge { len: usize, max: usize },
    #[error("SDP body has more than {max} lines")]
    TooManyLines { max: usize },
    #[error("SDP body has more than {max} media sections")]
    TooManyMedia { max: usize },
    #[error("SDP body is not valid UTF-8")]
    NotUtf8,
    #[error("SDP body is empty")]
    Empty,
    #[error("line {line}: expected `<type>=<value>`")]
    Syntax { line: usize },
    #[error("line {line}: the first line must be v=0")]
    Version { line: usize },
    #[error("SDP body has no o= line")]
    MissingOrigin,
    #[error("line {line}: bad o= line: {reason}")]
    Origin { line: usize, reason: &'static str },
    #[error("line {line}: bad c= line: {reason}")]
    Connection { line: usize, reason: &'static str },
    #[error("line {line}: bad t= line")]
    Timing { line: usize },
    #[error("line {line}: bad b= line")]
    Bandwidth { line: usize },
    #[error("line {line}: bad m= line: {reason}")]
    Media { line: usize, reason: &'static str },
    #[error("line {line}: bad a={name} attribute: {reason}")]
    Attribute {
        line: usize,
        name: &'static str,
        reason: &'static str,
    },
    #[error("line {line}: {kind}= line appears more than once")]
    Duplicate { line: usize, kind: char },
    #[error("line {line}: {kind}= line is not allowed inside a media section")]
    Misplaced { line: usize, kind: char },
    /// RFC 3264 §6: nothing to answer with (488 Not Acceptable Here).
    #[error("the SDP has no usable audio stream")]
    NoAudio,
    /// RFC 3264 §6: the audio stream offers only codecs we lack (488).
    #[error("no offered audio codec is supported")]
    NoCommonCodec,
    /// RFC 4566 §5.7: the audio stream has no `c=` at either level, or its
    /// address is a host name we cannot use without resolving it (488).
    #[error("the audio stream has no usable connection address")]
    NoConnectionAddress,
}

impl SdpError {
    /// The SIP status to answer an INVITE/UPDATE whose SDP failed with this
    /// error: 488 Not Acceptable Here when the SDP was readable but cannot
    /// be accepted (RFC 3261 §21.4.26), 400 Bad Request when it was not SDP.
    pub fn status_code(&self) -> u16 {
        if self.is_not_acceptable() { 488 } else { 400 }
    }

    /// True for negotiation failures, the errors meaning
    /// "488 Not Acceptable Here".
    pub fn is_not_acceptable(&self) -> bool {
        matches!(
            self,
            SdpError::NoAudio | SdpError::NoCommonCodec | SdpError::NoConnectionAddress
        )
    }
}

/// A parsed SDP body (RFC 4566 §5): session-level fields, then media
/// sections in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` (§5.2).
    pub origin: Origin,
    /// `s=` (§5.3); `-` when the body had none.
    pub session_name: String,
    /// Session-level `c=` (§5.7), the default for every media section.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines (§5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines (§5.9); `t=0 0` is written when empty.
    pub timing: Vec<Timing>,
    /// Session-level `a=` lines (§5.13).
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i= u= e= p= r= z= k=` and unknown
    /// types), kept in arrival order.
    pub other: Vec<OtherLine>,
    /// `m=` sections (§5.14) in order.
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`
/// (RFC 4566 §5.2). The id and version are kept as the numeric text they
/// arrived as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub addr_type: AddrType,
    pub address: String,
}

/// The address type of `c=` and `o=` (RFC 4566 §5.7); the network type is
/// always `IN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
}

/// `c=IN <addrtype> <address>[/ttl][/count]` (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr_type: AddrType,
    /// The address as written, with any `/ttl` or `/count` suffix.
    pub address: String,
}

/// `b=<bwtype>:<bandwidth>` (RFC 4566 §5.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub kind: String,
    pub value: u64,
}

/// `t=<start> <stop>` in NTP seconds (RFC 4566 §5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
}

/// A line the switch does not interpret, kept so it survives a round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherLine {
    pub kind: char,
    pub value: String,
}

/// One `m=` section (RFC 4566 §5.14) with its own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, … as written.
    pub kind: String,
    /// Transport port; 0 marks a rejected or disabled stream (RFC 3264 §6).
    pub port: u16,
    /// `/<number of ports>` after the port, if given.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, … as written.
    pub protocol: String,
    /// Formats as written; RTP payload types for `RTP/*` protocols.
    pub formats: Vec<String>,
    /// Media-level `c=`, overriding the session's.
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub attributes: Vec<Attribute>,
    /// Other media-level lines (`i=`, `k=`, unknown types).
    pub other: Vec<OtherLine>,
}

/// Stream direction (RFC 4566 §6, RFC 3264 §5.1); `sendrecv` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answerer answers with (RFC 3264 §6.1): sendonly ↔
    /// recvonly; sendrecv and inactive stay.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether this side may send media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side expects to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_name(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    pub payload_type: u8,
    /// Encoding name as written; compare case-insensitively.
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    pub port: u16,
    pub connection: Option<Connection>,
}

/// An `a=` line (RFC 4566 §5.13). The attributes the switch uses are typed;
/// the rest are kept as name and optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Rtpmap(Rtpmap),
    /// `a=fmtp:<format> <parameters>` (RFC 4566 §6).
    Fmtp {
        format: String,
        params: String,
    },
    Direction(Direction),
    /// `a=ptime:<ms>` (RFC 4566 §6), rounded to whole milliseconds.
    Ptime(u32),
    Rtcp(RtcpAttribute),
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    RtcpMux,
    Other {
        name: String,
        value: Option<String>,
    },
}

impl SessionDescription {
    /// Parses an SDP body (RFC 4566 §5), bounded by [`MAX_SDP_BYTES`],
    /// [`MAX_SDP_LINES`] and [`MAX_MEDIA_SECTIONS`]. Accepts CRLF or bare LF
    /// line ends; lines of unknown type are kept in `other`.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        parse::parse(body)
    }

    /// The session-level direction attribute; `sendrecv` when absent.
    pub fn direction(&self) -> Direction {
        direction_of(&self.attributes).unwrap_or_default()
    }

    /// The audio sections in order, with their indexes in `media`.
    pub fn audio(&self) -> impl Iterator<Item = (usize, &MediaDescription)> {
        self.media.iter().enumerate().filter(|(_, m)| m.is_audio())
    }

    /// The connection that applies to `media`: its own `c=`, else the
    /// session's (RFC 4566 §5.7).
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction that applies to `media`: its own attribute, else the
    /// session's, else `sendrecv` (RFC 4566 §6).
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        direction_of(&media.attributes).unwrap_or_else(|| self.direction())
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<SessionDescription, SdpError> {
        SessionDescription::parse(s.as_bytes())
    }
}

impl MediaDescription {
    /// Whether this is an `m=audio` section (media types are
    /// case-insensitive).
    pub fn is_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio")
    }

    /// Formats that are RTP payload types (0–127), in offer order; other
    /// formats are skipped.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }

    /// The `a=rtpmap` for `payload_type`, if any (the first one wins).
    pub fn rtpmap(&self, payload_type: u8) -> Option<&Rtpmap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtpmap(m) if m.payload_type == payload_type => Some(m),
            _ => None,
        })
    }

    /// The `a=fmtp` parameters for `format`, if any.
    pub fn fmtp(&self, format: &str) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp { format: f, params } if f == format => Some(params.as_str()),
            _ => None,
        })
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// `a=ptime` in milliseconds, if given.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// `a=rtcp` (RFC 3605), if given.
    pub fn rtcp(&self) -> Option<&RtcpAttribute> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present (RFC 5761 §5.1.1).
    pub fn rtcp_mux(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| matches!(a, Attribute::RtcpMux))
    }
}

impl Connection {
    /// A unicast connection to `ip`.
    pub fn new(ip: IpAddr) -> Connection {
        Connection {
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, without any `/ttl` or `/count`; `None` for a
    /// host name (RFC 4566 §5.7 allows FQDNs; the switch does not resolve).
    pub fn ip(&self) -> Option<IpAddr> {
        let base = self.address.split('/').next().unwrap_or("");
        base.parse().ok()
    }
}

impl AddrType {
    /// The address type matching `ip`.
    pub fn of(ip: IpAddr) -> AddrType {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
}

fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

/// Writes `<kind>=<value>` lines with CRLF.
struct Lines<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Lines<'_, '_> {
    fn line(&mut self, kind: char, value: impl fmt::Display) -> fmt::Result {
        write!(self.0, "{kind}={value}\r\n")
    }

    fn others(&mut self, others: &[OtherLine], kinds: &[char]) -> fmt::Result {
        for o in others.iter().filter(|o| kinds.contains(&o.kind)) {
            self.line(o.kind, &o.value)?;
        }
        Ok(())
    }

    fn bandwidths(&mut self, bandwidths: &[Bandwidth]) -> fmt::Result {
        for b in bandwidths {
            self.line('b', format_args!("{}:{}", b.kind, b.value))?;
        }
        Ok(())
    }

    fn attributes(&mut self, attributes: &[Attribute]) -> fmt::Result {
        for a in attributes {
            self.line('a', a)?;
        }
        Ok(())
    }
}

/// Line types with a fixed place before `c=` (RFC 4566 §5).
const BEFORE_CONNECTION: &[char] = &['i', 'u', 'e', 'p'];
/// Line types with a fixed place after `t=`.
const AFTER_TIMING: &[char] = &['r', 'z', 'k'];

fn is_unplaced(kind: char) -> bool {
    !BEFORE_CONNECTION.contains(&kind) && !AFTER_TIMING.contains(&kind)
}

/// Serializes in RFC 4566 §5 order with CRLF line ends. Unknown line types
/// go just before the `a=` lines of their level.
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Lines(f);
        w.line('v', 0)?;
        w.line('o', &self.origin)?;
        w.line('s', &self.session_name)?;
        w.others(&self.other, BEFORE_CONNECTION)?;
        if let Some(c) = &self.connection {
            w.line('c', c)?;
        }
        w.bandwidths(&self.bandwidths)?;
        if self.timing.is_empty() {
            w.line('t', "0 0")?;
        }
        for t in &self.timing {
            w.line('t', format_args!("{} {}", t.start, t.stop))?;
        }
        w.others(&self.other, AFTER_TIMING)?;
        for o in self.other.iter().filter(|o| is_unplaced(o.kind)) {
            w.line(o.kind, &o.value)?;
        }
        w.attributes(&self.attributes)?;
        for m in &self.media {
            w.line('m', m)?;
            w.others(&m.other, &['i'])?;
            if let Some(c) = &m.connection {
                w.line('c', c)?;
            }
            w.bandwidths(&m.bandwidths)?;
            w.others(&m.other, &['k'])?;
            for o in m.other.iter().filter(|o| o.kind != 'i' && o.kind != 'k') {
                w.line(o.kind, &o.value)?;
            }
            w.attributes(&m.attributes)?;
        }
        Ok(())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.addr_type.as_str(),
            self.address
        )
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type.as_str(), self.address)
    }
}

/// The value of the `m=` line.
impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.protocol)?;
        for fmt_ in &self.formats {
            write!(f, " {fmt_}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(ch) = self.channels {
            write!(f, "/{ch}")?;
        }
        Ok(())
    }
}

/// The value of the `a=` line.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Rtpmap(m) => write!(f, "rtpmap:{m}"),
            Attribute::Fmtp { format, params } if params.is_empty() => write!(f, "fmtp:{format}"),
            Attribute::Fmtp { format, params } => write!(f, "fmtp:{format} {params}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::Rtcp(r) => {
                write!(f, "rtcp:{}", r.port)?;
                if let Some(c) = &r.connection {
                    write!(f, " {c}")?;
                }
                Ok(())
            }
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
        }
    }
}
