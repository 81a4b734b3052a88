//! The RTP fixed header (RFC 3550 §5.1): a borrowed view for reading and a
//! plain struct for writing, neither of which allocates.

/// The only RTP version (RFC 3550 §5.1, `V`).
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed header, without CSRCs or extension (RFC 3550 §5.1).
pub const RTP_HEADER_LEN: usize = 12;

/// Why bytes are not an RTP packet, or why one could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet is {len} bytes, shorter than the 12-byte fixed header")]
    TooShort { len: usize },
    #[error("RTP version is {0}, expected 2")]
    Version(u8),
    #[error("RTP packet ends inside its CSRC list")]
    TruncatedCsrc,
    #[error("RTP packet ends inside its header extension")]
    TruncatedExtension,
    #[error("RTP padding count {count} does not fit the {available} bytes after the header")]
    BadPadding { count: u8, available: usize },
    #[error("buffer of {have} bytes is too small for {need}")]
    BufferTooSmall { need: usize, have: usize },
}

/// The fields of the fixed RTP header that a sender chooses
/// (RFC 3550 §5.1). Written with V=2 and no padding, extension or CSRCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// `M`: for audio, the first packet of a talk-spurt (RFC 3551 §4.1).
    pub marker: bool,
    /// `PT`, 7 bits (RFC 3551 §6): 0 PCMU, 8 PCMA, dynamic for events.
    pub payload_type: u8,
    /// Sequence number, +1 per packet (RFC 3550 §5.1).
    pub sequence: u16,
    /// Sampling instant of the first octet, in clock-rate units.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// The 12 header bytes (RFC 3550 §5.1).
    #[inline]
    pub fn to_bytes(&self) -> [u8; RTP_HEADER_LEN] {
        let mut out = [0u8; RTP_HEADER_LEN];
        out[0] = RTP_VERSION << 6;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7F);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out
    }

    /// Writes the 12 header bytes at the start of `buf`; returns 12.
    #[inline]
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtpError> {
        let have = buf.len();
        let Some(head) = buf.first_chunk_mut::<RTP_HEADER_LEN>() else {
            return Err(RtpError::BufferTooSmall {
                need: RTP_HEADER_LEN,
                have,
            });
        };
        *head = self.to_bytes();
        Ok(RTP_HEADER_LEN)
    }

    /// Writes header and payload into `buf`; returns the packet length.
    #[inline]
    pub fn write_packet(&self, payload: &[u8], buf: &mut [u8]) -> Result<usize, RtpError> {
        let need = RTP_HEADER_LEN + payload.len();
        let have = buf.len();
        let Some(out) = buf.get_mut(..need) else {
            return Err(RtpError::BufferTooSmall { need, have });
        };
        let (head, body) = out.split_at_mut(RTP_HEADER_LEN);
        head.copy_from_slice(&self.to_bytes());
        body.copy_from_slice(payload);
        Ok(need)
    }
}

/// An RTP header extension (RFC 3550 §5.3.1): the profile-defined 16 bits
/// and the extension words, which the switch skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    pub profile: u16,
    pub data: &'a [u8],
}

/// A parsed RTP packet borrowing the datagram (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    header: RtpHeader,
    csrc: &'a [u8],
    extension: Option<RtpExtension<'a>>,
    payload: &'a [u8],
    padding: u8,
}

impl<'a> RtpPacket<'a> {
    /// Reads a datagram as RTP: checks V=2, skips CSRCs and the header
    /// extension, and removes padding (RFC 3550 §5.1, §5.3.1). Never
    /// panics, whatever the bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        let Some((fixed, rest)) = bytes.split_first_chunk::<RTP_HEADER_LEN>() else {
            return Err(RtpError::TooShort { len: bytes.len() });
        };
        let version = fixed[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::Version(version));
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_len = usize::from(fixed[0] & 0x0F) * 4;
        let header = RtpHeader {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7F,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        };

        if rest.len() < csrc_len {
            return Err(RtpError::TruncatedCsrc);
        }
        let (csrc, mut rest) = rest.split_at(csrc_len);

        let mut extension = None;
        if has_extension {
            let Some((ext_head, after)) = rest.split_first_chunk::<4>() else {
                return Err(RtpError::TruncatedExtension);
            };
            let profile = u16::from_be_bytes([ext_head[0], ext_head[1]]);
            let ext_len = usize::from(u16::from_be_bytes([ext_head[2], ext_head[3]])) * 4;
            if after.len() < ext_len {
                return Err(RtpError::TruncatedExtension);
            }
            let (data, after) = after.split_at(ext_len);
            extension = Some(RtpExtension { profile, data });
            rest = after;
        }

        let mut padding = 0u8;
        if has_padding {
            // The last octet counts the padding, itself included (§5.1, P).
            let count = rest.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > rest.len() {
                return Err(RtpError::BadPadding {
                    count,
                    available: rest.len(),
                });
            }
            padding = count;
            rest = &rest[..rest.len() - usize::from(count)];
        }

        Ok(RtpPacket {
            header,
            csrc,
            extension,
            payload: rest,
            padding,
        })
    }

    /// The fixed-header fields.
    #[inline]
    pub fn header(&self) -> RtpHeader {
        self.header
    }

    #[inline]
    pub fn marker(&self) -> bool {
        self.header.marker
    }

    #[inline]
    pub fn payload_type(&self) -> u8 {
        self.header.payload_type
    }

    #[inline]
    pub fn sequence(&self) -> u16 {
        self.header.sequence
    }

    #[inline]
    pub fn timestamp(&self) -> u32 {
        self.header.timestamp
    }

    #[inline]
    pub fn ssrc(&self) -> u32 {
        self.header.ssrc
    }

    /// `CC`: how many contributing sources follow the fixed header.
    #[inline]
    pub fn csrc_count(&self) -> u8 {
        (self.csrc.len() / 4) as u8
    }

    /// The contributing sources (RFC 3550 §5.1, CSRC list).
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension, if `X` was set (RFC 3550 §5.3.1).
    #[inline]
    pub fn extension(&self) -> Option<RtpExtension<'a>> {
        self.extension
    }

    /// The payload, without padding.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Octets of padding removed from the end (0 if `P` was clear).
    #[inline]
    pub fn padding_len(&self) -> u8 {
        self.padding
    }
}

/// Rewrites sequence number, timestamp and SSRC of the RTP packet in
/// `buf` in place, for the bridge's relay (DESIGN §4). Checks only what it
/// touches: the length and the version.
#[inline]
pub fn rewrite_header(
    buf: &mut [u8],
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) -> Result<(), RtpError> {
    let len = buf.len();
    let Some(head) = buf.first_chunk_mut::<RTP_HEADER_LEN>() else {
        return Err(RtpError::TooShort { len });
    };
    let version = head[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::Version(version));
    }
    head[2..4].copy_from_slice(&sequence.to_be_bytes());
    head[4..8].copy_from_slice(&timestamp.to_be_bytes());
    head[8..12].copy_from_slice(&ssrc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A PCMU packet as a phone sends it: V=2, M=1, PT=0, seq 0x1234,
    /// timestamp 0xDEADBEEF, SSRC 0x01020304, 4 payload octets.
    const PCMU: &[u8] = &[
        0x80, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0xFF, 0xFE, 0x7F,
        0x00,
    ];

    #[test]
    fn parses_fixed_header_rfc3550_5_1() {
        let p = RtpPacket::parse(PCMU).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xDEAD_BEEF);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.extension(), None);
        assert_eq!(p.payload(), &[0xFF, 0xFE, 0x7F, 0x00]);
        assert_eq!(p.padding_len(), 0);
    }

    #[test]
    fn csrc_extension_and_padding_rfc3550_5_1_and_5_3_1() {
        let bytes: &[u8] = &[
            0xB2, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0xA0, 0xCA, 0xFE, 0xBA,
            0xBE, // P X CC=2, PT 8
            0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x0B, // CSRCs 10 and 11
            0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00, // extension, one word
            0xD5, 0xD5, 0xD5, // payload
            0x00, 0x00, 0x03, // padding of 3
        ];
        let p = RtpPacket::parse(bytes).unwrap();
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [10, 11]);
        let ext = p.extension().unwrap();
        assert_eq!(ext.profile, 0xBEDE);
        assert_eq!(ext.data, &[0x10, 0xAA, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xD5, 0xD5, 0xD5]);
        assert_eq!(p.padding_len(), 3);
    }

    #[test]
    fn rejects_malformed_rfc3550_5_1() {
        let cases: &[(&[u8], RtpError)] = &[
            (&[], RtpError::TooShort { len: 0 }),
            (&PCMU[..11], RtpError::TooShort { len: 11 }),
            (
                &[0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::Version(1),
            ),
            (
                &[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::TruncatedCsrc,
            ),
            (
                &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::TruncatedExtension,
            ),
            (
                &[
                    0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4,
                ],
                RtpError::TruncatedExtension,
            ),
            (
                &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::BadPadding {
                    count: 0,
                    available: 0,
                },
            ),
            (
                &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                RtpError::BadPadding {
                    count: 0,
                    available: 2,
                },
            ),
            (
                &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3],
                RtpError::BadPadding {
                    count: 3,
                    available: 2,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(RtpPacket::parse(bytes).unwrap_err(), *want, "{bytes:02x?}");
        }
    }

    #[test]
    fn padding_may_take_the_whole_body() {
        let p = RtpPacket::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
        assert_eq!(p.padding_len(), 2);
    }

    #[test]
    fn writes_fixed_header_rfc3550_5_1() {
        let h = RtpHeader {
            marker: true,
            payload_type: 0,
            sequence: 0x1234,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
        };
        let mut buf = [0u8; 16];
        assert_eq!(h.write_packet(&PCMU[12..], &mut buf), Ok(16));
        assert_eq!(&buf, PCMU);
        assert_eq!(h.write(&mut buf[..12]), Ok(12));
        assert_eq!(
            h.write(&mut buf[..11]),
            Err(RtpError::BufferTooSmall { need: 12, have: 11 })
        );
        assert_eq!(
            h.write_packet(&[0; 5], &mut buf),
            Err(RtpError::BufferTooSmall { need: 17, have: 16 })
        );
        // PT is 7 bits: a stray high bit never becomes the marker.
        let odd = RtpHeader {
            marker: false,
            payload_type: 0xE5,
            ..h
        };
        assert_eq!(odd.to_bytes()[1], 0x65);
    }

    #[test]
    fn rewrites_in_place_for_the_bridge() {
        let mut buf = PCMU.to_vec();
        rewrite_header(&mut buf, 7, 8, 9).unwrap();
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!((p.sequence(), p.timestamp(), p.ssrc()), (7, 8, 9));
        assert!(p.marker());
        assert_eq!(p.payload(), &PCMU[12..]);
        assert_eq!(
            rewrite_header(&mut [0u8; 12], 1, 1, 1),
            Err(RtpError::Version(0))
        );
        assert_eq!(
            rewrite_header(&mut [0x80u8; 3], 1, 1, 1),
            Err(RtpError::TooShort { len: 3 })
        );
    }

    proptest! {
        /// DESIGN §10: arbitrary datagrams never panic the parser, and what
        /// it returns lies inside the datagram.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(p) = RtpPacket::parse(&bytes) {
                let ext = p.extension().map_or(0, |e| 4 + e.data.len());
                prop_assert_eq!(
                    12 + 4 * usize::from(p.csrc_count()) + ext + p.payload().len()
                        + usize::from(p.padding_len()),
                    bytes.len()
                );
            }
        }

        #[test]
        fn write_then_parse_round_trips(
            marker: bool,
            payload_type in 0u8..128,
            sequence: u16,
            timestamp: u32,
            ssrc: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let h = RtpHeader { marker, payload_type, sequence, timestamp, ssrc };
            let mut buf = [0u8; 212];
            let n = h.write_packet(&payload, &mut buf).unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            prop_assert_eq!(p.header(), h);
            prop_assert_eq!(p.payload(), &payload[..]);
        }
    }
}
