//! The recording's jitter buffer (DESIGN §4): RTP audio placed on a
//! recording's timeline by its timestamp, held for a fixed delay, and
//! handed over in chunks of G.711 codes for the recorder to decode.
//!
//! Sans-IO: the caller says where the timeline's head is (samples since
//! the recording began, by its clock) with every packet and every take.
//!
//! A stream is anchored by its first packet: that packet sits at the head,
//! and every later packet of the same SSRC (RFC 3550 §8) at the anchor plus
//! its timestamp distance, modulo 2^32 (RFC 3550 §5.1). So reordering,
//! loss (left as silence), duplicates (written twice in the same place)
//! and a sender's silence between talk spurts (RFC 3551 §4.1: the
//! timestamp moves on by the time it was silent) all land where they
//! belong, without sequence-number bookkeeping. A packet whose place was
//! already handed over is late; one whose place is more than [`AHEAD`]
//! beyond the head is a jump. Either, twice in a row, re-anchors the
//! stream at the head (the path's delay grew, the sender's clock drifted
//! or its timestamps jumped); a single stray packet is dropped, as RFC
//! 3550 §A.1 keeps a jump on probation until the next packet confirms it.
//!
//! Placing a packet is one copy of its codes into a ring allocated once;
//! nothing is decoded and nothing allocates until a chunk is taken.

use crate::media::g711;
use crate::media::sdp::Codec;

/// Samples in a chunk handed to the recorder: 400 ms at 8 kHz.
pub const CHUNK: u64 = 3200;

/// How long audio waits past its place before its chunk is handed over
/// (60 ms): the lateness the buffer absorbs.
pub const DELAY: u64 = 480;

/// How far beyond the head a packet may sit (200 ms) before it is a jump.
pub const AHEAD: u64 = 1600;

/// Longest payload placed (160 ms); the rest of a longer one is dropped.
pub const MAX_PACKET: usize = 1280;

/// Samples the ring holds: a chunk, its delay, the lead a packet may have
/// and the longest packet, with room for ticks running late.
const RING: usize = 8192;
const MASK: u64 = RING as u64 - 1;

/// What became of a placed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Written at its place on the stream's anchor.
    Placed,
    /// Began a new anchor at the head: the first packet, a new SSRC, or
    /// the second stray in a row.
    Anchored,
    /// Its place was already handed over: dropped.
    Late,
    /// Too far ahead of the head: dropped unless the next one is too.
    Jump,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// Packets written (anchoring ones included).
    pub placed: u64,
    /// Anchors begun.
    pub anchors: u64,
    /// Dropped: their place was handed over.
    pub late: u64,
    /// Dropped: too far ahead.
    pub jumps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    /// Where `timestamp` sits on the timeline.
    at: u64,
}

/// One direction of a recording (what a leg heard, or what it sent) as
/// G.711 codes of one codec on the recording's timeline.
#[derive(Debug)]
pub struct Timeline {
    codec: Codec,
    ring: Box<[u8]>,
    anchor: Option<Anchor>,
    /// Samples handed over: the ring holds `[taken, taken + RING)`.
    taken: u64,
    /// End of the furthest audio placed.
    end: u64,
    /// The last packet was dropped as late or a jump.
    stray: bool,
    stats: TimelineStats,
}

/// The code that decodes to (next to) nothing.
const fn silence(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xFF,
        Codec::Pcma => 0xD5,
    }
}

impl Timeline {
    /// An empty timeline (all silence) holding `codec` codes.
    pub fn new(codec: Codec) -> Timeline {
        Timeline {
            codec,
            ring: vec![silence(codec); RING].into_boxed_slice(),
            anchor: None,
            taken: 0,
            end: 0,
            stray: false,
            stats: TimelineStats::default(),
        }
    }

    /// The codec of the codes held and taken.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Samples handed over so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// End of the furthest audio placed.
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn stats(&self) -> TimelineStats {
        self.stats
    }

    /// One packet's audio (`codes` of `codec`, converted to this
    /// timeline's codec if it differs) with the head at `head`. An empty
    /// payload places nothing and changes nothing.
    pub fn place(
        &mut self,
        head: u64,
        ssrc: u32,
        timestamp: u32,
        codec: Codec,
        codes: &[u8],
    ) -> Placed {
        let codes = &codes[..codes.len().min(MAX_PACKET)];
        if codes.is_empty() {
            return Placed::Placed;
        }
        let (at, placed) = match self.anchor {
            Some(a) if a.ssrc == ssrc => {
                let distance = i64::from(timestamp.wrapping_sub(a.timestamp) as i32);
                let at = a.at as i64 + distance;
                let late = at + codes.len() as i64 <= self.taken as i64;
                let ahead = at > (head + AHEAD) as i64;
                if !late && !ahead {
                    (at, Placed::Placed)
                } else if !self.stray {
                    self.stray = true;
                    if late {
                        self.stats.late += 1;
                        return Placed::Late;
                    }
                    self.stats.jumps += 1;
                    return Placed::Jump;
                } else {
                    (self.anchor_at(head, ssrc, timestamp), Placed::Anchored)
                }
            }
            _ => (self.anchor_at(head, ssrc, timestamp), Placed::Anchored),
        };
        self.stray = false;
        self.stats.placed += 1;
        self.write(at, codec, codes);
        placed
    }

    /// Hands over `[taken, to)` (at most a ring's worth) onto `out`; the
    /// ring's part of it is silence again.
    pub fn take(&mut self, to: u64, out: &mut Vec<u8>) {
        let to = to.clamp(self.taken, self.taken + RING as u64);
        let mut from = self.taken;
        while from < to {
            let i = (from & MASK) as usize;
            let n = ((to - from) as usize).min(RING - i);
            let part = &mut self.ring[i..i + n];
            out.extend_from_slice(part);
            part.fill(silence(self.codec));
            from += n as u64;
        }
        self.taken = to;
    }

    /// Anchors `ssrc` with `timestamp` at the head (never before what was
    /// handed over); returns where that is.
    fn anchor_at(&mut self, head: u64, ssrc: u32, timestamp: u32) -> i64 {
        let at = head.max(self.taken);
        self.anchor = Some(Anchor {
            ssrc,
            timestamp,
            at,
        });
        self.stats.anchors += 1;
        at as i64
    }

    /// Writes `codes` from `at` on, clipped to what the ring holds.
    fn write(&mut self, at: i64, codec: Codec, codes: &[u8]) {
        let start = at.max(self.taken as i64);
        let stop = (at + codes.len() as i64).min((self.taken + RING as u64) as i64);
        if start >= stop {
            return;
        }
        let mut src = &codes[(start - at) as usize..(stop - at) as usize];
        let mut pos = start as u64;
        while !src.is_empty() {
            let i = (pos & MASK) as usize;
            let n = src.len().min(RING - i);
            convert(codec, self.codec, &src[..n], &mut self.ring[i..i + n]);
            src = &src[n..];
            pos += n as u64;
        }
        self.end = self.end.max(stop as u64);
    }
}

/// Copies `from` codes of `codec` into `to` as codes of `into`.
fn convert(codec: Codec, into: Codec, from: &[u8], to: &mut [u8]) {
    match (codec, into) {
        (Codec::Pcmu, Codec::Pcma) => {
            for (t, &f) in to.iter_mut().zip(from) {
                *t = g711::ulaw_to_alaw(f);
            }
        }
        (Codec::Pcma, Codec::Pcmu) => {
            for (t, &f) in to.iter_mut().zip(from) {
                *t = g711::alaw_to_ulaw(f);
            }
        }
        _ => to.copy_from_slice(from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;
    const FRAME: u64 = 160;

    /// A 20 ms frame whose every code is `n` (μ-law), so where each
    /// frame landed can be read back.
    fn frame(n: u8) -> [u8; 160] {
        [n; 160]
    }

    /// The frame values of `codes` (one per 160 samples; 0xFF is silence),
    /// checking each frame is uniform.
    fn frames(codes: &[u8]) -> Vec<u8> {
        codes
            .chunks(160)
            .map(|f| {
                assert!(f.iter().all(|&c| c == f[0]), "a frame was split: {f:?}");
                f[0]
            })
            .collect()
    }

    /// Takes everything up to `to`.
    fn take(t: &mut Timeline, to: u64) -> Vec<u8> {
        let mut out = Vec::new();
        t.take(to, &mut out);
        out
    }

    /// Packet `k` of a stream starting at timestamp `ts0`, frame value `k + 1`.
    fn send(t: &mut Timeline, head: u64, ts0: u32, k: u32) -> Placed {
        t.place(
            head,
            SSRC,
            ts0.wrapping_add(160 * k),
            Codec::Pcmu,
            &frame(k as u8 + 1),
        )
    }

    #[test]
    fn packets_land_by_timestamp_from_the_first_at_the_head() {
        let mut t = Timeline::new(Codec::Pcmu);
        // The stream starts 2 frames into the recording.
        assert_eq!(send(&mut t, 2 * FRAME, 9_000, 0), Placed::Anchored);
        for k in 1..5 {
            assert_eq!(
                send(&mut t, (2 + u64::from(k)) * FRAME, 9_000, k),
                Placed::Placed
            );
        }
        assert_eq!(t.end(), 7 * FRAME);
        assert_eq!(
            frames(&take(&mut t, 8 * FRAME)),
            [0xFF, 0xFF, 1, 2, 3, 4, 5, 0xFF]
        );
        assert_eq!(t.taken(), 8 * FRAME);
    }

    #[test]
    fn reordered_lost_and_duplicated_packets_rfc3550_a1() {
        let mut t = Timeline::new(Codec::Pcmu);
        let order = [0, 2, 1, 1, 4, 5, 5];
        for (i, &k) in order.iter().enumerate() {
            send(&mut t, i as u64 * FRAME, 500, k);
        }
        // Frame 3 never came: silence in its place.
        assert_eq!(frames(&take(&mut t, 6 * FRAME)), [1, 2, 3, 0xFF, 5, 6]);
        assert_eq!(t.stats().placed, 7);
    }

    #[test]
    fn a_talk_spurt_after_silence_keeps_its_distance_rfc3551_4_1() {
        let mut t = Timeline::new(Codec::Pcmu);
        send(&mut t, 0, 0, 0);
        send(&mut t, FRAME, 0, 1);
        // The sender was silent for 3 frames: its timestamp moved on.
        assert_eq!(send(&mut t, 5 * FRAME, 0, 5), Placed::Placed);
        assert_eq!(
            frames(&take(&mut t, 6 * FRAME)),
            [1, 2, 0xFF, 0xFF, 0xFF, 6]
        );
    }

    #[test]
    fn timestamps_wrap_at_2_pow_32_rfc3550_5_1() {
        let mut t = Timeline::new(Codec::Pcmu);
        let ts0 = u32::MAX - 200;
        for k in 0..4 {
            assert_ne!(send(&mut t, u64::from(k) * FRAME, ts0, k), Placed::Late);
        }
        assert_eq!(frames(&take(&mut t, 4 * FRAME)), [1, 2, 3, 4]);
    }

    #[test]
    fn a_new_ssrc_is_anchored_afresh_rfc3550_8() {
        let mut t = Timeline::new(Codec::Pcmu);
        send(&mut t, 0, 0, 0);
        send(&mut t, FRAME, 0, 1);
        // Another source with unrelated timestamps starts at the head.
        let p = t.place(3 * FRAME, 0xBEEF, 77, Codec::Pcmu, &frame(9));
        assert_eq!(p, Placed::Anchored);
        assert_eq!(frames(&take(&mut t, 4 * FRAME)), [1, 2, 0xFF, 9]);
        assert_eq!(t.stats().anchors, 2);
    }

    #[test]
    fn a_late_packet_is_dropped_once_its_place_was_handed_over() {
        let mut t = Timeline::new(Codec::Pcmu);
        send(&mut t, 0, 0, 0);
        send(&mut t, 2 * FRAME, 0, 2);
        assert_eq!(frames(&take(&mut t, 3 * FRAME)), [1, 0xFF, 3]);
        // Frame 1 comes after its chunk left: late, and nothing moves.
        assert_eq!(send(&mut t, 3 * FRAME, 0, 1), Placed::Late);
        assert_eq!(send(&mut t, 3 * FRAME, 0, 3), Placed::Placed);
        assert_eq!(frames(&take(&mut t, 4 * FRAME)), [4]);
        assert_eq!(t.stats().late, 1);
    }

    #[test]
    fn a_packet_straddling_what_was_taken_keeps_its_newer_part() {
        let mut t = Timeline::new(Codec::Pcmu);
        send(&mut t, 0, 0, 0);
        let mut out = Vec::new();
        t.take(FRAME + 80, &mut out);
        assert_eq!(send(&mut t, 2 * FRAME, 0, 1), Placed::Placed);
        out.clear();
        t.take(2 * FRAME, &mut out);
        assert_eq!(out, [2u8; 80]);
    }

    #[test]
    fn a_single_jump_is_dropped_and_a_confirmed_one_reanchors() {
        let mut t = Timeline::new(Codec::Pcmu);
        send(&mut t, 0, 0, 0);
        send(&mut t, FRAME, 0, 1);
        // One packet with a wild timestamp: a stray, dropped.
        assert_eq!(
            t.place(2 * FRAME, SSRC, 3_000_000, Codec::Pcmu, &frame(7)),
            Placed::Jump
        );
        assert_eq!(send(&mut t, 2 * FRAME, 0, 2), Placed::Placed);
        // Two in a row: the sender really jumped; the second is at the head.
        assert_eq!(
            t.place(3 * FRAME, SSRC, 3_000_000, Codec::Pcmu, &frame(7)),
            Placed::Jump
        );
        assert_eq!(
            t.place(4 * FRAME, SSRC, 3_000_160, Codec::Pcmu, &frame(8)),
            Placed::Anchored
        );
        assert_eq!(
            t.place(5 * FRAME, SSRC, 3_000_320, Codec::Pcmu, &frame(9)),
            Placed::Placed
        );
        assert_eq!(frames(&take(&mut t, 6 * FRAME)), [1, 2, 3, 0xFF, 8, 9]);
        assert_eq!(t.stats().jumps, 2);
    }

    #[test]
    fn a_path_that_grew_slower_reanchors_after_two_late_packets() {
        let mut t = Timeline::new(Codec::Pcmu);
        send(&mut t, 0, 0, 0);
        take(&mut t, 10 * FRAME);
        // The stream comes back 10 frames later than its timestamps say.
        assert_eq!(send(&mut t, 11 * FRAME, 0, 1), Placed::Late);
        assert_eq!(send(&mut t, 12 * FRAME, 0, 2), Placed::Anchored);
        assert_eq!(send(&mut t, 13 * FRAME, 0, 3), Placed::Placed);
        assert_eq!(frames(&take(&mut t, 14 * FRAME)), [0xFF, 0xFF, 3, 4]);
    }

    #[test]
    fn other_codec_audio_is_converted_to_the_timelines() {
        let mut t = Timeline::new(Codec::Pcma);
        let ulaw = [g711::ulaw_encode(1000); 160];
        t.place(0, SSRC, 0, Codec::Pcmu, &ulaw);
        let out = take(&mut t, 2 * FRAME);
        assert!(out[..160].iter().all(|&c| c == g711::ulaw_to_alaw(ulaw[0])));
        // Silence is A-law's.
        assert!(out[160..].iter().all(|&c| c == 0xD5));
        assert!(g711::alaw_decode(0xD5).abs() <= 8);
    }

    #[test]
    fn the_ring_wraps_and_is_silent_again_after_a_take() {
        let mut t = Timeline::new(Codec::Pcmu);
        let mut out = Vec::new();
        // Far enough to wrap the ring a few times, taking a chunk as the
        // recording would (the head a chunk and the delay past its end).
        let mut k = 0u32;
        let mut head = 0u64;
        let mut taken = Vec::new();
        while head < 4 * RING as u64 {
            send(&mut t, head, 1, k);
            k += 1;
            head += FRAME;
            if head >= t.taken() + CHUNK + DELAY {
                let to = t.taken() + CHUNK;
                t.take(to, &mut out);
                taken.extend_from_slice(&out);
                out.clear();
            }
        }
        let got = frames(&taken);
        let want: Vec<u8> = (0..got.len()).map(|k| k as u8 + 1).collect();
        assert_eq!(got, want);
        // A later take over places never written is silence.
        let mut t2 = Timeline::new(Codec::Pcmu);
        t2.take(RING as u64 - 80, &mut out);
        out.clear();
        t2.place(RING as u64 - 80, SSRC, 0, Codec::Pcmu, &frame(4));
        t2.take(RING as u64 + 80, &mut out);
        assert_eq!(out, [4u8; 160]);
        out.clear();
        t2.take(2 * RING as u64 + 80, &mut out);
        assert!(out.iter().all(|&c| c == 0xFF));
    }

    #[test]
    fn an_oversized_packet_is_cut_and_a_take_is_at_most_a_ring() {
        let mut t = Timeline::new(Codec::Pcmu);
        t.place(0, SSRC, 0, Codec::Pcmu, &vec![3u8; 4 * MAX_PACKET]);
        assert_eq!(t.end(), MAX_PACKET as u64);
        let mut out = Vec::new();
        t.take(10 * RING as u64, &mut out);
        assert_eq!(out.len(), RING);
        assert_eq!(t.taken(), RING as u64);
        // An empty payload is no stray and no anchor.
        assert_eq!(t.place(5, 0xAA, 0, Codec::Pcmu, &[]), Placed::Placed);
        assert_eq!(t.stats().anchors, 1);
        // An anchor never lands before what was handed over.
        assert_eq!(
            t.place(5, 0xAA, 0, Codec::Pcmu, &frame(1)),
            Placed::Anchored
        );
        assert_eq!(t.end(), RING as u64 + 160);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Takes the chunks due at `head`, as a recording does.
        fn take_due(t: &mut Timeline, head: u64, out: &mut Vec<u8>) {
            while head >= t.taken() + CHUNK + DELAY {
                let to = t.taken() + CHUNK;
                t.take(to, out);
            }
        }

        proptest! {
            /// Whatever arrives (any SSRC, timestamp, length or codec, the
            /// head moving on by any amount): no panic, and what is taken
            /// is exactly as long as the timeline says.
            #[test]
            fn any_packets_never_panic_and_takes_add_up(
                packets in proptest::collection::vec(
                    (0u64..4000, 0u32..3, any::<u32>(), 0usize..3000, any::<bool>()),
                    0..200,
                ),
            ) {
                let mut t = Timeline::new(Codec::Pcmu);
                let mut head = 0u64;
                let mut out = Vec::new();
                for (advance, ssrc, ts, len, alaw) in packets {
                    head += advance;
                    let codec = if alaw { Codec::Pcma } else { Codec::Pcmu };
                    t.place(head, ssrc, ts, codec, &vec![0x42; len]);
                    take_due(&mut t, head, &mut out);
                    prop_assert!(t.end() <= t.taken() + RING as u64);
                }
                t.take(head, &mut out);
                prop_assert_eq!(out.len() as u64, t.taken());
            }

            /// A stream whose packets each arrive up to 50 ms late (so in
            /// any order the delay allows) is recorded whole: every frame
            /// at its timestamp's distance from the first to arrive.
            #[test]
            fn a_jittered_stream_is_recorded_whole_and_in_order(
                lateness in proptest::collection::vec(0u64..400, 1..120),
                ts0 in any::<u32>(),
            ) {
                let mut arrivals: Vec<(u64, usize)> = lateness
                    .iter()
                    .enumerate()
                    .map(|(k, &late)| (k as u64 * 160 + late, k))
                    .collect();
                arrivals.sort();
                let (first_at, first_k) = arrivals[0];
                let offset = first_at - first_k as u64 * 160;
                let mut t = Timeline::new(Codec::Pcmu);
                let mut out = Vec::new();
                for &(head, k) in &arrivals {
                    let ts = ts0.wrapping_add(160 * k as u32);
                    let placed = t.place(head, 7, ts, Codec::Pcmu, &[k as u8; 160]);
                    prop_assert!(matches!(placed, Placed::Placed | Placed::Anchored), "{placed:?}");
                    take_due(&mut t, head, &mut out);
                }
                let end = offset + lateness.len() as u64 * 160;
                t.take(end, &mut out);
                prop_assert!(out[..offset as usize].iter().all(|&c| c == 0xFF));
                for (k, frame) in out[offset as usize..].chunks(160).enumerate() {
                    prop_assert!(frame.iter().all(|&c| c == k as u8), "frame {}", k);
                }
                prop_assert_eq!(t.stats().anchors, 1);
            }
        }
    }
}
