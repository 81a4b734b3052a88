//! Reading one flow file into the model (DESIGN §5). Every problem local to
//! the file is reported with its line and column: unknown keys, wrong types,
//! bad durations and digit keys, unknown nodes, bad conditions, sounds that
//! are missing or escape the sounds folder. What needs the other files
//! (queue and hours names, numbers and names across flows) and the graph
//! checks are left to `validate`, which gets the positions from [`FlowInfo`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::duration::parse_duration;
use super::model::{Action, Flow, HoursCheck, Node, NodeId, Play, QueueStep, Transfer};
use super::yaml::{self, Pos, Value, Yaml};
use super::{Diagnostic, Severity};

pub use super::sounds::Sounds;

/// Most nodes in one flow.
pub const MAX_NODES: usize = 10_000;
/// Most sounds in one prompt list, options in a menu, arms in a branch.
const MAX_LIST: usize = 100;

/// The action keys; a node has exactly one.
pub const ACTIONS: [&str; 11] = [
    "play",
    "menu",
    "collect",
    "branch",
    "hours",
    "set",
    "queue",
    "transfer",
    "voicemail",
    "webhook",
    "hangup",
];

/// Where things were written in a flow file and what they refer to in other
/// files, for the folder checks.
#[derive(Debug, Clone, Default)]
pub struct FlowInfo {
    pub file: PathBuf,
    /// Where the name was given (the file's start when it is the stem).
    pub name_pos: Pos,
    pub numbers: Vec<(String, Pos)>,
    pub start: Option<NodeId>,
    /// Indexed by [`NodeId`].
    pub nodes: Vec<NodeInfo>,
    /// Queue names of `queue` nodes and of `queue.NAME.*` variables.
    pub queues: Vec<(String, Pos)>,
    /// Hours names of `hours` nodes.
    pub hours: Vec<(String, Pos)>,
}

/// One node's key position, action and every exit that resolved.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub pos: Pos,
    /// The action key, when the node has exactly one.
    pub action: Option<&'static str>,
    pub exits: Vec<NodeId>,
}

/// Reads the flow file `path` with contents `text`. Returns the flow (with
/// placeholders where a node was broken) and its positions, or `None` when
/// the file is not a flow at all; problems go to `diags`.
pub fn load_flow(
    path: &Path,
    text: &str,
    sounds: &mut Sounds,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Flow, FlowInfo)> {
    let mut r = Reader {
        file: path,
        text,
        diags,
        sounds,
        names: HashMap::new(),
        exits: Vec::new(),
        info: FlowInfo {
            file: path.to_owned(),
            name_pos: Pos::new(1, 1),
            ..FlowInfo::default()
        },
    };
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            r.error(e.pos, e.message);
            return None;
        }
    };
    for (at, first, key) in yaml::duplicate_keys(&doc) {
        r.error(at, format!("key `{key}` is given twice (first at {first})"));
    }
    r.flow(&doc)
}

struct Reader<'a> {
    file: &'a Path,
    text: &'a str,
    diags: &'a mut Vec<Diagnostic>,
    sounds: &'a mut Sounds,
    names: HashMap<String, NodeId>,
    /// Exits resolved for the node being read.
    exits: Vec<NodeId>,
    info: FlowInfo,
}

/// The keys of one mapping, taken one by one; what is left is unknown.
struct Fields<'y> {
    pos: Pos,
    entries: Vec<(String, &'y Yaml, &'y Yaml)>,
    used: Vec<bool>,
}

impl<'y> Fields<'y> {
    fn get(&mut self, key: &str) -> Option<&'y Yaml> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        if let Some(u) = self.used.get_mut(i) {
            *u = true;
        }
        self.entries.get(i).map(|e| e.2)
    }

    fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, k, _)| k.pos)
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| k == key)
    }
}

/// What `next` means for an action.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The action can finish: `next` says where to go.
    Required,
    /// The action leaves only through its own exits.
    Never,
}

impl Reader<'_> {
    fn push(&mut self, pos: Pos, severity: Severity, message: String) {
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line: pos.line,
            col: pos.col,
            severity,
            message,
        });
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Error, message.into());
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Warning, message.into());
    }

    fn expected(&mut self, y: &Yaml, what: &str, expected: &str) {
        self.error(
            y.pos,
            format!("{what}: expected {expected}, found {}", y.value.kind()),
        );
    }

    /// The keys of a mapping (an empty value is an empty mapping).
    fn fields<'y>(&mut self, y: &'y Yaml, what: &str) -> Option<Fields<'y>> {
        let entries = match &y.value {
            Value::Map(entries) => entries.as_slice(),
            Value::Null => &[],
            _ => {
                self.expected(y, what, "a mapping");
                return None;
            }
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            match k.scalar_text() {
                Some(text) => out.push((text, k, v)),
                None => self.expected(k, &format!("key in {what}"), "a name"),
            }
        }
        let used = vec![false; out.len()];
        Some(Fields {
            pos: y.pos,
            entries: out,
            used,
        })
    }

    /// Reports every key of `f` that was not taken.
    fn unknown_keys(&mut self, f: &Fields, what: &str, allowed: &[&str]) {
        for ((key, k, _), used) in f.entries.iter().zip(&f.used) {
            if *used {
                continue;
            }
            let hint = match closest(key, allowed) {
                Some(near) => format!("; did you mean `{near}`?"),
                None if allowed.is_empty() => String::new(),
                None => format!(" (expected {})", allowed.join(", ")),
            };
            self.error(k.pos, format!("unknown key `{key}` in {what}{hint}"));
        }
    }

    fn string(&mut self, y: &Yaml, what: &str) -> Option<String> {
        match &y.value {
            Value::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            _ => {
                self.expected(y, what, "a non-empty string");
                None
            }
        }
    }

    fn boolean(&mut self, y: &Yaml, what: &str) -> Option<bool> {
        match y.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.expected(y, what, "true or false");
                None
            }
        }
    }

    fn uint(&mut self, y: &Yaml, what: &str, lo: u32, hi: u32) -> Option<u32> {
        match y.value {
            Value::Int(n) if n >= i64::from(lo) && n <= i64::from(hi) => u32::try_from(n).ok(),
            _ => {
                self.error(
                    y.pos,
                    format!("{what}: expected a whole number from {lo} to {hi}"),
                );
                None
            }
        }
    }

    /// A duration (`500ms`, `5s`, `2m`) between `lo` and `hi`.
    fn duration(&mut self, y: &Yaml, what: &str, lo: Duration, hi: Duration) -> Option<Duration> {
        let text = match &y.value {
            Value::Str(s) => s.as_str(),
            Value::Int(n) => {
                self.error(
                    y.pos,
                    format!("{what}: bad duration {n}: add a unit (ms, s, m or h), e.g. {n}s"),
                );
                return None;
            }
            _ => {
                self.expected(y, what, "a duration such as 5s");
                return None;
            }
        };
        match parse_duration(text) {
            Ok(d) if d >= lo && d <= hi => Some(d),
            Ok(_) => {
                self.error(
                    y.pos,
                    format!(
                        "{what}: {text} is out of range ({} to {})",
                        show(lo),
                        show(hi)
                    ),
                );
                None
            }
            Err(e) => {
                self.error(y.pos, format!("{what}: {e}"));
                None
            }
        }
    }

    /// One sound or a list of them; each must exist in the sounds folder.
    fn sounds(&mut self, y: &Yaml, what: &str) -> Option<Vec<String>> {
        let items: Vec<&Yaml> = match &y.value {
            Value::Seq(items) if !items.is_empty() && items.len() <= MAX_LIST => {
                items.iter().collect()
            }
            Value::Str(_) => vec![y],
            _ => {
                self.expected(
                    y,
                    what,
                    &format!("a sound name or a list of 1 to {MAX_LIST}"),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(name) = self.string(item, what) else {
                ok = false;
                continue;
            };
            if let Err(message) = self.sounds.check(&name) {
                self.error(item.pos, message);
                ok = false;
            }
            out.push(name);
        }
        ok.then_some(out)
    }

    /// A node name; it must be a node of this flow.
    fn target(&mut self, y: &Yaml, what: &str) -> Option<NodeId> {
        let Some(name) = y.scalar_text() else {
            self.expected(y, what, "a node name");
            return None;
        };
        match self.names.get(&name) {
            Some(&id) => {
                self.exits.push(id);
                Some(id)
            }
            None => {
                let names: Vec<&str> = self.names.keys().map(String::as_str).collect();
                let hint = closest(&name, &names)
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                self.error(y.pos, format!("{what}: unknown node `{name}`{hint}"));
                None
            }
        }
    }

    fn flow(&mut self, doc: &Yaml) -> Option<(Flow, FlowInfo)> {
        let mut top = match &doc.value {
            Value::Map(_) => self.fields(doc, "flow")?,
            _ => {
                self.expected(doc, "flow file", "a mapping with `start` and `nodes`");
                return None;
            }
        };
        let stem = self
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("flow")
            .to_owned();
        let name = match top.get("name") {
            Some(y) => {
                self.info.name_pos = y.pos;
                match self.string(y, "name") {
                    Some(n) if is_name(&n) => n,
                    Some(n) => {
                        self.error(
                            y.pos,
                            format!("bad flow name `{n}`: use letters, digits, `_`, `-` and `.`"),
                        );
                        stem
                    }
                    None => stem,
                }
            }
            None => stem,
        };
        if let Some(y) = top.get("description") {
            self.string(y, "description");
        }
        let numbers = match top.get("numbers") {
            Some(y) => self.numbers(y),
            None => {
                self.warning(
                    top.pos,
                    format!("flow `{name}` has no `numbers`: no call can enter it"),
                );
                Vec::new()
            }
        };
        let ring = match top.get("ring") {
            Some(y) => self
                .duration(y, "ring", Duration::ZERO, Duration::from_secs(120))
                .unwrap_or_default(),
            None => Duration::ZERO,
        };
        let public = match top.get("public") {
            Some(y) => self.boolean(y, "public").unwrap_or(true),
            None => true,
        };
        let start_y = top.get("start");
        let nodes_y = top.get("nodes");
        self.unknown_keys(
            &top,
            "the flow",
            &[
                "name",
                "description",
                "numbers",
                "start",
                "ring",
                "public",
                "nodes",
            ],
        );

        // Pass 1: intern the node names so references resolve in any order.
        let mut entries: Vec<(&Yaml, &Yaml)> = Vec::new();
        match nodes_y {
            None => self.error(top.pos, "missing `nodes`"),
            Some(y) => match &y.value {
                Value::Map(m) if m.is_empty() => self.error(y.pos, "`nodes` is empty"),
                Value::Map(m) if m.len() > MAX_NODES => {
                    self.error(y.pos, format!("more than {MAX_NODES} nodes"))
                }
                Value::Map(m) => entries.extend(m.iter().map(|(k, v)| (k, v))),
                _ => self.expected(y, "nodes", "a mapping of node names to nodes"),
            },
        }
        for (k, _) in &entries {
            let Some(key) = k.scalar_text() else {
                self.expected(k, "node name", "a string");
                continue;
            };
            if self.names.contains_key(&key) {
                continue; // reported as a duplicate key
            }
            let id = NodeId(self.info.nodes.len() as u32);
            self.names.insert(key.clone(), id);
            self.info.nodes.push(NodeInfo {
                name: key,
                pos: k.pos,
                ..NodeInfo::default()
            });
        }

        let start = match start_y {
            None => {
                self.error(top.pos, "missing `start` (the first node)");
                None
            }
            Some(y) => self.target(y, "start"),
        };
        self.exits.clear();
        self.info.start = start;

        // Pass 2: the nodes.
        let mut nodes = Vec::new();
        for (k, v) in &entries {
            let Some(key) = k.scalar_text() else { continue };
            let Some(&id) = self.names.get(&key) else {
                continue;
            };
            if nodes.len() != id.index() {
                continue; // a repeated key: the first one counts
            }
            nodes.push(self.node(id, &key, k.pos, v));
        }
        let flow = Flow {
            name,
            file: self.file.to_owned(),
            numbers: numbers.iter().map(|(n, _)| n.clone()).collect(),
            start: start.unwrap_or(NodeId(0)),
            nodes,
            public,
            ring,
        };
        self.info.numbers = numbers;
        Some((flow, std::mem::take(&mut self.info)))
    }

    fn numbers(&mut self, y: &Yaml) -> Vec<(String, Pos)> {
        let items = match &y.value {
            Value::Seq(items) if items.len() <= 1000 => items,
            _ => {
                self.expected(y, "numbers", "a list of dialled numbers");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::Str(n) if is_number(n) => out.push((n.clone(), item.pos)),
                Value::Str(n) => self.error(
                    item.pos,
                    format!(
                        "bad number `{n}`: use digits, +, *, # and letters (or \"*\" for any other number)"
                    ),
                ),
                Value::Int(n) => self.error(
                    item.pos,
                    format!("write dialled numbers in quotes: \"{n}\" (YAML reads {n} as a number and drops a leading +)"),
                ),
                _ => self.expected(item, "number", "a dialled number in quotes"),
            }
        }
        out
    }

    fn node(&mut self, id: NodeId, name: &str, pos: Pos, y: &Yaml) -> Node {
        self.exits.clear();
        let (action, next) = self
            .node_body(id, name, pos, y)
            .unwrap_or((Action::Hangup, None));
        if let Some(info) = self.info.nodes.get_mut(id.index()) {
            info.exits = std::mem::take(&mut self.exits);
        }
        Node {
            id,
            name: name.to_owned(),
            line: pos.line,
            action,
            next,
        }
    }

    fn node_body(
        &mut self,
        id: NodeId,
        name: &str,
        pos: Pos,
        y: &Yaml,
    ) -> Option<(Action, Option<NodeId>)> {
        let what = format!("node `{name}`");
        let mut f = self.fields(y, &what)?;
        let present: Vec<(&'static str, Pos)> = ACTIONS
            .iter()
            .filter_map(|&a| f.key_pos(a).map(|p| (a, p)))
            .collect();
        let (kind, _) = match present.as_slice() {
            [] => {
                self.error(
                    pos,
                    format!(
                        "{what} has no action: give it one of {}",
                        ACTIONS.join(", ")
                    ),
                );
                // Still follow `next`, so what it leads to is not unreachable.
                if let Some(n) = f.get("next") {
                    self.target(n, "next");
                }
                return None;
            }
            [one] => *one,
            [(first, _), (second, at), ..] => {
                self.error(
                    *at,
                    format!(
                        "{what} has two actions, `{first}` and `{second}`: a node has exactly one"
                    ),
                );
                if let Some(n) = f.get("next") {
                    self.target(n, "next");
                }
                return None;
            }
        };
        if let Some(info) = self.info.nodes.get_mut(id.index()) {
            info.action = Some(kind);
        }
        let value = f.get(kind)?;
        let (action, siblings, next_rule) = match kind {
            "play" => {
                let sounds = self.sounds(value, "play");
                let barge = f.get("barge").and_then(|b| self.boolean(b, "barge"));
                let action = sounds.map(|sounds| {
                    Action::Play(Play {
                        sounds,
                        barge: barge.unwrap_or(false),
                    })
                });
                (action, &["barge"][..], Next::Required)
            }
            "menu" => (self.menu(value), &[][..], Next::Never),
            "collect" => (self.collect(value), &[][..], Next::Required),
            "branch" => (self.branch(value), &[][..], Next::Never),
            "hours" => {
                let hours = self.string(value, "hours");
                if let Some(h) = &hours {
                    self.info.hours.push((h.clone(), value.pos));
                }
                let open = self.exit(&mut f, "open", &what);
                let closed = self.exit(&mut f, "closed", &what);
                let action = match (hours, open, closed) {
                    (Some(name), Some(open), Some(closed)) => {
                        Some(Action::Hours(HoursCheck { name, open, closed }))
                    }
                    _ => None,
                };
                (action, &["open", "closed"][..], Next::Never)
            }
            "set" => (self.set(value), &[][..], Next::Required),
            "queue" => {
                let queue = self.string(value, "queue");
                if let Some(q) = &queue {
                    self.info.queues.push((q.clone(), value.pos));
                }
                let priority = match f.get("priority") {
                    Some(p) => self.uint(p, "priority", 0, 255).map(|p| Some(p as u8)),
                    None => Some(None),
                };
                let after = match f.get("after") {
                    Some(a) => self.target(a, "after").map(Some),
                    None => Some(None),
                };
                let action = match (queue, priority, after) {
                    (Some(queue), Some(priority), Some(after)) => Some(Action::Queue(QueueStep {
                        queue,
                        priority,
                        after,
                    })),
                    _ => None,
                };
                (action, &["priority", "after"][..], Next::Required)
            }
            "transfer" => {
                let timeout = match f.get("timeout") {
                    Some(t) => self.duration(
                        t,
                        "transfer timeout",
                        Duration::from_secs(1),
                        Duration::from_secs(300),
                    ),
                    None => Some(Duration::from_secs(30)),
                };
                let target = self.transfer_target(value);
                let action = match (target, timeout) {
                    (Some(target), Some(timeout)) => {
                        Some(Action::Transfer(Transfer { target, timeout }))
                    }
                    _ => None,
                };
                (action, &["timeout"][..], Next::Required)
            }
            "voicemail" => (self.voicemail(value), &[][..], Next::Required),
            "webhook" => (self.webhook(value), &[][..], Next::Required),
            _ => {
                // hangup
                let empty = match &value.value {
                    Value::Null => true,
                    Value::Map(m) => m.is_empty(),
                    _ => false,
                };
                if !empty {
                    self.error(
                        value.pos,
                        "hangup takes no settings: write `hangup: {}`".to_owned(),
                    );
                }
                (Some(Action::Hangup), &[][..], Next::Never)
            }
        };
        let next = match (next_rule, f.get("next")) {
            (Next::Required, Some(n)) => self.target(n, "next"),
            (Next::Required, None) => {
                self.error(
                    pos,
                    format!("{what} needs `next`: where the call goes when the {kind} finishes"),
                );
                None
            }
            (Next::Never, Some(n)) => {
                let why = match kind {
                    "menu" => "a menu leaves through its options and `failure`",
                    "branch" => "a branch leaves through its `then` and `else` nodes",
                    "hours" => "an hours node leaves through `open` and `closed`",
                    _ => "a hangup ends the call",
                };
                self.error(
                    f.key_pos("next").unwrap_or(n.pos),
                    format!("`next` is never taken here: {why}"),
                );
                None
            }
            (Next::Never, None) => None,
        };
        let mut allowed: Vec<&str> = vec![kind];
        allowed.extend_from_slice(siblings);
        if next_rule == Next::Required {
            allowed.push("next");
        }
        // Keys of other actions are reported above as a second action.
        for (a, _) in &present {
            f.get(a);
        }
        self.unknown_keys(&f, &format!("a {kind} node"), &allowed);
        let action = action?;
        if next_rule == Next::Required && next.is_none() {
            return None;
        }
        Some((action, next))
    }

    /// A required exit key of the node map (`open`, `closed`).
    fn exit(&mut self, f: &mut Fields, key: &str, what: &str) -> Option<NodeId> {
        match f.get(key) {
            Some(y) => self.target(y, key),
            None => {
                self.error(f.pos, format!("{what} needs `{key}`"));
                None
            }
        }
    }
}

/// A flow name or agent login: letters, digits, `_`, `-`, `.` (1–64).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A dialled number: `*`, or digits, `+`, `*`, `#`, letters and the visual
/// separators `numbers::normalize` drops.
fn is_number(s: &str) -> bool {
    let core = super::numbers::normalize(s);
    !core.is_empty()
        && core.len() <= 64
        && core
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'*' | b'#' | b'_'))
}

fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.is_zero() {
        format!("{}ms", d.as_millis())
    } else if d.as_secs().is_multiple_of(60) {
        format!("{}m", d.as_secs() / 60)
    } else {
        format!("{}s", d.as_secs())
    }
}

/// The candidate nearest to `word` by edit distance, if close (a typo).
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if word.len() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit (`nxet`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let w = b.len() + 1;
    // d[i * w + j]: distance between a[..i] and b[..j].
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * w];
    let at = |i: usize, j: usize| i * w + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1)
                .min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = best;
        }
    }
    d[at(a.len(), b.len())]
}

mod actions;
#[cfg(test)]
mod tests;
