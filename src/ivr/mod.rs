//! IVR flows (DESIGN §5): the typed model ([`model`]), the loader of flow
//! files ([`load`]), the condition language ([`expr`]) and the validator of
//! the whole flow folder ([`validate`]) behind `switchboard check`, startup
//! and hot reload ([`reload`]), and the `webhook` action's HTTP client
//! ([`webhook`]). The file format is documented in `docs/flows.md`.

pub mod duration;
pub mod expr;
pub mod interpreter;
pub mod load;
pub mod model;
pub mod numbers;
pub mod reload;
pub mod sounds;
pub mod validate;
pub mod webhook;
pub mod yaml;

#[cfg(test)]
mod testing;

use std::fmt;
use std::path::PathBuf;

pub use model::{Action, Flow, FlowSet, Node, NodeId};
pub use validate::{check, load_folder};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
