//! A whole IVR call through the interpreter (DESIGN §5, §9): start → menu
//! prompt finished → key → queue answered → agent hung up → survey key →
//! hang-up, with every action drained as a driver would. Reported as
//! interpreter inputs per second on one core. Target: ≥ 1M inputs/s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use switchboard::ivr::interpreter::{CallContext, FlowRun, QueueOutcome, WallClock};
use switchboard::ivr::{FlowSet, load_folder};

const FLOW: &str = "numbers: [\"100\"]
start: menu
nodes:
  menu:
    menu: { prompt: menu.wav, options: { \"1\": support, \"2\": support }, invalid: invalid.wav, failure: support }
  support: { queue: support, priority: 1, after: survey, next: bye }
  survey: { collect: { prompt: rate.wav, var: csat, digits: 1, timeout: 5s }, next: bye }
  bye: { hangup: {} }
";

const QUEUES: &str = "queues:\n  support: { hours: support-hours }\n";
const HOURS: &str = "hours:\n  support-hours:\n    timezone: Europe/Berlin\n    week: { mon-fri: [\"09:00-17:00\"] }\n";

/// Inputs fed per call.
const INPUTS: u64 = 6;

/// Loads the flow through the real loader from a scratch folder.
fn load() -> Arc<FlowSet> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("switchboard-bench-ivr-{}", std::process::id()));
    let flows = dir.join("flows");
    let sounds = dir.join("sounds");
    std::fs::create_dir_all(&flows).expect("flows dir");
    std::fs::create_dir_all(&sounds).expect("sounds dir");
    let mut wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
    wav.extend_from_slice(&[
        16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0,
    ]);
    wav.extend_from_slice(b"data\x00\x00\x00\x00");
    for name in ["menu.wav", "invalid.wav", "rate.wav"] {
        std::fs::write(sounds.join(name), &wav).expect("sound");
    }
    std::fs::write(flows.join("main.yaml"), FLOW).expect("flow");
    std::fs::write(flows.join("queues.yaml"), QUEUES).expect("queues");
    std::fs::write(flows.join("hours.yaml"), HOURS).expect("hours");
    let (set, diags) = load_folder(&flows, &sounds);
    let _ = std::fs::remove_dir_all(&dir);
    Arc::new(set.unwrap_or_else(|| panic!("flow folder: {diags:?}")))
}

fn drain(run: &mut FlowRun) -> usize {
    let mut n = 0;
    while let Some(a) = run.poll_action() {
        black_box(&a);
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let set = load();
    let flow = Arc::clone(set.flow("main").expect("main flow"));
    let ctx = CallContext::default();
    let t0 = Instant::now();
    let clock = WallClock::new(t0, Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let ms = Duration::from_millis;

    let mut g = c.benchmark_group("ivr");
    g.throughput(Throughput::Elements(INPUTS));
    g.bench_function("menu, queue, survey call", |b| {
        b.iter(|| {
            let mut run = FlowRun::new(Arc::clone(&set), Arc::clone(&flow), ctx.clone(), clock, t0);
            let mut out = 0;
            run.handle_start(t0);
            out += drain(&mut run);
            run.handle_prompt_finished(t0 + ms(3000));
            out += drain(&mut run);
            run.handle_digit('1', t0 + ms(4000));
            out += drain(&mut run);
            run.handle_queue_result(
                QueueOutcome::Answered {
                    agent: String::from("alice"),
                },
                t0 + ms(30_000),
            );
            out += drain(&mut run);
            run.handle_queue_result(QueueOutcome::AgentHungUp, t0 + ms(300_000));
            out += drain(&mut run);
            run.handle_digit('5', t0 + ms(301_000));
            out += drain(&mut run);
            assert!(run.is_finished());
            black_box(out)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
