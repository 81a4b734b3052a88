//! The routing engine's task (DESIGN §6): one tokio task per switch owns the
//! sans-IO [`Router`], feeds it the call tasks' commands and the agents'
//! registrations, runs its timers, and hands each waiting caller's events
//! (offers, cancels, leaving) to that caller's call task.
//!
//! It is also the control plane's way in (DESIGN §8): the API's agent
//! changes reach the router at once, live agent states and queue figures
//! are answered from it, every pause (the API's or the engine's own after
//! `max_no_answer`) is written to the store so it survives a restart, and
//! each caller's time in a queue is stored as a queue segment. Store writes
//! run in order on a task of their own, never on the routing loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::routing::{
    AgentState, CallerId, Event, LeftReason, Outcome, QueueStats, Router, RoutingError, Segment,
    WallClock,
};
use crate::events::EventBus;
use crate::ivr::model::FlowSet;
use crate::ivr::reload::FlowsHandle;
use crate::sip::registrar::BindingEvent;
use crate::store::{NewQueueSegment, SegmentOffer, Store, StoreError, now_ms};

/// What the engine tells one waiting caller's call task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    /// Ring these agents; report [`AcdCommand::Answered`] or
    /// [`AcdCommand::Rejected`] for each.
    Offer { agents: Vec<String>, queue: String },
    /// Stop ringing these agents.
    Cancel { agents: Vec<String> },
    /// The caller leaves the queue without an agent (the flow's `next`).
    Left { reason: LeftReason },
    /// Time to tell the caller where they stand: their 1-based position
    /// and estimated wait, each present when the queue's `announce` asks.
    Announce {
        position: Option<u32>,
        ewt: Option<Duration>,
    },
}

/// What call tasks ask of the engine.
#[derive(Debug)]
pub enum AcdCommand {
    /// A caller enters `queue`; its events come on `reply`.
    Enqueue {
        caller: CallerId,
        /// The SIP Call-ID of the caller's call, for its queue segments.
        call_id: String,
        queue: String,
        priority: u32,
        preferred: Option<String>,
        reply: mpsc::UnboundedSender<QueueEvent>,
    },
    /// The caller hung up while waiting.
    Remove {
        caller: CallerId,
    },
    /// `login` answered the offer for `caller`.
    Answered {
        caller: CallerId,
        login: String,
    },
    /// `login` refused the offer (or could not be reached).
    Rejected {
        caller: CallerId,
        login: String,
    },
    /// `login` did not answer in time.
    Timeout {
        caller: CallerId,
        login: String,
    },
    /// The agent's queue call ended (either side hung up).
    CallEnded {
        login: String,
    },
    /// `login` answered a call the engine did not route (a transfer):
    /// busy until [`AcdCommand::DirectCallEnded`].
    DirectCallStarted {
        login: String,
    },
    DirectCallEnded {
        login: String,
    },
    /// An agent was added or changed (API): the engine takes its skills at
    /// once; an agent new to the engine starts paused if it is stored so.
    AgentUpsert {
        agent: crate::store::Agent,
    },
    /// An agent was deleted (API): the engine forgets it.
    AgentRemoved {
        login: String,
    },
    /// Pauses an agent (a call in progress finishes first). The pause is
    /// written to the store before `done` answers.
    Pause {
        login: String,
        reason: String,
        done: Option<Done>,
    },
    /// Ends an agent's pause; stored before `done` answers.
    Unpause {
        login: String,
        done: Option<Done>,
    },
    /// The live state of each of `logins` the engine knows.
    AgentStates {
        logins: Vec<String>,
        reply: oneshot::Sender<HashMap<String, LiveAgent>>,
    },
    /// Live figures of every queue of the running flow set, by name.
    QueueStats {
        reply: oneshot::Sender<Vec<(String, QueueStats)>>,
    },
}

/// Answers a state change once the store has it.
pub type Done = oneshot::Sender<Result<(), StoreError>>;

/// An agent as the engine sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveAgent {
    pub state: AgentState,
    /// The pause reason, also while the agent is offline or finishing a
    /// call (it comes back paused).
    pub pause: Option<String>,
}

/// The engine task's address, shared by every call and the API.
#[derive(Debug, Clone)]
pub struct AcdHandle {
    commands: mpsc::UnboundedSender<AcdCommand>,
    presence: mpsc::UnboundedSender<BindingEvent>,
}

/// Caller ids are unique per switch process.
static NEXT_CALLER: AtomicU64 = AtomicU64::new(1);

impl AcdHandle {
    /// A fresh id for a caller about to be enqueued.
    pub fn new_caller(&self) -> CallerId {
        CallerId(NEXT_CALLER.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a command; a stopped engine is ignored (the caller's flow
    /// then waits in vain, which only happens at shutdown).
    pub fn send(&self, command: AcdCommand) {
        let _ = self.commands.send(command);
    }

    /// Where the SIP endpoint reports agents' registrations.
    pub fn presence(&self) -> mpsc::UnboundedSender<BindingEvent> {
        self.presence.clone()
    }

    /// The live state of each of `logins` the engine knows; empty when the
    /// engine is gone.
    pub async fn agent_states(&self, logins: Vec<String>) -> HashMap<String, LiveAgent> {
        let (reply, rx) = oneshot::channel();
        self.send(AcdCommand::AgentStates { logins, reply });
        rx.await.unwrap_or_default()
    }

    /// Live figures of every queue of the running flow set, by name; empty
    /// when the engine is gone.
    pub async fn queue_stats(&self) -> Vec<(String, QueueStats)> {
        let (reply, rx) = oneshot::channel();
        self.send(AcdCommand::QueueStats { reply });
        rx.await.unwrap_or_default()
    }

    /// Pauses `login` and waits until the store has it; `None` when the
    /// engine is gone.
    pub async fn pause(&self, login: &str, reason: &str) -> Option<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        self.send(AcdCommand::Pause {
            login: login.to_owned(),
            reason: reason.to_owned(),
            done: Some(done),
        });
        rx.await.ok()
    }

    /// Ends the pause of `login` and waits until the store has it; `None`
    /// when the engine is gone.
    pub async fn unpause(&self, login: &str) -> Option<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        self.send(AcdCommand::Unpause {
            login: login.to_owned(),
            done: Some(done),
        });
        rx.await.ok()
    }
}

/// Whether an agent is paused, as the store keeps it across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    Offline,
    Available,
    Paused(String),
}

/// A write of the engine's store task, done in order.
#[derive(Debug)]
enum Write {
    State {
        login: String,
        state: Stored,
        done: Option<Done>,
    },
    Segment(NewQueueSegment),
}

/// Writes agent states and queue segments one after the other, off the
/// engine's loop: a slow database never delays routing, and a pause never
/// overtakes the unpause that followed it.
async fn write_store(store: Store, mut writes: mpsc::UnboundedReceiver<Write>) {
    while let Some(write) = writes.recv().await {
        match write {
            Write::State { login, state, done } => {
                let (name, reason) = match &state {
                    Stored::Offline => ("offline", None),
                    Stored::Available => ("available", None),
                    Stored::Paused(reason) => ("paused", Some(reason.as_str())),
                };
                let result = store.agents().set_state(&login, name, reason).await;
                if let Err(err) = &result {
                    tracing::warn!(cause = %err, %login, state = name, "cannot store the agent state");
                }
                if let Some(done) = done {
                    let _ = done.send(result);
                }
            }
            Write::Segment(segment) => {
                if let Err(err) = store.segments().insert(&segment).await {
                    tracing::error!(
                        cause = %err,
                        call_id = %segment.call_id,
                        queue = %segment.queue,
                        "cannot store the queue segment"
                    );
                }
            }
        }
    }
}

/// Starts the engine task (inside a tokio runtime). Registration changes go
/// to [`AcdHandle::presence`]; what the engine decides is also published on
/// `events`.
pub fn spawn_acd(store: Store, flows: FlowsHandle, events: EventBus) -> AcdHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (presence_tx, presence) = mpsc::unbounded_channel();
    let (writes_tx, writes) = mpsc::unbounded_channel();
    tokio::spawn(write_store(store.clone(), writes));
    tokio::spawn(run(store, flows, events, commands, presence, writes_tx));
    AcdHandle {
        commands: commands_tx,
        presence: presence_tx,
    }
}

struct Driver {
    store: Store,
    events: EventBus,
    flows: FlowsHandle,
    /// The flow set whose queues the router has.
    set: Arc<FlowSet>,
    router: Router,
    callers: HashMap<CallerId, mpsc::UnboundedSender<QueueEvent>>,
    /// SIP Call-ID of every caller until its segment is written.
    call_ids: HashMap<CallerId, String>,
    /// Every paused agent's reason, offline ones included.
    pauses: HashMap<String, String>,
    /// What the store holds for each known agent (writes skip repeats).
    stored: HashMap<String, Stored>,
    /// Logins with a live registration, agents or not: an agent created
    /// (or created again) while its phone is registered is reachable at
    /// once, not at the phone's next REGISTER.
    registered: HashSet<String>,
    writes: mpsc::UnboundedSender<Write>,
}

async fn run(
    store: Store,
    flows: FlowsHandle,
    events: EventBus,
    mut commands: mpsc::UnboundedReceiver<AcdCommand>,
    mut presence: mpsc::UnboundedReceiver<BindingEvent>,
    writes: mpsc::UnboundedSender<Write>,
) {
    let now = Instant::now();
    let set = flows.current();
    let router = Router::new(
        Arc::new(set.queues().clone()),
        Arc::new(set.hours().clone()),
        WallClock {
            instant: now,
            utc: chrono::Utc::now(),
        },
        rand::random(),
    );
    let mut driver = Driver {
        store,
        events,
        flows,
        set,
        router,
        callers: HashMap::new(),
        call_ids: HashMap::new(),
        pauses: HashMap::new(),
        stored: HashMap::new(),
        registered: HashSet::new(),
        writes,
    };
    driver.load_agents(now).await;
    loop {
        let deadline = driver
            .router
            .poll_timeout()
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = Instant::now();
                driver.follow_reload(now);
                driver.handle_command(now, command);
            }
            Some(event) = presence.recv() => {
                driver.handle_presence(Instant::now(), event).await;
            }
            _ = sleep_until_opt(deadline) => {
                driver.router.handle_timeout(Instant::now());
            }
        }
        driver.route_events(Instant::now());
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Every stored agent with its skills; offline until it registers,
    /// paused if it was paused.
    async fn load_agents(&mut self, now: Instant) {
        let agents = match self.store.agents().list().await {
            Ok(agents) => agents,
            Err(err) => {
                tracing::error!(cause = %err, "cannot load agents for the queues");
                return;
            }
        };
        for agent in agents {
            self.add_agent(now, &agent);
            // Registrations do not outlive the process: an agent stored as
            // available is offline until its phone registers again.
            if self.stored.get(&agent.login) == Some(&Stored::Available) {
                self.persist(&agent.login, Stored::Offline, None);
            }
        }
    }

    fn add_agent(&mut self, now: Instant, agent: &crate::store::Agent) {
        let skills = agent.skills.iter().cloned().collect();
        self.router.set_agent(now, &agent.login, &skills);
        let stored = match agent.state.as_str() {
            "paused" => {
                let reason = agent.pause_reason.as_deref().unwrap_or("paused");
                let _ = self.router.pause(now, &agent.login, reason);
                self.pauses.insert(agent.login.clone(), reason.to_owned());
                Stored::Paused(reason.to_owned())
            }
            "offline" => Stored::Offline,
            _ => Stored::Available,
        };
        self.stored.insert(agent.login.clone(), stored);
        if self.registered.contains(&agent.login) {
            let _ = self.router.set_reachable(now, &agent.login, true);
        }
    }

    /// Writes the agent's state unless the store has it already (a `done`
    /// always writes, so it answers after the store has it).
    fn persist(&mut self, login: &str, state: Stored, done: Option<Done>) {
        if done.is_none() && self.stored.get(login) == Some(&state) {
            return;
        }
        self.stored.insert(login.to_owned(), state.clone());
        let _ = self.writes.send(Write::State {
            login: login.to_owned(),
            state,
            done,
        });
    }

    /// An agent the API added or changed.
    fn upsert_agent(&mut self, now: Instant, agent: &crate::store::Agent) {
        if self.router.agent_state(&agent.login).is_some() {
            let skills = agent.skills.iter().cloned().collect();
            self.router.set_agent(now, &agent.login, &skills);
        } else {
            self.add_agent(now, agent);
        }
    }

    fn live_agent(&self, login: &str) -> Option<LiveAgent> {
        let state = self.router.agent_state(login)?;
        Some(LiveAgent {
            state,
            pause: self.pauses.get(login).cloned(),
        })
    }

    /// A reload swapped the flow set: the router takes its queues.
    fn follow_reload(&mut self, now: Instant) {
        let current = self.flows.current();
        if Arc::ptr_eq(&current, &self.set) {
            return;
        }
        self.router.set_queues(
            now,
            Arc::new(current.queues().clone()),
            Arc::new(current.hours().clone()),
        );
        self.set = current;
    }

    async fn handle_presence(&mut self, now: Instant, event: BindingEvent) {
        let (login, reachable) = match event {
            BindingEvent::Registered { login } => (login, true),
            BindingEvent::Unregistered { login } => (login, false),
        };
        if reachable {
            self.registered.insert(login.clone());
        } else {
            self.registered.remove(&login);
        }
        match self.router.set_reachable(now, &login, reachable) {
            Err(RoutingError::UnknownAgent(_)) if reachable => {
                // Added after the engine started: load it now.
                match self.store.agents().get(&login).await {
                    // Reachable as it joins: the login is registered.
                    Ok(Some(agent)) => self.add_agent(Instant::now(), &agent),
                    Ok(None) => tracing::debug!(%login, "registered login is not an agent"),
                    Err(err) => tracing::warn!(cause = %err, %login, "cannot load agent"),
                }
            }
            Err(err) => tracing::debug!(cause = %err, "presence not applied"),
            Ok(()) => {}
        }
    }

    fn handle_command(&mut self, now: Instant, command: AcdCommand) {
        let result = match command {
            AcdCommand::Enqueue {
                caller,
                call_id,
                queue,
                priority,
                preferred,
                reply,
            } => {
                tracing::info!(caller = caller.0, %queue, priority, "caller enqueued");
                self.callers.insert(caller, reply);
                self.call_ids.insert(caller, call_id.clone());
                self.events.publish(
                    "queue.caller_joined",
                    serde_json::json!({
                        "call_id": call_id,
                        "queue": queue,
                        "priority": priority,
                    }),
                );
                let result =
                    self.router
                        .enqueue(now, caller, &queue, priority, preferred.as_deref());
                if let Err(err) = &result {
                    tracing::warn!(cause = %err, %queue, "cannot enqueue");
                    self.call_ids.remove(&caller);
                    self.events.publish(
                        "queue.caller_left",
                        serde_json::json!({
                            "call_id": call_id,
                            "queue": queue,
                            "outcome": "no_agents",
                            "wait_ms": 0,
                            "agent": null,
                        }),
                    );
                    if let Some(reply) = self.callers.remove(&caller) {
                        let _ = reply.send(QueueEvent::Left {
                            reason: LeftReason::NoAgents,
                        });
                    }
                }
                result
            }
            AcdCommand::Remove { caller } => {
                self.callers.remove(&caller);
                self.router.remove(now, caller)
            }
            AcdCommand::Answered { caller, login } => {
                self.router.offer_answered(now, caller, &login)
            }
            AcdCommand::Rejected { caller, login } => {
                self.router.offer_rejected(now, caller, &login)
            }
            AcdCommand::Timeout { caller, login } => self.router.offer_timeout(now, caller, &login),
            AcdCommand::CallEnded { login } => self.router.call_ended(now, &login),
            AcdCommand::DirectCallStarted { login } => self.router.direct_call_started(now, &login),
            AcdCommand::DirectCallEnded { login } => self.router.direct_call_ended(now, &login),
            AcdCommand::AgentUpsert { agent } => {
                tracing::debug!(login = %agent.login, "agent changed");
                self.upsert_agent(now, &agent);
                Ok(())
            }
            AcdCommand::AgentRemoved { login } => {
                tracing::debug!(%login, "agent removed");
                self.pauses.remove(&login);
                self.stored.remove(&login);
                self.router.remove_agent(now, &login)
            }
            AcdCommand::Pause {
                login,
                reason,
                done,
            } => {
                tracing::info!(%login, %reason, "agent paused");
                self.pauses.insert(login.clone(), reason.clone());
                let result = self.router.pause(now, &login, &reason);
                self.persist(&login, Stored::Paused(reason), done);
                result
            }
            AcdCommand::Unpause { login, done } => {
                tracing::info!(%login, "agent unpaused");
                self.pauses.remove(&login);
                let result = self.router.unpause(now, &login);
                let state = match self.router.agent_state(&login) {
                    None | Some(AgentState::Offline) => Stored::Offline,
                    Some(_) => Stored::Available,
                };
                self.persist(&login, state, done);
                result
            }
            AcdCommand::AgentStates { logins, reply } => {
                let live = logins
                    .into_iter()
                    .filter_map(|login| self.live_agent(&login).map(|live| (login, live)))
                    .collect();
                let _ = reply.send(live);
                Ok(())
            }
            AcdCommand::QueueStats { reply } => {
                let stats = self
                    .set
                    .queues()
                    .names()
                    .filter_map(|name| Some((name.to_owned(), self.router.stats(name, now)?)))
                    .collect();
                let _ = reply.send(stats);
                Ok(())
            }
        };
        if let Err(err) = result {
            // Races between the call task and the engine's own timers.
            tracing::debug!(cause = %err, "queue command not applied");
        }
    }

    /// Hands the router's events to the callers they concern.
    fn route_events(&mut self, now: Instant) {
        while let Some(event) = self.router.poll_event() {
            let (caller, out) = match event {
                Event::Offer {
                    caller,
                    agents,
                    queue,
                } => {
                    tracing::info!(caller = caller.0, ?agents, %queue, "offering caller");
                    (caller, QueueEvent::Offer { agents, queue })
                }
                Event::Cancel { caller, agents } => (caller, QueueEvent::Cancel { agents }),
                Event::Left {
                    caller,
                    queue,
                    reason,
                } => {
                    tracing::info!(caller = caller.0, %queue, ?reason, "caller left the queue");
                    (caller, QueueEvent::Left { reason })
                }
                Event::AgentState { login, state } => {
                    tracing::debug!(%login, ?state, "agent state");
                    let reason = match &state {
                        AgentState::Paused(reason) => Some(reason.as_str()),
                        _ => None,
                    };
                    self.events.publish(
                        "agent.state",
                        serde_json::json!({
                            "login": login,
                            "state": state.as_str(),
                            "reason": reason,
                        }),
                    );
                    self.agent_state_changed(&login, &state);
                    continue;
                }
                Event::Announce {
                    caller,
                    position,
                    ewt,
                } => {
                    tracing::debug!(caller = caller.0, ?position, ?ewt, "announcement due");
                    (caller, QueueEvent::Announce { position, ewt })
                }
                Event::Segment(segment) => {
                    tracing::info!(
                        caller = segment.caller.0,
                        queue = %segment.queue,
                        outcome = ?segment.outcome,
                        wait_ms = segment.wait.as_millis() as u64,
                        "queue segment"
                    );
                    // The caller's time in the queue is over.
                    self.callers.remove(&segment.caller);
                    self.segment_done(now, &segment);
                    continue;
                }
            };
            let gone = match self.callers.get(&caller) {
                Some(reply) => reply.send(out).is_err(),
                None => false,
            };
            if gone {
                // The call task ended without telling us.
                self.callers.remove(&caller);
                let _ = self.router.remove(now, caller);
            }
        }
    }

    /// Keeps the stored pause in step with the engine: its own pauses
    /// (`max_no_answer`) are written, and so is being available or offline
    /// when not paused. Transient call states are not written.
    fn agent_state_changed(&mut self, login: &str, state: &AgentState) {
        if !self.stored.contains_key(login) {
            // Removed: its row is gone.
            return;
        }
        match state {
            AgentState::Paused(reason) => {
                self.pauses.insert(login.to_owned(), reason.clone());
                self.persist(login, Stored::Paused(reason.clone()), None);
            }
            AgentState::Available => self.persist(login, Stored::Available, None),
            AgentState::Offline if !self.pauses.contains_key(login) => {
                self.persist(login, Stored::Offline, None);
            }
            _ => {}
        }
    }

    /// Stores a caller's finished time in a queue and tells the event
    /// stream.
    fn segment_done(&mut self, now: Instant, segment: &Segment) {
        let call_id = self
            .call_ids
            .remove(&segment.caller)
            .unwrap_or_else(|| format!("caller-{}", segment.caller.0));
        let now_ms = now_ms();
        let epoch = |t: Instant| {
            now_ms.saturating_sub(
                i64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(i64::MAX),
            )
        };
        let enqueued_at = epoch(segment.enqueued_at);
        let wait_ms = i64::try_from(segment.wait.as_millis()).unwrap_or(i64::MAX);
        let row = NewQueueSegment {
            call_id,
            queue: segment.queue.clone(),
            enqueued_at,
            left_at: enqueued_at.saturating_add(wait_ms),
            outcome: outcome_name(segment.outcome),
            agent: segment.answered.as_ref().map(|(login, _)| login.clone()),
            offers: segment
                .offers
                .iter()
                .map(|o| SegmentOffer {
                    login: o.login.clone(),
                    at: epoch(o.at),
                })
                .collect(),
            wait_ms,
        };
        self.events.publish(
            "queue.caller_left",
            serde_json::json!({
                "call_id": row.call_id,
                "queue": row.queue,
                "outcome": row.outcome,
                "wait_ms": row.wait_ms,
                "agent": row.agent,
            }),
        );
        let _ = self.writes.send(Write::Segment(row));
    }
}

/// The stored name of a queue outcome (`queue_segments.outcome`).
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Answered => "answered",
        Outcome::Abandoned => "abandoned",
        Outcome::Left(LeftReason::MaxWait) => "max_wait",
        Outcome::Left(LeftReason::Closed) => "closed",
        Outcome::Left(LeftReason::NoAgents) => "no_agents",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ivr::reload::FlowReloader;
    use crate::store::NewAgent;
    use crate::store::testing::{TempDir, TestDb};

    /// A flow folder with one queue: an agent is paused after one missed
    /// offer.
    fn flows(dir: &TempDir) -> FlowReloader {
        let flows = dir.path().join("flows");
        let sounds = dir.path().join("sounds");
        std::fs::create_dir_all(&flows).unwrap();
        std::fs::create_dir_all(&sounds).unwrap();
        std::fs::write(
            flows.join("main.yaml"),
            "name: main\nnumbers: [\"100\"]\nstart: q\nnodes:\n  q: { queue: support, next: bye }\n  bye: { hangup: {} }\n",
        )
        .unwrap();
        std::fs::write(
            flows.join("queues.yaml"),
            "queues:\n  support:\n    skills: { support: 1 }\n    max_no_answer: 1\n",
        )
        .unwrap();
        FlowReloader::load(&flows, &sounds).unwrap()
    }

    async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// DESIGN §6: after `max_no_answer` missed offers the engine pauses the
    /// agent ("missed calls"); the pause is stored, so a restart keeps it.
    /// The caller's time in the queue is stored as a segment and both ends
    /// of it are published.
    #[tokio::test]
    async fn missed_offers_pause_is_stored_and_segment_written() {
        let db = TestDb::sqlite().await;
        let store = db.store.clone();
        store
            .agents()
            .add(NewAgent {
                login: "alice".to_owned(),
                password: "pw".to_owned(),
                display_name: None,
                extension: None,
                realm: "test".to_owned(),
                skills: vec![("support".to_owned(), 2)],
            })
            .await
            .unwrap();
        let dir = TempDir::new("acd").unwrap();
        let flows = flows(&dir);
        let events = EventBus::new();
        let mut published = events.subscribe();
        let acd = spawn_acd(store.clone(), flows.handle().clone(), events.clone());
        acd.presence()
            .send(BindingEvent::Registered {
                login: "alice".to_owned(),
            })
            .unwrap();
        eventually("alice is available", async || {
            let live = acd.agent_states(vec!["alice".to_owned()]).await;
            (live.get("alice")?.state == AgentState::Available).then_some(())
        })
        .await;
        eventually("the store has alice available", async || {
            let a = store.agents().get("alice").await.unwrap()?;
            (a.state == "available").then_some(())
        })
        .await;

        let (reply, mut queue_events) = mpsc::unbounded_channel();
        let caller = acd.new_caller();
        acd.send(AcdCommand::Enqueue {
            caller,
            call_id: "call-1@test".to_owned(),
            queue: "support".to_owned(),
            priority: 0,
            preferred: None,
            reply,
        });
        let offer = queue_events.recv().await.unwrap();
        assert_eq!(
            offer,
            QueueEvent::Offer {
                agents: vec!["alice".to_owned()],
                queue: "support".to_owned()
            }
        );
        let stats = acd.queue_stats().await;
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].0, "support");
        assert_eq!((stats[0].1.waiting, stats[0].1.agents_offered), (1, 1));

        // The offer rings out: alice is paused and nobody else can serve.
        acd.send(AcdCommand::Timeout {
            caller,
            login: "alice".to_owned(),
        });
        let mut left = None;
        while let Some(event) = queue_events.recv().await {
            if let QueueEvent::Left { reason } = event {
                left = Some(reason);
                break;
            }
        }
        assert_eq!(left, Some(LeftReason::NoAgents));
        let live = acd.agent_states(vec!["alice".to_owned()]).await;
        assert_eq!(
            live["alice"].state,
            AgentState::Paused(super::super::routing::MISSED_CALLS.to_owned())
        );
        let stored = eventually("the store has the pause", async || {
            let a = store.agents().get("alice").await.unwrap()?;
            (a.state == "paused").then_some(a)
        })
        .await;
        assert_eq!(stored.pause_reason.as_deref(), Some("missed calls"));

        let segment = eventually("the segment is stored", async || {
            store
                .segments()
                .for_call("call-1@test")
                .await
                .unwrap()
                .pop()
        })
        .await;
        assert_eq!(segment.queue, "support");
        assert_eq!(segment.outcome, "no_agents");
        assert_eq!(segment.agent, None);
        assert_eq!(segment.offers.len(), 1);
        assert_eq!(segment.offers[0].login, "alice");
        assert!(segment.enqueued_at <= segment.offers[0].at);
        assert!(segment.offers[0].at <= segment.left_at);
        assert_eq!(segment.left_at - segment.enqueued_at, segment.wait_ms);

        let stats = acd.queue_stats().await;
        let s = &stats[0].1;
        assert_eq!((s.waiting, s.offered, s.left), (0, 1, 1));
        assert_eq!((s.agents_staffed, s.agents_paused), (1, 1));

        // Unpausing through the engine is stored before it answers.
        assert!(matches!(acd.unpause("alice").await, Some(Ok(()))));
        let a = store.agents().get("alice").await.unwrap().unwrap();
        assert_eq!((a.state.as_str(), a.pause_reason), ("available", None));

        let mut kinds = Vec::new();
        while let Ok(p) = published.try_recv() {
            let v: serde_json::Value = serde_json::from_str(&p.json).unwrap();
            if p.kind.starts_with("queue.") {
                assert_eq!(v["data"]["call_id"], "call-1@test");
                assert_eq!(v["data"]["queue"], "support");
            }
            if &*p.kind == "queue.caller_left" {
                assert_eq!(v["data"]["outcome"], "no_agents");
                assert!(v["data"]["wait_ms"].is_i64());
            }
            kinds.push(p.kind.to_string());
        }
        let joined = kinds.iter().position(|k| k == "queue.caller_joined");
        let left = kinds.iter().position(|k| k == "queue.caller_left");
        assert!(joined.is_some() && joined < left, "{kinds:?}");
        assert!(kinds.iter().any(|k| k == "agent.state"), "{kinds:?}");
        db.cleanup().await.unwrap();
    }

    /// Agents added, paused and removed through the API reach the engine
    /// at once; a pause set while offline holds when the agent registers.
    #[tokio::test]
    async fn api_changes_reach_the_engine() {
        let db = TestDb::sqlite().await;
        let store = db.store.clone();
        let dir = TempDir::new("acd").unwrap();
        let flows = flows(&dir);
        let acd = spawn_acd(store.clone(), flows.handle().clone(), EventBus::new());
        let agent = store
            .agents()
            .add(NewAgent {
                login: "bob".to_owned(),
                password: "pw".to_owned(),
                display_name: None,
                extension: None,
                realm: "test".to_owned(),
                skills: vec![("support".to_owned(), 1)],
            })
            .await
            .unwrap();
        acd.send(AcdCommand::AgentUpsert { agent });
        let live = acd.agent_states(vec!["bob".to_owned()]).await;
        assert_eq!(live["bob"].state, AgentState::Offline);
        assert!(matches!(acd.pause("bob", "lunch").await, Some(Ok(()))));
        let live = acd.agent_states(vec!["bob".to_owned()]).await;
        assert_eq!(live["bob"].pause.as_deref(), Some("lunch"));
        let a = store.agents().get("bob").await.unwrap().unwrap();
        assert_eq!(a.pause_reason.as_deref(), Some("lunch"));

        acd.presence()
            .send(BindingEvent::Registered {
                login: "bob".to_owned(),
            })
            .unwrap();
        eventually("bob comes back paused", async || {
            let live = acd.agent_states(vec!["bob".to_owned()]).await;
            (live.get("bob")?.state == AgentState::Paused("lunch".to_owned())).then_some(())
        })
        .await;
        let stats = acd.queue_stats().await;
        assert_eq!(stats[0].1.agents_paused, 1);

        acd.send(AcdCommand::AgentRemoved {
            login: "bob".to_owned(),
        });
        assert!(acd.agent_states(vec!["bob".to_owned()]).await.is_empty());
        let stats = acd.queue_stats().await;
        assert_eq!(stats[0].1.agents_staffed, 0);
        db.cleanup().await.unwrap();
    }
}
