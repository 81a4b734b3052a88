//! A YAML document as a tree of values that each know their line and column,
//! read with serde-saphyr. Flow files are converted from this tree by hand
//! rather than by `#[derive(Deserialize)]` so that one pass reports every
//! problem of a file (unknown keys, wrong types, bad values) with its
//! position, instead of stopping at the first one.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Largest flow, queue or hours file read (bytes).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted.
const MAX_DEPTH: usize = 48;
/// Most YAML nodes (scalars, sequences, mappings) in one file.
const MAX_NODES: usize = 100_000;

/// Where a value starts: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub const fn new(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Yaml {
    pub pos: Pos,
    pub value: Value,
}

/// The kinds of YAML value. Plain scalars are typed the YAML 1.2 way
/// (`true`, `12`, `1.5`, `~`); quoted scalars are always strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    /// Entries in document order (duplicate keys are refused by the parser).
    Map(Vec<(Yaml, Yaml)>),
}

impl Value {
    /// What the value is, for messages: "a string", "a mapping", ….
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "empty",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Yaml {
    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(Yaml, Yaml)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// A scalar as text (strings, numbers and booleans), for keys.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(n) => Some(n.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// A document that is not well-formed YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document into a positioned tree.
pub fn parse(text: &str) -> Result<Yaml, SyntaxError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(SyntaxError {
            pos: Pos::new(1, 1),
            message: format!("file is larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    let options = serde_saphyr::Options {
        with_snippet: false,
        strict_booleans: true,
        // Repeated keys reach the tree; `duplicate_keys` reports each with
        // both places instead of stopping the file at the first.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        budget: Some(serde_saphyr::Budget {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_events: 4 * MAX_NODES,
            max_documents: 1,
            ..serde_saphyr::Budget::default()
        }),
        ..serde_saphyr::Options::default()
    };
    match serde_saphyr::from_str_with_options::<Spanned<Tree>>(text, options) {
        Ok(doc) => Ok(from_spanned(doc)),
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos::new(l.line() as usize, l.column() as usize))
                .filter(|p| p.line > 0)
                .unwrap_or(Pos::new(1, 1));
            let full = e.to_string();
            let suffix = format!(" at line {}, column {}", pos.line, pos.col);
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            Err(SyntaxError { pos, message })
        }
    }
}

/// Every key repeated in a mapping of the tree: (repeat, first, key text).
pub fn duplicate_keys(doc: &Yaml) -> Vec<(Pos, Pos, String)> {
    let mut out = Vec::new();
    let mut stack = vec![doc];
    while let Some(y) = stack.pop() {
        match &y.value {
            Value::Seq(items) => stack.extend(items.iter()),
            Value::Map(entries) => {
                let mut seen: std::collections::HashMap<String, Pos> =
                    std::collections::HashMap::new();
                for (k, v) in entries {
                    if let Some(text) = k.scalar_text() {
                        match seen.get(&text) {
                            Some(&first) => out.push((k.pos, first, text)),
                            None => {
                                seen.insert(text, k.pos);
                            }
                        }
                    }
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

/// The serde side of [`Yaml`]: a value whose children carry spans.
enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Tree>>),
    Map(Vec<(Spanned<Tree>, Spanned<Tree>)>),
}

fn from_spanned(s: Spanned<Tree>) -> Yaml {
    let pos = Pos::new(s.referenced.line() as usize, s.referenced.column() as usize);
    let value = match s.value {
        Tree::Null => Value::Null,
        Tree::Bool(b) => Value::Bool(b),
        Tree::Int(n) => Value::Int(n),
        Tree::Float(x) => Value::Float(x),
        Tree::Str(s) => Value::Str(s),
        Tree::Seq(items) => Value::Seq(items.into_iter().map(from_spanned).collect()),
        Tree::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (from_spanned(k), from_spanned(v)))
                .collect(),
        ),
    };
    Yaml { pos, value }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tree, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
        Ok(match i64::try_from(v) {
            Ok(n) => Tree::Int(n),
            Err(_) => Tree::Float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Spanned<Tree>, Spanned<Tree>>()? {
            entries.push(entry);
        }
        Ok(Tree::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let doc = parse("name: main\nnodes:\n  greet: { play: [a.wav, 'b.wav'], next: x }\n")
            .expect("parses");
        let map = doc.as_map().expect("map");
        assert_eq!(map[0].0.pos, Pos::new(1, 1));
        assert_eq!(map[0].1.pos, Pos::new(1, 7));
        assert_eq!(map[0].1.as_str(), Some("main"));
        let nodes = map[1].1.as_map().expect("nodes");
        assert_eq!(nodes[0].0.pos, Pos::new(3, 3));
        let greet = nodes[0].1.as_map().expect("greet");
        assert_eq!(greet[0].0.pos, Pos::new(3, 12));
        let Value::Seq(files) = &greet[0].1.value else {
            panic!("seq")
        };
        assert_eq!(files[0].pos, Pos::new(3, 19));
        assert_eq!(files[1].pos, Pos::new(3, 26));
        assert_eq!(greet[1].1.pos, Pos::new(3, 42));
    }

    #[test]
    fn scalar_types() {
        let doc = parse("a: 1\nb: '1'\nc: true\nd: yes\ne: ~\nf: 1.5\ng:\n").expect("parses");
        let values: Vec<&Value> = doc
            .as_map()
            .expect("map")
            .iter()
            .map(|(_, v)| &v.value)
            .collect();
        assert_eq!(values[0], &Value::Int(1));
        assert_eq!(values[1], &Value::Str("1".into()));
        assert_eq!(values[2], &Value::Bool(true));
        assert_eq!(values[3], &Value::Str("yes".into()));
        assert_eq!(values[4], &Value::Null);
        assert_eq!(values[5], &Value::Float(1.5));
        assert_eq!(values[6], &Value::Null);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("name: main\nnodes: [a, b\n").expect_err("unclosed");
        assert!(err.pos.line >= 2, "{err:?}");
        let doc = parse("a: 1\nb: { c: 1, c: 2 }\na: 3\n").expect("duplicates pass");
        assert_eq!(
            duplicate_keys(&doc),
            [
                (Pos::new(2, 12), Pos::new(2, 6), "c".to_owned()),
                (Pos::new(3, 1), Pos::new(1, 1), "a".to_owned()),
            ]
        );
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").map(|y| y.value), Ok(Value::Null));
    }
}
