//! Queue files (DESIGN §6): every key, defaults, and problems with their
//! positions.

use std::path::Path;

use super::*;
use crate::ivr::Severity;

fn parse_ok(text: &str) -> QueueSet {
    let (set, diags) = parse_queues_file(Path::new("queues.yaml"), text);
    assert!(diags.is_empty(), "unexpected problems: {diags:#?}");
    set
}

/// Every problem as `LINE:COL: severity: message`, in order.
fn problems(text: &str) -> Vec<String> {
    let (_, diags) = parse_queues_file(Path::new("queues.yaml"), text);
    diags
        .into_iter()
        .map(|d| {
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!("{}:{}: {sev}: {}", d.line, d.col, d.message)
        })
        .collect()
}

fn at(line: usize, col: usize) -> Pos {
    Pos { line, col }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const DESIGN_EXAMPLE: &str = r#"
queues:
  support:
    skills: { support: 1 }       # required skills and minimum level (1–5)
    hours: support-hours
    strategy: longest-idle       # longest-idle | round-robin | fewest-calls | best-skill | ring-all | random
    priority: 0                  # base; a caller's priority = max(queue, flow node, thread, VIP)
    ring_timeout: 20s            # per offer; then the next agent
    max_wait: 10m
    wrap_up: 10s
    music: hold.wav
    announce: { every: 45s, position: true, wait_time: true }
    service_level: 20s
    max_no_answer: 3             # agent is paused after this many missed offers in a row
    prefer_last_agent: 30s       # wait this long for the agent of the caller's thread first
    widen:                       # relax requirements as the caller waits
      - { after: 60s, skills: { support: 0 } }
      - { after: 180s, also: [sales] }
  sales:
"#;

#[test]
fn design_example_parses_every_key() {
    let set = parse_ok(DESIGN_EXAMPLE);
    assert_eq!(set.names().collect::<Vec<_>>(), ["sales", "support"]);
    let q = set.get("support").expect("support");
    let want = QueueConfig {
        name: "support".to_owned(),
        pos: at(3, 3),
        skills: Skills::from([("support".to_owned(), 1)]),
        hours: Some(NameRef {
            name: "support-hours".to_owned(),
            pos: at(5, 12),
        }),
        strategy: Strategy::LongestIdle,
        priority: 0,
        ring_timeout: secs(20),
        max_wait: Some(secs(600)),
        wrap_up: secs(10),
        music: Some(NameRef {
            name: "hold.wav".to_owned(),
            pos: at(11, 12),
        }),
        announce: Some(Announce {
            every: secs(45),
            position: true,
            wait_time: true,
        }),
        on_ring: OnRing::Music,
        service_level: secs(20),
        max_no_answer: 3,
        prefer_last_agent: secs(30),
        widen: vec![
            WidenStep {
                after: secs(60),
                pos: at(17, 9),
                skills: Skills::from([("support".to_owned(), 0)]),
                also: vec![],
            },
            WidenStep {
                after: secs(180),
                pos: at(18, 9),
                skills: Skills::new(),
                also: vec![NameRef {
                    name: "sales".to_owned(),
                    pos: at(18, 31),
                }],
            },
        ],
    };
    assert_eq!(*q, want);
    // An empty queue takes every default.
    let sales = set.get("sales").expect("sales");
    assert_eq!(*sales, QueueConfig::new("sales", at(19, 3)));
    assert!(set.get("nope").is_none());
}

#[test]
fn strategies_and_announce_defaults() {
    for s in Strategy::ALL {
        let text = format!("queues:\n  q: {{ strategy: {s} }}\n");
        let set = parse_ok(&text);
        assert_eq!(set.get("q").map(|q| q.strategy), Some(s));
        assert_eq!(Strategy::from_name(s.as_str()), Some(s));
    }
    let set = parse_ok("queues:\n  q: { announce: { wait_time: false } }\n");
    let announce = set.get("q").and_then(|q| q.announce);
    assert_eq!(
        announce,
        Some(Announce {
            every: secs(60),
            position: true,
            wait_time: false
        })
    );
    // Empty files and an empty `queues` hold no queue.
    for text in ["", "queues:\n", "queues: {}\n"] {
        assert!(parse_ok(text).is_empty(), "{text:?}");
    }
}

#[test]
fn problems_with_their_positions() {
    let text = r#"queues:
  support:
    skills: { support: 6, Sales: 2, billing: 0, tech: x }
    hours: [a]
    strategy: fastest
    priorty: 3
    priority: -1
    ring_timeout: 0s
    max_wait: 10 minutes
    wrap_up: 5
    music: ../etc/passwd
    announce: { every: 45s, position: yes, wait_time: true }
    service_level: 20s
    max_no_answer: 3
    prefer_last_agent: 30s
    widen:
      - { after: 180s, skills: { support: 6 } }
      - { after: 60s, skills: { billing: 0 } }
      - { after: 90s }
      - { skills: {} }
      - { after: 200s, also: [support, nowhere] }
  support:
    max_no_answer: 3
"#;
    let want = [
        "3:24: error: level of skill `support`: 6 is out of range (1 to 5)",
        "3:27: error: bad skill name `Sales`: use lower-case letters, digits, `_` and `-`",
        "3:46: error: level of skill `billing`: 0 is out of range (1 to 5)",
        "3:55: error: level of skill `tech`: expected a whole number from 1 to 5, found a string",
        "4:12: error: `hours`: expected a string, found a list",
        "5:15: error: unknown strategy `fastest`: expected one of longest-idle, round-robin, fewest-calls, best-skill, ring-all, random",
        "6:5: error: unknown key `priorty` in queue `support`; did you mean `priority`? (known keys: skills, hours, strategy, priority, ring_timeout, max_wait, wrap_up, music, announce, on_ring, service_level, max_no_answer, prefer_last_agent, widen)",
        "7:15: error: `priority`: -1 is out of range (0 to 1000)",
        "8:19: error: `ring_timeout` must be more than 0s",
        "9:15: error: `max_wait`: bad duration \"10 minutes\": expected a whole number followed by ms, s, m or h (e.g. 500ms, 5s, 2m)",
        "10:14: error: `wrap_up`: bad duration \"5\": expected a whole number followed by ms, s, m or h (e.g. 500ms, 5s, 2m)",
        "11:12: error: `music`: bad sound name `../etc/passwd`: a path under the sounds folder without `..`",
        "12:39: error: `position`: expected true or false, found a string",
        "17:43: error: level of skill `support`: 6 is out of range (0 to 5)",
        "18:18: error: widen steps must come in increasing `after`: 60s is not after 180s",
        "18:33: error: widen can only relax the queue's skills: `billing` is not one of them",
        "19:9: warning: this widen step changes nothing (no `skills`, no `also`)",
        "19:18: error: widen steps must come in increasing `after`: 90s is not after 180s",
        "20:9: error: a widen step needs `after`",
        "21:31: error: queue `support` cannot widen to itself",
        "21:40: error: unknown queue `nowhere`",
        "22:3: error: queue `support` is defined twice (first at line 2, column 3)",
    ];
    assert_eq!(problems(text), want);
}

#[test]
fn on_ring_is_music_or_ringback() {
    let set = parse_ok("queues:\n  a: { on_ring: ringback }\n  b: { on_ring: music }\n  c: {}\n");
    let on_ring = |n: &str| set.get(n).map(|q| q.on_ring);
    assert_eq!(on_ring("a"), Some(OnRing::Ringback));
    assert_eq!(on_ring("b"), Some(OnRing::Music));
    assert_eq!(on_ring("c"), Some(OnRing::Music));
    assert_eq!(
        problems("queues:\n  q:\n    on_ring: beep\n  r: { on_ring: [music] }\n"),
        [
            "3:14: error: unknown `on_ring` value `beep`: expected one of music, ringback",
            "4:17: error: `on_ring`: expected a string, found a list",
        ]
    );
}

#[test]
fn widen_raising_a_level_is_a_warning() {
    let text =
        "queues:\n  q:\n    skills: { a: 2 }\n    widen: [{ after: 1m, skills: { a: 3 } }]\n";
    assert_eq!(
        problems(text),
        ["4:36: warning: widen raises `a` from 2 to 3; widening should relax it"]
    );
}

#[test]
fn yaml_and_shape_problems() {
    let cases = [
        ("queues: {\n", "1:9: error: unclosed bracket '{'"),
        (
            "queue: {}\n",
            "1:1: error: unknown key `queue`: expected `queues`",
        ),
        (
            "- a\n",
            "1:1: error: file: expected a mapping with the key `queues`, found a list",
        ),
        (
            "queues: [a]\n",
            "1:9: error: `queues`: expected a mapping of names, found a list",
        ),
        (
            "queues:\n  q: 5\n",
            "2:6: error: queue `q`: expected a mapping, found a number",
        ),
        (
            "queues:\n  q: { widen: {} }\n",
            "2:15: error: `widen`: expected a list, found a mapping",
        ),
        (
            "queues:\n  q: { skills: [a] }\n",
            "2:16: error: `skills`: expected a mapping of skill names to levels, found a list",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(problems(text), [want], "{text:?}");
    }
}
