//! The number plan: which flow a dialled number (Request-URI user part)
//! enters, built from the `numbers` of the loaded flows (DESIGN §5).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::model::Flow;

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

impl NumberPlan {
    /// The plan of validated flows (numbers are unique across them; should
    /// one repeat, the first flow keeps it).
    pub fn from_flows(flows: &[Arc<Flow>]) -> NumberPlan {
        let mut plan = NumberPlan::default();
        for flow in flows {
            let entry = FlowEntry {
                name: flow.name.clone(),
                ring: flow.ring,
                public: flow.public,
            };
            for number in &flow.numbers {
                if number == "*" {
                    plan.any.get_or_insert_with(|| entry.clone());
                } else {
                    plan.exact
                        .entry(normalize(number))
                        .or_insert_with(|| entry.clone());
                }
            }
        }
        plan
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

/// Visual separators in dialled numbers are not significant (`+1 415-555`):
/// two numbers are the same when they normalize equal.
pub fn normalize(number: &str) -> String {
    number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::model::{Action, Node, NodeId};

    fn flow(name: &str, numbers: &[&str], ring: u64, public: bool) -> Arc<Flow> {
        Arc::new(Flow {
            name: name.to_owned(),
            file: format!("{name}.yaml").into(),
            numbers: numbers.iter().map(|n| n.to_string()).collect(),
            start: NodeId(0),
            nodes: vec![Node {
                id: NodeId(0),
                name: "bye".into(),
                line: 1,
                action: Action::Hangup,
                next: None,
            }],
            public,
            ring: Duration::from_secs(ring),
        })
    }

    #[test]
    fn numbers_map_to_flows_and_star_catches_the_rest() {
        let plan = NumberPlan::from_flows(&[
            flow("main", &["100", "+1 415-555-0100"], 2, true),
            flow("fallback", &["*"], 0, false),
        ]);
        let main = plan.lookup("100").expect("100");
        assert_eq!(main.name, "main");
        assert_eq!(main.ring, Duration::from_secs(2));
        assert!(main.public);
        assert_eq!(
            plan.lookup("+14155550100").map(|e| e.name.as_str()),
            Some("main")
        );
        let other = plan.lookup("999").expect("star");
        assert_eq!(other.name, "fallback");
        assert!(!other.public);
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn unknown_number_without_star_is_none() {
        let plan = NumberPlan::from_flows(&[flow("main", &["100"], 0, true)]);
        assert!(plan.lookup("555").is_none());
        assert!(NumberPlan::default().is_empty());
    }

    #[test]
    fn first_flow_keeps_a_repeated_number() {
        let plan =
            NumberPlan::from_flows(&[flow("a", &["100"], 0, true), flow("b", &["1-00"], 0, true)]);
        assert_eq!(plan.lookup("100").map(|e| e.name.as_str()), Some("a"));
    }
}
