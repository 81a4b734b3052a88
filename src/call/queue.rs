//! A caller's time in a queue as its call task sees it (DESIGN §6): the
//! routing engine's offers become agent legs ([`super::agent::dial`]), the
//! first agent to answer is bridged to the caller, and the engine hears of
//! answers, misses and the end of the call.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::agent::{self, AgentControl, AgentEvent};
use super::session::Session;
use super::{Call, EndpointCommand};
use crate::acd::driver::{AcdCommand, QueueEvent};
use crate::acd::routing::{CallerId, LeftReason};
use crate::ivr::interpreter::{GiveUpReason, QueueOutcome};
use crate::media::engine::LegHandle;
use crate::sip::message::Uri;

/// How much longer than the queue's `ring_timeout` an agent leg rings: the
/// engine's own timeout cancels it first.
const RING_SLACK: Duration = Duration::from_secs(1);

/// The agent bridged to the caller.
pub(super) struct Bridged {
    pub login: String,
    control: mpsc::UnboundedSender<AgentControl>,
    /// Kept open while bridged; dropping it closes the agent's media.
    _leg: LegHandle,
}

/// One caller in one queue, from enqueue to the end of its agent call.
pub(super) struct QueueLeg {
    pub caller: CallerId,
    queue: String,
    /// Still waiting in the engine (not answered, not left).
    waiting: bool,
    /// Agent legs ringing, by login.
    ringing: HashMap<String, mpsc::UnboundedSender<AgentControl>>,
    /// Agents whose phone said 180 Ringing (the queue's `on_ring`).
    alerting: HashSet<String>,
    pub bridged: Option<Bridged>,
    /// Where agent legs' news goes, tagged with the login.
    offers: mpsc::UnboundedSender<(String, AgentEvent)>,
    /// The caller's priority in this queue (kept when a REFER requeues).
    priority: u32,
    /// A REFER of the bridged agent, for the call task to carry out.
    refer: Option<Uri>,
    /// The caller is being rung through to a REFER's target; the bridged
    /// agent (if still there) waits for the outcome.
    referring: bool,
}

/// The receivers a queued call listens on.
pub(super) struct QueueInputs {
    pub events: mpsc::UnboundedReceiver<QueueEvent>,
    pub offers: mpsc::UnboundedReceiver<(String, AgentEvent)>,
}

impl Call {
    /// Puts the caller in `queue` (the flow's `queue` node).
    pub(super) fn enqueue(&self, queue: String, priority: u32) -> (QueueLeg, QueueInputs) {
        let acd = &self.services.acd;
        let caller = acd.new_caller();
        let (reply, events) = mpsc::unbounded_channel();
        // DESIGN §7: the agent of the caller's thread is offered first
        // (the queue's `prefer_last_agent` says for how long).
        let preferred = self.log.preferred_agent();
        self.log.record(crate::thread::CallEvent::Queued {
            queue: queue.clone(),
            priority: i64::from(priority),
            reason: preferred.as_ref().map(|a| format!("last agent {a}")),
        });
        acd.send(AcdCommand::Enqueue {
            caller,
            call_id: self.setup.call_id.clone(),
            queue: queue.clone(),
            priority,
            preferred,
            reply,
        });
        let (offers_tx, offers) = mpsc::unbounded_channel();
        (
            QueueLeg {
                caller,
                queue,
                waiting: true,
                ringing: HashMap::new(),
                alerting: HashSet::new(),
                bridged: None,
                offers: offers_tx,
                priority,
                refer: None,
                referring: false,
            },
            QueueInputs { events, offers },
        )
    }

    /// An event of the routing engine for this caller.
    pub(super) async fn handle_queue_event(
        &self,
        q: &mut QueueLeg,
        s: &mut Session,
        event: QueueEvent,
    ) {
        match event {
            QueueEvent::Offer { agents, .. } => {
                let ring = s.ring_timeout(&q.queue) + RING_SLACK;
                for login in agents {
                    self.offer(q, s, login, ring).await;
                }
            }
            QueueEvent::Cancel { agents } => {
                for login in agents {
                    q.alerting.remove(&login);
                    if let Some(control) = q.ringing.remove(&login) {
                        tracing::info!(%login, "offer cancelled");
                        let _ = control.send(AgentControl::End);
                    }
                }
                s.set_agent_ringing(!q.alerting.is_empty());
            }
            QueueEvent::Announce { position, ewt } => s.announce(position, ewt),
            QueueEvent::Left { reason } => {
                q.waiting = false;
                q.end_ringing();
                let reason = match reason {
                    LeftReason::MaxWait => GiveUpReason::MaxWait,
                    LeftReason::Closed => GiveUpReason::Closed,
                    LeftReason::NoAgents => GiveUpReason::NoAgents,
                };
                s.handle_queue_result(QueueOutcome::GaveUp { reason }, Instant::now());
            }
        }
    }

    /// Rings every registration of the agent at once (forking); an agent
    /// with none counts as a missed offer.
    async fn offer(&self, q: &mut QueueLeg, s: &Session, login: String, ring: Duration) {
        let (reply, contacts) = tokio::sync::oneshot::channel();
        let _ = self.commands.send(EndpointCommand::Contacts {
            login: login.clone(),
            reply,
        });
        let mut bindings = contacts.await.unwrap_or_default();
        if bindings.is_empty() {
            tracing::info!(%login, "offered agent has no registration");
            self.services.acd.send(AcdCommand::Rejected {
                caller: q.caller,
                login,
            });
            return;
        }
        let (screen_pop, facts) = self.screen_pop().await;
        self.announce_offer(facts, &login, Some(&q.queue));
        // Newest first, so a single device is dialled exactly as before.
        bindings.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
        let devices = bindings
            .into_iter()
            .map(|b| (b.contact.uri, b.source))
            .collect();
        let ringing = agent::RingAgent {
            login: login.clone(),
            caller: self.caller_number(),
            ring_timeout: ring,
            near: s.leg().id(),
            screen_pop,
        };
        let (control, mut events) = agent::ring_devices(
            self.services.clone(),
            self.commands.clone(),
            ringing,
            devices,
        );
        let tx = q.offers.clone();
        let tag = login.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send((tag.clone(), event)).is_err() {
                    break;
                }
            }
        });
        q.ringing.insert(login, control);
    }

    /// News from one of the agent legs this caller started.
    pub(super) fn handle_offer_event(
        &self,
        q: &mut QueueLeg,
        s: &mut Session,
        login: String,
        event: AgentEvent,
    ) {
        let acd = &self.services.acd;
        let now = Instant::now();
        match event {
            AgentEvent::Ringing => {
                tracing::debug!(%login, "agent ringing");
                if q.waiting && q.ringing.contains_key(&login) {
                    q.alerting.insert(login);
                    s.set_agent_ringing(true);
                }
            }
            AgentEvent::Answered(leg) => {
                q.alerting.remove(&login);
                let control = q.ringing.remove(&login);
                let Some(control) = control.filter(|_| q.waiting && q.bridged.is_none()) else {
                    // Too late: another agent answered or the caller left.
                    return;
                };
                if let Err(err) = s.leg().bridge(&leg) {
                    tracing::error!(cause = %err, "cannot bridge the caller to the agent");
                    let _ = control.send(AgentControl::End);
                    acd.send(AcdCommand::Rejected {
                        caller: q.caller,
                        login,
                    });
                    s.set_agent_ringing(!q.alerting.is_empty());
                    return;
                }
                tracing::info!(agent = %login, "bridged the caller to the queue agent");
                // DESIGN §4: bridged calls are recorded in stereo, caller
                // left, agent right.
                let path = self.services.recordings.join(format!(
                    "call-{}-{}.wav",
                    crate::store::now_ms(),
                    super::session::file_safe(&self.setup.call_id)
                ));
                s.leg()
                    .start_recording(path.clone(), crate::media::recorder::Layout::Stereo);
                self.log.record(crate::thread::CallEvent::Answered {
                    agent: login.clone(),
                });
                self.log.record(crate::thread::CallEvent::Recording {
                    path: path.display().to_string(),
                });
                q.waiting = false;
                q.end_ringing();
                acd.send(AcdCommand::Answered {
                    caller: q.caller,
                    login: login.clone(),
                });
                q.bridged = Some(Bridged {
                    login: login.clone(),
                    control,
                    _leg: leg,
                });
                s.handle_queue_result(QueueOutcome::Answered { agent: login }, now);
            }
            AgentEvent::Failed { status } => {
                q.alerting.remove(&login);
                s.set_agent_ringing(!q.alerting.is_empty());
                if q.ringing.remove(&login).is_some() && q.waiting {
                    let caller = q.caller;
                    acd.send(match status {
                        Some(_) => AcdCommand::Rejected { caller, login },
                        None => AcdCommand::Timeout { caller, login },
                    });
                }
            }
            AgentEvent::Refer { to } => {
                if q.bridged.as_ref().is_some_and(|b| b.login == login) {
                    q.refer = Some(to);
                }
            }
            AgentEvent::Ended if q.referring => {
                // The transferring agent left first: the transfer goes on.
                if q.bridged.as_ref().is_some_and(|b| b.login == login) {
                    acd.send(AcdCommand::CallEnded { login });
                    q.bridged = None;
                }
            }
            AgentEvent::Ended => {
                if q.bridged.as_ref().is_some_and(|b| b.login == login) {
                    tracing::info!(agent = %login, "queue agent hung up");
                    acd.send(AcdCommand::CallEnded { login });
                    // Unbridge before the agent's leg closes.
                    s.handle_queue_result(QueueOutcome::AgentHungUp, now);
                    q.bridged = None;
                }
            }
        }
    }

    /// The caller's call ends: the engine forgets the caller, the agent's
    /// call ends with it.
    pub(super) fn leave_queue(&self, mut q: QueueLeg) {
        let acd = &self.services.acd;
        if q.waiting {
            acd.send(AcdCommand::Remove { caller: q.caller });
        }
        q.end_ringing();
        if let Some(b) = q.bridged {
            acd.send(AcdCommand::CallEnded { login: b.login });
            let _ = b.control.send(AgentControl::End);
        }
    }
}

/// What a REFER's `Refer-To` asks for.
pub(super) enum ReferPlan {
    /// Back into this queue.
    Queue(String),
    /// Ring this agent, extension or URI.
    Transfer(crate::ivr::model::TransferTarget),
    /// No queue, agent or extension of ours.
    Unknown,
}

impl Call {
    /// Reads a REFER's `Refer-To` against our queues and agents.
    pub(super) async fn plan_refer(&self, to: &crate::sip::message::Uri) -> ReferPlan {
        use super::refer::{Directory, ReferTarget, classify};
        use crate::ivr::model::TransferTarget;
        let agents: Vec<(String, Option<String>)> = match self.services.store.agents().list().await
        {
            Ok(list) => list.into_iter().map(|a| (a.login, a.extension)).collect(),
            Err(err) => {
                tracing::error!(cause = %err, "cannot load agents for a REFER");
                Vec::new()
            }
        };
        let set = &self.setup.flows.set;
        let is_queue = |name: &str| set.queues().get(name).is_some();
        let ours = self.services.advertised.ip().to_string();
        let is_local = |host: &str| host == ours || host.eq_ignore_ascii_case("localhost");
        let target = classify(
            to,
            &Directory {
                is_queue: &is_queue,
                agents: &agents,
                is_local: &is_local,
            },
        );
        tracing::debug!(?target, "REFER target");
        match target {
            ReferTarget::Queue(queue) => ReferPlan::Queue(queue),
            ReferTarget::Unknown => {
                tracing::info!("REFER names no queue, agent or extension of ours");
                ReferPlan::Unknown
            }
            ReferTarget::Agent(login) => ReferPlan::Transfer(TransferTarget::Agent(login)),
            ReferTarget::Extension(ext) => ReferPlan::Transfer(TransferTarget::Extension(ext)),
            ReferTarget::Uri(uri) => ReferPlan::Transfer(TransferTarget::Uri(uri.to_string())),
        }
    }

    /// Carries out a REFER of the bridged agent (RFC 3515 blind transfer),
    /// if one came. A queue target requeues the caller at once (its music
    /// plays; the call task enqueues) and the agent's leg ends; an agent,
    /// extension or URI is rung, and the returned leg is the call task's
    /// to watch (see [`Call::refer_answered`], [`Call::refer_failed`]).
    /// A target that cannot be reached leaves the caller with the agent.
    pub(super) async fn handle_refer(
        &self,
        q: &mut QueueLeg,
        s: &mut Session,
    ) -> Option<(
        mpsc::UnboundedSender<AgentControl>,
        mpsc::UnboundedReceiver<AgentEvent>,
        Option<String>,
    )> {
        let to = q.refer.take()?;
        let transfer = match self.plan_refer(&to).await {
            ReferPlan::Queue(queue) => {
                tracing::info!(%queue, "agent moved the caller to a queue");
                let b = q.bridged.take()?;
                self.services
                    .acd
                    .send(AcdCommand::CallEnded { login: b.login });
                let _ = b.control.send(AgentControl::ReferDone { status: 200 });
                s.requeue(&queue, q.priority);
                return None;
            }
            ReferPlan::Unknown => {
                q.refer_done(404);
                return None;
            }
            ReferPlan::Transfer(transfer) => transfer,
        };
        let direct = super::direct_agent(&transfer);
        let Some((login, devices)) = self.transfer_target(&transfer).await else {
            tracing::info!("REFER target not reachable");
            q.refer_done(480);
            return None;
        };
        tracing::info!(agent = %login, "agent transfers the caller");
        s.leg().unbridge();
        s.play_hold_music(&q.queue);
        q.referring = true;
        let (control, events) = self
            .ring_transfer_target(
                &login,
                devices,
                direct,
                s.ring_timeout(&q.queue),
                s.leg().id(),
            )
            .await;
        Some((control, events, direct.then_some(login)))
    }

    /// The REFER's target answered and the caller is bridged to it: the
    /// transferring agent hears 200 and its leg ends.
    pub(super) fn refer_answered(&self, q: &mut QueueLeg) {
        if !std::mem::take(&mut q.referring) {
            return;
        }
        if let Some(b) = q.bridged.take() {
            self.services
                .acd
                .send(AcdCommand::CallEnded { login: b.login });
            let _ = b.control.send(AgentControl::ReferDone { status: 200 });
        }
    }

    /// The REFER's target could not be reached: the caller goes back to
    /// the transferring agent, who hears the failure (RFC 3515 §2.4.5);
    /// if that agent already left, the flow goes on as after the agent
    /// hung up.
    pub(super) fn refer_failed(&self, q: &mut QueueLeg, s: &mut Session, status: Option<u16>) {
        if !std::mem::take(&mut q.referring) {
            return;
        }
        let status = status.filter(|s| *s >= 300).unwrap_or(408);
        match &q.bridged {
            Some(b) => {
                tracing::info!(status, "transfer failed; the caller is back with the agent");
                s.leg().stop();
                if let Err(err) = s.leg().bridge(&b._leg) {
                    tracing::error!(cause = %err, "cannot bridge the caller back to the agent");
                }
                let _ = b.control.send(AgentControl::ReferDone { status });
            }
            None => s.handle_queue_result(QueueOutcome::AgentHungUp, Instant::now()),
        }
    }
}

impl QueueLeg {
    /// The caller's priority in the queue.
    pub fn priority(&self) -> u32 {
        self.priority
    }

    /// The queue the caller is (or last was) in.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Whether the bridged agent asked for a transfer.
    pub fn has_refer(&self) -> bool {
        self.refer.is_some()
    }

    /// The REFER ends without moving the caller: the agent keeps it.
    fn refer_done(&mut self, status: u16) {
        if let Some(b) = &self.bridged {
            let _ = b.control.send(AgentControl::ReferDone { status });
        }
    }

    fn end_ringing(&mut self) {
        self.alerting.clear();
        for (_, control) in self.ringing.drain() {
            let _ = control.send(AgentControl::End);
        }
    }
}
