//! The bounded SDP parser (RFC 4566 §5).

use std::net::IpAddr;

use super::{
    AddrType, Attribute, Bandwidth, Connection, Direction, MAX_MEDIA_SECTIONS, MAX_SDP_BYTES,
    MAX_SDP_LINES, MediaDescription, Origin, OtherLine, RtcpAttribute, Rtpmap, SdpError,
    SessionDescription, Timing,
};

/// Session-level fields gathered before the first `m=`.
#[derive(Default)]
struct Session {
    origin: Option<Origin>,
    session_name: Option<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    timing: Vec<Timing>,
    attributes: Vec<Attribute>,
    other: Vec<OtherLine>,
}

pub(super) fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge {
            len: body.len(),
            max: MAX_SDP_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;

    let mut session = Session::default();
    let mut media: Vec<MediaDescription> = Vec::new();
    let mut seen_version = false;

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if index >= MAX_SDP_LINES {
            return Err(SdpError::TooManyLines { max: MAX_SDP_LINES });
        }
        // RFC 4566 §5 forbids whitespace around `=`; trailing whitespace
        // is common in the wild and harmless.
        let raw = raw.trim_end();
        if raw.is_empty() {
            continue;
        }
        let (kind, value) = split_line(raw).ok_or(SdpError::Syntax { line })?;

        if !seen_version {
            if kind != 'v' || value.trim() != "0" {
                return Err(SdpError::Version { line });
            }
            seen_version = true;
            continue;
        }

        match media.last_mut() {
            None => session_line(&mut session, line, kind, value)?,
            Some(m) if kind != 'm' => media_line(m, line, kind, value)?,
            Some(_) => {}
        }
        if kind == 'm' {
            if media.len() >= MAX_MEDIA_SECTIONS {
                return Err(SdpError::TooManyMedia {
                    max: MAX_MEDIA_SECTIONS,
                });
            }
            media.push(parse_media(line, value)?);
        }
    }

    if !seen_version {
        return Err(SdpError::Empty);
    }
    Ok(SessionDescription {
        origin: session.origin.ok_or(SdpError::MissingOrigin)?,
        session_name: session.session_name.unwrap_or_else(|| "-".to_owned()),
        connection: session.connection,
        bandwidths: session.bandwidths,
        timing: session.timing,
        attributes: session.attributes,
        other: session.other,
        media,
    })
}

/// Splits `<type>=<value>`; the type is one ASCII letter (RFC 4566 §5).
fn split_line(raw: &str) -> Option<(char, &str)> {
    let mut chars = raw.chars();
    let kind = chars.next().filter(char::is_ascii_alphabetic)?;
    let rest = chars.as_str().strip_prefix('=')?;
    Some((kind, rest))
}

fn session_line(s: &mut Session, line: usize, kind: char, value: &str) -> Result<(), SdpError> {
    match kind {
        'v' => return Err(SdpError::Duplicate { line, kind }),
        'o' => {
            if s.origin.is_some() {
                return Err(SdpError::Duplicate { line, kind });
            }
            s.origin = Some(parse_origin(line, value)?);
        }
        's' => {
            if s.session_name.is_some() {
                return Err(SdpError::Duplicate { line, kind });
            }
            s.session_name = Some(value.to_owned());
        }
        'c' => {
            if s.connection.is_some() {
                return Err(SdpError::Duplicate { line, kind });
            }
            s.connection = Some(
                parse_connection(value).map_err(|reason| SdpError::Connection { line, reason })?,
            );
        }
        'b' => s.bandwidths.push(parse_bandwidth(line, value)?),
        't' => s.timing.push(parse_timing(line, value)?),
        'a' => s.attributes.push(parse_attribute(line, value)?),
        'm' => {}
        _ => s.other.push(OtherLine {
            kind,
            value: value.to_owned(),
        }),
    }
    Ok(())
}

fn media_line(
    m: &mut MediaDescription,
    line: usize,
    kind: char,
    value: &str,
) -> Result<(), SdpError> {
    match kind {
        'v' | 'o' | 's' | 't' | 'u' | 'e' | 'p' | 'r' | 'z' => {
            return Err(SdpError::Misplaced { line, kind });
        }
        'c' => {
            let c =
                parse_connection(value).map_err(|reason| SdpError::Connection { line, reason })?;
            // Several c= lines in one section are multicast layering
            // (RFC 4566 §5.7); the switch uses the first.
            if m.connection.is_none() {
                m.connection = Some(c);
            }
        }
        'b' => m.bandwidths.push(parse_bandwidth(line, value)?),
        'a' => m.attributes.push(parse_attribute(line, value)?),
        _ => m.other.push(OtherLine {
            kind,
            value: value.to_owned(),
        }),
    }
    Ok(())
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`
/// (RFC 4566 §5.2).
fn parse_origin(line: usize, value: &str) -> Result<Origin, SdpError> {
    let err = |reason| SdpError::Origin { line, reason };
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [
        username,
        session_id,
        session_version,
        net_type,
        addr_type,
        address,
    ] = fields[..]
    else {
        return Err(err("expected 6 fields"));
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(session_id) {
        return Err(err("session id is not a number"));
    }
    if !numeric(session_version) {
        return Err(err("session version is not a number"));
    }
    if !net_type.eq_ignore_ascii_case("IN") {
        return Err(err("network type is not IN"));
    }
    let addr_type = parse_addr_type(addr_type).ok_or(err("address type is not IP4 or IP6"))?;
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: session_version.to_owned(),
        addr_type,
        address: address.to_owned(),
    })
}

fn parse_addr_type(s: &str) -> Option<AddrType> {
    if s.eq_ignore_ascii_case("IP4") {
        Some(AddrType::Ip4)
    } else if s.eq_ignore_ascii_case("IP6") {
        Some(AddrType::Ip6)
    } else {
        None
    }
}

/// `IN <addrtype> <address>` (RFC 4566 §5.7), shared by `c=` and
/// `a=rtcp` (RFC 3605 §2.1). Errors are the reason text.
fn parse_connection(value: &str) -> Result<Connection, &'static str> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [net_type, addr_type, address] = fields[..] else {
        return Err("expected `IN <addrtype> <address>`");
    };
    if !net_type.eq_ignore_ascii_case("IN") {
        return Err("network type is not IN");
    }
    let addr_type = parse_addr_type(addr_type).ok_or("address type is not IP4 or IP6")?;
    let mut parts = address.split('/');
    let base = parts.next().unwrap_or("");
    if !parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        return Err("bad /ttl or /count suffix");
    }
    match base.parse::<IpAddr>() {
        Ok(ip) if AddrType::of(ip) != addr_type => {
            return Err("address does not match its address type");
        }
        Ok(_) => {}
        Err(_) if is_host_name(base) => {}
        Err(_) => return Err("address is neither an IP address nor a host name"),
    }
    Ok(Connection {
        addr_type,
        address: address.to_owned(),
    })
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `b=<bwtype>:<bandwidth>` (RFC 4566 §5.8).
fn parse_bandwidth(line: usize, value: &str) -> Result<Bandwidth, SdpError> {
    let (kind, amount) = value.split_once(':').ok_or(SdpError::Bandwidth { line })?;
    let kind = kind.trim();
    let value = amount
        .trim()
        .parse::<u64>()
        .map_err(|_| SdpError::Bandwidth { line })?;
    if kind.is_empty() || kind.contains(char::is_whitespace) {
        return Err(SdpError::Bandwidth { line });
    }
    Ok(Bandwidth {
        kind: kind.to_owned(),
        value,
    })
}

/// `t=<start> <stop>` (RFC 4566 §5.9).
fn parse_timing(line: usize, value: &str) -> Result<Timing, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [start, stop] = fields[..] else {
        return Err(SdpError::Timing { line });
    };
    match (start.parse(), stop.parse()) {
        (Ok(start), Ok(stop)) => Ok(Timing { start, stop }),
        _ => Err(SdpError::Timing { line }),
    }
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...` (RFC 4566 §5.14).
fn parse_media(line: usize, value: &str) -> Result<MediaDescription, SdpError> {
    let err = |reason| SdpError::Media { line, reason };
    let mut fields = value.split_ascii_whitespace();
    let (Some(kind), Some(port), Some(protocol)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(err("expected media, port, protocol and formats"));
    };
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(err("no formats"));
    }
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (
            p,
            Some(n.parse::<u16>().map_err(|_| err("bad port count"))?),
        ),
        None => (port, None),
    };
    let port = port.parse::<u16>().map_err(|_| err("bad port"))?;
    Ok(MediaDescription {
        kind: kind.to_owned(),
        port,
        port_count,
        protocol: protocol.to_owned(),
        formats,
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

/// `a=<name>[:<value>]` (RFC 4566 §5.13); the attributes the switch uses
/// are checked here so a bad one is reported with its line.
fn parse_attribute(line: usize, value: &str) -> Result<Attribute, SdpError> {
    let (name, val) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (value, None),
    };
    let attr = match (name, val) {
        ("rtpmap", Some(v)) => {
            Attribute::Rtpmap(parse_rtpmap(v).map_err(|reason| SdpError::Attribute {
                line,
                name: "rtpmap",
                reason,
            })?)
        }
        ("fmtp", Some(v)) => {
            let v = v.trim_start();
            let (format, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            if format.is_empty() {
                return Err(SdpError::Attribute {
                    line,
                    name: "fmtp",
                    reason: "no format",
                });
            }
            Attribute::Fmtp {
                format: format.to_owned(),
                params: params.trim().to_owned(),
            }
        }
        ("ptime", Some(v)) => Attribute::Ptime(parse_ptime(v).ok_or(SdpError::Attribute {
            line,
            name: "ptime",
            reason: "not a number of milliseconds",
        })?),
        ("rtcp", Some(v)) => {
            Attribute::Rtcp(parse_rtcp(v).map_err(|reason| SdpError::Attribute {
                line,
                name: "rtcp",
                reason,
            })?)
        }
        ("rtcp-mux", None) => Attribute::RtcpMux,
        (name, None) => match Direction::from_name(name) {
            Some(d) => Attribute::Direction(d),
            None => Attribute::Other {
                name: name.to_owned(),
                value: None,
            },
        },
        (name, Some(v)) => Attribute::Other {
            name: name.to_owned(),
            value: Some(v.to_owned()),
        },
    };
    Ok(attr)
}

/// `<payload type> <encoding name>/<clock rate>[/<channels>]`.
fn parse_rtpmap(value: &str) -> Result<Rtpmap, &'static str> {
    let value = value.trim();
    let (pt, encoding) = value
        .split_once(char::is_whitespace)
        .ok_or("expected `<payload type> <encoding>/<rate>`")?;
    let payload_type = pt.parse::<u8>().map_err(|_| "bad payload type")?;
    if payload_type > 127 {
        return Err("payload type above 127");
    }
    let mut parts = encoding.trim().split('/');
    let name = parts.next().unwrap_or("");
    if name.is_empty() {
        return Err("no encoding name");
    }
    let clock_rate = parts
        .next()
        .and_then(|r| r.parse::<u32>().ok())
        .ok_or("bad clock rate")?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse::<u16>().map_err(|_| "bad channel count")?),
        None => None,
    };
    if parts.next().is_some() {
        return Err("too many `/` fields");
    }
    Ok(Rtpmap {
        payload_type,
        encoding: name.to_owned(),
        clock_rate,
        channels,
    })
}

/// Packet time in milliseconds; fractions (RFC 8866 §6.4) are rounded.
fn parse_ptime(value: &str) -> Option<u32> {
    let value = value.trim();
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || !digits(whole) || !digits(frac) {
        return None;
    }
    let ms = whole.parse::<u32>().ok()?;
    let round_up = frac.bytes().next().is_some_and(|b| b >= b'5');
    Some(ms + u32::from(round_up))
}

/// `<port> [IN <addrtype> <address>]` (RFC 3605 §2.1).
fn parse_rtcp(value: &str) -> Result<RtcpAttribute, &'static str> {
    let value = value.trim();
    let (port, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    let port = port.parse::<u16>().map_err(|_| "bad port")?;
    let connection = if rest.trim().is_empty() {
        None
    } else {
        Some(parse_connection(rest)?)
    };
    Ok(RtcpAttribute { port, connection })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<SessionDescription, SdpError> {
        SessionDescription::parse(s.as_bytes())
    }

    /// SIPp's default UAC offer (its built-in `uac` scenario).
    const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n\
s=-\r\n\
c=IN IP4 127.0.1.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn sipp_default_offer_rfc4566_s5() {
        let sdp = parse_str(SIPP_OFFER).unwrap();
        assert_eq!(sdp.origin.username, "user1");
        assert_eq!(sdp.origin.session_id, "53655765");
        assert_eq!(sdp.origin.session_version, "2353687637");
        assert_eq!(sdp.session_name, "-");
        assert_eq!(
            sdp.connection.as_ref().unwrap().ip(),
            Some("127.0.1.1".parse().unwrap())
        );
        assert_eq!(sdp.timing, vec![Timing { start: 0, stop: 0 }]);
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert!(m.is_audio());
        assert_eq!(m.port, 6000);
        assert_eq!(m.protocol, "RTP/AVP");
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![0]);
        assert_eq!(m.rtpmap(0).unwrap().encoding, "PCMU");
        assert_eq!(sdp.direction_for(m), Direction::SendRecv);
    }

    #[test]
    fn media_level_attributes_rfc4566_s6_rfc3605() {
        let sdp = parse_str(
            "v=0\n\
o=- 1 1 IN IP6 ::1\n\
s=call\n\
i=info line\n\
t=0 0\n\
a=sendonly\n\
m=audio 4000 RTP/AVP 96 101\n\
c=IN IP6 2001:db8::5\n\
b=AS:64\n\
a=rtpmap:96 PCMA/8000/1\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-16\n\
a=ptime:30\n\
a=rtcp:4005 IN IP6 2001:db8::6\n\
a=rtcp-mux\n\
a=recvonly\n\
a=x-custom:some value\n\
x=unknown line\n",
        )
        .unwrap();
        assert_eq!(sdp.direction(), Direction::SendOnly);
        assert_eq!(sdp.other[0].kind, 'i');
        let m = &sdp.media[0];
        assert_eq!(m.connection.as_ref().unwrap().addr_type, AddrType::Ip6);
        assert_eq!(m.bandwidths[0].kind, "AS");
        assert_eq!(m.bandwidths[0].value, 64);
        assert_eq!(m.rtpmap(96).unwrap().channels, Some(1));
        assert_eq!(m.rtpmap(101).unwrap().clock_rate, 8000);
        assert_eq!(m.fmtp("101"), Some("0-16"));
        assert_eq!(m.ptime(), Some(30));
        let rtcp = m.rtcp().unwrap();
        assert_eq!(rtcp.port, 4005);
        assert_eq!(
            rtcp.connection.as_ref().unwrap().ip(),
            Some("2001:db8::6".parse().unwrap())
        );
        assert!(m.rtcp_mux());
        // RFC 4566 §6: the media-level direction overrides the session's.
        assert_eq!(sdp.direction_for(m), Direction::RecvOnly);
        assert!(m.attributes.contains(&Attribute::Other {
            name: "x-custom".into(),
            value: Some("some value".into())
        }));
        assert_eq!(m.other[0].kind, 'x');
    }

    #[test]
    fn serializes_with_crlf_and_round_trips_rfc4566_s5() {
        let sdp = parse_str(SIPP_OFFER).unwrap();
        let text = sdp.to_string();
        assert_eq!(text, SIPP_OFFER);
        assert_eq!(parse_str(&text).unwrap(), sdp);
    }

    #[test]
    fn errors_name_the_line_rfc4566_s5() {
        let cases: &[(&str, SdpError)] = &[
            ("", SdpError::Empty),
            ("\r\n\r\n", SdpError::Empty),
            ("o=- 1 1 IN IP4 1.2.3.4\r\n", SdpError::Version { line: 1 }),
            ("v=1\r\n", SdpError::Version { line: 1 }),
            ("v=0\r\ns=-\r\n", SdpError::MissingOrigin),
            ("v=0\r\nhello\r\n", SdpError::Syntax { line: 2 }),
            ("v=0\r\n = x\r\n", SdpError::Syntax { line: 2 }),
            (
                "v=0\r\no=- 1 IN IP4 1.2.3.4\r\n",
                SdpError::Origin {
                    line: 2,
                    reason: "expected 6 fields",
                },
            ),
            (
                "v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
                SdpError::Origin {
                    line: 2,
                    reason: "session id is not a number",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 ::1\r\n",
                SdpError::Connection {
                    line: 4,
                    reason: "address does not match its address type",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nc=ATM NSAP x\r\n",
                SdpError::Connection {
                    line: 3,
                    reason: "network type is not IN",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nt=0\r\n",
                SdpError::Timing { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nb=AS\r\n",
                SdpError::Bandwidth { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n",
                SdpError::Media {
                    line: 3,
                    reason: "bad port",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 7000 RTP/AVP\r\n",
                SdpError::Media {
                    line: 3,
                    reason: "no formats",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
                SdpError::Attribute {
                    line: 4,
                    name: "rtpmap",
                    reason: "bad clock rate",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n",
                SdpError::Attribute {
                    line: 4,
                    name: "rtpmap",
                    reason: "payload type above 127",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp:abc\r\n",
                SdpError::Attribute {
                    line: 4,
                    name: "rtcp",
                    reason: "bad port",
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 7000 RTP/AVP 0\r\nt=0 0\r\n",
                SdpError::Misplaced { line: 4, kind: 't' },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\no=- 1 1 IN IP4 h\r\n",
                SdpError::Duplicate { line: 3, kind: 'o' },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_str(text).unwrap_err(), *want, "{text:?}");
        }
        // The message says which line.
        let err = parse_str("v=0\r\no=- 1 1 IN IP4 h\r\nt=x y\r\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: bad t= line");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn bounds_rfc4566_s5_design_s10() {
        let big = vec![b'a'; MAX_SDP_BYTES + 1];
        assert!(matches!(
            SessionDescription::parse(&big),
            Err(SdpError::TooLarge { .. })
        ));
        let mut many_lines = String::from("v=0\no=- 1 1 IN IP4 h\n");
        for _ in 0..MAX_SDP_LINES {
            many_lines.push_str("a=x\n");
        }
        assert_eq!(
            parse_str(&many_lines).unwrap_err(),
            SdpError::TooManyLines { max: MAX_SDP_LINES }
        );
        let mut many_media = String::from("v=0\no=- 1 1 IN IP4 h\n");
        for _ in 0..=MAX_MEDIA_SECTIONS {
            many_media.push_str("m=audio 0 RTP/AVP 0\n");
        }
        assert_eq!(
            parse_str(&many_media).unwrap_err(),
            SdpError::TooManyMedia {
                max: MAX_MEDIA_SECTIONS
            }
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 \xff\r\n").unwrap_err(),
            SdpError::NotUtf8
        );
    }

    #[test]
    fn lenient_where_harmless_rfc4566_s5() {
        // Missing s= and t=, trailing whitespace, host-name address,
        // fractional ptime, multicast c= with TTL.
        let sdp = parse_str(
            "v=0 \n\
o=- 1 1 IN IP4 host.example \n\
c=IN IP4 224.2.1.1/127/3\n\
m=audio 5004/2 RTP/AVP 0 \n\
a=ptime:20.5\n\
a=fmtp:0\n",
        )
        .unwrap();
        assert_eq!(sdp.session_name, "-");
        assert!(sdp.timing.is_empty());
        assert_eq!(
            sdp.connection.as_ref().unwrap().ip(),
            Some("224.2.1.1".parse().unwrap())
        );
        assert_eq!(sdp.media[0].port_count, Some(2));
        assert_eq!(sdp.media[0].formats, vec!["0"]);
        assert_eq!(sdp.media[0].ptime(), Some(21));
        assert_eq!(sdp.media[0].fmtp("0"), Some(""));
        let text = sdp.to_string();
        assert!(text.contains("t=0 0\r\n"));
        assert!(text.contains("a=fmtp:0\r\n"));
        assert_eq!(parse_str(&text).unwrap().media, sdp.media);
    }
}
