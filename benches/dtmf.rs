//! In-band DTMF detection cost (DESIGN §9: every IVR call runs the Goertzel
//! detector on each 20 ms frame; 3,000 calls must fit in under one core).

use std::time::Instant;

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use switchboard::media::dtmf::goertzel::{ToneDetector, ToneDetectorConfig};

/// One 20 ms frame (160 samples at 8 kHz) of the `5` key: 770 + 1336 Hz.
fn frame() -> Vec<i16> {
    (0..160)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let s = (2.0 * std::f32::consts::PI * 770.0 * t).sin()
                + (2.0 * std::f32::consts::PI * 1336.0 * t).sin();
            (s * 6000.0) as i16
        })
        .collect()
}

fn goertzel(c: &mut Criterion) {
    let frame = frame();
    let mut det = ToneDetector::new(ToneDetectorConfig::default());
    let t0 = Instant::now();
    let mut g = c.benchmark_group("dtmf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("goertzel_20ms_frame", |b| {
        b.iter(|| {
            det.handle_frame(t0, black_box(&frame));
            black_box(det.poll_event())
        })
    });
    g.finish();
}

criterion_group!(benches, goertzel);
criterion_main!(benches);
