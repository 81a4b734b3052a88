//! The switch's live event stream (DESIGN §8 `GET /api/v1/events`): call
//! tasks, the routing engine and the API publish `call.*`, `queue.*`,
//! `agent.*` and `thread.*` events; every WebSocket subscriber gets each one
//! as a JSON text frame.
//!
//! Events are serialized once at publish time and shared by all subscribers.
//! The stream is lossy by design: a subscriber that falls more than
//! [`CAPACITY`] events behind is told how many it missed instead of slowing
//! the switch down.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Events buffered per subscriber before the slowest one starts missing
/// events.
pub const CAPACITY: usize = 1024;

/// One published event: its kind (`call.offered`, `agent.state`, …) and its
/// JSON text `{"type": kind, "at": epoch ms, "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub kind: Arc<str>,
    pub json: Arc<str>,
}

/// The publish side, cheap to clone; every component that reports holds one.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Published>,
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(CAPACITY);
        EventBus { tx }
    }

    /// Publishes `kind` with `data` (an object) stamped with the current
    /// wall-clock time. Without subscribers this costs one check.
    pub fn publish(&self, kind: &str, data: Value) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let json = json!({
            "type": kind,
            "at": crate::store::now_ms(),
            "data": data,
        })
        .to_string();
        // Err only means nobody listens any more.
        let _ = self.tx.send(Published {
            kind: Arc::from(kind),
            json: Arc::from(json),
        });
    }

    /// A new subscriber: it sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_each_event_as_json() {
        let bus = EventBus::new();
        bus.publish("call.started", json!({"call": "a"})); // nobody listens yet
        let mut rx = bus.subscribe();
        bus.publish(
            "agent.state",
            json!({"login": "alice", "state": "available"}),
        );
        let got = rx.recv().await.unwrap();
        assert_eq!(&*got.kind, "agent.state");
        let v: Value = serde_json::from_str(&got.json).unwrap();
        assert_eq!(v["type"], "agent.state");
        assert_eq!(v["data"]["login"], "alice");
        assert!(v["at"].as_i64().unwrap() > 1_600_000_000_000);
    }

    #[tokio::test]
    async fn a_slow_subscriber_learns_how_many_it_missed() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        for i in 0..CAPACITY + 5 {
            bus.publish("queue.stats", json!({ "i": i }));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 5),
            other => panic!("expected a lag report, got {other:?}"),
        }
    }
}
