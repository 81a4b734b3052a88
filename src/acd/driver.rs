//! The routing engine's task (DESIGN §6): one tokio task per switch owns the
//! sans-IO [`Router`], feeds it the call tasks' commands and the agents'
//! registrations, runs its timers, and hands each waiting caller's events
//! (offers, cancels, leaving) to that caller's call task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::routing::{AgentState, CallerId, Event, LeftReason, Router, RoutingError, WallClock};
use crate::events::EventBus;
use crate::ivr::model::FlowSet;
use crate::ivr::reload::FlowsHandle;
use crate::sip::registrar::BindingEvent;
use crate::store::Store;

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
        queue: String,
        priority: u32,
        preferred: Option<String>,
        reply: mpsc::UnboundedSender<QueueEvent>,
    },
    /// The caller hung up while waiting.
    Remove { caller: CallerId },
    /// `login` answered the offer for `caller`.
    Answered { caller: CallerId, login: String },
    /// `login` refused the offer (or could not be reached).
    Rejected { caller: CallerId, login: String },
    /// `login` did not answer in time.
    Timeout { caller: CallerId, login: String },
    /// The agent's queue call ended (either side hung up).
    CallEnded { login: String },
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
}

/// Starts the engine task (inside a tokio runtime). Registration changes go
/// to [`AcdHandle::presence`]; what the engine decides is also published on
/// `events`.
pub fn spawn_acd(store: Store, flows: FlowsHandle, events: EventBus) -> AcdHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (presence_tx, presence) = mpsc::unbounded_channel();
    tokio::spawn(run(store, flows, events, commands, presence));
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
}

async fn run(
    store: Store,
    flows: FlowsHandle,
    events: EventBus,
    mut commands: mpsc::UnboundedReceiver<AcdCommand>,
    mut presence: mpsc::UnboundedReceiver<BindingEvent>,
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
        }
    }

    fn add_agent(&mut self, now: Instant, agent: &crate::store::Agent) {
        let skills = agent.skills.iter().cloned().collect();
        self.router.set_agent(now, &agent.login, &skills);
        if agent.state == "paused" {
            let reason = agent.pause_reason.as_deref().unwrap_or("paused");
            let _ = self.router.pause(now, &agent.login, reason);
        }
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
        match self.router.set_reachable(now, &login, reachable) {
            Err(RoutingError::UnknownAgent(_)) if reachable => {
                // Added after the engine started: load it now.
                match self.store.agents().get(&login).await {
                    Ok(Some(agent)) => {
                        let now = Instant::now();
                        self.add_agent(now, &agent);
                        let _ = self.router.set_reachable(now, &login, true);
                    }
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
                queue,
                priority,
                preferred,
                reply,
            } => {
                tracing::info!(caller = caller.0, %queue, priority, "caller enqueued");
                self.callers.insert(caller, reply);
                let result =
                    self.router
                        .enqueue(now, caller, &queue, priority, preferred.as_deref());
                if let Err(err) = &result {
                    tracing::warn!(cause = %err, %queue, "cannot enqueue");
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
}
