//! A scratch flow folder with a sounds folder beside it, for the loader
//! and validator tests.

use std::path::PathBuf;

use super::{FlowSet, Severity, load_folder};
use crate::store::testing::TempDir;

/// The prompts every scratch folder has (a WAV header is all the loader reads).
pub const SOUNDS: [&str; 8] = [
    "welcome.wav",
    "menu.wav",
    "invalid.wav",
    "rate.wav",
    "closed.wav",
    "leave-message.wav",
    "hold.wav",
    "bye.wav",
];

pub const QUEUES: &str =
    "queues:\n  support:\n    hours: support-hours\n    music: hold.wav\n  sales: {}\n";
pub const HOURS: &str = "hours:\n  support-hours:\n    timezone: Europe/Berlin\n    week: { mon-fri: [\"09:00-17:00\"] }\n";

pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    /// `flows/` with queues.yaml and hours.yaml, and `sounds/` with [`SOUNDS`].
    pub fn new() -> Scratch {
        let dir = TempDir::new("flows").expect("temp dir");
        let s = Scratch { dir };
        std::fs::create_dir_all(s.flows()).expect("flows");
        std::fs::create_dir_all(s.sounds()).expect("sounds");
        for name in SOUNDS {
            s.sound(name);
        }
        s.write("queues.yaml", QUEUES);
        s.write("hours.yaml", HOURS);
        s
    }

    pub fn flows(&self) -> PathBuf {
        self.dir.path().join("flows")
    }

    pub fn sounds(&self) -> PathBuf {
        self.dir.path().join("sounds")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.flows().join(name), text).expect("write flow");
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.flows().join(name)).expect("remove");
    }

    /// Writes a minimal WAV file `name` under `sounds/`.
    pub fn sound(&self, name: &str) {
        let path = self.sounds().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("sound dir");
        }
        let mut wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
        wav.extend_from_slice(&[
            16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0,
        ]);
        wav.extend_from_slice(b"data\x00\x00\x00\x00");
        std::fs::write(path, wav).expect("write sound");
    }

    /// Loads the folder; diagnostics as `FILE:LINE:COL: severity: message`
    /// with FILE relative to `flows/`.
    pub fn load(&self) -> (Option<FlowSet>, Vec<String>) {
        let (set, diags) = load_folder(&self.flows(), &self.sounds());
        let prefix = format!("{}/", self.flows().display());
        let lines = diags
            .iter()
            .map(|d| d.to_string().replacen(&prefix, "", 1))
            .collect();
        (set, lines)
    }

    /// Loads the folder with `main.yaml` = `text`; panics on any error.
    pub fn good(&self, text: &str) -> FlowSet {
        self.write("main.yaml", text);
        let (set, diags) = self.load();
        let (_, errors) = split(&diags);
        assert!(errors.is_empty(), "{text}\n{}", diags.join("\n"));
        set.expect("a flow set")
    }

    /// The errors of a folder with `main.yaml` = `text`.
    pub fn errors(&self, text: &str) -> Vec<String> {
        self.write("main.yaml", text);
        let (set, diags) = self.load();
        let (_, errors) = split(&diags);
        assert!(set.is_none() || errors.is_empty());
        errors
    }
}

/// (warnings, errors).
pub fn split(diags: &[String]) -> (Vec<String>, Vec<String>) {
    let (e, w): (Vec<String>, Vec<String>) = diags
        .iter()
        .cloned()
        .partition(|d| d.contains(&format!(": {}: ", label(Severity::Error))));
    (w, e)
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
