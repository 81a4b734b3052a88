//! IVR flows (DESIGN §5). For now only the `check` entry point of
//! `switchboard check`: it reports YAML syntax errors in the flow folder.
//! The flow loader and validator replace its body.

pub mod duration;
pub mod numbers;

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a problem is: errors make `check` exit 1 and a reload fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the flow folder, printed `FILE:LINE:COL: error: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {severity}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Validates the flow folder `dir` with prompts under `sounds`.
pub fn check(dir: &Path, _sounds: &Path) -> Vec<Diagnostic> {
    let error = |file: &Path, line, col, message: String| Diagnostic {
        file: file.to_path_buf(),
        line,
        col,
        severity: Severity::Error,
        message,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return vec![error(
                dir,
                0,
                0,
                format!("cannot read the flow folder: {e}"),
            )];
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                out.push(error(&file, 0, 0, format!("cannot read: {e}")));
                continue;
            }
        };
        let options = serde_saphyr::Options {
            with_snippet: false,
            ..serde_saphyr::Options::default()
        };
        if let Err(e) = serde_saphyr::from_str_with_options::<serde_json::Value>(&text, options) {
            let (line, col) = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((0, 0));
            let full = e.to_string();
            let suffix = format!(" at line {line}, column {col}");
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            out.push(error(&file, line, col, message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_display() {
        let d = Diagnostic {
            file: PathBuf::from("ivr-flows/main.yaml"),
            line: 3,
            col: 7,
            severity: Severity::Warning,
            message: "node `x` is unreachable".to_owned(),
        };
        assert_eq!(
            d.to_string(),
            "ivr-flows/main.yaml:3:7: warning: node `x` is unreachable"
        );
    }

    #[test]
    fn missing_folder_is_an_error() {
        let d = check(Path::new("/nonexistent/flows"), Path::new("sounds"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Error);
    }
}
