//! Media-quality statistics of the load generator (DESIGN §9): per received
//! RTP stream, loss and reordering from sequence numbers (RFC 3550 A.1,
//! A.3), interarrival jitter (A.8) and each packet's arrival deviation from
//! the stream's ideal 20 ms grid; and the percentile summaries the report
//! prints across calls.
//!
//! Sans-IO: arrival times are inputs (nanoseconds on any clock that is
//! monotonic within one stream), so the tests feed synthetic arrivals.

use serde::Serialize;

/// RTP clock rate of G.711 and telephone-event (RFC 3551 §4.5.14).
pub const CLOCK_RATE: u32 = 8000;

/// RTP units of one 20 ms packet at 8 kHz.
const FRAME_UNITS: i64 = 160;

/// A sequence jump below this is loss, not a restart (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;

/// Most deviation samples kept per stream (10 minutes of 20 ms frames);
/// later packets still count for loss and jitter.
const MAX_DEVIATION_SAMPLES: usize = 30_000;

/// Statistics of one received RTP stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Packets received (duplicates and late ones included, A.3).
    pub received: u64,
    /// Packets whose sequence number was not above the highest seen: late
    /// (reordered) or duplicated.
    pub out_of_order: u64,
    /// Packets with a different SSRC than the first (ignored otherwise).
    pub foreign_ssrc: u64,
    first: Option<First>,
    /// Highest sequence number seen, extended with wrap cycles (A.1).
    max_ext_seq: u64,
    /// Relative transit of the previous packet in seconds (A.8).
    last_transit: Option<f64>,
    /// Interarrival jitter in seconds (A.8).
    jitter: f64,
    /// `arrival - ideal` of each packet in ns, relative to the first.
    offsets: Vec<i64>,
    /// Lowest and highest RTP timestamp seen, in units from the first.
    min_units: i64,
    max_units: i64,
}

/// The stream's first packet: the origin of sequence numbers and of the
/// arrival grid.
#[derive(Debug, Clone, Copy)]
struct First {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    arrival_ns: i64,
}

impl StreamStats {
    /// Counts one packet: its SSRC, sequence number and RTP timestamp, and
    /// its arrival time in nanoseconds.
    pub fn handle_packet(&mut self, ssrc: u32, seq: u16, timestamp: u32, arrival_ns: i64) {
        let first = *self.first.get_or_insert(First {
            ssrc,
            seq,
            timestamp,
            arrival_ns,
        });
        if ssrc != first.ssrc {
            self.foreign_ssrc += 1;
            return;
        }
        self.received += 1;
        self.update_seq(seq);

        // Position on the stream's RTP clock relative to the first packet;
        // i32 covers ±74 hours at 8 kHz.
        let units = i64::from(timestamp.wrapping_sub(first.timestamp) as i32);
        self.min_units = self.min_units.min(units);
        self.max_units = self.max_units.max(units);
        let ideal_ns = units * 1_000_000_000 / i64::from(CLOCK_RATE);
        let offset = arrival_ns - first.arrival_ns - ideal_ns;
        if self.offsets.len() < MAX_DEVIATION_SAMPLES {
            self.offsets.push(offset);
        }

        // RFC 3550 A.8: D(i,j) = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16,
        // in arrival order.
        let transit = offset as f64 / 1e9;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// RFC 3550 A.1, simplified for one known source: extends the sequence
    /// number over wraps, and counts a packet not above the highest as out
    /// of order.
    fn update_seq(&mut self, seq: u16) {
        if self.received == 1 {
            self.max_ext_seq = u64::from(seq);
            return;
        }
        let max16 = self.max_ext_seq as u16;
        let delta = seq.wrapping_sub(max16);
        if delta == 0 {
            self.out_of_order += 1;
        } else if delta < MAX_DROPOUT {
            self.max_ext_seq += u64::from(delta);
        } else {
            // Behind the highest (a wrap-around difference): late or a
            // duplicate, counted but not advancing.
            self.out_of_order += 1;
        }
    }

    /// Packets the sender numbered from the first to the highest received
    /// (A.3 `expected`).
    pub fn expected(&self) -> u64 {
        match self.first {
            Some(first) if self.received > 0 => self.max_ext_seq - u64::from(first.seq) + 1,
            _ => 0,
        }
    }

    /// Packets expected but never received (A.3; duplicates can make the
    /// difference negative, which counts as zero).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// 20 ms frames the timestamps span but no packet carried: silence the
    /// sender did not send (between prompts) or ticks it skipped. Assumes
    /// 20 ms packets.
    pub fn grid_skipped(&self) -> u64 {
        if self.received == 0 {
            return 0;
        }
        let frames = (self.max_units - self.min_units) / FRAME_UNITS + 1;
        let unique = self.received - self.out_of_order;
        u64::try_from(frames).unwrap_or(0).saturating_sub(unique)
    }

    /// Interarrival jitter (A.8) in seconds.
    pub fn jitter_seconds(&self) -> f64 {
        self.jitter
    }

    /// Each packet's arrival deviation from the stream's ideal grid, in
    /// nanoseconds, measured from the packet that arrived earliest
    /// relative to the grid: `arrival_i - i × 20 ms` minus its minimum over
    /// the stream. Never negative. Taking the minimum as the origin, rather
    /// than the first packet, keeps one late first packet from shifting
    /// every other one.
    pub fn deviations_ns(&self) -> impl Iterator<Item = u64> + '_ {
        let min = self.offsets.iter().copied().min().unwrap_or(0);
        self.offsets.iter().map(move |&o| (o - min).unsigned_abs())
    }
}

/// Percentiles of a set of values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (sorted here).
    pub fn of(values: &mut [f64]) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[i - 1]
        };
        Percentiles {
            count: values.len() as u64,
            p50: rank(0.50),
            p99: rank(0.99),
            p999: rank(0.999),
            max: values[values.len() - 1],
        }
    }

    /// The same percentiles with every value multiplied by `factor`.
    pub fn scaled(self, factor: f64) -> Percentiles {
        Percentiles {
            count: self.count,
            p50: self.p50 * factor,
            p99: self.p99 * factor,
            p999: self.p999 * factor,
            max: self.max * factor,
        }
    }
}

/// Width of one [`Histogram`] bucket in nanoseconds.
const BUCKET_NS: u64 = 1_000;
/// Buckets of [`Histogram`]: 1 µs each up to 1 s; larger values share the
/// last and the exact maximum is kept aside.
const BUCKETS: usize = 1_000_000;

/// A histogram of nanosecond values with 1 µs buckets, for the millions of
/// per-packet deviations a run collects.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        let i = usize::try_from(ns / BUCKET_NS)
            .unwrap_or(BUCKETS - 1)
            .min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Percentiles in nanoseconds, each the upper edge of its bucket (the
    /// exact maximum for `max`).
    pub fn percentiles(&self) -> Percentiles {
        if self.total == 0 {
            return Percentiles::default();
        }
        let at = |q: f64| {
            let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
            let mut seen = 0;
            for (i, &c) in self.counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return ((i as u64 + 1) * BUCKET_NS).min(self.max) as f64;
                }
            }
            self.max as f64
        };
        Percentiles {
            count: self.total,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: self.max as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    /// Feeds packets `(seq, timestamp, arrival ms)` with SSRC 7.
    fn feed(packets: &[(u16, u32, f64)]) -> StreamStats {
        let mut s = StreamStats::default();
        for &(seq, ts, ms) in packets {
            s.handle_packet(7, seq, ts, (ms * 1e6) as i64);
        }
        s
    }

    /// A perfect 20 ms stream: 50 packets, nothing lost, no jitter, every
    /// deviation zero.
    #[test]
    fn perfect_stream() {
        let pkts: Vec<_> = (0..50u16)
            .map(|i| (1000 + i, 160 * u32::from(i), 20.0 * f64::from(i)))
            .collect();
        let s = feed(&pkts);
        assert_eq!(
            (s.received, s.expected(), s.lost(), s.out_of_order),
            (50, 50, 0, 0)
        );
        assert_eq!(s.jitter_seconds(), 0.0);
        assert!(s.deviations_ns().all(|d| d == 0));
        assert_eq!(s.grid_skipped(), 0);
    }

    /// RFC 3550 A.3: a gap of two sequence numbers is two lost packets.
    #[test]
    fn gap_is_loss() {
        let s = feed(&[(1, 0, 0.0), (2, 160, 20.0), (5, 640, 80.0), (6, 800, 100.0)]);
        assert_eq!((s.expected(), s.received, s.lost()), (6, 4, 2));
        assert_eq!(s.out_of_order, 0);
    }

    /// RFC 3550 A.1: a late packet is counted, does not move the highest
    /// sequence number, and is reported out of order; no loss remains.
    #[test]
    fn reordering_is_counted_not_lost() {
        let s = feed(&[
            (10, 0, 0.0),
            (12, 320, 40.0),
            (11, 160, 41.0),
            (13, 480, 60.0),
        ]);
        assert_eq!(
            (s.expected(), s.received, s.lost(), s.out_of_order),
            (4, 4, 0, 1)
        );
    }

    /// A duplicate counts as out of order and never as negative loss.
    #[test]
    fn duplicate_is_not_negative_loss() {
        let s = feed(&[(1, 0, 0.0), (2, 160, 20.0), (2, 160, 20.5), (3, 320, 40.0)]);
        assert_eq!(
            (s.expected(), s.received, s.lost(), s.out_of_order),
            (3, 4, 0, 1)
        );
    }

    /// RFC 3550 A.1: sequence numbers wrap from 65535 to 0 without loss.
    #[test]
    fn sequence_wrap() {
        let s = feed(&[
            (65534, 0, 0.0),
            (65535, 160, 20.0),
            (0, 320, 40.0),
            (1, 480, 60.0),
        ]);
        assert_eq!((s.expected(), s.lost(), s.out_of_order), (4, 0, 0));
    }

    /// RFC 3550 A.8: with every other packet 2 ms late, |D| is 2 ms for
    /// each pair and J converges on it (J_n = 2 ms × (1 − (15/16)^n)).
    #[test]
    fn jitter_converges_on_constant_difference() {
        let pkts: Vec<_> = (0..200u16)
            .map(|i| {
                let late = if i % 2 == 1 { 2.0 } else { 0.0 };
                (i, 160 * u32::from(i), 20.0 * f64::from(i) + late)
            })
            .collect();
        let s = feed(&pkts);
        let expect = 0.002 * (1.0 - (15.0f64 / 16.0).powi(199));
        assert!(
            (s.jitter_seconds() - expect).abs() < 1e-9,
            "{}",
            s.jitter_seconds()
        );
    }

    /// RFC 3550 A.8: one 10 ms late packet gives two |D| of 10 ms.
    #[test]
    fn jitter_of_one_late_packet() {
        let s = feed(&[(0, 0, 0.0), (1, 160, 20.0), (2, 320, 50.0), (3, 480, 60.0)]);
        let j1 = 0.010 / 16.0;
        let j2 = j1 + (0.010 - j1) / 16.0;
        assert!((s.jitter_seconds() - j2).abs() < 1e-12);
    }

    /// Deviation from the grid is taken from the earliest packet: a late
    /// first packet does not shift the others, and a silence gap (the
    /// timestamp jumps, no packets) keeps the grid.
    #[test]
    fn deviation_from_grid() {
        let s = feed(&[
            (0, 0, 3.0),       // 3 ms late
            (1, 160, 20.0),    // on the grid
            (2, 320, 40.5),    // 0.5 ms late
            (3, 8320, 1040.0), // after 1 s of silence, on the grid
        ]);
        let d: Vec<u64> = s.deviations_ns().collect();
        assert_eq!(d, vec![3 * MS as u64, 0, 500_000, 0]);
        // 53 frames spanned, 4 sent: 49 not sent.
        assert_eq!(s.grid_skipped(), 49);
    }

    /// A packet from another SSRC is ignored.
    #[test]
    fn foreign_ssrc_ignored() {
        let mut s = feed(&[(0, 0, 0.0), (1, 160, 20.0)]);
        s.handle_packet(99, 500, 0, 30 * MS);
        assert_eq!((s.received, s.foreign_ssrc, s.expected()), (2, 1, 2));
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p99, p.p999, p.max), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = Histogram::default();
        for i in 0..1000u64 {
            h.record(i * 1_000 + 10); // 0.01 µs .. 999.01 µs
        }
        let mut other = Histogram::default();
        other.record(5_000_000_000); // beyond the last bucket
        h.merge(&other);
        let p = h.percentiles();
        assert_eq!(p.count, 1001);
        assert_eq!(p.p50, 501_000.0);
        assert_eq!(p.max, 5e9);
    }
}
