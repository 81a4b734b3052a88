//! In-band DTMF detection (Goertzel) for callers whose gateway sends key
//! presses as audio (DESIGN §4).
//!
//! The eight DTMF frequencies (ITU-T Q.23) are measured with the Goertzel
//! algorithm over fixed blocks of 8 kHz samples. A block counts as a key
//! only if it passes the checks a real receiver needs (ITU-T Q.24):
//! enough level in one row and one column tone, each clearly above the
//! other tones of its group, twist within limits, and the two tones
//! holding most of the block's energy (speech and music spread theirs).
//! A key must hold for `min_on` and keys are separated by `min_off`, so
//! each press is reported exactly once.

use std::f32::consts::PI;
use std::time::{Duration, Instant};

use super::{Digit, EventQueue};

/// The only sample rate the detector handles (G.711 audio).
pub const SAMPLE_RATE: u32 = 8000;

const SAMPLE_PERIOD: Duration = Duration::from_micros(125);

/// Row (low group) and column (high group) frequencies, ITU-T Q.23.
const FREQS: [f32; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];

/// Keys by row, then column.
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711: a full
/// scale sine is +3.17 dBm0).
const ZERO_DBM0_PEAK: f32 = 22_647.0;

/// Smallest and largest accepted block sizes (samples).
const BLOCK_SIZES: std::ops::RangeInclusive<usize> = 64..=800;

/// Settings of [`ToneDetector`]; the defaults follow ITU-T Q.24 practice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneDetectorConfig {
    /// Samples per Goertzel block. 102 (12.75 ms) resolves neighbouring rows
    /// (73 Hz apart) by over 20 dB and times presses finely.
    pub block_size: usize,
    /// Weakest tone accepted, per frequency, in dBm0.
    pub min_level_dbm0: f32,
    /// Most the low (row) tone may exceed the high (column) tone, in dB
    /// ("normal" twist: lines lose more at high frequencies).
    pub max_normal_twist_db: f32,
    /// Most the high tone may exceed the low tone, in dB (reverse twist).
    pub max_reverse_twist_db: f32,
    /// How far the strongest row (column) tone must stand above every other
    /// row (column) tone, in dB.
    pub min_relative_peak_db: f32,
    /// Smallest share of the block's energy the two tones must hold (0–1).
    pub min_tone_to_total: f32,
    /// Tones at least this long are always detected.
    pub min_on: Duration,
    /// Gaps at least this long always separate two presses of one key.
    pub min_off: Duration,
}

impl Default for ToneDetectorConfig {
    fn default() -> Self {
        ToneDetectorConfig {
            block_size: 102,
            min_level_dbm0: -30.0,
            max_normal_twist_db: 8.0,
            max_reverse_twist_db: 4.0,
            min_relative_peak_db: 8.0,
            min_tone_to_total: 0.6,
            min_on: Duration::from_millis(40),
            min_off: Duration::from_millis(40),
        }
    }
}

/// A key press heard in the audio, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToneEvent {
    pub digit: Digit,
    /// When the first block holding the tone began.
    pub start: Instant,
}

/// Sans-IO in-band DTMF detector: feed 8 kHz frames of any length with
/// [`handle_frame`](Self::handle_frame), drain
/// [`poll_event`](Self::poll_event). No allocation per frame.
#[derive(Debug, Clone)]
pub struct ToneDetector {
    coeffs: [f32; 8],
    s1: [f32; 8],
    s2: [f32; 8],
    energy: f32,
    filled: usize,
    block_start: Option<Instant>,

    block_size: usize,
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    min_tone_to_total: f32,
    on_blocks: u32,
    off_blocks: u32,

    /// The key being held (already reported).
    pressed: Option<Digit>,
    /// Blocks in a row without the held key.
    off_run: u32,
    /// A key seen in consecutive blocks but not yet long enough: key,
    /// blocks, start of its first block.
    candidate: Option<(Digit, u32, Instant)>,
    events: EventQueue<ToneEvent, 8>,
    overflowed: u64,
}

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

impl ToneDetector {
    pub fn new(config: ToneDetectorConfig) -> ToneDetector {
        let n = config
            .block_size
            .clamp(*BLOCK_SIZES.start(), *BLOCK_SIZES.end());
        let coeffs = FREQS.map(|f| 2.0 * (2.0 * PI * f / SAMPLE_RATE as f32).cos());
        // A sine of amplitude A gives a Goertzel power of (A * N / 2)^2.
        let min_amp = ZERO_DBM0_PEAK * 10f32.powf(config.min_level_dbm0 / 20.0);
        let half_n = n as f32 / 2.0;
        let samples = |d: Duration| {
            usize::try_from(d.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000)
                .unwrap_or(usize::MAX)
        };
        // A tone of min_on always covers this many whole blocks.
        let on_blocks = samples(config.min_on).saturating_sub(n - 1) / n;
        // A gap of min_off covers as many whole blocks, and its two edge
        // blocks hold too little tone to pass, which adds at least one more.
        let off_blocks = samples(config.min_off).saturating_sub(n - 1) / n + 1;
        ToneDetector {
            coeffs,
            s1: [0.0; 8],
            s2: [0.0; 8],
            energy: 0.0,
            filled: 0,
            block_start: None,
            block_size: n,
            min_power: (min_amp * half_n) * (min_amp * half_n),
            normal_twist: db_to_power_ratio(config.max_normal_twist_db),
            reverse_twist: db_to_power_ratio(config.max_reverse_twist_db),
            relative_peak: db_to_power_ratio(config.min_relative_peak_db),
            min_tone_to_total: config.min_tone_to_total,
            on_blocks: u32::try_from(on_blocks.max(1)).unwrap_or(u32::MAX),
            off_blocks: u32::try_from(off_blocks).unwrap_or(u32::MAX),
            pressed: None,
            off_run: 0,
            candidate: None,
            events: EventQueue::new(),
            overflowed: 0,
        }
    }

    /// Forgets all state (e.g. after a gap in the audio).
    pub fn reset(&mut self) {
        self.clear_block();
        self.pressed = None;
        self.off_run = 0;
        self.candidate = None;
        self.events.clear();
    }

    /// The key currently held, if one has been reported and not released.
    pub fn pressed(&self) -> Option<Digit> {
        self.pressed
    }

    /// Events lost because [`poll_event`](Self::poll_event) was not called.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Feeds one frame of 8 kHz samples; `now` is the time of its first
    /// sample. Frames of any length are fine; blocks run across them.
    pub fn handle_frame(&mut self, now: Instant, samples: &[i16]) {
        let mut rest = samples;
        let mut offset = 0u32;
        while !rest.is_empty() {
            if self.filled == 0 {
                self.block_start = Some(now + SAMPLE_PERIOD * offset);
            }
            let take = (self.block_size - self.filled).min(rest.len());
            let (chunk, tail) = rest.split_at(take);
            self.accumulate(chunk);
            self.filled += take;
            offset = offset.saturating_add(u32::try_from(take).unwrap_or(u32::MAX));
            rest = tail;
            if self.filled == self.block_size {
                let start = self.block_start.unwrap_or(now);
                let hit = self.classify();
                self.clear_block();
                self.debounce(hit, start);
            }
        }
    }

    /// The next detected key press, oldest first.
    pub fn poll_event(&mut self) -> Option<ToneEvent> {
        self.events.pop()
    }

    /// The Goertzel recurrence for all eight frequencies, plus the block's
    /// total energy.
    #[inline]
    fn accumulate(&mut self, chunk: &[i16]) {
        let coeffs = self.coeffs;
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        let mut energy = self.energy;
        for &sample in chunk {
            let x = f32::from(sample);
            energy += x * x;
            for k in 0..8 {
                let s0 = x + coeffs[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy = energy;
    }

    fn clear_block(&mut self) {
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.filled = 0;
        self.block_start = None;
    }

    /// The key the finished block holds, if it passes every check.
    fn classify(&self) -> Option<Digit> {
        let mut power = [0f32; 8];
        for (k, p) in power.iter_mut().enumerate() {
            let (s1, s2) = (self.s1[k], self.s2[k]);
            *p = s1 * s1 + s2 * s2 - self.coeffs[k] * s1 * s2;
        }
        let (rows, cols) = power.split_at(4);
        let row = strongest(rows)?;
        let col = strongest(cols)?;
        let (row_p, col_p) = (rows[row], cols[col]);

        if row_p < self.min_power || col_p < self.min_power {
            return None;
        }
        // Twist: low group up to 8 dB over high (normal), high up to 4 dB
        // over low (reverse).
        if row_p > col_p * self.normal_twist || col_p > row_p * self.reverse_twist {
            return None;
        }
        // One tone per group, clearly above its neighbours.
        let clear = |group: &[f32], best: usize| {
            group
                .iter()
                .enumerate()
                .all(|(i, &p)| i == best || p * self.relative_peak <= group[best])
        };
        if !clear(rows, row) || !clear(cols, col) {
            return None;
        }
        // Tone energy against total: 2(P_row + P_col) / (N * E) is 1 for a
        // clean tone pair.
        let n = self.block_size as f32;
        if 2.0 * (row_p + col_p) < self.min_tone_to_total * n * self.energy {
            return None;
        }
        KEYPAD
            .get(row)
            .and_then(|r| r.get(col))
            .and_then(|&c| Digit::from_char(c))
    }

    /// Turns per-block hits into one event per press.
    fn debounce(&mut self, hit: Option<Digit>, block_start: Instant) {
        if self.pressed.is_some() {
            if hit == self.pressed {
                self.off_run = 0;
                self.candidate = None;
                return;
            }
            self.off_run += 1;
            if self.off_run >= self.off_blocks {
                self.pressed = None;
                self.off_run = 0;
            }
        }
        let Some(digit) = hit else {
            self.candidate = None;
            return;
        };
        let (blocks, start) = match self.candidate {
            Some((d, blocks, start)) if d == digit => (blocks + 1, start),
            _ => (1, block_start),
        };
        if blocks >= self.on_blocks && self.pressed != Some(digit) {
            // A key held long enough, after a gap or a different key.
            self.pressed = Some(digit);
            self.off_run = 0;
            self.candidate = None;
            if !self.events.push(ToneEvent { digit, start }) {
                self.overflowed += 1;
            }
        } else {
            self.candidate = Some((digit, blocks, start));
        }
    }
}

/// Index of the largest value.
fn strongest(group: &[f32]) -> Option<usize> {
    group
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f32 = SAMPLE_RATE as f32;

    /// Deterministic noise (xorshift), uniform in [-1, 1).
    struct Noise(u32);

    impl Noise {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            (self.0 as f32 / u32::MAX as f32) * 2.0 - 1.0
        }
    }

    fn amp(dbm0: f32) -> f32 {
        ZERO_DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
    }

    fn freqs(digit: char) -> (f32, f32) {
        for (r, row) in KEYPAD.iter().enumerate() {
            for (c, &k) in row.iter().enumerate() {
                if k == digit {
                    return (FREQS[r], FREQS[4 + c]);
                }
            }
        }
        panic!("not a key: {digit}");
    }

    /// A signal under construction, as f32 samples.
    #[derive(Default)]
    struct Signal(Vec<f32>);

    impl Signal {
        fn silence(mut self, ms: u32) -> Self {
            self.0.extend(std::iter::repeat_n(0.0, (ms * 8) as usize));
            self
        }

        /// A key: low tone at `low_dbm0`, high tone at `high_dbm0`.
        fn tone_levels(mut self, digit: char, ms: u32, low_dbm0: f32, high_dbm0: f32) -> Self {
            let (fl, fh) = freqs(digit);
            let (al, ah) = (amp(low_dbm0), amp(high_dbm0));
            for i in 0..ms * 8 {
                let t = i as f32 / RATE;
                self.0
                    .push(al * (2.0 * PI * fl * t).sin() + ah * (2.0 * PI * fh * t).sin());
            }
            self
        }

        fn tone(self, digit: char, ms: u32) -> Self {
            self.tone_levels(digit, ms, -10.0, -8.0)
        }

        fn noise(mut self, dbm0: f32, seed: u32) -> Self {
            let mut n = Noise(seed);
            // Uniform noise of peak a has RMS a/sqrt(3); a sine's is a/sqrt(2).
            let a = amp(dbm0) * (3.0f32 / 2.0).sqrt();
            for s in &mut self.0 {
                *s += a * n.next();
            }
            self
        }

        fn pcm(&self) -> Vec<i16> {
            self.0
                .iter()
                .map(|&s| s.clamp(-32768.0, 32767.0) as i16)
                .collect()
        }
    }

    /// Runs the detector over `pcm` in 20 ms frames; the digits and their
    /// start offsets in ms.
    fn detect_with(config: ToneDetectorConfig, pcm: &[i16]) -> Vec<(char, u64)> {
        let t0 = Instant::now();
        let mut det = ToneDetector::new(config);
        let mut out = Vec::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            det.handle_frame(t0 + Duration::from_millis(20 * i as u64), frame);
            while let Some(ev) = det.poll_event() {
                out.push((ev.digit.as_char(), (ev.start - t0).as_millis() as u64));
            }
        }
        out
    }

    fn detect(pcm: &[i16]) -> String {
        detect_with(ToneDetectorConfig::default(), pcm)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    #[test]
    fn every_key_is_detected() {
        // Q.23: all 16 row/column pairs.
        for key in "0123456789*#ABCD".chars() {
            let pcm = Signal::default()
                .silence(30)
                .tone(key, 60)
                .silence(60)
                .pcm();
            assert_eq!(detect(&pcm), key.to_string(), "key {key}");
        }
    }

    #[test]
    fn sequence_with_gaps_and_start_times() {
        let pcm = Signal::default()
            .silence(50)
            .tone('1', 80)
            .silence(60)
            .tone('2', 80)
            .silence(60)
            .tone('3', 80)
            .silence(60)
            .tone('#', 80)
            .silence(60)
            .tone('0', 80)
            .silence(100)
            .pcm();
        let got = detect_with(ToneDetectorConfig::default(), &pcm);
        let keys: String = got.iter().map(|(c, _)| *c).collect();
        assert_eq!(keys, "123#0");
        // Each start lies within one block (12.75 ms) of the real onset.
        for ((_, start), onset) in got.iter().zip([50u64, 190, 330, 470, 610]) {
            assert!(
                *start >= onset.saturating_sub(13) && *start <= onset + 13,
                "{start} vs {onset}"
            );
        }
    }

    #[test]
    fn long_press_and_short_dropout_are_one_press() {
        // Q.24: an interruption of up to 10 ms does not split a press.
        let pcm = Signal::default()
            .tone('5', 400)
            .silence(10)
            .tone('5', 200)
            .silence(60)
            .pcm();
        assert_eq!(detect(&pcm), "5");
    }

    #[test]
    fn repeated_key_needs_a_pause() {
        // Two presses of the same key separated by 40 ms: two events, at
        // every alignment with the blocks.
        for lead in (0..13).step_by(3) {
            let pcm = Signal::default()
                .silence(lead)
                .tone('9', 60)
                .silence(40)
                .tone('9', 60)
                .silence(60)
                .pcm();
            assert_eq!(detect(&pcm), "99", "lead {lead} ms");
        }
    }

    #[test]
    fn minimum_duration_at_every_alignment() {
        // 40 ms tones are accepted, 15 ms blips are not, wherever the tone
        // falls against the block grid.
        for lead_samples in (0..102).step_by(7) {
            let mut s = Signal::default();
            s.0.extend(std::iter::repeat_n(0.0, lead_samples));
            let accepted = s.tone('8', 40).silence(80).pcm();
            assert_eq!(detect(&accepted), "8", "lead {lead_samples}");

            let mut s = Signal::default();
            s.0.extend(std::iter::repeat_n(0.0, lead_samples));
            let blip = s.tone('8', 15).silence(80).pcm();
            assert_eq!(detect(&blip), "", "lead {lead_samples}");
        }
    }

    #[test]
    fn twist_limits() {
        // Q.24: normal twist (low group stronger) up to 8 dB, reverse up to
        // 4 dB.
        let cases = [
            (-8.0, -14.0, "4"),  // normal 6 dB
            (-8.0, -18.0, ""),   // normal 10 dB
            (-14.0, -11.0, "4"), // reverse 3 dB
            (-14.0, -8.0, ""),   // reverse 6 dB
        ];
        for (low, high, want) in cases {
            let pcm = Signal::default()
                .tone_levels('4', 80, low, high)
                .silence(60)
                .pcm();
            assert_eq!(detect(&pcm), want, "low {low} high {high}");
        }
    }

    #[test]
    fn level_threshold() {
        let quiet = Signal::default()
            .tone_levels('6', 80, -36.0, -36.0)
            .silence(60)
            .pcm();
        assert_eq!(detect(&quiet), "");
        let ok = Signal::default()
            .tone_levels('6', 80, -25.0, -25.0)
            .silence(60)
            .pcm();
        assert_eq!(detect(&ok), "6");
    }

    #[test]
    fn tones_in_noise_are_detected() {
        // Tones at -10/-8 dBm0, noise at -25 dBm0 (about 15 dB SNR).
        let pcm = Signal::default()
            .tone('7', 80)
            .silence(60)
            .tone('*', 80)
            .silence(60)
            .noise(-25.0, 0x1234_5678)
            .pcm();
        assert_eq!(detect(&pcm), "7*");
    }

    #[test]
    fn noise_chirp_and_vowels_give_no_digits() {
        // Two seconds of loud white noise.
        let noise = Signal::default().silence(2000).noise(-10.0, 99).pcm();
        assert_eq!(detect(&noise), "");

        // A chirp sweeping 300-3400 Hz, passing every DTMF frequency.
        let chirp: Vec<i16> = (0..16000)
            .map(|i| {
                let t = i as f32 / RATE;
                let phase = 2.0 * PI * (300.0 * t + 0.5 * 1550.0 * t * t);
                (amp(-8.0) * phase.sin()) as i16
            })
            .collect();
        assert_eq!(detect(&chirp), "");

        // Vowel-like harmonic series whose harmonics fall near DTMF rows and
        // columns (f0 = 120 Hz: 720, 840, 960, 1200, 1320 Hz ...).
        for f0 in [100.0f32, 120.0, 140.0, 233.0] {
            let vowel: Vec<i16> = (0..16000)
                .map(|i| {
                    let t = i as f32 / RATE;
                    let s: f32 = (1..30)
                        .map(|h| {
                            let f = f0 * h as f32;
                            (2.0 * PI * f * t).sin() / (h as f32).sqrt()
                        })
                        .sum();
                    (amp(-20.0) * s).clamp(-32768.0, 32767.0) as i16
                })
                .collect();
            assert_eq!(detect(&vowel), "", "f0 {f0}");
        }
    }

    /// G.711 μ-law (ITU-T G.711), local to the test so it does not depend
    /// on the codec module.
    fn ulaw_encode(pcm: i16) -> u8 {
        const BIAS: i32 = 0x84;
        let mut x = i32::from(pcm);
        let sign = if x < 0 {
            x = -x;
            0x80
        } else {
            0
        };
        let x = (x.min(32635) + BIAS) as u32;
        let exponent = (31 - x.leading_zeros()).saturating_sub(7).min(7);
        let mantissa = (x >> (exponent + 3)) & 0x0f;
        !(sign | (exponent << 4) as u8 | mantissa as u8)
    }

    fn ulaw_decode(code: u8) -> i16 {
        let c = !code;
        let exponent = u32::from((c >> 4) & 0x07);
        let mantissa = i32::from(c & 0x0f);
        let x = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        if c & 0x80 != 0 { -x as i16 } else { x as i16 }
    }

    #[test]
    fn ulaw_helper_round_trips() {
        for x in [-32000i16, -1000, -10, 0, 10, 1000, 32000] {
            let y = ulaw_decode(ulaw_encode(x));
            assert!((i32::from(x) - i32::from(y)).abs() <= i32::from(x).abs() / 16 + 8);
        }
    }

    #[test]
    fn sequence_survives_ulaw_round_trip() {
        let pcm = Signal::default()
            .silence(40)
            .tone('1', 60)
            .silence(50)
            .tone('2', 60)
            .silence(50)
            .tone('3', 60)
            .silence(50)
            .tone('#', 60)
            .silence(50)
            .tone('0', 60)
            .silence(60)
            .noise(-40.0, 7)
            .pcm();
        let coded: Vec<i16> = pcm.iter().map(|&s| ulaw_decode(ulaw_encode(s))).collect();
        assert_eq!(detect(&coded), "123#0");
    }

    #[test]
    fn odd_frame_sizes_give_the_same_result() {
        let pcm = Signal::default()
            .tone('C', 60)
            .silence(50)
            .tone('D', 60)
            .silence(60)
            .pcm();
        let t0 = Instant::now();
        for size in [1usize, 7, 80, 160, 333] {
            let mut det = ToneDetector::new(ToneDetectorConfig::default());
            let mut got = String::new();
            let mut at = 0usize;
            for frame in pcm.chunks(size) {
                det.handle_frame(t0 + SAMPLE_PERIOD * at as u32, frame);
                at += frame.len();
                while let Some(ev) = det.poll_event() {
                    got.push(ev.digit.as_char());
                }
            }
            assert_eq!(got, "CD", "frame size {size}");
        }
    }
}
