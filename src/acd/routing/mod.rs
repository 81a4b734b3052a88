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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use agents::AgentState;

use super::hours::{Hours, HoursSet};
use super::queues::{QueueConfig, QueueSet, Skills, Strategy};
use agents::{Activity, Agent, AgentIx, Kind, SkillIx, SkillLevels};
use ewt::{DequeueRate, HandleTime};
use strategy::Req;

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
    /// Time for an announcement: once on entry, then every
    /// `announce.every` (none while agents ring for the caller). The
    /// caller's 1-based position in its queue and its estimated wait, each
    /// present when the queue's `announce` asks for it.
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
    /// the `ewt` module); [`DEFAULT_AHT`] before the first call ends.
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
    #[error("agent `{0}` is busy with a queue call")]
    Busy(String),
}

/// Order of callers: higher priority first, then earlier entry, then
/// arrival order.
pub(super) type CallerKey = (Reverse<u32>, Instant, u64);

/// Most timers run by one [`Router::handle_timeout`]; the rest wait for the
/// next call (each timer moves forward when run, so this only bounds work).
const MAX_TIMERS_PER_CALL: usize = 1_000_000;

/// Where a caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Being set up or taken down: in no caller set.
    Nowhere,
    /// In the caller set of its queue's current widen stage.
    Waiting,
    /// Waiting for its preferred agent only.
    Reserved(AgentIx),
    /// Ringing agents.
    Offered,
}

#[derive(Debug)]
struct Caller {
    queue: usize,
    key: CallerKey,
    enqueued_at: Instant,
    /// Widen stage (0: the queue's own skills); valid while `Waiting`.
    stage: usize,
    place: Place,
    prefer_until: Option<Instant>,
    ringing: Vec<AgentIx>,
    ring_deadline: Option<Instant>,
    offers: Vec<OfferRecord>,
    next_announce: Option<Instant>,
    /// The caller's entry in the timer table.
    timer: Option<Instant>,
}

/// Callers of one queue at one widen stage, and who may serve them.
#[derive(Debug)]
struct Bucket {
    /// Requirements whose agents are eligible (the stage's skills and the
    /// `also` queues' skills).
    reqs: Vec<usize>,
    callers: BTreeMap<CallerKey, CallerId>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    offered: u64,
    answered: u64,
    answered_in_sl: u64,
    abandoned: u64,
    left: u64,
    answer_wait: Duration,
}

#[derive(Debug)]
struct Queue {
    config: QueueConfig,
    hours: Option<Hours>,
    /// Not in the current configuration; kept while callers remain.
    retired: bool,
    /// Retired and empty: unknown to every input.
    gone: bool,
    base_req: usize,
    /// Bucket per widen stage.
    stages: Vec<usize>,
    /// Every requirement of every stage (for "no agents").
    all_reqs: Vec<usize>,
    /// Every caller not yet answered, in order (positions).
    line: BTreeMap<CallerKey, CallerId>,
    /// The same callers by entry time (longest wait).
    by_age: BTreeSet<(Instant, u64)>,
    /// Last round-robin pick.
    cursor: Option<AgentIx>,
    /// Cached opening state and until when it holds.
    open: Option<(bool, Option<Instant>)>,
    hours_timer: Option<Instant>,
    counters: Counters,
    aht: HandleTime,
    rate: DequeueRate,
}

impl Queue {
    fn new(config: QueueConfig) -> Queue {
        Queue {
            config,
            hours: None,
            retired: false,
            gone: false,
            base_req: 0,
            stages: Vec::new(),
            all_reqs: Vec::new(),
            line: BTreeMap::new(),
            by_age: BTreeSet::new(),
            cursor: None,
            open: None,
            hours_timer: None,
            counters: Counters::default(),
            aht: HandleTime::default(),
            rate: DequeueRate::default(),
        }
    }

    /// The widen stage reached after waiting `waited`.
    fn stage_for(&self, waited: Duration) -> usize {
        self.config
            .widen
            .iter()
            .take_while(|w| w.after <= waited)
            .count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Caller(CallerId),
    Agent(AgentIx),
    Hours(usize),
}

/// The routing engine: queues, agents, waiting callers and their timers.
#[derive(Debug)]
pub struct Router {
    clock: WallClock,
    rng: StdRng,
    skill_ix: HashMap<String, SkillIx>,
    queues: Vec<Queue>,
    queue_ix: HashMap<String, usize>,
    reqs: Vec<Req>,
    /// Requirements by their first skill (an agent can only meet those of
    /// skills it has).
    req_by_first: HashMap<SkillIx, Vec<usize>>,
    /// Requirements with no skills (every agent meets them).
    req_no_skills: Vec<usize>,
    buckets: Vec<Bucket>,
    agents: Vec<Agent>,
    agent_ix: HashMap<String, AgentIx>,
    callers: HashMap<CallerId, Caller>,
    timers: BTreeSet<(Instant, Timer)>,
    events: VecDeque<Event>,
    seq: u64,
}

impl Router {
    /// An engine with no agents and no callers. `seed` seeds the `random`
    /// strategy, so tests are repeatable.
    pub fn new(queues: Arc<QueueSet>, hours: Arc<HoursSet>, clock: WallClock, seed: u64) -> Router {
        let mut router = Router {
            clock,
            rng: StdRng::seed_from_u64(seed),
            skill_ix: HashMap::new(),
            queues: Vec::new(),
            queue_ix: HashMap::new(),
            reqs: Vec::new(),
            req_by_first: HashMap::new(),
            req_no_skills: Vec::new(),
            buckets: Vec::new(),
            agents: Vec::new(),
            agent_ix: HashMap::new(),
            callers: HashMap::new(),
            timers: BTreeSet::new(),
            events: VecDeque::new(),
            seq: 0,
        };
        router.rebuild(clock.instant, &queues, &hours);
        router
    }

    /// Replaces the queue and hours configuration (hot reload). Waiting
    /// callers keep their place; a caller whose queue is gone stays in a
    /// copy of its old configuration until it leaves.
    pub fn set_queues(&mut self, now: Instant, queues: Arc<QueueSet>, hours: Arc<HoursSet>) {
        self.rebuild(now, &queues, &hours);
    }

    /// Adds an agent (offline until reachable) or replaces its skills.
    /// Levels outside 1–5 are clamped; level 0 means no skill.
    pub fn set_agent(&mut self, now: Instant, login: &str, skills: &Skills) {
        let levels = self.intern_skills(skills);
        let Some(&a) = self.agent_ix.get(login) else {
            let a = self.agents.len();
            self.agents.push(Agent::new(login, levels, now));
            self.agent_ix.insert(login.to_owned(), a);
            self.place_agent(a);
            self.index_agent(a, true);
            return;
        };
        let old_reqs = self.agents[a].reqs.clone();
        let was_active = self.agents[a].active();
        self.index_agent(a, false);
        self.agents[a].skills = levels;
        self.place_agent(a);
        self.index_agent(a, true);
        if was_active {
            self.check_servable(now, &old_reqs);
        }
        self.try_match_agent(now, a);
    }

    /// Removes an agent; a call it is offered goes to the next agent.
    pub fn remove_agent(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let a = self.agent(login)?;
        self.withdraw_offer(now, a);
        self.update_agent(now, a, |ag| {
            ag.removed = true;
            ag.activity = Activity::Idle;
        });
        let agent = &mut self.agents[a];
        if let Some(t) = agent.timer.take() {
            self.timers.remove(&(t, Timer::Agent(a)));
        }
        agent.reqs.clear();
        agent.buckets.clear();
        self.agent_ix.remove(login);
        Ok(())
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
        let a = self.agent(login)?;
        if !reachable {
            self.withdraw_offer(now, a);
        }
        self.update_agent(now, a, |ag| ag.reachable = reachable);
        Ok(())
    }

    /// Pauses an agent; a call in progress or a wrap-up finishes first.
    pub fn pause(&mut self, now: Instant, login: &str, reason: &str) -> Result<(), RoutingError> {
        let a = self.agent(login)?;
        self.update_agent(now, a, |ag| ag.pause = Some(reason.to_owned()));
        Ok(())
    }

    /// Ends a pause (and the count of missed offers).
    pub fn unpause(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let a = self.agent(login)?;
        self.update_agent(now, a, |ag| {
            ag.pause = None;
            ag.missed_in_row = 0;
        });
        Ok(())
    }

    /// A caller enters `queue` with its final priority (the flow computed
    /// max(queue, flow node, thread, VIP); the queue's own is applied again
    /// as a floor). `preferred_agent` is the thread's last agent, waited
    /// for first during the queue's `prefer_last_agent` if it is reachable
    /// and not paused.
    ///
    /// A closed queue or one no agent could serve makes the caller leave at
    /// once ([`Event::Left`]).
    pub fn enqueue(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u32,
        preferred_agent: Option<&str>,
    ) -> Result<(), RoutingError> {
        let q = self.queue(queue)?;
        if self.queues[q].retired {
            return Err(RoutingError::UnknownQueue(queue.to_owned()));
        }
        if self.callers.contains_key(&caller) {
            return Err(RoutingError::DuplicateCaller(caller));
        }
        self.seq += 1;
        let queue = &mut self.queues[q];
        let key = (Reverse(priority.max(queue.config.priority)), now, self.seq);
        queue.counters.offered += 1;
        queue.line.insert(key, caller);
        queue.by_age.insert((now, self.seq));
        // The first announcement is due at once: a caller who has to wait
        // hears where they stand on entry (skipped if an agent rings first).
        let next_announce = queue.config.announce.map(|_| now);
        let prefer = queue.config.prefer_last_agent;
        self.callers.insert(
            caller,
            Caller {
                queue: q,
                key,
                enqueued_at: now,
                stage: 0,
                place: Place::Nowhere,
                prefer_until: None,
                ringing: Vec::new(),
                ring_deadline: None,
                offers: Vec::new(),
                next_announce,
                timer: None,
            },
        );
        if !self.queue_open(now, q) {
            self.finish(now, caller, Outcome::Left(LeftReason::Closed), None);
            return Ok(());
        }
        if !self.servable(q) {
            self.finish(now, caller, Outcome::Left(LeftReason::NoAgents), None);
            return Ok(());
        }
        let preferred = preferred_agent
            .filter(|_| !prefer.is_zero())
            .and_then(|login| self.agent_ix.get(login).copied())
            .filter(|&a| self.agents[a].active());
        match preferred {
            Some(a) if self.agents[a].kind() == Kind::Available => {
                self.offer(now, caller, vec![a]);
            }
            Some(a) => {
                if let Some(c) = self.callers.get_mut(&caller) {
                    c.place = Place::Reserved(a);
                    c.prefer_until = now.checked_add(prefer);
                    self.agents[a].preferred.insert(key, caller);
                }
            }
            None => {
                self.place_waiting(now, caller);
                self.try_match_caller(now, caller);
            }
        }
        self.schedule_caller(caller);
        Ok(())
    }

    /// Changes a waiting caller's priority (the queue's own is the floor);
    /// its time waited is kept.
    pub fn set_priority(
        &mut self,
        now: Instant,
        caller: CallerId,
        priority: u32,
    ) -> Result<(), RoutingError> {
        let _ = now;
        let c = self
            .callers
            .get_mut(&caller)
            .ok_or(RoutingError::UnknownCaller(caller))?;
        let queue = &mut self.queues[c.queue];
        let old = c.key;
        let new = (Reverse(priority.max(queue.config.priority)), old.1, old.2);
        if old == new {
            return Ok(());
        }
        c.key = new;
        queue.line.remove(&old);
        queue.line.insert(new, caller);
        let set = match c.place {
            Place::Waiting => queue
                .stages
                .get(c.stage)
                .and_then(|&b| self.buckets.get_mut(b))
                .map(|b| &mut b.callers),
            Place::Reserved(a) => self.agents.get_mut(a).map(|a| &mut a.preferred),
            Place::Nowhere | Place::Offered => None,
        };
        if let Some(set) = set {
            set.remove(&old);
            set.insert(new, caller);
        }
        Ok(())
    }

    /// The caller hung up before an agent answered: counted as abandoned.
    pub fn remove(&mut self, now: Instant, caller: CallerId) -> Result<(), RoutingError> {
        if !self.callers.contains_key(&caller) {
            return Err(RoutingError::UnknownCaller(caller));
        }
        self.finish(now, caller, Outcome::Abandoned, None);
        Ok(())
    }

    /// `login` answered the offer: the agent is on the call, other agents of
    /// a `ring-all` are cancelled.
    pub fn offer_answered(
        &mut self,
        now: Instant,
        caller: CallerId,
        login: &str,
    ) -> Result<(), RoutingError> {
        let a = self.offered_to(caller, login)?;
        let Some(c) = self.callers.get(&caller) else {
            return Err(RoutingError::UnknownCaller(caller));
        };
        let q = c.queue;
        self.finish(now, caller, Outcome::Answered, Some(a));
        self.update_agent(now, a, |ag| {
            ag.activity = Activity::OnCall {
                queue: q,
                answered_at: now,
            };
            ag.calls = ag.calls.saturating_add(1);
            ag.missed_in_row = 0;
        });
        Ok(())
    }

    /// `login` declined the offer: a missed offer.
    pub fn offer_rejected(
        &mut self,
        now: Instant,
        caller: CallerId,
        login: &str,
    ) -> Result<(), RoutingError> {
        let a = self.offered_to(caller, login)?;
        self.missed(now, caller, &[a], true);
        Ok(())
    }

    /// `login` did not answer in time: a missed offer. (The engine also
    /// times offers out itself after the queue's `ring_timeout`.)
    pub fn offer_timeout(
        &mut self,
        now: Instant,
        caller: CallerId,
        login: &str,
    ) -> Result<(), RoutingError> {
        self.offer_rejected(now, caller, login)
    }

    /// `login` answered a call the engine did not route (a transfer to
    /// the agent): on a call until [`Router::direct_call_ended`], so no
    /// queue offers it a caller meanwhile. An agent busy with a queue call
    /// (offered, on call, wrap-up) stays as it is: [`RoutingError::Busy`].
    pub fn direct_call_started(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let a = self.agent(login)?;
        if self.agents[a].activity != Activity::Idle {
            return Err(RoutingError::Busy(login.to_owned()));
        }
        self.update_agent(now, a, |ag| ag.activity = Activity::Direct);
        Ok(())
    }

    /// The agent's direct call ended: available again at once (no
    /// wrap-up: no queue's work to finish).
    pub fn direct_call_ended(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let a = self.agent(login)?;
        if self.agents[a].activity != Activity::Direct {
            return Err(RoutingError::NotOnCall(login.to_owned()));
        }
        self.update_agent(now, a, |ag| ag.activity = Activity::Idle);
        Ok(())
    }

    /// The agent's call ended: wrap-up for the queue's `wrap_up`, then
    /// available again.
    pub fn call_ended(&mut self, now: Instant, login: &str) -> Result<(), RoutingError> {
        let a = self.agent(login)?;
        let Activity::OnCall { queue, answered_at } = self.agents[a].activity else {
            return Err(RoutingError::NotOnCall(login.to_owned()));
        };
        let wrap_up = match self.queues.get_mut(queue) {
            Some(q) => {
                q.aht.record(now.saturating_duration_since(answered_at));
                q.config.wrap_up
            }
            None => Duration::ZERO,
        };
        match now.checked_add(wrap_up).filter(|_| !wrap_up.is_zero()) {
            Some(until) => {
                self.update_agent(now, a, |ag| ag.activity = Activity::WrapUp { until });
                self.agents[a].timer = Some(until);
                self.timers.insert((until, Timer::Agent(a)));
            }
            None => self.update_agent(now, a, |ag| ag.activity = Activity::Idle),
        }
        Ok(())
    }

    /// Runs every timer due at `now`: ring timeouts, wrap-up ends, widen
    /// steps, preferred-agent waits, `max_wait`, announcements and hours.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_TIMERS_PER_CALL {
            let Some(&(at, timer)) = self.timers.first() else {
                return;
            };
            if at > now {
                return;
            }
            self.timers.pop_first();
            match timer {
                Timer::Caller(id) => {
                    if let Some(c) = self.callers.get_mut(&id) {
                        c.timer = None;
                    }
                    self.caller_timer(now, id);
                }
                Timer::Agent(a) => {
                    if let Some(agent) = self.agents.get_mut(a) {
                        agent.timer = None;
                        if let Activity::WrapUp { until } = agent.activity
                            && until <= now
                        {
                            self.update_agent(now, a, |ag| ag.activity = Activity::Idle);
                        }
                    }
                }
                Timer::Hours(q) => self.hours_timer(now, q),
            }
        }
    }

    /// When [`Router::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// The next output, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Live figures of `queue` at `now`.
    pub fn stats(&self, queue: &str, now: Instant) -> Option<QueueStats> {
        let q = self.queue(queue).ok()?;
        let queue = &self.queues[q];
        let counts = self.reqs.get(queue.base_req).map(|r| r.counts)?;
        let count = |k: Kind| counts[k as usize];
        let c = &queue.counters;
        let staffed: u32 = counts.iter().sum::<u32>() - count(Kind::Offline);
        let handled = c.answered + c.abandoned;
        Some(QueueStats {
            waiting: u32::try_from(queue.line.len()).unwrap_or(u32::MAX),
            longest_wait: queue
                .by_age
                .first()
                .map_or(Duration::ZERO, |&(t, _)| now.saturating_duration_since(t)),
            agents_staffed: staffed,
            agents_available: count(Kind::Available),
            agents_offered: count(Kind::Offered),
            agents_on_call: count(Kind::OnCall),
            agents_wrap_up: count(Kind::WrapUp),
            agents_paused: count(Kind::Paused),
            offered: c.offered,
            answered: c.answered,
            abandoned: c.abandoned,
            left: c.left,
            service_level: (handled > 0).then(|| c.answered_in_sl as f64 / handled as f64),
            asa: (c.answered > 0)
                .then(|| c.answer_wait / u32::try_from(c.answered).unwrap_or(u32::MAX)),
            aht: queue.aht.get(),
        })
    }

    /// An agent's reported state.
    pub fn agent_state(&self, login: &str) -> Option<AgentState> {
        self.agent_ix.get(login).map(|&a| self.agents[a].state())
    }

    /// A waiting caller's 1-based position in its queue and estimated wait.
    pub fn position(&self, caller: CallerId, now: Instant) -> Option<(u32, Duration)> {
        let c = self.callers.get(&caller)?;
        let queue = &self.queues[c.queue];
        let ahead = queue.line.range(..c.key).count();
        let position = u32::try_from(ahead).unwrap_or(u32::MAX).saturating_add(1);
        let agents = self.reqs.get(queue.base_req).map_or(0, |r| r.active);
        let ewt = ewt::estimate(position, queue.aht.get(), agents, queue.rate.per_sec(now));
        Some((position, ewt))
    }

    // ---- lookups ----

    fn agent(&self, login: &str) -> Result<AgentIx, RoutingError> {
        self.agent_ix
            .get(login)
            .copied()
            .ok_or_else(|| RoutingError::UnknownAgent(login.to_owned()))
    }

    /// A queue of the current configuration (or a retired one still in
    /// use).
    fn queue(&self, name: &str) -> Result<usize, RoutingError> {
        self.queue_ix
            .get(name)
            .copied()
            .filter(|&q| !self.queues[q].gone)
            .ok_or_else(|| RoutingError::UnknownQueue(name.to_owned()))
    }

    /// The agent `login` if `caller` is ringing it.
    fn offered_to(&self, caller: CallerId, login: &str) -> Result<AgentIx, RoutingError> {
        let c = self
            .callers
            .get(&caller)
            .ok_or(RoutingError::UnknownCaller(caller))?;
        let a = self.agent(login)?;
        if c.place == Place::Offered && c.ringing.contains(&a) {
            Ok(a)
        } else {
            Err(RoutingError::NotOffered {
                caller,
                login: login.to_owned(),
            })
        }
    }

    fn intern_skill(&mut self, name: &str) -> SkillIx {
        if let Some(&s) = self.skill_ix.get(name) {
            return s;
        }
        let s = SkillIx::try_from(self.skill_ix.len()).unwrap_or(SkillIx::MAX);
        self.skill_ix.insert(name.to_owned(), s);
        s
    }

    /// Skills as sorted (skill, level) with levels 1–5; level 0 dropped.
    fn intern_skills(&mut self, skills: &Skills) -> SkillLevels {
        let mut out: SkillLevels = skills
            .iter()
            .filter(|&(_, &l)| l > 0)
            .map(|(name, &l)| (self.intern_skill(name), l.min(5)))
            .collect();
        out.sort_unstable();
        out.dedup_by_key(|&mut (s, _)| s);
        out
    }

    // ---- agents ----

    /// Computes which requirements the agent meets and which caller sets it
    /// may serve.
    fn place_agent(&mut self, a: AgentIx) {
        let agent = &self.agents[a];
        let mut reqs = self.req_no_skills.clone();
        for &(s, _) in &agent.skills {
            if let Some(list) = self.req_by_first.get(&s) {
                reqs.extend(
                    list.iter()
                        .copied()
                        .filter(|&r| agent.meets(&self.reqs[r].skills)),
                );
            }
        }
        reqs.sort_unstable();
        reqs.dedup();
        let mut buckets: Vec<usize> = reqs
            .iter()
            .flat_map(|&r| self.reqs[r].buckets.iter().copied())
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        let agent = &mut self.agents[a];
        agent.reqs = reqs;
        agent.buckets = buckets;
    }

    /// Adds (or removes) the agent's current state to (from) the counters
    /// and available-agent orders of its requirements.
    fn index_agent(&mut self, a: AgentIx, add: bool) {
        let agent = &self.agents[a];
        if agent.removed {
            return;
        }
        let kind = agent.kind();
        let active = agent.active();
        for &r in &agent.reqs {
            let Some(req) = self.reqs.get_mut(r) else {
                continue;
            };
            let n = &mut req.counts[kind as usize];
            if add {
                *n += 1;
                req.active += u32::from(active);
                if kind == Kind::Available {
                    req.add_available(a, agent);
                }
            } else {
                *n = n.saturating_sub(1);
                req.active = req.active.saturating_sub(u32::from(active));
                if kind == Kind::Available {
                    req.remove_available(a, agent);
                }
            }
        }
    }

    /// Applies `change` to an agent and keeps every index, the reported
    /// state, reserved callers and the "no agents" rule in step; an agent
    /// that becomes available takes the best waiting caller.
    fn update_agent(&mut self, now: Instant, a: AgentIx, change: impl FnOnce(&mut Agent)) {
        let was_available = self.agents[a].kind() == Kind::Available;
        let was_active = self.agents[a].active();
        self.index_agent(a, false);
        change(&mut self.agents[a]);
        let agent = &mut self.agents[a];
        let available = agent.kind() == Kind::Available;
        if available && !was_available {
            agent.available_since = now;
        }
        self.index_agent(a, true);
        let agent = &mut self.agents[a];
        let state = agent.state();
        if state != agent.reported {
            agent.reported = state.clone();
            let login = agent.login.clone();
            self.events.push_back(Event::AgentState { login, state });
        }
        if was_active && !self.agents[a].active() {
            self.release_reserved(now, a);
            let reqs = self.agents[a].reqs.clone();
            self.check_servable(now, &reqs);
        }
        if available && !was_available {
            self.try_match_agent(now, a);
        }
    }

    /// Callers waiting for this agent only go to everyone.
    fn release_reserved(&mut self, now: Instant, a: AgentIx) {
        let reserved = std::mem::take(&mut self.agents[a].preferred);
        for (_, id) in reserved {
            self.unreserve(now, id);
        }
    }

    fn unreserve(&mut self, now: Instant, id: CallerId) {
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        if let Place::Reserved(a) = c.place {
            let key = c.key;
            c.place = Place::Nowhere;
            c.prefer_until = None;
            if let Some(agent) = self.agents.get_mut(a) {
                agent.preferred.remove(&key);
            }
            self.place_waiting(now, id);
            self.try_match_caller(now, id);
            self.schedule_caller(id);
        }
    }

    /// An agent being offered a call can no longer take it (unreachable or
    /// removed): the offer is cancelled without counting as missed.
    fn withdraw_offer(&mut self, now: Instant, a: AgentIx) {
        if let Activity::Offered(id) = self.agents[a].activity {
            let login = self.agents[a].login.clone();
            self.events.push_back(Event::Cancel {
                caller: id,
                agents: vec![login],
            });
            self.missed(now, id, &[a], false);
        }
    }

    /// The agents stop ringing for `id` (missed when `counted`): the caller
    /// goes back in line once no agent rings, before the agents are free
    /// again, so the next agent is tried first.
    fn missed(&mut self, now: Instant, id: CallerId, agents: &[AgentIx], counted: bool) {
        let mut max_no_answer = 0;
        if let Some(c) = self.callers.get_mut(&id) {
            c.ringing.retain(|a| !agents.contains(a));
            max_no_answer = self.queues[c.queue].config.max_no_answer;
            if c.ringing.is_empty() {
                self.return_caller(now, id);
            }
        }
        for &a in agents {
            self.update_agent(now, a, |ag| {
                if ag.activity == Activity::Offered(id) {
                    ag.activity = Activity::Idle;
                }
                if counted {
                    ag.missed_in_row = ag.missed_in_row.saturating_add(1);
                    if max_no_answer > 0 && ag.missed_in_row >= max_no_answer {
                        ag.pause = Some(MISSED_CALLS.to_owned());
                    }
                }
            });
        }
    }

    /// The best caller for a newly available agent: the head of every
    /// caller set it serves and its reserved callers, best first.
    fn try_match_agent(&mut self, now: Instant, a: AgentIx) {
        let agent = &self.agents[a];
        if agent.kind() != Kind::Available {
            return;
        }
        let mut best: Option<(CallerKey, CallerId, bool)> = agent
            .preferred
            .first_key_value()
            .map(|(&k, &id)| (k, id, false));
        for &b in &agent.buckets {
            if let Some((&k, &id)) = self
                .buckets
                .get(b)
                .and_then(|b| b.callers.first_key_value())
                && best.is_none_or(|(bk, _, _)| k < bk)
            {
                best = Some((k, id, true));
            }
        }
        let Some((_, id, from_bucket)) = best else {
            return;
        };
        let ring_all = self
            .callers
            .get(&id)
            .is_some_and(|c| self.queues[c.queue].config.strategy == Strategy::RingAll);
        if from_bucket && ring_all {
            self.try_match_caller(now, id);
        } else {
            self.offer(now, id, vec![a]);
        }
    }

    // ---- callers ----

    /// Offers a waiting caller to the agents its queue's strategy picks.
    fn try_match_caller(&mut self, now: Instant, id: CallerId) {
        let Some(c) = self.callers.get(&id) else {
            return;
        };
        if c.place != Place::Waiting {
            return;
        }
        let queue = &self.queues[c.queue];
        let Some(bucket) = queue.stages.get(c.stage).and_then(|&b| self.buckets.get(b)) else {
            return;
        };
        let agents = strategy::pick(
            queue.config.strategy,
            &bucket.reqs,
            &self.reqs,
            queue.cursor,
            &mut self.rng,
        );
        if !agents.is_empty() {
            self.offer(now, id, agents);
        }
    }

    /// Rings `agents` for the caller.
    fn offer(&mut self, now: Instant, id: CallerId, agents: Vec<AgentIx>) {
        self.unplace(id);
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        let queue = &mut self.queues[c.queue];
        c.place = Place::Offered;
        c.ring_deadline = now.checked_add(queue.config.ring_timeout);
        c.ringing.clone_from(&agents);
        queue.cursor = agents.last().copied().or(queue.cursor);
        let logins: Vec<String> = agents
            .iter()
            .map(|&a| self.agents[a].login.clone())
            .collect();
        for login in &logins {
            if c.offers.len() < MAX_OFFER_RECORDS {
                c.offers.push(OfferRecord {
                    login: login.clone(),
                    at: now,
                });
            }
        }
        self.events.push_back(Event::Offer {
            caller: id,
            agents: logins,
            queue: queue.config.name.clone(),
        });
        for a in agents {
            self.update_agent(now, a, |ag| ag.activity = Activity::Offered(id));
        }
        self.schedule_caller(id);
    }

    /// Takes the caller out of its caller set or reservation.
    fn unplace(&mut self, id: CallerId) {
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        match c.place {
            Place::Waiting => {
                if let Some(b) = self.queues[c.queue]
                    .stages
                    .get(c.stage)
                    .and_then(|&b| self.buckets.get_mut(b))
                {
                    b.callers.remove(&c.key);
                }
            }
            Place::Reserved(a) => {
                if let Some(agent) = self.agents.get_mut(a) {
                    agent.preferred.remove(&c.key);
                }
            }
            Place::Nowhere | Place::Offered => {}
        }
        c.place = Place::Nowhere;
    }

    /// Puts the caller in the caller set of the widen stage it has reached.
    fn place_waiting(&mut self, now: Instant, id: CallerId) {
        self.unplace(id);
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        let queue = &self.queues[c.queue];
        c.stage = queue.stage_for(now.saturating_duration_since(c.enqueued_at));
        if let Some(b) = queue
            .stages
            .get(c.stage)
            .and_then(|&b| self.buckets.get_mut(b))
        {
            b.callers.insert(c.key, id);
            c.place = Place::Waiting;
        }
    }

    /// No agent rings for the caller any more: back in line at its place,
    /// unless it must leave.
    fn return_caller(&mut self, now: Instant, id: CallerId) {
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        let q = c.queue;
        c.ring_deadline = None;
        c.prefer_until = None;
        c.place = Place::Nowhere;
        let waited = now.saturating_duration_since(c.enqueued_at);
        if self.queues[q].config.max_wait.is_some_and(|m| waited >= m) {
            self.finish(now, id, Outcome::Left(LeftReason::MaxWait), None);
        } else if !self.queue_open(now, q) {
            self.finish(now, id, Outcome::Left(LeftReason::Closed), None);
        } else if !self.servable(q) {
            self.finish(now, id, Outcome::Left(LeftReason::NoAgents), None);
        } else {
            self.place_waiting(now, id);
            self.try_match_caller(now, id);
            self.schedule_caller(id);
        }
    }

    /// The caller's time in the queue ends: it is removed everywhere,
    /// agents still ringing are cancelled (except `answered_by`), the
    /// counters move and the segment is reported.
    fn finish(
        &mut self,
        now: Instant,
        id: CallerId,
        outcome: Outcome,
        answered_by: Option<AgentIx>,
    ) {
        self.unplace(id);
        let Some(c) = self.callers.remove(&id) else {
            return;
        };
        if let Some(t) = c.timer {
            self.timers.remove(&(t, Timer::Caller(id)));
        }
        let queue = &mut self.queues[c.queue];
        queue.line.remove(&c.key);
        queue.by_age.remove(&(c.enqueued_at, c.key.2));
        let wait = now.saturating_duration_since(c.enqueued_at);
        let counters = &mut queue.counters;
        match outcome {
            Outcome::Answered => {
                counters.answered += 1;
                counters.answer_wait = counters.answer_wait.saturating_add(wait);
                if wait <= queue.config.service_level {
                    counters.answered_in_sl += 1;
                }
                queue.rate.record(now);
            }
            Outcome::Abandoned => counters.abandoned += 1,
            Outcome::Left(reason) => {
                counters.left += 1;
                self.events.push_back(Event::Left {
                    caller: id,
                    queue: queue.config.name.clone(),
                    reason,
                });
            }
        }
        let name = queue.config.name.clone();
        if queue.retired && queue.line.is_empty() {
            queue.gone = true;
        }
        let others: Vec<AgentIx> = c
            .ringing
            .iter()
            .copied()
            .filter(|&a| Some(a) != answered_by)
            .collect();
        if !others.is_empty() {
            self.events.push_back(Event::Cancel {
                caller: id,
                agents: others
                    .iter()
                    .map(|&a| self.agents[a].login.clone())
                    .collect(),
            });
        }
        let answered = answered_by.map(|a| (self.agents[a].login.clone(), now));
        self.events.push_back(Event::Segment(Segment {
            caller: id,
            queue: name,
            enqueued_at: c.enqueued_at,
            offers: c.offers,
            answered,
            outcome,
            wait,
        }));
        for a in others {
            self.update_agent(now, a, |ag| {
                if ag.activity == Activity::Offered(id) {
                    ag.activity = Activity::Idle;
                }
            });
        }
    }

    /// Moves the caller's entry in the timer table to its next deadline.
    fn schedule_caller(&mut self, id: CallerId) {
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        let config = &self.queues[c.queue].config;
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match c.place {
            Place::Offered => consider(c.ring_deadline),
            Place::Reserved(_) => consider(c.prefer_until),
            Place::Waiting => consider(
                config
                    .widen
                    .get(c.stage)
                    .and_then(|w| c.enqueued_at.checked_add(w.after)),
            ),
            Place::Nowhere => {}
        }
        if c.place != Place::Offered {
            consider(config.max_wait.and_then(|m| c.enqueued_at.checked_add(m)));
        }
        consider(c.next_announce);
        if next != c.timer {
            if let Some(t) = c.timer {
                self.timers.remove(&(t, Timer::Caller(id)));
            }
            if let Some(t) = next {
                self.timers.insert((t, Timer::Caller(id)));
            }
            c.timer = next;
        }
    }

    fn caller_timer(&mut self, now: Instant, id: CallerId) {
        let Some(c) = self.callers.get(&id) else {
            return;
        };
        if c.place == Place::Offered && c.ring_deadline.is_some_and(|t| t <= now) {
            let ringing = c.ringing.clone();
            self.events.push_back(Event::Cancel {
                caller: id,
                agents: ringing
                    .iter()
                    .map(|&a| self.agents[a].login.clone())
                    .collect(),
            });
            self.missed(now, id, &ringing, true);
        }
        let Some(c) = self.callers.get(&id) else {
            return;
        };
        let queue = &self.queues[c.queue];
        let waited = now.saturating_duration_since(c.enqueued_at);
        if c.place != Place::Offered {
            if queue.config.max_wait.is_some_and(|m| waited >= m) {
                self.finish(now, id, Outcome::Left(LeftReason::MaxWait), None);
                return;
            }
            match c.place {
                Place::Reserved(_) if c.prefer_until.is_some_and(|t| t <= now) => {
                    self.unreserve(now, id);
                }
                Place::Waiting if queue.stage_for(waited) != c.stage => {
                    self.place_waiting(now, id);
                    self.try_match_caller(now, id);
                }
                _ => {}
            }
        }
        self.announce(now, id);
        self.schedule_caller(id);
    }

    /// A periodic announcement when due (skipped while agents ring).
    fn announce(&mut self, now: Instant, id: CallerId) {
        let Some(c) = self.callers.get_mut(&id) else {
            return;
        };
        let Some(due) = c.next_announce.filter(|&t| t <= now) else {
            return;
        };
        let Some(a) = self.queues[c.queue].config.announce else {
            c.next_announce = None;
            return;
        };
        // The next announcement is strictly after `now`.
        let periods = now.saturating_duration_since(due).as_nanos() / a.every.as_nanos().max(1) + 1;
        let step = a
            .every
            .checked_mul(u32::try_from(periods).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX);
        c.next_announce = due.checked_add(step);
        if c.place == Place::Offered {
            return;
        }
        let Some((position, ewt)) = self.position(id, now) else {
            return;
        };
        self.events.push_back(Event::Announce {
            caller: id,
            position: a.position.then_some(position),
            ewt: a.wait_time.then_some(ewt),
        });
    }

    // ---- queues ----

    /// Some reachable, unpaused agent could serve the queue (widening
    /// included).
    fn servable(&self, q: usize) -> bool {
        self.queues[q]
            .all_reqs
            .iter()
            .any(|&r| self.reqs.get(r).is_some_and(|r| r.active > 0))
    }

    /// After agents left requirements `reqs`: callers of queues nobody can
    /// serve any more leave.
    fn check_servable(&mut self, now: Instant, reqs: &[usize]) {
        let mut queues: Vec<usize> = reqs
            .iter()
            .filter_map(|&r| self.reqs.get(r))
            .filter(|r| r.active == 0)
            .flat_map(|r| r.queues.iter().copied())
            .collect();
        queues.sort_unstable();
        queues.dedup();
        for q in queues {
            if !self.queues[q].line.is_empty() && !self.servable(q) {
                self.eject(now, q, LeftReason::NoAgents);
            }
        }
    }

    /// Every caller of the queue not being rung leaves.
    fn eject(&mut self, now: Instant, q: usize, reason: LeftReason) {
        let ids: Vec<CallerId> = self.queues[q].line.values().copied().collect();
        for id in ids {
            if self
                .callers
                .get(&id)
                .is_some_and(|c| c.place != Place::Offered)
            {
                self.finish(now, id, Outcome::Left(reason), None);
            }
        }
    }

    /// The wall-clock time at `now`.
    fn wall(&self, now: Instant) -> DateTime<Utc> {
        let delta = match now.checked_duration_since(self.clock.instant) {
            Some(d) => TimeDelta::from_std(d).ok(),
            None => TimeDelta::from_std(self.clock.instant.duration_since(now))
                .ok()
                .map(|d| -d),
        };
        delta
            .and_then(|d| self.clock.utc.checked_add_signed(d))
            .unwrap_or(self.clock.utc)
    }

    /// The `Instant` of wall-clock time `t`.
    fn instant_of(&self, t: DateTime<Utc>) -> Option<Instant> {
        let delta = t.signed_duration_since(self.clock.utc);
        if delta >= TimeDelta::zero() {
            self.clock.instant.checked_add(delta.to_std().ok()?)
        } else {
            self.clock.instant.checked_sub((-delta).to_std().ok()?)
        }
    }

    /// Whether the queue's hours are open at `now` (cached until the next
    /// change, which arms an hours timer).
    fn queue_open(&mut self, now: Instant, q: usize) -> bool {
        let queue = &self.queues[q];
        let Some(hours) = &queue.hours else {
            return true;
        };
        if let Some((open, until)) = queue.open
            && until.is_none_or(|u| now < u)
        {
            return open;
        }
        let utc = self.wall(now);
        let open = hours.is_open(utc);
        let until = hours.next_change(utc).and_then(|t| self.instant_of(t));
        let queue = &mut self.queues[q];
        queue.open = Some((open, until));
        if until != queue.hours_timer {
            if let Some(t) = queue.hours_timer {
                self.timers.remove(&(t, Timer::Hours(q)));
            }
            if let Some(t) = until {
                self.timers.insert((t, Timer::Hours(q)));
            }
            queue.hours_timer = until;
        }
        open
    }

    fn hours_timer(&mut self, now: Instant, q: usize) {
        let Some(queue) = self.queues.get_mut(q) else {
            return;
        };
        queue.hours_timer = None;
        queue.open = None;
        if !self.queue_open(now, q) {
            self.eject(now, q, LeftReason::Closed);
        }
    }

    /// Builds the queue, requirement and caller-set tables from a
    /// configuration and re-indexes agents and callers.
    fn rebuild(&mut self, now: Instant, set: &QueueSet, hours: &HoursSet) {
        // Waiting callers are re-placed once the new caller sets exist.
        let mut waiting: Vec<(CallerKey, CallerId)> = self
            .callers
            .iter_mut()
            .filter(|(_, c)| c.place == Place::Waiting)
            .map(|(&id, c)| {
                c.place = Place::Nowhere;
                (c.key, id)
            })
            .collect();
        waiting.sort_unstable();

        for queue in &mut self.queues {
            queue.retired = true;
        }
        for config in set.iter() {
            match self.queue_ix.get(&config.name) {
                Some(&q) => {
                    let queue = &mut self.queues[q];
                    queue.config = config.clone();
                    queue.retired = false;
                    queue.gone = false;
                }
                None => {
                    self.queue_ix.insert(config.name.clone(), self.queues.len());
                    self.queues.push(Queue::new(config.clone()));
                }
            }
        }
        for (q, queue) in self.queues.iter_mut().enumerate() {
            queue.gone = queue.retired && queue.line.is_empty();
            if queue.retired {
                // A retired queue keeps the hours it had.
            } else {
                queue.hours = queue
                    .config
                    .hours
                    .as_ref()
                    .and_then(|h| hours.get(&h.name))
                    .cloned();
            }
            queue.open = None;
            if let Some(t) = queue.hours_timer.take() {
                self.timers.remove(&(t, Timer::Hours(q)));
            }
            queue.stages.clear();
            queue.all_reqs.clear();
        }

        // Requirements: one per distinct skill set of every queue and stage.
        self.reqs.clear();
        self.buckets.clear();
        let mut interned: HashMap<Vec<(SkillIx, u8)>, usize> = HashMap::new();
        let mut stage_reqs: Vec<Vec<(usize, Vec<usize>)>> = Vec::new();
        for q in 0..self.queues.len() {
            let mut stages = Vec::new();
            if !self.queues[q].gone {
                let config = self.queues[q].config.clone();
                let mut skills = config.skills.clone();
                let mut also: Vec<usize> = Vec::new();
                for step in std::iter::once(None).chain(config.widen.iter().map(Some)) {
                    if let Some(step) = step {
                        for (name, &level) in &step.skills {
                            if level == 0 {
                                skills.remove(name);
                            } else {
                                skills.insert(name.clone(), level);
                            }
                        }
                        also.extend(
                            step.also
                                .iter()
                                .filter_map(|n| self.queue_ix.get(&n.name).copied())
                                .filter(|&a| a != q),
                        );
                    }
                    let levels = self.intern_skills(&skills);
                    let r = *interned.entry(levels.clone()).or_insert_with(|| {
                        self.reqs.push(Req::new(levels));
                        self.reqs.len() - 1
                    });
                    stages.push((r, also.clone()));
                }
                if let Some(&(r, _)) = stages.first() {
                    self.queues[q].base_req = r;
                }
            }
            stage_reqs.push(stages);
        }
        for (q, stages) in stage_reqs.into_iter().enumerate() {
            let order = strategy::order_of(self.queues[q].config.strategy);
            for (r, also) in stages {
                let mut reqs = vec![r];
                reqs.extend(
                    also.iter()
                        .filter(|&&a| !self.queues[a].gone)
                        .map(|&a| self.queues[a].base_req),
                );
                reqs.sort_unstable();
                reqs.dedup();
                let b = self.buckets.len();
                for &r in &reqs {
                    let req = &mut self.reqs[r];
                    req.buckets.push(b);
                    req.orders |= order;
                    if req.queues.last() != Some(&q) {
                        req.queues.push(q);
                    }
                }
                let queue = &mut self.queues[q];
                queue.stages.push(b);
                queue.all_reqs.extend(&reqs);
                self.buckets.push(Bucket {
                    reqs,
                    callers: BTreeMap::new(),
                });
            }
            let queue = &mut self.queues[q];
            queue.all_reqs.sort_unstable();
            queue.all_reqs.dedup();
        }
        self.req_by_first.clear();
        self.req_no_skills.clear();
        for (r, req) in self.reqs.iter().enumerate() {
            match req.skills.first() {
                Some(&(s, _)) => self.req_by_first.entry(s).or_default().push(r),
                None => self.req_no_skills.push(r),
            }
        }

        // Agents.
        for a in 0..self.agents.len() {
            if !self.agents[a].removed {
                self.place_agent(a);
                self.index_agent(a, true);
            }
        }

        // Callers: back in line in order, then matched.
        for &(_, id) in &waiting {
            self.place_waiting(now, id);
        }
        for &(_, id) in &waiting {
            self.try_match_caller(now, id);
        }
        for q in 0..self.queues.len() {
            if self.queues[q].line.is_empty() {
                continue;
            }
            if !self.queue_open(now, q) {
                self.eject(now, q, LeftReason::Closed);
            } else if !self.servable(q) {
                self.eject(now, q, LeftReason::NoAgents);
            }
        }
        let ids: Vec<CallerId> = self.callers.keys().copied().collect();
        for id in ids {
            self.schedule_caller(id);
        }
    }
}
