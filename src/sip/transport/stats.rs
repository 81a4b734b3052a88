//! Counters of the transport layer, exported in `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Message counters; all relaxed, read for metrics only.
#[derive(Debug, Default)]
pub struct TransportStats {
    received: AtomicU64,
    sent: AtomicU64,
    malformed: AtomicU64,
    send_errors: AtomicU64,
    overload_drops: AtomicU64,
    tcp_connections: AtomicU64,
}

/// One counter as exported.
pub struct Counter {
    pub name: &'static str,
    pub help: &'static str,
    pub value: u64,
}

impl TransportStats {
    pub(super) fn count_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn count_send_error(&self) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn count_overload(&self) {
        self.overload_drops.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn count_tcp_connection(&self) {
        self.tcp_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Malformed messages seen (answered with 400 or dropped).
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Every counter, for the metrics page.
    pub fn counters(&self) -> [Counter; 6] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            Counter {
                name: "switchboard_sip_messages_received_total",
                help: "SIP messages parsed",
                value: get(&self.received),
            },
            Counter {
                name: "switchboard_sip_messages_sent_total",
                help: "SIP messages sent",
                value: get(&self.sent),
            },
            Counter {
                name: "switchboard_sip_messages_malformed_total",
                help: "SIP messages that failed to parse (answered 400 or dropped)",
                value: get(&self.malformed),
            },
            Counter {
                name: "switchboard_sip_send_errors_total",
                help: "SIP sends that failed at the socket",
                value: get(&self.send_errors),
            },
            Counter {
                name: "switchboard_sip_overload_drops_total",
                help: "SIP messages dropped because the endpoint queue was full",
                value: get(&self.overload_drops),
            },
            Counter {
                name: "switchboard_sip_tcp_connections_total",
                help: "TCP connections accepted or opened",
                value: get(&self.tcp_connections),
            },
        ]
    }
}
