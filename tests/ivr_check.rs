//! `switchboard check [DIR] [--sounds DIR]` from outside (DESIGN §2, §5):
//! a good folder exits 0 (warnings allowed), a folder with errors exits 1
//! and prints every problem as `FILE:LINE:COL: severity: message`.

use std::path::Path;
use std::process::{Command, Output};

use switchboard::config::Setting;
use switchboard::store::testing::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn check(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).arg("check").args(args);
    cmd.env_remove("SWITCHBOARD_CONFIG");
    for s in Setting::ALL {
        cmd.env_remove(s.env());
    }
    cmd.output().expect("run switchboard check")
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// A header-only 8 kHz mono 16-bit WAV file.
fn wav() -> Vec<u8> {
    let mut w = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00".to_vec();
    w.extend_from_slice(b"\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00");
    w
}

const MAIN: &str = r#"name: main
numbers: ["100", "+14155550100"]
start: greet
nodes:
  greet:   { play: welcome.wav, next: open }
  open:    { hours: support-hours, open: menu, closed: closed }
  menu:
    menu:
      prompt: menu.wav
      options: { "1": sales, "2": support }
      failure: support
  sales:   { queue: sales, next: voicemail }
  support: { queue: support, priority: 1, after: survey, next: voicemail }
  survey:  { collect: { prompt: rate.wav, var: csat, digits: 1, timeout: 5s }, next: vip }
  vip:
    branch:
      - { if: "vars.csat <= 2 and caller.known", then: sorry }
      - { else: bye }
  sorry:   { webhook: { url: "https://crm.example.com/low-score" }, next: bye }
  closed:  { play: closed.wav, next: voicemail }
  voicemail: { voicemail: { greeting: leave-message.wav, max: 120s }, next: bye }
  bye:     { hangup: {} }
  spare:   { play: closed.wav, next: bye }
"#;

const QUEUES: &str = "queues:\n  support:\n    hours: support-hours\n    music: hold.wav\n  sales:\n    music: hold.wav\n";
const HOURS: &str = "hours:\n  support-hours:\n    timezone: Europe/Berlin\n    week: { mon-fri: [\"09:00-18:00\"] }\n";

fn good_folder(dir: &Path) {
    for s in [
        "welcome.wav",
        "menu.wav",
        "rate.wav",
        "closed.wav",
        "leave-message.wav",
        "hold.wav",
    ] {
        write(dir, &format!("prompts/{s}"), &wav());
    }
    write(dir, "flows/main.yaml", MAIN.as_bytes());
    write(dir, "flows/queues.yaml", QUEUES.as_bytes());
    write(dir, "flows/hours.yaml", HOURS.as_bytes());
}

#[test]
fn good_folder_exits_0_and_prints_warnings() {
    let dir = TempDir::new("ivr-check").unwrap();
    good_folder(dir.path());
    let out = check(dir.path(), &["flows", "--sounds", "prompts"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.trim_end(),
        "flows/main.yaml:23:3: warning: node `spare` is unreachable from `start` in flow `main`"
    );
}

#[test]
fn folder_with_errors_exits_1_and_prints_each_with_its_place() {
    let dir = TempDir::new("ivr-check").unwrap();
    good_folder(dir.path());
    let broken = MAIN
        .replace("welcome.wav", "../welcome.wav")
        .replace("queue: sales,", "queue: saless,")
        .replace("\"1\": sales", "\"11\": sales")
        .replace("vars.csat <= 2", "vars.csat =< 2")
        .replace("max: 120s", "max: 120")
        .replace("closed.wav, next: bye }\n", "closed.wav, nxet: bye }\n");
    write(dir.path(), "flows/main.yaml", broken.as_bytes());
    write(
        dir.path(),
        "flows/other.yaml",
        b"numbers: [\"+14155550100\"]\nstart: a\nnodes:\n  a: { play: closed.wav, next: b }\n  b: { play: closed.wav, next: a }\n",
    );
    write(
        dir.path(),
        "flows/queues.yaml",
        b"queues:\n  support:\n    hours: late-hours\n    music: hold.wav\n  sales: {}\n",
    );
    let out = check(dir.path(), &["flows", "--sounds", "prompts"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let want = [
        "flows/main.yaml:5:20: error: sound `../welcome.wav` escapes the sounds folder",
        "flows/main.yaml:10:18: error: bad menu key `11`",
        "flows/main.yaml:12:21: error: unknown queue `saless`",
        "flows/main.yaml:17:26: error: bad condition: use == to compare",
        "flows/main.yaml:21:63: error: max: bad duration 120: add a unit",
        "flows/main.yaml:23:3: error: node `spare` needs `next`",
        "flows/main.yaml:23:32: error: unknown key `nxet` in a play node; did you mean `next`?",
        "flows/other.yaml:1:11: error: number +14155550100 is also dialled into flow `main` at flows/main.yaml:2:18",
        "flows/other.yaml:4:3: error: nodes `a`, `b` form a loop with no menu or collect in it",
        "flows/queues.yaml:3:12: error: unknown hours `late-hours` (hours.yaml defines support-hours)",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), want.len(), "{stdout}");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "want {want}…\n got {line}");
    }
}

#[test]
fn flows_and_sounds_settings_are_the_defaults() {
    let dir = TempDir::new("ivr-check").unwrap();
    good_folder(dir.path());
    // Without --sounds the `sounds` setting (default `sounds/`) is used.
    let out = check(dir.path(), &["flows"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("flows/main.yaml:5:20: error: sound `welcome.wav` not found in sounds"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("check")
        .env("SWITCHBOARD_FLOWS", "flows")
        .env("SWITCHBOARD_SOUNDS", "prompts")
        .env_remove("SWITCHBOARD_CONFIG")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
