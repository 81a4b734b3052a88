//! The number plan: which flow a dialled number (Request-URI user part)
//! enters, read from the `numbers` of every flow file in the flows folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::duration::parse_duration;

/// The part of a flow the SIP side needs to accept a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEntry {
    /// The flow's `name` (defaults to the file stem).
    pub name: String,
    /// How long the caller hears ringing before the switch answers.
    pub ring: Duration,
    /// Whether callers from untrusted sources may enter without digest
    /// authentication (DESIGN §3; default true).
    pub public: bool,
}

/// Dialled number → flow.
#[derive(Debug, Clone, Default)]
pub struct NumberPlan {
    exact: HashMap<String, FlowEntry>,
    any: Option<FlowEntry>,
}

/// A flow file the plan could not use.
#[derive(Debug, thiserror::Error)]
pub enum NumberPlanError {
    #[error("{path}: cannot read the flows folder: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Yaml {
        path: PathBuf,
        line: u64,
        col: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
struct FlowHead {
    name: Option<String>,
    #[serde(default)]
    numbers: Vec<String>,
    ring: Option<String>,
    public: Option<bool>,
}

impl NumberPlan {
    /// Reads every `*.yaml` flow file of `dir` (not `queues.yaml` or
    /// `hours.yaml`). Every problem is returned, not just the first.
    pub fn load(dir: &Path) -> Result<NumberPlan, Vec<NumberPlanError>> {
        let entries = std::fs::read_dir(dir).map_err(|source| {
            vec![NumberPlanError::Folder {
                path: dir.to_owned(),
                source,
            }]
        })?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_flow_file(p))
            .collect();
        files.sort();
        let mut plan = NumberPlan::default();
        let mut errors = Vec::new();
        for path in files {
            match read_head(&path) {
                Ok((entry, numbers)) => {
                    for number in numbers {
                        if let Err(message) = plan.insert(&number, entry.clone()) {
                            errors.push(NumberPlanError::Invalid {
                                path: path.clone(),
                                message,
                            });
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

    fn insert(&mut self, number: &str, entry: FlowEntry) -> Result<(), String> {
        if number == "*" {
            if let Some(old) = &self.any {
                return Err(format!("\"*\" is already taken by flow {}", old.name));
            }
            self.any = Some(entry);
            return Ok(());
        }
        let key = normalize(number);
        if let Some(old) = self.exact.get(&key) {
            return Err(format!(
                "number {number} is already served by flow {}",
                old.name
            ));
        }
        self.exact.insert(key, entry);
        Ok(())
    }

    /// The flow a dialled number enters, if any.
    pub fn lookup(&self, dialled: &str) -> Option<&FlowEntry> {
        self.exact.get(&normalize(dialled)).or(self.any.as_ref())
    }

    /// How many numbers are served (not counting `*`).
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.any.is_none()
    }
}

fn is_flow_file(path: &Path) -> bool {
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    yaml && stem != "queues" && stem != "hours"
}

/// Visual separators in dialled numbers are not significant (`+1 415-555`).
fn normalize(number: &str) -> String {
    number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect()
}

fn read_head(path: &Path) -> Result<(FlowEntry, Vec<String>), NumberPlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| NumberPlanError::Read {
        path: path.to_owned(),
        source,
    })?;
    let head: FlowHead = serde_saphyr::from_str(&text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        NumberPlanError::Yaml {
            path: path.to_owned(),
            line,
            col,
            message: e.to_string(),
        }
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("flow")
        .to_owned();
    let ring = match head.ring.as_deref() {
        Some(text) => parse_duration(text).map_err(|e| NumberPlanError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?,
        None => Duration::ZERO,
    };
    let entry = FlowEntry {
        name: head.name.unwrap_or(stem),
        ring,
        public: head.public.unwrap_or(true),
    };
    Ok((entry, head.numbers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_from(files: &[(&str, &str)]) -> Result<NumberPlan, Vec<NumberPlanError>> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sb-numbers-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let plan = NumberPlan::load(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        plan
    }

    #[test]
    fn numbers_map_to_flows_and_star_catches_the_rest() {
        let plan = plan_from(&[
            (
                "main.yaml",
                "numbers: [\"100\", \"+1 415-555-0100\"]\nring: 2s\nnodes: {}\n",
            ),
            ("other.yaml", "name: fallback\nnumbers: [\"*\"]\n"),
            ("queues.yaml", "queues: {}\n"),
        ])
        .expect("loads");
        let main = plan.lookup("100").expect("100");
        assert_eq!(main.name, "main");
        assert_eq!(main.ring, Duration::from_secs(2));
        assert!(main.public);
        assert_eq!(
            plan.lookup("+14155550100").map(|e| e.name.as_str()),
            Some("main")
        );
        assert_eq!(
            plan.lookup("999").map(|e| e.name.as_str()),
            Some("fallback")
        );
    }

    #[test]
    fn duplicate_numbers_and_bad_yaml_are_all_reported() {
        let errors = plan_from(&[
            ("a.yaml", "numbers: [\"100\"]\n"),
            ("b.yaml", "numbers: [\"100\"]\n"),
            ("c.yaml", "numbers: [\"101\"\n"),
            ("d.yaml", "numbers: [\"102\"]\nring: soon\n"),
        ])
        .expect_err("refused");
        assert_eq!(errors.len(), 3, "{errors:?}");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains("already served by flow a")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("c.yaml:")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("bad duration")), "{text:?}");
    }

    #[test]
    fn unknown_number_without_star_is_none() {
        let plan = plan_from(&[("main.yaml", "numbers: [\"100\"]\n")]).expect("loads");
        assert!(plan.lookup("555").is_none());
    }
}
