//! RTCP (RFC 3550 §6): writing sender and receiver reports, SDES CNAME
//! and BYE, and reading compound packets far enough to take SR, RR and
//! BYE fields. Nothing allocates; writers fill the caller's buffer.

/// RTCP packet types (RFC 3550 §12.1).
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;

/// SDES item type of the canonical name (RFC 3550 §6.5.1).
const SDES_CNAME: u8 = 1;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const HEADER_LEN: usize = 4;
const SENDER_INFO_LEN: usize = 20;
const REPORT_BLOCK_LEN: usize = 24;
/// Most sources one BYE packet can name (`SC` is 5 bits).
const MAX_BYE_SOURCES: usize = 31;

/// Why bytes are not RTCP, or why a packet could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet has {len} bytes left, fewer than its 4-byte header")]
    TooShort { len: usize },
    #[error("RTCP version is {0}, expected 2")]
    Version(u8),
    #[error("RTCP packet type {packet_type} claims {claimed} bytes, {available} are left")]
    Truncated {
        packet_type: u8,
        claimed: usize,
        available: usize,
    },
    #[error("RTCP packet type {packet_type} has a bad padding count")]
    BadPadding { packet_type: u8 },
    #[error("RTCP packet type {packet_type} is too short for its {count} entries")]
    BodyTooShort { packet_type: u8, count: u8 },
    #[error("buffer of {have} bytes is too small for {need}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("SDES text of {len} bytes is longer than 255")]
    TextTooLong { len: usize },
    #[error("BYE names {count} sources, more than 31")]
    TooManySources { count: usize },
}

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 and a binary
/// fraction of a second. Built from numbers the caller read from its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTime {
    pub seconds: u32,
    pub fraction: u32,
}

impl NtpTime {
    pub const fn new(seconds: u32, fraction: u32) -> Self {
        NtpTime { seconds, fraction }
    }

    /// From seconds and nanoseconds since the Unix epoch; seconds wrap
    /// into the current NTP era (RFC 3550 §4).
    pub const fn from_unix(seconds: u64, nanos: u32) -> Self {
        let ntp_seconds = seconds.wrapping_add(NTP_UNIX_OFFSET) as u32;
        let nanos = if nanos >= 1_000_000_000 {
            999_999_999
        } else {
            nanos
        };
        let fraction = ((nanos as u64) << 32) / 1_000_000_000;
        NtpTime {
            seconds: ntp_seconds,
            fraction: fraction as u32,
        }
    }

    pub const fn from_u64(value: u64) -> Self {
        NtpTime {
            seconds: (value >> 32) as u32,
            fraction: value as u32,
        }
    }

    pub const fn to_u64(self) -> u64 {
        ((self.seconds as u64) << 32) | self.fraction as u64
    }

    /// The middle 32 bits, in units of 1/65536 s: what a report block's
    /// LSR field carries (RFC 3550 §6.4.1).
    pub const fn middle_32(self) -> u32 {
        (self.to_u64() >> 16) as u32
    }
}

/// The sender info section of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time when the report was sent.
    pub ntp: NtpTime,
    /// The same instant on the stream's RTP clock.
    pub rtp_timestamp: u32,
    /// Packets sent since the stream started, wrapping.
    pub packet_count: u32,
    /// Payload octets sent since the stream started, wrapping.
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// SSRC of the source this block is about.
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since reception began, 24-bit signed (duplicates can
    /// make it negative).
    pub cumulative_lost: i32,
    /// Cycles of the sequence number in the high 16 bits, highest
    /// sequence number received in the low 16.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in RTP timestamp units (RFC 3550 §6.4.1, A.8).
    pub jitter: u32,
    /// LSR: middle 32 bits of the last SR's NTP timestamp, 0 if none.
    pub last_sr: u32,
    /// DLSR: delay since that SR, in 1/65536 s, 0 if none.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn write(&self, out: &mut [u8; REPORT_BLOCK_LEN]) {
        let lost = (self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out[8..12].copy_from_slice(&self.extended_highest_sequence.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }

    fn read(bytes: &[u8; REPORT_BLOCK_LEN]) -> Self {
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let lost_word = word(4);
        ReportBlock {
            ssrc: word(0),
            fraction_lost: (lost_word >> 24) as u8,
            // Sign-extend the 24-bit count.
            cumulative_lost: ((lost_word << 8) as i32) >> 8,
            extended_highest_sequence: word(8),
            jitter: word(12),
            last_sr: word(16),
            delay_since_last_sr: word(20),
        }
    }
}

/// An SR to write: the sender's info and at most one report block, which
/// is all a two-party leg needs (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderReport {
    pub ssrc: u32,
    pub info: SenderInfo,
    pub report: Option<ReportBlock>,
}

impl SenderReport {
    /// Length of the packet [`write`](Self::write) produces.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 4 + SENDER_INFO_LEN + self.report.map_or(0, |_| REPORT_BLOCK_LEN)
    }

    /// Writes the SR at the start of `buf`; returns its length
    /// (RFC 3550 §6.4.1).
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtcpError> {
        let len = self.encoded_len();
        let out = take(buf, len)?;
        write_header(out, u8::from(self.report.is_some()), PT_SR, len);
        out[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        out[8..12].copy_from_slice(&self.info.ntp.seconds.to_be_bytes());
        out[12..16].copy_from_slice(&self.info.ntp.fraction.to_be_bytes());
        out[16..20].copy_from_slice(&self.info.rtp_timestamp.to_be_bytes());
        out[20..24].copy_from_slice(&self.info.packet_count.to_be_bytes());
        out[24..28].copy_from_slice(&self.info.octet_count.to_be_bytes());
        if let (Some(block), Some(slot)) = (&self.report, out[28..].first_chunk_mut()) {
            block.write(slot);
        }
        Ok(len)
    }
}

/// An RR to write: the receiver's SSRC and at most one report block
/// (RFC 3550 §6.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    pub ssrc: u32,
    pub report: Option<ReportBlock>,
}

impl ReceiverReport {
    /// Length of the packet [`write`](Self::write) produces.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 4 + self.report.map_or(0, |_| REPORT_BLOCK_LEN)
    }

    /// Writes the RR at the start of `buf`; returns its length
    /// (RFC 3550 §6.4.2).
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtcpError> {
        let len = self.encoded_len();
        let out = take(buf, len)?;
        write_header(out, u8::from(self.report.is_some()), PT_RR, len);
        out[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        if let (Some(block), Some(slot)) = (&self.report, out[8..].first_chunk_mut()) {
            block.write(slot);
        }
        Ok(len)
    }
}

/// Writes an SDES packet with one chunk holding the CNAME item, which
/// every compound packet must carry (RFC 3550 §6.5, §6.5.1); returns its
/// length. Append it after the SR or RR in the same buffer.
pub fn write_sdes_cname(ssrc: u32, cname: &[u8], buf: &mut [u8]) -> Result<usize, RtcpError> {
    let text_len =
        u8::try_from(cname.len()).map_err(|_| RtcpError::TextTooLong { len: cname.len() })?;
    // SSRC, type, length, text, then at least one null octet to end the
    // item list, padded to a 32-bit boundary.
    let chunk = 4 + 2 + cname.len() + 1;
    let len = HEADER_LEN + chunk.next_multiple_of(4);
    let out = take(buf, len)?;
    write_header(out, 1, PT_SDES, len);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8] = SDES_CNAME;
    out[9] = text_len;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..].fill(0);
    Ok(len)
}

/// Writes a BYE packet for `sources` with an optional reason
/// (RFC 3550 §6.6); returns its length.
pub fn write_bye(
    sources: &[u32],
    reason: Option<&[u8]>,
    buf: &mut [u8],
) -> Result<usize, RtcpError> {
    if sources.len() > MAX_BYE_SOURCES {
        return Err(RtcpError::TooManySources {
            count: sources.len(),
        });
    }
    let reason_len = match reason {
        Some(text) => {
            1 + usize::from(
                u8::try_from(text.len()).map_err(|_| RtcpError::TextTooLong { len: text.len() })?,
            )
        }
        None => 0,
    };
    let len = HEADER_LEN + 4 * sources.len() + reason_len.next_multiple_of(4);
    let out = take(buf, len)?;
    write_header(out, sources.len() as u8, PT_BYE, len);
    let (ids, tail) = out[HEADER_LEN..].split_at_mut(4 * sources.len());
    for (slot, ssrc) in ids.chunks_exact_mut(4).zip(sources) {
        slot.copy_from_slice(&ssrc.to_be_bytes());
    }
    tail.fill(0);
    if let Some(text) = reason {
        tail[0] = text.len() as u8;
        tail[1..1 + text.len()].copy_from_slice(text);
    }
    Ok(len)
}

fn take(buf: &mut [u8], need: usize) -> Result<&mut [u8], RtcpError> {
    let have = buf.len();
    buf.get_mut(..need)
        .ok_or(RtcpError::BufferTooSmall { need, have })
}

/// V=2, P=0, count, type, length in 32-bit words minus one (RFC 3550 §6.4.1).
fn write_header(out: &mut [u8], count: u8, packet_type: u8, len: usize) {
    out[0] = 0x80 | (count & 0x1F);
    out[1] = packet_type;
    out[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

/// One packet of a compound RTCP packet, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// SR (RFC 3550 §6.4.1).
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: ReportBlocks<'a>,
    },
    /// RR (RFC 3550 §6.4.2).
    ReceiverReport {
        ssrc: u32,
        reports: ReportBlocks<'a>,
    },
    /// BYE (RFC 3550 §6.6).
    Bye(Bye<'a>),
    /// SDES, APP or an unknown type: the body after the 4-byte header,
    /// without padding.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// The report blocks of an SR or RR; iterates as [`ReportBlock`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    bytes: &'a [u8],
}

impl<'a> ReportBlocks<'a> {
    pub fn len(&self) -> usize {
        self.bytes.len() / REPORT_BLOCK_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.len() < REPORT_BLOCK_LEN
    }

    /// The block about `ssrc`, if any.
    pub fn find(&self, ssrc: u32) -> Option<ReportBlock> {
        self.iter().find(|b| b.ssrc == ssrc)
    }

    pub fn iter(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        self.bytes
            .chunks_exact(REPORT_BLOCK_LEN)
            .filter_map(|c| c.first_chunk().map(ReportBlock::read))
    }
}

/// A BYE as read: the sources leaving and the optional reason
/// (RFC 3550 §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    sources: &'a [u8],
    reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub fn sources(&self) -> impl Iterator<Item = u32> + 'a {
        self.sources
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The reason text's bytes (UTF-8 by RFC 3550 §6.6, not checked).
    pub fn reason(&self) -> Option<&'a [u8]> {
        self.reason
    }
}

/// Reads the packets of a compound RTCP datagram one by one
/// (RFC 3550 §6.1). Each packet's version, length and padding are checked;
/// after the first error the iterator ends. A compound whose first packet
/// is not SR or RR is still read (reduced-size RTCP, RFC 5506).
#[derive(Debug, Clone)]
pub struct RtcpCompound<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        RtcpCompound { rest: bytes }
    }

    fn next_packet(&mut self) -> Result<RtcpPacket<'a>, RtcpError> {
        let Some(head) = self.rest.first_chunk::<HEADER_LEN>() else {
            return Err(RtcpError::TooShort {
                len: self.rest.len(),
            });
        };
        let version = head[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let has_padding = head[0] & 0x20 != 0;
        let count = head[0] & 0x1F;
        let packet_type = head[1];
        let claimed = (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1) * 4;
        let Some((packet, rest)) = self.rest.split_at_checked(claimed) else {
            return Err(RtcpError::Truncated {
                packet_type,
                claimed,
                available: self.rest.len(),
            });
        };
        let mut body = &packet[HEADER_LEN..];
        if has_padding {
            // Padding is allowed on the last packet only (RFC 3550 §6.4.1, P).
            let pad = usize::from(body.last().copied().unwrap_or(0));
            if !rest.is_empty() || pad == 0 || pad > body.len() {
                return Err(RtcpError::BadPadding { packet_type });
            }
            body = &body[..body.len() - pad];
        }
        self.rest = rest;

        let too_short = RtcpError::BodyTooShort { packet_type, count };
        let reports_len = usize::from(count) * REPORT_BLOCK_LEN;
        let word = |b: &[u8], i: usize| -> Option<u32> {
            b.get(i..i + 4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        };
        match packet_type {
            PT_SR => {
                let blocks = body
                    .get(4 + SENDER_INFO_LEN..4 + SENDER_INFO_LEN + reports_len)
                    .ok_or(too_short.clone())?;
                let field = |i| word(body, i).ok_or(too_short.clone());
                Ok(RtcpPacket::SenderReport {
                    ssrc: field(0)?,
                    info: SenderInfo {
                        ntp: NtpTime::new(field(4)?, field(8)?),
                        rtp_timestamp: field(12)?,
                        packet_count: field(16)?,
                        octet_count: field(20)?,
                    },
                    reports: ReportBlocks { bytes: blocks },
                })
            }
            PT_RR => {
                let blocks = body.get(4..4 + reports_len).ok_or(too_short.clone())?;
                Ok(RtcpPacket::ReceiverReport {
                    ssrc: word(body, 0).ok_or(too_short)?,
                    reports: ReportBlocks { bytes: blocks },
                })
            }
            PT_BYE => {
                let ids_len = usize::from(count) * 4;
                let sources = body.get(..ids_len).ok_or(too_short.clone())?;
                let tail = &body[ids_len..];
                let reason = match tail.first() {
                    Some(&n) if n > 0 => Some(tail.get(1..1 + usize::from(n)).ok_or(too_short)?),
                    _ => None,
                };
                Ok(RtcpPacket::Bye(Bye { sources, reason }))
            }
            _ => Ok(RtcpPacket::Other {
                packet_type,
                count,
                body,
            }),
        }
    }
}

impl<'a> Iterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.next_packet();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0x1111_2222,
            fraction_lost: 25,
            cumulative_lost: -3,
            extended_highest_sequence: 0x0001_0005,
            jitter: 42,
            last_sr: 0xABCD_1234,
            delay_since_last_sr: 0x0001_8000,
        }
    }

    #[test]
    fn ntp_conversion_rfc3550_4() {
        // 2024-01-01T00:00:00.5Z is Unix 1704067200.5.
        let t = NtpTime::from_unix(1_704_067_200, 500_000_000);
        assert_eq!(t.seconds, 3_913_056_000);
        assert_eq!(t.fraction, 0x8000_0000);
        assert_eq!(NtpTime::from_u64(t.to_u64()), t);
        assert_eq!(t.middle_32(), (3_913_056_000u32 << 16) | 0x8000);
        assert_eq!(NtpTime::from_unix(0, 0).seconds, 2_208_988_800);
        // After 2036 the seconds wrap into era 1.
        assert_eq!(NtpTime::from_unix(2_085_978_496, 0).seconds, 0);
        assert_eq!(NtpTime::from_unix(0, 250_000_000).fraction, 0x4000_0000);
    }

    #[test]
    fn writes_sender_report_rfc3550_6_4_1() {
        let sr = SenderReport {
            ssrc: 0x0102_0304,
            info: SenderInfo {
                ntp: NtpTime::new(0xE000_0001, 0x8000_0000),
                rtp_timestamp: 0x0000_A000,
                packet_count: 50,
                octet_count: 8000,
            },
            report: Some(block()),
        };
        let mut buf = [0u8; 64];
        assert_eq!(sr.write(&mut buf), Ok(52));
        #[rustfmt::skip]
        let want: [u8; 52] = [
            0x81, 200, 0x00, 0x0C,
            0x01, 0x02, 0x03, 0x04,
            0xE0, 0x00, 0x00, 0x01,
            0x80, 0x00, 0x00, 0x00,
            0x00, 0x00, 0xA0, 0x00,
            0x00, 0x00, 0x00, 50,
            0x00, 0x00, 0x1F, 0x40,
            0x11, 0x11, 0x22, 0x22,
            25, 0xFF, 0xFF, 0xFD,
            0x00, 0x01, 0x00, 0x05,
            0x00, 0x00, 0x00, 42,
            0xAB, 0xCD, 0x12, 0x34,
            0x00, 0x01, 0x80, 0x00,
        ];
        assert_eq!(buf[..52], want);
        let without = SenderReport { report: None, ..sr };
        assert_eq!(without.write(&mut buf), Ok(28));
        assert_eq!(buf[..4], [0x80, 200, 0x00, 0x06]);
        assert_eq!(
            sr.write(&mut buf[..51]),
            Err(RtcpError::BufferTooSmall { need: 52, have: 51 })
        );
    }

    #[test]
    fn writes_receiver_report_rfc3550_6_4_2() {
        let rr = ReceiverReport {
            ssrc: 9,
            report: Some(block()),
        };
        let mut buf = [0u8; 32];
        assert_eq!(rr.write(&mut buf), Ok(32));
        assert_eq!(buf[..8], [0x81, 201, 0x00, 0x07, 0, 0, 0, 9]);
        assert_eq!(buf[12..16], [25, 0xFF, 0xFF, 0xFD]);
        let empty = ReceiverReport {
            ssrc: 9,
            report: None,
        };
        assert_eq!(empty.write(&mut buf), Ok(8));
        assert_eq!(buf[..4], [0x80, 201, 0x00, 0x01]);
    }

    #[test]
    fn cumulative_lost_is_clamped_to_24_bits_rfc3550_6_4_1() {
        let mut buf = [0u8; 32];
        for (lost, want) in [
            (10_000_000, [0x7F, 0xFF, 0xFF]),
            (-10_000_000, [0x80, 0x00, 0x00]),
            (0, [0, 0, 0]),
            (-1, [0xFF, 0xFF, 0xFF]),
        ] {
            let rr = ReceiverReport {
                ssrc: 1,
                report: Some(ReportBlock {
                    cumulative_lost: lost,
                    ..block()
                }),
            };
            rr.write(&mut buf).unwrap();
            assert_eq!(buf[13..16], want, "{lost}");
        }
    }

    #[test]
    fn sdes_cname_and_bye_rfc3550_6_5_and_6_6() {
        let mut buf = [0u8; 64];
        let n = write_sdes_cname(0x0A0B_0C0D, b"sw@host", &mut buf).unwrap();
        // 4 header + 4 SSRC + 2 + 7 text + 1 null = 18, padded to 20.
        assert_eq!(n, 20);
        assert_eq!(
            buf[..20],
            [
                0x81, 202, 0, 4, 0x0A, 0x0B, 0x0C, 0x0D, 1, 7, b's', b'w', b'@', b'h', b'o', b's',
                b't', 0, 0, 0
            ]
        );
        // A text that ends exactly on the boundary still gets its null octets.
        let n = write_sdes_cname(1, b"ab", &mut buf).unwrap();
        assert_eq!(n, 16);
        assert_eq!(buf[8..16], [1, 2, b'a', b'b', 0, 0, 0, 0]);
        assert_eq!(
            write_sdes_cname(1, &[b'x'; 256], &mut buf),
            Err(RtcpError::TextTooLong { len: 256 })
        );

        let n = write_bye(&[5, 6], Some(b"bye"), &mut buf).unwrap();
        assert_eq!(n, 16);
        assert_eq!(
            buf[..16],
            [0x82, 203, 0, 3, 0, 0, 0, 5, 0, 0, 0, 6, 3, b'b', b'y', b'e']
        );
        assert_eq!(write_bye(&[5], None, &mut buf), Ok(8));
        assert_eq!(
            write_bye(&[0; 32], None, &mut buf),
            Err(RtcpError::TooManySources { count: 32 })
        );
    }

    #[test]
    fn reads_compound_sr_sdes_bye_rfc3550_6_1() {
        let mut buf = [0u8; 128];
        let sr = SenderReport {
            ssrc: 77,
            info: SenderInfo {
                ntp: NtpTime::new(1, 2),
                rtp_timestamp: 3,
                packet_count: 4,
                octet_count: 5,
            },
            report: Some(block()),
        };
        let mut n = sr.write(&mut buf).unwrap();
        n += write_sdes_cname(77, b"x", &mut buf[n..]).unwrap();
        n += write_bye(&[77], Some(b"done"), &mut buf[n..]).unwrap();

        let packets: Vec<_> = RtcpCompound::new(&buf[..n]).collect();
        assert_eq!(packets.len(), 3);
        match packets[0] {
            Ok(RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            }) => {
                assert_eq!(ssrc, 77);
                assert_eq!(info, sr.info);
                assert_eq!(reports.len(), 1);
                assert_eq!(reports.find(0x1111_2222), Some(block()));
                assert_eq!(reports.find(1), None);
            }
            ref other => panic!("{other:?}"),
        }
        assert!(matches!(
            packets[1],
            Ok(RtcpPacket::Other {
                packet_type: PT_SDES,
                count: 1,
                ..
            })
        ));
        match packets[2] {
            Ok(RtcpPacket::Bye(bye)) => {
                assert_eq!(bye.sources().collect::<Vec<_>>(), [77]);
                assert_eq!(bye.reason(), Some(&b"done"[..]));
            }
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_receiver_report_rfc3550_6_4_2() {
        let mut buf = [0u8; 32];
        let rr = ReceiverReport {
            ssrc: 9,
            report: Some(block()),
        };
        let n = rr.write(&mut buf).unwrap();
        let mut it = RtcpCompound::new(&buf[..n]);
        match it.next() {
            Some(Ok(RtcpPacket::ReceiverReport { ssrc, reports })) => {
                assert_eq!(ssrc, 9);
                assert_eq!(reports.iter().collect::<Vec<_>>(), [block()]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(it.next(), None);
    }

    #[test]
    fn rejects_malformed_compounds_rfc3550_a_2() {
        let cases: &[(&[u8], RtcpError)] = &[
            (&[0x80, 201], RtcpError::TooShort { len: 2 }),
            (&[0x40, 201, 0, 1, 0, 0, 0, 0], RtcpError::Version(1)),
            (
                &[0x80, 201, 0, 2, 0, 0, 0, 0],
                RtcpError::Truncated {
                    packet_type: 201,
                    claimed: 12,
                    available: 8,
                },
            ),
            // RR claiming one block but carrying none.
            (
                &[0x81, 201, 0, 1, 0, 0, 0, 0],
                RtcpError::BodyTooShort {
                    packet_type: 201,
                    count: 1,
                },
            ),
            (
                &[0x80, 200, 0, 1, 0, 0, 0, 0],
                RtcpError::BodyTooShort {
                    packet_type: 200,
                    count: 0,
                },
            ),
            // BYE whose reason runs past the packet.
            (
                &[0x81, 203, 0, 2, 0, 0, 0, 1, 9, b'a', b'b', b'c'],
                RtcpError::BodyTooShort {
                    packet_type: 203,
                    count: 1,
                },
            ),
            // Padding on a packet that is not the last.
            (
                &[0xA0, 201, 0, 1, 0, 0, 0, 4, 0x80, 201, 0, 1, 0, 0, 0, 0],
                RtcpError::BadPadding { packet_type: 201 },
            ),
            (
                &[0xA0, 201, 0, 1, 0, 0, 0, 0],
                RtcpError::BadPadding { packet_type: 201 },
            ),
        ];
        for (bytes, want) in cases {
            let mut it = RtcpCompound::new(bytes);
            assert_eq!(it.next(), Some(Err(want.clone())), "{bytes:02x?}");
            assert_eq!(it.next(), None);
        }
    }

    #[test]
    fn padding_on_the_last_packet_is_removed() {
        let bytes = [0xA0, 204, 0, 2, b'n', b'a', b'm', b'e', 0, 0, 0, 4];
        let mut it = RtcpCompound::new(&bytes);
        assert_eq!(
            it.next(),
            Some(Ok(RtcpPacket::Other {
                packet_type: PT_APP,
                count: 0,
                body: b"name",
            }))
        );
    }

    proptest! {
        /// DESIGN §10: arbitrary datagrams never panic the reader, and it
        /// always ends.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut seen = 0;
            for item in RtcpCompound::new(&bytes) {
                seen += 1;
                prop_assert!(seen <= bytes.len() / 4 + 1);
                if let Ok(RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. }) = item {
                    prop_assert!(reports.iter().count() <= 31);
                }
            }
        }

        #[test]
        fn report_block_round_trips(
            ssrc: u32, fraction_lost: u8, lost in -0x80_0000i32..0x80_0000,
            ext: u32, jitter: u32, lsr: u32, dlsr: u32,
        ) {
            let b = ReportBlock {
                ssrc, fraction_lost, cumulative_lost: lost,
                extended_highest_sequence: ext, jitter, last_sr: lsr, delay_since_last_sr: dlsr,
            };
            let mut out = [0u8; 24];
            b.write(&mut out);
            prop_assert_eq!(ReportBlock::read(&out), b);
        }
    }
}
