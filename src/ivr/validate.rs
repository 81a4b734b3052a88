//! Validating the whole flow folder together (DESIGN §5, §6): every flow
//! file, `queues.yaml` and `hours.yaml`, and the sounds they name. Each
//! problem is a [`Diagnostic`] with its file, line and column, and all of
//! them are reported in one pass. The folder is usable only when no
//! diagnostic is an error; warnings (an unreachable node, a flow no number
//! enters) do not stop it.
//!
//! A loop is an error unless a `menu` or `collect` is on it: those are the
//! only actions that wait for the caller's keys. A loop of prompts, branches,
//! queues or webhooks would keep a caller (and the switch) busy forever
//! without the caller being able to leave it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::load::{self, FlowInfo};
use super::model::{Flow, FlowSet, NodeId};
use super::numbers::normalize;
use super::sounds::Sounds;
use super::yaml::{MAX_FILE_BYTES, Pos};
use super::{Diagnostic, Severity};
use crate::acd::hours::{HoursSet, parse_hours_file};
use crate::acd::queues::{QueueSet, parse_queues_file};

/// Most files read from the flow folder.
const MAX_FILES: usize = 1000;

/// Loads and validates the folder `dir` with sounds under `sounds`. The set
/// is `Some` when nothing is an error; the diagnostics (warnings, or the
/// errors that stopped it) are sorted by file, line and column.
pub fn load_folder(dir: &Path, sounds: &Path) -> (Option<FlowSet>, Vec<Diagnostic>) {
    let mut folder = Folder {
        dir: dir.to_owned(),
        diags: Vec::new(),
        sounds: Sounds::new(sounds),
    };
    let set = folder.load();
    let mut diags = folder.diags;
    diags.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    let failed = diags.iter().any(|d| d.severity == Severity::Error);
    (set.filter(|_| !failed), diags)
}

/// Every problem of the folder `dir` (what `switchboard check` prints).
pub fn check(dir: &Path, sounds: &Path) -> Vec<Diagnostic> {
    load_folder(dir, sounds).1
}

struct Folder {
    dir: PathBuf,
    diags: Vec<Diagnostic>,
    sounds: Sounds,
}

/// A file of the folder that parsed far enough to take part in the checks.
struct Loaded<T> {
    file: PathBuf,
    value: T,
}

impl Folder {
    fn error(&mut self, file: &Path, pos: Pos, message: impl Into<String>) {
        self.push(file, pos, Severity::Error, message.into());
    }

    fn warning(&mut self, file: &Path, pos: Pos, message: impl Into<String>) {
        self.push(file, pos, Severity::Warning, message.into());
    }

    fn push(&mut self, file: &Path, pos: Pos, severity: Severity, message: String) {
        self.diags.push(Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            col: pos.col,
            severity,
            message,
        });
    }

    fn read(&mut self, path: &Path) -> Option<String> {
        let too_big = std::fs::metadata(path)
            .map(|m| m.len() > MAX_FILE_BYTES as u64)
            .unwrap_or(false);
        if too_big {
            self.error(
                path,
                Pos::new(1, 1),
                format!("file is larger than {MAX_FILE_BYTES} bytes"),
            );
            return None;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                self.error(path, Pos::new(1, 1), format!("cannot read: {e}"));
                None
            }
        }
    }

    fn load(&mut self) -> Option<FlowSet> {
        let dir = self.dir.clone();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.error(
                    &dir,
                    Pos::new(0, 0),
                    format!("cannot read the flow folder: {e}"),
                );
                return None;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_yaml(p))
            .collect();
        files.sort();
        if files.len() > MAX_FILES {
            self.error(
                &dir,
                Pos::new(0, 0),
                format!("more than {MAX_FILES} YAML files in the flow folder"),
            );
            files.truncate(MAX_FILES);
        }

        let mut flows: Vec<(Flow, FlowInfo)> = Vec::new();
        let mut queues: Option<Loaded<QueueSet>> = None;
        let mut hours: Option<Loaded<HoursSet>> = None;
        for path in files {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            match stem {
                "queues" | "hours" => {
                    if let Some(first) = match stem {
                        "queues" => queues.as_ref().map(|q| q.file.clone()),
                        _ => hours.as_ref().map(|h| h.file.clone()),
                    } {
                        self.error(
                            &path,
                            Pos::new(1, 1),
                            format!("{stem} are already read from {}", first.display()),
                        );
                        continue;
                    }
                    let Some(text) = self.read(&path) else {
                        continue;
                    };
                    if stem == "queues" {
                        let (set, diags) = parse_queues_file(&path, &text);
                        self.diags.extend(diags);
                        queues = Some(Loaded {
                            file: path,
                            value: set,
                        });
                    } else {
                        let (set, diags) = parse_hours_file(&path, &text);
                        self.diags.extend(diags);
                        hours = Some(Loaded {
                            file: path,
                            value: set,
                        });
                    }
                }
                _ => {
                    let Some(text) = self.read(&path) else {
                        continue;
                    };
                    if let Some(flow) =
                        load::load_flow(&path, &text, &mut self.sounds, &mut self.diags)
                    {
                        flows.push(flow);
                    }
                }
            }
        }
        if flows.is_empty() && !self.diags.iter().any(|d| d.severity == Severity::Error) {
            self.warning(
                &dir,
                Pos::new(0, 0),
                "no flow files: no call can be answered",
            );
        }

        self.unique_names(&flows);
        self.unique_numbers(&flows);
        self.references(&flows, queues.as_ref(), hours.as_ref());
        for (flow, info) in &flows {
            self.graph(flow, info);
        }

        let queues = queues.map(|q| q.value).unwrap_or_default();
        let hours = hours.map(|h| h.value).unwrap_or_default();
        Some(FlowSet::new(
            flows.into_iter().map(|(f, _)| f).collect(),
            queues,
            hours,
        ))
    }

    fn unique_names(&mut self, flows: &[(Flow, FlowInfo)]) {
        let mut seen: HashMap<&str, (&Path, Pos)> = HashMap::new();
        for (flow, info) in flows {
            match seen.get(flow.name.as_str()) {
                Some(&(file, pos)) => {
                    let message = format!(
                        "flow name `{}` is also used by {}:{pos}",
                        flow.name,
                        file.display()
                    );
                    self.error(&info.file, info.name_pos, message);
                }
                None => {
                    seen.insert(&flow.name, (&info.file, info.name_pos));
                }
            }
        }
    }

    fn unique_numbers(&mut self, flows: &[(Flow, FlowInfo)]) {
        let mut seen: HashMap<String, (&str, &Path, Pos)> = HashMap::new();
        for (flow, info) in flows {
            for (number, pos) in &info.numbers {
                let key = normalize(number);
                match seen.get(&key) {
                    Some(&(other, file, first)) => {
                        let message = format!(
                            "number {number} is also dialled into flow `{other}` at {}:{first}",
                            file.display()
                        );
                        self.error(&info.file, *pos, message);
                    }
                    None => {
                        seen.insert(key, (&flow.name, &info.file, *pos));
                    }
                }
            }
        }
    }

    /// Queue and hours names across files, and the music of each queue.
    fn references(
        &mut self,
        flows: &[(Flow, FlowInfo)],
        queues: Option<&Loaded<QueueSet>>,
        hours: Option<&Loaded<HoursSet>>,
    ) {
        let queue_names: Option<HashSet<&str>> = queues.map(|q| q.value.names().collect());
        let hours_names: Option<HashSet<&str>> = hours.map(|h| h.value.names().collect());
        for (_, info) in flows {
            for (name, pos) in &info.queues {
                if let Some(message) = unknown("queue", name, queue_names.as_ref(), "queues.yaml") {
                    self.error(&info.file, *pos, message);
                }
            }
            for (name, pos) in &info.hours {
                if let Some(message) = unknown("hours", name, hours_names.as_ref(), "hours.yaml") {
                    self.error(&info.file, *pos, message);
                }
            }
        }
        let Some(queues) = queues else { return };
        for q in queues.value.iter() {
            if let Some(h) = &q.hours
                && let Some(message) = unknown("hours", &h.name, hours_names.as_ref(), "hours.yaml")
            {
                self.error(&queues.file, Pos::new(h.pos.line, h.pos.col), message);
            }
            if let Some(m) = &q.music
                && let Err(message) = self.sounds.check(&m.name)
            {
                self.error(&queues.file, Pos::new(m.pos.line, m.pos.col), message);
            }
            // Announcements are said from the `announce/` recordings; a
            // missing one leaves its part of the sentence out.
            if let Some(a) = q.announce {
                let missing: Vec<String> = crate::acd::announce::needed(a.position, a.wait_time)
                    .into_iter()
                    .filter(|name| self.sounds.check(name).is_err())
                    .collect();
                if !missing.is_empty() {
                    let shown = missing
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ");
                    let more = match missing.len() {
                        n if n > 3 => format!(" and {} more", n - 3),
                        _ => String::new(),
                    };
                    self.warning(
                        &queues.file,
                        Pos::new(q.pos.line, q.pos.col),
                        format!(
                            "queue `{}` has `announce` but the sounds folder lacks {shown}{more}: the parts of the announcement that need them are left out",
                            q.name
                        ),
                    );
                }
            }
        }
    }

    /// Unreachable nodes (warnings) and loops without input (errors).
    fn graph(&mut self, flow: &Flow, info: &FlowInfo) {
        let n = info.nodes.len();
        // A flow with errors often has broken edges (a misspelt `next`):
        // unreachable nodes are reported once it reads cleanly.
        let clean = !self
            .diags
            .iter()
            .any(|d| d.file == info.file && d.severity == Severity::Error);
        if let Some(start) = info.start.filter(|_| clean) {
            let mut seen = vec![false; n];
            let mut stack = vec![start];
            while let Some(id) = stack.pop() {
                let Some(slot) = seen.get_mut(id.index()) else {
                    continue;
                };
                if std::mem::replace(slot, true) {
                    continue;
                }
                if let Some(node) = info.nodes.get(id.index()) {
                    stack.extend(node.exits.iter().copied());
                }
            }
            for (node, seen) in info.nodes.iter().zip(&seen) {
                if !seen {
                    let message = format!(
                        "node `{}` is unreachable from `start` in flow `{}`",
                        node.name, flow.name
                    );
                    self.warning(&info.file, node.pos, message);
                }
            }
        }

        // Loops among nodes that never wait for a key. A node whose action
        // could not be read counts as waiting, so one mistake is not
        // reported twice.
        let waits = |id: NodeId| {
            info.nodes
                .get(id.index())
                .is_none_or(|node| matches!(node.action, None | Some("menu" | "collect")))
        };
        let edges: Vec<Vec<NodeId>> = (0..n)
            .map(|i| {
                let id = NodeId(i as u32);
                if waits(id) {
                    return Vec::new();
                }
                info.nodes
                    .get(i)
                    .map(|node| node.exits.iter().copied().filter(|&e| !waits(e)).collect())
                    .unwrap_or_default()
            })
            .collect();
        for mut component in cycles(&edges) {
            component.sort();
            let names: Vec<&str> = component
                .iter()
                .filter_map(|id| info.nodes.get(id.index()).map(|n| n.name.as_str()))
                .collect();
            let Some(first) = component.first().and_then(|id| info.nodes.get(id.index())) else {
                continue;
            };
            let message = if names.len() == 1 {
                format!(
                    "node `{}` leads back to itself with no menu or collect in between: the caller could never leave",
                    first.name
                )
            } else {
                format!(
                    "nodes {} form a loop with no menu or collect in it: the caller could never leave",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.error(&info.file, first.pos, message);
        }
    }
}

/// Why `name` is not among `known` (`None` when it is).
fn unknown(kind: &str, name: &str, known: Option<&HashSet<&str>>, file: &str) -> Option<String> {
    match known {
        None => Some(format!(
            "unknown {kind} `{name}`: there is no {file} in the folder"
        )),
        Some(set) if set.contains(name) => None,
        Some(set) => {
            let mut names: Vec<&str> = set.iter().copied().collect();
            names.sort_unstable();
            let list = if names.is_empty() {
                format!("{file} defines none")
            } else {
                format!("{file} defines {}", names.join(", "))
            };
            Some(format!("unknown {kind} `{name}` ({list})"))
        }
    }
}

fn is_yaml(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    yaml && !hidden && path.is_file()
}

/// The strongly connected components of `edges` that contain a cycle (two
/// or more nodes, or one with an edge to itself); Tarjan's algorithm
/// without recursion.
fn cycles(edges: &[Vec<NodeId>]) -> Vec<Vec<NodeId>> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next_index = 0;
    let mut out = Vec::new();
    let succ = |v: usize, i: usize| edges.get(v).and_then(|e| e.get(i)).map(|id| id.index());
    for root in 0..n {
        if index.get(root) != Some(&NONE) {
            continue;
        }
        // (node, position in its successor list)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(v, i)) = work.last() {
            if i == 0 && index[v] == NONE {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(w) = succ(v, i) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if w >= n {
                    continue;
                }
                if index[w] == NONE {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(NodeId(w as u32));
                    if w == v {
                        break;
                    }
                }
                let looped = component.len() > 1
                    || edges
                        .get(v)
                        .is_some_and(|e| e.iter().any(|x| x.index() == v));
                if looped {
                    out.push(component);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
