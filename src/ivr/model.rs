//! The typed flow model (DESIGN §5): what the loader builds from the flow
//! folder and the interpreter walks. Everything here is immutable once built
//! and shared behind `Arc`: a reload builds a new [`FlowSet`], and calls keep
//! the `Arc<Flow>` they started with.
//!
//! Node names are interned: a [`NodeId`] is the node's index in
//! [`Flow::nodes`], so following an edge is an index, never a string hash.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::expr::{Expr, Value};
use super::numbers::NumberPlan;
use crate::acd::hours::HoursSet;
use crate::acd::queues::QueueSet;

/// A node of one flow: its index in [`Flow::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Everything the flow folder defines: the flows, the number plan that
/// leads to them, and the queues and opening hours they use.
#[derive(Debug, Default)]
pub struct FlowSet {
    flows: Vec<Arc<Flow>>,
    by_name: HashMap<String, usize>,
    numbers: NumberPlan,
    queues: QueueSet,
    hours: HoursSet,
}

impl FlowSet {
    /// Every sound the set can play: prompts of every flow action and the
    /// queues' hold music, each once.
    pub fn sounds(&self) -> std::collections::BTreeSet<&str> {
        let mut out = std::collections::BTreeSet::new();
        for flow in &self.flows {
            for node in &flow.nodes {
                let lists: [&[String]; 2] = match &node.action {
                    Action::Play(p) => [&p.sounds, &[]],
                    Action::Menu(m) => [&m.prompt, &m.invalid],
                    Action::Collect(c) => [&c.prompt, &[]],
                    Action::Voicemail(v) => [&v.greeting, &[]],
                    _ => [&[], &[]],
                };
                out.extend(lists.into_iter().flatten().map(String::as_str));
            }
        }
        for queue in self.queues.iter() {
            if let Some(music) = &queue.music {
                out.insert(music.name.as_str());
            }
        }
        out
    }

    /// Builds the set from validated parts (flow names are unique).
    pub fn new(flows: Vec<Flow>, queues: QueueSet, hours: HoursSet) -> FlowSet {
        let flows: Vec<Arc<Flow>> = flows.into_iter().map(Arc::new).collect();
        let by_name = flows
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        let numbers = NumberPlan::from_flows(&flows);
        FlowSet {
            flows,
            by_name,
            numbers,
            queues,
            hours,
        }
    }

    /// The queues of `queues.yaml` (empty without one).
    pub fn queues(&self) -> &QueueSet {
        &self.queues
    }

    /// The opening hours of `hours.yaml` (empty without one).
    pub fn hours(&self) -> &HoursSet {
        &self.hours
    }

    /// The flow called `name`.
    pub fn flow(&self, name: &str) -> Option<&Arc<Flow>> {
        self.by_name.get(name).and_then(|&i| self.flows.get(i))
    }

    /// The flow a dialled number (Request-URI user part) enters.
    pub fn for_number(&self, dialled: &str) -> Option<&Arc<Flow>> {
        self.numbers
            .lookup(dialled)
            .and_then(|e| self.flow(&e.name))
    }

    /// All flows, in file name order.
    pub fn flows(&self) -> impl Iterator<Item = &Arc<Flow>> {
        self.flows.iter()
    }

    /// Dialled number → flow, for the SIP side.
    pub fn numbers(&self) -> &NumberPlan {
        &self.numbers
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// One flow file: a graph of nodes entered at `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Unique across the folder; defaults to the file stem.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Dialled numbers as written (`"*"` catches every other number).
    pub numbers: Vec<String>,
    pub start: NodeId,
    /// Indexed by [`NodeId`].
    pub nodes: Vec<Node>,
    /// Whether untrusted sources may call in without digest authentication
    /// (default true).
    pub public: bool,
    /// How long the caller hears ringing before the switch answers
    /// (default 0).
    pub ring: Duration,
}

impl Flow {
    /// The node `id` names; `None` only for an id of another flow.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// The id of the node called `name`.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().find(|n| n.name == name).map(|n| n.id)
    }
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: NodeId,
    /// The node's key in the file, for logs and the call's IVR path.
    pub name: String,
    /// Line of the node's key in its file.
    pub line: usize,
    pub action: Action,
    /// Where to go when the action finishes; `None` for actions that leave
    /// only through their own exits (menu, branch, hours, hangup).
    pub next: Option<NodeId>,
}

impl Node {
    /// Every node this one can lead to: `next` and the action's own exits.
    pub fn exits(&self) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self.next.into_iter().collect();
        match &self.action {
            Action::Menu(m) => {
                out.extend(m.options.iter().map(|&(_, n)| n));
                out.push(m.failure);
            }
            Action::Branch(b) => {
                out.extend(b.arms.iter().map(|(_, n)| *n));
                out.push(b.otherwise);
            }
            Action::Hours(h) => out.extend([h.open, h.closed]),
            Action::Queue(q) => out.extend(q.after),
            Action::Webhook(w) => out.extend(w.failure),
            Action::Play(_)
            | Action::Collect(_)
            | Action::Set(_)
            | Action::Transfer(_)
            | Action::Voicemail(_)
            | Action::Hangup => {}
        }
        out
    }
}

/// What a node does. Sounds are names relative to the sounds folder,
/// checked to exist when the flow was loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Plays the sounds in order, then `next`.
    Play(Play),
    /// Prompts for one key and goes to its option.
    Menu(Menu),
    /// Gathers digits into `vars.NAME`, then `next`.
    Collect(Collect),
    /// The first arm whose condition holds, else `otherwise`.
    Branch(Branch),
    /// `open` or `closed` by the named opening hours.
    Hours(HoursCheck),
    /// Sets `vars.NAME` for each pair, then `next`.
    Set(Vec<(String, Value)>),
    /// Waits in a queue for an agent; `next` when the queue gives up.
    Queue(QueueStep),
    /// Hands the call to an agent, extension or SIP URI; `next` on failure.
    Transfer(Transfer),
    /// Records a message, then `next`.
    Voicemail(Voicemail),
    /// POSTs the call context as JSON; the reply may set variables.
    Webhook(Webhook),
    /// Ends the call.
    Hangup,
}

/// `play`.
#[derive(Debug, Clone, PartialEq)]
pub struct Play {
    pub sounds: Vec<String>,
    /// Whether a DTMF key stops the prompt (default false).
    pub barge: bool,
}

/// `menu`: the caller presses one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Menu {
    /// Played at each try; a key cuts it.
    pub prompt: Vec<String>,
    /// Key (`0-9`, `*`, `#`) → node, sorted by key.
    pub options: Vec<(char, NodeId)>,
    /// How long to wait for a key after the prompt (default 5 s).
    pub timeout: Duration,
    /// How many times the prompt is played before `failure` (default 3).
    pub tries: u32,
    /// Played after a wrong key or a timeout, before the next try.
    pub invalid: Vec<String>,
    /// Where the caller goes when the tries run out.
    pub failure: NodeId,
}

impl Menu {
    /// The node a key leads to.
    pub fn choice(&self, key: char) -> Option<NodeId> {
        self.options
            .iter()
            .find(|&&(k, _)| k == key)
            .map(|&(_, n)| n)
    }
}

/// `collect`: digits into `vars.NAME`.
#[derive(Debug, Clone, PartialEq)]
pub struct Collect {
    /// Played first; the first key cuts it.
    pub prompt: Vec<String>,
    /// The variable name (without `vars.`).
    pub var: String,
    /// Fewest digits that count as an answer (default 1).
    pub min: u32,
    /// Collecting stops at this many digits.
    pub max: u32,
    /// Key that ends input early (default `#`; not stored in the variable).
    pub terminator: Option<char>,
    /// Wait for the first key after the prompt (default 5 s).
    pub timeout: Duration,
    /// Wait between keys (default 3 s).
    pub inter_digit: Duration,
}

/// `branch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub arms: Vec<(Expr, NodeId)>,
    pub otherwise: NodeId,
}

/// `hours`: which exit depends on the named opening hours (hours.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct HoursCheck {
    pub name: String,
    pub open: NodeId,
    pub closed: NodeId,
}

/// `queue`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStep {
    /// A queue of queues.yaml.
    pub queue: String,
    /// The flow's priority for this caller; the caller gets
    /// max(this, queue, thread, VIP).
    pub priority: Option<u8>,
    /// Where the caller goes after the agent hangs up (a survey, say);
    /// without it the call ends with the agent.
    pub after: Option<NodeId>,
}

/// `transfer`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub target: TransferTarget,
    /// How long the target may ring (default 30 s).
    pub timeout: Duration,
}

/// Who a transfer calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// An agent login.
    Agent(String),
    /// A digit-only extension.
    Extension(String),
    /// A `sip:` or `sips:` URI.
    Uri(String),
}

/// `voicemail`.
#[derive(Debug, Clone, PartialEq)]
pub struct Voicemail {
    /// Played before recording (may be empty).
    pub greeting: Vec<String>,
    /// Longest recording (default 120 s).
    pub max: Duration,
    /// Whether a beep marks the start of recording (default true).
    pub beep: bool,
}

/// `webhook`.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// An `http` or `https` URL.
    pub url: String,
    /// Longest wait for the reply (default 5 s).
    pub timeout: Duration,
    /// Where to go on timeout or an error reply; `next` when absent.
    pub failure: Option<NodeId>,
}
