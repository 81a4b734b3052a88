//! The folder validator (DESIGN §5 "`switchboard check` … report every
//! problem as `FILE:LINE:COL: message`"): each check with its exact place.

use crate::ivr::testing::{Scratch, split};

const HEAD: &str = "numbers: [\"100\"]\nstart: a\nnodes:\n";
const BYE: &str = "  bye: { hangup: {} }\n";

/// Checks that `main.yaml` = HEAD + `nodes` gives exactly `want` errors,
/// each as (`LINE:COL`, a fragment of the message).
fn errors(nodes: &str, want: &[(&str, &str)]) {
    let s = Scratch::new();
    let text = format!("{HEAD}{nodes}");
    let got = s.errors(&text);
    assert_eq!(got.len(), want.len(), "{text}\n{}", got.join("\n"));
    for (line, (at, fragment)) in got.iter().zip(want) {
        let prefix = format!("main.yaml:{at}: error: ");
        assert!(
            line.starts_with(&prefix) && line.contains(fragment),
            "want {prefix}…{fragment}…\n got {line}\n{text}"
        );
    }
}

fn warnings(s: &Scratch) -> Vec<String> {
    let (set, diags) = s.load();
    let (warnings, errors) = split(&diags);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(set.is_some());
    warnings
}

#[test]
fn unknown_keys_with_a_hint() {
    errors(
        &format!("  a: {{ play: welcome.wav, bargee: true, next: bye }}\n{BYE}"),
        &[(
            "4:27",
            "unknown key `bargee` in a play node; did you mean `barge`?",
        )],
    );
    errors(
        &format!(
            "  a:\n    menu: {{ prompt: menu.wav, options: {{ \"1\": bye }}, failure: bye, retries: 2 }}\n{BYE}"
        ),
        &[(
            "5:68",
            "unknown key `retries` in menu; did you mean `tries`?",
        )],
    );
    let s = Scratch::new();
    let got = s.errors(&format!("numbers: [\"100\"]\nstrat: a\nnodes:\n{BYE}"));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("main.yaml:1:1: error: missing `start`"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with(
            "main.yaml:2:1: error: unknown key `strat` in the flow; did you mean `start`?"
        ),
        "{got:?}"
    );
}

#[test]
fn unknown_nodes() {
    errors(
        &format!("  a: {{ play: welcome.wav, next: byee }}\n{BYE}"),
        &[("4:33", "next: unknown node `byee`; did you mean `bye`?")],
    );
    errors(
        &format!(
            "  a:\n    menu:\n      prompt: menu.wav\n      options: {{ \"1\": sales }}\n      failure: nowhere\n{BYE}"
        ),
        &[
            ("7:23", "option: unknown node `sales`"),
            ("8:16", "failure: unknown node `nowhere`"),
        ],
    );
    let s = Scratch::new();
    let got = s.errors(&format!("numbers: [\"100\"]\nstart: greet\nnodes:\n{BYE}"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("main.yaml:2:8: error: start: unknown node `greet`"));
}

#[test]
fn sounds_missing_escaping_or_not_wav() {
    let s = Scratch::new();
    std::fs::write(s.sounds().join("notes.wav"), "not audio").unwrap();
    std::fs::write(s.root().join("secret.wav"), "RIFF....WAVE").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(s.root().join("secret.wav"), s.sounds().join("link.wav")).unwrap();
    let got = s.errors(&format!(
        "{HEAD}  a: {{ play: [nope.wav, ../secret.wav, /etc/passwd, notes.wav, sub/x.wav], next: b }}\n  b: {{ play: link.wav, next: bye }}\n{BYE}"
    ));
    let want = [
        ("4:15", "sound `nope.wav` not found in"),
        ("4:25", "sound `../secret.wav` escapes the sounds folder"),
        (
            "4:40",
            "sound `/etc/passwd` must be a name relative to the sounds folder",
        ),
        ("4:53", "sound `notes.wav` is not a WAV file"),
        ("4:64", "sound `sub/x.wav` not found"),
        (
            "5:14",
            "sound `link.wav` escapes the sounds folder (symbolic link)",
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (line, (at, fragment)) in got.iter().zip(want) {
        assert!(
            line.starts_with(&format!("main.yaml:{at}: error: ")) && line.contains(fragment),
            "{line}"
        );
    }
    // Sounds in subfolders are fine.
    s.sound("sub/x.wav");
    s.good(&format!(
        "{HEAD}  a: {{ play: sub/x.wav, next: bye }}\n{BYE}"
    ));
}

#[test]
fn unreachable_nodes_are_warnings() {
    let s = Scratch::new();
    s.write(
        "main.yaml",
        &format!("{HEAD}  a: {{ play: welcome.wav, next: bye }}\n  lost: {{ play: closed.wav, next: bye }}\n{BYE}"),
    );
    let w = warnings(&s);
    assert_eq!(
        w,
        ["main.yaml:5:3: warning: node `lost` is unreachable from `start` in flow `main`"]
    );
}

#[test]
fn duplicate_numbers_and_names_point_at_both() {
    let s = Scratch::new();
    s.write(
        "a.yaml",
        "name: main\nnumbers: [\"100\", \"*\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n",
    );
    s.write("b.yaml", "name: main\nnumbers: [\"200\", \"1-0-0\", \"*\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n");
    let (set, diags) = s.load();
    assert!(set.is_none());
    let (_, e) = split(&diags);
    let dir = s.flows();
    let want = [
        format!(
            "b.yaml:1:7: error: flow name `main` is also used by {}/a.yaml:1:7",
            dir.display()
        ),
        format!(
            "b.yaml:2:18: error: number 1-0-0 is also dialled into flow `main` at {}/a.yaml:2:11",
            dir.display()
        ),
        format!(
            "b.yaml:2:27: error: number * is also dialled into flow `main` at {}/a.yaml:2:18",
            dir.display()
        ),
    ];
    assert_eq!(e, want);
}

#[test]
fn bad_durations_and_ranges() {
    errors(
        &format!(
            "  a:\n    menu:\n      prompt: menu.wav\n      options: {{ \"1\": bye }}\n      timeout: 5\n      tries: 0\n      failure: bye\n  b: {{ voicemail: {{ max: 5 sec }}, next: bye }}\n  c: {{ transfer: alice, timeout: 2h, next: bye }}\n{BYE}"
        ),
        &[
            ("8:16", "timeout: bad duration 5: add a unit"),
            ("9:14", "tries: expected a whole number from 1 to 10"),
            ("11:26", "max: bad duration \"5 sec\""),
            ("12:34", "transfer timeout: 2h is out of range (1s to 5m)"),
        ],
    );
}

#[test]
fn bad_conditions_point_inside_the_text() {
    errors(
        &format!(
            "  a:\n    branch:\n      - {{ if: caller.vip = true, then: bye }}\n      - {{ if: \"thread.priority > 'x'\", then: bye }}\n      - if: caller.colour == 'red'\n        then: bye\n      - {{ else: bye }}\n{BYE}"
        ),
        &[
            ("6:26", "bad condition: use == to compare"),
            (
                "7:34",
                "bad condition: `thread.priority` is compared with a number",
            ),
            ("8:13", "bad condition: unknown variable `caller.colour`"),
        ],
    );
    errors(
        &format!("  a:\n    branch:\n      - {{ if: caller.vip, then: bye }}\n{BYE}"),
        &[("6:9", "branch needs a last arm `{ else: NODE }`")],
    );
}

#[test]
fn menu_keys_outside_the_keypad() {
    errors(
        &format!(
            "  a:\n    menu:\n      prompt: menu.wav\n      options: {{ \"12\": bye, a: bye, \"#\": bye, 3: bye, \"3\": bye }}\n      failure: bye\n{BYE}"
        ),
        &[
            ("7:18", "bad menu key `12`"),
            ("7:29", "bad menu key `a`"),
            ("7:55", "key `3` is given twice (first at 7:47)"),
        ],
    );
}

#[test]
fn loops_without_input() {
    errors(
        &format!(
            "  a: {{ play: welcome.wav, next: b }}\n  b: {{ set: {{ x: 1 }}, next: c }}\n  c:\n    branch:\n      - {{ if: vars.x == 1, then: a }}\n      - {{ else: bye }}\n{BYE}"
        ),
        &[(
            "4:3",
            "nodes `a`, `b`, `c` form a loop with no menu or collect in it",
        )],
    );
    errors(
        &format!("  a: {{ queue: support, next: a }}\n{BYE}"),
        &[("4:3", "node `a` leads back to itself")],
    );
    // A menu on the loop waits for the caller: fine.
    let s = Scratch::new();
    s.good(&format!(
        "{HEAD}  a: {{ play: welcome.wav, next: m }}\n  m:\n    menu: {{ prompt: menu.wav, options: {{ \"9\": a, \"0\": bye }}, failure: a }}\n{BYE}"
    ));
}

#[test]
fn node_shape() {
    errors(
        &format!(
            "  a: {{ next: bye }}\n  b: {{ play: welcome.wav, hangup: {{}} }}\n  c: {{ play: welcome.wav }}\n  d:\n    menu: {{ prompt: menu.wav, options: {{ \"1\": bye }}, failure: bye }}\n    next: bye\n  e: {{ hangup: now }}\n{BYE}"
        ),
        &[
            ("4:3", "node `a` has no action"),
            ("5:27", "node `b` has two actions, `play` and `hangup`"),
            ("6:3", "node `c` needs `next`"),
            (
                "9:5",
                "`next` is never taken here: a menu leaves through its options and `failure`",
            ),
            ("10:16", "hangup takes no settings"),
        ],
    );
}

#[test]
fn queue_and_hours_names_across_files() {
    errors(
        &format!(
            "  a: {{ hours: office, open: b, closed: bye }}\n  b: {{ queue: suport, next: c }}\n  c:\n    branch:\n      - {{ if: queue.billing.waiting > 0, then: bye }}\n      - {{ else: bye }}\n{BYE}"
        ),
        &[
            (
                "4:15",
                "unknown hours `office` (hours.yaml defines support-hours)",
            ),
            (
                "5:15",
                "unknown queue `suport` (queues.yaml defines sales, support)",
            ),
            ("8:15", "unknown queue `billing`"),
        ],
    );
    // queues.yaml: its hours and music are checked against the other files.
    let s = Scratch::new();
    s.write(
        "queues.yaml",
        "queues:\n  support:\n    hours: nights\n    music: silence.wav\n",
    );
    s.remove("hours.yaml");
    let got = s.errors(&format!(
        "{HEAD}  a: {{ hours: support-hours, open: bye, closed: bye }}\n{BYE}"
    ));
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[0].starts_with(
        "main.yaml:4:15: error: unknown hours `support-hours`: there is no hours.yaml"
    ));
    assert!(
        got[1]
            .starts_with("queues.yaml:3:12: error: unknown hours `nights`: there is no hours.yaml")
    );
    assert!(got[2].starts_with("queues.yaml:4:12: error: sound `silence.wav` not found"));
}

#[test]
fn announce_without_its_recordings_is_a_warning() {
    let s = Scratch::new();
    s.write(
        "main.yaml",
        &format!("{HEAD}  a: {{ queue: support, next: bye }}\n{BYE}"),
    );
    s.write(
        "queues.yaml",
        "queues:\n  support:\n    announce: { every: 30s, wait_time: false }\n",
    );
    s.remove("hours.yaml");
    let got = warnings(&s);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with(
            "queues.yaml:2:3: warning: queue `support` has `announce` but the sounds folder lacks \
             announce/you-are-caller-number.wav, announce/numbers/0.wav, announce/numbers/1.wav and 27 more"
        ),
        "{got:#?}"
    );
    for name in crate::acd::announce::needed(true, false) {
        s.sound(&name);
    }
    assert!(warnings(&s).is_empty());
}

#[test]
fn yaml_syntax_duplicate_keys_and_numbers() {
    let s = Scratch::new();
    let got = s.errors("numbers: [\"100\"\nstart: a\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("main.yaml:2:"), "{got:?}");
    errors(
        &format!(
            "  a: {{ play: welcome.wav, next: bye }}\n  a: {{ play: menu.wav, next: bye }}\n{BYE}"
        ),
        &[("5:3", "key `a` is given twice (first at 4:3)")],
    );
    let got = s.errors("numbers: [100, \"1 2\", \"a@b\"]\nstart: a\nnodes:\n  a: { hangup: {} }\n");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("main.yaml:1:11: error: write dialled numbers in quotes: \"100\""));
    assert!(got[1].starts_with("main.yaml:1:23: error: bad number `a@b`"));
}

#[test]
fn every_problem_of_every_file_at_once() {
    let s = Scratch::new();
    s.write(
        "main.yaml",
        &format!(
            "{HEAD}  a: {{ play: gone.wav, next: b }}\n  b: {{ queue: nowhere, nxt: bye }}\n{BYE}  c: {{ play: welcome.wav, next: a }}\n"
        ),
    );
    s.write("other.yaml", "numbers: [\"100\"]\nstart: x\nnodes:\n  x: { collect: { var: 1x, digits: 40 }, next: x }\n");
    let (set, diags) = s.load();
    assert!(set.is_none());
    let (w, e) = split(&diags);
    let at: Vec<&str> = e
        .iter()
        .map(|d| d.split(": error").next().unwrap_or(""))
        .collect();
    assert_eq!(
        at,
        [
            "main.yaml:4:14",
            "main.yaml:5:3",
            "main.yaml:5:15",
            "main.yaml:5:24",
            "other.yaml:1:11",
            "other.yaml:4:24",
            "other.yaml:4:36",
        ],
        "{e:#?}"
    );
    // Unreachable nodes wait until the flow reads cleanly (the misspelt
    // `nxt` would make `bye` look unreachable).
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn empty_and_missing_folders() {
    let s = Scratch::new();
    s.remove("queues.yaml");
    s.remove("hours.yaml");
    let (set, diags) = s.load();
    assert!(set.is_some_and(|s| s.is_empty()));
    assert_eq!(diags.len(), 1);
    assert!(diags[0].contains("warning: no flow files"));
}

mod graph {
    use proptest::prelude::*;

    use crate::ivr::model::NodeId;
    use crate::ivr::validate::cycles;

    /// Whether `from` can get back to itself (by a path of one edge or more).
    fn on_cycle(edges: &[Vec<NodeId>], from: usize) -> bool {
        let mut seen = vec![false; edges.len()];
        let mut stack: Vec<usize> = edges[from].iter().map(|n| n.index()).collect();
        while let Some(v) = stack.pop() {
            if v == from {
                return true;
            }
            if !std::mem::replace(&mut seen[v], true) {
                stack.extend(edges[v].iter().map(|n| n.index()));
            }
        }
        false
    }

    proptest! {
        /// Tarjan's components with a cycle hold exactly the nodes that can
        /// come back to themselves.
        #[test]
        fn cycles_match_brute_force(raw in proptest::collection::vec(proptest::collection::vec(0u32..12, 0..3), 1..12)) {
            let n = raw.len() as u32;
            let edges: Vec<Vec<NodeId>> = raw
                .iter()
                .map(|e| e.iter().map(|&t| NodeId(t % n)).collect())
                .collect();
            let mut found: Vec<usize> = cycles(&edges).into_iter().flatten().map(|id| id.index()).collect();
            found.sort_unstable();
            let want: Vec<usize> = (0..edges.len()).filter(|&v| on_cycle(&edges, v)).collect();
            prop_assert_eq!(found, want);
        }
    }
}
