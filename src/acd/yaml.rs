//! A YAML document read as a tree of nodes that all know their position, so
//! the queue and hours parsers can check every key and value and report all
//! problems at once instead of stopping at the first one.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::Pos;
use crate::ivr::duration::parse_duration;
use crate::ivr::{Diagnostic, Severity};

/// A node with its position.
pub(crate) type Y = Spanned<Node>;

/// One YAML node. Plain scalars are typed with YAML 1.2 rules (only
/// `true`/`false` are booleans).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Y>),
    Map(Vec<(Y, Y)>),
}

impl Node {
    /// What the node is, for messages: "expected a list, found a number".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "nothing",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "a number",
            Node::Float(_) => "a decimal number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar used as a name or key (`1` and `true` included).
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Int(i) => Some(i.to_string()),
            Node::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or_else(|_| Node::Str(v.to_string()), Node::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Y>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Y>()? {
            let value = map.next_value::<Y>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Where a node was written (its use site when it comes from an alias).
pub(crate) fn pos(y: &Y) -> Pos {
    Pos {
        line: usize::try_from(y.referenced.line()).unwrap_or(0),
        col: usize::try_from(y.referenced.column()).unwrap_or(0),
    }
}

/// Collects the problems of one file.
pub(crate) struct Diags<'a> {
    file: &'a Path,
    pub(crate) out: Vec<Diagnostic>,
}

impl<'a> Diags<'a> {
    pub(crate) fn new(file: &'a Path) -> Diags<'a> {
        Diags {
            file,
            out: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, at: Pos, message: impl Into<String>) {
        self.push(at, Severity::Error, message.into());
    }

    pub(crate) fn warning(&mut self, at: Pos, message: impl Into<String>) {
        self.push(at, Severity::Warning, message.into());
    }

    fn push(&mut self, at: Pos, severity: Severity, message: String) {
        self.out.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: at.line,
            col: at.col,
            severity,
            message,
        });
    }

    /// Reports `y` as having the wrong shape.
    pub(crate) fn expected(&mut self, y: &Y, what: &str, expected: &str) {
        self.error(
            pos(y),
            format!("{what}: expected {expected}, found {}", y.value.kind()),
        );
    }
}

/// Parses `text` and returns the entries of its single top-level key `top`
/// (`queues` or `hours`). An empty file or an empty `top` gives no entries.
pub(crate) fn top_entries(text: &str, top: &str, diags: &mut Diags) -> Vec<(Y, Y)> {
    let options = serde_saphyr::Options {
        with_snippet: false,
        strict_booleans: true,
        // Duplicates reach the parsers, which report them with both places.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        ..serde_saphyr::Options::default()
    };
    let doc: Y = match serde_saphyr::from_str_with_options(text, options) {
        Ok(doc) => doc,
        Err(e) => {
            let at = e
                .location()
                .map(|l| Pos {
                    line: usize::try_from(l.line()).unwrap_or(0),
                    col: usize::try_from(l.column()).unwrap_or(0),
                })
                .unwrap_or_default();
            let full = e.to_string();
            let suffix = format!(" at line {}, column {}", at.line, at.col);
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            diags.error(at, message);
            return Vec::new();
        }
    };
    let entries = match doc.value {
        Node::Null => return Vec::new(),
        Node::Map(entries) => entries,
        _ => {
            diags.expected(&doc, "file", &format!("a mapping with the key `{top}`"));
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for (k, v) in entries {
        if k.value.scalar_text().as_deref() == Some(top) {
            if !found.is_empty() {
                diags.error(pos(&k), format!("`{top}` is given twice"));
                continue;
            }
            match v.value {
                Node::Null => {}
                Node::Map(inner) => found = inner,
                _ => diags.expected(&v, &format!("`{top}`"), "a mapping of names"),
            }
        } else {
            diags.error(
                pos(&k),
                format!("unknown key {}: expected `{top}`", show_key(&k)),
            );
        }
    }
    found
}

/// A key as written, for messages.
pub(crate) fn show_key(k: &Y) -> String {
    match k.value.scalar_text() {
        Some(s) => format!("`{s}`"),
        None => k.value.kind().to_owned(),
    }
}

/// The checked keys of one mapping: unknown keys (with a suggestion),
/// non-scalar keys and duplicates are reported as they are read.
pub(crate) struct Fields<'a> {
    entries: Vec<(&'static str, &'a Y, &'a Y)>,
}

impl<'a> Fields<'a> {
    /// Reads `y` as a mapping whose keys must be among `allowed`; `what`
    /// names it in messages. `None` (reported) when `y` is not a mapping.
    pub(crate) fn read(
        y: &'a Y,
        what: &str,
        allowed: &[&'static str],
        diags: &mut Diags,
    ) -> Option<Fields<'a>> {
        let Node::Map(entries) = &y.value else {
            diags.expected(y, what, "a mapping");
            return None;
        };
        let mut out: Vec<(&'static str, &'a Y, &'a Y)> = Vec::new();
        for (k, v) in entries {
            let text = k.value.scalar_text().unwrap_or_default();
            match allowed.iter().find(|a| **a == text) {
                Some(name) => {
                    if let Some((_, first, _)) = out.iter().find(|(n, _, _)| n == name) {
                        let first = pos(first);
                        diags.error(
                            pos(k),
                            format!(
                                "`{name}` is given twice in {what} (first at line {}, column {})",
                                first.line, first.col
                            ),
                        );
                    } else {
                        out.push((name, k, v));
                    }
                }
                None => {
                    let hint = closest(&text, allowed)
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default();
                    diags.error(
                        pos(k),
                        format!(
                            "unknown key {} in {what}{hint} (known keys: {})",
                            show_key(k),
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        Some(Fields { entries: out })
    }

    /// The value of `key`, if given.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Y> {
        self.entries
            .iter()
            .find(|(n, _, _)| *n == key)
            .map(|(_, _, v)| *v)
    }
}

/// The allowed name closest to a misspelt `text` (at most two edits away).
fn closest<'a>(text: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(text, a), *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Levenshtein distance, for "did you mean" hints on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            let del = prev[j + 1] + 1;
            let ins = cur[j] + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A duration (`500ms`, `5s`, `2m`, `1h`); reported when malformed.
pub(crate) fn duration(y: &Y, what: &str, diags: &mut Diags) -> Option<Duration> {
    let text = match &y.value {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        _ => {
            diags.expected(y, what, "a duration such as 500ms, 5s or 2m");
            return None;
        }
    };
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.error(pos(y), format!("{what}: {e}"));
            None
        }
    }
}

/// `true` or `false`.
pub(crate) fn boolean(y: &Y, what: &str, diags: &mut Diags) -> Option<bool> {
    match y.value {
        Node::Bool(b) => Some(b),
        _ => {
            diags.expected(y, what, "true or false");
            None
        }
    }
}

/// A whole number within `min..=max`.
pub(crate) fn int(y: &Y, what: &str, min: i64, max: i64, diags: &mut Diags) -> Option<i64> {
    match y.value {
        Node::Int(i) if (min..=max).contains(&i) => Some(i),
        Node::Int(i) => {
            diags.error(
                pos(y),
                format!("{what}: {i} is out of range ({min} to {max})"),
            );
            None
        }
        _ => {
            diags.expected(y, what, &format!("a whole number from {min} to {max}"));
            None
        }
    }
}

/// A string (plain scalars that look like numbers count as their text).
pub(crate) fn string(y: &Y, what: &str, diags: &mut Diags) -> Option<String> {
    match &y.value {
        Node::Str(s) => Some(s.clone()),
        Node::Int(_) | Node::Bool(_) => y.value.scalar_text(),
        _ => {
            diags.expected(y, what, "a string");
            None
        }
    }
}

/// The items of a list; reported when `y` is not one.
pub(crate) fn list<'a>(y: &'a Y, what: &str, diags: &mut Diags) -> &'a [Y] {
    match &y.value {
        Node::Seq(items) => items,
        _ => {
            diags.expected(y, what, "a list");
            &[]
        }
    }
}
