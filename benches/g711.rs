//! G.711 and RTP header costs per 20 ms frame (DESIGN §4, §9: thousands of
//! calls each send and receive a 160-sample frame every 20 ms).

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use switchboard::media::g711;
use switchboard::media::rtp::{RtpHeader, RtpPacket, RtpSender};

const FRAME: usize = 160;

/// A 440 Hz tone at -6 dBFS plus a little deterministic noise.
fn pcm_frame() -> [i16; FRAME] {
    let mut frame = [0i16; FRAME];
    let mut noise = 0x1234_5678u32;
    for (i, sample) in frame.iter_mut().enumerate() {
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        let phase = i as f64 * 440.0 * std::f64::consts::TAU / 8000.0;
        *sample = (phase.sin() * 16_000.0) as i16 + (noise % 512) as i16 - 256;
    }
    frame
}

fn g711_frames(c: &mut Criterion) {
    let pcm = pcm_frame();
    let mut ulaw = [0u8; FRAME];
    g711::encode_ulaw(&pcm, &mut ulaw);
    let mut alaw = [0u8; FRAME];
    g711::encode_alaw(&pcm, &mut alaw);

    let mut group = c.benchmark_group("g711_160");
    group.throughput(Throughput::Elements(FRAME as u64));
    group.bench_function("encode_ulaw_bitmath", |b| {
        let mut out = [0u8; FRAME];
        b.iter(|| g711::encode_ulaw(black_box(&pcm), black_box(&mut out)))
    });
    group.bench_function("encode_ulaw_table16k", |b| {
        let mut out = [0u8; FRAME];
        b.iter(|| {
            for (code, &s) in out.iter_mut().zip(black_box(&pcm)) {
                *code = g711::ulaw_encode_table(s);
            }
            black_box(&out);
        })
    });
    group.bench_function("decode_ulaw", |b| {
        let mut out = [0i16; FRAME];
        b.iter(|| g711::decode_ulaw(black_box(&ulaw), black_box(&mut out)))
    });
    group.bench_function("encode_alaw", |b| {
        let mut out = [0u8; FRAME];
        b.iter(|| g711::encode_alaw(black_box(&pcm), black_box(&mut out)))
    });
    group.bench_function("encode_alaw_table8k", |b| {
        let mut out = [0u8; FRAME];
        b.iter(|| {
            for (code, &s) in out.iter_mut().zip(black_box(&pcm)) {
                *code = g711::alaw_encode_table(s);
            }
            black_box(&out);
        })
    });
    group.bench_function("decode_alaw", |b| {
        let mut out = [0i16; FRAME];
        b.iter(|| g711::decode_alaw(black_box(&alaw), black_box(&mut out)))
    });
    group.bench_function("transcode_ulaw_to_alaw", |b| {
        let mut payload = ulaw;
        b.iter(|| g711::transcode_ulaw_to_alaw(black_box(&mut payload)))
    });
    group.finish();
}

fn rtp_header(c: &mut Criterion) {
    let payload = [0xD5u8; FRAME];
    let header = RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: 4242,
        timestamp: 0x1234_5678,
        ssrc: 0xCAFE_BABE,
    };
    let mut packet = [0u8; 12 + FRAME];
    header.write_packet(&payload, &mut packet).unwrap();

    let mut group = c.benchmark_group("rtp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write_header", |b| {
        let mut buf = [0u8; 12];
        b.iter(|| black_box(&header).write(black_box(&mut buf)))
    });
    group.bench_function("parse", |b| {
        b.iter(|| RtpPacket::parse(black_box(&packet)).map(|p| p.payload().len()))
    });
    group.bench_function("write_then_parse", |b| {
        let mut buf = [0u8; 12 + FRAME];
        b.iter(|| {
            let n = black_box(&header)
                .write_packet(black_box(&payload), &mut buf)
                .unwrap();
            RtpPacket::parse(black_box(&buf[..n])).map(|p| p.sequence())
        })
    });
    group.bench_function("sender_next_packet", |b| {
        let mut sender = RtpSender::new(1, 2, 3);
        let mut buf = [0u8; 12 + FRAME];
        b.iter(|| sender.next_packet(0, black_box(&payload), 160, false, black_box(&mut buf)))
    });
    group.finish();
}

criterion_group!(benches, g711_frames, rtp_header);
criterion_main!(benches);
