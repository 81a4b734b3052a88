//! The load generator against the real switch (DESIGN §9): every call is
//! answered, the switch's prompt arrives as an unbroken 20 ms stream of the
//! tone it plays, and an RFC 4733 digit from the generator drives the flow.
//! In a bridged run the generator also answers the calls the flow
//! transfers to it, and audio flows both ways through the switch.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Scratch, Switch, TEST_NODES};
use switchboard::callgen::{self, Codec, Config, SendAudio};

/// Writes a `seconds` long 440 Hz prompt, 8 kHz mono 16-bit.
fn write_long_tone(dir: &Scratch, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let path = dir.path().join("sounds/long.wav");
    let mut w = hound::WavWriter::create(path, spec).expect("create prompt");
    for n in 0..8000 * seconds {
        let t = n as f32 / 8000.0;
        w.write_sample(((t * 440.0 * std::f32::consts::TAU).sin() * 12000.0) as i16)
            .expect("write prompt");
    }
    w.finalize().expect("finalize prompt");
}

/// The switch with number 100 playing a 10 s tone as its menu prompt (so
/// RTP flows for the whole call; key 1 hangs up).
fn start_switch(name: &str) -> Switch {
    Switch::start_with(name, &[], |dir| {
        write_long_tone(dir, 10);
        let nodes = TEST_NODES.replace("prompt: tone.wav", "prompt: long.wav");
        dir.write(
            "flows/main.yaml",
            &format!("name: main\nnumbers: [\"100\"]\n{nodes}"),
        );
    })
}

/// Power of `freq` in `pcm` relative to the total (a one-bin DFT).
fn tone_share(pcm: &[i16], freq: f64) -> f64 {
    let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
    for (n, &s) in pcm.iter().enumerate() {
        let x = f64::from(s);
        let w = 2.0 * std::f64::consts::PI * freq * n as f64 / 8000.0;
        re += x * w.cos();
        im += x * w.sin();
        total += x * x;
    }
    (re * re + im * im) * 2.0 / (pcm.len() as f64 * total.max(1.0))
}

/// Five calls held 3 s: all answered, about 150 packets each (3 s of
/// 20 ms frames), nothing lost or reordered (RFC 3550 A.3), and the audio
/// of one call is the prompt's 440 Hz tone.
#[test]
fn five_calls_receive_the_prompt_without_loss() {
    let switch = start_switch("callgen");
    let report = callgen::run(Config {
        target: switch.sip,
        number: "100".into(),
        calls: 5,
        rate: 20.0,
        duration: Duration::from_secs(3),
        codec: Codec::Pcmu,
        dtmf: None,
        send_audio: SendAudio::Tone,
        local_ip: "127.0.0.1".parse().unwrap(),
        rtp_ports: (50000, 50499),
        workers: 2,
        capture_call: Some(0),
        agent_listen: None,
    })
    .expect("run callgen");
    let ctx = || format!("{report}\nswitch log:\n{}", switch.log());
    assert_eq!(report.calls.attempted, 5, "{}", ctx());
    assert_eq!(report.calls.answered, 5, "{}", ctx());
    assert_eq!(report.calls.failed, 0, "{}", ctx());
    assert_eq!(report.calls.ended_by_switch, 0, "{}", ctx());
    let per_call = report.rtp.received as f64 / 5.0;
    assert!(
        (140.0..=155.0).contains(&per_call),
        "{per_call} packets per call\n{}",
        ctx()
    );
    assert_eq!(report.rtp.lost, 0, "{}", ctx());
    assert_eq!(report.rtp.out_of_order, 0, "{}", ctx());
    assert!(report.rtp.sent >= 5 * 140, "{}", ctx());
    assert_eq!(report.grid_deviation_ms.count, report.rtp.received);
    assert!(report.setup_ms.max > 0.0 && report.jitter_ms.count == 5);
    // DESIGN §9: the first prompt packet after the ACK, for every call;
    // no digit was sent, so no digit latency.
    assert_eq!(report.first_audio_ms.count, 5, "{}", ctx());
    assert!(report.first_audio_ms.max < 1000.0, "{}", ctx());
    assert_eq!(report.digit_to_last_audio_ms.count, 0, "{}", ctx());
    assert!(
        report.captured.len() >= 8000,
        "{} samples",
        report.captured.len()
    );
    let share = tone_share(&report.captured[..8000], 440.0);
    assert!(share > 0.5, "440 Hz is {share:.2} of the received audio");
}

/// The binary with `--json`: an RFC 4733 digit 1 s into each call takes
/// the menu's option 1 (hang up), so the switch ends both calls before
/// the 5 s hold; the exit status is success.
#[test]
fn binary_sends_a_digit_and_the_switch_hangs_up() {
    let switch = start_switch("callgen-dtmf");
    let out = Command::new(env!("CARGO_BIN_EXE_callgen"))
        .args(["--target", &switch.sip.to_string()])
        .args(["--calls", "2", "--rate", "10", "--duration", "5s"])
        .args([
            "--dtmf",
            "1@1s",
            "--codec",
            "pcma",
            "--send-audio",
            "silence",
        ])
        .args(["--rtp-ports", "50500-50999", "--workers", "1", "--json"])
        .output()
        .expect("run callgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = || {
        format!(
            "status {}\nstdout: {stdout}\nstderr: {}\nswitch log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            switch.log()
        )
    };
    assert!(out.status.success(), "{}", ctx());
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON report");
    assert_eq!(report["calls"]["answered"], 2, "{}", ctx());
    assert_eq!(report["calls"]["ended_by_switch"], 2, "{}", ctx());
    assert_eq!(report["rtp"]["lost"], 0, "{}", ctx());
    // The key cut the 10 s prompt: its last packet came well before the
    // 4 s of it that were left (DESIGN §9: DTMF -> prompt stops).
    assert_eq!(report["digit_to_last_audio_ms"]["count"], 2, "{}", ctx());
    assert!(
        report["digit_to_last_audio_ms"]["max"].as_f64().unwrap() < 1000.0,
        "{}",
        ctx()
    );
    assert_eq!(report["first_audio_ms"]["count"], 2, "{}", ctx());
    assert!(
        report["generator"]["wall_seconds"].as_f64().unwrap() < 4.5,
        "{}",
        ctx()
    );
}

/// A free UDP port on 127.0.0.1 (bound, read, released).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

/// DESIGN §4 bridge and §9 bridged load: the shipped load-test flow
/// (scripts/load-flows/bridge) transfers each of five calls to the
/// generator's answering side; every call is answered on both sides, RTP
/// arrives both ways with nothing lost (RFC 3550 A.3), each direction
/// carries about the 3 s hold's worth of tagged frames, and the switch's
/// added delay is measured on every relayed packet. The switch's BYEs end
/// every agent call.
#[test]
fn five_bridged_calls_relay_audio_both_ways_without_loss() {
    let agent_port = free_udp_port();
    let flow = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/load-flows/bridge/bridge.yaml"
    ))
    .expect("load-test flow")
    .replace("AGENT_PORT", &agent_port.to_string());
    let switch = Switch::start_with("callgen-bridge", &[], |dir| {
        dir.write("flows/bridge.yaml", &flow);
    });
    let report = callgen::run(Config {
        target: switch.sip,
        number: "500".into(),
        calls: 5,
        rate: 20.0,
        duration: Duration::from_secs(3),
        codec: Codec::Pcmu,
        dtmf: None,
        send_audio: SendAudio::Tone,
        local_ip: "127.0.0.1".parse().unwrap(),
        rtp_ports: (51000, 51499),
        workers: 2,
        capture_call: None,
        agent_listen: Some(([127, 0, 0, 1], agent_port).into()),
    })
    .expect("run callgen");
    let ctx = || format!("{report}\nswitch log:\n{}", switch.log());
    assert_eq!(report.calls.answered, 5, "{}", ctx());
    assert_eq!(report.calls.failed, 0, "{}", ctx());
    let bridge = report.bridge.as_ref().expect("bridge report");
    assert_eq!(bridge.agent_answered, 5, "{}", ctx());
    assert_eq!(bridge.agent_refused, 0, "{}", ctx());
    assert_eq!(bridge.agent_ended_by_switch, 5, "{}", ctx());
    // DESIGN §9 agent answer -> audio: every answered agent heard the
    // caller, at the caller's next frames (not seconds later).
    assert_eq!(bridge.answer_to_audio_ms.count, 5, "{}", ctx());
    assert!(bridge.answer_to_audio_ms.max < 1000.0, "{}", ctx());
    for (name, d) in [
        ("caller->agent", &bridge.caller_to_agent),
        ("agent->caller", &bridge.agent_to_caller),
    ] {
        assert_eq!(d.silent_calls, 0, "{name}\n{}", ctx());
        assert_eq!(d.lost, 0, "{name}\n{}", ctx());
        // The bridge is up a moment after the answer: most of 3 s of
        // 20 ms frames per call get through.
        assert!(
            d.received >= 5 * 100 && d.received <= 5 * 155,
            "{name}: {} received\n{}",
            d.received,
            ctx()
        );
        // Every relayed frame carried its send time.
        assert_eq!(d.added_delay_ms.count, d.received, "{name}\n{}", ctx());
        assert!(
            d.added_delay_ms.p50 > 0.0 && d.added_delay_ms.p50 < 20.0,
            "{name}: {:?}\n{}",
            d.added_delay_ms,
            ctx()
        );
    }
}
