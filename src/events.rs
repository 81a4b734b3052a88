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
    /// Set once the switch shuts down: subscribers close their streams.
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(CAPACITY);
        let (closed, _) = tokio::sync::watch::channel(false);
        EventBus {
            tx,
            closed: Arc::new(closed),
        }
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

    /// Whether anyone listens: publishers skip costly work when not.
    pub fn has_subscribers(&self) -> bool {
        self.subscribers() > 0
    }

    /// How many subscribers there are (open event streams).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A new subscriber: it sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }

    /// The switch is shutting down: every stream ends (its WebSocket is
    /// closed cleanly).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Completes once [`EventBus::close`] was called (at once if it was).
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        // Err: the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|closed| *closed).await;
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
    async fn close_wakes_every_waiter() {
        let bus = EventBus::new();
        let waiter = tokio::spawn({
            let bus = bus.clone();
            async move { bus.closed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        bus.close();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
        // Late waiters return at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), bus.closed())
            .await
            .expect("already closed");
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
