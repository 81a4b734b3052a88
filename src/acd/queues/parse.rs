//! Reading and checking `queues.yaml` (DESIGN §6).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{Announce, OnRing, QueueConfig, QueueSet, Skills, Strategy, WidenStep};
use crate::acd::yaml::{self, Diags, Fields, Node, Y, pos};
use crate::acd::{NameRef, Pos};
use crate::ivr::Diagnostic;

const KEYS: [&str; 14] = [
    "skills",
    "hours",
    "strategy",
    "priority",
    "ring_timeout",
    "max_wait",
    "wrap_up",
    "music",
    "announce",
    "on_ring",
    "service_level",
    "max_no_answer",
    "prefer_last_agent",
    "widen",
];

const MAX_PRIORITY: i64 = 1000;
const MAX_NO_ANSWER: i64 = 100;

/// Parses `queues.yaml` (`path` is only used in the diagnostics). Every
/// queue is returned, even one with problems, so names still resolve; any
/// diagnostic of severity error means the file must be refused.
pub fn parse_queues_file(path: &Path, text: &str) -> (QueueSet, Vec<Diagnostic>) {
    let mut diags = Diags::new(path);
    let entries = yaml::top_entries(text, "queues", &mut diags);
    let mut queues: BTreeMap<String, QueueConfig> = BTreeMap::new();
    for (k, v) in &entries {
        let Some(name) = k.value.scalar_text().filter(|n| !n.trim().is_empty()) else {
            diags.expected(k, "queue name", "a name");
            continue;
        };
        if let Some(first) = queues.get(&name) {
            let first = first.pos;
            diags.error(
                pos(k),
                format!(
                    "queue `{name}` is defined twice (first at line {}, column {})",
                    first.line, first.col
                ),
            );
            continue;
        }
        let queue = parse_queue(&name, pos(k), v, &mut diags);
        queues.insert(name, queue);
    }
    // `widen.also` names queues of this same file.
    for q in queues.values() {
        for also in q.widen.iter().flat_map(|w| &w.also) {
            if also.name == q.name {
                diags.error(
                    also.pos,
                    format!("queue `{}` cannot widen to itself", q.name),
                );
            } else if !queues.contains_key(&also.name) {
                diags.error(also.pos, format!("unknown queue `{}`", also.name));
            }
        }
    }
    diags.out.sort_by_key(|d| (d.line, d.col));
    (QueueSet { queues }, diags.out)
}

/// One queue; problems are reported and the faulty keys keep defaults.
fn parse_queue(name: &str, at: Pos, v: &Y, diags: &mut Diags) -> QueueConfig {
    let mut q = QueueConfig::new(name, at);
    if matches!(v.value, Node::Null) {
        return q;
    }
    let what = format!("queue `{name}`");
    let Some(f) = Fields::read(v, &what, &KEYS, diags) else {
        return q;
    };
    if let Some(y) = f.get("skills") {
        q.skills = skills(y, 1, diags);
    }
    if let Some(y) = f.get("hours") {
        q.hours = yaml::string(y, "`hours`", diags).map(|name| NameRef { name, pos: pos(y) });
    }
    if let Some(y) = f.get("strategy")
        && let Some(text) = yaml::string(y, "`strategy`", diags)
    {
        match Strategy::from_name(&text) {
            Some(s) => q.strategy = s,
            None => {
                let all: Vec<&str> = Strategy::ALL.iter().map(|s| s.as_str()).collect();
                diags.error(
                    pos(y),
                    format!(
                        "unknown strategy `{text}`: expected one of {}",
                        all.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(y) = f.get("priority")
        && let Some(p) = yaml::int(y, "`priority`", 0, MAX_PRIORITY, diags)
    {
        q.priority = u32::try_from(p).unwrap_or(0);
    }
    if let Some(d) = positive(&f, "ring_timeout", diags) {
        q.ring_timeout = d;
    }
    if let Some(d) = positive(&f, "max_wait", diags) {
        q.max_wait = Some(d);
    }
    if let Some(y) = f.get("wrap_up")
        && let Some(d) = yaml::duration(y, "`wrap_up`", diags)
    {
        q.wrap_up = d;
    }
    if let Some(y) = f.get("music") {
        q.music = sound(y, "`music`", diags);
    }
    if let Some(y) = f.get("announce") {
        q.announce = announce(y, diags);
    }
    if let Some(y) = f.get("on_ring")
        && let Some(text) = yaml::string(y, "`on_ring`", diags)
    {
        match OnRing::from_name(&text) {
            Some(o) => q.on_ring = o,
            None => {
                let all: Vec<&str> = OnRing::ALL.iter().map(|o| o.as_str()).collect();
                diags.error(
                    pos(y),
                    format!(
                        "unknown `on_ring` value `{text}`: expected one of {}",
                        all.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(d) = positive(&f, "service_level", diags) {
        q.service_level = d;
    }
    if let Some(y) = f.get("max_no_answer")
        && let Some(n) = yaml::int(y, "`max_no_answer`", 0, MAX_NO_ANSWER, diags)
    {
        q.max_no_answer = u32::try_from(n).unwrap_or(0);
    }
    if let Some(y) = f.get("prefer_last_agent")
        && let Some(d) = yaml::duration(y, "`prefer_last_agent`", diags)
    {
        q.prefer_last_agent = d;
    }
    if let Some(y) = f.get("widen") {
        q.widen = widen(y, &q.skills, diags);
    }
    q
}

/// A duration that must be more than zero.
fn positive(f: &Fields, key: &str, diags: &mut Diags) -> Option<Duration> {
    let y = f.get(key)?;
    let d = yaml::duration(y, &format!("`{key}`"), diags)?;
    if d.is_zero() {
        diags.error(pos(y), format!("`{key}` must be more than 0s"));
        return None;
    }
    Some(d)
}

/// A skill map; levels from `min_level` to 5, names `[a-z0-9_-]+`.
fn skills(y: &Y, min_level: i64, diags: &mut Diags) -> Skills {
    let mut out = Skills::new();
    let Node::Map(entries) = &y.value else {
        diags.expected(y, "`skills`", "a mapping of skill names to levels");
        return out;
    };
    for (k, v) in entries {
        let name = k.value.scalar_text().unwrap_or_default();
        if !valid_skill(&name) {
            diags.error(
                pos(k),
                format!(
                    "bad skill name {}: use lower-case letters, digits, `_` and `-`",
                    yaml::show_key(k)
                ),
            );
            continue;
        }
        if out.contains_key(&name) {
            diags.error(pos(k), format!("skill `{name}` is given twice"));
            continue;
        }
        let what = format!("level of skill `{name}`");
        if let Some(level) = yaml::int(v, &what, min_level, 5, diags) {
            out.insert(name, u8::try_from(level).unwrap_or(0));
        }
    }
    out
}

fn valid_skill(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A sound name relative to `--sounds`: no absolute paths, no `..`.
fn sound(y: &Y, what: &str, diags: &mut Diags) -> Option<NameRef> {
    let name = yaml::string(y, what, diags)?;
    let escapes = name.starts_with('/')
        || name.starts_with('\\')
        || name.split(['/', '\\']).any(|part| part == "..")
        || name.contains(':');
    if name.trim().is_empty() || escapes {
        diags.error(
            pos(y),
            format!("{what}: bad sound name `{name}`: a path under the sounds folder without `..`"),
        );
        return None;
    }
    Some(NameRef { name, pos: pos(y) })
}

fn announce(y: &Y, diags: &mut Diags) -> Option<Announce> {
    let f = Fields::read(y, "`announce`", &["every", "position", "wait_time"], diags)?;
    let mut a = Announce {
        every: Duration::from_secs(60),
        position: true,
        wait_time: true,
    };
    if let Some(d) = positive(&f, "every", diags) {
        a.every = d;
    }
    if let Some(b) = f
        .get("position")
        .and_then(|y| yaml::boolean(y, "`position`", diags))
    {
        a.position = b;
    }
    if let Some(b) = f
        .get("wait_time")
        .and_then(|y| yaml::boolean(y, "`wait_time`", diags))
    {
        a.wait_time = b;
    }
    Some(a)
}

/// `widen` steps: strictly increasing `after`; skills may only be relaxed.
fn widen(y: &Y, base: &Skills, diags: &mut Diags) -> Vec<WidenStep> {
    let mut out: Vec<WidenStep> = Vec::new();
    let mut last_after: Option<Duration> = None;
    for item in yaml::list(y, "`widen`", diags) {
        let Some(f) = Fields::read(item, "a widen step", &["after", "skills", "also"], diags)
        else {
            continue;
        };
        let after = match f.get("after") {
            Some(y) => yaml::duration(y, "`after`", diags).map(|d| (d, pos(y))),
            None => {
                diags.error(pos(item), "a widen step needs `after`");
                None
            }
        };
        if let (Some((after, at)), Some(prev)) = (after, last_after)
            && after <= prev
        {
            diags.error(
                at,
                format!(
                    "widen steps must come in increasing `after`: {} is not after {}",
                    show(after),
                    show(prev)
                ),
            );
        }
        let skills = f
            .get("skills")
            .map(|s| widen_skills(s, base, diags))
            .unwrap_or_default();
        let also: Vec<NameRef> = f
            .get("also")
            .map(|a| {
                yaml::list(a, "`also`", diags)
                    .iter()
                    .filter_map(|n| {
                        yaml::string(n, "queue name", diags)
                            .map(|name| NameRef { name, pos: pos(n) })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if f.get("skills").is_none() && f.get("also").is_none() {
            diags.warning(
                pos(item),
                "this widen step changes nothing (no `skills`, no `also`)",
            );
        }
        if let Some((after, _)) = after {
            last_after = Some(last_after.map_or(after, |p| p.max(after)));
            out.push(WidenStep {
                after,
                pos: pos(item),
                skills,
                also,
            });
        }
    }
    out
}

/// A widen step's skills: 0–5, and only skills the queue requires.
fn widen_skills(y: &Y, base: &Skills, diags: &mut Diags) -> Skills {
    let skills = skills(y, 0, diags);
    if let Node::Map(entries) = &y.value {
        for (k, _) in entries {
            let name = k.value.scalar_text().unwrap_or_default();
            let Some(level) = skills.get(&name) else {
                continue;
            };
            match base.get(&name) {
                None => diags.error(
                    pos(k),
                    format!("widen can only relax the queue's skills: `{name}` is not one of them"),
                ),
                Some(required) if level > required => diags.warning(
                    pos(k),
                    format!(
                        "widen raises `{name}` from {required} to {level}; widening should relax it"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    skills
}

/// A duration as the file would write it.
fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}
