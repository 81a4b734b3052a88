//! The set of prompts a flow set uses, and the cursor a call plays them
//! through (DESIGN §4, §5: sounds are names relative to `--sounds`).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::{Frame, Prompt, PromptError};
use crate::media::sdp::Codec;

/// Longest sound name accepted, in bytes.
const MAX_NAME_LEN: usize = 255;

/// Every prompt a flow set references, loaded once. Cloning is one `Arc`
/// clone, so hot reload builds a new cache beside the old one and swaps it
/// in; calls holding the old one (or prompts from it) keep playing.
#[derive(Debug, Clone, Default)]
pub struct PromptCache {
    entries: Arc<HashMap<Box<str>, Entry>>,
}

#[derive(Debug)]
struct Entry {
    prompt: Arc<Prompt>,
    /// Modification time and length of the file when it was loaded, so a
    /// reload can keep prompts whose file did not change.
    stamp: Option<(SystemTime, u64)>,
}

/// Checks that a sound name stays inside the sounds folder: relative, made
/// only of normal components (no `..`, `.`, root or drive prefix), not
/// empty, no NUL or backslash, at most 255 bytes. Symbolic links inside the
/// folder are the admin's choice and are followed.
pub fn check_name(name: &str) -> Result<&Path, PromptError> {
    let bad = |reason| {
        Err(PromptError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty name");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("name longer than 255 bytes");
    }
    if name.contains(['\0', '\\']) {
        return bad("name holds a NUL or backslash");
    }
    let path = Path::new(name);
    if path.is_absolute() || name.starts_with('/') {
        return bad("absolute paths are not allowed; names are relative to the sounds folder");
    }
    if name.split('/').any(|part| matches!(part, "" | "." | ".."))
        || !path.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return bad("`..` and `.` are not allowed; names stay inside the sounds folder");
    }
    Ok(path)
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl PromptCache {
    /// Loads every sound in `names` (duplicates once) from `sounds_dir`.
    /// Reports every bad name and every file that fails, not just the first.
    /// Blocking: run it off the media workers (`spawn_blocking`).
    pub fn load<'a>(
        sounds_dir: &Path,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<PromptCache, Vec<PromptError>> {
        PromptCache::default().reload(sounds_dir, names)
    }

    /// Like [`PromptCache::load`], but reuses prompts of `self` whose file
    /// has the same modification time and length as when it was loaded:
    /// what a hot reload calls on the cache in service.
    pub fn reload<'a>(
        &self,
        sounds_dir: &Path,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<PromptCache, Vec<PromptError>> {
        let mut entries = HashMap::new();
        let mut errors = Vec::new();
        for name in names {
            if entries.contains_key(name) {
                continue;
            }
            let relative = match check_name(name) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let path = sounds_dir.join(relative);
            let now = stamp(&path);
            if let Some(old) = self.entries.get(name)
                && now.is_some()
                && old.stamp == now
            {
                entries.insert(
                    Box::from(name),
                    Entry {
                        prompt: Arc::clone(&old.prompt),
                        stamp: now,
                    },
                );
                continue;
            }
            match Prompt::load(&path, name) {
                Ok(prompt) => {
                    entries.insert(
                        Box::from(name),
                        Entry {
                            prompt: Arc::new(prompt),
                            stamp: now,
                        },
                    );
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(PromptCache {
                entries: Arc::new(entries),
            })
        } else {
            Err(errors)
        }
    }

    /// The prompt the flows call `name`, if it was loaded.
    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        self.entries.get(name).map(|e| Arc::clone(&e.prompt))
    }

    /// Number of prompts held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no prompt is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names of every prompt held, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| &**k)
    }

    /// Where `name` would be read from; `None` when the name would leave
    /// the sounds folder.
    pub fn path_of(sounds_dir: &Path, name: &str) -> Option<PathBuf> {
        check_name(name).ok().map(|p| sounds_dir.join(p))
    }
}

/// A position in a list of prompts: what one call is playing. Hands out
/// references to shared frames, 20 ms at a time, with no allocation; a
/// looping cursor (music on hold) starts over after the last prompt.
#[derive(Debug, Clone)]
pub struct PromptCursor {
    prompts: Vec<Arc<Prompt>>,
    /// Index of the prompt playing.
    index: usize,
    /// Next frame within it.
    frame: usize,
    looped: bool,
    /// Frames handed out so far.
    played: u64,
}

impl PromptCursor {
    /// Plays `prompts` once, in order.
    pub fn new(prompts: Vec<Arc<Prompt>>) -> PromptCursor {
        PromptCursor {
            prompts,
            index: 0,
            frame: 0,
            looped: false,
            played: 0,
        }
    }

    /// Plays `prompts` in order, again and again (music on hold).
    pub fn looping(prompts: Vec<Arc<Prompt>>) -> PromptCursor {
        PromptCursor {
            looped: true,
            ..PromptCursor::new(prompts)
        }
    }

    /// The next 20 ms frame in `codec`, or `None` when a non-looping
    /// cursor has played everything (or every prompt is empty).
    pub fn next_frame(&mut self, codec: Codec) -> Option<&Frame> {
        // Each pass finds a frame, moves to the next prompt or wraps
        // around: from the end of any prompt, a lap over every prompt plus
        // the wrap plus the first frame is `len + 2` passes. Without a frame
        // by then there is nothing to play.
        for _ in 0..self.prompts.len() + 2 {
            let len = match self.prompts.get(self.index) {
                Some(p) => p.frame_count(),
                None if self.looped && !self.prompts.is_empty() => {
                    self.index = 0;
                    self.frame = 0;
                    continue;
                }
                None => return None,
            };
            if self.frame < len {
                let (index, frame) = (self.index, self.frame);
                self.frame += 1;
                self.played += 1;
                return self.prompts.get(index)?.frames(codec).get(frame);
            }
            self.index += 1;
            self.frame = 0;
        }
        None
    }

    /// True once a non-looping cursor has nothing left to play.
    pub fn is_finished(&self) -> bool {
        if self.looped && self.prompts.iter().any(|p| p.frame_count() > 0) {
            return false;
        }
        let rest = self.prompts.get(self.index..).unwrap_or(&[]);
        match rest.split_first() {
            None => true,
            Some((current, later)) => {
                self.frame >= current.frame_count() && later.iter().all(|p| p.frame_count() == 0)
            }
        }
    }

    /// Frames handed out since the cursor was made or rewound.
    pub fn frames_played(&self) -> u64 {
        self.played
    }

    /// Starts again from the first frame of the first prompt.
    pub fn rewind(&mut self) {
        self.index = 0;
        self.frame = 0;
        self.played = 0;
    }

    /// Whether the cursor starts over after the last prompt.
    pub fn is_looping(&self) -> bool {
        self.looped
    }
}

#[cfg(test)]
mod tests {
    use hound::{SampleFormat, WavSpec, WavWriter};

    use super::*;
    use crate::media::prompt::{FRAME_SAMPLES, test_dir};

    fn write(dir: &Path, name: &str, samples: usize) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let spec = WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut w = WavWriter::create(&path, spec).expect("create");
        for i in 0..samples {
            w.write_sample((i % 100) as i16 * 100).expect("write");
        }
        w.finalize().expect("finalize");
    }

    #[test]
    fn names_stay_inside_the_sounds_folder() {
        for good in [
            "welcome.wav",
            "moh/jazz.wav",
            "a b.wav",
            "..wav",
            "x..y.wav",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "moh/../../x.wav",
            "/etc/passwd",
            "./welcome.wav",
            "moh/./x.wav",
            "a\\..\\b.wav",
            "a\0b",
            "moh//x.wav",
            "moh/",
        ] {
            assert!(
                matches!(check_name(bad), Err(PromptError::BadName { .. })),
                "{bad:?}"
            );
        }
        assert!(check_name(&"a".repeat(256)).is_err());
        assert_eq!(
            PromptCache::path_of(Path::new("/s"), "moh/a.wav"),
            Some(PathBuf::from("/s/moh/a.wav"))
        );
        assert_eq!(PromptCache::path_of(Path::new("/s"), "../a.wav"), None);
    }

    #[test]
    fn load_shares_each_prompt_once() {
        let dir = test_dir("cache-load");
        write(&dir, "welcome.wav", 800);
        write(&dir, "moh/jazz.wav", 400);
        let names = ["welcome.wav", "moh/jazz.wav", "welcome.wav"];
        let cache = PromptCache::load(&dir, names.into_iter()).expect("load");
        assert_eq!(cache.len(), 2);
        let a = cache.get("welcome.wav").expect("welcome");
        let b = cache.clone().get("welcome.wav").expect("welcome again");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a.name, "welcome.wav");
        assert_eq!(cache.get("moh/jazz.wav").map(|p| p.pcm.len()), Some(400));
        assert!(cache.get("other.wav").is_none());
        let mut listed: Vec<_> = cache.names().collect();
        listed.sort();
        assert_eq!(listed, ["moh/jazz.wav", "welcome.wav"]);
    }

    #[test]
    fn load_reports_every_error_at_once() {
        let dir = test_dir("cache-errors");
        write(&dir, "ok.wav", 160);
        std::fs::write(dir.join("junk.wav"), b"junk").expect("write");
        let names = ["ok.wav", "missing.wav", "../escape.wav", "junk.wav"];
        let errors = PromptCache::load(&dir, names.into_iter()).expect_err("must fail");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(matches!(errors[0], PromptError::NotFound { .. }));
        assert!(matches!(errors[1], PromptError::BadName { .. }));
        assert!(matches!(errors[2], PromptError::Unreadable { .. }));
        assert!(errors[0].to_string().contains("missing.wav"));
        assert!(errors[1].to_string().contains("../escape.wav"));
    }

    #[test]
    fn reload_keeps_unchanged_prompts_and_rereads_changed_ones() {
        let dir = test_dir("cache-reload");
        write(&dir, "a.wav", 160);
        write(&dir, "b.wav", 160);
        let old = PromptCache::load(&dir, ["a.wav", "b.wav"].into_iter()).expect("load");
        write(&dir, "b.wav", 320); // another length: another stamp
        let new = old
            .reload(&dir, ["a.wav", "b.wav"].into_iter())
            .expect("reload");
        let same = |name| Arc::ptr_eq(&old.get(name).unwrap(), &new.get(name).unwrap());
        assert!(same("a.wav"));
        assert!(!same("b.wav"));
        assert_eq!(new.get("b.wav").map(|p| p.frame_count()), Some(2));
        // The old cache is untouched: calls on it keep playing.
        assert_eq!(old.get("b.wav").map(|p| p.frame_count()), Some(1));
    }

    fn prompt(name: &str, frames: usize, first: i16) -> Arc<Prompt> {
        let pcm = (0..frames * FRAME_SAMPLES)
            .map(|i| first + (i / FRAME_SAMPLES) as i16 * 1000)
            .collect();
        Arc::new(Prompt::from_pcm(name, pcm))
    }

    #[test]
    fn cursor_plays_prompts_in_order_once() {
        let a = prompt("a", 2, 1000);
        let b = prompt("b", 1, 8000);
        let empty = Arc::new(Prompt::from_pcm("empty", Vec::new()));
        let mut c = PromptCursor::new(vec![a.clone(), empty, b.clone()]);
        assert!(!c.is_looping());
        let want = [&a.pcmu[0], &a.pcmu[1], &b.pcmu[0]];
        for w in want {
            assert!(!c.is_finished());
            let got = c.next_frame(Codec::Pcmu).expect("frame");
            assert!(std::ptr::eq(got, w), "frames are shared, not copied");
        }
        assert!(c.is_finished());
        assert_eq!(c.next_frame(Codec::Pcmu), None);
        assert_eq!(c.next_frame(Codec::Pcma), None);
        assert_eq!(c.frames_played(), 3);
        c.rewind();
        assert_eq!(c.next_frame(Codec::Pcma), Some(&a.pcma[0]));
    }

    #[test]
    fn looping_cursor_starts_over() {
        let a = prompt("a", 2, 1000);
        let b = prompt("b", 1, 8000);
        let mut c = PromptCursor::looping(vec![a.clone(), b.clone()]);
        let mut got = Vec::new();
        for _ in 0..7 {
            got.push(*c.next_frame(Codec::Pcma).expect("loops forever"));
        }
        let want = [a.pcma[0], a.pcma[1], b.pcma[0]];
        let want: Vec<Frame> = want.iter().cycle().take(7).copied().collect();
        assert_eq!(got, want);
        assert!(!c.is_finished());
        assert_eq!(c.frames_played(), 7);
    }

    #[test]
    fn cursor_with_nothing_to_play_ends() {
        let empty = Arc::new(Prompt::from_pcm("empty", Vec::new()));
        for mut c in [
            PromptCursor::new(Vec::new()),
            PromptCursor::looping(Vec::new()),
            PromptCursor::looping(vec![empty.clone(), empty]),
        ] {
            assert_eq!(c.next_frame(Codec::Pcmu), None);
            assert!(c.is_finished());
        }
    }

    /// A looping list of ONE prompt starts over after its last frame
    /// (music on hold is usually a single file).
    #[test]
    fn single_looping_prompt_starts_over() {
        let prompt = Arc::new(Prompt::from_pcm("one", vec![0; 320]));
        let mut cursor = PromptCursor::looping(vec![prompt]);
        for n in 0..10 {
            assert!(
                cursor.next_frame(Codec::Pcmu).is_some(),
                "frame {n} missing"
            );
        }
        assert!(!cursor.is_finished());
    }
}
