//! Authentication failure throttling per source IP (DESIGN §10): after a
//! few failures within a window answers to that source are delayed, after
//! many the source is banned for a while. A success resets the source.
//! Memory is bounded: at capacity the least recently seen source is evicted,
//! sources in a ban last.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Throttle settings.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures within `window` after which answers are delayed.
    pub delay_after: u32,
    /// Failures within `window` after which the source is banned.
    pub ban_after: u32,
    /// Failures older than this (counted from the first) are forgotten.
    pub window: Duration,
    /// Delay for the first delayed answer; each further failure adds as
    /// much again, up to `max_delay`.
    pub delay: Duration,
    pub max_delay: Duration,
    /// How long a ban lasts.
    pub ban_for: Duration,
    /// Most sources tracked.
    pub capacity: usize,
}

impl Default for ThrottleConfig {
    fn default() -> ThrottleConfig {
        ThrottleConfig {
            delay_after: 5,
            ban_after: 20,
            window: Duration::from_secs(600),
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            ban_for: Duration::from_secs(3600),
            capacity: 10_000,
        }
    }
}

/// What to do with an answer to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleVerdict {
    /// Answer now.
    Allow,
    /// Hold the answer this long before sending it.
    Delay(Duration),
    /// The source is banned: drop its requests unanswered.
    Ban,
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

/// Failure counts per source IP.
#[derive(Debug, Clone)]
pub struct Throttle {
    config: ThrottleConfig,
    entries: HashMap<IpAddr, Entry>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            entries: HashMap::new(),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Number of sources tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verdict for `ip` now, without recording anything.
    pub fn verdict(&self, now: Instant, ip: IpAddr) -> ThrottleVerdict {
        match self.entries.get(&ip) {
            Some(e) => self.verdict_of(e, now),
            None => ThrottleVerdict::Allow,
        }
    }

    /// Whether `ip` is banned at `now` (cheap check before any work).
    pub fn is_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.verdict(now, ip) == ThrottleVerdict::Ban
    }

    fn verdict_of(&self, e: &Entry, now: Instant) -> ThrottleVerdict {
        match e.banned_until {
            Some(until) if now < until => return ThrottleVerdict::Ban,
            Some(_) => return ThrottleVerdict::Allow,
            None => {}
        }
        if now.saturating_duration_since(e.window_start) > self.config.window {
            return ThrottleVerdict::Allow;
        }
        if e.failures >= self.config.ban_after {
            return ThrottleVerdict::Ban;
        }
        if e.failures >= self.config.delay_after {
            let steps = e.failures - self.config.delay_after + 1;
            let delay = self.config.delay.saturating_mul(steps);
            return ThrottleVerdict::Delay(delay.min(self.config.max_delay));
        }
        ThrottleVerdict::Allow
    }

    /// Counts one failure from `ip` and returns the verdict for the answer
    /// to it.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) -> ThrottleVerdict {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.config.capacity {
            self.make_room(now);
        }
        let config = &self.config;
        let e = self.entries.entry(ip).or_insert(Entry {
            failures: 0,
            window_start: now,
            banned_until: None,
            last_seen: now,
        });
        let ban_over = e.banned_until.is_some_and(|until| now >= until);
        let window_over = now.saturating_duration_since(e.window_start) > config.window;
        if ban_over || (e.banned_until.is_none() && window_over) {
            e.failures = 0;
            e.window_start = now;
            e.banned_until = None;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_seen = now;
        if e.failures >= config.ban_after && e.banned_until.is_none() {
            e.banned_until = Some(now + config.ban_for);
        }
        let e = e.clone();
        self.verdict_of(&e, now)
    }

    /// A successful authentication from `ip` clears its record (but not a
    /// ban in force: banned sources are not served at all).
    pub fn record_success(&mut self, now: Instant, ip: IpAddr) {
        if self.verdict(now, ip) != ThrottleVerdict::Ban {
            self.entries.remove(&ip);
        }
    }

    /// Forgets sources whose window and ban are over.
    pub fn purge(&mut self, now: Instant) {
        let window = self.config.window;
        self.entries.retain(|_, e| match e.banned_until {
            Some(until) => now < until,
            None => now.saturating_duration_since(e.window_start) <= window,
        });
    }

    fn make_room(&mut self, now: Instant) {
        self.purge(now);
        if self.entries.len() < self.config.capacity {
            return;
        }
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.banned_until.is_some_and(|u| now < u), e.last_seen))
            .map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            self.entries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    /// DESIGN §10: delay after 5 failures, ban after 20, ban ends after
    /// its period, a success resets the count.
    #[test]
    fn delays_then_bans_and_success_resets() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig::default());
        let a = ip(1);
        for _ in 0..4 {
            assert_eq!(th.record_failure(t0, a), ThrottleVerdict::Allow);
        }
        assert_eq!(
            th.record_failure(t0, a),
            ThrottleVerdict::Delay(Duration::from_secs(1))
        );
        assert_eq!(
            th.verdict(t0, a),
            ThrottleVerdict::Delay(Duration::from_secs(1))
        );
        assert_eq!(
            th.record_failure(t0, a),
            ThrottleVerdict::Delay(Duration::from_secs(2))
        );
        for _ in 7..20 {
            assert!(
                matches!(th.record_failure(t0, a), ThrottleVerdict::Delay(d) if d <= Duration::from_secs(8))
            );
        }
        assert_eq!(th.record_failure(t0, a), ThrottleVerdict::Ban);
        assert!(th.is_banned(t0 + Duration::from_secs(3599), a));
        th.record_success(t0 + Duration::from_secs(10), a);
        assert!(th.is_banned(t0 + Duration::from_secs(10), a), "ban holds");
        assert_eq!(
            th.verdict(t0 + Duration::from_secs(3600), a),
            ThrottleVerdict::Allow
        );
        assert_eq!(
            th.record_failure(t0 + Duration::from_secs(3600), a),
            ThrottleVerdict::Allow
        );
        assert_eq!(th.verdict(t0, ip(2)), ThrottleVerdict::Allow);

        let b = ip(3);
        for _ in 0..6 {
            th.record_failure(t0, b);
        }
        assert!(matches!(th.verdict(t0, b), ThrottleVerdict::Delay(_)));
        th.record_success(t0, b);
        assert_eq!(th.verdict(t0, b), ThrottleVerdict::Allow);
        assert_eq!(th.record_failure(t0, b), ThrottleVerdict::Allow);
    }

    /// DESIGN §10: failures spread wider than the window do not add up.
    #[test]
    fn window_forgets_old_failures() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig::default());
        for i in 0..10u64 {
            let v = th.record_failure(t0 + Duration::from_secs(601 * i), ip(1));
            assert_eq!(v, ThrottleVerdict::Allow);
        }
    }

    /// Bounded memory: at capacity the least recently seen unbanned source
    /// goes first.
    #[test]
    fn capacity_evicts_oldest_unbanned() {
        let t0 = Instant::now();
        let config = ThrottleConfig {
            capacity: 3,
            ban_after: 2,
            ..ThrottleConfig::default()
        };
        let mut th = Throttle::new(config);
        th.record_failure(t0, ip(1));
        th.record_failure(t0, ip(1));
        assert!(th.is_banned(t0, ip(1)));
        th.record_failure(t0 + Duration::from_secs(1), ip(2));
        th.record_failure(t0 + Duration::from_secs(2), ip(3));
        th.record_failure(t0 + Duration::from_secs(3), ip(4));
        assert_eq!(th.len(), 3);
        assert!(th.is_banned(t0 + Duration::from_secs(3), ip(1)));
        assert!(!th.entries.contains_key(&ip(2)));
        th.purge(t0 + Duration::from_secs(7200));
        assert!(th.is_empty());
    }
}
