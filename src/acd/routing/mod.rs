//! The routing engine (DESIGN §6, performance target DESIGN §9): which
//! waiting caller goes to which agent, and when.
//!
//! [`Router`] is a sans-IO core. Every input carries `now: Instant`; wall
//! time (for opening hours) comes from a [`WallClock`] anchor given once.
//! Outputs are pulled with [`Router::poll_event`], and the driver calls
//! [`Router::handle_timeout`] at [`Router::poll_timeout`].
//!
//! Rules:
//! - callers are ordered by priority (higher first), then by time waited;
//! - a free agent takes the best caller across every queue it serves (fair
//!   across queues, not per queue);
//! - an agent is eligible for a caller when it meets every required skill at
//!   its minimum level, where the requirement is the queue's skills as
//!   relaxed by the `widen` steps reached so far, plus the agents of the
//!   `also` queues of those steps;
//! - among eligible available agents, the queue's strategy picks;
//! - a missed offer (ring timeout or rejection) puts the caller back in line
//!   at the same place and counts towards the agent's `max_no_answer`;
//! - callers leave through the flow's `next` on `max_wait`, when the queue's
//!   hours close, or when no reachable, unpaused agent could ever serve the
//!   queue (widening included).
//!
//! Matching is event driven and never scans all agents: agents are indexed
//! by the requirements they meet, each index keeps its available agents
//! ordered for the strategies that use it, and each (queue, widen stage)
//! keeps its callers in an ordered set.

mod agents;
mod ewt;
mod strategy;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use agents::AgentState;

use super::hours::HoursSet;
use super::queues::{QueueSet, Skills};

/// A waiting caller, named by the driver (one per call leg in a queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallerId(pub u64);

/// Wall-clock anchor: the UTC time at one `Instant`, so opening hours can be
/// evaluated while every input stays a plain `Instant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    pub instant: Instant,
    pub utc: DateTime<Utc>,
}

/// Why a caller left the queue without an agent (the flow continues at the
/// queue node's `next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeftReason {
    /// Waited the queue's `max_wait`.
    MaxWait,
    /// The queue's hours are closed (at entry or while waiting).
    Closed,
    /// No reachable, unpaused agent could ever serve the queue.
    NoAgents,
}

/// How a caller's time in a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Answered,
    /// The caller hung up while waiting ([`Router::remove`]).
    Abandoned,
    Left(LeftReason),
}

/// One offer made to an agent while the caller waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferRecord {
    pub login: String,
    pub at: Instant,
}

/// A caller's time in one queue, for history (the `calls` row and the
/// thread's call event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub caller: CallerId,
    pub queue: String,
    pub enqueued_at: Instant,
    /// Offers in the order they were made; at most [`MAX_OFFER_RECORDS`].
    pub offers: Vec<OfferRecord>,
    /// The agent who answered and when.
    pub answered: Option<(String, Instant)>,
    pub outcome: Outcome,
    /// Time from entering the queue to leaving it (answer, hang-up or exit).
    pub wait: Duration,
}

/// What the engine asks its driver to do or tells the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Ring these agents for `caller` (several for `ring-all`): the first
    /// to answer gets the call ([`Router::offer_answered`]).
    Offer {
        caller: CallerId,
        agents: Vec<String>,
        queue: String,
    },
    /// Stop ringing these agents for `caller`: another agent answered
    /// (`ring-all`), the ring timeout passed, or the caller left.
    Cancel {
        caller: CallerId,
        agents: Vec<String>,
    },
    /// The caller leaves the queue without an agent; the flow goes on at
    /// the queue node's `next`.
    Left {
        caller: CallerId,
        queue: String,
        reason: LeftReason,
    },
    /// An agent's reported state changed.
    AgentState { login: String, state: AgentState },
    /// Time for a periodic announcement (`announce.every`): the caller's
    /// 1-based position in its queue and its estimated wait, each present
    /// when the queue's `announce` asks for it.
    Announce {
        caller: CallerId,
        position: Option<u32>,
        ewt: Option<Duration>,
    },
    /// A caller's time in a queue ended (answered, abandoned or left).
    Segment(Segment),
}

/// Live figures of one queue (`GET /api/v1/queues`, `/metrics`).
///
/// Counters run from the engine's start (they survive reloads). Agents are
/// counted against the queue's own skills (widening not included).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// Callers in the queue not yet answered (waiting or ringing).
    pub waiting: u32,
    /// How long the oldest of them has waited.
    pub longest_wait: Duration,
    /// Eligible agents that are reachable (any state but offline).
    pub agents_staffed: u32,
    pub agents_available: u32,
    /// Eligible agents being offered a call.
    pub agents_offered: u32,
    pub agents_on_call: u32,
    pub agents_wrap_up: u32,
    pub agents_paused: u32,
    /// Callers that entered the queue.
    pub offered: u64,
    /// Callers answered by an agent.
    pub answered: u64,
    /// Callers that hung up while waiting.
    pub abandoned: u64,
    /// Callers that left through `next` (max wait, closed, no agents).
    pub left: u64,
    /// Answered within the queue's `service_level` ÷ (answered +
    /// abandoned); `None` before the first answer or abandon.
    pub service_level: Option<f64>,
    /// Average speed of answer: mean wait of answered callers.
    pub asa: Option<Duration>,
    /// Average handle time (moving average of completed calls, see
    /// [`ewt`]); [`DEFAULT_AHT`] before the first call ends.
    pub aht: Duration,
}

/// Handle time assumed before any call of the queue has ended.
pub const DEFAULT_AHT: Duration = Duration::from_secs(180);

/// Offers kept in one [`Segment`]; later ones are counted but not listed.
pub const MAX_OFFER_RECORDS: usize = 32;

/// Agents rung at once by a `ring-all` queue.
pub const MAX_RING_ALL: usize = 64;

/// Reason given to agents paused after `max_no_answer` missed offers.
pub const MISSED_CALLS: &str = "missed calls";

/// An input the engine cannot apply; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("unknown caller {0:?}")]
    UnknownCaller(CallerId),
    #[error("caller {0:?} is already queued")]
    DuplicateCaller(CallerId),
    #[error("caller {caller:?} is not being offered to agent `{login}`")]
    NotOffered { caller: CallerId, login: String },
    #[error("agent `{0}` is not on a call")]
    NotOnCall(String),
}

/// The routing engine: queues, agents, waiting callers and their timers.
#[derive(Debug)]
pub struct Router {}

impl Router {
    /// An engine with no agents and no callers. `seed` seeds the `random`
    /// strategy, so tests are repeatable.
    pub fn new(queues: Arc<QueueSet>, hours: Arc<HoursSet>, clock: WallClock, seed: u64) -> Router {
        let _ = (queues, hours, clock, seed);
        todo!()
    }

    /// Replaces the queue and hours configuration (hot reload). Waiting
    /// callers keep their place; a caller whose queue is gone stays in a
    /// copy of its old configuration until it leaves.
    pub fn set_queues(&mut self, now: Instant, queues: Arc<QueueSet>, hours: Arc<HoursSet>) {
        let _ = (now, queues, hours);
        todo!()
    }

    /// Adds an agent (offline until reachable) or replaces its skills.
    pub fn set_agent(&mut self, now: Instant, login: &str, skills: &Skills) {
        let _ = (now, login, skills);
        todo!()
    }

    /// Removes an agent; a call it is offered goes to the next agent.
    pub fn remove_agent(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let _ = (now, login);
        todo!()
    }

    /// Whether the agent has a live registration or browser session (login
    /// and logout). An unreachable agent is not offered calls; one on a
    /// call finishes it.
    pub fn set_reachable(
        &mut self,
        now: Instant,
        login: &str,
        reachable: bool,
    ) -> Result<(), RoutingError> {
        let _ = (now, login, reachable);
        todo!()
    }

    /// Pauses an agent; a call in progress or a wrap-up finishes first.
    pub fn pause(&mut self, now: Instant, login: &str, reason: &str) -> Result<(), RoutingError> {
        let _ = (now, login, reason);
        todo!()
    }

    pub fn unpause(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let _ = (now, login);
        todo!()
    }

    /// A caller enters `queue` with its final priority (the flow computed
    /// max(queue, flow node, thread, VIP); the queue's own is applied again
    /// as a floor). `preferred_agent` is the thread's last agent, waited
    /// for first during the queue's `prefer_last_agent`.
    pub fn enqueue(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u32,
        preferred_agent: Option<&str>,
    ) -> Result<(), RoutingError> {
        let _ = (now, caller, queue, priority, preferred_agent);
        todo!()
    }

    /// Changes a waiting caller's priority; its time waited is kept.
    pub fn set_priority(
        &mut self,
        now: Instant,
        caller: CallerId,
        priority: u32,
    ) -> Result<(), RoutingError> {
        let _ = (now, caller, priority);
        todo!()
    }

    /// The caller hung up before an agent answered: counted as abandoned.
    pub fn remove(&mut self, now: Instant, caller: CallerId) -> Result<(), RoutingError> {
        let _ = (now, caller);
        todo!()
    }

    /// `login` answered the offer: the agent is on the call, other agents of
    /// a `ring-all` are cancelled.
    pub fn offer_answered(
        &mut self,
        now: Instant,
        caller: CallerId,
        login: &str,
    ) -> Result<(), RoutingError> {
        let _ = (now, caller, login);
        todo!()
    }

    /// `login` declined the offer: a missed offer.
    pub fn offer_rejected(
        &mut self,
        now: Instant,
        caller: CallerId,
        login: &str,
    ) -> Result<(), RoutingError> {
        let _ = (now, caller, login);
        todo!()
    }

    /// `login` did not answer in time: a missed offer. (The engine also
    /// times offers out itself after the queue's `ring_timeout`.)
    pub fn offer_timeout(
        &mut self,
        now: Instant,
        caller: CallerId,
        login: &str,
    ) -> Result<(), RoutingError> {
        let _ = (now, caller, login);
        todo!()
    }

    /// The agent's call ended: wrap-up for the queue's `wrap_up`, then
    /// available again.
    pub fn call_ended(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let _ = (now, login);
        todo!()
    }

    /// Runs every timer due at `now`: ring timeouts, wrap-up ends, widen
    /// steps, preferred-agent waits, `max_wait`, announcements and hours.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// When [`Router::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next output, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// Live figures of `queue` at `now`.
    pub fn stats(&self, queue: &str, now: Instant) -> Option<QueueStats> {
        let _ = (queue, now);
        todo!()
    }

    /// An agent's reported state.
    pub fn agent_state(&self, login: &str) -> Option<AgentState> {
        let _ = login;
        todo!()
    }

    /// A waiting caller's 1-based position in its queue and estimated wait.
    pub fn position(&self, caller: CallerId, now: Instant) -> Option<(u32, Duration)> {
        let _ = (caller, now);
        todo!()
    }
}
