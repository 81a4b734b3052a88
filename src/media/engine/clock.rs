//! The media clock of one worker: a tick grid from a start instant
//! (DESIGN §4 "one media clock").
//!
//! Tick `k` is due at `start + k × period`; the grid never drifts, whatever
//! the wake-up jitter. A worker that wakes late runs only the newest due
//! tick (each leg sends one frame for it, never a burst) and the skipped
//! ticks are counted.
//!
//! The worker's grid is 5 ms: the 20 ms frame interval split into
//! [`PHASES`] phases. Each leg belongs to one phase and sends at the ticks
//! of its phase, i.e. every 20 ms; spreading the legs over four phases
//! makes each burst of `sendto`s a quarter as long, so the last leg of a
//! burst leaves four times closer to its slot (DESIGN §9: send-time p99 ≤
//! 2 ms off the grid). Still one clock and one wake-up per phase per
//! worker, not a timer per call.

use std::time::{Duration, Instant};

/// The packet interval of every leg: 20 ms of 8 kHz G.711.
pub const TICK: Duration = Duration::from_millis(20);

/// Phases of the 20 ms frame interval; the worker's tick is `TICK / PHASES`.
pub const PHASES: u64 = 4;

/// One tick to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Index on the grid (0 at the start instant).
    pub index: u64,
    /// When the tick was due.
    pub deadline: Instant,
    /// Earlier ticks that were skipped because the worker woke too late.
    pub missed: u64,
}

/// A tick grid. Sans-IO: the caller passes the time.
#[derive(Debug, Clone)]
pub struct TickClock {
    start: Instant,
    period: Duration,
    next: u64,
    late_ticks: u64,
    missed_ticks: u64,
}

impl TickClock {
    /// A grid of [`PHASES`] ticks per 20 ms whose tick 0 is due at `start`.
    pub fn new(start: Instant) -> TickClock {
        TickClock::with_period(start, TICK / PHASES as u32)
    }

    /// A grid with another period (tests); at least 1 ms.
    pub fn with_period(start: Instant, period: Duration) -> TickClock {
        TickClock {
            start,
            period: period.max(Duration::from_millis(1)),
            next: 0,
            late_ticks: 0,
            missed_ticks: 0,
        }
    }

    /// When the next tick is due.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline_of(self.next)
    }

    fn deadline_of(&self, index: u64) -> Instant {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(index));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.start + Duration::from_nanos(nanos)
    }

    /// The tick due at `now`, if any: the newest one whose deadline has
    /// passed; older due ticks are skipped and counted as missed.
    pub fn poll_tick(&mut self, now: Instant) -> Option<Tick> {
        let due = self.poll_timeout();
        if now < due {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let newest = u64::try_from(elapsed / self.period.as_nanos()).unwrap_or(u64::MAX);
        let index = newest.max(self.next);
        let missed = index - self.next;
        if missed > 0 {
            self.late_ticks += 1;
            self.missed_ticks += missed;
        }
        self.next = index.saturating_add(1);
        Some(Tick {
            index,
            deadline: self.deadline_of(index),
            missed,
        })
    }

    /// For the legs of `phase` (0..[`PHASES`]): whether `tick` (with the
    /// ticks it skipped) holds one of their slots, and if so how many of
    /// their slots were skipped before the newest and when that newest was
    /// due. Each such leg sends one frame, never a burst.
    pub fn phase_due(&self, tick: &Tick, phase: u64) -> Option<(u64, Instant)> {
        let p = PHASES;
        let phase = phase % p;
        let last = tick.index;
        let first = tick.index.saturating_sub(tick.missed);
        let latest = last.checked_sub((last % p + p - phase) % p)?;
        if latest < first {
            return None;
        }
        let earliest = first + (phase + p - first % p) % p;
        let skipped = (latest - earliest) / p;
        Some((skipped, self.deadline_of(latest)))
    }

    /// Times the worker woke after a whole tick had passed.
    pub fn late_ticks(&self) -> u64 {
        self.late_ticks
    }

    /// Ticks skipped in total.
    pub fn missed_ticks(&self) -> u64 {
        self.missed_ticks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_grid_without_drift() {
        let t0 = Instant::now();
        let mut c = TickClock::with_period(t0, TICK);
        assert_eq!(c.poll_timeout(), t0);
        let t = c.poll_tick(t0 + Duration::from_micros(300)).unwrap();
        assert_eq!((t.index, t.deadline, t.missed), (0, t0, 0));
        assert_eq!(c.poll_tick(t0 + Duration::from_millis(19)), None);
        // Waking 1.5 ms late does not shift the next deadline.
        let t = c.poll_tick(t0 + Duration::from_micros(21_500)).unwrap();
        assert_eq!((t.index, t.missed), (1, 0));
        assert_eq!(c.poll_timeout(), t0 + Duration::from_millis(40));
    }

    #[test]
    fn a_late_wake_runs_only_the_newest_tick() {
        let t0 = Instant::now();
        let mut c = TickClock::with_period(t0, TICK);
        c.poll_tick(t0).unwrap();
        // 75 ms later: ticks 1, 2 and 3 are due; only 3 runs.
        let t = c.poll_tick(t0 + Duration::from_millis(75)).unwrap();
        assert_eq!((t.index, t.missed), (3, 2));
        assert_eq!(t.deadline, t0 + Duration::from_millis(60));
        assert_eq!(c.poll_tick(t0 + Duration::from_millis(79)), None);
        assert_eq!((c.late_ticks(), c.missed_ticks()), (1, 2));
    }

    #[test]
    fn each_phase_gets_one_slot_per_20ms() {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0);
        let ms = |m| t0 + Duration::from_millis(m);
        // On time: tick 6 (30 ms) is phase 2's only.
        for k in 0..=5 {
            c.poll_tick(ms(5 * k)).unwrap();
        }
        let t = c.poll_tick(ms(30)).unwrap();
        assert_eq!(t.index, 6);
        let due: Vec<_> = (0..PHASES).map(|p| c.phase_due(&t, p)).collect();
        assert_eq!(due, vec![None, None, Some((0, ms(30))), None]);
        // 27 ms late: ticks 7..=12 are due; every phase sends once, phases
        // 3 and 0 (slots 7 and 11, 8 and 12) having skipped one slot.
        let t = c.poll_tick(ms(62)).unwrap();
        assert_eq!((t.index, t.missed), (12, 5));
        let due: Vec<_> = (0..PHASES).map(|p| c.phase_due(&t, p)).collect();
        assert_eq!(
            due,
            vec![
                Some((1, ms(60))),
                Some((0, ms(45))),
                Some((0, ms(50))),
                Some((1, ms(55))),
            ]
        );
    }
}
