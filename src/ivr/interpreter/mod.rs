//! The IVR interpreter (DESIGN §5): one [`FlowRun`] walks one call through
//! one flow. It is sans-IO like our SIP cores: no clock, no IO, no async.
//! The driver feeds inputs (`handle_*`, each with `now`), then drains
//! [`FlowRun::poll_action`] and arms a timer at [`FlowRun::poll_timeout`],
//! calling [`FlowRun::handle_timeout`] when it passes.
//!
//! The file format is `docs/flows.md`; where it is silent the run does what
//! an IVR caller expects:
//!
//! - **Barge-in.** Menu and collect prompts (and a menu's `invalid` prompt)
//!   are played with `barge: true`: any key cuts them and is taken at once.
//!   A `play` with `barge: true` ends on a key and the key is kept for the
//!   next menu or collect ("press 1 at any time"); a `play` without barge
//!   keeps playing and keeps the key the same way.
//! - **Type-ahead.** Keys pressed before a menu or collect starts (during a
//!   prompt, a branch, a webhook, even before the call is answered) are kept
//!   in order, up to [`TYPE_AHEAD`] keys, further ones dropped. A menu or
//!   collect first consumes them and plays its prompt only if none are left
//!   (a key would have cut the prompt anyway). Keys pressed while queued,
//!   transferring or recording voicemail are dropped, and the buffer is
//!   cleared when the call enters a queue, transfer or voicemail.
//! - **Menus.** The timer (`timeout`) starts when the prompt finishes. A
//!   wrong key or a timeout uses a try and plays `invalid` (if any), then the
//!   prompt again; a key during `invalid` counts for the next try. After the
//!   last try `invalid` still plays, without barge (keys then are dropped),
//!   and the caller goes to `failure`. Keys `A`–`D` are wrong keys.
//! - **Collect.** The first-key wait (`timeout`) starts when the prompt
//!   finishes (at once without a prompt); every key restarts the wait with
//!   `inter_digit`. Input ends at `max` keys, at the terminator, or when a
//!   wait runs out; then `next` with whatever was typed in `vars.NAME` (a
//!   string, possibly empty). `min` does not hold the caller back: the
//!   path's outcome marks the answer `short` when fewer keys came. Keys other
//!   than the terminator (`*`, `#`) are stored like digits.
//! - **Queue.** The Enqueue priority is max(node, queue, `thread.priority`,
//!   [`VIP_PRIORITY`] for VIPs).
//! - **Webhook.** The body holds the flow and node names, `caller`,
//!   `contact`, `thread`, `dialled` and `vars`. A JSON object reply sets
//!   `vars.KEY` for each key that is a valid variable name and holds a
//!   string (≤ [`MAX_VAR_BYTES`]), number or boolean, at most
//!   [`MAX_REPLY_VARS`] of them; other keys are ignored. An error, or no
//!   reply by the node's `timeout` (the run's own timer), goes to `failure`
//!   or else `next`.
//! - **Runaway guard.** More than [`MAX_STEPS_WITHOUT_INPUT`] nodes entered
//!   since a menu or collect last took a key or timed out ends the call with
//!   `HangUp` and [`Outcome::Runaway`] in the path (validation refuses such
//!   loops; this also stops a queue that always gives up at once in a loop).
//! - **Hang-up.** The caller hanging up drops unpolled actions, stops a
//!   playing prompt (`StopPlayback`) and ends the run with `Finished`.
//! - **Ends.** A `hangup` node, an agent hanging up without `after`, and the
//!   runaway guard give `HangUp` then `Finished`; a successful transfer and
//!   the caller leaving give `Finished` only.
//!
//! Time offsets in the path count from the `now` given to [`FlowRun::new`].

mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, json};

use super::expr::{Value, is_var_name};
use super::model::{self, Collect, Flow, FlowSet, Menu, NodeId};

pub use types::{
    Action, CallContext, CollectEnd, Digits, GiveUpReason, NoQueues, Outcome, PathStep,
    QueueOutcome, QueueStats, QueueView, Shared, Sounds, Vars, WallClock, WebhookError,
};

/// Nodes entered without a key or menu/collect timeout before the run is
/// taken for a runaway and hung up.
pub const MAX_STEPS_WITHOUT_INPUT: u32 = 1000;
/// Keys kept for the next menu or collect.
pub const TYPE_AHEAD: usize = 16;
/// Steps kept in the path; older ones are dropped (and counted) beyond it.
pub const MAX_PATH: usize = 256;
/// Most `vars.*` one call holds; further new names are not set.
pub const MAX_VARS: usize = 256;
/// Most variables one webhook reply sets.
pub const MAX_REPLY_VARS: usize = 64;
/// Longest string a webhook reply may put in a variable.
pub const MAX_VAR_BYTES: usize = 1024;
/// The queue priority a VIP caller gets at least.
pub const VIP_PRIORITY: u32 = 3;

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before `handle_start` (ringing).
    Ringing,
    /// A `play` node waits for its prompt.
    Play {
        barge: bool,
    },
    Menu {
        tries: u32,
        phase: MenuPhase,
    },
    Collect {
        phase: CollectPhase,
        got: Digits,
    },
    Queue,
    Transfer,
    Voicemail,
    Webhook,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuPhase {
    /// The menu prompt plays.
    Prompt,
    /// Waiting for a key until the deadline.
    Waiting,
    /// The invalid prompt plays; `last` when the tries are used up.
    Invalid { last: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollectPhase {
    Prompt,
    Waiting,
}

/// What entering a node led to.
enum Step {
    /// Go on to this node at once.
    Go(NodeId),
    /// Wait for an input.
    Wait,
}

/// One call's walk through one flow. See the module docs.
pub struct FlowRun {
    set: Arc<FlowSet>,
    flow: Arc<Flow>,
    ctx: CallContext,
    clock: WallClock,
    created: Instant,
    node: NodeId,
    state: State,
    deadline: Option<Instant>,
    type_ahead: Digits,
    actions: VecDeque<Action>,
    vars: Vars,
    path: Vec<PathStep>,
    path_dropped: usize,
    steps: u32,
}

impl FlowRun {
    /// A run of `flow` (of `set`) for one call, created at `now`.
    pub fn new(
        set: Arc<FlowSet>,
        flow: Arc<Flow>,
        ctx: CallContext,
        clock: WallClock,
        now: Instant,
    ) -> FlowRun {
        let start = flow.start;
        FlowRun {
            set,
            flow,
            ctx,
            clock,
            created: now,
            node: start,
            state: State::Ringing,
            deadline: None,
            type_ahead: Digits::default(),
            actions: VecDeque::with_capacity(4),
            vars: Vars::new(),
            path: Vec::with_capacity(16),
            path_dropped: 0,
            steps: 0,
        }
    }

    // ---- getters ----

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// The node the run is at (the start node before `handle_start`).
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The nodes passed so far, oldest first (at most [`MAX_PATH`]).
    pub fn path(&self) -> &[PathStep] {
        &self.path
    }

    /// How many old steps were dropped to keep the path at [`MAX_PATH`].
    pub fn path_dropped(&self) -> usize {
        self.path_dropped
    }

    /// `vars.*` as set by `set`, `collect` and webhook replies.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    pub fn is_finished(&self) -> bool {
        self.state == State::Ended
    }

    /// The path as JSON for the call record: `[{node, at_ms, digits, outcome}]`.
    pub fn path_json(&self) -> serde_json::Value {
        let steps = self
            .path
            .iter()
            .map(|s| {
                json!({
                    "node": s.name(&self.flow),
                    "at_ms": u64::try_from(s.at.as_millis()).unwrap_or(u64::MAX),
                    "digits": s.digits.as_str(),
                    "outcome": s.outcome.to_string(),
                })
            })
            .collect();
        serde_json::Value::Array(steps)
    }

    // ---- outputs ----

    /// The next thing the call must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`FlowRun::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    // ---- inputs ----

    /// The call was answered: enter the flow's start node.
    pub fn handle_start(&mut self, now: Instant) {
        if self.state == State::Ringing {
            self.run(self.flow.start, now);
        }
    }

    /// The playlist of the last `Play` ended (not cut).
    pub fn handle_prompt_finished(&mut self, now: Instant) {
        match self.state {
            State::Play { .. } => self.finish_step(Outcome::Next, now),
            State::Menu { tries, phase } => {
                let flow = Arc::clone(&self.flow);
                let Some(m) = menu_of(&flow, self.node) else {
                    return self.broken(now);
                };
                match phase {
                    MenuPhase::Prompt => {
                        self.state = State::Menu {
                            tries,
                            phase: MenuPhase::Waiting,
                        };
                        self.deadline = Some(now + m.timeout);
                    }
                    MenuPhase::Invalid { last: false } => self.menu_prompt(m, tries, now),
                    MenuPhase::Invalid { last: true } => {
                        self.type_ahead.clear();
                        self.set_outcome(Outcome::Failure);
                        self.run(m.failure, now);
                    }
                    MenuPhase::Waiting => {}
                }
            }
            State::Collect {
                phase: CollectPhase::Prompt,
                got,
            } => {
                let flow = Arc::clone(&self.flow);
                let Some(c) = collect_of(&flow, self.node) else {
                    return self.broken(now);
                };
                self.state = State::Collect {
                    phase: CollectPhase::Waiting,
                    got,
                };
                self.deadline = Some(now + c.timeout);
            }
            _ => {}
        }
    }

    /// A key from the caller (RFC 4733 event, SIP INFO or in-band tone,
    /// already deduplicated). Keys outside `0-9 * # A-D` are ignored.
    pub fn handle_digit(&mut self, key: char, now: Instant) {
        let key = key.to_ascii_uppercase();
        if !matches!(key, '0'..='9' | '*' | '#' | 'A'..='D') {
            return;
        }
        let key = key as u8;
        match self.state {
            State::Ringing | State::Webhook | State::Play { barge: false } => {
                self.keep(key);
            }
            State::Play { barge: true } => {
                self.keep(key);
                self.finish_step(Outcome::Next, now);
            }
            State::Menu { tries, phase } => {
                if phase == (MenuPhase::Invalid { last: true }) {
                    return;
                }
                let flow = Arc::clone(&self.flow);
                let Some(m) = menu_of(&flow, self.node) else {
                    return self.broken(now);
                };
                self.deadline = None;
                self.menu_key(m, tries, key, now);
            }
            State::Collect { got, .. } => {
                let flow = Arc::clone(&self.flow);
                let Some(c) = collect_of(&flow, self.node) else {
                    return self.broken(now);
                };
                self.collect_key(c, got, key, now);
            }
            State::Queue | State::Transfer | State::Voicemail | State::Ended => {}
        }
    }

    /// The timer of [`FlowRun::poll_timeout`] is due (early calls do nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(at) if now >= at => self.deadline = None,
            _ => return,
        }
        let flow = Arc::clone(&self.flow);
        match self.state {
            State::Menu { tries, .. } => {
                let Some(m) = menu_of(&flow, self.node) else {
                    return self.broken(now);
                };
                self.steps = 0;
                self.menu_miss(m, tries, now);
            }
            State::Collect { got, .. } => {
                let Some(c) = collect_of(&flow, self.node) else {
                    return self.broken(now);
                };
                self.steps = 0;
                self.collect_done(c, got, CollectEnd::Timeout, now);
            }
            State::Webhook => self.webhook_failed(WebhookError::Timeout, now),
            _ => {}
        }
    }

    /// What became of the caller in the queue of the last `Enqueue`.
    pub fn handle_queue_result(&mut self, outcome: QueueOutcome, now: Instant) {
        if self.state != State::Queue {
            return;
        }
        match outcome {
            QueueOutcome::Answered { agent } => self.set_outcome(Outcome::Answered { agent }),
            QueueOutcome::GaveUp { reason } => self.finish_step(Outcome::GaveUp(reason), now),
            QueueOutcome::CallerLeft => self.handle_hangup(now),
            QueueOutcome::AgentHungUp => {
                if self.current_outcome() == Some(&Outcome::Pending) {
                    self.set_outcome(Outcome::AgentHungUp);
                }
                let after = match self.flow.node(self.node).map(|n| &n.action) {
                    Some(model::Action::Queue(q)) => q.after,
                    _ => None,
                };
                match after {
                    Some(after) => self.run(after, now),
                    None => self.hang_up(),
                }
            }
        }
    }

    /// The transfer of the last `Transfer` succeeded (the flow is done) or
    /// failed (`next`).
    pub fn handle_transfer_result(&mut self, ok: bool, now: Instant) {
        if self.state != State::Transfer {
            return;
        }
        if ok {
            self.set_outcome(Outcome::Transferred);
            self.end();
        } else {
            self.finish_step(Outcome::TransferFailed, now);
        }
    }

    /// The voicemail of the last `RecordVoicemail` is over; `recording`
    /// names what was kept, if anything.
    pub fn handle_voicemail_done(&mut self, recording: Option<String>, now: Instant) {
        if self.state == State::Voicemail {
            self.finish_step(Outcome::Recorded { recording }, now);
        }
    }

    /// The reply to the last `CallWebhook` (ignored once the run moved on).
    pub fn handle_webhook_reply(
        &mut self,
        reply: Result<Map<String, serde_json::Value>, WebhookError>,
        now: Instant,
    ) {
        if self.state != State::Webhook {
            return;
        }
        self.deadline = None;
        match reply {
            Ok(map) => {
                let mut set = 0;
                for (key, value) in map {
                    if set >= MAX_REPLY_VARS {
                        break;
                    }
                    if !is_var_name(&key) {
                        continue;
                    }
                    let value = match value {
                        serde_json::Value::String(s) if s.len() <= MAX_VAR_BYTES => Value::Str(s),
                        serde_json::Value::Number(n) => match n.as_f64() {
                            Some(n) if n.is_finite() => Value::Num(n),
                            _ => continue,
                        },
                        serde_json::Value::Bool(b) => Value::Bool(b),
                        _ => continue,
                    };
                    if self.set_var_owned(key, value) {
                        set += 1;
                    }
                }
                self.finish_step(Outcome::Replied { vars: set }, now);
            }
            Err(e) => self.webhook_failed(e, now),
        }
    }

    /// The caller hung up: stop everything.
    pub fn handle_hangup(&mut self, _now: Instant) {
        if self.state == State::Ended {
            return;
        }
        self.actions.clear();
        let playing = matches!(
            self.state,
            State::Play { .. }
                | State::Menu {
                    phase: MenuPhase::Prompt | MenuPhase::Invalid { .. },
                    ..
                }
                | State::Collect {
                    phase: CollectPhase::Prompt,
                    ..
                }
                | State::Voicemail
        );
        if playing {
            self.actions.push_back(Action::StopPlayback);
        }
        if self.current_outcome() == Some(&Outcome::Pending) {
            self.set_outcome(Outcome::CallerLeft);
        }
        self.end();
    }

    // ---- the walk ----

    /// Enters `node` and every node after it that needs no input.
    fn run(&mut self, mut node: NodeId, now: Instant) {
        self.deadline = None;
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS_WITHOUT_INPUT {
                self.set_outcome(Outcome::Runaway);
                self.hang_up();
                return;
            }
            self.node = node;
            self.push_step(node, now);
            match self.enter(node, now) {
                Step::Go(next) => node = next,
                Step::Wait => return,
            }
        }
    }

    /// Starts the action of `node`.
    fn enter(&mut self, id: NodeId, now: Instant) -> Step {
        let flow = Arc::clone(&self.flow);
        let Some(node) = flow.node(id) else {
            self.broken(now);
            return Step::Wait;
        };
        match &node.action {
            model::Action::Play(p) => {
                if p.sounds.is_empty() {
                    self.set_outcome(Outcome::Next);
                    return self.next_of(node.next);
                }
                self.play(types::play_sounds, p.barge);
                self.state = State::Play { barge: p.barge };
                Step::Wait
            }
            model::Action::Menu(m) => {
                self.state = State::Menu {
                    tries: 0,
                    phase: MenuPhase::Prompt,
                };
                match self.type_ahead.pop_front() {
                    Some(key) => self.menu_key(m, 0, key, now),
                    None => self.menu_prompt(m, 0, now),
                }
                Step::Wait
            }
            model::Action::Collect(c) => {
                let mut got = Digits::default();
                self.state = State::Collect {
                    phase: CollectPhase::Prompt,
                    got,
                };
                while let Some(key) = self.type_ahead.pop_front() {
                    if !self.collect_take(c, &mut got, key) {
                        self.collect_done(c, got, end_of(c, key), now);
                        return Step::Wait;
                    }
                }
                if !got.is_empty() {
                    self.state = State::Collect {
                        phase: CollectPhase::Waiting,
                        got,
                    };
                    self.deadline = Some(now + c.inter_digit);
                } else if c.prompt.is_empty() {
                    self.state = State::Collect {
                        phase: CollectPhase::Waiting,
                        got,
                    };
                    self.deadline = Some(now + c.timeout);
                } else {
                    self.play(types::collect_prompt, true);
                }
                Step::Wait
            }
            model::Action::Branch(b) => {
                let lookup = |name: &str| self.lookup(name);
                let arm = b.arms.iter().position(|(cond, _)| cond.eval(&lookup));
                match arm.and_then(|i| b.arms.get(i).map(|(_, to)| (i, *to))) {
                    Some((i, to)) => {
                        self.set_outcome(Outcome::Arm(i));
                        Step::Go(to)
                    }
                    None => {
                        self.set_outcome(Outcome::Else);
                        Step::Go(b.otherwise)
                    }
                }
            }
            model::Action::Hours(h) => {
                let utc = self.clock.utc_at(now);
                // An unknown set (validation prevents it) counts as closed.
                let open = self
                    .set
                    .hours()
                    .get(&h.name)
                    .is_some_and(|s| s.is_open(utc));
                if open {
                    self.set_outcome(Outcome::Open);
                    Step::Go(h.open)
                } else {
                    self.set_outcome(Outcome::Closed);
                    Step::Go(h.closed)
                }
            }
            model::Action::Set(pairs) => {
                for (name, value) in pairs {
                    self.set_var(name, value.clone());
                }
                self.set_outcome(Outcome::Next);
                self.next_of(node.next)
            }
            model::Action::Queue(q) => {
                self.type_ahead.clear();
                let queue_base = self.set.queues().get(&q.queue).map_or(0, |c| c.priority);
                let thread = u32::from(self.ctx.thread_priority.unwrap_or(0));
                let vip = if self.ctx.caller_vip { VIP_PRIORITY } else { 0 };
                let priority = u32::from(q.priority.unwrap_or(0))
                    .max(queue_base)
                    .max(thread)
                    .max(vip);
                self.actions.push_back(Action::Enqueue {
                    queue: Shared::new(&self.flow, id, types::queue_name),
                    priority,
                });
                self.state = State::Queue;
                Step::Wait
            }
            model::Action::Transfer(t) => {
                self.type_ahead.clear();
                self.actions.push_back(Action::Transfer {
                    target: Shared::new(&self.flow, id, types::transfer_target),
                    timeout: t.timeout,
                });
                self.state = State::Transfer;
                Step::Wait
            }
            model::Action::Voicemail(v) => {
                self.type_ahead.clear();
                self.actions.push_back(Action::RecordVoicemail {
                    greeting: Shared::new(&self.flow, id, types::voicemail_greeting),
                    max: v.max,
                    beep: v.beep,
                });
                self.state = State::Voicemail;
                Step::Wait
            }
            model::Action::Webhook(w) => {
                let body = self.webhook_body(&node.name);
                self.actions.push_back(Action::CallWebhook {
                    url: Shared::new(&self.flow, id, types::webhook_url),
                    body,
                    timeout: w.timeout,
                });
                self.state = State::Webhook;
                self.deadline = Some(now + w.timeout);
                Step::Wait
            }
            model::Action::Hangup => {
                self.set_outcome(Outcome::HungUp);
                self.hang_up();
                Step::Wait
            }
        }
    }

    /// Ends the current step with `outcome` and follows the node's `next`.
    fn finish_step(&mut self, outcome: Outcome, now: Instant) {
        self.set_outcome(outcome);
        let next = self.flow.node(self.node).and_then(|n| n.next);
        match next {
            Some(next) => self.run(next, now),
            None => self.broken(now),
        }
    }

    fn next_of(&mut self, next: Option<NodeId>) -> Step {
        match next {
            Some(next) => Step::Go(next),
            None => {
                self.set_outcome(Outcome::FlowError);
                self.hang_up();
                Step::Wait
            }
        }
    }

    /// The flow is missing a node or an exit (validation prevents it).
    fn broken(&mut self, _now: Instant) {
        self.set_outcome(Outcome::FlowError);
        self.hang_up();
    }

    // ---- menu ----

    /// Plays the menu prompt for a try (or waits at once without one).
    fn menu_prompt(&mut self, m: &Menu, tries: u32, now: Instant) {
        if m.prompt.is_empty() {
            self.state = State::Menu {
                tries,
                phase: MenuPhase::Waiting,
            };
            self.deadline = Some(now + m.timeout);
        } else {
            self.state = State::Menu {
                tries,
                phase: MenuPhase::Prompt,
            };
            self.play(types::menu_prompt, true);
        }
    }

    fn menu_key(&mut self, m: &Menu, tries: u32, key: u8, now: Instant) {
        self.steps = 0;
        self.note_digit(key);
        match m.choice(char::from(key)) {
            Some(to) => {
                self.set_outcome(Outcome::Key(char::from(key)));
                self.run(to, now);
            }
            None => self.menu_miss(m, tries, now),
        }
    }

    /// A wrong key or a timeout: one try used.
    fn menu_miss(&mut self, m: &Menu, tries: u32, now: Instant) {
        let tries = tries.saturating_add(1);
        let last = tries >= m.tries;
        if !last && let Some(key) = self.type_ahead.pop_front() {
            // The key would cut the invalid prompt at once.
            return self.menu_key(m, tries, key, now);
        }
        if m.invalid.is_empty() {
            if last {
                self.type_ahead.clear();
                self.set_outcome(Outcome::Failure);
                return self.run(m.failure, now);
            }
            return self.menu_prompt(m, tries, now);
        }
        self.state = State::Menu {
            tries,
            phase: MenuPhase::Invalid { last },
        };
        self.play(types::menu_invalid, !last);
    }

    // ---- collect ----

    /// Takes one key into `got`; false when the collect is over.
    fn collect_take(&mut self, c: &Collect, got: &mut Digits, key: u8) -> bool {
        self.steps = 0;
        self.note_digit(key);
        if c.terminator.is_some_and(|t| t as u32 == u32::from(key)) {
            return false;
        }
        got.push(key);
        got.len() < c.max as usize
    }

    fn collect_key(&mut self, c: &Collect, mut got: Digits, key: u8, now: Instant) {
        if self.collect_take(c, &mut got, key) {
            self.state = State::Collect {
                phase: CollectPhase::Waiting,
                got,
            };
            self.deadline = Some(now + c.inter_digit);
        } else {
            self.collect_done(c, got, end_of(c, key), now);
        }
    }

    fn collect_done(&mut self, c: &Collect, got: Digits, end: CollectEnd, now: Instant) {
        self.deadline = None;
        match self.vars.get_mut(&c.var) {
            Some(Value::Str(s)) => {
                s.clear();
                s.push_str(got.as_str());
            }
            _ => {
                self.set_var(&c.var, Value::Str(got.as_str().to_owned()));
            }
        }
        let short = got.len() < c.min as usize;
        self.finish_step(Outcome::Collected { end, short }, now);
    }

    // ---- webhook ----

    fn webhook_failed(&mut self, error: WebhookError, now: Instant) {
        self.deadline = None;
        let failure = match self.flow.node(self.node).map(|n| &n.action) {
            Some(model::Action::Webhook(w)) => w.failure,
            _ => None,
        };
        match failure {
            Some(to) => {
                self.set_outcome(Outcome::WebhookFailed(error));
                self.run(to, now);
            }
            None => self.finish_step(Outcome::WebhookFailed(error), now),
        }
    }

    /// The JSON body of a webhook POST: the call context and `vars`.
    fn webhook_body(&self, node: &str) -> serde_json::Value {
        let vars: Map<String, serde_json::Value> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        json!({
            "flow": self.flow.name,
            "node": node,
            "caller": {
                "number": self.ctx.caller_number,
                "known": self.ctx.caller_known,
                "vip": self.ctx.caller_vip,
            },
            "contact": { "name": self.ctx.contact_name },
            "thread": {
                "open": self.ctx.thread_open,
                "priority": self.ctx.thread_priority,
                "last_agent": self.ctx.thread_last_agent,
            },
            "dialled": self.ctx.dialled,
            "vars": vars,
        })
    }

    // ---- variables ----

    /// A variable's value by its full name, for conditions.
    fn lookup(&self, name: &str) -> Option<Value> {
        let ctx = &self.ctx;
        match name {
            "caller.number" => ctx.caller_number.clone().map(Value::Str),
            "caller.known" => Some(Value::Bool(ctx.caller_known)),
            "caller.vip" => Some(Value::Bool(ctx.caller_vip)),
            "contact.name" => ctx.contact_name.clone().map(Value::Str),
            "thread.open" => Some(Value::Bool(ctx.thread_open)),
            "thread.priority" => ctx.thread_priority.map(|p| Value::Num(f64::from(p))),
            "thread.last_agent" => ctx.thread_last_agent.clone().map(Value::Str),
            "dialled" => Some(Value::Str(ctx.dialled.clone())),
            _ => {
                if let Some(var) = name.strip_prefix("vars.") {
                    return self.vars.get(var).cloned();
                }
                let (queue, figure) = name.strip_prefix("queue.")?.rsplit_once('.')?;
                let stats = ctx.queues.stats(queue)?;
                match figure {
                    "waiting" => Some(Value::Num(f64::from(stats.waiting))),
                    "available" => Some(Value::Num(f64::from(stats.available))),
                    "ewt" => Some(Value::Num(stats.ewt.as_secs_f64())),
                    _ => None,
                }
            }
        }
    }

    /// Sets `vars.NAME`; false when [`MAX_VARS`] names are already taken.
    fn set_var(&mut self, name: &str, value: Value) -> bool {
        if let Some(slot) = self.vars.get_mut(name) {
            *slot = value;
            return true;
        }
        self.set_var_owned(name.to_owned(), value)
    }

    fn set_var_owned(&mut self, name: String, value: Value) -> bool {
        if self.vars.len() >= MAX_VARS && !self.vars.contains_key(&name) {
            return false;
        }
        self.vars.insert(name, value);
        true
    }

    // ---- helpers ----

    /// Keeps a key for the next menu or collect.
    fn keep(&mut self, key: u8) {
        if self.type_ahead.len() < TYPE_AHEAD {
            self.type_ahead.push(key);
        }
    }

    fn play(&mut self, get: for<'a> fn(&'a Flow, NodeId) -> &'a [String], barge: bool) {
        self.actions.push_back(Action::Play {
            sounds: Shared::new(&self.flow, self.node, get),
            barge,
        });
    }

    fn hang_up(&mut self) {
        self.actions.push_back(Action::HangUp);
        self.end();
    }

    fn end(&mut self) {
        self.actions.push_back(Action::Finished);
        self.state = State::Ended;
        self.deadline = None;
        self.type_ahead.clear();
    }

    fn push_step(&mut self, node: NodeId, now: Instant) {
        if self.path.len() >= MAX_PATH {
            self.path.remove(0);
            self.path_dropped += 1;
        }
        self.path.push(PathStep {
            node,
            at: now.saturating_duration_since(self.created),
            digits: Digits::default(),
            outcome: Outcome::Pending,
        });
    }

    fn set_outcome(&mut self, outcome: Outcome) {
        if let Some(step) = self.path.last_mut() {
            step.outcome = outcome;
        }
    }

    fn current_outcome(&self) -> Option<&Outcome> {
        self.path.last().map(|s| &s.outcome)
    }

    fn note_digit(&mut self, key: u8) {
        if let Some(step) = self.path.last_mut() {
            step.digits.push(key);
        }
    }
}

fn menu_of(flow: &Flow, node: NodeId) -> Option<&Menu> {
    match flow.node(node).map(|n| &n.action) {
        Some(model::Action::Menu(m)) => Some(m),
        _ => None,
    }
}

fn collect_of(flow: &Flow, node: NodeId) -> Option<&Collect> {
    match flow.node(node).map(|n| &n.action) {
        Some(model::Action::Collect(c)) => Some(c),
        _ => None,
    }
}

/// Why a collect that stopped on `key` ended.
fn end_of(c: &Collect, key: u8) -> CollectEnd {
    if c.terminator.is_some_and(|t| t as u32 == u32::from(key)) {
        CollectEnd::Terminator
    } else {
        CollectEnd::Full
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Num(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                json!(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
            }
        }
    }
}
