//! Sample-rate conversion for prompts: a polyphase windowed-sinc low-pass
//! FIR (Kaiser window) evaluated at the source rate.
//!
//! Output sample `n` sits at input position `n * from / to`. Its value is
//! the input convolved with `h(t) = 2c·sinc(2ct)·kaiser(t)`, where `c` is
//! the cutoff in cycles per input sample, sampled at that position's
//! fractional phase. The phases are tabulated once per rate pair: exactly
//! when `to / gcd` is at most [`MAX_PHASES`] (every rate from 8 to 48 kHz
//! that is a multiple of 25 Hz), otherwise rounded to the nearest of
//! [`MAX_PHASES`] phases (timing error ≤ 1/2048 input sample, below -70 dB
//! for telephone-band audio).
//!
//! The cutoff is 0.4625 × the lower rate (3.7 kHz for 8 kHz output) and the
//! filter spans 32 zero crossings each side, so the transition band is
//! about 3.4–4.0 kHz and everything that would alias is ≥ 80 dB down.

/// Cutoff as a fraction of the lower of the two rates.
const CUTOFF: f64 = 0.4625;
/// Zero crossings of the sinc on each side of the centre.
const ZERO_CROSSINGS: f64 = 32.0;
/// Kaiser window shape: about 85 dB of stopband attenuation.
const KAISER_BETA: f64 = 8.6;
/// Most filter phases tabulated.
pub const MAX_PHASES: u64 = 1024;
/// Filter lengths are rounded up to this so the dot product vectorises.
const LANES: usize = 8;

/// A converter from one sample rate to another; build once per rate pair,
/// use for any number of signals.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples advanced per `out_step` output samples (`from / gcd`).
    in_step: u64,
    /// `to / gcd`.
    out_step: u64,
    /// Number of tabulated phases (≤ `out_step`).
    phases: u64,
    /// Taps per phase (a multiple of [`LANES`]).
    taps: usize,
    /// Input samples before the current one that the filter reaches.
    reach: usize,
    /// `phases × taps` coefficients, phase-major.
    bank: Vec<f32>,
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz. Rates of 0 are treated as 1.
    pub fn new(from: u32, to: u32) -> Resampler {
        let (from, to) = (u64::from(from.max(1)), u64::from(to.max(1)));
        let g = gcd(from, to);
        let (in_step, out_step) = (from / g, to / g);
        if in_step == out_step {
            return Resampler {
                in_step: 1,
                out_step: 1,
                phases: 1,
                taps: 0,
                reach: 0,
                bank: Vec::new(),
            };
        }
        let phases = out_step.min(MAX_PHASES);
        // Cutoff in cycles per input sample, and the half-length in input
        // samples that holds ZERO_CROSSINGS zero crossings.
        let cutoff = CUTOFF * from.min(to) as f64 / from as f64;
        let half = ZERO_CROSSINGS / (2.0 * cutoff);
        let reach = half.ceil() as usize;
        let taps = (2 * reach).div_ceil(LANES) * LANES;
        let mut bank = vec![0f32; phases as usize * taps];
        let norm = bessel_i0(KAISER_BETA);
        for (p, row) in bank.chunks_exact_mut(taps).enumerate() {
            let frac = p as f64 / phases as f64;
            let mut sum = 0.0;
            let mut coeffs = vec![0f64; taps];
            for (j, c) in coeffs.iter_mut().enumerate() {
                // Tap j multiplies input sample (i - reach + 1 + j) for an
                // output at position i + frac.
                let t = j as f64 - (reach as f64 - 1.0) - frac;
                if t.abs() < half {
                    let x = 2.0 * cutoff * t;
                    let sinc = if x == 0.0 {
                        1.0
                    } else {
                        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                    };
                    let w = bessel_i0(KAISER_BETA * (1.0 - (t / half).powi(2)).sqrt()) / norm;
                    *c = 2.0 * cutoff * sinc * w;
                    sum += *c;
                }
            }
            // Unity gain at DC in every phase.
            for (r, c) in row.iter_mut().zip(&coeffs) {
                *r = (c / sum) as f32;
            }
        }
        Resampler {
            in_step,
            out_step,
            phases,
            taps,
            reach,
            bank,
        }
    }

    /// Number of output samples for `len` input samples: the output covers
    /// the same span of time, rounded up.
    pub fn output_len(&self, len: usize) -> usize {
        ((len as u64 * self.out_step).div_ceil(self.in_step)) as usize
    }

    /// Converts a whole signal. Samples outside it count as silence.
    pub fn process(&self, input: &[f32]) -> Vec<f32> {
        if self.taps == 0 {
            return input.to_vec();
        }
        let n_out = self.output_len(input.len());
        let mut padded = vec![0f32; self.reach + input.len() + self.taps + 1];
        if let Some(dst) = padded.get_mut(self.reach..self.reach + input.len()) {
            dst.copy_from_slice(input);
        }
        let mut out = Vec::with_capacity(n_out);
        for n in 0..n_out as u64 {
            let pos = n * self.in_step;
            let mut i = pos / self.out_step;
            let rem = pos % self.out_step;
            let mut phase = (rem * self.phases + self.out_step / 2) / self.out_step;
            if phase == self.phases {
                phase = 0;
                i += 1;
            }
            // Tap 0 reads input sample i - reach + 1, which is padded[i + 1].
            let start = i as usize + 1;
            let p = phase as usize * self.taps;
            let (Some(window), Some(coeffs)) = (
                padded.get(start..start + self.taps),
                self.bank.get(p..p + self.taps),
            ) else {
                break;
            };
            out.push(dot(window, coeffs));
        }
        out
    }
}

/// Dot product of equal-length slices whose length is a multiple of
/// [`LANES`], with independent lanes so the compiler can use SIMD.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The modified Bessel function of the first kind, order 0 (for the Kaiser
/// window), by its power series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        term *= half / k as f64;
        let sq = term * term;
        sum += sq;
        if sq < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::f64::consts::PI;

    pub(crate) fn tone(rate: u32, freq: f64, amplitude: f64, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    /// Amplitude of the `freq` component of `x` sampled at `rate` (a
    /// single-bin DFT, i.e. Goertzel), for a signal that holds whole-ish
    /// periods.
    pub(crate) fn amplitude_at(x: &[f64], rate: u32, freq: f64) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
        let (mut re, mut im) = (0.0, 0.0);
        for (n, &v) in x.iter().enumerate() {
            re += v * (w * n as f64).cos();
            im -= v * (w * n as f64).sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    /// The frequency (10 Hz steps, 100–3990 Hz) holding the most energy.
    pub(crate) fn dominant(x: &[f64], rate: u32) -> f64 {
        (10..400)
            .map(|k| f64::from(k) * 10.0)
            .map(|f| (f, amplitude_at(x, rate, f)))
            .fold((0.0, -1.0), |best, c| if c.1 > best.1 { c } else { best })
            .0
    }

    /// Middle of a signal, away from the filter's start-up and tail.
    pub(crate) fn middle(x: &[f32]) -> Vec<f64> {
        let skip = x.len() / 8;
        x[skip..x.len() - skip]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    }

    #[test]
    fn one_khz_survives_every_rate() {
        for rate in [11_025, 16_000, 22_050, 32_000, 44_100, 48_000] {
            let out = Resampler::new(rate, 8000).process(&tone(rate, 1000.0, 0.5, 1.0));
            assert_eq!(out.len(), 8000, "rate {rate}");
            let mid = middle(&out);
            assert_eq!(dominant(&mid, 8000), 1000.0, "rate {rate}");
            let a = amplitude_at(&mid, 8000, 1000.0);
            assert!((a - 0.5).abs() < 0.005, "rate {rate}: amplitude {a}");
            // Zero-phase filter: sample n of the output is the ideal tone.
            let skip = out.len() / 8;
            let ideal = tone(8000, 1000.0, 0.5, 1.0);
            let err = out[skip..out.len() - skip]
                .iter()
                .zip(&ideal[skip..])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 0.005, "rate {rate}: max error {err}");
        }
    }

    #[test]
    fn passband_edge_is_kept() {
        let out = Resampler::new(48_000, 8000).process(&tone(48_000, 3000.0, 0.5, 1.0));
        let a = amplitude_at(&middle(&out), 8000, 3000.0);
        assert!((a - 0.5).abs() < 0.01, "3 kHz amplitude {a}");
    }

    #[test]
    fn above_nyquist_does_not_alias() {
        // 5 kHz at 48 kHz would fold to 3 kHz without the low-pass.
        for (rate, freq, alias) in [
            (48_000, 5000.0, 3000.0),
            (44_100, 4500.0, 3500.0),
            (16_000, 6000.0, 2000.0),
            (48_000, 4200.0, 3800.0),
        ] {
            let out = Resampler::new(rate, 8000).process(&tone(rate, freq, 0.9, 1.0));
            let mid = middle(&out);
            let a = amplitude_at(&mid, 8000, alias);
            assert!(a < 0.9e-4, "{freq} Hz at {rate} Hz: alias amplitude {a}");
            let peak = mid.iter().fold(0f64, |m, v| m.max(v.abs()));
            assert!(peak < 1e-3, "{freq} Hz at {rate} Hz: peak {peak}");
        }
    }

    #[test]
    fn odd_rates_use_rounded_phases() {
        // gcd(44_101, 8000) = 1: more phases than the table holds.
        let r = Resampler::new(44_101, 8000);
        assert_eq!(r.phases, MAX_PHASES);
        let out = r.process(&tone(44_101, 1000.0, 0.5, 1.0));
        let mid = middle(&out);
        assert_eq!(dominant(&mid, 8000), 1000.0);
        assert!((amplitude_at(&mid, 8000, 1000.0) - 0.5).abs() < 0.005);
    }

    #[test]
    fn same_rate_is_identity() {
        let x = tone(8000, 440.0, 0.3, 0.1);
        assert_eq!(Resampler::new(8000, 8000).process(&x), x);
    }

    #[test]
    fn dc_gain_is_one_and_lengths_round_up() {
        let r = Resampler::new(44_100, 8000);
        assert_eq!(r.output_len(44_100), 8000);
        assert_eq!(r.output_len(1), 1);
        assert_eq!(r.output_len(0), 0);
        let out = r.process(&vec![0.25; 44_100]);
        assert!(out[1000..7000].iter().all(|v| (v - 0.25).abs() < 1e-5));
        assert!(r.process(&[]).is_empty());
        assert_eq!(r.process(&[0.5]).len(), 1);
    }

    #[test]
    fn upsampling_works_too() {
        let out = Resampler::new(8000, 16_000).process(&tone(8000, 1000.0, 0.5, 1.0));
        assert_eq!(out.len(), 16_000);
        let mid = middle(&out);
        assert!((amplitude_at(&mid, 16_000, 1000.0) - 0.5).abs() < 0.005);
    }
}
