//! Hot reload of the flow folder (DESIGN §5, last paragraph): the running
//! [`FlowSet`] lives behind a [`FlowsHandle`]; a reload validates the whole
//! folder (flows, `queues.yaml`, `hours.yaml` and the sounds they name) and
//! swaps the set atomically only when nothing is an error. A failed reload
//! changes nothing. A call takes [`FlowsHandle::current`] once, when it
//! starts, and keeps that `Arc` to its end, so calls already in a flow
//! finish on the version they started with.
//!
//! [`spawn_watcher`] reloads by itself when a file of the flow folder or the
//! sounds folder changes, [`DEBOUNCE`] after the last change (editors write
//! a file in several steps); `POST /api/v1/flows/reload` calls
//! [`FlowReloader::reload_now`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::model::FlowSet;
use super::{Diagnostic, Severity, load_folder};
use crate::media::prompt::PromptCache;

/// Quiet time after the last file event before the folder is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// One loaded version of the flow folder.
#[derive(Debug)]
pub struct LoadedFlows {
    /// The flows, number plan, queues and hours of this version.
    pub set: Arc<FlowSet>,
    /// 1 for the set loaded at startup, one more at each good reload.
    pub version: u64,
    pub loaded_at: DateTime<Utc>,
    /// What validation warned about (unreachable nodes, …).
    pub warnings: Vec<Diagnostic>,
    /// Every sound this version plays, decoded and pre-encoded once.
    pub prompts: PromptCache,
}

/// The running flow set, shared by the SIP endpoint, the calls and the API.
/// Cheap to clone; reading never waits for a reload to validate.
#[derive(Debug, Clone)]
pub struct FlowsHandle {
    inner: Arc<RwLock<Arc<LoadedFlows>>>,
}

impl FlowsHandle {
    /// A handle holding `set` as version 1.
    pub fn new(set: FlowSet, prompts: PromptCache, warnings: Vec<Diagnostic>) -> FlowsHandle {
        FlowsHandle {
            inner: Arc::new(RwLock::new(Arc::new(LoadedFlows {
                set: Arc::new(set),
                version: 1,
                loaded_at: Utc::now(),
                warnings,
                prompts,
            }))),
        }
    }

    /// The set a new call uses (and keeps for its whole life).
    pub fn current(&self) -> Arc<FlowSet> {
        self.loaded().set.clone()
    }

    /// The running version with its number and load time.
    pub fn loaded(&self) -> Arc<LoadedFlows> {
        // A panic while holding the lock cannot leave a torn value: the
        // writer only replaces one `Arc`.
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `set` the running version; returns it.
    fn replace(
        &self,
        set: FlowSet,
        prompts: PromptCache,
        warnings: Vec<Diagnostic>,
    ) -> Arc<LoadedFlows> {
        let mut slot = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let next = Arc::new(LoadedFlows {
            set: Arc::new(set),
            version: slot.version + 1,
            loaded_at: Utc::now(),
            warnings,
            prompts,
        });
        *slot = next.clone();
        next
    }
}

/// What a good reload produced.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// The version now running.
    pub loaded: Arc<LoadedFlows>,
}

/// Loads the flow folder and reloads it on demand; owns the one
/// [`FlowsHandle`] of the process.
#[derive(Debug)]
pub struct FlowReloader {
    flows_dir: PathBuf,
    sounds_dir: PathBuf,
    handle: FlowsHandle,
    /// One reload at a time, so versions follow the order of the reads.
    reloading: Mutex<()>,
}

impl FlowReloader {
    /// Loads the folder for startup; on failure, every diagnostic (errors
    /// and warnings, sorted by position).
    pub fn load(flows_dir: &Path, sounds_dir: &Path) -> Result<FlowReloader, Vec<Diagnostic>> {
        let (set, mut diagnostics) = load_folder(flows_dir, sounds_dir);
        let Some(set) = set else {
            return Err(diagnostics);
        };
        let prompts = match load_prompts(&set, sounds_dir, &PromptCache::default()) {
            Ok(p) => p,
            Err(errors) => {
                diagnostics.extend(errors);
                return Err(diagnostics);
            }
        };
        for d in &diagnostics {
            warn!("{d}");
        }
        info!(
            flows = set.len(),
            numbers = set.numbers().len(),
            "flows loaded"
        );
        Ok(FlowReloader {
            flows_dir: flows_dir.to_owned(),
            sounds_dir: sounds_dir.to_owned(),
            handle: FlowsHandle::new(set, prompts, diagnostics),
            reloading: Mutex::new(()),
        })
    }

    /// The shared running set.
    pub fn handle(&self) -> &FlowsHandle {
        &self.handle
    }

    pub fn flows_dir(&self) -> &Path {
        &self.flows_dir
    }

    pub fn sounds_dir(&self) -> &Path {
        &self.sounds_dir
    }

    /// Validates the whole folder again and, when nothing is an error,
    /// swaps it in. On failure the running version stays and every
    /// diagnostic is logged (one `warn!` line each) and returned. Blocking
    /// (reads the folder): call it from `spawn_blocking` in async code.
    pub fn reload_now(&self) -> Result<ReloadReport, Vec<Diagnostic>> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let (set, mut diagnostics) = load_folder(&self.flows_dir, &self.sounds_dir);
        let running = self.handle.loaded();
        let set =
            set.and_then(
                |set| match load_prompts(&set, &self.sounds_dir, &running.prompts) {
                    Ok(prompts) => Some((set, prompts)),
                    Err(errors) => {
                        diagnostics.extend(errors);
                        None
                    }
                },
            );
        for d in &diagnostics {
            warn!("{d}");
        }
        match set {
            Some((set, prompts)) => {
                let (flows, numbers) = (set.len(), set.numbers().len());
                let loaded = self.handle.replace(set, prompts, diagnostics);
                info!(version = loaded.version, flows, numbers, "flows reloaded");
                Ok(ReloadReport { loaded })
            }
            None => {
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .count();
                warn!(
                    errors,
                    version = self.handle.loaded().version,
                    "flow reload failed; the running version is kept"
                );
                Err(diagnostics)
            }
        }
    }
}

/// Sounds every version loads besides those the flows name, when present:
/// the voicemail beep and the queue announcement phrases.
const EXTRA_SOUND_DIRS: &[&str] = &["announce", "announce/numbers"];
const EXTRA_SOUNDS: &[&str] = &["beep.wav"];

/// Decodes every sound of `set` (reusing unchanged prompts of `previous`);
/// a sound that cannot be decoded is an error of the version.
fn load_prompts(
    set: &FlowSet,
    sounds_dir: &Path,
    previous: &PromptCache,
) -> Result<PromptCache, Vec<Diagnostic>> {
    let mut names: Vec<String> = set.sounds().into_iter().map(str::to_owned).collect();
    names.extend(
        EXTRA_SOUNDS
            .iter()
            .filter(|n| sounds_dir.join(n).is_file())
            .map(|n| (*n).to_owned()),
    );
    for dir in EXTRA_SOUND_DIRS {
        let Ok(entries) = std::fs::read_dir(sounds_dir.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if file.ends_with(".wav") && entry.path().is_file() {
                names.push(format!("{dir}/{file}"));
            }
        }
    }
    previous
        .reload(sounds_dir, names.iter().map(String::as_str))
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|e| Diagnostic {
                    file: sounds_dir.to_owned(),
                    line: 0,
                    col: 0,
                    severity: Severity::Error,
                    message: e.to_string(),
                })
                .collect()
        })
}

/// Why the folder watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: {source}", .dir.display())]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the file watcher: {0}")]
    Start(#[source] notify::Error),
}

/// Watches the flow folder (its top level, as the loader reads it) and the
/// sounds folder (recursively) and reloads [`DEBOUNCE`] after the last
/// change, until `stop` turns true. A missing sounds folder is not watched
/// (the flows then fail validation anyway if they name a sound).
pub fn spawn_watcher(
    reloader: Arc<FlowReloader>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    // One pending wake-up is enough: events coalesce.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| match res {
        Ok(event) if is_change(&event) => {
            let _ = tx.try_send(());
        }
        Ok(_) => {}
        Err(e) => warn!(cause = %e, "flow folder watcher"),
    })
    .map_err(WatchError::Start)?;
    watcher
        .watch(reloader.flows_dir(), RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Watch {
            dir: reloader.flows_dir().to_owned(),
            source,
        })?;
    let sounds = reloader.sounds_dir();
    if sounds.is_dir()
        && let Err(source) = watcher.watch(sounds, RecursiveMode::Recursive)
    {
        let e = WatchError::Watch {
            dir: sounds.to_owned(),
            source,
        };
        warn!(cause = %e, "sound changes will not reload the flows");
    }
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                got = rx.recv() => if got.is_none() { return },
            }
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    got = rx.recv() => if got.is_none() { return },
                    () = tokio::time::sleep(DEBOUNCE) => break,
                }
            }
            let r = reloader.clone();
            // The outcome is logged by `reload_now`.
            if let Err(e) = tokio::task::spawn_blocking(move || r.reload_now()).await {
                warn!(cause = %e, "flow reload task ended abnormally");
            }
        }
    }))
}

/// Whether a file event may change what the folder validates to. Reads
/// (the reload itself opens every file) and editor scratch files do not.
fn is_change(event: &Event) -> bool {
    if event.need_rescan() {
        return true;
    }
    let changes = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    };
    changes && (event.paths.is_empty() || event.paths.iter().any(|p| !is_scratch(p)))
}

/// Editor swap and backup files (`.main.yaml.swp`, `main.yaml~`, `4913`).
fn is_scratch(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913"
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, ModifyKind};

    const MAIN: &str =
        "name: main\nnumbers: [\"100\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n";

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("switchboard-reload-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("flows")).unwrap();
            std::fs::create_dir_all(dir.join("sounds")).unwrap();
            Dir(dir)
        }
        fn flows(&self) -> PathBuf {
            self.0.join("flows")
        }
        fn sounds(&self) -> PathBuf {
            self.0.join("sounds")
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.flows().join(name), text).unwrap();
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn good_reload_swaps_and_counts_versions() {
        let dir = Dir::new("good");
        dir.write("main.yaml", MAIN);
        let reloader = FlowReloader::load(&dir.flows(), &dir.sounds()).unwrap();
        let handle = reloader.handle().clone();
        let before = handle.current();
        assert_eq!(handle.loaded().version, 1);
        assert!(before.numbers().lookup("555").is_none());

        dir.write(
            "new.yaml",
            "numbers: [\"555\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n",
        );
        let report = reloader.reload_now().unwrap();
        assert_eq!(report.loaded.version, 2);
        assert_eq!(handle.loaded().version, 2);
        let after = handle.current();
        assert_eq!(
            after.numbers().lookup("555").map(|e| e.name.as_str()),
            Some("new")
        );
        // A call that started before keeps its version.
        assert!(before.numbers().lookup("555").is_none());
    }

    /// DESIGN §5: a reload that fails validation changes nothing.
    #[test]
    fn failed_reload_keeps_the_running_version() {
        let dir = Dir::new("bad");
        dir.write("main.yaml", MAIN);
        let reloader = FlowReloader::load(&dir.flows(), &dir.sounds()).unwrap();
        dir.write(
            "main.yaml",
            "name: main\nnumbers: [\"100\"]\nstart: bye\nnodes:\n  bye: { play: x.wav, next: nowhere }\n",
        );
        let diags = reloader.reload_now().unwrap_err();
        assert!(diags.iter().any(|d| d.severity == Severity::Error));
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("nowhere") && d.line == 5),
            "{diags:?}"
        );
        let loaded = reloader.handle().loaded();
        assert_eq!(loaded.version, 1);
        assert!(loaded.set.numbers().lookup("100").is_some());
    }

    #[test]
    fn startup_failure_reports_every_problem() {
        let dir = Dir::new("startup");
        dir.write(
            "a.yaml",
            "numbers: [\"1\"]\nstart: x\nnodes:\n  y: { hangup: {} }\n",
        );
        dir.write(
            "b.yaml",
            "numbers: [\"1\"]\nstart: y\nnodes:\n  y: { hangup: {} }\n",
        );
        let diags = FlowReloader::load(&dir.flows(), &dir.sounds()).unwrap_err();
        assert!(diags.len() >= 2, "{diags:?}");
    }

    #[test]
    fn reads_and_scratch_files_are_not_changes() {
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let close_read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let close_write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let modify = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        let create = EventKind::Create(CreateKind::File);
        assert!(!is_change(&event(open, "/f/main.yaml")));
        assert!(!is_change(&event(close_read, "/s/welcome.wav")));
        assert!(is_change(&event(close_write, "/f/main.yaml")));
        assert!(is_change(&event(modify, "/f/main.yaml")));
        assert!(is_change(&event(create, "/s/welcome.wav")));
        assert!(!is_change(&event(modify, "/f/.main.yaml.swp")));
        assert!(!is_change(&event(create, "/f/main.yaml~")));
        assert!(is_change(&Event::new(EventKind::Other)));
    }

    /// The watcher picks up a new file without being asked, and a broken
    /// one leaves the running version alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_reloads_after_changes() {
        let dir = Dir::new("watch");
        dir.write("main.yaml", MAIN);
        let reloader = Arc::new(FlowReloader::load(&dir.flows(), &dir.sounds()).unwrap());
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = spawn_watcher(reloader.clone(), stop_rx).unwrap();
        let handle = reloader.handle().clone();

        dir.write(
            "new.yaml",
            "numbers: [\"555\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n",
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while handle.current().numbers().lookup("555").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no reload");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let version = handle.loaded().version;
        assert!(version >= 2);

        dir.write(
            "new.yaml",
            "numbers: [\"555\"]\nstart: nowhere\nnodes: {}\n",
        );
        tokio::time::sleep(DEBOUNCE * 4).await;
        assert!(handle.current().numbers().lookup("555").is_some());
        assert_eq!(handle.loaded().version, version);

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("watcher stops")
            .unwrap();
    }
}
