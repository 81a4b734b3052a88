//! Routing decisions (DESIGN §9): 10k agents, 1k queues (each requiring 1–3
//! of 32 skills), 32 skills. Target: ≥ 100k decisions/s, p99 ≤ 100 µs.
//!
//! A steady stream: each step ends a random agent's call (the agent takes
//! the best caller across its queues: one decision), the driver answers the
//! offer, and a new caller enters a random queue (a second decision: the
//! best available agent, usually none). Several thousand callers wait at
//! all times, so every decision looks at non-empty caller sets.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard::acd::hours::HoursSet;
use switchboard::acd::queues::{Skills, parse_queues_file};
use switchboard::acd::routing::{CallerId, Event, Router, WallClock};

const AGENTS: usize = 10_000;
const QUEUES: usize = 1_000;
const SKILLS: usize = 32;
const STRATEGIES: [&str; 5] = [
    "longest-idle",
    "longest-idle",
    "fewest-calls",
    "best-skill",
    "round-robin",
];

struct World {
    router: Router,
    rng: StdRng,
    now: Instant,
    next_caller: u64,
    on_call: Vec<String>,
}

impl World {
    fn new() -> World {
        let mut rng = StdRng::seed_from_u64(42);
        let mut yaml = String::from("queues:\n");
        for q in 0..QUEUES {
            let n = rng.random_range(1..=3);
            let mut skills: Vec<usize> = (0..n).map(|_| rng.random_range(0..SKILLS)).collect();
            skills.sort_unstable();
            skills.dedup();
            let skills: Vec<String> = skills
                .iter()
                .map(|s| format!("s{s}: {}", rng.random_range(1..=2)))
                .collect();
            let strategy = STRATEGIES[q % STRATEGIES.len()];
            yaml.push_str(&format!(
                "  q{q}:\n    skills: {{ {} }}\n    strategy: {strategy}\n",
                skills.join(", ")
            ));
        }
        let (queues, diags) = parse_queues_file(Path::new("queues.yaml"), &yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let now = Instant::now();
        let clock = WallClock {
            instant: now,
            utc: Utc::now(),
        };
        let mut router = Router::new(Arc::new(queues), Arc::new(HoursSet::default()), clock, 7);
        for a in 0..AGENTS {
            let login = format!("agent{a}");
            let n = rng.random_range(4..=8);
            let skills: Skills = (0..n)
                .map(|_| {
                    (
                        format!("s{}", rng.random_range(0..SKILLS)),
                        rng.random_range(1..=5),
                    )
                })
                .collect();
            router.set_agent(now, &login, &skills);
            router
                .set_reachable(now, &login, true)
                .expect("known agent");
        }
        let mut world = World {
            router,
            rng,
            now,
            next_caller: 0,
            on_call: Vec::new(),
        };
        // Fill every agent that can be filled, and leave callers waiting.
        for _ in 0..AGENTS + 5_000 {
            world.enqueue();
        }
        world
    }

    fn drain(&mut self) {
        while let Some(event) = self.router.poll_event() {
            if let Event::Offer { caller, agents, .. } = event
                && let Some(login) = agents.into_iter().next()
            {
                self.router
                    .offer_answered(self.now, caller, &login)
                    .expect("offered");
                self.on_call.push(login);
            }
        }
    }

    /// A new caller: one decision.
    fn enqueue(&mut self) {
        self.next_caller += 1;
        let queue = format!("q{}", self.rng.random_range(0..QUEUES));
        self.router
            .enqueue(self.now, CallerId(self.next_caller), &queue, 0, None)
            .expect("known queue");
        self.drain();
    }

    /// A call ends: one decision.
    fn end_call(&mut self) {
        if self.on_call.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.on_call.len());
        let login = self.on_call.swap_remove(i);
        self.router.call_ended(self.now, &login).expect("on call");
        self.drain();
    }

    fn tick(&mut self) {
        self.now += Duration::from_millis(1);
        if self.router.poll_timeout().is_some_and(|t| t <= self.now) {
            self.router.handle_timeout(self.now);
            self.drain();
        }
    }
}

/// Per-decision latency percentiles, measured one decision at a time.
fn percentiles(world: &mut World) {
    let mut times: Vec<Duration> = Vec::with_capacity(400_000);
    for _ in 0..200_000 {
        world.tick();
        let t = Instant::now();
        world.end_call();
        times.push(t.elapsed());
        let t = Instant::now();
        world.enqueue();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    let total: Duration = times.iter().sum();
    println!(
        "routing decisions: {} in {:?} ({:.0}/s); per decision p50 {:?}, p99 {:?}, max {:?}; {} agents on call",
        times.len(),
        total,
        times.len() as f64 / total.as_secs_f64(),
        at(0.50),
        at(0.99),
        times[times.len() - 1],
        world.on_call.len()
    );
}

fn bench(c: &mut Criterion) {
    let mut world = World::new();
    percentiles(&mut world);
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(2));
    group.bench_function("end_call_and_enqueue", |b| {
        b.iter(|| {
            world.tick();
            world.end_call();
            world.enqueue();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
