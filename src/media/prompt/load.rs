//! Reading a WAV file into a [`Prompt`]: decode with hound, mix to mono,
//! resample to 8 kHz, round to 16-bit, encode (DESIGN §4).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use hound::{SampleFormat, WavReader};

use super::{Prompt, PromptError, Resampler, SAMPLE_RATE};

/// Longest sound accepted: ten minutes (at 8 kHz about 19 MB of samples and
/// frames).
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// Lowest and highest source sample rates accepted.
const MIN_RATE: u32 = 8000;
const MAX_RATE: u32 = 48_000;
/// Most channels accepted (mono or stereo).
const MAX_CHANNELS: u16 = 2;

pub(super) fn load(path: &Path, name: &str) -> Result<Prompt, PromptError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => PromptError::NotFound {
            path: path.to_owned(),
        },
        _ => PromptError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    let meta = file.metadata().map_err(|source| PromptError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        return Err(PromptError::Io {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
        });
    }
    if meta.len() == 0 {
        return Err(PromptError::Empty {
            path: path.to_owned(),
        });
    }
    let reader = WavReader::new(BufReader::new(file)).map_err(|e| wav_error(path, e))?;
    let rate = reader.spec().sample_rate;
    let mono = read_mono(reader, path)?;
    let pcm = Resampler::new(rate, SAMPLE_RATE).process(&mono);
    Ok(Prompt::from_pcm(name, to_i16(&pcm)))
}

/// Converts hound's errors: real I/O failures stay I/O errors; a file that
/// ends early (hound reports `UnexpectedEof` or a custom `Other` error for
/// that) or is malformed is unreadable; other encodings unsupported.
fn wav_error(path: &Path, err: hound::Error) -> PromptError {
    let path = path.to_owned();
    match err {
        hound::Error::IoError(e)
            if !matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
            ) =>
        {
            PromptError::Io { path, source: e }
        }
        hound::Error::Unsupported => PromptError::Unsupported {
            path,
            reason: "WAV encoding is not PCM or float (μ-law, A-law and ADPCM files must be \
                     converted to 16-bit PCM)"
                .to_owned(),
        },
        source => PromptError::Unreadable { path, source },
    }
}

/// Checks the format and length, then reads every sample and mixes the
/// channels down to mono floats in [-1, 1], at the file's own rate.
fn read_mono<R: Read>(mut reader: WavReader<R>, path: &Path) -> Result<Vec<f32>, PromptError> {
    let spec = reader.spec();
    let unsupported = |reason: String| PromptError::Unsupported {
        path: path.to_owned(),
        reason,
    };
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(unsupported(format!(
            "sample rate {} Hz (8000–48000 Hz supported)",
            spec.sample_rate
        )));
    }
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        return Err(unsupported(format!(
            "{} channels (mono or stereo supported)",
            spec.channels
        )));
    }
    let frames = reader.duration();
    let length = Duration::from_secs_f64(f64::from(frames) / f64::from(spec.sample_rate));
    if length > MAX_DURATION {
        return Err(PromptError::TooLong {
            path: path.to_owned(),
            length,
            max: MAX_DURATION,
        });
    }
    if frames == 0 {
        return Err(PromptError::Empty {
            path: path.to_owned(),
        });
    }
    let channels = usize::from(spec.channels);
    let mut mono = Vec::with_capacity(frames as usize);
    let read = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Float, 32) => downmix(reader.samples::<f32>(), channels, |v| v, &mut mono),
        (SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            downmix(
                reader.samples::<i32>(),
                channels,
                |v| v as f32 * scale,
                &mut mono,
            )
        }
        (format, bits) => {
            return Err(unsupported(format!("{bits}-bit {format:?} samples")));
        }
    };
    read.map_err(|e| wav_error(path, e))?;
    Ok(mono)
}

/// Averages each group of `channels` samples into `out`; non-finite float
/// samples count as silence.
fn downmix<S, I>(
    samples: I,
    channels: usize,
    to_f32: impl Fn(S) -> f32,
    out: &mut Vec<f32>,
) -> hound::Result<()>
where
    I: Iterator<Item = hound::Result<S>>,
{
    let gain = 1.0 / channels as f32;
    let (mut acc, mut n) = (0f32, 0usize);
    for sample in samples {
        let v = to_f32(sample?);
        acc += if v.is_finite() { v } else { 0.0 };
        n += 1;
        if n == channels {
            out.push(acc * gain);
            (acc, n) = (0.0, 0);
        }
    }
    Ok(())
}

/// Rounds [-1, 1] floats to 16-bit samples, clipping what lies outside.
fn to_i16(x: &[f32]) -> Vec<i16> {
    x.iter()
        .map(|&v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hound::{WavSpec, WavWriter};

    use super::*;
    use crate::media::g711;
    use crate::media::prompt::resample::tests::{amplitude_at, dominant, middle, tone};
    use crate::media::prompt::{FRAME_SAMPLES, test_dir};

    /// Writes interleaved samples in [-1, 1] in the given format.
    fn write_wav(path: &Path, spec: WavSpec, samples: &[f32]) {
        let mut w = WavWriter::create(path, spec).expect("create wav");
        for &s in samples {
            match spec.sample_format {
                SampleFormat::Float => w.write_sample(s).expect("write"),
                SampleFormat::Int => {
                    let max = ((1i64 << (spec.bits_per_sample - 1)) - 1) as f64;
                    let v = (f64::from(s) * max).round() as i32;
                    w.write_sample(v).expect("write")
                }
            }
        }
        w.finalize().expect("finalize");
    }

    fn spec(rate: u32, channels: u16, format: SampleFormat, bits: u16) -> WavSpec {
        WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    fn interleave(left: &[f32], right: &[f32]) -> Vec<f32> {
        left.iter().zip(right).flat_map(|(&l, &r)| [l, r]).collect()
    }

    fn pcm_f32(p: &Prompt) -> Vec<f32> {
        p.pcm.iter().map(|&s| f32::from(s) / 32768.0).collect()
    }

    #[test]
    fn tone_files_at_every_rate_and_format_come_out_at_8k() {
        let dir = test_dir("prompt-load");
        for rate in [8000, 16_000, 44_100, 48_000] {
            for channels in [1u16, 2] {
                for (format, bits) in [(SampleFormat::Int, 16), (SampleFormat::Float, 32)] {
                    let t = tone(rate, 1000.0, 0.5, 0.5);
                    let samples = if channels == 2 {
                        // The right channel is silent: the mix halves the tone.
                        interleave(&t, &vec![0.0; t.len()])
                    } else {
                        t
                    };
                    let path = dir.join(format!("t{rate}-{channels}-{bits}.wav"));
                    write_wav(&path, spec(rate, channels, format, bits), &samples);
                    let what = format!("{rate} Hz, {channels} ch, {bits}-bit");
                    let p = Prompt::load(&path, "t").unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(p.pcm.len(), 4000, "{what}");
                    assert_eq!(p.frame_count(), 25, "{what}");
                    assert_eq!(p.duration, Duration::from_millis(500), "{what}");
                    let mid = middle(&pcm_f32(&p));
                    assert_eq!(dominant(&mid, 8000), 1000.0, "{what}");
                    let want = if channels == 2 { 0.25 } else { 0.5 };
                    let got = amplitude_at(&mid, 8000, 1000.0);
                    assert!((got - want).abs() < 0.005, "{what}: amplitude {got}");
                }
            }
        }
    }

    #[test]
    fn eight_khz_16_bit_mono_is_kept_sample_exact() {
        let dir = test_dir("prompt-exact");
        let path = dir.join("exact.wav");
        let samples: Vec<i16> = (0..1000)
            .map(|i| ((i * 7919) % 65536 - 32768) as i16)
            .collect();
        let mut w = WavWriter::create(&path, spec(8000, 1, SampleFormat::Int, 16)).expect("create");
        for &s in &samples {
            w.write_sample(s).expect("write");
        }
        w.finalize().expect("finalize");
        let p = Prompt::load(&path, "exact").expect("load");
        assert_eq!(&p.pcm[..], &samples[..]);
    }

    #[test]
    fn other_bit_depths_load() {
        let dir = test_dir("prompt-bits");
        for bits in [8, 24, 32] {
            let path = dir.join(format!("b{bits}.wav"));
            let t = tone(16_000, 1000.0, 0.5, 0.25);
            write_wav(&path, spec(16_000, 1, SampleFormat::Int, bits), &t);
            let p = Prompt::load(&path, "b").expect("load");
            assert_eq!(p.pcm.len(), 2000);
            let mid = middle(&pcm_f32(&p));
            let got = amplitude_at(&mid, 8000, 1000.0);
            // 8-bit samples carry about -48 dB of quantisation noise.
            assert!((got - 0.5).abs() < 0.01, "{bits}-bit: amplitude {got}");
        }
    }

    #[test]
    fn stereo_channels_are_averaged() {
        let dir = test_dir("prompt-mix");
        let path = dir.join("mix.wav");
        let samples = interleave(&[0.4; 800], &[0.2; 800]);
        write_wav(&path, spec(8000, 2, SampleFormat::Float, 32), &samples);
        let p = Prompt::load(&path, "mix").expect("load");
        assert_eq!(p.pcm.len(), 800);
        assert!(p.pcm.iter().all(|&s| (i32::from(s) - 9830).abs() <= 1));
    }

    #[test]
    fn frames_match_encoding_the_pcm_and_pad_with_silence() {
        let dir = test_dir("prompt-frames");
        let path = dir.join("f.wav");
        // 0.3 s at 48 kHz: 2400 samples at 8 kHz, 15 frames, no padding;
        // 0.31 s: 2480 samples, 16 frames, the last one half silence.
        for (seconds, frames, tail) in [(0.3, 15, 0), (0.31, 16, 80)] {
            write_wav(
                &path,
                spec(48_000, 1, SampleFormat::Int, 16),
                &tone(48_000, 700.0, 0.8, seconds),
            );
            let p = Prompt::load(&path, "f").expect("load");
            assert_eq!(p.pcm.len(), frames * FRAME_SAMPLES - tail);
            assert_eq!((p.pcmu.len(), p.pcma.len()), (frames, frames));
            for (i, (u, a)) in p.pcmu.iter().zip(p.pcma.iter()).enumerate() {
                let mut linear = [0i16; FRAME_SAMPLES];
                let chunk = &p.pcm[i * FRAME_SAMPLES..p.pcm.len().min((i + 1) * FRAME_SAMPLES)];
                linear[..chunk.len()].copy_from_slice(chunk);
                let (mut eu, mut ea) = ([0u8; FRAME_SAMPLES], [0u8; FRAME_SAMPLES]);
                g711::encode_ulaw(&linear, &mut eu);
                g711::encode_alaw(&linear, &mut ea);
                assert_eq!(u, &eu, "PCMU frame {i}");
                assert_eq!(a, &ea, "PCMA frame {i}");
            }
            let last = FRAME_SAMPLES - tail;
            assert!(p.pcmu[frames - 1][last..].iter().all(|&b| b == 0xFF));
            assert!(p.pcma[frames - 1][last..].iter().all(|&b| b == 0xD5));
        }
    }

    fn expect_err(path: &Path) -> PromptError {
        let err = Prompt::load(path, "x").expect_err("load must fail");
        let shown = err.to_string();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("?");
        assert!(shown.contains(file), "{shown:?} does not name {file}");
        err
    }

    /// A 16-bit 8 kHz mono WAV whose data-chunk length says `data_len`
    /// bytes while the file holds `actual` samples.
    fn patched(dir: &Path, name: &str, actual: usize, data_len: u32) -> PathBuf {
        let path = dir.join(name);
        write_wav(
            &path,
            spec(8000, 1, SampleFormat::Int, 16),
            &vec![0.1; actual],
        );
        let mut bytes = std::fs::read(&path).expect("read back");
        bytes[40..44].copy_from_slice(&data_len.to_le_bytes());
        std::fs::write(&path, bytes).expect("patch");
        path
    }

    #[test]
    fn errors_are_typed_and_name_the_file() {
        let dir = test_dir("prompt-errors");
        assert!(matches!(
            expect_err(&dir.join("missing.wav")),
            PromptError::NotFound { .. }
        ));

        let garbage = dir.join("garbage.wav");
        std::fs::write(&garbage, b"this is not a RIFF file at all").expect("write");
        assert!(matches!(
            expect_err(&garbage),
            PromptError::Unreadable { .. }
        ));

        let zero = dir.join("zero.wav");
        std::fs::write(&zero, b"").expect("write");
        assert!(matches!(expect_err(&zero), PromptError::Empty { .. }));

        let no_samples = dir.join("nosamples.wav");
        write_wav(&no_samples, spec(8000, 1, SampleFormat::Int, 16), &[]);
        assert!(matches!(expect_err(&no_samples), PromptError::Empty { .. }));

        let fast = dir.join("fast.wav");
        write_wav(&fast, spec(96_000, 1, SampleFormat::Int, 16), &[0.0; 96]);
        let err = expect_err(&fast);
        assert!(matches!(err, PromptError::Unsupported { .. }));
        assert!(err.to_string().contains("96000 Hz"));

        let slow = dir.join("slow.wav");
        write_wav(&slow, spec(6000, 1, SampleFormat::Int, 16), &[0.0; 60]);
        assert!(matches!(expect_err(&slow), PromptError::Unsupported { .. }));

        let wide = dir.join("wide.wav");
        write_wav(&wide, spec(8000, 3, SampleFormat::Int, 16), &[0.0; 30]);
        assert!(matches!(expect_err(&wide), PromptError::Unsupported { .. }));

        // 601 s claimed in the header: refused before reading anything.
        let long = patched(&dir, "long.wav", 10, 601 * 8000 * 2);
        let err = expect_err(&long);
        assert!(matches!(err, PromptError::TooLong { .. }), "{err}");

        // The header promises more data than the file holds.
        let short = patched(&dir, "short.wav", 10, 2000);
        let err = expect_err(&short);
        assert!(matches!(err, PromptError::Unreadable { .. }), "{err:?}");

        let folder = dir.join("folder.wav");
        std::fs::create_dir_all(&folder).expect("mkdir");
        assert!(matches!(expect_err(&folder), PromptError::Io { .. }));
    }

    #[test]
    fn non_finite_floats_are_silence() {
        let dir = test_dir("prompt-nan");
        let path = dir.join("nan.wav");
        let mut samples = vec![0.0f32; 160];
        samples[10] = f32::NAN;
        samples[20] = f32::INFINITY;
        samples[30] = 2.0; // clipped
        write_wav(&path, spec(8000, 1, SampleFormat::Float, 32), &samples);
        let p = Prompt::load(&path, "nan").expect("load");
        assert_eq!((p.pcm[10], p.pcm[20], p.pcm[30]), (0, 0, 32767));
    }
}
