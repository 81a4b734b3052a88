//! Sound names in flow and queue files: relative paths confined to the
//! sounds folder (DESIGN §5, §10), naming readable WAV files.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

/// Checks sound names against the sounds folder, once per name.
pub struct Sounds {
    dir: PathBuf,
    canonical: Option<PathBuf>,
    seen: HashMap<String, Result<(), String>>,
}

impl Sounds {
    pub fn new(dir: &Path) -> Sounds {
        Sounds {
            dir: dir.to_owned(),
            canonical: dir.canonicalize().ok(),
            seen: HashMap::new(),
        }
    }

    /// Why `name` cannot be played, if it cannot: it must be a relative
    /// path inside the sounds folder (no `..`, no absolute path, no symlink
    /// out of it) naming a readable WAV file.
    pub fn check(&mut self, name: &str) -> Result<(), String> {
        if let Some(known) = self.seen.get(name) {
            return known.clone();
        }
        let result = self.check_uncached(name);
        if self.seen.len() < 10_000 {
            self.seen.insert(name.to_owned(), result.clone());
        }
        result
    }

    fn check_uncached(&self, name: &str) -> Result<(), String> {
        if name.trim().is_empty() {
            return Err("empty sound name".to_owned());
        }
        if name.len() > 255 || name.contains(['\\', '\0']) {
            return Err(format!("bad sound name `{name}`"));
        }
        let path = Path::new(name);
        for c in path.components() {
            match c {
                Component::Normal(_) => {}
                Component::ParentDir => {
                    return Err(format!("sound `{name}` escapes the sounds folder (`..`)"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "sound `{name}` must be a name relative to the sounds folder, not an absolute path"
                    ));
                }
                Component::CurDir => {
                    return Err(format!("bad sound name `{name}` (`.` component)"));
                }
            }
        }
        let full = self.dir.join(path);
        let missing = || format!("sound `{name}` not found in {}", self.dir.display());
        let Some(root) = &self.canonical else {
            return Err(missing());
        };
        let real = full.canonicalize().map_err(|_| missing())?;
        if !real.starts_with(root) {
            return Err(format!(
                "sound `{name}` escapes the sounds folder (symbolic link)"
            ));
        }
        if !real.is_file() {
            return Err(format!("sound `{name}` is not a file"));
        }
        let mut head = Vec::with_capacity(12);
        std::fs::File::open(&real)
            .and_then(|f| f.take(12).read_to_end(&mut head))
            .map_err(|e| format!("cannot read sound `{name}`: {e}"))?;
        if head.get(0..4) != Some(b"RIFF") || head.get(8..12) != Some(b"WAVE") {
            return Err(format!("sound `{name}` is not a WAV file"));
        }
        Ok(())
    }
}
