//! The interpreter driven by scripts of inputs on a fake clock (`t0 +
//! Duration`), over flows loaded from YAML text through the real loader
//! (DESIGN §5, docs/flows.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, json};

use super::*;
use crate::ivr::model::TransferTarget;
use crate::ivr::testing::Scratch;

/// The hours of DESIGN §6, read by the real hours parser.
const HOURS: &str = "hours:
  support-hours:
    timezone: Europe/Berlin
    week: { mon-fri: [\"09:00-12:30\", \"13:30-18:00\"], sat: [\"10:00-14:00\"] }
    closed: [2026-12-24, { yearly: 12-25 }, { yearly: 01-01 }]
    special: [{ date: 2026-12-31, hours: [\"09:00-12:00\"] }]
";

const QUEUES: &str = "queues:
  support: { hours: support-hours, music: hold.wav }
  sales: { priority: 5 }
";

/// Monday 2 March 2026, 10:00 in Berlin (open).
fn monday_10() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// `main.yaml` with numbers 100, start `a` and `nodes`.
fn load(nodes: &str) -> (Arc<FlowSet>, Arc<Flow>) {
    let s = Scratch::new();
    s.write("hours.yaml", HOURS);
    s.write("queues.yaml", QUEUES);
    let set = s.good(&format!("numbers: [\"100\"]\nstart: a\nnodes:\n{nodes}"));
    let flow = Arc::clone(set.flow("main").expect("main"));
    (Arc::new(set), flow)
}

/// An input of a script.
enum Ev {
    Start,
    /// The prompt finished.
    Done,
    Key(char),
    /// The timer must be due this many ms from now; jump there and fire it.
    Wait(u64),
    Queue(QueueOutcome),
    Transfer(bool),
    Voicemail(Option<&'static str>),
    Hook(Result<Map<String, serde_json::Value>, WebhookError>),
    Hangup,
}

/// Inputs and the actions each must lead to.
type Script<'a> = Vec<(Ev, &'a str)>;

struct Harness {
    run: FlowRun,
    now: Instant,
}

impl Harness {
    fn new(nodes: &str) -> Harness {
        Harness::with(nodes, CallContext::default(), monday_10())
    }

    fn with(nodes: &str, ctx: CallContext, utc: DateTime<Utc>) -> Harness {
        let (set, flow) = load(nodes);
        Harness::of(set, flow, ctx, utc)
    }

    fn of(set: Arc<FlowSet>, flow: Arc<Flow>, ctx: CallContext, utc: DateTime<Utc>) -> Harness {
        let t0 = Instant::now();
        let run = FlowRun::new(set, flow, ctx, WallClock::new(t0, utc), t0);
        Harness { run, now: t0 }
    }

    /// Applies `ev` 100 ms after the last input (or at the timer) and
    /// returns the actions it led to, `; `-separated.
    fn ev(&mut self, ev: Ev) -> String {
        if let Ev::Wait(ms) = ev {
            let at = self.run.poll_timeout().expect("a timer");
            assert_eq!(at - self.now, Duration::from_millis(ms), "timer");
            self.now = at;
            self.run.handle_timeout(at);
            return self.drain();
        }
        self.now += Duration::from_millis(100);
        let now = self.now;
        match ev {
            Ev::Start => self.run.handle_start(now),
            Ev::Done => self.run.handle_prompt_finished(now),
            Ev::Key(k) => self.run.handle_digit(k, now),
            Ev::Wait(_) => {}
            Ev::Queue(o) => self.run.handle_queue_result(o, now),
            Ev::Transfer(ok) => self.run.handle_transfer_result(ok, now),
            Ev::Voicemail(r) => self.run.handle_voicemail_done(r.map(str::to_owned), now),
            Ev::Hook(r) => self.run.handle_webhook_reply(r, now),
            Ev::Hangup => self.run.handle_hangup(now),
        }
        self.drain()
    }

    fn drain(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(a) = self.run.poll_action() {
            out.push(show(&a));
        }
        out.join("; ")
    }

    /// Runs `steps`, checking each one's actions.
    fn script(&mut self, name: &str, steps: Script<'_>) {
        for (i, (ev, want)) in steps.into_iter().enumerate() {
            assert_eq!(self.ev(ev), want, "{name}: step {}", i + 1);
        }
    }

    /// `node=outcome[digits]` for each step of the path.
    fn path(&self) -> Vec<String> {
        self.run
            .path()
            .iter()
            .map(|s| {
                let mut out = format!("{}={}", s.name(self.run.flow()), s.outcome);
                if !s.digits.is_empty() {
                    out.push_str(&format!("[{}]", s.digits.as_str()));
                }
                out
            })
            .collect()
    }

    fn var(&self, name: &str) -> Option<Value> {
        self.run.vars().get(name).cloned()
    }
}

fn show(a: &Action) -> String {
    match a {
        Action::Play { sounds, barge } => {
            format!(
                "play {}{}",
                sounds.join(","),
                if *barge { " barge" } else { "" }
            )
        }
        Action::StopPlayback => "stop".into(),
        Action::Enqueue { queue, priority } => format!("enqueue {} {priority}", &**queue),
        Action::Transfer { target, timeout } => {
            let t = match &**target {
                TransferTarget::Agent(a) => format!("agent:{a}"),
                TransferTarget::Extension(e) => format!("ext:{e}"),
                TransferTarget::Uri(u) => u.clone(),
            };
            format!("transfer {t} {}s", timeout.as_secs())
        }
        Action::RecordVoicemail {
            greeting,
            max,
            beep,
        } => format!(
            "voicemail [{}] {}s{}",
            greeting.join(","),
            max.as_secs(),
            if *beep { " beep" } else { "" }
        ),
        Action::CallWebhook { url, timeout, .. } => {
            format!("webhook {} {}ms", &**url, timeout.as_millis())
        }
        Action::HangUp => "hangup".into(),
        Action::Finished => "finished".into(),
    }
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

const END: &str = "hangup; finished";

#[test]
fn every_action() {
    use Ev::*;
    let cases: Vec<(&str, &str, Script)> = vec![
        (
            "play",
            "  a: { play: welcome.wav, next: bye }\n  bye: { hangup: {} }\n",
            vec![(Start, "play welcome.wav"), (Done, END)],
        ),
        (
            "play list with barge",
            "  a: { play: [welcome.wav, menu.wav], barge: true, next: bye }\n  bye: { hangup: {} }\n",
            vec![(Start, "play welcome.wav,menu.wav barge"), (Key('5'), END)],
        ),
        (
            "play without barge keeps playing",
            "  a: { play: welcome.wav, next: bye }\n  bye: { hangup: {} }\n",
            vec![(Start, "play welcome.wav"), (Key('5'), ""), (Done, END)],
        ),
        (
            "set then branch on vars",
            "  a: { set: { lang: en, tier: 2 }, next: b }\n  b:\n    branch:\n      - { if: \"vars.tier >= 2 and vars.lang == 'en'\", then: c }\n      - { else: bye }\n  c: { play: welcome.wav, next: bye }\n  bye: { hangup: {} }\n",
            vec![(Start, "play welcome.wav"), (Done, END)],
        ),
        (
            "queue gives up",
            "  a: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
            vec![
                (Start, "enqueue support 0"),
                (Key('1'), ""),
                (
                    Queue(QueueOutcome::GaveUp {
                        reason: GiveUpReason::MaxWait,
                    }),
                    END,
                ),
            ],
        ),
        (
            "transfer succeeds",
            "  a: { transfer: alice, next: bye }\n  bye: { hangup: {} }\n",
            vec![
                (Start, "transfer agent:alice 30s"),
                (Transfer(true), "finished"),
            ],
        ),
        (
            "transfer fails",
            "  a: { transfer: \"sip:desk@partner.example.com\", timeout: 20s, next: bye }\n  bye: { hangup: {} }\n",
            vec![
                (Start, "transfer sip:desk@partner.example.com 20s"),
                (Transfer(false), END),
            ],
        ),
        (
            "voicemail",
            "  a: { voicemail: { greeting: leave-message.wav, max: 2m, beep: true }, next: bye }\n  bye: { hangup: {} }\n",
            vec![
                (Start, "voicemail [leave-message.wav] 120s beep"),
                (Key('#'), ""),
                (Voicemail(Some("vm-1.wav")), END),
            ],
        ),
        (
            "voicemail without greeting",
            "  a: { voicemail: { beep: false }, next: bye }\n  bye: { hangup: {} }\n",
            vec![(Start, "voicemail [] 120s"), (Voicemail(None), END)],
        ),
        (
            "webhook",
            "  a: { webhook: { url: \"https://crm.example.com/ivr\", timeout: 3s }, next: bye }\n  bye: { hangup: {} }\n",
            vec![
                (Start, "webhook https://crm.example.com/ivr 3000ms"),
                (Hook(Ok(Map::new())), END),
            ],
        ),
        (
            "hangup",
            "  a: { hangup: {} }\n",
            vec![(Start, END), (Key('1'), ""), (Done, "")],
        ),
    ];
    for (name, nodes, steps) in cases {
        let mut h = Harness::new(nodes);
        h.script(name, steps);
        assert!(h.run.is_finished(), "{name}");
        assert_eq!(h.run.poll_timeout(), None, "{name}");
    }
}

const MENU: &str = "  a:
    menu: { prompt: menu.wav, options: { \"1\": one, \"2\": two }, timeout: 5s, tries: 3, invalid: invalid.wav, failure: op }
  one: { transfer: alice, next: bye }
  two: { transfer: \"1002\", next: bye }
  op: { transfer: operator, next: bye }
  bye: { hangup: {} }
";

#[test]
fn menus() {
    use Ev::*;
    let alice = "transfer agent:alice 30s";
    let two = "transfer ext:1002 30s";
    let op = "transfer agent:operator 30s";
    let menu = "play menu.wav barge";
    let invalid = "play invalid.wav barge";
    let cases: Vec<(&str, Script, &[&str])> = vec![
        (
            "right key after the prompt",
            vec![(Start, menu), (Done, ""), (Key('1'), alice)],
            &["a=key 1[1]", "one=pending"],
        ),
        (
            "barge-in during the prompt",
            vec![(Start, menu), (Key('2'), two)],
            &["a=key 2[2]", "two=pending"],
        ),
        (
            "wrong key then right",
            vec![
                (Start, menu),
                (Done, ""),
                (Key('9'), invalid),
                (Done, menu),
                (Done, ""),
                (Key('1'), alice),
            ],
            &["a=key 1[91]", "one=pending"],
        ),
        (
            "a key during the invalid prompt is the next try",
            vec![(Start, menu), (Key('*'), invalid), (Key('2'), two)],
            &["a=key 2[*2]", "two=pending"],
        ),
        (
            "timeout on every try goes to failure",
            vec![
                (Start, menu),
                (Done, ""),
                (Wait(5000), invalid),
                (Done, menu),
                (Done, ""),
                (Wait(5000), invalid),
                (Done, menu),
                (Done, ""),
                (Wait(5000), "play invalid.wav"),
                (Key('1'), ""),
                (Done, op),
            ],
            &["a=failure", "op=pending"],
        ),
        (
            "wrong keys on every try",
            vec![
                (Start, menu),
                (Key('7'), invalid),
                (Key('8'), invalid),
                (Done, menu),
                (Key('9'), "play invalid.wav"),
                (Done, op),
            ],
            &["a=failure[789]", "op=pending"],
        ),
        (
            "keys A-D are wrong keys",
            vec![
                (Start, menu),
                (Key('a'), invalid),
                (Key('x'), ""),
                (Key('1'), alice),
            ],
            &["a=key 1[A1]", "one=pending"],
        ),
    ];
    for (name, steps, path) in cases {
        let mut h = Harness::new(MENU);
        h.script(name, steps);
        assert_eq!(h.path(), path, "{name}");
    }
}

#[test]
fn menu_timer_starts_when_the_prompt_finishes() {
    let mut h = Harness::new(MENU);
    h.ev(Ev::Start);
    assert_eq!(
        h.run.poll_timeout(),
        None,
        "no timer while the prompt plays"
    );
    h.now += Duration::from_secs(12);
    h.ev(Ev::Done);
    assert_eq!(h.run.poll_timeout(), Some(h.now + Duration::from_secs(5)));
    // Early timer calls do nothing.
    h.run.handle_timeout(h.now + Duration::from_secs(4));
    assert_eq!(h.drain(), "");
    assert_eq!(h.ev(Ev::Wait(5000)), "play invalid.wav barge");
}

#[test]
fn menu_without_invalid_prompt_replays_the_menu() {
    use Ev::*;
    let nodes = "  a:\n    menu: { prompt: menu.wav, options: { \"1\": bye }, tries: 2, failure: bye }\n  bye: { hangup: {} }\n";
    let mut h = Harness::new(nodes);
    h.script(
        "no invalid",
        vec![
            (Start, "play menu.wav barge"),
            (Key('5'), "play menu.wav barge"),
            (Done, ""),
            (Wait(5000), END),
        ],
    );
    assert_eq!(h.path(), ["a=failure[5]", "bye=hung up"]);
}

#[test]
fn type_ahead() {
    use Ev::*;
    let menu = MENU.replace("  a:\n    menu", "  m:\n    menu");
    let quiet = format!("  a: {{ play: welcome.wav, next: m }}\n{menu}");
    let barge = format!("  a: {{ play: welcome.wav, barge: true, next: m }}\n{menu}");
    let cases: Vec<(&str, &str, Script, &[&str])> = vec![
        (
            "a key during a plain prompt waits for the menu",
            &quiet,
            vec![
                (Start, "play welcome.wav"),
                (Key('2'), ""),
                (Done, "transfer ext:1002 30s"),
            ],
            &["a=next", "m=key 2[2]", "two=pending"],
        ),
        (
            "a key cuts a barge prompt and goes to the menu",
            &barge,
            vec![
                (Start, "play welcome.wav barge"),
                (Key('1'), "transfer agent:alice 30s"),
            ],
            &["a=next", "m=key 1[1]", "one=pending"],
        ),
        (
            "a wrong key then a right one, typed ahead",
            &quiet,
            vec![
                (Start, "play welcome.wav"),
                (Key('9'), ""),
                (Key('1'), ""),
                (Done, "transfer agent:alice 30s"),
            ],
            &["a=next", "m=key 1[91]", "one=pending"],
        ),
        (
            "keys before the call is answered",
            &quiet,
            vec![
                (Key('2'), ""),
                (Start, "play welcome.wav"),
                (Done, "transfer ext:1002 30s"),
            ],
            &["a=next", "m=key 2[2]", "two=pending"],
        ),
    ];
    for (name, nodes, steps, path) in cases {
        let mut h = Harness::new(nodes);
        h.script(name, steps);
        assert_eq!(h.path(), path, "{name}");
    }
}

#[test]
fn type_ahead_is_bounded() {
    let nodes = "  a: { play: welcome.wav, next: c }\n  c: { collect: { var: x, max: 32, terminator: ~ }, next: bye }\n  bye: { hangup: {} }\n";
    let mut h = Harness::new(nodes);
    h.ev(Ev::Start);
    for _ in 0..40 {
        h.ev(Ev::Key('7'));
    }
    assert_eq!(h.ev(Ev::Done), "", "waits for more after the kept keys");
    assert_eq!(h.ev(Ev::Wait(3000)), END);
    assert_eq!(h.var("x"), Some(s(&"7".repeat(TYPE_AHEAD))));
}

const COLLECT: &str = "  a: { collect: { prompt: rate.wav, var: acct, min: 2, max: 4, timeout: 5s, inter_digit: 3s }, next: bye }
  bye: { hangup: {} }
";

#[test]
fn collect() {
    use Ev::*;
    use Outcome::Collected;
    let rate = "play rate.wav barge";
    let cases: Vec<(&str, Script, &str, Outcome)> = vec![
        (
            "terminator ends early and is not stored",
            vec![
                (Start, rate),
                (Key('1'), ""),
                (Key('2'), ""),
                (Key('#'), END),
            ],
            "12",
            Collected {
                end: CollectEnd::Terminator,
                short: false,
            },
        ),
        (
            "stops at max digits",
            vec![
                (Start, rate),
                (Done, ""),
                (Key('1'), ""),
                (Key('2'), ""),
                (Key('*'), ""),
                (Key('4'), END),
            ],
            "12*4",
            Collected {
                end: CollectEnd::Full,
                short: false,
            },
        ),
        (
            "min not reached, inter-digit timeout",
            vec![(Start, rate), (Done, ""), (Key('7'), ""), (Wait(3000), END)],
            "7",
            Collected {
                end: CollectEnd::Timeout,
                short: true,
            },
        ),
        (
            "nothing typed: first-key timeout after the prompt",
            vec![(Start, rate), (Done, ""), (Wait(5000), END)],
            "",
            Collected {
                end: CollectEnd::Timeout,
                short: true,
            },
        ),
        (
            "terminator before min",
            vec![(Start, rate), (Key('#'), END)],
            "",
            Collected {
                end: CollectEnd::Terminator,
                short: true,
            },
        ),
        (
            "enough digits then timeout",
            vec![
                (Start, rate),
                (Key('4'), ""),
                (Key('2'), ""),
                (Wait(3000), END),
            ],
            "42",
            Collected {
                end: CollectEnd::Timeout,
                short: false,
            },
        ),
    ];
    for (name, steps, value, outcome) in cases {
        let mut h = Harness::new(COLLECT);
        h.script(name, steps);
        assert_eq!(h.var("acct"), Some(s(value)), "{name}");
        assert_eq!(h.run.path()[0].outcome, outcome, "{name}");
    }
}

#[test]
fn collect_variants() {
    use Ev::*;
    // Exact digits, no prompt: the wait starts at once.
    let mut h = Harness::new(
        "  a: { collect: { var: pin, digits: 3, terminator: ~, timeout: 4s }, next: bye }\n  bye: { hangup: {} }\n",
    );
    h.script(
        "no prompt",
        vec![(Start, ""), (Key('#'), ""), (Key('1'), ""), (Key('2'), END)],
    );
    assert_eq!(h.var("pin"), Some(s("#12")));
    let mut h = Harness::new(
        "  a: { collect: { var: pin, digits: 3, terminator: ~, timeout: 4s }, next: bye }\n  bye: { hangup: {} }\n",
    );
    h.ev(Start);
    assert_eq!(h.ev(Wait(4000)), END);
    // A collect twice into one variable replaces the value.
    let mut h = Harness::new(
        "  a: { collect: { var: x, digits: 1 }, next: b }\n  b: { collect: { var: x, digits: 1 }, next: bye }\n  bye: { hangup: {} }\n",
    );
    h.script("twice", vec![(Key('1'), ""), (Start, ""), (Key('2'), END)]);
    assert_eq!(h.var("x"), Some(s("2")));
    assert_eq!(
        h.path(),
        [
            "a=collected (full)[1]",
            "b=collected (full)[2]",
            "bye=hung up"
        ]
    );
}

#[test]
fn branch_on_caller_thread_queue_and_vars() {
    let nodes = "  a:
    branch:
      - { if: \"caller.vip or thread.priority >= 2\", then: vip }
      - { if: \"contact.name == 'Ada' and thread.open\", then: ada }
      - { if: \"queue.support.waiting > 10 and not caller.known\", then: busy }
      - { if: \"dialled == '100' and caller.number == '+14155550123'\", then: known }
      - { else: other }
  vip: { transfer: vip, next: bye }
  ada: { transfer: ada, next: bye }
  busy: { transfer: busy, next: bye }
  known: { transfer: known, next: bye }
  other: { transfer: other, next: bye }
  bye: { hangup: {} }
";
    let busy_queues: Arc<dyn QueueView> = Arc::new(|q: &str| {
        (q == "support").then_some(QueueStats {
            waiting: 11,
            available: 0,
            ewt: Duration::from_secs(300),
        })
    });
    let base = CallContext::default;
    let cases: Vec<(&str, CallContext, &str, Outcome)> = vec![
        ("nothing known", base(), "other", Outcome::Else),
        (
            "vip",
            CallContext {
                caller_vip: true,
                ..base()
            },
            "vip",
            Outcome::Arm(0),
        ),
        (
            "urgent thread",
            CallContext {
                thread_priority: Some(2),
                ..base()
            },
            "vip",
            Outcome::Arm(0),
        ),
        (
            "ada with an open thread",
            CallContext {
                contact_name: Some("Ada".into()),
                thread_open: true,
                thread_priority: Some(1),
                ..base()
            },
            "ada",
            Outcome::Arm(1),
        ),
        (
            "ada without a thread",
            CallContext {
                contact_name: Some("Ada".into()),
                ..base()
            },
            "other",
            Outcome::Else,
        ),
        (
            "busy queue, unknown caller",
            CallContext {
                queues: Arc::clone(&busy_queues),
                ..base()
            },
            "busy",
            Outcome::Arm(2),
        ),
        (
            "busy queue, known caller",
            CallContext {
                queues: Arc::clone(&busy_queues),
                caller_known: true,
                ..base()
            },
            "other",
            Outcome::Else,
        ),
        (
            "numbers",
            CallContext {
                dialled: "100".into(),
                caller_number: Some("+14155550123".into()),
                ..base()
            },
            "known",
            Outcome::Arm(3),
        ),
    ];
    let (set, flow) = load(nodes);
    for (name, ctx, target, outcome) in cases {
        let mut h = Harness::of(Arc::clone(&set), Arc::clone(&flow), ctx, monday_10());
        assert_eq!(
            h.ev(Ev::Start),
            format!("transfer agent:{target} 30s"),
            "{name}"
        );
        assert_eq!(h.run.path()[0].outcome, outcome, "{name}");
    }
}

#[test]
fn hours_by_the_wall_clock() {
    let nodes = "  a: { hours: support-hours, open: o, closed: c }\n  o: { transfer: open, next: bye }\n  c: { transfer: closed, next: bye }\n  bye: { hangup: {} }\n";
    let utc = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
    // Berlin is UTC+1 in winter, UTC+2 from 29 March 2026.
    let cases = [
        ("monday 10:00", utc(2026, 3, 2, 9, 0), "open"),
        ("monday lunch 13:00", utc(2026, 3, 2, 12, 0), "closed"),
        ("monday 17:59", utc(2026, 3, 2, 16, 59), "open"),
        ("monday 18:00", utc(2026, 3, 2, 17, 0), "closed"),
        ("saturday 11:00", utc(2026, 3, 7, 10, 0), "open"),
        ("sunday 11:00", utc(2026, 3, 8, 10, 0), "closed"),
        ("summer monday 09:30", utc(2026, 6, 1, 7, 30), "open"),
        ("christmas eve", utc(2026, 12, 24, 10, 0), "closed"),
        ("christmas day", utc(2026, 12, 25, 10, 0), "closed"),
        ("new year's eve morning", utc(2026, 12, 31, 9, 0), "open"),
        (
            "new year's eve afternoon",
            utc(2026, 12, 31, 14, 0),
            "closed",
        ),
    ];
    let (set, flow) = load(nodes);
    for (name, at, want) in cases {
        let mut h = Harness::of(
            Arc::clone(&set),
            Arc::clone(&flow),
            CallContext::default(),
            at,
        );
        assert_eq!(
            h.ev(Ev::Start),
            format!("transfer agent:{want} 30s"),
            "{name}"
        );
    }
    // The check reads the clock when the node is entered, not when the run
    // was made: a greeting that ends after 18:00 finds the line closed.
    let nodes = nodes.replace("  a: {", "  h: {");
    let nodes = format!("  a: {{ play: welcome.wav, next: h }}\n{nodes}");
    let mut h = Harness::with(&nodes, CallContext::default(), utc(2026, 3, 2, 16, 59));
    h.ev(Ev::Start);
    h.now += Duration::from_secs(60);
    assert_eq!(h.ev(Ev::Done), "transfer agent:closed 30s");
}

const QUEUE: &str = "  a: { queue: support, priority: 1, after: survey, next: vm }
  b: { queue: sales, next: vm }
  survey: { collect: { prompt: rate.wav, var: csat, digits: 1, timeout: 5s }, next: bye }
  vm: { voicemail: {}, next: bye }
  bye: { hangup: {} }
";

#[test]
fn queue_outcomes() {
    use Ev::*;
    let answered = || {
        Queue(QueueOutcome::Answered {
            agent: "alice".into(),
        })
    };
    let gave_up = |reason| Queue(QueueOutcome::GaveUp { reason });
    let cases: Vec<(&str, Script, &[&str])> = vec![
        (
            "answered, then the survey after the agent hangs up",
            vec![
                (Start, "enqueue support 1"),
                (answered(), ""),
                (Key('9'), ""),
                (Queue(QueueOutcome::AgentHungUp), "play rate.wav barge"),
                (Key('4'), END),
            ],
            &[
                "a=answered by alice",
                "survey=collected (full)[4]",
                "bye=hung up",
            ],
        ),
        (
            "max wait",
            vec![
                (Start, "enqueue support 1"),
                (gave_up(GiveUpReason::MaxWait), "voicemail [] 120s beep"),
                (Voicemail(Some("vm.wav")), END),
            ],
            &["a=gave up (max wait)", "vm=recorded vm.wav", "bye=hung up"],
        ),
        (
            "closed",
            vec![
                (Start, "enqueue support 1"),
                (gave_up(GiveUpReason::Closed), "voicemail [] 120s beep"),
            ],
            &["a=gave up (closed)", "vm=pending"],
        ),
        (
            "no agents",
            vec![
                (Start, "enqueue support 1"),
                (gave_up(GiveUpReason::NoAgents), "voicemail [] 120s beep"),
            ],
            &["a=gave up (no agents)", "vm=pending"],
        ),
        (
            "the caller leaves the queue",
            vec![
                (Start, "enqueue support 1"),
                (Queue(QueueOutcome::CallerLeft), "finished"),
            ],
            &["a=caller left"],
        ),
        (
            "the caller hangs up on the agent",
            vec![
                (Start, "enqueue support 1"),
                (answered(), ""),
                (Hangup, "finished"),
            ],
            &["a=answered by alice"],
        ),
    ];
    for (name, steps, path) in cases {
        let mut h = Harness::new(QUEUE);
        h.script(name, steps);
        assert_eq!(h.path(), path, "{name}");
    }
    // Without `after` the call ends with the agent.
    let mut h = Harness::new(
        "  a: { queue: sales, next: vm }\n  vm: { voicemail: {}, next: bye }\n  bye: { hangup: {} }\n",
    );
    h.script(
        "no after",
        vec![
            (Start, "enqueue sales 5"),
            (answered(), ""),
            (Queue(QueueOutcome::AgentHungUp), END),
        ],
    );
    assert_eq!(h.path(), ["a=answered by alice"]);
}

#[test]
fn queue_priority_is_the_highest_of_node_queue_thread_and_vip() {
    let (set, flow) = load(QUEUE);
    let cases = [
        ("node", CallContext::default(), "enqueue support 1"),
        (
            "thread",
            CallContext {
                thread_priority: Some(2),
                ..CallContext::default()
            },
            "enqueue support 2",
        ),
        (
            "vip",
            CallContext {
                caller_vip: true,
                ..CallContext::default()
            },
            "enqueue support 3",
        ),
    ];
    for (name, ctx, want) in cases {
        let mut h = Harness::of(Arc::clone(&set), Arc::clone(&flow), ctx, monday_10());
        assert_eq!(h.ev(Ev::Start), want, "{name}");
    }
}

const WEBHOOK: &str =
    "  a: { webhook: { url: \"https://crm.example.com/ivr\", timeout: 3s }, next: b }
  b:
    branch:
      - { if: \"vars.tier == 'gold' and vars.score >= 4 and vars.ok\", then: gold }
      - { else: plain }
  gold: { transfer: gold, next: bye }
  plain: { transfer: plain, next: bye }
  bye: { hangup: {} }
";

#[test]
fn webhook() {
    let reply = json!({
        "tier": "gold",
        "score": 4,
        "ok": true,
        "nested": { "x": 1 },
        "list": [1],
        "nothing": null,
        "bad-name": "x",
        "long": "x".repeat(MAX_VAR_BYTES + 1),
    });
    let serde_json::Value::Object(reply) = reply else {
        unreachable!()
    };
    use Ev::*;
    let cases: Vec<(&str, Script, &str)> = vec![
        (
            "reply sets vars",
            vec![(Hook(Ok(reply.clone())), "transfer agent:gold 30s")],
            "replied (3 vars)",
        ),
        (
            "error goes to next",
            vec![(
                Hook(Err(WebhookError::Status(500))),
                "transfer agent:plain 30s",
            )],
            "webhook failed: HTTP status 500",
        ),
        (
            "timeout goes to next; a late reply is ignored",
            vec![
                (Key('1'), ""),
                (Wait(2900), "transfer agent:plain 30s"),
                (Hook(Ok(reply.clone())), ""),
            ],
            "webhook failed: no reply in time",
        ),
    ];
    for (name, steps, outcome) in cases {
        let mut h = Harness::new(WEBHOOK);
        assert_eq!(h.ev(Start), "webhook https://crm.example.com/ivr 3000ms");
        h.script(name, steps);
        assert_eq!(h.run.path()[0].outcome.to_string(), outcome, "{name}");
    }
    let mut h = Harness::new(WEBHOOK);
    h.ev(Start);
    h.ev(Hook(Ok(reply)));
    assert_eq!(h.var("tier"), Some(s("gold")));
    assert_eq!(h.var("score"), Some(Value::Num(4.0)));
    assert_eq!(h.var("ok"), Some(Value::Bool(true)));
    assert_eq!(h.run.vars().len(), 3);

    // `failure` wins over `next` on an error.
    let nodes = WEBHOOK.replace("timeout: 3s }", "timeout: 3s, failure: bye }");
    let mut h = Harness::new(&nodes);
    h.ev(Start);
    assert_eq!(h.ev(Hook(Err(WebhookError::Unreachable))), END);
}

#[test]
fn webhook_body_holds_context_and_vars() {
    let nodes = "  a: { set: { lang: en, tier: 2, cb: true }, next: w }\n  w: { webhook: { url: \"http://127.0.0.1:9/hook\" }, next: bye }\n  bye: { hangup: {} }\n";
    let (set, flow) = load(nodes);
    let ctx = CallContext {
        caller_number: Some("+14155550123".into()),
        caller_known: true,
        contact_name: Some("Ada".into()),
        thread_open: true,
        thread_priority: Some(1),
        thread_last_agent: Some("alice".into()),
        dialled: "100".into(),
        ..CallContext::default()
    };
    let t0 = Instant::now();
    let mut run = FlowRun::new(set, flow, ctx, WallClock::new(t0, monday_10()), t0);
    run.handle_start(t0);
    let Some(Action::CallWebhook { url, body, timeout }) = run.poll_action() else {
        panic!("a webhook")
    };
    assert_eq!(&*url, "http://127.0.0.1:9/hook");
    assert_eq!(timeout, Duration::from_secs(5));
    assert_eq!(
        body,
        json!({
            "flow": "main",
            "node": "w",
            "caller": { "number": "+14155550123", "known": true, "vip": false },
            "contact": { "name": "Ada" },
            "thread": { "open": true, "priority": 1, "last_agent": "alice" },
            "dialled": "100",
            "vars": { "lang": "en", "tier": 2, "cb": true },
        })
    );
    assert_eq!(run.poll_timeout(), Some(t0 + Duration::from_secs(5)));
}

#[test]
fn hangup_mid_prompt_stops_everything() {
    use Ev::*;
    let cases: Vec<(&str, &str, Script)> = vec![
        (
            "menu prompt",
            MENU,
            vec![(Start, "play menu.wav barge"), (Hangup, "stop; finished")],
        ),
        (
            "waiting for a menu key",
            MENU,
            vec![
                (Start, "play menu.wav barge"),
                (Done, ""),
                (Hangup, "finished"),
            ],
        ),
        (
            "collect prompt",
            COLLECT,
            vec![(Start, "play rate.wav barge"), (Hangup, "stop; finished")],
        ),
        (
            "queue",
            QUEUE,
            vec![(Start, "enqueue support 1"), (Hangup, "finished")],
        ),
        (
            "before the answer",
            MENU,
            vec![(Hangup, "finished"), (Start, "")],
        ),
    ];
    for (name, nodes, steps) in cases {
        let mut h = Harness::new(nodes);
        h.script(name, steps);
        assert!(h.run.is_finished(), "{name}");
        assert_eq!(h.run.poll_timeout(), None, "{name}");
        for ev in [
            Key('1'),
            Done,
            Hangup,
            Queue(QueueOutcome::AgentHungUp),
            Transfer(true),
        ] {
            assert_eq!(h.ev(ev), "", "{name}: nothing after the hang-up");
        }
        if let Some(last) = h.run.path().last() {
            assert_eq!(last.outcome, Outcome::CallerLeft, "{name}");
        }
    }
    // Actions not yet polled are dropped.
    let mut h = Harness::new(MENU);
    h.run.handle_start(h.now);
    h.run.handle_hangup(h.now);
    assert_eq!(h.drain(), "stop; finished");
}

#[test]
fn runaway_guard_hangs_up() {
    // Validation refuses a loop without input, so build one by hand.
    let (set, flow) = load(
        "  a: { set: { n: 1 }, next: b }\n  b: { set: { m: 2 }, next: bye }\n  bye: { hangup: {} }\n",
    );
    let mut looped = (*flow).clone();
    let bye = looped.node_id("bye").expect("bye");
    let a = looped.node_id("a").expect("a");
    if let Some(node) = looped.nodes.get_mut(bye.index()) {
        node.action = model::Action::Set(vec![]);
        node.next = Some(a);
    }
    let mut h = Harness::of(set, Arc::new(looped), CallContext::default(), monday_10());
    assert_eq!(h.ev(Ev::Start), END);
    let path = h.run.path();
    assert_eq!(path.len(), MAX_PATH);
    assert_eq!(
        h.run.path_dropped(),
        MAX_STEPS_WITHOUT_INPUT as usize - MAX_PATH
    );
    assert_eq!(path.last().map(|s| &s.outcome), Some(&Outcome::Runaway));
    assert!(h.run.is_finished());
}

/// The complete example of docs/flows.md, walked end to end.
const DOCS_EXAMPLE: &str = "name: main
numbers: [\"100\", \"+14155550100\"]
start: greet
nodes:
  greet:   { play: welcome.wav, next: open }
  open:    { hours: support-hours, open: menu, closed: closed }
  menu:
    menu:
      prompt: menu.wav
      options: { \"1\": sales, \"2\": support, \"0\": operator }
      timeout: 5s
      tries: 3
      invalid: invalid.wav
      failure: operator
  sales:
    queue: sales
    after: survey
    next: voicemail
  support:
    queue: support
    priority: 1
    after: survey
    next: voicemail
  operator:
    branch:
      - { if: \"caller.vip or thread.priority >= 2\", then: vip }
      - { else: support }
  vip:
    queue: support
    priority: 3
    next: voicemail
  survey:
    collect: { prompt: rate.wav, var: csat, digits: 1, timeout: 5s }
    next: score
  score:
    branch:
      - { if: \"vars.csat <= 2\", then: report }
      - { else: bye }
  report:
    webhook: { url: \"https://crm.example.com/low-score\", timeout: 3s }
    next: bye
  closed:  { play: closed.wav, next: voicemail }
  voicemail: { voicemail: { greeting: leave-message.wav, max: 120s, beep: true }, next: bye }
  bye:     { hangup: {} }
";

#[test]
fn docs_example_end_to_end() {
    use Ev::*;
    let s = Scratch::new();
    s.write("hours.yaml", HOURS);
    let set = Arc::new(s.good(DOCS_EXAMPLE));
    let flow = Arc::clone(set.flow("main").expect("main"));
    let mut h = Harness::of(
        Arc::clone(&set),
        Arc::clone(&flow),
        CallContext::default(),
        monday_10(),
    );
    h.script(
        "open: support, survey, low score",
        vec![
            (Start, "play welcome.wav"),
            (Done, "play menu.wav barge"),
            (Key('2'), "enqueue support 1"),
            (
                Queue(QueueOutcome::Answered {
                    agent: "bob".into(),
                }),
                "",
            ),
            (Queue(QueueOutcome::AgentHungUp), "play rate.wav barge"),
            (Key('1'), "webhook https://crm.example.com/low-score 3000ms"),
            (Hook(Ok(Map::new())), END),
        ],
    );
    assert_eq!(
        h.path(),
        [
            "greet=next",
            "open=open",
            "menu=key 2[2]",
            "support=answered by bob",
            "survey=collected (full)[1]",
            "score=arm 1",
            "report=replied (0 vars)",
            "bye=hung up",
        ]
    );
    let json = h.run.path_json();
    assert_eq!(
        json[2],
        json!({ "node": "menu", "at_ms": 200, "digits": "2", "outcome": "key 2" })
    );
    assert_eq!(json[7]["at_ms"], 700);

    let sunday = Utc.with_ymd_and_hms(2026, 3, 8, 10, 0, 0).unwrap();
    let mut h = Harness::of(set, flow, CallContext::default(), sunday);
    h.script(
        "closed: voicemail",
        vec![
            (Start, "play welcome.wav"),
            (Done, "play closed.wav"),
            (Done, "voicemail [leave-message.wav] 120s beep"),
            (Voicemail(Some("vm.wav")), END),
        ],
    );
    assert_eq!(
        h.path(),
        [
            "greet=next",
            "open=closed",
            "closed=next",
            "voicemail=recorded vm.wav",
            "bye=hung up"
        ]
    );
}

#[test]
fn wall_clock_follows_instants() {
    let t0 = Instant::now() + Duration::from_secs(100);
    let clock = WallClock::new(t0, monday_10());
    assert_eq!(clock.utc_at(t0), monday_10());
    assert_eq!(
        clock.utc_at(t0 + Duration::from_secs(90)),
        monday_10() + chrono::TimeDelta::seconds(90)
    );
    assert_eq!(
        clock.utc_at(t0 - Duration::from_secs(30)),
        monday_10() - chrono::TimeDelta::seconds(30)
    );
}
