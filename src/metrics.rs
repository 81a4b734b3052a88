//! Process-wide counters exported on `GET /metrics` in the Prometheus text
//! format (DESIGN §8). Add a counter by adding a line to the `counters!`
//! list; bump it with [`Metrics::inc`] or `fetch_add` on the field.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::acd::routing::QueueStats;

macro_rules! counters {
    ($($name:ident: $help:literal,)*) => {
        /// Monotonic counters; every field is exported as `switchboard_<field>`.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(#[doc = $help] pub $name: AtomicU64,)*
        }

        impl Metrics {
            fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), $help, self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    sip_messages_received_total: "SIP messages received and parsed on any transport.",
    sip_messages_sent_total: "SIP messages sent on any transport.",
    sip_messages_malformed_total: "SIP messages that failed to parse (answered 400/505 when possible).",
    sip_messages_dropped_total: "SIP messages dropped unanswered: unparseable with no way to reply, or the endpoint queue full.",
    sip_send_errors_total: "SIP sends that failed at the socket.",
    sip_tcp_connections_total: "SIP TCP connections accepted or opened.",
    http_requests_total: "HTTP requests answered.",
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("# HELP switchboard_up Whether the switch is running.\n");
        out.push_str("# TYPE switchboard_up gauge\n");
        out.push_str("switchboard_up 1\n");
        for (name, help, value) in self.counters() {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP switchboard_{name} {help}");
            let _ = writeln!(out, "# TYPE switchboard_{name} counter");
            let _ = writeln!(out, "switchboard_{name} {value}");
        }
        out
    }
}

/// A Prometheus label value: backslash, double quote and line feed
/// escaped (text format 0.0.4).
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family of the queue figures: name, type, help and the value
/// of one queue (`None` leaves the queue out).
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&QueueStats) -> Option<f64>,
);

const QUEUE_FAMILIES: &[Family] = &[
    (
        "queue_waiting",
        "gauge",
        "Callers in the queue not yet answered.",
        |s| Some(f64::from(s.waiting)),
    ),
    (
        "queue_longest_wait_seconds",
        "gauge",
        "How long the oldest waiting caller has waited.",
        |s| Some(s.longest_wait.as_secs_f64()),
    ),
    (
        "queue_agents_staffed",
        "gauge",
        "Reachable agents with the queue's skills.",
        |s| Some(f64::from(s.agents_staffed)),
    ),
    (
        "queue_offered_total",
        "counter",
        "Callers that entered the queue.",
        |s| Some(s.offered as f64),
    ),
    (
        "queue_answered_total",
        "counter",
        "Callers answered by an agent.",
        |s| Some(s.answered as f64),
    ),
    (
        "queue_abandoned_total",
        "counter",
        "Callers that hung up while waiting.",
        |s| Some(s.abandoned as f64),
    ),
    (
        "queue_left_total",
        "counter",
        "Callers that left through the flow's next (max wait, closed, no agents).",
        |s| Some(s.left as f64),
    ),
    (
        "queue_service_level",
        "gauge",
        "Answered within the queue's service_level divided by answered plus abandoned.",
        |s| s.service_level,
    ),
    (
        "queue_asa_seconds",
        "gauge",
        "Average speed of answer: mean wait of answered callers.",
        |s| s.asa.map(|d| d.as_secs_f64()),
    ),
    (
        "queue_aht_seconds",
        "gauge",
        "Average handle time: moving average of completed calls.",
        |s| Some(s.aht.as_secs_f64()),
    ),
];

/// The routing engine's live queue figures (`GET /metrics`), labelled
/// `queue="name"`; agents by state are `switchboard_queue_agents{queue,state}`.
pub fn render_queues(queues: &[(String, QueueStats)]) -> String {
    let mut out = String::new();
    if queues.is_empty() {
        return out;
    }
    for (name, kind, help, value) in QUEUE_FAMILIES {
        let _ = writeln!(out, "# HELP switchboard_{name} {help}");
        let _ = writeln!(out, "# TYPE switchboard_{name} {kind}");
        for (queue, stats) in queues {
            if let Some(v) = value(stats) {
                let _ = writeln!(
                    out,
                    "switchboard_{name}{{queue=\"{}\"}} {v}",
                    label_value(queue)
                );
            }
        }
    }
    out.push_str("# HELP switchboard_queue_agents Agents with the queue's skills by state.\n");
    out.push_str("# TYPE switchboard_queue_agents gauge\n");
    for (queue, s) in queues {
        for (state, n) in [
            ("available", s.agents_available),
            ("offered", s.agents_offered),
            ("on_call", s.agents_on_call),
            ("wrap_up", s.agents_wrap_up),
            ("paused", s.agents_paused),
        ] {
            let _ = writeln!(
                out,
                "switchboard_queue_agents{{queue=\"{}\",state=\"{state}\"}} {n}",
                label_value(queue)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_queue_figures_with_labels() {
        let stats = QueueStats {
            waiting: 2,
            longest_wait: std::time::Duration::from_millis(1500),
            agents_staffed: 3,
            agents_available: 1,
            agents_offered: 0,
            agents_on_call: 1,
            agents_wrap_up: 0,
            agents_paused: 1,
            offered: 7,
            answered: 4,
            abandoned: 1,
            left: 0,
            service_level: Some(0.75),
            asa: None,
            aht: std::time::Duration::from_secs(180),
        };
        let text = render_queues(&[("sup\"port".to_owned(), stats)]);
        assert!(
            text.contains("# TYPE switchboard_queue_waiting gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("\nswitchboard_queue_waiting{queue=\"sup\\\"port\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_queue_longest_wait_seconds{queue=\"sup\\\"port\"} 1.5\n")
        );
        assert!(text.contains("# TYPE switchboard_queue_answered_total counter\n"));
        assert!(text.contains("switchboard_queue_service_level{queue=\"sup\\\"port\"} 0.75\n"));
        // No answer yet: no ASA sample.
        assert!(!text.contains("switchboard_queue_asa_seconds{"), "{text}");
        assert!(
            text.contains("switchboard_queue_agents{queue=\"sup\\\"port\",state=\"paused\"} 1\n")
        );
        assert!(render_queues(&[]).is_empty());
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.sip_messages_dropped_total);
        Metrics::inc(&m.sip_messages_dropped_total);
        let text = m.render();
        assert!(text.contains("\nswitchboard_up 1\n"), "{text}");
        assert!(text.contains("# TYPE switchboard_sip_messages_dropped_total counter\n"));
        assert!(text.contains("\nswitchboard_sip_messages_dropped_total 2\n"));
        assert!(text.contains("\nswitchboard_sip_messages_received_total 0\n"));
        assert!(text.ends_with('\n'));
    }
}
