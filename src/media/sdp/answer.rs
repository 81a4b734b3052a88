//! Offer/answer negotiation for the switch's audio legs (RFC 3264).
//!
//! We speak PCMU (0), PCMA (8) and telephone-event/8000 (RFC 4733) over
//! RTP/AVP, one audio stream per call, 20 ms packets.

use std::net::{IpAddr, SocketAddr};

use super::{
    Attribute, Connection, Direction, MediaDescription, Origin, Rtpmap, SdpError,
    SessionDescription, Timing,
};

/// The telephone-event payload type the switch offers (DESIGN §4).
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// The RTP profile we speak (RFC 3551).
const PROFILE: &str = "RTP/AVP";
/// The events we answer and offer for telephone-event: DTMF 0–9, *, #,
/// A–D and flash (RFC 4733 §3.2).
const TELEPHONE_EVENTS: &str = "0-16";
/// Our packet time in milliseconds.
const PTIME_MS: u32 = 20;

/// An audio codec the switch encodes and decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law (RFC 3551 §4.5.14).
    Pcmu,
    /// G.711 A-law (RFC 3551 §4.5.14).
    Pcma,
}

impl Codec {
    /// The static payload type (RFC 3551 §6, table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// RTP clock rate in Hz.
    pub const fn clock_rate(self) -> u32 {
        8000
    }

    /// The codec of a static payload type without an `a=rtpmap`.
    fn from_static(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec an `a=rtpmap` names (encoding names are case-insensitive,
    /// RFC 4855 §3); only mono 8 kHz.
    fn from_rtpmap(map: &Rtpmap) -> Option<Codec> {
        if map.clock_rate != 8000 || map.channels.is_some_and(|c| c != 1) {
            return None;
        }
        [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|c| map.encoding.eq_ignore_ascii_case(c.name()))
    }

    fn rtpmap(self, payload_type: u8) -> Attribute {
        Attribute::Rtpmap(Rtpmap {
            payload_type,
            encoding: self.name().to_owned(),
            clock_rate: self.clock_rate(),
            channels: None,
        })
    }
}

/// Our side of a media session: the address and RTP port written into
/// SDP, and the `o=` session id and version (RFC 4566 §5.2; RFC 3264 §5
/// wants both representable as a signed 64-bit integer, and the version
/// raised by one for each new offer or answer in the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    pub addr: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub version: u64,
}

/// What the media engine needs from a finished offer/answer exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type to send the codec with (the offer's number).
    pub codec_pt: u8,
    /// telephone-event's payload type, if both sides use it (RFC 4733 §7).
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP: the stream's `c=` address and `m=` port.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp` (RFC 3605), else RTP port + 1
    /// (RFC 3550 §11).
    pub remote_rtcp: SocketAddr,
    /// Our direction: whether we may send and should expect to receive.
    /// It is the remote's direction reversed (RFC 3264 §6.1).
    pub direction: Direction,
    /// The remote put the stream on hold: sendonly or inactive, or the
    /// old `c=0.0.0.0` form (RFC 3264 §8.4). Send nothing to an
    /// unspecified address.
    pub held: bool,
    /// The remote's `a=ptime`, if given.
    pub remote_ptime: Option<u32>,
    /// Index of the audio stream among the SDP's `m=` sections.
    pub media_index: usize,
}

impl Negotiated {
    /// Whether the media engine should send RTP now: our direction allows
    /// it and the remote address is a real one (not the RFC 2543 hold
    /// address 0.0.0.0, RFC 3264 §8.4).
    pub fn may_send(&self) -> bool {
        self.direction.sends()
            && !self.remote_rtp.ip().is_unspecified()
            && self.remote_rtp.port() != 0
    }
}

/// Answers `offer` (RFC 3264 §6): takes the first RTP/AVP audio stream
/// holding a codec we support, picks the offer's first such codec, echoes
/// telephone-event with the offered payload type, and rejects every other
/// stream with port 0 in its place.
///
/// Errors mean "488 Not Acceptable Here" ([`SdpError::is_not_acceptable`]).
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, Negotiated), SdpError> {
    let (media_index, audio, codec, codec_pt) = select_audio(offer)?;
    let telephone_event_pt = telephone_event(audio);
    let remote_direction = offer.direction_for(audio);
    let negotiated = remote_side(
        offer,
        audio,
        media_index,
        codec,
        codec_pt,
        telephone_event_pt,
    )?;

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == media_index {
                audio_section(
                    local.port,
                    codec,
                    codec_pt,
                    telephone_event_pt,
                    remote_direction.reverse(),
                )
            } else {
                rejected(m)
            }
        })
        .collect();
    Ok((session(local, media), negotiated))
}

/// The offer the switch sends when it places a call (to an agent): PCMU,
/// PCMA and telephone-event 101, sendrecv (RFC 3264 §5).
pub fn offer(local: &LocalMedia) -> SessionDescription {
    offer_with_direction(local, Direction::SendRecv)
}

/// Like [`offer`] with another direction, e.g. sendonly to put the remote
/// on hold in a re-INVITE (RFC 3264 §8.4).
pub fn offer_with_direction(local: &LocalMedia, direction: Direction) -> SessionDescription {
    let mut audio = MediaDescription {
        kind: "audio".to_owned(),
        port: local.port,
        port_count: None,
        protocol: PROFILE.to_owned(),
        formats: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    };
    for codec in [Codec::Pcmu, Codec::Pcma] {
        audio.formats.push(codec.payload_type().to_string());
        audio.attributes.push(codec.rtpmap(codec.payload_type()));
    }
    audio.formats.push(TELEPHONE_EVENT_PT.to_string());
    audio
        .attributes
        .extend(telephone_event_attributes(TELEPHONE_EVENT_PT));
    audio.attributes.push(Attribute::Ptime(PTIME_MS));
    audio.attributes.push(Attribute::Direction(direction));
    session(local, vec![audio])
}

/// Reads the answer to an [`offer`] of ours (RFC 3264 §7): the first
/// RTP/AVP audio stream, its first codec we support and its
/// telephone-event payload type. A rejected stream (port 0) or an answer
/// without PCMU/PCMA is an error; the call then fails.
pub fn read_answer(answer: &SessionDescription) -> Result<Negotiated, SdpError> {
    let (media_index, audio, codec, codec_pt) = select_audio(answer)?;
    remote_side(
        answer,
        audio,
        media_index,
        codec,
        codec_pt,
        telephone_event(audio),
    )
}

/// The first usable audio stream and its first supported codec.
fn select_audio(
    sdp: &SessionDescription,
) -> Result<(usize, &MediaDescription, Codec, u8), SdpError> {
    let mut any_audio = false;
    for (index, m) in sdp.audio() {
        if m.port == 0 || !m.protocol.eq_ignore_ascii_case(PROFILE) {
            continue;
        }
        any_audio = true;
        if let Some((codec, pt)) = m
            .payload_types()
            .find_map(|pt| codec_of(m, pt).map(|c| (c, pt)))
        {
            return Ok((index, m, codec, pt));
        }
    }
    Err(if any_audio {
        SdpError::NoCommonCodec
    } else {
        SdpError::NoAudio
    })
}

/// The codec a payload type stands for in `m`: its `a=rtpmap` if given,
/// else the static assignment (RFC 3551 §6).
fn codec_of(m: &MediaDescription, payload_type: u8) -> Option<Codec> {
    match m.rtpmap(payload_type) {
        Some(map) => Codec::from_rtpmap(map),
        None => Codec::from_static(payload_type),
    }
}

/// The first telephone-event/8000 payload type listed in `m` (RFC 4733 §7).
fn telephone_event(m: &MediaDescription) -> Option<u8> {
    m.payload_types().find(|pt| {
        m.rtpmap(*pt).is_some_and(|map| {
            map.encoding.eq_ignore_ascii_case("telephone-event")
                && map.clock_rate == 8000
                && map.channels.is_none_or(|c| c == 1)
        })
    })
}

/// The remote addresses, direction and hold state of the chosen stream.
fn remote_side(
    sdp: &SessionDescription,
    m: &MediaDescription,
    media_index: usize,
    codec: Codec,
    codec_pt: u8,
    telephone_event_pt: Option<u8>,
) -> Result<Negotiated, SdpError> {
    let ip = sdp
        .connection_for(m)
        .and_then(Connection::ip)
        .ok_or(SdpError::NoConnectionAddress)?;
    let remote_rtp = SocketAddr::new(ip, m.port);
    let remote_rtcp = match m.rtcp() {
        Some(rtcp) => {
            let rtcp_ip = rtcp.connection.as_ref().and_then(Connection::ip);
            SocketAddr::new(rtcp_ip.unwrap_or(ip), rtcp.port)
        }
        None => SocketAddr::new(ip, m.port.checked_add(1).unwrap_or(m.port)),
    };
    let remote_direction = sdp.direction_for(m);
    let held = matches!(remote_direction, Direction::SendOnly | Direction::Inactive)
        || ip.is_unspecified();
    Ok(Negotiated {
        codec,
        codec_pt,
        telephone_event_pt,
        remote_rtp,
        remote_rtcp,
        direction: remote_direction.reverse(),
        held,
        remote_ptime: m.ptime(),
        media_index,
    })
}

/// Our accepted audio stream.
fn audio_section(
    port: u16,
    codec: Codec,
    codec_pt: u8,
    telephone_event_pt: Option<u8>,
    direction: Direction,
) -> MediaDescription {
    let mut formats = vec![codec_pt.to_string()];
    let mut attributes = vec![codec.rtpmap(codec_pt)];
    if let Some(te) = telephone_event_pt {
        formats.push(te.to_string());
        attributes.extend(telephone_event_attributes(te));
    }
    attributes.push(Attribute::Ptime(PTIME_MS));
    attributes.push(Attribute::Direction(direction));
    MediaDescription {
        kind: "audio".to_owned(),
        port,
        port_count: None,
        protocol: PROFILE.to_owned(),
        formats,
        connection: None,
        bandwidths: Vec::new(),
        attributes,
        other: Vec::new(),
    }
}

fn telephone_event_attributes(payload_type: u8) -> [Attribute; 2] {
    [
        Attribute::Rtpmap(Rtpmap {
            payload_type,
            encoding: "telephone-event".to_owned(),
            clock_rate: 8000,
            channels: None,
        }),
        Attribute::Fmtp {
            format: payload_type.to_string(),
            params: TELEPHONE_EVENTS.to_owned(),
        },
    ]
}

/// A stream declined in the answer: same media and protocol, port 0, the
/// offered formats kept because SDP needs at least one (RFC 3264 §6).
fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        kind: offered.kind.clone(),
        port: 0,
        port_count: None,
        protocol: offered.protocol.clone(),
        formats: offered.formats.clone(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    }
}

/// Session-level lines of every SDP we write: `o=- <id> <version> …`,
/// `s=-`, session-level `c=`, `t=0 0` (RFC 4566 §5, RFC 3264 §5).
fn session(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    let connection = Connection::new(local.addr);
    SessionDescription {
        origin: Origin {
            username: "-".to_owned(),
            session_id: local.session_id.to_string(),
            session_version: local.version.to_string(),
            addr_type: connection.addr_type,
            address: connection.address.clone(),
        },
        session_name: "-".to_owned(),
        connection: Some(connection),
        bandwidths: Vec::new(),
        timing: vec![Timing { start: 0, stop: 0 }],
        attributes: Vec::new(),
        other: Vec::new(),
        media,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n\
s=-\r\n\
c=IN IP4 127.0.1.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    /// Shaped like baresip's offer: opus, G.722, G.711, telephone-event,
    /// rtcp-mux and extension attributes.
    const BARESIP_OFFER: &str = "v=0\r\n\
o=- 1734552263 2316547131 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
m=audio 10432 RTP/AVP 96 9 0 8 101\r\n\
b=AS:96\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp-mux\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:2881361826 cname:e5b5c8f1-51d1\r\n";

    /// Shaped like Linphone's offer: PCMA first, opus dynamic,
    /// telephone-event 101 at 8 kHz and 97 at 48 kHz, a=rtcp.
    const LINPHONE_OFFER: &str = "v=0\r\n\
o=alice 2146 3210 IN IP4 10.0.0.7\r\n\
s=Talk\r\n\
c=IN IP4 10.0.0.7\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 8 96 0 101 97\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtpmap:97 telephone-event/48000\r\n\
a=rtcp:7079\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n";

    /// Video first, then audio with telephone-event on 96, then a
    /// non-RTP stream.
    const VIDEO_OFFER: &str = "v=0\r\n\
o=bob 2808844564 2808844564 IN IP4 198.51.100.1\r\n\
s=-\r\n\
c=IN IP4 198.51.100.1\r\n\
t=0 0\r\n\
m=video 51372 RTP/AVP 31 99\r\n\
a=rtpmap:99 H264/90000\r\n\
m=audio 49170 RTP/AVP 0 8 96\r\n\
c=IN IP4 198.51.100.2\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n\
m=application 5000 UDP/BFCP *\r\n";

    fn local() -> LocalMedia {
        LocalMedia {
            addr: "203.0.113.5".parse().unwrap(),
            port: 20000,
            session_id: 42,
            version: 7,
        }
    }

    fn parse(text: &str) -> SessionDescription {
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    fn audio_offer(formats: &str, extra: &str) -> SessionDescription {
        parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {formats}\r\n{extra}"
        ))
    }

    #[test]
    fn sipp_offer_answer_text_rfc3264_s6() {
        let (sdp, neg) = answer(&parse(SIPP_OFFER), &local()).unwrap();
        assert_eq!(
            sdp.to_string(),
            "v=0\r\n\
o=- 42 7 IN IP4 203.0.113.5\r\n\
s=-\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
        );
        assert_eq!(neg.codec, Codec::Pcmu);
        assert_eq!(neg.codec_pt, 0);
        assert_eq!(neg.telephone_event_pt, None);
        assert_eq!(neg.remote_rtp, "127.0.1.1:6000".parse().unwrap());
        assert_eq!(neg.remote_rtcp, "127.0.1.1:6001".parse().unwrap());
        assert_eq!(neg.direction, Direction::SendRecv);
        assert!(!neg.held);
    }

    #[test]
    fn baresip_offer_picks_first_supported_and_echoes_te_rfc3264_s6_1() {
        let (sdp, neg) = answer(&parse(BARESIP_OFFER), &local()).unwrap();
        assert_eq!(neg.codec, Codec::Pcmu);
        assert_eq!(neg.codec_pt, 0);
        assert_eq!(neg.telephone_event_pt, Some(101));
        assert_eq!(neg.remote_ptime, Some(20));
        let m = &sdp.media[0];
        assert_eq!(m.formats, vec!["0", "101"]);
        assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
        assert_eq!(m.fmtp("101"), Some("0-16"));
        assert_eq!(m.ptime(), Some(20));
        // We do not accept rtcp-mux (RFC 5761 §5.1.1): RTCP on port + 1.
        assert!(!m.rtcp_mux());
        assert_eq!(neg.remote_rtcp, "192.168.1.20:10433".parse().unwrap());
    }

    #[test]
    fn linphone_offer_pcma_first_rtcp_attribute_rfc3264_s6_1_rfc3605_s2_1() {
        let (sdp, neg) = answer(&parse(LINPHONE_OFFER), &local()).unwrap();
        assert_eq!(neg.codec, Codec::Pcma);
        assert_eq!(neg.codec_pt, 8);
        // The 8 kHz telephone-event, not the 48 kHz one.
        assert_eq!(neg.telephone_event_pt, Some(101));
        assert_eq!(neg.remote_rtp, "10.0.0.7:7078".parse().unwrap());
        assert_eq!(neg.remote_rtcp, "10.0.0.7:7079".parse().unwrap());
        let text = sdp.to_string();
        assert!(text.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
    }

    #[test]
    fn other_streams_rejected_with_port_zero_in_order_rfc3264_s6() {
        let (sdp, neg) = answer(&parse(VIDEO_OFFER), &local()).unwrap();
        assert_eq!(sdp.media.len(), 3);
        assert_eq!(neg.media_index, 1);
        let text = sdp.to_string();
        let video = text.find("m=video 0 RTP/AVP 31 99\r\n").unwrap();
        let audio = text.find("m=audio 20000 RTP/AVP 0 96\r\n").unwrap();
        let app = text.find("m=application 0 UDP/BFCP *\r\n").unwrap();
        assert!(video < audio && audio < app, "{text}");
        // telephone-event echoed with the offered type 96 (RFC 4733 §7).
        assert_eq!(neg.telephone_event_pt, Some(96));
        assert!(text.contains("a=fmtp:96 0-16\r\n"));
        // The media-level c= wins over the session's (RFC 4566 §5.7).
        assert_eq!(neg.remote_rtp, "198.51.100.2:49170".parse().unwrap());
        // The answer parses back.
        assert_eq!(parse(&text), sdp);
    }

    #[test]
    fn codec_choice_follows_offer_order_rfc3264_s6_1() {
        let cases: &[(&str, &str, Codec, u8)] = &[
            ("8", "", Codec::Pcma, 8),
            ("9 0 8", "", Codec::Pcmu, 0),
            ("9 8 0", "", Codec::Pcma, 8),
            ("18 3 0", "", Codec::Pcmu, 0),
            // Dynamic payload types mapped to G.711 keep their number.
            ("97 0", "a=rtpmap:97 pcma/8000\r\n", Codec::Pcma, 97),
            ("98 8", "a=rtpmap:98 PCMU/8000/1\r\n", Codec::Pcmu, 98),
            // Not mono 8 kHz: skipped.
            ("99 8", "a=rtpmap:99 PCMU/16000\r\n", Codec::Pcma, 8),
            ("99 8", "a=rtpmap:99 PCMU/8000/2\r\n", Codec::Pcma, 8),
            // An rtpmap overrides the static meaning of 0.
            ("0 8", "a=rtpmap:0 G729/8000\r\n", Codec::Pcma, 8),
        ];
        for (formats, extra, codec, pt) in cases {
            let (sdp, neg) = answer(&audio_offer(formats, extra), &local()).unwrap();
            assert_eq!(
                (neg.codec, neg.codec_pt),
                (*codec, *pt),
                "{formats} {extra}"
            );
            assert_eq!(sdp.media[0].formats, vec![pt.to_string()]);
            assert_eq!(sdp.media[0].rtpmap(*pt).unwrap().encoding, codec.name());
        }
    }

    #[test]
    fn direction_answers_the_offer_rfc3264_s6_1() {
        let cases = [
            ("sendrecv", Direction::SendRecv, false),
            ("sendonly", Direction::RecvOnly, true),
            ("recvonly", Direction::SendOnly, false),
            ("inactive", Direction::Inactive, true),
        ];
        for (offered, answered, held) in cases {
            let offer = audio_offer("0", &format!("a={offered}\r\n"));
            let (sdp, neg) = answer(&offer, &local()).unwrap();
            assert_eq!(sdp.media[0].direction(), Some(answered), "{offered}");
            assert_eq!(neg.direction, answered);
            assert_eq!(neg.held, held, "{offered}");
            assert_eq!(neg.may_send(), answered.sends());
        }
        // Session-level direction applies when the m= section has none,
        // and a media-level one overrides it (RFC 4566 §6).
        let session_level = parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n",
        );
        let (_, neg) = answer(&session_level, &local()).unwrap();
        assert_eq!((neg.direction, neg.held), (Direction::RecvOnly, true));
        let overridden = parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n",
        );
        let (_, neg) = answer(&overridden, &local()).unwrap();
        assert_eq!((neg.direction, neg.held), (Direction::SendRecv, false));
    }

    #[test]
    fn hold_by_zero_address_rfc3264_s8_4() {
        let offer = parse(
            "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0\r\n",
        );
        let (_, neg) = answer(&offer, &local()).unwrap();
        assert!(neg.held);
        assert!(neg.remote_rtp.ip().is_unspecified());
        assert_eq!(neg.direction, Direction::SendRecv);
        assert!(!neg.may_send());
    }

    #[test]
    fn no_audio_is_not_acceptable_rfc3264_s6() {
        let video_only = parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=video 5000 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n",
        );
        let err = answer(&video_only, &local()).unwrap_err();
        assert_eq!(err, SdpError::NoAudio);
        assert_eq!(err.status_code(), 488);
        // No m= at all, a disabled audio stream, and SRTP-only audio.
        for text in [
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 0 RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\n",
        ] {
            assert_eq!(
                answer(&parse(text), &local()).unwrap_err(),
                SdpError::NoAudio
            );
        }
    }

    #[test]
    fn unsupported_codecs_only_is_not_acceptable_rfc3264_s6() {
        let offer = audio_offer(
            "9 18 96 101",
            "a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let err = answer(&offer, &local()).unwrap_err();
        assert_eq!(err, SdpError::NoCommonCodec);
        assert!(err.is_not_acceptable());
        assert_eq!(err.status_code(), 488);
    }

    #[test]
    fn later_audio_stream_used_when_first_has_no_codec_rfc3264_s6() {
        let offer = parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 18\r\nm=audio 4002 RTP/AVP 8\r\n",
        );
        let (sdp, neg) = answer(&offer, &local()).unwrap();
        assert_eq!(neg.media_index, 1);
        assert_eq!(sdp.media[0].port, 0);
        assert_eq!(sdp.media[1].port, 20000);
    }

    #[test]
    fn missing_connection_is_not_acceptable_rfc4566_s5_7() {
        let no_c = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(
            answer(&no_c, &local()).unwrap_err(),
            SdpError::NoConnectionAddress
        );
        let fqdn = parse(
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 pbx.example\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0\r\n",
        );
        assert_eq!(
            answer(&fqdn, &local()).unwrap_err(),
            SdpError::NoConnectionAddress
        );
    }

    #[test]
    fn ipv6_local_address_rfc4566_s5_7() {
        let mut ours = local();
        ours.addr = "2001:db8::10".parse().unwrap();
        let (sdp, _) = answer(&parse(SIPP_OFFER), &ours).unwrap();
        let text = sdp.to_string();
        assert!(text.contains("o=- 42 7 IN IP6 2001:db8::10\r\n"));
        assert!(text.contains("c=IN IP6 2001:db8::10\r\n"));
    }

    #[test]
    fn our_offer_rfc3264_s5() {
        let text = offer(&local()).to_string();
        assert_eq!(
            text,
            "v=0\r\n\
o=- 42 7 IN IP4 203.0.113.5\r\n\
s=-\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
        );
        let hold = offer_with_direction(&local(), Direction::SendOnly).to_string();
        assert!(hold.ends_with("a=sendonly\r\n"));
    }

    #[test]
    fn reading_the_answer_to_our_offer_rfc3264_s7() {
        // An agent phone answering PCMA and our telephone-event.
        let reply = parse(
            "v=0\r\no=agent 9 9 IN IP4 10.1.1.9\r\ns=-\r\nc=IN IP4 10.1.1.9\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
        );
        let neg = read_answer(&reply).unwrap();
        assert_eq!((neg.codec, neg.codec_pt), (Codec::Pcma, 8));
        assert_eq!(neg.telephone_event_pt, Some(101));
        assert_eq!(neg.remote_rtp, "10.1.1.9:30000".parse().unwrap());
        assert_eq!(neg.remote_rtcp, "10.1.1.9:30001".parse().unwrap());
        assert_eq!(neg.direction, Direction::SendRecv);

        // Answering our sendonly (hold) offer with recvonly.
        let held = parse(
            "v=0\r\no=agent 9 10 IN IP4 10.1.1.9\r\ns=-\r\nc=IN IP4 10.1.1.9\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 0\r\na=recvonly\r\n",
        );
        let neg = read_answer(&held).unwrap();
        assert_eq!(neg.direction, Direction::SendOnly);
        assert_eq!(neg.telephone_event_pt, None);

        // The stream rejected (§6: port 0) or answered with no codec of ours.
        let rejected = parse(
            "v=0\r\no=agent 9 9 IN IP4 10.1.1.9\r\ns=-\r\nc=IN IP4 10.1.1.9\r\nt=0 0\r\n\
             m=audio 0 RTP/AVP 0\r\n",
        );
        assert_eq!(read_answer(&rejected).unwrap_err(), SdpError::NoAudio);
        let g729 = parse(
            "v=0\r\no=agent 9 9 IN IP4 10.1.1.9\r\ns=-\r\nc=IN IP4 10.1.1.9\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 18\r\n",
        );
        assert_eq!(read_answer(&g729).unwrap_err(), SdpError::NoCommonCodec);
    }

    #[test]
    fn offer_answer_between_two_switches_rfc3264_s6_s7() {
        let ours = offer(&local());
        let parsed = parse(&ours.to_string());
        let mut theirs = local();
        theirs.addr = "198.51.100.9".parse().unwrap();
        theirs.port = 24000;
        let (reply, their_view) = answer(&parsed, &theirs).unwrap();
        let our_view = read_answer(&parse(&reply.to_string())).unwrap();
        assert_eq!(
            (their_view.codec, our_view.codec),
            (Codec::Pcmu, Codec::Pcmu)
        );
        assert_eq!(our_view.telephone_event_pt, Some(101));
        assert_eq!(our_view.remote_rtp, "198.51.100.9:24000".parse().unwrap());
        assert_eq!(their_view.remote_rtp, "203.0.113.5:20000".parse().unwrap());
    }

    /// Byte-level mutations of a valid SDP.
    fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut out = base.to_vec();
        for &(pos, op, byte) in edits {
            if out.is_empty() {
                out.push(byte);
                continue;
            }
            let i = pos % out.len();
            match op % 4 {
                0 => out[i] = byte,
                1 => out.insert(i, byte),
                2 => {
                    out.remove(i);
                }
                _ => {
                    let end = (i + usize::from(byte)).min(out.len());
                    let chunk = out[i..end].to_vec();
                    out.splice(i..i, chunk);
                }
            }
        }
        out
    }

    /// Whatever parses must answer or fail cleanly, and what we write
    /// must parse back to the same description.
    fn exercise(bytes: &[u8]) {
        let Ok(sdp) = SessionDescription::parse(bytes) else {
            return;
        };
        // Serializing is canonical: what we write parses back and writes
        // the same text again.
        let text = sdp.to_string();
        let again = SessionDescription::parse(text.as_bytes());
        assert_eq!(again.map(|s| s.to_string()).as_deref(), Ok(text.as_str()));
        if let Ok((reply, _)) = answer(&sdp, &local()) {
            let reply_text = reply.to_string();
            assert!(SessionDescription::parse(reply_text.as_bytes()).is_ok());
        }
        let _ = read_answer(&sdp);
    }

    proptest! {
        /// DESIGN §10: no SDP input panics (RFC 4566 §5 parser).
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            exercise(text.as_bytes());
        }

        #[test]
        fn sdp_shaped_lines_never_panic(
            lines in proptest::collection::vec(
                "[vosctmabikzx]=[ -~]{0,40}|m=audio [0-9]{1,5} RTP/AVP [0-9 ]{1,12}|a=rtpmap:[0-9]{1,3} [A-Za-z-]{1,16}/[0-9]{1,5}|c=IN IP[46] [0-9a-f.:]{1,20}|a=(sendonly|recvonly|inactive|rtcp:[0-9]{1,5})", 0..30)
        ) {
            let text = format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n{}", lines.join("\r\n"));
            exercise(text.as_bytes());
        }

        #[test]
        fn mutated_offers_never_panic(
            which in 0usize..5,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
        ) {
            let bases = [SIPP_OFFER, BARESIP_OFFER, LINPHONE_OFFER, VIDEO_OFFER,
                "v=0\r\no=- 1 1 IN IP6 ::1\r\nc=IN IP6 ::1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP6 ::2\r\n"];
            let base = bases[which % bases.len()].as_bytes();
            exercise(&mutate(base, &edits));
        }
    }
}
