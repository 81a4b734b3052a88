//! Engine counters for `/metrics` and the timing histograms (DESIGN §9:
//! "send-time p99 ≤ 2 ms off the 20 ms grid"): each frame's send time off
//! its slot, and what makes it up: how late the worker woke for a tick and
//! how long the tick's sends took.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Legs open now.
    pub legs: u64,
    /// RTP frames sent on the tick (prompts, music on hold).
    pub frames_sent: u64,
    /// Ticks run after one or more whole ticks had passed.
    pub late_ticks: u64,
    /// Largest deviation of a frame's send time from its grid slot.
    pub max_send_lateness: Duration,
    /// RTP packets received (all legs).
    pub packets_received: u64,
    /// RTP packets relayed across a bridge.
    pub packets_forwarded: u64,
    /// RTP packets that came by a bridged leg's multishot read (Linux
    /// `io_uring`, where the worker waits in its ring) rather than a
    /// readiness event and a read of their own.
    pub multishot_packets: u64,
    /// Digits reported (all sources).
    pub digits: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// Ticks run (one per 2 ms grid slot, fewer when the worker woke late).
    pub ticks: u64,
    /// Largest delay from a tick's deadline to the worker starting it.
    pub max_wake_lateness: Duration,
    /// Longest time one tick's work (its legs' frames) took.
    pub max_tick_work: Duration,
}

impl EngineStats {
    pub(crate) fn add(&mut self, other: &EngineStats) {
        self.legs += other.legs;
        self.frames_sent += other.frames_sent;
        self.late_ticks += other.late_ticks;
        self.max_send_lateness = self.max_send_lateness.max(other.max_send_lateness);
        self.packets_received += other.packets_received;
        self.packets_forwarded += other.packets_forwarded;
        self.multishot_packets += other.multishot_packets;
        self.digits += other.digits;
        self.send_errors += other.send_errors;
        self.ticks += other.ticks;
        self.max_wake_lateness = self.max_wake_lateness.max(other.max_wake_lateness);
        self.max_tick_work = self.max_tick_work.max(other.max_tick_work);
    }
}

/// Live counters of one worker, written by it and read by handles.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    pub legs: AtomicU64,
    pub frames_sent: AtomicU64,
    pub late_ticks: AtomicU64,
    pub packets_received: AtomicU64,
    pub packets_forwarded: AtomicU64,
    pub multishot_packets: AtomicU64,
    pub digits: AtomicU64,
    pub send_errors: AtomicU64,
    pub ticks: AtomicU64,
    /// Each frame's send time after its grid slot.
    pub lateness: LatenessHistogram,
    /// Each tick's start after its deadline (the wake-up error).
    pub wake_lateness: LatenessHistogram,
    /// Each tick's duration, first send to last.
    pub tick_work: LatenessHistogram,
}

impl WorkerStats {
    pub fn snapshot(&self) -> EngineStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EngineStats {
            legs: get(&self.legs),
            frames_sent: get(&self.frames_sent),
            late_ticks: get(&self.late_ticks),
            max_send_lateness: Duration::from_micros(get(&self.lateness.max_us)),
            packets_received: get(&self.packets_received),
            packets_forwarded: get(&self.packets_forwarded),
            multishot_packets: get(&self.multishot_packets),
            digits: get(&self.digits),
            send_errors: get(&self.send_errors),
            ticks: get(&self.ticks),
            max_wake_lateness: Duration::from_micros(get(&self.wake_lateness.max_us)),
            max_tick_work: Duration::from_micros(get(&self.tick_work.max_us)),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Fine buckets: 25 µs wide up to 2 ms.
const FINE_US: u64 = 25;
const FINE: usize = 80;
/// Coarse buckets: 500 µs wide from 2 ms to 20 ms.
const COARSE_US: u64 = 500;
const COARSE: usize = 36;
/// Plus one bucket for everything above 20 ms.
const BUCKETS: usize = FINE + COARSE + 1;

/// A histogram of send-time deviations in microsecond buckets (25 µs up
/// to 2 ms, 500 µs up to 20 ms, then one overflow bucket). Lock-free:
/// the worker adds, anyone reads.
#[derive(Debug)]
pub struct LatenessHistogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    max_us: AtomicU64,
}

impl Default for LatenessHistogram {
    fn default() -> Self {
        LatenessHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

/// Quantiles of a [`LatenessHistogram`]; each is the upper edge of its
/// bucket (so at most 25 µs high below 2 ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatenessSummary {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

fn bucket_of(us: u64) -> usize {
    if us < FINE_US * FINE as u64 {
        (us / FINE_US) as usize
    } else {
        let coarse = (us - FINE_US * FINE as u64) / COARSE_US;
        FINE + (coarse as usize).min(COARSE)
    }
}

fn upper_edge_us(bucket: usize) -> u64 {
    if bucket < FINE {
        (bucket as u64 + 1) * FINE_US
    } else {
        FINE_US * FINE as u64 + (bucket - FINE + 1) as u64 * COARSE_US
    }
}

impl LatenessHistogram {
    /// Records one send that left `lateness` after its grid slot.
    pub fn record(&self, lateness: Duration) {
        self.record_n(lateness, 1);
    }

    /// Records `n` sends that left `lateness` after their slot.
    pub fn record_n(&self, lateness: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let us = u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX);
        if let Some(b) = self.buckets.get(bucket_of(us)) {
            b.fetch_add(n, Ordering::Relaxed);
        }
        self.count.fetch_add(n, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Adds `other`'s counts into this one.
    pub fn merge(&mut self, other: &LatenessHistogram) {
        for (a, b) in self.buckets.iter().zip(&other.buckets) {
            a.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.count
            .fetch_add(other.count.load(Ordering::Relaxed), Ordering::Relaxed);
        self.max_us
            .fetch_max(other.max_us.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// A copy of the counts so far, to diff a later [`summary_since`] against.
    ///
    /// [`summary_since`]: LatenessHistogram::summary_since
    pub fn snapshot(&self) -> LatenessHistogram {
        let mut copy = LatenessHistogram::default();
        copy.merge(self);
        copy
    }

    /// Quantiles of what was recorded after `earlier` (a [`snapshot`] of
    /// this histogram); `max` is the bucket edge there (the exact maximum
    /// is only kept over the whole life).
    ///
    /// [`snapshot`]: LatenessHistogram::snapshot
    pub fn summary_since(&self, earlier: &LatenessHistogram) -> LatenessSummary {
        let window = LatenessHistogram::default();
        let mut top = 0;
        for (i, ((w, now), then)) in window
            .buckets
            .iter()
            .zip(&self.buckets)
            .zip(&earlier.buckets)
            .enumerate()
        {
            let n = now
                .load(Ordering::Relaxed)
                .saturating_sub(then.load(Ordering::Relaxed));
            w.store(n, Ordering::Relaxed);
            if n > 0 {
                top = i;
            }
        }
        let max = if window
            .buckets
            .iter()
            .all(|b| b.load(Ordering::Relaxed) == 0)
        {
            0
        } else {
            upper_edge_us(top).min(self.max_us.load(Ordering::Relaxed))
        };
        window.max_us.store(max, Ordering::Relaxed);
        window.summary()
    }

    /// p50, p99 and max of what was recorded.
    pub fn summary(&self) -> LatenessSummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        let quantile = |q: f64| {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((count as f64 * q).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_micros(upper_edge_us(i).min(max_us.max(1)));
                }
            }
            Duration::from_micros(max_us)
        };
        LatenessSummary {
            count,
            p50: quantile(0.50),
            p99: quantile(0.99),
            max: Duration::from_micros(max_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let h = LatenessHistogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(40));
        }
        h.record(Duration::from_micros(1_900));
        h.record(Duration::from_millis(30));
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p99, Duration::from_micros(1_925));
        assert_eq!(s.max, Duration::from_millis(30));
        assert_eq!(bucket_of(2_000), FINE);
        assert_eq!(bucket_of(19_999), FINE + COARSE - 1);
        assert_eq!(bucket_of(u64::MAX), FINE + COARSE);
    }

    /// A window's quantiles count only what came after the snapshot.
    #[test]
    fn summary_since_a_snapshot() {
        let h = LatenessHistogram::default();
        for _ in 0..100 {
            h.record(Duration::from_millis(5));
        }
        let before = h.snapshot();
        for _ in 0..100 {
            h.record(Duration::from_micros(60));
        }
        let s = h.summary_since(&before);
        assert_eq!(s.count, 100);
        assert_eq!(s.p99, Duration::from_micros(75));
        assert_eq!(s.max, Duration::from_micros(75));
        assert_eq!(h.summary().max, Duration::from_millis(5));
        assert_eq!(h.summary_since(&h.snapshot()).count, 0);
    }
}
