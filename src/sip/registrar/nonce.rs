//! Stateless digest nonces (RFC 7616 §3.3, §5.4) and nonce-count replay
//! rejection (RFC 7616 §3.4.5, §5.13).
//!
//! A nonce is `hex(issued_at_ms ‖ random ‖ MAC)`, MAC = the first 16 bytes
//! of SHA-256(secret ‖ issued_at_ms ‖ random). Only the nonce's own bytes
//! are needed to check it, so any node holding the secret can verify it.
//! The MAC input has a fixed length and the decoder accepts exactly one
//! length, so SHA-256 length extension gives nothing.

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::digest::constant_time_eq;

const STAMP_LEN: usize = 8;
const RANDOM_LEN: usize = 12;
const MAC_LEN: usize = 16;
const RAW_LEN: usize = STAMP_LEN + RANDOM_LEN + MAC_LEN;

/// Identity of one issued nonce (its time stamp and random part), the key
/// of the nonce-count table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceId([u8; STAMP_LEN + RANDOM_LEN]);

/// What a received nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and younger than the lifetime.
    Fresh { id: NonceId, issued_at_ms: i64 },
    /// Ours but too old: answer `stale=true` if the digest was right.
    Stale,
    /// Not ours (bad MAC, bad encoding, another secret).
    Invalid,
}

/// Issues and checks nonces; the clock is an input (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct NonceMint {
    secret: [u8; 32],
    lifetime_ms: i64,
}

impl NonceMint {
    /// Default nonce lifetime.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

    pub fn new(secret: [u8; 32], lifetime: Duration) -> NonceMint {
        let lifetime_ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        NonceMint {
            secret,
            lifetime_ms,
        }
    }

    pub fn lifetime_ms(&self) -> i64 {
        self.lifetime_ms
    }

    fn mac(&self, head: &[u8]) -> [u8; MAC_LEN] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(head);
        let full = h.finalize();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A new nonce issued at `now_ms` with caller-supplied randomness.
    pub fn issue(&self, now_ms: i64, random: [u8; RANDOM_LEN]) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..STAMP_LEN].copy_from_slice(&now_ms.to_be_bytes());
        raw[STAMP_LEN..STAMP_LEN + RANDOM_LEN].copy_from_slice(&random);
        let mac = self.mac(&raw[..STAMP_LEN + RANDOM_LEN]);
        raw[STAMP_LEN + RANDOM_LEN..].copy_from_slice(&mac);
        let mut out = String::with_capacity(RAW_LEN * 2);
        for b in raw {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Checks a nonce received at `now_ms`: MAC first, then age. A time
    /// stamp from the future (the clock stepped back) counts its distance
    /// as age too.
    pub fn check(&self, nonce: &str, now_ms: i64) -> NonceState {
        let Some(raw) = decode_hex::<RAW_LEN>(nonce) else {
            return NonceState::Invalid;
        };
        let head = &raw[..STAMP_LEN + RANDOM_LEN];
        if !constant_time_eq(&self.mac(head), &raw[STAMP_LEN + RANDOM_LEN..]) {
            return NonceState::Invalid;
        }
        let mut stamp = [0u8; STAMP_LEN];
        stamp.copy_from_slice(&raw[..STAMP_LEN]);
        let issued_at_ms = i64::from_be_bytes(stamp);
        let age = now_ms.saturating_sub(issued_at_ms).saturating_abs();
        if age > self.lifetime_ms {
            return NonceState::Stale;
        }
        let mut id = [0u8; STAMP_LEN + RANDOM_LEN];
        id.copy_from_slice(head);
        NonceState::Fresh {
            id: NonceId(id),
            issued_at_ms,
        }
    }
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *slot = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Outcome of presenting a nonce count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcCheck {
    /// Higher than any count seen for this nonce: recorded.
    Accepted,
    /// Not above the highest count seen: a replay (RFC 7616 §5.13).
    Replay,
    /// The nonce's entry was evicted from the full table, so its counts
    /// are unknown: treat the nonce as stale and issue a new one.
    Forgotten,
}

/// Highest nonce count seen per live nonce. Bounded: entries leave when
/// their nonce expires; when full the oldest nonce is forgotten and every
/// nonce issued no later than it is refused as stale from then on, so
/// eviction never reopens a replay.
#[derive(Debug, Clone)]
pub struct NonceCounts {
    entries: HashMap<NonceId, (u32, i64)>,
    capacity: usize,
    /// Nonces issued at or before this instant may have lost their entry.
    forgotten_up_to_ms: i64,
}

impl NonceCounts {
    pub const DEFAULT_CAPACITY: usize = 50_000;

    pub fn new(capacity: usize) -> NonceCounts {
        NonceCounts {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            forgotten_up_to_ms: i64::MIN,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records `nc` for a fresh nonce; call only after the digest response
    /// verified, so guesses cannot push the count up.
    pub fn check(
        &mut self,
        id: NonceId,
        issued_at_ms: i64,
        nc: u32,
        now_ms: i64,
        lifetime_ms: i64,
    ) -> NcCheck {
        if let Some((last, _)) = self.entries.get_mut(&id) {
            if nc <= *last {
                return NcCheck::Replay;
            }
            *last = nc;
            return NcCheck::Accepted;
        }
        if issued_at_ms <= self.forgotten_up_to_ms {
            return NcCheck::Forgotten;
        }
        if self.entries.len() >= self.capacity {
            self.purge(now_ms, lifetime_ms);
        }
        if self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, issued))| *issued)
                .map(|(k, (_, issued))| (*k, *issued));
            if let Some((key, issued)) = oldest {
                self.entries.remove(&key);
                self.forgotten_up_to_ms = self.forgotten_up_to_ms.max(issued);
            }
            if issued_at_ms <= self.forgotten_up_to_ms {
                return NcCheck::Forgotten;
            }
        }
        self.entries.insert(id, (nc, issued_at_ms));
        NcCheck::Accepted
    }

    /// Drops entries of nonces that are no longer fresh.
    pub fn purge(&mut self, now_ms: i64, lifetime_ms: i64) {
        self.entries.retain(|_, (_, issued)| {
            now_ms.saturating_sub(*issued).saturating_abs() <= lifetime_ms
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000_000;

    fn mint() -> NonceMint {
        NonceMint::new([7; 32], NonceMint::DEFAULT_LIFETIME)
    }

    fn fresh(state: NonceState) -> (NonceId, i64) {
        match state {
            NonceState::Fresh { id, issued_at_ms } => (id, issued_at_ms),
            other => panic!("expected fresh, got {other:?}"),
        }
    }

    /// RFC 7616 §3.3 / §5.4: our nonce is fresh for its lifetime, then
    /// stale (so the challenge says stale=true); foreign or altered nonces
    /// are invalid.
    #[test]
    fn nonce_lifetime_then_stale() {
        let m = mint();
        let n = m.issue(T0, [1; 12]);
        assert_eq!(n.len(), 72);
        assert_eq!(fresh(m.check(&n, T0)).1, T0);
        assert!(matches!(
            m.check(&n, T0 + 300_000),
            NonceState::Fresh { .. }
        ));
        assert_eq!(m.check(&n, T0 + 300_001), NonceState::Stale);
        assert_eq!(m.check(&n, T0 - 300_001), NonceState::Stale);

        let other = NonceMint::new([8; 32], NonceMint::DEFAULT_LIFETIME);
        assert_eq!(other.check(&n, T0), NonceState::Invalid);
        let mut altered = n.clone().into_bytes();
        altered[0] = if altered[0] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(m.check(&altered, T0), NonceState::Invalid);
        for junk in [
            "",
            "zz",
            &n[..70],
            &format!("{n}00"),
            "é".repeat(36).as_str(),
        ] {
            assert_eq!(m.check(junk, T0), NonceState::Invalid, "{junk}");
        }
        assert_ne!(m.issue(T0, [2; 12]), n);
    }

    /// RFC 7616 §3.4.5 / §5.13: a nonce count not above the last one seen
    /// for that nonce is a replay; another nonce has its own counter.
    #[test]
    fn nc_replay_rejected() {
        let m = mint();
        let mut counts = NonceCounts::new(16);
        let lt = m.lifetime_ms();
        let (a, ta) = fresh(m.check(&m.issue(T0, [1; 12]), T0));
        let (b, tb) = fresh(m.check(&m.issue(T0, [2; 12]), T0));
        assert_eq!(counts.check(a, ta, 1, T0, lt), NcCheck::Accepted);
        assert_eq!(counts.check(a, ta, 1, T0, lt), NcCheck::Replay);
        assert_eq!(counts.check(a, ta, 3, T0, lt), NcCheck::Accepted);
        assert_eq!(counts.check(a, ta, 2, T0, lt), NcCheck::Replay);
        assert_eq!(counts.check(b, tb, 1, T0, lt), NcCheck::Accepted);
        counts.purge(T0 + lt + 1, lt);
        assert!(counts.is_empty());
    }

    /// Bounded table: eviction forgets the oldest nonce, and that nonce
    /// (and older ones) can no longer be used rather than being replayable.
    #[test]
    fn nc_table_is_bounded_without_reopening_replays() {
        let m = mint();
        let lt = m.lifetime_ms();
        let mut counts = NonceCounts::new(2);
        let ids: Vec<_> = (0..3u8)
            .map(|i| fresh(m.check(&m.issue(T0 + i as i64, [i; 12]), T0 + 10)))
            .collect();
        for (id, t) in &ids {
            assert_eq!(counts.check(*id, *t, 1, T0 + 10, lt), NcCheck::Accepted);
        }
        assert_eq!(counts.len(), 2);
        let (first, t_first) = ids[0];
        assert_eq!(
            counts.check(first, t_first, 1, T0 + 10, lt),
            NcCheck::Forgotten
        );
        assert_eq!(
            counts.check(first, t_first, 9, T0 + 10, lt),
            NcCheck::Forgotten
        );
        let (last, t_last) = ids[2];
        assert_eq!(counts.check(last, t_last, 1, T0 + 10, lt), NcCheck::Replay);
    }
}
