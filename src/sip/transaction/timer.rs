//! Transaction timers (RFC 3261 §17, Table 4 of Appendix A; RFC 6026 §8.4,
//! §8.7): a per-transaction table indexed by [`Timer`] and the layer-wide
//! queue of next deadlines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The timer values T1, T2 and T4 (RFC 3261 §17.1.1.1, §17.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate; the first retransmission interval.
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for TimerConfig {
    /// The RFC 3261 defaults: T1 = 500 ms, T2 = 4 s, T4 = 5 s.
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: timers B, F, H, J, L, M and the §13.3.1.4 ACK wait.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
    /// Timer D: "at least 32 seconds" over unreliable transports (§17.1.1.2).
    pub fn timer_d(&self) -> Duration {
        self.t1x64().max(Duration::from_secs(32))
    }
}

/// The next retransmission instant: `interval` after the one that was due
/// at `at`, or after `now` when the caller woke up so late that it passed
/// (no burst of catch-up retransmissions).
pub(crate) fn next_after(at: Instant, interval: Duration, now: Instant) -> Instant {
    let next = at + interval;
    if next > now { next } else { now + interval }
}

/// The RFC 3261 §17 timers (plus RFC 6026's L and M and the UAS core's 2xx
/// retransmission of §13.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// INVITE request retransmission (§17.1.1.2, unreliable transports only).
    A,
    /// INVITE client transaction timeout (§17.1.1.2).
    B,
    /// Wait for response retransmissions after the ACK (§17.1.1.2).
    D,
    /// Non-INVITE request retransmission (§17.1.2.2).
    E,
    /// Non-INVITE client transaction timeout (§17.1.2.2).
    F,
    /// INVITE final response retransmission (§17.2.1).
    G,
    /// Wait for the ACK of a non-2xx final response (§17.2.1).
    H,
    /// Wait for ACK retransmissions (§17.2.1).
    I,
    /// Wait for non-INVITE request retransmissions (§17.2.2).
    J,
    /// Wait for non-INVITE response retransmissions (§17.1.2.2).
    K,
    /// INVITE server transaction in Accepted (RFC 6026 §8.7).
    L,
    /// INVITE client transaction in Accepted (RFC 6026 §8.4).
    M,
    /// 2xx retransmission by the UAS until the ACK arrives (§13.3.1.4).
    Retransmit2xx,
}

impl Timer {
    const COUNT: usize = 13;
    const ALL: [Timer; Timer::COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Retransmit2xx,
    ];
}

/// One transaction's running timers, `[Option<Instant>; N]` indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    slots: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer as usize] = Some(at);
    }
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer as usize] = None;
    }
    pub(crate) fn stop_all(&mut self) {
        self.slots = [None; Timer::COUNT];
    }
    /// The earliest running timer's deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }
    /// Stops and returns the earliest timer due at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = Timer::ALL
            .iter()
            .filter_map(|&t| self.slots[t as usize].map(|at| (t, at)))
            .filter(|&(_, at)| at <= now)
            .min_by_key(|&(_, at)| at)?;
        self.stop(timer);
        Some(timer)
    }
}

/// Which transaction a queued deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TxRef {
    Client(u64),
    Server(u64),
}

/// The layer's deadlines: a min-heap of `(deadline, transaction)` with lazy
/// deletion. An entry is live only while it equals its transaction's
/// current [`TimerTable::next_deadline`]; the owner checks that on pop.
#[derive(Debug, Default)]
pub(crate) struct DeadlineQueue {
    heap: BinaryHeap<Reverse<(Instant, TxRef)>>,
}

impl DeadlineQueue {
    pub(crate) fn push(&mut self, at: Instant, tx: TxRef) {
        self.heap.push(Reverse((at, tx)));
    }
    pub(crate) fn peek(&self) -> Option<(Instant, TxRef)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }
    pub(crate) fn pop(&mut self) -> Option<(Instant, TxRef)> {
        self.heap.pop().map(|Reverse(e)| e)
    }
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// RFC 3261 Appendix A: the default T1, T2, T4 and the derived 64*T1
    /// and Timer D (at least 32 s).
    #[test]
    fn rfc3261_appendix_a_defaults() {
        let c = TimerConfig::default();
        assert_eq!((c.t1, c.t2, c.t4), (ms(500), ms(4000), ms(5000)));
        assert_eq!(c.t1x64(), ms(32_000));
        let fast = TimerConfig { t1: ms(100), ..c };
        assert_eq!(fast.timer_d(), ms(32_000));
    }

    #[test]
    fn table_pops_earliest_due_timer_first() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next_deadline(), None);
        t.set(Timer::H, t0 + ms(300));
        t.set(Timer::G, t0 + ms(100));
        t.set(Timer::Retransmit2xx, t0 + ms(200));
        assert_eq!(t.next_deadline(), Some(t0 + ms(100)));
        assert_eq!(t.pop_expired(t0 + ms(50)), None);
        assert_eq!(t.pop_expired(t0 + ms(250)), Some(Timer::G));
        assert_eq!(t.pop_expired(t0 + ms(250)), Some(Timer::Retransmit2xx));
        assert_eq!(t.pop_expired(t0 + ms(250)), None);
        t.stop(Timer::H);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn late_wakeup_does_not_burst() {
        let t0 = Instant::now();
        assert_eq!(next_after(t0, ms(500), t0 + ms(100)), t0 + ms(500));
        assert_eq!(next_after(t0, ms(500), t0 + ms(900)), t0 + ms(1400));
    }

    #[test]
    fn queue_is_a_min_heap() {
        let t0 = Instant::now();
        let mut q = DeadlineQueue::default();
        q.push(t0 + ms(20), TxRef::Client(1));
        q.push(t0 + ms(10), TxRef::Server(2));
        assert_eq!(q.peek(), Some((t0 + ms(10), TxRef::Server(2))));
        assert_eq!(q.pop(), Some((t0 + ms(10), TxRef::Server(2))));
        assert_eq!(q.len(), 1);
    }
}
