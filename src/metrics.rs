//! Process-wide counters exported on `GET /metrics` in the Prometheus text
//! format (DESIGN §8). Add a counter by adding a line to the `counters!`
//! list; bump it with [`Metrics::inc`] or `fetch_add` on the field.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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

#[cfg(test)]
mod tests {
    use super::*;

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
