//! The RTP jitter buffer (DESIGN §4): packets go in by sequence number as
//! they arrive; frames come out on a steady playout clock, one per frame
//! interval, after a fixed target delay.
//!
//! Sans-IO: arrival times and the playout clock are inputs. The ring of
//! slots is allocated once; inserting and polling never allocate.
//!
//! Sequence numbers are compared modulo 2^16 (RFC 3550 §3, §A.1). The
//! buffer restarts on an SSRC change (RFC 3550 §8) and, after two
//! consecutive packets confirm it, on a large sequence jump (RFC 3550
//! §A.1). A talk spurt after silence (marker bit or a timestamp jump,
//! RFC 3550 §5.1, RFC 3551 §4.1) is buffered afresh, while a network burst
//! of stale packets is dropped as late so the delay does not grow.

use std::time::{Duration, Instant};

/// Sequence distance (either way) beyond which a packet is a jump, not
/// reordering or loss (RFC 3550 §A.1 uses 100 for misordering).
const MAX_MISORDER: u16 = 100;

/// Largest ring (frames); bigger capacities are clamped.
const MAX_CAPACITY: usize = 1024;

/// Settings of [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Playout interval: one frame per `frame` (20 ms for G.711 at 20 ms ptime).
    pub frame: Duration,
    /// RTP timestamp units per frame (160 for 20 ms at 8 kHz).
    pub frame_units: u32,
    /// Delay between the first packet of a talk spurt arriving and its
    /// playout: the jitter the buffer absorbs.
    pub target_delay: Duration,
    /// Frames the buffer holds (rounded up to a power of two, at most 1024).
    pub capacity: usize,
    /// Late packets arriving without a break for this long mean the path's
    /// delay grew: playout is restarted on them.
    pub late_resync: Duration,
    /// After this long with an empty buffer, playout stops until the next
    /// packet, which starts it afresh.
    pub idle_after: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            frame: Duration::from_millis(20),
            frame_units: 160,
            target_delay: Duration::from_millis(60),
            capacity: 16,
            late_resync: Duration::from_millis(200),
            idle_after: Duration::from_secs(1),
        }
    }
}

/// The RTP header fields the buffer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMeta {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
}

/// What became of an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Stored for playout.
    Accepted,
    /// Playout (re)starts with this packet: the first of a stream, a new
    /// SSRC, a confirmed sequence jump, or a talk spurt after the buffer ran
    /// dry.
    Restarted,
    /// Already held: dropped.
    Duplicate,
    /// Its playout time has passed: dropped.
    Late,
    /// Far from the expected sequence number: dropped unless the next
    /// packet confirms the jump (RFC 3550 §A.1).
    Jump,
}

/// One step of the playout clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout<T> {
    Frame {
        seq: u16,
        timestamp: u32,
        payload: T,
    },
    /// This frame's packet did not arrive in time: conceal or play silence.
    Missing { seq: u16 },
}

/// Counters for RTCP reports and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub late: u64,
    /// Dropped while a jump waited for confirmation.
    pub jumps: u64,
    /// Frames dropped to make room when packets ran ahead of playout.
    pub overflow: u64,
    /// Playout restarts (new stream, SSRC change, jump, talk spurt, resync).
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No stream yet, or stopped after a long silence.
    Idle,
    /// Holding packets until the target delay has passed.
    Buffering { until: Instant },
    /// Emitting one frame per interval; the next is due then.
    Playing { due: Instant },
}

#[derive(Debug)]
struct Slot<T> {
    seq: u16,
    timestamp: u32,
    payload: T,
}

/// A fixed-delay jitter buffer of frames `T` (encoded payloads or decoded
/// samples). Insert with [`handle_packet`](Self::handle_packet); call
/// [`poll`](Self::poll) on the media tick until it returns `None`.
#[derive(Debug)]
pub struct JitterBuffer<T> {
    config: JitterConfig,
    slots: Vec<Option<Slot<T>>>,
    mask: usize,
    /// Occupied slots.
    len: usize,
    ssrc: Option<u32>,
    state: State,
    /// The next sequence number to play.
    next_seq: u16,
    /// Newest packet received (sequence, timestamp).
    newest: Option<(u16, u32)>,
    /// RFC 3550 §A.1 `bad_seq`: a jump is confirmed if this one comes next.
    probation: Option<u16>,
    /// When the current run of late packets began.
    late_since: Option<Instant>,
    /// Consecutive frames played from an empty buffer.
    empty_run: u32,
    stats: JitterStats,
}

/// `a - b` as a signed sequence distance.
fn seq_delta(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

impl<T> JitterBuffer<T> {
    pub fn new(config: JitterConfig) -> JitterBuffer<T> {
        let capacity = config.capacity.clamp(2, MAX_CAPACITY).next_power_of_two();
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        JitterBuffer {
            config,
            slots,
            mask: capacity - 1,
            len: 0,
            ssrc: None,
            state: State::Idle,
            next_seq: 0,
            newest: None,
            probation: None,
            late_since: None,
            empty_run: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames the ring holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Drops everything and waits for a new stream.
    pub fn reset(&mut self) {
        self.clear();
        self.ssrc = None;
        self.state = State::Idle;
        self.newest = None;
        self.probation = None;
        self.late_since = None;
        self.empty_run = 0;
    }

    /// One packet arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, meta: RtpMeta, payload: T) -> Insert {
        self.stats.received += 1;
        if self.ssrc != Some(meta.ssrc) || self.state == State::Idle {
            // RFC 3550 §8: a new SSRC is a new stream.
            self.reset();
            self.ssrc = Some(meta.ssrc);
            return self.restart(now, meta, payload);
        }

        let delta = seq_delta(meta.seq, self.next_seq);
        let capacity = self.slots.len() as i32;

        if delta.unsigned_abs() > u32::from(MAX_MISORDER) {
            // RFC 3550 §A.1: accept a jump once the next packet follows it.
            if self.probation == Some(meta.seq) {
                self.clear();
                return self.restart(now, meta, payload);
            }
            self.probation = Some(meta.seq.wrapping_add(1));
            self.stats.jumps += 1;
            return Insert::Jump;
        }
        self.probation = None;

        if delta < 0 {
            if let State::Buffering { .. } = self.state
                && self.newest_seq_distance(meta.seq) < capacity
            {
                // Reordered ahead of the packet that began buffering:
                // nothing has played, so start earlier.
                self.next_seq = meta.seq;
                return self.store(meta, payload);
            }
            if self.is_new_talk_spurt(meta) {
                self.clear();
                return self.restart(now, meta, payload);
            }
            let since = *self.late_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.config.late_resync {
                // Late for a long while: the path's delay grew.
                self.clear();
                return self.restart(now, meta, payload);
            }
            self.stats.late += 1;
            return Insert::Late;
        }
        self.late_since = None;

        if delta >= capacity {
            // Packets ran ahead of playout: drop the oldest frames so this
            // one fits.
            let skip = delta - capacity + 1;
            for _ in 0..skip {
                let i = usize::from(self.next_seq) & self.mask;
                if self.slots[i].take().is_some() {
                    self.len -= 1;
                    self.stats.overflow += 1;
                }
                self.next_seq = self.next_seq.wrapping_add(1);
            }
        }
        self.store(meta, payload)
    }

    /// The next playout step due at `now`, if any; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Playout<T>> {
        let due = match self.state {
            State::Idle => return None,
            State::Buffering { until } if now < until => return None,
            State::Buffering { until } => until,
            State::Playing { due } if now < due => return None,
            State::Playing { due } => due,
        };
        let seq = self.next_seq;
        let i = usize::from(seq) & self.mask;
        let out = match self.slots[i].take() {
            Some(slot) if slot.seq == seq => {
                self.len -= 1;
                self.stats.played += 1;
                self.empty_run = 0;
                Playout::Frame {
                    seq,
                    timestamp: slot.timestamp,
                    payload: slot.payload,
                }
            }
            other => {
                if other.is_some() {
                    // A leftover from before a restart: not this frame.
                    self.len -= 1;
                }
                self.stats.missing += 1;
                if self.len == 0 {
                    self.empty_run = self.empty_run.saturating_add(1);
                }
                Playout::Missing { seq }
            }
        };
        self.next_seq = seq.wrapping_add(1);
        self.state = State::Playing {
            due: due + self.config.frame,
        };
        if self.config.frame * self.empty_run >= self.config.idle_after {
            // A long silence: wait for the next talk spurt.
            self.state = State::Idle;
            self.empty_run = 0;
        }
        Some(out)
    }

    /// When [`poll`](Self::poll) next has something.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Idle => None,
            State::Buffering { until } => Some(until),
            State::Playing { due } => Some(due),
        }
    }

    /// Starts buffering afresh with this packet first.
    fn restart(&mut self, now: Instant, meta: RtpMeta, payload: T) -> Insert {
        self.stats.restarts += 1;
        self.state = State::Buffering {
            until: now + self.config.target_delay,
        };
        self.next_seq = meta.seq;
        self.newest = None;
        self.probation = None;
        self.late_since = None;
        self.empty_run = 0;
        self.store(meta, payload);
        Insert::Restarted
    }

    /// A late packet that begins a talk spurt after the buffer ran dry
    /// (RFC 3551 §4.1 marker, or a timestamp gap wider than the sequence
    /// gap: the sender was silent, not the network slow).
    fn is_new_talk_spurt(&self, meta: RtpMeta) -> bool {
        let Some((seq, ts)) = self.newest else {
            return false;
        };
        let seq_gap = seq_delta(meta.seq, seq);
        if self.len != 0 || seq_gap <= 0 {
            return false;
        }
        let expected = u64::from(seq_gap.unsigned_abs()) * u64::from(self.config.frame_units);
        let ts_gap = u64::from(meta.timestamp.wrapping_sub(ts));
        meta.marker || (ts_gap > expected && ts_gap < u64::from(u32::MAX / 2))
    }

    /// How far `seq` is behind the newest packet.
    fn newest_seq_distance(&self, seq: u16) -> i32 {
        self.newest
            .map(|(newest, _)| seq_delta(newest, seq))
            .unwrap_or(0)
    }

    fn store(&mut self, meta: RtpMeta, payload: T) -> Insert {
        let i = usize::from(meta.seq) & self.mask;
        match &self.slots[i] {
            Some(slot) if slot.seq == meta.seq => {
                self.stats.duplicates += 1;
                return Insert::Duplicate;
            }
            Some(_) => {}
            None => self.len += 1,
        }
        self.slots[i] = Some(Slot {
            seq: meta.seq,
            timestamp: meta.timestamp,
            payload,
        });
        match self.newest {
            Some((newest, _)) if seq_delta(meta.seq, newest) <= 0 => {}
            _ => self.newest = Some((meta.seq, meta.timestamp)),
        }
        Insert::Accepted
    }

    fn clear(&mut self) {
        for slot in &mut self.slots {
            *slot = None;
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn meta(seq: u16) -> RtpMeta {
        RtpMeta {
            ssrc: SSRC,
            seq,
            timestamp: u32::from(seq).wrapping_mul(160),
            marker: false,
        }
    }

    /// What the playout produced: `Some(seq)` for a frame, `None` for a gap.
    type Out = Vec<Option<u16>>;

    /// Drives `jb` on a 20 ms tick from `t0 + from` to `t0 + to`, feeding
    /// `arrivals` (ms after t0, seq) as their times come.
    fn run(
        jb: &mut JitterBuffer<u16>,
        t0: Instant,
        arrivals: &[(u64, RtpMeta)],
        until_ms: u64,
    ) -> Out {
        let mut out = Vec::new();
        let mut next = 0;
        let mut now_ms = 0;
        while now_ms <= until_ms {
            while next < arrivals.len() && arrivals[next].0 <= now_ms {
                let (at, m) = arrivals[next];
                jb.handle_packet(t0 + ms(at), m, m.seq);
                next += 1;
            }
            while let Some(p) = jb.poll(t0 + ms(now_ms)) {
                out.push(match p {
                    Playout::Frame { seq, payload, .. } => {
                        assert_eq!(seq, payload);
                        Some(seq)
                    }
                    Playout::Missing { .. } => None,
                });
            }
            now_ms += 5;
        }
        out
    }

    fn steady(first: u16, count: u16, start_ms: u64) -> Vec<(u64, RtpMeta)> {
        (0..count)
            .map(|i| (start_ms + 20 * u64::from(i), meta(first.wrapping_add(i))))
            .collect()
    }

    fn frames(first: u16, count: u16) -> Out {
        (0..count).map(|i| Some(first.wrapping_add(i))).collect()
    }

    #[test]
    fn in_order_plays_after_target_delay() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut arrivals = steady(100, 10, 0);
        arrivals.sort_by_key(|a| a.0);
        // First poll with output is at the target delay.
        jb.handle_packet(t0, meta(100), 100);
        assert_eq!(jb.poll(t0 + ms(59)), None);
        assert_eq!(jb.poll_timeout(), Some(t0 + ms(60)));
        jb.reset();
        let out = run(&mut jb, t0, &arrivals, 240);
        assert_eq!(out, frames(100, 10));
        assert_eq!(jb.stats().played, 10);
    }

    #[test]
    fn reordered_packets_play_in_order() {
        // RFC 3550 §A.1: misordering within the buffer is repaired.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let order = [1u16, 0, 2, 4, 3, 5, 7, 6, 8, 9];
        let arrivals: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(i, &s)| (20 * i as u64, meta(s)))
            .collect();
        let out = run(&mut jb, t0, &arrivals, 300);
        assert_eq!(&out[..10], &frames(0, 10)[..]);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        assert_eq!(jb.handle_packet(t0, meta(5), 5), Insert::Restarted);
        assert_eq!(jb.handle_packet(t0 + ms(1), meta(5), 5), Insert::Duplicate);
        assert_eq!(jb.handle_packet(t0 + ms(20), meta(6), 6), Insert::Accepted);
        assert_eq!(jb.handle_packet(t0 + ms(21), meta(6), 6), Insert::Duplicate);
        assert_eq!(jb.stats().duplicates, 2);
        assert_eq!(jb.len(), 2);
    }

    #[test]
    fn loss_is_reported_missing() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let arrivals: Vec<_> = steady(0, 10, 0)
            .into_iter()
            .filter(|(_, m)| m.seq != 3 && m.seq != 4)
            .collect();
        let out = run(&mut jb, t0, &arrivals, 240);
        let mut want = frames(0, 10);
        want[3] = None;
        want[4] = None;
        assert_eq!(out, want);
        assert_eq!(jb.stats().missing, 2);
    }

    #[test]
    fn late_packet_is_dropped() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // seq 2 is due at 60 + 40 = 100 ms but arrives at 130 ms.
        let mut arrivals: Vec<_> = steady(0, 8, 0)
            .into_iter()
            .filter(|(_, m)| m.seq != 2)
            .collect();
        arrivals.push((130, meta(2)));
        arrivals.sort_by_key(|a| a.0);
        let out = run(&mut jb, t0, &arrivals, 200);
        assert_eq!(out[2], None);
        assert_eq!(out[3], Some(3));
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn jitter_within_target_is_absorbed() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Up to 50 ms of extra delay on some packets, under the 60 ms target.
        let extra = [0u64, 30, 10, 50, 0, 45, 5, 20, 40, 0];
        let arrivals: Vec<_> = steady(0, 10, 0)
            .into_iter()
            .zip(extra)
            .map(|((at, m), e)| (at + e, m))
            .collect();
        let mut sorted = arrivals.clone();
        sorted.sort_by_key(|a| a.0);
        let out = run(&mut jb, t0, &sorted, 240);
        assert_eq!(out, frames(0, 10));
    }

    #[test]
    fn sequence_wraps_at_65535() {
        // RFC 3550 §A.1: sequence numbers are modulo 2^16.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut arrivals = steady(65530, 12, 0);
        arrivals.swap(5, 6); // 65535 and 0 swapped
        arrivals[5].0 = 100;
        arrivals[6].0 = 101;
        let out = run(&mut jb, t0, &arrivals, 300);
        assert_eq!(&out[..12], &frames(65530, 12)[..]);
    }

    #[test]
    fn network_burst_after_pause_keeps_delay() {
        // The path stalls for 200 ms and then delivers the held packets at
        // once: those past their time are late, and playout keeps its
        // 60 ms delay for what follows.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut arrivals = steady(0, 30, 0);
        for a in &mut arrivals[10..20] {
            a.0 = 400;
        }
        let out = run(&mut jb, t0, &arrivals, 700);
        // seq k is due at 60 + 20k ms: 10..=16 are due before 400.
        let mut want = frames(0, 30);
        for w in &mut want[10..17] {
            *w = None;
        }
        assert_eq!(&out[..30], &want[..]);
        assert_eq!(jb.stats().late, 7);
        // Seq 29 arrived at 580 and played at 640: still 60 ms.
    }

    #[test]
    fn talk_spurt_after_sender_silence_rebuffers() {
        // RFC 3551 §4.1: after silence suppression the sender resumes with
        // the next sequence number, a jumped timestamp and the marker.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut arrivals = steady(0, 5, 0);
        for i in 0..5u16 {
            let mut m = meta(5 + i);
            m.timestamp = 160 * 5 + 8000 + 160 * u32::from(i); // 1 s of silence
            m.marker = i == 0;
            arrivals.push((500 + 20 * u64::from(i), m));
        }
        let out = run(&mut jb, t0, &arrivals, 700);
        let played: Vec<u16> = out.iter().flatten().copied().collect();
        assert_eq!(played, (0..10).collect::<Vec<u16>>());
        assert_eq!(jb.stats().late, 0);
        // The resumed spurt plays 60 ms after it arrives.
        assert_eq!(jb.stats().restarts, 2);
    }

    #[test]
    fn ssrc_change_restarts() {
        // RFC 3550 §8: a new SSRC is a new source.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for i in 0..3u16 {
            jb.handle_packet(t0 + ms(20 * u64::from(i)), meta(i), i);
        }
        let other = RtpMeta {
            ssrc: 99,
            seq: 40000,
            timestamp: 7,
            marker: true,
        };
        assert_eq!(
            jb.handle_packet(t0 + ms(60), other, 40000),
            Insert::Restarted
        );
        assert_eq!(jb.len(), 1);
        assert_eq!(jb.poll(t0 + ms(119)), None);
        assert_eq!(
            jb.poll(t0 + ms(120)),
            Some(Playout::Frame {
                seq: 40000,
                timestamp: 7,
                payload: 40000
            })
        );
        assert_eq!(jb.stats().restarts, 2);
    }

    #[test]
    fn large_jump_needs_confirmation() {
        // RFC 3550 §A.1: one stray packet far off is dropped; two in a row
        // restart the stream there.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.handle_packet(t0, meta(10), 10);
        assert_eq!(
            jb.handle_packet(t0 + ms(20), meta(5000), 5000),
            Insert::Jump
        );
        assert_eq!(
            jb.handle_packet(t0 + ms(21), meta(11), 11),
            Insert::Accepted
        );
        assert_eq!(
            jb.handle_packet(t0 + ms(40), meta(9000), 9000),
            Insert::Jump
        );
        assert_eq!(
            jb.handle_packet(t0 + ms(60), meta(9001), 9001),
            Insert::Restarted
        );
        assert_eq!(jb.len(), 1);
        assert_eq!(jb.stats().jumps, 2);
    }

    #[test]
    fn bounded_and_overflow_drops_oldest() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig {
            capacity: 8,
            ..JitterConfig::default()
        });
        for i in 0..20u16 {
            jb.handle_packet(t0, meta(i), i);
        }
        assert_eq!(jb.len(), 8);
        assert_eq!(jb.stats().overflow, 12);
        assert_eq!(
            jb.poll(t0 + ms(60)),
            Some(Playout::Frame {
                seq: 12,
                timestamp: 12 * 160,
                payload: 12
            })
        );
    }

    #[test]
    fn persistent_late_arrival_resyncs() {
        // The path's delay steps up by 200 ms: after 200 ms of late packets
        // playout restarts on them instead of dropping them all.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut arrivals = steady(0, 10, 0);
        arrivals.extend(steady(10, 40, 400));
        let out = run(&mut jb, t0, &arrivals, 1400);
        let tail: Vec<u16> = out.iter().flatten().copied().rev().take(20).collect();
        assert_eq!(tail, (30..50).rev().collect::<Vec<u16>>());
        assert!(jb.stats().restarts >= 2);
    }

    #[test]
    fn long_silence_goes_idle() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let out = run(&mut jb, t0, &steady(0, 2, 0), 2000);
        // Two frames, then a second of Missing, then nothing.
        assert_eq!(out.len(), 2 + 50);
        assert_eq!(jb.poll_timeout(), None);
    }

    proptest::proptest! {
        /// Any arrival pattern keeps the buffer within its bounds, and the
        /// counters add up.
        #[test]
        fn any_arrivals_stay_bounded(
            packets in proptest::collection::vec(
                (0u32..3, 0u16..=65535, 0u32..=u32::MAX, proptest::bool::ANY, 0u64..60),
                0..200,
            )
        ) {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let mut now = t0;
            for &(ssrc, seq, timestamp, marker, step) in &packets {
                now += ms(step);
                jb.handle_packet(now, RtpMeta { ssrc, seq, timestamp, marker }, seq);
                proptest::prop_assert!(jb.len() <= jb.capacity());
                let mut n = 0;
                while jb.poll(now).is_some() {
                    n += 1;
                    proptest::prop_assert!(n < 10_000);
                }
            }
            let s = jb.stats();
            proptest::prop_assert!(s.played <= s.received);
        }
    }
}
