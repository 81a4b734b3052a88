//! Reception statistics of one incoming RTP stream, as a report block
//! needs them (RFC 3550 §6.4.1): sequence validation and the extended
//! highest sequence number (Appendix A.1), loss (A.3) and interarrival
//! jitter (A.8).

use std::time::Instant;

use super::rtcp::{NtpTime, ReportBlock};

/// A jump of fewer sequence numbers than this is taken as loss
/// (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// A step back of fewer than this is a late or duplicate packet.
pub const MAX_MISORDER: u16 = 100;
/// Packets in sequence needed before a new source is valid.
pub const MIN_SEQUENTIAL: u8 = 2;

const SEQ_MOD: u32 = 1 << 16;

/// What [`RtpReceiverStats`] knows about the source it hears.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    /// Sequence-number wraps, shifted left by 16.
    cycles: u32,
    base_seq: u32,
    /// The sequence number after the last large jump; a packet with it
    /// means the sender restarted (A.1).
    bad_seq: u32,
    probation: u8,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet, in RTP units.
    transit: Option<u32>,
    /// Jitter times 16, so the A.8 integer update keeps its precision.
    jitter_q4: u64,
}

impl Source {
    fn new(ssrc: u32, seq: u16, probation: u8) -> Self {
        let mut source = Source {
            ssrc,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
        };
        source.init_seq(seq);
        source.max_seq = seq.wrapping_sub(1);
        source.probation = probation;
        source
    }

    /// RFC 3550 A.1 `init_seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        // A restart may bring a new timestamp base: start jitter afresh.
        self.transit = None;
    }

    /// RFC 3550 A.1 `update_seq`: true if the packet counts.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received = 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a gap that is taken as loss.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: believe it only if the next packet follows.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return false;
            }
        }
        // Otherwise a duplicate or late packet: counted, max unchanged.
        self.received = self.received.wrapping_add(1);
        true
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, in integers scaled by 16.
    fn update_jitter(&mut self, timestamp: u32, arrival: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(previous) = self.transit {
            let d = u64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> i64 {
        i64::from(self.extended_max().wrapping_sub(self.base_seq)) + 1
    }
}

/// Statistics of the one source a call leg receives from, sans-IO: the
/// caller passes each packet's header fields and its arrival time on the
/// stream's RTP clock, and asks for a [`ReportBlock`] when it sends RTCP.
///
/// A packet from a new SSRC replaces the source and starts over (a leg has
/// one remote stream; a gateway that restarts picks a new SSRC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpReceiverStats {
    source: Option<Source>,
    min_sequential: u8,
    /// LSR of the last SR and when it arrived, with its sender's SSRC.
    last_sr: Option<(u32, u32, Instant)>,
}

impl Default for RtpReceiverStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpReceiverStats {
    /// Statistics that need [`MIN_SEQUENTIAL`] packets in sequence before
    /// a source counts (RFC 3550 A.1).
    pub fn new() -> Self {
        Self::with_probation(MIN_SEQUENTIAL)
    }

    /// Statistics that need `min_sequential` packets in sequence (at least
    /// 1: a source that was already validated by signalling may count from
    /// its first packet).
    pub fn with_probation(min_sequential: u8) -> Self {
        RtpReceiverStats {
            source: None,
            min_sequential: min_sequential.max(1),
            last_sr: None,
        }
    }

    /// Takes one received packet: `arrival` is its arrival time in the
    /// units of its RTP clock (e.g. 8 per millisecond for G.711). Returns
    /// whether the packet is valid by RFC 3550 A.1: false while a new
    /// source is on probation and for the first packet after a very large
    /// sequence jump.
    pub fn handle_packet(
        &mut self,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        arrival: u32,
    ) -> bool {
        let source = match &mut self.source {
            Some(source) if source.ssrc == ssrc => source,
            slot => slot.insert(Source::new(ssrc, sequence, self.min_sequential)),
        };
        let valid = source.update_seq(sequence);
        if valid {
            source.update_jitter(timestamp, arrival);
        }
        valid
    }

    /// Takes a sender report from the remote side, received at `now`, for
    /// the LSR and DLSR fields of the next report block (RFC 3550 §6.4.1).
    pub fn handle_sender_report(&mut self, ssrc: u32, ntp: NtpTime, now: Instant) {
        self.last_sr = Some((ssrc, ntp.middle_32(), now));
    }

    /// The SSRC being reported on, once a packet has been seen.
    pub fn ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// Valid packets received (duplicates included), since the source was
    /// validated.
    pub fn received(&self) -> u32 {
        self.valid_source().map_or(0, |s| s.received)
    }

    /// Cycles in the high 16 bits, highest sequence in the low 16.
    pub fn extended_highest_sequence(&self) -> Option<u32> {
        self.valid_source().map(Source::extended_max)
    }

    /// Packets expected minus packets received (RFC 3550 A.3); negative
    /// when duplicates arrived.
    pub fn cumulative_lost(&self) -> i64 {
        self.valid_source()
            .map_or(0, |s| s.expected() - i64::from(s.received))
    }

    /// Interarrival jitter in RTP units (RFC 3550 A.8).
    pub fn jitter(&self) -> u32 {
        self.valid_source()
            .map_or(0, |s| u32::try_from(s.jitter_q4 >> 4).unwrap_or(u32::MAX))
    }

    /// The report block for the next SR or RR, sent at `now`; starts a new
    /// interval for the fraction lost (RFC 3550 §6.4.1, A.3). None until a
    /// valid packet has arrived.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let last_sr = self.last_sr;
        let source = self
            .source
            .as_mut()
            .filter(|s| s.received > 0 || s.probation == 0)?;
        let expected = source.expected();
        let received = i64::from(source.received);
        let lost = (expected - received).clamp(-0x80_0000, 0x7F_FFFF) as i32;

        let expected_interval = expected - i64::from(source.expected_prior);
        let received_interval = received - i64::from(source.received_prior);
        source.expected_prior = expected as u32;
        source.received_prior = source.received;
        let lost_interval = expected_interval - received_interval;
        let fraction_lost = if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };

        let (last_sr, delay_since_last_sr) = match last_sr {
            Some((ssrc, lsr, at)) if ssrc == source.ssrc => {
                let delay = now.saturating_duration_since(at);
                let units = delay.as_nanos() * 65_536 / 1_000_000_000;
                (lsr, u32::try_from(units).unwrap_or(u32::MAX))
            }
            _ => (0, 0),
        };

        Some(ReportBlock {
            ssrc: source.ssrc,
            fraction_lost,
            cumulative_lost: lost,
            extended_highest_sequence: source.extended_max(),
            jitter: u32::try_from(source.jitter_q4 >> 4).unwrap_or(u32::MAX),
            last_sr,
            delay_since_last_sr,
        })
    }

    fn valid_source(&self) -> Option<&Source> {
        self.source
            .as_ref()
            .filter(|s| s.received > 0 || s.probation == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Feeds packets 20 ms apart (160 RTP units), each arriving on time.
    fn feed(stats: &mut RtpReceiverStats, ssrc: u32, seqs: &[u16]) -> Vec<bool> {
        seqs.iter()
            .map(|&seq| {
                let ts = u32::from(seq) * 160;
                stats.handle_packet(ssrc, seq, ts, ts + 1000)
            })
            .collect()
    }

    #[test]
    fn probation_then_counting_rfc3550_a_1() {
        let mut s = RtpReceiverStats::new();
        assert_eq!(feed(&mut s, 1, &[100]), [false]);
        assert_eq!(s.report_block(Instant::now()), None);
        assert_eq!(feed(&mut s, 1, &[101, 102, 103]), [true, true, true]);
        assert_eq!(s.received(), 3);
        assert_eq!(s.extended_highest_sequence(), Some(103));
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn probation_restarts_on_a_gap_rfc3550_a_1() {
        let mut s = RtpReceiverStats::new();
        assert_eq!(
            feed(&mut s, 1, &[10, 12, 13, 14]),
            [false, false, true, true]
        );
        assert_eq!(s.received(), 2);
        let mut once = RtpReceiverStats::with_probation(1);
        assert_eq!(feed(&mut once, 1, &[10, 11]), [true, true]);
    }

    #[test]
    fn wraparound_counts_cycles_rfc3550_a_1() {
        let mut s = RtpReceiverStats::with_probation(1);
        feed(&mut s, 7, &[65533, 65534, 65535, 0, 1]);
        assert_eq!(s.extended_highest_sequence(), Some(0x0001_0001));
        assert_eq!(s.received(), 5);
        assert_eq!(s.cumulative_lost(), 0);
        // A late packet from before the wrap does not move the maximum.
        assert!(feed(&mut s, 7, &[65535])[0]);
        assert_eq!(s.extended_highest_sequence(), Some(0x0001_0001));
        assert_eq!(s.cumulative_lost(), -1);
    }

    #[test]
    fn large_jump_needs_two_packets_rfc3550_a_1() {
        let mut s = RtpReceiverStats::with_probation(1);
        feed(&mut s, 7, &[1000, 1001]);
        // 20000 is past MAX_DROPOUT: ignored once...
        assert_eq!(feed(&mut s, 7, &[20000]), [false]);
        assert_eq!(s.extended_highest_sequence(), Some(1001));
        // ...but the next in sequence restarts the count from there.
        assert_eq!(feed(&mut s, 7, &[20001, 20002]), [true, true]);
        assert_eq!(s.extended_highest_sequence(), Some(20002));
        assert_eq!(s.received(), 2);
        assert_eq!(s.cumulative_lost(), 0);
        // A stray jump followed by normal packets changes nothing.
        assert_eq!(feed(&mut s, 7, &[40000, 20003]), [false, true]);
        assert_eq!(s.extended_highest_sequence(), Some(20003));
    }

    #[test]
    fn loss_and_fraction_lost_per_interval_rfc3550_a_3() {
        let mut s = RtpReceiverStats::with_probation(1);
        let t0 = Instant::now();
        // 1..=10 with 3, 4 and 8 missing: 10 expected, 7 received.
        feed(&mut s, 9, &[1, 2, 5, 6, 7, 9, 10]);
        let b = s.report_block(t0).unwrap();
        assert_eq!(b.ssrc, 9);
        assert_eq!(b.cumulative_lost, 3);
        assert_eq!(b.fraction_lost, (3 * 256 / 10) as u8);
        assert_eq!(b.extended_highest_sequence, 10);
        // Next interval: 11..=20 all arrive.
        feed(&mut s, 9, &(11..=20).collect::<Vec<_>>());
        let b = s.report_block(t0).unwrap();
        assert_eq!((b.cumulative_lost, b.fraction_lost), (3, 0));
        // Duplicates make the interval's loss negative: reported as 0.
        feed(&mut s, 9, &[20, 20, 21]);
        let b = s.report_block(t0).unwrap();
        assert_eq!((b.cumulative_lost, b.fraction_lost), (1, 0));
        // Nothing new: an empty interval reports 0.
        assert_eq!(s.report_block(t0).unwrap().fraction_lost, 0);
    }

    #[test]
    fn jitter_follows_a_8() {
        let mut s = RtpReceiverStats::with_probation(1);
        // Steady arrivals: no jitter.
        for seq in 0..50u16 {
            let ts = u32::from(seq) * 160;
            s.handle_packet(3, seq, ts, ts + 500);
        }
        assert_eq!(s.jitter(), 0);
        // Arrivals alternating 40 units early and late: |D| = 80 each time,
        // so J converges on 80.
        for seq in 50..400u16 {
            let ts = u32::from(seq) * 160;
            let wobble = if seq % 2 == 0 { 540 } else { 460 };
            s.handle_packet(3, seq, ts, ts + wobble);
        }
        assert!((78..=80).contains(&s.jitter()), "{}", s.jitter());
        // One step from zero: J = |D| / 16 (A.8).
        let mut one = RtpReceiverStats::with_probation(1);
        one.handle_packet(3, 0, 0, 100);
        one.handle_packet(3, 1, 160, 160 + 100 + 320);
        assert_eq!(one.jitter(), 20);
        // Timestamps and arrival times wrap without a spike.
        let mut wrap = RtpReceiverStats::with_probation(1);
        wrap.handle_packet(3, 0, u32::MAX - 159, u32::MAX - 10);
        wrap.handle_packet(3, 1, 0, 149);
        assert_eq!(wrap.jitter(), 0);
    }

    #[test]
    fn lsr_and_dlsr_from_the_last_sender_report_rfc3550_6_4_1() {
        let mut s = RtpReceiverStats::with_probation(1);
        let t0 = Instant::now();
        feed(&mut s, 5, &[1, 2]);
        assert_eq!(s.report_block(t0).unwrap().last_sr, 0);
        let ntp = NtpTime::new(0x0001_2345, 0x6789_0000);
        s.handle_sender_report(5, ntp, t0);
        let b = s.report_block(t0 + Duration::from_millis(1500)).unwrap();
        assert_eq!(b.last_sr, 0x2345_6789);
        assert_eq!(b.delay_since_last_sr, 65_536 * 3 / 2);
        // An SR about another source is not ours to echo.
        s.handle_sender_report(6, ntp, t0);
        assert_eq!(s.report_block(t0).unwrap().last_sr, 0);
    }

    #[test]
    fn a_new_ssrc_starts_over() {
        let mut s = RtpReceiverStats::with_probation(1);
        feed(&mut s, 1, &[100, 101, 105]);
        assert_eq!(s.cumulative_lost(), 3);
        feed(&mut s, 2, &[7, 8]);
        assert_eq!(s.ssrc(), Some(2));
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.extended_highest_sequence(), Some(8));
    }
}
