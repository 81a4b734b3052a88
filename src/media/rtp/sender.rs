//! Numbering of one outgoing RTP stream (RFC 3550 §5.1, DESIGN §4).
//!
//! One [`RtpSender`] lives as long as the call leg, so SSRC, sequence
//! number and timestamp stay continuous across prompt changes, music on
//! hold and bridging; the marker bit is set on the first packet of each
//! talk-spurt (RFC 3551 §4.1). The random initial values (RFC 3550 §5.1)
//! are constructor inputs, so tests are deterministic.

use super::packet::{RtpError, RtpHeader};
use super::rtcp::{NtpTime, SenderInfo};

/// The state of one outgoing RTP stream. Sans-IO: it writes packets into
/// the caller's buffer and never reads a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    /// The next packet starts a talk-spurt and carries the marker bit.
    talkspurt_pending: bool,
    packets_sent: u32,
    octets_sent: u32,
}

impl RtpSender {
    /// A stream with the given (randomly chosen by the caller) SSRC,
    /// first sequence number and first timestamp (RFC 3550 §5.1). Its
    /// first packet starts a talk-spurt.
    pub fn new(ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> Self {
        RtpSender {
            ssrc,
            next_sequence: initial_sequence,
            next_timestamp: initial_timestamp,
            talkspurt_pending: true,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// A stream with random SSRC, sequence and timestamp from `rng`.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        Self::new(rng.random(), rng.random(), rng.random())
    }

    /// Numbers the next packet: writes header and `payload` into `buf` and
    /// returns the packet length. The timestamp then advances by `samples`
    /// (160 for 20 ms of G.711). The marker bit is set if `marker` is true
    /// or a talk-spurt was pending. On error nothing changes.
    pub fn next_packet(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        samples: u32,
        marker: bool,
        buf: &mut [u8],
    ) -> Result<usize, RtpError> {
        let timestamp = self.next_timestamp;
        let len = self.write_at(payload_type, payload, timestamp, marker, buf)?;
        self.next_timestamp = timestamp.wrapping_add(samples);
        Ok(len)
    }

    /// Numbers the next packet with an explicit timestamp, leaving the
    /// stream's own timestamp alone: for RFC 4733 events, whose packets
    /// all carry the timestamp of the event's start (RFC 4733 §2.3.1).
    pub fn next_packet_at(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        timestamp: u32,
        marker: bool,
        buf: &mut [u8],
    ) -> Result<usize, RtpError> {
        self.write_at(payload_type, payload, timestamp, marker, buf)
    }

    fn write_at(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        timestamp: u32,
        marker: bool,
        buf: &mut [u8],
    ) -> Result<usize, RtpError> {
        let header = RtpHeader {
            marker: marker || self.talkspurt_pending,
            payload_type,
            sequence: self.next_sequence,
            timestamp,
            ssrc: self.ssrc,
        };
        let len = header.write_packet(payload, buf)?;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.talkspurt_pending = false;
        self.packets_sent = self.packets_sent.wrapping_add(1);
        // RFC 3550 §6.4.1: the octet count is payload only.
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        Ok(len)
    }

    /// Advances the timestamp over a frame that is not sent (silence
    /// suppression, a gap between prompts): the sequence number does not
    /// move, and the next packet starts a talk-spurt (RFC 3551 §4.1).
    pub fn skip(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.talkspurt_pending = true;
    }

    /// Marks the next packet as the start of a talk-spurt, e.g. the first
    /// frame of a new prompt.
    pub fn start_talkspurt(&mut self) {
        self.talkspurt_pending = true;
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The timestamp the next packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Packets sent so far, wrapping (RFC 3550 §6.4.1, sender's packet count).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets sent so far, wrapping (RFC 3550 §6.4.1).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// The sender info of an SR sent at `ntp`, when the stream's clock
    /// reads `rtp_timestamp` (RFC 3550 §6.4.1). The caller knows both from
    /// the media clock; [`next_timestamp`](Self::next_timestamp) is the
    /// RTP time of the frame due at the next tick.
    pub fn sender_info(&self, ntp: NtpTime, rtp_timestamp: u32) -> SenderInfo {
        SenderInfo {
            ntp,
            rtp_timestamp,
            packet_count: self.packets_sent,
            octet_count: self.octets_sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::packet::RtpPacket;

    fn send(s: &mut RtpSender, pt: u8, payload: &[u8], marker: bool) -> (u16, u32, bool, u8) {
        let mut buf = [0u8; 200];
        let n = s.next_packet(pt, payload, 160, marker, &mut buf).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.ssrc(), s.ssrc());
        assert_eq!(p.payload(), payload);
        (p.sequence(), p.timestamp(), p.marker(), p.payload_type())
    }

    #[test]
    fn numbers_packets_from_the_initial_values_rfc3550_5_1() {
        let mut s = RtpSender::new(0xABCD_0001, 65534, u32::MAX - 159);
        let frame = [0xFFu8; 160];
        assert_eq!(
            send(&mut s, 0, &frame, false),
            (65534, u32::MAX - 159, true, 0)
        );
        assert_eq!(send(&mut s, 0, &frame, false), (65535, 0, false, 0));
        // Sequence and timestamp wrap (RFC 3550 §5.1).
        assert_eq!(send(&mut s, 0, &frame, false), (0, 160, false, 0));
        assert_eq!(s.packets_sent(), 3);
        assert_eq!(s.octets_sent(), 480);
        assert_eq!(s.next_sequence(), 1);
        assert_eq!(s.next_timestamp(), 320);
    }

    #[test]
    fn continuity_across_prompts_with_marker_on_talkspurt_rfc3551_4_1() {
        let mut s = RtpSender::new(7, 100, 1000);
        let frame = [0xD5u8; 160];
        assert_eq!(send(&mut s, 8, &frame, false), (100, 1000, true, 8));
        assert_eq!(send(&mut s, 8, &frame, false), (101, 1160, false, 8));
        // Prompt ends; two silent frames are suppressed.
        s.skip(160);
        s.skip(160);
        // Next prompt: sequence continues, timestamp counts the gap, marker set.
        assert_eq!(send(&mut s, 8, &frame, false), (102, 1640, true, 8));
        assert_eq!(send(&mut s, 8, &frame, false), (103, 1800, false, 8));
        // A prompt change without a gap also starts a talk-spurt.
        s.start_talkspurt();
        assert_eq!(send(&mut s, 8, &frame, false), (104, 1960, true, 8));
        // The caller may force the marker.
        assert_eq!(send(&mut s, 8, &frame, true), (105, 2120, true, 8));
        assert_eq!(s.packets_sent(), 6);
        assert_eq!(s.octets_sent(), 6 * 160);
    }

    #[test]
    fn events_keep_their_own_timestamp_rfc4733_2_3_1() {
        let mut s = RtpSender::new(7, 10, 5000);
        let mut buf = [0u8; 64];
        s.next_packet(0, &[0xFF; 4], 160, false, &mut buf).unwrap();
        for _ in 0..3 {
            let n = s
                .next_packet_at(101, &[1, 0x0A, 0, 160], 5160, false, &mut buf)
                .unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.timestamp(), 5160);
            assert_eq!(p.payload_type(), 101);
        }
        assert_eq!(s.next_sequence(), 14);
        assert_eq!(s.next_timestamp(), 5160);
    }

    #[test]
    fn failed_write_changes_nothing() {
        let mut s = RtpSender::new(1, 2, 3);
        let before = s.clone();
        let mut small = [0u8; 20];
        assert_eq!(
            s.next_packet(0, &[0; 160], 160, false, &mut small),
            Err(RtpError::BufferTooSmall {
                need: 172,
                have: 20
            })
        );
        assert_eq!(s, before);
    }

    #[test]
    fn sender_info_carries_the_counters_rfc3550_6_4_1() {
        let mut s = RtpSender::new(1, 0, 0);
        let mut buf = [0u8; 200];
        s.next_packet(0, &[0; 160], 160, false, &mut buf).unwrap();
        let ntp = NtpTime::new(3_900_000_000, 0x8000_0000);
        let info = s.sender_info(ntp, s.next_timestamp());
        assert_eq!(info.ntp, ntp);
        assert_eq!(info.rtp_timestamp, 160);
        assert_eq!((info.packet_count, info.octet_count), (1, 160));
    }
}
