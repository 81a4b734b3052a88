//! Estimated wait time (DESIGN §6).
//!
//! The estimate for a caller at 1-based position `p` in its queue is
//!
//! ```text
//! capacity = n / AHT                      (answers per second the staff can give)
//! rate     = (capacity + observed) / 2    once a dequeue rate has been observed,
//!            capacity                      before
//! EWT      = p / rate
//! ```
//!
//! so with no history `EWT = p × AHT ÷ n`, DESIGN's `(position + 1) × AHT ÷
//! eligible agents` with a 0-based position. `n` is the number of eligible
//! agents that are reachable and not paused (at least 1).
//!
//! - **AHT** is an exponential moving average of the handle times of the
//!   queue's completed calls (answer to hang-up), weight [`AHT_WEIGHT`] for
//!   the newest call; [`DEFAULT_AHT`] before the first call ends.
//! - **observed** is an exponentially decayed count of answers with time
//!   constant [`RATE_TAU`]: each answer adds 1 after decaying the count by
//!   `e^(−Δt/τ)`; the rate at `now` is the decayed count divided by
//!   `τ·(1 − e^(−T/τ))`, where `T` is the time since the first answer (the
//!   exact normalisation for a steady rate, so a young queue is not
//!   underestimated). It is used once `T` ≥ [`RATE_WARM_UP`].

use std::time::{Duration, Instant};

use super::DEFAULT_AHT;

/// Weight of the newest call in the handle-time average.
pub const AHT_WEIGHT: f64 = 0.2;

/// Time constant of the observed dequeue rate.
pub const RATE_TAU: Duration = Duration::from_secs(300);

/// How long after the first answer the observed rate starts to count.
pub const RATE_WARM_UP: Duration = Duration::from_secs(60);

/// Longest estimate given (a day): no rate is ever that slow in practice.
const MAX_EWT: Duration = Duration::from_secs(86_400);

/// Moving average of handle times.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HandleTime {
    secs: Option<f64>,
}

impl HandleTime {
    pub(super) fn record(&mut self, handled: Duration) {
        let x = handled.as_secs_f64();
        self.secs = Some(match self.secs {
            None => x,
            Some(avg) => avg + AHT_WEIGHT * (x - avg),
        });
    }

    pub(super) fn get(&self) -> Duration {
        self.secs
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(DEFAULT_AHT)
    }
}

/// Exponentially decayed count of answers (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DequeueRate {
    count: f64,
    last: Option<Instant>,
    first: Option<Instant>,
}

impl DequeueRate {
    pub(super) fn record(&mut self, now: Instant) {
        self.count = self.decayed(now) + 1.0;
        self.last = Some(now);
        self.first.get_or_insert(now);
    }

    fn decayed(&self, now: Instant) -> f64 {
        match self.last {
            Some(last) => {
                let dt = now.saturating_duration_since(last).as_secs_f64();
                self.count * (-dt / RATE_TAU.as_secs_f64()).exp()
            }
            None => 0.0,
        }
    }

    /// Answers per second at `now`, once warmed up.
    pub(super) fn per_sec(&self, now: Instant) -> Option<f64> {
        let since = now.saturating_duration_since(self.first?);
        if since < RATE_WARM_UP {
            return None;
        }
        let tau = RATE_TAU.as_secs_f64();
        let norm = tau * (1.0 - (-since.as_secs_f64() / tau).exp());
        (norm > 0.0).then(|| self.decayed(now) / norm)
    }
}

/// The estimated wait of the caller at 1-based `position`.
pub(super) fn estimate(
    position: u32,
    aht: Duration,
    agents: u32,
    observed: Option<f64>,
) -> Duration {
    let aht = aht.as_secs_f64().max(1.0);
    let capacity = f64::from(agents.max(1)) / aht;
    let rate = match observed {
        Some(r) if r.is_finite() && r > 0.0 => (capacity + r) / 2.0,
        _ => capacity,
    };
    let secs = f64::from(position.max(1)) / rate;
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_EWT)
        .min(MAX_EWT)
}
