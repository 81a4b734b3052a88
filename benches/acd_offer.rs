//! Agent free → offer (DESIGN §9, issue: "agent-free → INVITE-sent latency
//! with 2,000 callers waiting"): the routing engine's real tokio task with
//! 2,000 callers waiting in one queue. Each iteration ends the agent's call
//! (`CallEnded`, wrap-up 0 s) and times until the oldest caller's task
//! receives the offer on its channel — the moment that task starts the
//! INVITE to the agent's phone. Then the offer is answered and a new caller
//! joins at the back, so 2,000 always wait.
//!
//! What is included: the command channel, the engine task's wake-up, the
//! sans-IO decision across 2,000 callers, and the event channel to the
//! caller's task. Not included: the caller task's registrar lookup and the
//! INVITE's serialization (one in-process channel hop and ~2 µs of parsing
//! work, see `sip_parse`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard::acd::driver::{AcdCommand, AcdHandle, QueueEvent, spawn_acd};
use switchboard::acd::routing::CallerId;
use switchboard::events::EventBus;
use switchboard::ivr::reload::FlowReloader;
use switchboard::sip::registrar::bindings::BindingEvent;
use switchboard::store::NewAgent;
use switchboard::store::Store;
use tokio::sync::mpsc;

const WAITING: usize = 2_000;
const AGENT: &str = "alice";

struct Waiting {
    caller: CallerId,
    events: mpsc::UnboundedReceiver<QueueEvent>,
}

struct World {
    acd: AcdHandle,
    line: VecDeque<Waiting>,
    /// The caller the agent is talking to.
    on_call: CallerId,
    _dir: TempFolder,
}

struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn flows(dir: &Path) {
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::create_dir_all(dir.join("sounds")).unwrap();
    std::fs::write(
        dir.join("flows/main.yaml"),
        "numbers: [\"100\"]\nstart: q\nnodes:\n  q: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("flows/queues.yaml"),
        "queues:\n  support:\n    skills: { support: 1 }\n    ring_timeout: 10m\n    max_wait: 10h\n    wrap_up: 0s\n",
    )
    .unwrap();
}

async fn enqueue(acd: &AcdHandle) -> Waiting {
    let caller = acd.new_caller();
    let (reply, events) = mpsc::unbounded_channel();
    acd.send(AcdCommand::Enqueue {
        caller,
        call_id: format!("bench-{}", caller.0),
        queue: "support".into(),
        priority: 0,
        preferred: None,
        reply,
    });
    Waiting { caller, events }
}

async fn next_offer(w: &mut Waiting) {
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match w.events.recv().await {
                Some(QueueEvent::Offer { .. }) => return,
                Some(_) => continue,
                None => panic!("the engine dropped the caller"),
            }
        }
    });
    wait.await.expect("no offer within 10 s");
}

impl World {
    async fn new() -> World {
        let dir = std::env::temp_dir().join(format!("sb-acd-offer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        flows(&dir);
        let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store
            .agents()
            .add(NewAgent {
                login: AGENT.into(),
                password: "pw".into(),
                display_name: None,
                extension: None,
                realm: "bench".into(),
                skills: vec![("support".into(), 3)],
            })
            .await
            .unwrap();
        let flows = FlowReloader::load(&dir.join("flows"), &dir.join("sounds"))
            .unwrap_or_else(|d| panic!("bench flows: {d:?}"));
        let acd = spawn_acd(store, flows.handle().clone(), EventBus::new());
        // The agent takes the first caller and stays on that call; the
        // rest wait.
        acd.presence()
            .send(BindingEvent::Registered {
                login: AGENT.into(),
            })
            .unwrap();
        // Presence and commands arrive on different channels: let the
        // registration land before the first caller (a queue nobody staffs
        // sends its callers on at once).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut first = enqueue(&acd).await;
        next_offer(&mut first).await;
        acd.send(AcdCommand::Answered {
            caller: first.caller,
            login: AGENT.into(),
        });
        let mut line = VecDeque::with_capacity(WAITING);
        for _ in 0..WAITING {
            line.push_back(enqueue(&acd).await);
        }
        World {
            acd,
            line,
            on_call: first.caller,
            _dir: TempFolder(dir),
        }
    }

    /// One agent-free → offer round; returns its latency.
    async fn step(&mut self) -> Duration {
        let mut next = self.line.pop_front().expect("callers waiting");
        let started = Instant::now();
        self.acd.send(AcdCommand::CallEnded {
            login: AGENT.into(),
        });
        next_offer(&mut next).await;
        let took = started.elapsed();
        let _ = self.on_call;
        self.acd.send(AcdCommand::Answered {
            caller: next.caller,
            login: AGENT.into(),
        });
        self.on_call = next.caller;
        let newcomer = enqueue(&self.acd).await;
        self.line.push_back(newcomer);
        took
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut world = rt.block_on(World::new());

    // Percentiles first: criterion reports means of batches.
    let mut samples: Vec<Duration> = rt.block_on(async {
        let mut v = Vec::with_capacity(5_000);
        for _ in 0..5_000 {
            v.push(world.step().await);
        }
        v
    });
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "agent free -> offer at the caller task, {WAITING} waiting: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        samples[samples.len() - 1]
    );

    c.bench_function("agent_free_to_offer_2000_waiting", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += world.step().await;
                }
                total
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
