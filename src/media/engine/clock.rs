//! The media clock of one worker: a tick grid from a start instant
//! (DESIGN §4 "one media clock").
//!
//! Tick `k` is due at `start + k × period`; the grid never drifts, whatever
//! the wake-up jitter. A worker that wakes late runs only the newest due
//! tick (each leg sends one frame for it, never a burst) and the skipped
//! ticks are counted.
//!
//! The worker's grid is 2 ms: the 20 ms frame interval split into
//! [`PHASES`] phases. Each leg belongs to one phase and sends at the ticks
//! of its phase, i.e. every 20 ms; spreading the legs evenly over ten
//! phases ([`PhasePlan`]) makes each burst of `sendto`s a tenth as long, so
//! the last leg of a burst leaves ten times closer to its slot (DESIGN §9:
//! send-time p99 ≤ 2 ms off the grid). Still one clock and one wake-up per
//! phase per worker, not a timer per call.

use std::time::{Duration, Instant};

/// The packet interval of every leg: 20 ms of 8 kHz G.711.
pub const TICK: Duration = Duration::from_millis(20);

/// Phases of the 20 ms frame interval; the worker's tick is `TICK / PHASES`
/// (2 ms). At 1,500 playing legs per worker a phase holds 150 sends, about
/// 0.5 ms of `sendto`s on loopback.
pub const PHASES: u64 = 10;

/// The workers' grids are staggered: worker `index` of `workers` ticks
/// `index / workers` of a tick period after worker 0. Their bursts of
/// sends then take turns instead of landing on the same instant, so on
/// a machine with few cores one worker's burst does not wait behind the
/// other's (or push the rest of the machine off both cores at once).
pub fn stagger(index: usize, workers: usize) -> Duration {
    let period = TICK / PHASES as u32;
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    let index = u32::try_from(index).unwrap_or(0) % workers;
    period * index / workers
}

/// The first instant at or after `now` on the tick grid through `origin`
/// (`origin + k × period`, any whole `k`): where a worker's grid starts
/// again after an idle spell, keeping its place beside the others'.
pub fn aligned_start(origin: Instant, now: Instant) -> Instant {
    let period = (TICK / PHASES as u32).as_nanos();
    if now <= origin {
        // Earlier grid points are on the same grid: step back from origin.
        let before = origin.duration_since(now).as_nanos() % period;
        return now + Duration::from_nanos(before as u64);
    }
    let past = now.duration_since(origin).as_nanos() % period;
    if past == 0 {
        now
    } else {
        now + Duration::from_nanos((period - past) as u64)
    }
}

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

    /// The phase (0..[`PHASES`]) of the next tick.
    pub fn next_phase(&self) -> u64 {
        self.next % PHASES
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

/// How many legs more than the least loaded phase a phase may hold and
/// still take a new leg. Each leg in a burst delays the rest by a few
/// microseconds of sends, so a few legs of imbalance cost nothing, while
/// they let most new legs start at the next tick rather than several
/// ticks later.
pub const PHASE_SLACK: usize = 4;

/// Which phase each leg of a worker sends in. A new leg joins the phase
/// due soonest among those holding at most [`PHASE_SLACK`] legs more than
/// the least loaded, so its first frame leaves within a tick or two and
/// no burst of sends grows more than `PHASE_SLACK + 1` legs past the
/// shortest. Once a leg has sent, it keeps its
/// phase (moving it would shift its packets off their 20 ms spacing).
/// Sans-IO: legs are named by the worker's slot index.
#[derive(Debug, Clone)]
pub struct PhasePlan {
    members: [Vec<usize>; PHASES as usize],
}

impl Default for PhasePlan {
    fn default() -> Self {
        PhasePlan {
            members: std::array::from_fn(|_| Vec::new()),
        }
    }
}

impl PhasePlan {
    /// Puts `slot` in the first phase from `next` on (the phase of the
    /// worker's next tick, wrapping) that holds at most [`PHASE_SLACK`]
    /// legs more than the least loaded, and returns that phase.
    pub fn add(&mut self, slot: usize, next: u64) -> u64 {
        let fewest = self.members.iter().map(Vec::len).min().unwrap_or(0);
        let phase = (0..PHASES)
            .map(|d| (next + d) % PHASES)
            .find(|&p| self.members[p as usize].len() <= fewest + PHASE_SLACK)
            .unwrap_or(next % PHASES);
        self.members[phase as usize].push(slot);
        phase
    }

    /// Takes `slot` out of `phase`; false if it was not there.
    pub fn remove(&mut self, slot: usize, phase: u64) -> bool {
        let Some(members) = self.members.get_mut(phase as usize) else {
            return false;
        };
        match members.iter().position(|&s| s == slot) {
            Some(at) => {
                members.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// The slots of `phase`, in no particular order.
    pub fn members(&self, phase: u64) -> &[usize] {
        self.members.get(phase as usize).map_or(&[], Vec::as_slice)
    }

    /// Legs in each phase.
    pub fn sizes(&self) -> [usize; PHASES as usize] {
        std::array::from_fn(|i| self.members[i].len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_grids_are_staggered_evenly_within_a_tick() {
        let period = TICK / PHASES as u32;
        assert_eq!(stagger(0, 2), Duration::ZERO);
        assert_eq!(stagger(1, 2), period / 2);
        assert_eq!(stagger(3, 4), period * 3 / 4);
        assert_eq!(stagger(0, 1), Duration::ZERO);
        assert_eq!(stagger(0, 0), Duration::ZERO);
    }

    #[test]
    fn a_grid_restarts_on_its_own_points() {
        let period = TICK / PHASES as u32;
        let origin = Instant::now() + Duration::from_secs(1);
        let us = Duration::from_micros;
        // After the origin: the next point, or now if on one.
        assert_eq!(aligned_start(origin, origin), origin);
        assert_eq!(aligned_start(origin, origin + us(1)), origin + period);
        assert_eq!(
            aligned_start(origin, origin + period * 7 + us(300)),
            origin + period * 8
        );
        assert_eq!(
            aligned_start(origin, origin + period * 3),
            origin + period * 3
        );
        // Before it: the grid extends backwards.
        assert_eq!(aligned_start(origin, origin - us(300)), origin);
        assert_eq!(
            aligned_start(origin, origin - period * 2 - us(300)),
            origin - period * 2
        );
        assert_eq!(aligned_start(origin, origin - period), origin - period);
        // Two staggered workers restarting at the same instant stay apart.
        let now = origin + us(12_345);
        let a = aligned_start(origin + stagger(0, 2), now);
        let b = aligned_start(origin + stagger(1, 2), now);
        assert_eq!(a.max(b) - a.min(b), period / 2);
    }

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
        let period = TICK / PHASES as u32;
        let at = |k: u64| t0 + period * k as u32;
        // On time: tick PHASES + 2 (one frame interval later) is phase 2's
        // only.
        for k in 0..=PHASES + 1 {
            c.poll_tick(at(k)).unwrap();
        }
        let t = c.poll_tick(at(PHASES + 2)).unwrap();
        assert_eq!((t.index, t.missed), (PHASES + 2, 0));
        let due: Vec<_> = (0..PHASES).map(|p| c.phase_due(&t, p)).collect();
        for (p, d) in due.iter().enumerate() {
            let want = (p == 2).then_some((0, at(PHASES + 2)));
            assert_eq!(*d, want, "phase {p}");
        }
        // 1.5 frame intervals late: ticks PHASES+3 ..= 2·PHASES+3+PHASES/2
        // are due; every phase sends once, at its newest slot, and the
        // phases whose slot came twice in that span report one skipped.
        let last = 2 * PHASES + 2 + PHASES / 2;
        let t = c.poll_tick(at(last) + Duration::from_micros(100)).unwrap();
        assert_eq!((t.index, t.missed), (last, last - (PHASES + 3)));
        let first = PHASES + 3;
        for p in 0..PHASES {
            let slots: Vec<u64> = (first..=last).filter(|k| k % PHASES == p).collect();
            let newest = *slots.last().unwrap();
            assert_eq!(
                c.phase_due(&t, p),
                Some((slots.len() as u64 - 1, at(newest))),
                "phase {p}"
            );
        }
    }

    /// A new leg takes the phase due next unless that one holds more than
    /// [`PHASE_SLACK`] legs above the least loaded; legs that all join at
    /// the same point of the grid still fill every phase, at most
    /// `PHASE_SLACK + 1` apart; a phase emptied by hang-ups is filled first.
    #[test]
    fn phase_plan_puts_a_leg_soon_and_keeps_the_phases_even() {
        let n = PHASES as usize;
        let s = PHASE_SLACK;
        // Joining while each phase is next in turn: one leg per phase.
        let mut plan = PhasePlan::default();
        for slot in 0..3 * n {
            assert_eq!(
                plan.add(slot, slot as u64),
                (slot % n) as u64,
                "slot {slot}"
            );
        }
        assert_eq!(plan.sizes(), [3; PHASES as usize]);
        // Equal phases: the next one, until it holds the slack more.
        for slot in 0..=s {
            assert_eq!(plan.add(100 + slot, 7), 7, "{slot} above the fewest");
        }
        assert_eq!(plan.add(200, 7), 8, "the slack and one above is too many");

        // Every leg joining at phase 0 of the grid.
        let mut plan = PhasePlan::default();
        for slot in 0..40 * n {
            let phase = plan.add(slot, 0);
            if slot <= s + 1 {
                assert_eq!(phase, u64::from(slot > s), "slot {slot}");
            }
            let sizes = plan.sizes();
            let spread = sizes.iter().max().unwrap() - sizes.iter().min().unwrap();
            assert!(spread <= s + 1, "{sizes:?}");
        }

        // Phase 5 loses all its legs; the next legs go there, even when
        // another phase is due first, until the others are within the
        // slack of it.
        let mut plan = PhasePlan::default();
        for slot in 0..(s + 2) * n {
            plan.add(slot, slot as u64);
        }
        for slot in (5..(s + 2) * n).step_by(n) {
            assert!(plan.remove(slot, 5));
        }
        assert!(!plan.remove(5, 5), "already gone");
        assert!(!plan.remove(7, 99), "no such phase");
        assert_eq!(plan.members(5), &[] as &[usize]);
        assert_eq!(plan.add(1000, 2), 5);
        assert_eq!(plan.add(1001, 2), 5);
        assert_eq!(plan.add(1002, 2), 2, "phase 2 is within the slack again");
        let mut five = plan.members(5).to_vec();
        five.sort();
        assert_eq!(five, vec![1000, 1001]);
    }
}
