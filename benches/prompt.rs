//! Prompt loading (DESIGN §4): a 10 s 48 kHz stereo 16-bit WAV read,
//! mixed to mono, resampled to 8 kHz and encoded to PCMU and PCMA frames.
//! Loading happens at start-up and on hot reload, off the media clock;
//! this shows what a folder of prompts costs.

use std::f64::consts::PI;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use hound::{SampleFormat, WavSpec, WavWriter};
use switchboard::media::prompt::{Prompt, Resampler};

const RATE: u32 = 48_000;
const SECONDS: u32 = 10;

/// A speech-band mix of tones, different on each channel.
fn sample(i: u32, channel: u32) -> f64 {
    let t = f64::from(i) / f64::from(RATE);
    let f = [220.0, 470.0, 1130.0, 2900.0];
    f.iter()
        .enumerate()
        .map(|(k, &f)| 0.2 * (2.0 * PI * f * t + f64::from(channel) + k as f64).sin())
        .sum()
}

fn write_input() -> PathBuf {
    let path = std::env::temp_dir().join(format!("sb-bench-prompt-{}.wav", std::process::id()));
    let spec = WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    let mut w = WavWriter::create(&path, spec).expect("create bench input");
    for i in 0..RATE * SECONDS {
        for ch in 0..2 {
            w.write_sample((sample(i, ch) * 32767.0) as i16)
                .expect("write bench input");
        }
    }
    w.finalize().expect("finalize bench input");
    path
}

fn bench(c: &mut Criterion) {
    let path = write_input();
    let mut g = c.benchmark_group("prompt");
    g.throughput(Throughput::Elements(u64::from(RATE * SECONDS)));
    g.bench_function("load_10s_48k_stereo", |b| {
        b.iter(|| Prompt::load(black_box(&path), "bench").expect("load"))
    });
    let mono: Vec<f32> = (0..RATE * SECONDS).map(|i| sample(i, 0) as f32).collect();
    g.bench_function("resample_10s_48k_mono", |b| {
        let r = Resampler::new(RATE, 8000);
        b.iter(|| r.process(black_box(&mono)))
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench);
criterion_main!(benches);
