//! Routing engine (DESIGN §6) with a fake clock: strategies, fairness
//! across queues, priorities, widening, preferred agents, missed offers,
//! wrap-up, hours, max wait, "no agents", estimated wait and statistics.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ewt::{DequeueRate, HandleTime, estimate};
use super::*;
use crate::acd::hours::parse_hours_file;
use crate::acd::queues::parse_queues_file;

fn queues(text: &str) -> Arc<QueueSet> {
    let (set, diags) = parse_queues_file(Path::new("queues.yaml"), text);
    assert!(diags.is_empty(), "unexpected problems: {diags:#?}");
    Arc::new(set)
}

fn hours(text: &str) -> Arc<HoursSet> {
    let (set, diags) = parse_hours_file(Path::new("hours.yaml"), text);
    assert!(diags.is_empty(), "unexpected problems: {diags:#?}");
    Arc::new(set)
}

/// A Monday, 10:00 UTC.
const MONDAY_10: &str = "2026-03-02T10:00:00Z";

/// The engine and a fake clock at `t0 + seconds`.
struct H {
    r: Router,
    t0: Instant,
    now: Instant,
}

impl H {
    fn new(queues_yaml: &str) -> H {
        H::with_hours(queues_yaml, Arc::new(HoursSet::default()), 1)
    }

    fn with_hours(queues_yaml: &str, hours: Arc<HoursSet>, seed: u64) -> H {
        let t0 = Instant::now();
        let clock = WallClock {
            instant: t0,
            utc: MONDAY_10.parse().expect("test time"),
        };
        H {
            r: Router::new(queues(queues_yaml), hours, clock, seed),
            t0,
            now: t0,
        }
    }

    /// Moves the clock to `t0 + secs`, running every timer on the way at
    /// its own time.
    fn go(&mut self, secs: u64) {
        let target = self.t0 + Duration::from_secs(secs);
        while let Some(t) = self.r.poll_timeout()
            && t <= target
        {
            self.now = self.now.max(t);
            self.r.handle_timeout(t);
        }
        self.now = target;
    }

    /// A reachable agent with `skills`.
    fn agent(&mut self, login: &str, skills: &[(&str, u8)]) {
        let skills: Skills = skills.iter().map(|&(s, l)| (s.to_owned(), l)).collect();
        self.r.set_agent(self.now, login, &skills);
        self.r.set_reachable(self.now, login, true).expect("agent");
    }

    fn enqueue(&mut self, id: u64, queue: &str, priority: u32) {
        self.r
            .enqueue(self.now, CallerId(id), queue, priority, None)
            .expect("enqueue");
    }

    fn answer(&mut self, id: u64, login: &str) {
        self.r
            .offer_answered(self.now, CallerId(id), login)
            .expect("answer");
    }

    fn end(&mut self, login: &str) {
        self.r.call_ended(self.now, login).expect("end");
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.r.poll_event()).collect()
    }

    /// The offers made since the last look, as (caller, agents).
    fn offers(&mut self) -> Vec<(u64, Vec<String>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Offer { caller, agents, .. } => Some((caller.0, agents)),
                _ => None,
            })
            .collect()
    }

    fn left(&mut self) -> Vec<(u64, LeftReason)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Left { caller, reason, .. } => Some((caller.0, reason)),
                _ => None,
            })
            .collect()
    }

    fn state(&self, login: &str) -> AgentState {
        self.r.agent_state(login).expect("agent")
    }

    /// Puts `login` on a call from a throw-away caller of `queue`.
    fn busy(&mut self, login: &str, queue: &str, id: u64) {
        self.r
            .enqueue(self.now, CallerId(id), queue, 0, Some(login))
            .expect("enqueue");
        let offers = self.offers();
        assert_eq!(offers, vec![(id, vec![login.to_owned()])]);
        self.answer(id, login);
    }
}

fn one(login: &str) -> Vec<String> {
    vec![login.to_owned()]
}

fn queue_yaml(strategy: &str, extra: &str) -> String {
    format!(
        "queues:\n  q:\n    skills: {{ support: 1 }}\n    strategy: {strategy}\n    prefer_last_agent: 1s\n{extra}"
    )
}

#[test]
fn each_strategy_picks_its_agent() {
    // a answers a call at 0; c joins at 1, b at 2, a ends its call at 3
    // (agent order a, c, b). b has the highest skill, c has idled longest,
    // a has the most calls.
    struct Row {
        strategy: &'static str,
        expect: &'static str,
    }
    let table = [
        Row {
            strategy: "longest-idle",
            expect: "c",
        },
        // a has one call, b and c none; c has idled longest.
        Row {
            strategy: "fewest-calls",
            expect: "c",
        },
        Row {
            strategy: "best-skill",
            expect: "b",
        },
        // The next agent in the engine's order (a, c, b) after a, the last
        // pick (the busy call).
        Row {
            strategy: "round-robin",
            expect: "c",
        },
    ];
    for row in table {
        let mut h = H::new(&queue_yaml(row.strategy, ""));
        h.agent("a", &[("support", 1)]);
        h.busy("a", "q", 100);
        h.go(1);
        h.agent("c", &[("support", 2)]);
        h.go(2);
        h.agent("b", &[("support", 5)]);
        h.go(3);
        h.end("a");
        h.go(4);
        h.enqueue(1, "q", 0);
        assert_eq!(h.offers(), vec![(1, one(row.expect))], "{}", row.strategy);
    }
}

#[test]
fn fewest_calls_differs_from_longest_idle() {
    for (strategy, expect) in [("longest-idle", "a"), ("fewest-calls", "b")] {
        let mut h = H::new(&queue_yaml(strategy, ""));
        h.agent("a", &[("support", 1)]);
        h.agent("b", &[("support", 1)]);
        h.busy("a", "q", 100);
        h.go(3);
        h.end("a");
        // b's idle time restarts after a pause: a has idled longer but
        // has taken more calls.
        h.r.pause(h.now, "b", "coffee").expect("pause");
        h.go(10);
        h.r.unpause(h.now, "b").expect("unpause");
        h.events();
        h.go(11);
        h.enqueue(1, "q", 0);
        assert_eq!(h.offers(), vec![(1, one(expect))], "{strategy}");
    }
}

#[test]
fn round_robin_rotates_and_wraps() {
    let mut h = H::new(&queue_yaml("round-robin", ""));
    for login in ["a", "b", "c"] {
        h.agent(login, &[("support", 1)]);
    }
    let mut picked = Vec::new();
    for id in 1..=4 {
        h.enqueue(id, "q", 0);
        let offers = h.offers();
        let agent = offers[0].1[0].clone();
        h.answer(id, &agent);
        h.end(&agent);
        picked.push(agent);
    }
    assert_eq!(picked, ["a", "b", "c", "a"]);
}

#[test]
fn random_is_seeded_and_spreads() {
    let run = |seed: u64| {
        let mut h = H::with_hours(
            &queue_yaml("random", ""),
            Arc::new(HoursSet::default()),
            seed,
        );
        for login in ["a", "b", "c", "d"] {
            h.agent(login, &[("support", 1)]);
        }
        let mut picked = Vec::new();
        for id in 1..=40 {
            h.enqueue(id, "q", 0);
            let agent = h.offers()[0].1[0].clone();
            h.answer(id, &agent);
            h.end(&agent);
            picked.push(agent);
        }
        picked
    };
    let first = run(7);
    assert_eq!(first, run(7));
    for login in ["a", "b", "c", "d"] {
        assert!(first.iter().any(|p| p == login), "{login} never picked");
    }
}

#[test]
fn ring_all_offers_everyone_and_the_first_answer_wins() {
    let mut h = H::new(&queue_yaml("ring-all", ""));
    for login in ["a", "b", "c"] {
        h.agent(login, &[("support", 1)]);
    }
    h.agent("x", &[("sales", 1)]);
    h.events();
    h.enqueue(1, "q", 0);
    let offers = h.offers();
    assert_eq!(offers.len(), 1);
    let mut rung = offers[0].1.clone();
    rung.sort();
    assert_eq!(rung, ["a", "b", "c"]);
    assert_eq!(h.state("b"), AgentState::Offered);
    h.answer(1, "b");
    let events = h.events();
    assert!(events.iter().any(
        |e| matches!(e, Event::Cancel { caller: CallerId(1), agents } if {
            let mut a = agents.clone(); a.sort(); a == ["a", "c"]
        })
    ));
    assert_eq!(h.state("a"), AgentState::Available);
    assert_eq!(h.state("b"), AgentState::OnCall);
    assert_eq!(h.state("c"), AgentState::Available);
}

#[test]
fn ring_all_timeout_misses_every_agent() {
    let mut h = H::new(&queue_yaml(
        "ring-all",
        "    ring_timeout: 10s\n    max_no_answer: 1\n",
    ));
    h.agent("a", &[("support", 1)]);
    h.agent("b", &[("support", 1)]);
    h.enqueue(1, "q", 0);
    assert_eq!(h.offers().len(), 1);
    h.go(10);
    let reason = AgentState::Paused(MISSED_CALLS.to_owned());
    assert_eq!(h.state("a"), reason);
    assert_eq!(h.state("b"), reason);
    // Nobody unpaused can serve: the caller leaves.
    assert_eq!(h.left(), vec![(1, LeftReason::NoAgents)]);
}

const TWO_QUEUES: &str = "queues:
  support:
    skills: { support: 1 }
  sales:
    skills: { sales: 1 }
";

#[test]
fn an_agent_of_two_queues_takes_the_best_caller_of_either() {
    // (caller, queue, priority, enters at) → order the agent takes them.
    struct Row {
        callers: [(u64, &'static str, u32, u64); 3],
        order: [u64; 3],
    }
    let table = [
        // Same priority: longest wait first, whatever the queue.
        Row {
            callers: [
                (1, "support", 0, 1),
                (2, "sales", 0, 2),
                (3, "support", 0, 3),
            ],
            order: [1, 2, 3],
        },
        Row {
            callers: [(1, "sales", 0, 1), (2, "support", 0, 2), (3, "sales", 0, 3)],
            order: [1, 2, 3],
        },
        // Priority beats time waited, across queues.
        Row {
            callers: [
                (1, "support", 0, 1),
                (2, "sales", 0, 2),
                (3, "sales", 10, 3),
            ],
            order: [3, 1, 2],
        },
    ];
    for row in table {
        let mut h = H::new(TWO_QUEUES);
        h.agent("x", &[("support", 1), ("sales", 2)]);
        h.busy("x", "support", 100);
        for (id, queue, prio, at) in row.callers {
            h.go(at);
            h.enqueue(id, queue, prio);
        }
        let mut order = Vec::new();
        for _ in 0..3 {
            h.end("x");
            let offers = h.offers();
            assert_eq!(offers.len(), 1);
            order.push(offers[0].0);
            h.answer(offers[0].0, "x");
        }
        assert_eq!(order, row.order);
    }
}

#[test]
fn priority_change_while_waiting_moves_the_caller_up() {
    let mut h = H::new(TWO_QUEUES);
    h.agent("x", &[("support", 1), ("sales", 1)]);
    h.busy("x", "support", 100);
    h.enqueue(1, "support", 0);
    h.go(1);
    h.enqueue(2, "sales", 0);
    assert_eq!(h.r.position(CallerId(2), h.now).map(|p| p.0), Some(1));
    h.r.set_priority(h.now, CallerId(2), 5).expect("priority");
    h.end("x");
    assert_eq!(h.offers(), vec![(2, one("x"))]);
}

#[test]
fn widening_relaxes_skills_then_adds_queues() {
    let yaml = "queues:
  support:
    skills: { support: 3, english: 1 }
    widen:
      - { after: 60s, skills: { support: 1 } }
      - { after: 120s, skills: { english: 0 } }
      - { after: 180s, also: [sales] }
  sales:
    skills: { sales: 1 }
";
    // Agent skills → when it is offered the caller who entered at 0.
    let table: [(&[(&str, u8)], u64); 4] = [
        (&[("support", 3), ("english", 1)], 0),
        (&[("support", 1), ("english", 2)], 60),
        (&[("support", 2)], 120),
        (&[("sales", 1)], 180),
    ];
    for (skills, at) in table {
        let mut h = H::new(yaml);
        h.agent("x", skills);
        h.enqueue(1, "support", 0);
        if at > 0 {
            h.go(at - 1);
            assert!(h.offers().is_empty(), "{skills:?} too early");
        }
        h.go(at);
        assert_eq!(h.offers(), vec![(1, one("x"))], "{skills:?}");
    }
}

#[test]
fn preferred_agent_is_waited_for_then_anyone() {
    let yaml = "queues:
  q:
    skills: { support: 1 }
    prefer_last_agent: 30s
";
    // The preferred agent frees up in time.
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.agent("b", &[("support", 1)]);
    h.r.enqueue(h.now, CallerId(1), "q", 0, Some("a"))
        .expect("enqueue");
    assert!(h.offers().is_empty(), "b must not take a's caller");
    h.go(10);
    h.end("a");
    assert_eq!(h.offers(), vec![(1, one("a"))]);

    // It does not: anyone after the wait.
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.agent("b", &[("support", 1)]);
    h.r.enqueue(h.now, CallerId(1), "q", 0, Some("a"))
        .expect("enqueue");
    h.go(29);
    assert!(h.offers().is_empty());
    h.go(30);
    assert_eq!(h.offers(), vec![(1, one("b"))]);

    // Paused or unreachable: no wait at all, and a pause while waiting
    // ends the wait.
    for (setup, during) in [(true, false), (false, true)] {
        let mut h = H::new(yaml);
        h.agent("a", &[("support", 1)]);
        h.busy("a", "q", 100);
        h.agent("b", &[("support", 1)]);
        if setup {
            h.r.pause(h.now, "a", "lunch").expect("pause");
        }
        h.r.enqueue(h.now, CallerId(1), "q", 0, Some("a"))
            .expect("enqueue");
        if during {
            assert!(h.offers().is_empty());
            h.go(5);
            h.r.set_reachable(h.now, "a", false).expect("reachable");
        }
        assert_eq!(h.offers(), vec![(1, one("b"))]);
    }
}

#[test]
fn missed_offers_go_to_the_next_agent_and_pause_after_max_no_answer() {
    let yaml = "queues:
  q:
    skills: { support: 1 }
    ring_timeout: 10s
    max_no_answer: 2
";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.go(1);
    h.agent("b", &[("support", 1)]);
    h.go(2);
    h.enqueue(1, "q", 0);
    assert_eq!(h.offers(), vec![(1, one("a"))]);
    // Ring timeout: cancelled, then b.
    h.go(12);
    let events = h.events();
    assert!(events.contains(&Event::Cancel {
        caller: CallerId(1),
        agents: one("a")
    }));
    assert!(events.contains(&Event::Offer {
        caller: CallerId(1),
        agents: one("b"),
        queue: "q".into()
    }));
    assert_eq!(h.state("a"), AgentState::Available);
    // b rejects: back to a.
    h.r.offer_rejected(h.now, CallerId(1), "b").expect("reject");
    assert_eq!(h.offers(), vec![(1, one("a"))]);
    // a misses a second time in a row: paused; b again.
    h.r.offer_timeout(h.now, CallerId(1), "a").expect("timeout");
    assert_eq!(h.state("a"), AgentState::Paused(MISSED_CALLS.to_owned()));
    assert_eq!(h.offers(), vec![(1, one("b"))]);
    h.answer(1, "b");
    // The segment lists every offer.
    let mut h2 = h;
    h2.end("b");
    let stats = h2.r.stats("q", h2.now).expect("stats");
    assert_eq!(stats.answered, 1);
    // An answered offer resets the count.
    h2.r.unpause(h2.now, "a").expect("unpause");
    assert_eq!(h2.state("a"), AgentState::Available);
}

#[test]
fn segment_records_offers_and_answer() {
    let yaml = "queues:\n  q:\n    skills: { support: 1 }\n    ring_timeout: 5s\n";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.go(1);
    h.agent("b", &[("support", 1)]);
    h.go(2);
    h.enqueue(1, "q", 0);
    h.go(7);
    h.go(8);
    h.answer(1, "b");
    let segment = h
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Segment(s) => Some(s),
            _ => None,
        })
        .expect("segment");
    let s = |n| h.t0 + Duration::from_secs(n);
    assert_eq!(
        segment,
        Segment {
            caller: CallerId(1),
            queue: "q".into(),
            enqueued_at: s(2),
            offers: vec![
                OfferRecord {
                    login: "a".into(),
                    at: s(2)
                },
                OfferRecord {
                    login: "b".into(),
                    at: s(7)
                },
            ],
            answered: Some(("b".into(), s(8))),
            outcome: Outcome::Answered,
            wait: Duration::from_secs(6),
        }
    );
}

#[test]
fn wrap_up_then_available_again() {
    let yaml = "queues:\n  q:\n    skills: { support: 1 }\n    wrap_up: 10s\n";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.go(5);
    h.end("a");
    assert_eq!(h.state("a"), AgentState::WrapUp);
    h.go(6);
    h.enqueue(1, "q", 0);
    h.go(14);
    assert!(h.offers().is_empty());
    assert_eq!(h.state("a"), AgentState::WrapUp);
    h.go(15);
    assert_eq!(h.offers(), vec![(1, one("a"))]);
    // Every state change was reported, in order.
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.events();
    h.end("a");
    h.go(10);
    let states: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::AgentState { state, .. } => Some(state.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(states, ["wrap_up", "available"]);
}

#[test]
fn hours_close_while_callers_wait() {
    // Monday 10:00 UTC at t0; open until 10:01.
    let hours = hours(
        "hours:\n  h:\n    timezone: UTC\n    week: { mon: [\"09:00-10:01\"], tue: [\"09:00-10:00\"] }\n",
    );
    let yaml = "queues:\n  q:\n    skills: { support: 1 }\n    hours: h\n";
    let mut h = H::with_hours(yaml, hours, 1);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.enqueue(1, "q", 0);
    h.go(30);
    h.enqueue(2, "q", 5);
    h.go(59);
    assert!(h.left().is_empty());
    h.go(60);
    let mut left = h.left();
    left.sort_by_key(|l| l.0);
    assert_eq!(left, vec![(1, LeftReason::Closed), (2, LeftReason::Closed)]);
    // Entering a closed queue: straight out.
    h.go(61);
    h.enqueue(3, "q", 0);
    assert_eq!(h.left(), vec![(3, LeftReason::Closed)]);
}

#[test]
fn max_wait_leaves_through_next() {
    let yaml = "queues:\n  q:\n    skills: { support: 1 }\n    max_wait: 30s\n";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.go(1);
    h.enqueue(1, "q", 0);
    h.go(30);
    assert!(h.left().is_empty());
    h.go(31);
    let events = h.events();
    assert!(events.contains(&Event::Left {
        caller: CallerId(1),
        queue: "q".into(),
        reason: LeftReason::MaxWait
    }));
    assert!(events.iter().any(|e| matches!(e,
        Event::Segment(s) if s.outcome == Outcome::Left(LeftReason::MaxWait)
            && s.wait == Duration::from_secs(30))));
    assert_eq!(
        h.r.stats("q", h.now).map(|s| (s.waiting, s.left)),
        Some((0, 1))
    );
}

#[test]
fn no_agent_that_could_ever_serve() {
    let yaml = "queues:
  q:
    skills: { support: 3 }
    widen:
      - { after: 60s, skills: { support: 1 } }
";
    // Agent setup → does a caller stay?
    struct Row {
        name: &'static str,
        skills: &'static [(&'static str, u8)],
        reachable: bool,
        paused: bool,
        stays: bool,
    }
    let table = [
        Row {
            name: "no agent has the skill",
            skills: &[("sales", 5)],
            reachable: true,
            paused: false,
            stays: false,
        },
        Row {
            name: "only after widening",
            skills: &[("support", 1)],
            reachable: true,
            paused: false,
            stays: true,
        },
        Row {
            name: "registration expired",
            skills: &[("support", 3)],
            reachable: false,
            paused: false,
            stays: false,
        },
        Row {
            name: "paused",
            skills: &[("support", 3)],
            reachable: true,
            paused: true,
            stays: false,
        },
    ];
    for row in table {
        let mut h = H::new(yaml);
        h.agent("a", row.skills);
        h.r.set_reachable(h.now, "a", row.reachable)
            .expect("reachable");
        if row.paused {
            h.r.pause(h.now, "a", "lunch").expect("pause");
        }
        h.enqueue(1, "q", 0);
        let left = h.left();
        if row.stays {
            assert!(left.is_empty(), "{}", row.name);
        } else {
            assert_eq!(left, vec![(1, LeftReason::NoAgents)], "{}", row.name);
        }
    }

    // The last agent pauses while callers wait: they leave.
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 3)]);
    h.busy("a", "q", 100);
    h.enqueue(1, "q", 0);
    assert!(h.left().is_empty());
    h.r.pause(h.now, "a", "lunch").expect("pause");
    assert_eq!(h.left(), vec![(1, LeftReason::NoAgents)]);
}

#[test]
fn expired_registration_is_not_offered_and_an_offer_moves_on() {
    let yaml = "queues:\n  q:\n    skills: { support: 1 }\n";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.go(1);
    h.agent("b", &[("support", 1)]);
    h.r.set_reachable(h.now, "a", false).expect("reachable");
    assert_eq!(h.state("a"), AgentState::Offline);
    h.enqueue(1, "q", 0);
    assert_eq!(h.offers(), vec![(1, one("b"))]);
    // b's registration expires while ringing: cancelled, a is back.
    h.r.set_reachable(h.now, "a", true).expect("reachable");
    h.r.set_reachable(h.now, "b", false).expect("reachable");
    let events = h.events();
    assert!(events.contains(&Event::Cancel {
        caller: CallerId(1),
        agents: one("b")
    }));
    assert!(events.contains(&Event::Offer {
        caller: CallerId(1),
        agents: one("a"),
        queue: "q".into()
    }));
    assert_eq!(h.state("b"), AgentState::Offline);
}

#[test]
fn announcements_give_position_and_wait_as_callers_move_up() {
    let yaml = "queues:
  q:
    skills: { support: 1 }
    announce: { every: 30s }
";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.busy("a", "q", 100);
    h.events();
    for id in 1..=3 {
        h.enqueue(id, "q", 0);
    }
    let announces = |h: &mut H| -> Vec<(u64, Option<u32>, Option<Duration>)> {
        h.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Announce {
                    caller,
                    position,
                    ewt,
                } => Some((caller.0, position, ewt)),
                _ => None,
            })
            .collect()
    };
    // One agent, default AHT 180 s: position × 180 s.
    let m = |s| Some(Duration::from_secs(s));
    let expected = vec![
        (1, Some(1), m(180)),
        (2, Some(2), m(360)),
        (3, Some(3), m(540)),
    ];
    // The first announcement comes on entry, then one every 30 s.
    for at in [0, 30] {
        h.go(at);
        let mut got = announces(&mut h);
        got.sort_by_key(|a| a.0);
        assert_eq!(got, expected, "at {at} s");
    }
    h.go(40);
    h.end("a");
    h.answer(1, "a");
    h.go(59);
    h.end("a");
    // Caller 2 is ringing a and skips its announcement; caller 3 moved up
    // (caller 2 is still ahead until answered).
    h.events();
    h.go(60);
    let got = announces(&mut h);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1), (3, Some(2)));
    // AHT is now 40 s then 19 s averaged (35.8 s); the rate observed over
    // the first minute (two answers) speeds the estimate a little less than
    // the staff alone would: 2 / ((1/35.8 + observed) / 2) ≈ 66 s.
    let ewt = got[0].2.expect("ewt").as_secs_f64();
    assert!((60.0..72.0).contains(&ewt), "{ewt}");
    assert_eq!(
        h.r.stats("q", h.now).map(|s| s.aht.as_millis()),
        Some(35_800)
    );
}

#[test]
fn no_entry_announcement_for_a_caller_offered_at_once() {
    let mut h = H::new("queues:\n  q: { skills: { support: 1 }, announce: { every: 30s } }\n");
    h.agent("a", &[("support", 1)]);
    h.events();
    h.enqueue(1, "q", 0);
    h.go(0);
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Offer { .. })),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Announce { .. })),
        "{events:?}"
    );
}

#[test]
fn estimated_wait_formula() {
    let s = Duration::from_secs;
    // (position, AHT, agents, observed rate) → EWT
    let table = [
        (1, s(180), 1, None, s(180)),
        (3, s(180), 2, None, s(270)),
        (4, s(120), 0, None, s(480)),
        // Staff could give 2/60 per s; observed 1/60 per s: rate 1.5/60.
        (3, s(60), 2, Some(1.0 / 60.0), s(120)),
    ];
    for (position, aht, agents, observed, want) in table {
        let got = estimate(position, aht, agents, observed);
        assert!(
            got.abs_diff(want) < Duration::from_millis(5),
            "{position} {aht:?} {agents} {observed:?}: {got:?} != {want:?}"
        );
    }

    let mut aht = HandleTime::default();
    assert_eq!(aht.get(), DEFAULT_AHT);
    aht.record(s(100));
    assert_eq!(aht.get(), s(100));
    aht.record(s(200));
    assert_eq!(aht.get(), s(120));

    // One answer every 10 s for 20 minutes: 0.1 per second.
    let t0 = Instant::now();
    let mut rate = DequeueRate::default();
    rate.record(t0);
    assert_eq!(rate.per_sec(t0 + s(30)), None);
    for i in 1..=120 {
        rate.record(t0 + s(10 * i));
    }
    let r = rate.per_sec(t0 + s(1200)).expect("rate");
    assert!((r - 0.1).abs() < 0.01, "{r}");
}

#[test]
fn statistics_formulas() {
    let yaml = "queues:
  q:
    skills: { support: 1 }
    service_level: 20s
  other:
    skills: { sales: 1 }
";
    let mut h = H::new(yaml);
    h.agent("a", &[("support", 1)]);
    h.agent("p", &[("support", 1)]);
    h.agent("o", &[("support", 1)]);
    h.r.pause(h.now, "p", "lunch").expect("pause");
    h.r.set_reachable(h.now, "o", false).expect("reachable");
    h.agent("s", &[("sales", 1)]);
    // Answered at once (within 20 s), talks 100 s.
    h.enqueue(1, "q", 0);
    h.answer(1, "a");
    h.enqueue(2, "q", 0);
    h.enqueue(3, "q", 0);
    h.go(30);
    // Caller 3 hangs up after 30 s: abandoned.
    h.r.remove(h.now, CallerId(3)).expect("remove");
    h.go(100);
    h.end("a");
    // Caller 2 answered after 100 s: outside the service level.
    h.answer(2, "a");
    h.enqueue(4, "q", 0);
    h.go(160);
    let st = h.r.stats("q", h.now).expect("stats");
    assert_eq!(
        st,
        QueueStats {
            waiting: 1,
            longest_wait: Duration::from_secs(60),
            agents_staffed: 2,
            agents_available: 0,
            agents_offered: 0,
            agents_on_call: 1,
            agents_wrap_up: 0,
            agents_paused: 1,
            offered: 4,
            answered: 2,
            abandoned: 1,
            left: 0,
            service_level: Some(1.0 / 3.0),
            asa: Some(Duration::from_secs(50)),
            aht: Duration::from_secs(100),
        }
    );
    assert!(h.r.stats("nope", h.now).is_none());
}

#[test]
fn reload_keeps_waiting_callers() {
    let before = "queues:\n  q:\n    skills: { support: 3 }\n  gone:\n    skills: { support: 1 }\n";
    let after = "queues:\n  q:\n    skills: { support: 1 }\n";
    let mut h = H::new(before);
    h.agent("a", &[("support", 3)]);
    h.busy("a", "q", 100);
    h.agent("b", &[("support", 1)]);
    h.enqueue(1, "q", 0);
    h.enqueue(2, "gone", 0);
    assert_eq!(h.offers(), vec![(2, one("b"))]);
    h.r.set_queues(h.now, queues(after), Arc::new(HoursSet::default()));
    // q now accepts b's level, and caller 1 is still there.
    h.r.offer_rejected(h.now, CallerId(2), "b").expect("reject");
    let offers = h.offers();
    assert_eq!(offers, vec![(1, one("b"))]);
    // The removed queue still holds caller 2, but takes no new callers.
    assert_eq!(h.r.stats("gone", h.now).map(|s| s.waiting), Some(1));
    assert_eq!(
        h.r.enqueue(h.now, CallerId(3), "gone", 0, None),
        Err(RoutingError::UnknownQueue("gone".into()))
    );
    h.r.remove(h.now, CallerId(2)).expect("remove");
    assert!(h.r.stats("gone", h.now).is_none());
}

#[test]
fn skill_changes_apply_at_once() {
    let mut h = H::new(TWO_QUEUES);
    h.agent("a", &[("support", 1)]);
    h.agent("s", &[("sales", 1)]);
    h.busy("s", "sales", 100);
    h.enqueue(1, "sales", 0);
    assert!(h.offers().is_empty());
    let skills: Skills = [("sales".to_owned(), 2)].into_iter().collect();
    h.r.set_agent(h.now, "a", &skills);
    assert_eq!(h.offers(), vec![(1, one("a"))]);
}

#[test]
fn bad_inputs_are_errors() {
    let mut h = H::new(TWO_QUEUES);
    h.agent("a", &[("support", 1)]);
    let now = h.now;
    assert_eq!(
        h.r.enqueue(now, CallerId(1), "nope", 0, None),
        Err(RoutingError::UnknownQueue("nope".into()))
    );
    h.enqueue(1, "support", 0);
    assert_eq!(
        h.r.enqueue(now, CallerId(1), "support", 0, None),
        Err(RoutingError::DuplicateCaller(CallerId(1)))
    );
    assert_eq!(
        h.r.offer_answered(now, CallerId(1), "zed"),
        Err(RoutingError::UnknownAgent("zed".into()))
    );
    assert_eq!(
        h.r.offer_answered(now, CallerId(9), "a"),
        Err(RoutingError::UnknownCaller(CallerId(9)))
    );
    assert_eq!(
        h.r.call_ended(now, "a"),
        Err(RoutingError::NotOnCall("a".into()))
    );
    h.agent("b", &[("support", 1)]);
    assert_eq!(
        h.r.offer_answered(now, CallerId(1), "b"),
        Err(RoutingError::NotOffered {
            caller: CallerId(1),
            login: "b".into()
        })
    );
    h.r.remove_agent(now, "a").expect("remove");
    // a's offer went to b.
    let events = h.events();
    assert!(events.contains(&Event::Offer {
        caller: CallerId(1),
        agents: one("b"),
        queue: "support".into()
    }));
}

/// An agent reached by a transfer (a call the engine did not route) is on
/// a call: no queue offers it a caller until that call ends, and it is
/// available again at once (no wrap-up).
#[test]
fn an_agent_on_a_direct_call_is_not_offered() {
    let mut h = H::new(&queue_yaml("longest-idle", "    wrap_up: 30s\n"));
    h.agent("alice", &[("support", 3)]);
    h.events();
    h.r.direct_call_started(h.now, "alice").expect("idle agent");
    assert_eq!(h.state("alice"), AgentState::OnCall);
    h.enqueue(1, "q", 0);
    assert!(h.offers().is_empty(), "offered while on a direct call");
    h.go(5);
    h.r.direct_call_ended(h.now, "alice")
        .expect("on a direct call");
    assert_eq!(h.offers(), vec![(1, one("alice"))]);
    // Busy with a queue caller (offered): a transfer does not change that.
    assert_eq!(
        h.r.direct_call_started(h.now, "alice"),
        Err(RoutingError::Busy("alice".into()))
    );
    h.answer(1, "alice");
    assert_eq!(
        h.r.direct_call_ended(h.now, "alice"),
        Err(RoutingError::NotOnCall("alice".into()))
    );
    assert_eq!(h.state("alice"), AgentState::OnCall);
}
