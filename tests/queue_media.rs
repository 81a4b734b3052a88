//! What a queued caller hears and how agents are rung (DESIGN §6), end to
//! end: position/wait announcements built from the shipped `announce/`
//! recordings over the hold music, a ringback tone while the agent's phone
//! rings (`on_ring: ringback`), and an offer that rings every registered
//! device of the agent at once, the losers cancelled (RFC 3261 §9.1).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{RawCaller, Scratch, Switch, assert_sipp_ok, have_peer, scenario, tone_share};

/// One queue `q` behind number 500, with `settings` (YAML flow mapping
/// entries), and the shipped announcement recordings in the sounds folder.
fn prepare(dir: &Scratch, agent: &str, settings: &str) {
    common::add_agent(dir, agent, "s3cret", &["--skills", "support=3"]);
    dir.write(
        "flows/queues.yaml",
        &format!("queues:\n  q: {{ skills: {{ support: 1 }}, {settings} }}\n"),
    );
    dir.write(
        "flows/queue.yaml",
        "name: queue\nnumbers: [\"500\"]\nstart: q\nnodes:\n  q: { queue: q, next: bye }\n  bye: { hangup: {} }\n",
    );
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/announce"),
        &dir.path().join("sounds/announce"),
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read sounds").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy sound");
        }
    }
}

/// The sounds the switch logged for its first announcement.
fn announced_sounds(switch: &Switch) -> Vec<String> {
    switch.wait_log("queue announcement");
    let log = switch.log();
    let line = log
        .lines()
        .find(|l| l.contains("queue announcement"))
        .expect("announcement line");
    let list = line
        .split("sounds=[")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or_else(|| panic!("no sounds in {line}"));
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .collect()
}

/// What the caller should hear for `sounds`: each shipped recording in
/// turn, its last 20 ms frame padded with silence, through G.711 μ-law.
fn expected_audio(sounds: &[String]) -> Vec<i16> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    let mut out = Vec::new();
    for name in sounds {
        let mut pcm = common::read_wav_lenient(&root.join(name));
        assert!(!pcm.is_empty(), "{name} has no audio");
        pcm.resize(pcm.len().div_ceil(160) * 160, 0);
        let mut law = vec![0u8; pcm.len()];
        switchboard::media::g711::encode_ulaw(&pcm, &mut law);
        out.extend(
            law.iter()
                .map(|&b| switchboard::media::g711::ulaw_decode(b)),
        );
    }
    out
}

/// Normalised correlation of `a` and `b` (same length): 1.0 when equal.
fn similarity(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1.0)
}

/// Where (in samples, on a 20 ms frame) `needle` best matches `hay`, and
/// how well.
fn best_match(hay: &[i16], needle: &[i16]) -> (usize, f64) {
    let mut best = (0, f64::MIN);
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        let s = similarity(&hay[at..at + needle.len()], needle);
        if s > best.1 {
            best = (at, s);
        }
        at += 160;
    }
    best
}

#[test]
fn waiting_caller_hears_position_and_wait_over_the_music() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-announce", &["--digest-algorithms", "MD5"], |dir| {
        prepare(
            dir,
            "alice",
            "ring_timeout: 5s, music: tone.wav, announce: { every: 2s, position: true, wait_time: true }",
        )
    });
    // The only agent takes a first caller, so the second one waits.
    let agent = common::agent_phone(&switch, "alice", "s3cret");
    let first = RawCaller::dial(&switch, "500", "+14155550101", "announce-1");
    switch.wait_log("bridged the caller to the queue agent");
    let second = RawCaller::dial(&switch, "500", "+14155550102", "announce-2");
    let heard = second.listen(Duration::from_secs(8));

    // The entry announcement: "you are caller number one, your estimated
    // wait is N minutes".
    let sounds = announced_sounds(&switch);
    assert_eq!(
        sounds.first().map(String::as_str),
        Some("announce/you-are-caller-number.wav"),
        "{sounds:?}"
    );
    assert_eq!(
        sounds.get(1).map(String::as_str),
        Some("announce/numbers/1.wav")
    );
    assert!(
        sounds.contains(&"announce/your-estimated-wait-is.wav".to_owned()),
        "{sounds:?}"
    );
    let want = expected_audio(&sounds);
    assert!(
        heard.len() > want.len(),
        "heard only {} samples",
        heard.len()
    );
    let (at, score) = best_match(&heard, &want);
    eprintln!(
        "announcement matched {score:.3} at sample {at} of {}",
        heard.len()
    );
    assert!(
        score > 0.95,
        "the announcement was not heard (best match {score:.3} at {at})"
    );
    // The music (440 Hz) stopped for it and starts again after it.
    let during = &heard[at..at + want.len()];
    assert!(
        tone_share(during, 440.0) < 0.2,
        "music under the announcement"
    );
    let after = &heard[at + want.len()..(at + want.len() + 4000).min(heard.len())];
    assert!(after.len() >= 2000, "nothing heard after the announcement");
    assert!(
        tone_share(after, 440.0) > 0.8,
        "music did not resume: {:.3}",
        tone_share(after, 440.0)
    );

    // Then again every 2 s (one due while the first still plays is
    // skipped).
    let count = switch.log().matches("queue announcement").count();
    assert!(count >= 2, "{count} announcements in 8 s");

    second.bye();
    first.bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone");
}

#[test]
fn an_agent_answering_cuts_the_announcement() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-cut", &["--digest-algorithms", "MD5"], |dir| {
        prepare(
            dir,
            "dave",
            "ring_timeout: 5s, music: tone.wav, announce: { every: 60s }",
        )
    });
    // The agent's phone answers two calls in turn, at once.
    let agent = common::agent_phone_with(&switch, "dave", "s3cret", &["-sn", "uas", "-m", "2"]);
    let first = RawCaller::dial(&switch, "500", "+14155550105", "cut-1");
    switch.wait_log("bridged the caller to the queue agent");
    let second = RawCaller::dial(&switch, "500", "+14155550106", "cut-2");
    let heard = std::thread::scope(|s| {
        let listening = s.spawn(|| second.listen(Duration::from_secs(6)));
        // One second into the second caller's entry announcement the agent
        // becomes free: the offer is answered at once.
        switch.wait_log("queue announcement");
        std::thread::sleep(Duration::from_secs(1));
        first.bye();
        listening.join().expect("listen")
    });
    let log = switch.log();
    assert_eq!(
        log.matches("bridged the caller to the queue agent").count(),
        2,
        "{log}"
    );
    let want = expected_audio(&announced_sounds(&switch));
    // What was heard is the start of the announcement, and nothing of it
    // after the bridge: at least a second of it was cut.
    let prefix = 8000.min(heard.len());
    assert!(prefix >= 4000, "heard only {} samples", heard.len());
    let (at, score) = best_match(&heard[..prefix], &want[..prefix.min(want.len()) - 1600]);
    assert!(
        score > 0.95,
        "announcement start not heard ({score:.3} at {at})"
    );
    let announced = heard[at..].iter().filter(|&&s| s != 0).count();
    assert!(
        heard.len() - at + 8000 < want.len(),
        "the announcement went on after the answer: {} of {} samples heard ({announced} non-zero)",
        heard.len() - at,
        want.len()
    );

    second.bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone");
}

#[test]
fn caller_hears_ringback_while_the_agent_phone_rings() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-ringback", &["--digest-algorithms", "MD5"], |dir| {
        prepare(
            dir,
            "bob",
            "ring_timeout: 10s, music: music.wav, on_ring: ringback",
        );
        common::write_sine_wav(&dir.path().join("sounds/music.wav"), 800.0, 2, 12000.0);
    });
    // The phone says 180 at once and answers 2.5 s later.
    let ring_answer = scenario("agent_ring_then_answer.xml");
    let agent = common::agent_phone_with(
        &switch,
        "bob",
        "s3cret",
        &["-sf", &ring_answer, "-d", "2500"],
    );
    let caller = RawCaller::dial(&switch, "500", "+14155550103", "ringback-1");
    let heard = caller.listen(Duration::from_secs(7));
    switch.wait_log("bridged the caller to the queue agent");

    // 100 ms windows: which carry the ETSI ringback tone (425 Hz)?
    let windows: Vec<bool> = heard
        .chunks(800)
        .map(|w| w.len() == 800 && tone_share(w, 425.0) > 0.8)
        .collect();
    let ringing: usize = windows.iter().filter(|&&r| r).count();
    // One burst of 1 s (the phone answered before the second at 5 s).
    assert!(
        (8..=11).contains(&ringing),
        "ringback windows: {ringing} of {}",
        windows.len()
    );
    let first = windows.iter().position(|&r| r).expect("ringback");
    let last = windows.iter().rposition(|&r| r).expect("ringback");
    assert!(last - first <= 11, "ringback went on after the answer");
    // The music is not what plays while the phone rings.
    let burst = &heard[first * 800..(last + 1) * 800];
    assert!(tone_share(burst, 800.0) < 0.05);

    caller.bye();
    let out = agent.wait_with_output().expect("sipp agent");
    assert_sipp_ok(&out, &switch, "agent phone");
}

#[test]
fn an_offer_rings_every_device_and_cancels_the_others() {
    if !have_peer("sipp") {
        return;
    }
    let switch = Switch::start_with("queue-fork", &["--digest-algorithms", "MD5"], |dir| {
        prepare(dir, "carol", "ring_timeout: 10s, music: tone.wav")
    });
    // Two devices of one agent: one answers after 1 s, the other only
    // rings and must be cancelled.
    let answers = scenario("agent_ring_then_answer.xml");
    let cancelled = scenario("agent_ring_cancelled.xml");
    let desk =
        common::agent_phone_with(&switch, "carol", "s3cret", &["-sf", &answers, "-d", "1000"]);
    let mobile = common::agent_phone_with(&switch, "carol", "s3cret", &["-sf", &cancelled]);
    std::thread::sleep(Duration::from_millis(500));
    let caller = RawCaller::dial(&switch, "500", "+14155550104", "fork-1");
    switch.wait_log("devices=2");
    switch.wait_log("bridged the caller to the queue agent");

    // The device that did not answer saw CANCEL (its scenario requires it).
    let out = mobile.wait_with_output().expect("sipp mobile");
    assert_sipp_ok(&out, &switch, "cancelled device");

    caller.bye();
    let out = desk.wait_with_output().expect("sipp desk");
    assert_sipp_ok(&out, &switch, "answering device");
    switch.wait_log("queue segment");
    let log = switch.log();
    // One answer reached the engine, and no missed offer.
    assert_eq!(
        log.matches("bridged the caller to the queue agent").count(),
        1
    );
    assert!(!log.contains("queue command not applied"), "{log}");
    let segment = log
        .lines()
        .find(|l| l.contains("queue segment"))
        .expect("segment");
    assert!(segment.contains("Answered"), "{segment}");
}
