//! What a [`FlowRun`](super::FlowRun) takes in and gives out: the call's
//! context, the wall-clock anchor, the actions, the outcomes of the queue,
//! webhook and transfer steps, and the path the caller took.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::ivr::expr::Value;
use crate::ivr::model::{self, Flow, NodeId, TransferTarget};

/// Live figures of one queue, as `queue.NAME.waiting|available|ewt` read them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueStats {
    /// Callers waiting in the queue.
    pub waiting: u32,
    /// Agents available for the queue.
    pub available: u32,
    /// Estimated wait (read by conditions in seconds).
    pub ewt: Duration,
}

/// A pure read of the routing engine's queue figures, supplied by the
/// driver. It must not block: it is called while a `branch` is evaluated.
pub trait QueueView: Send + Sync {
    /// The figures of `queue`, or `None` when it is unknown.
    fn stats(&self, queue: &str) -> Option<QueueStats>;
}

impl<F> QueueView for F
where
    F: Fn(&str) -> Option<QueueStats> + Send + Sync,
{
    fn stats(&self, queue: &str) -> Option<QueueStats> {
        self(queue)
    }
}

/// A view that knows no queue: every `queue.*` variable is unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoQueues;

impl QueueView for NoQueues {
    fn stats(&self, _queue: &str) -> Option<QueueStats> {
        None
    }
}

/// What the switch knows about the call when the flow starts (DESIGN §5
/// variables). `None` fields are unset variables: every comparison with them
/// is false.
#[derive(Clone)]
pub struct CallContext {
    /// `caller.number` (E.164 when valid; `None` for anonymous callers).
    pub caller_number: Option<String>,
    /// `caller.known`.
    pub caller_known: bool,
    /// `caller.vip`.
    pub caller_vip: bool,
    /// `contact.name`.
    pub contact_name: Option<String>,
    /// `thread.open`.
    pub thread_open: bool,
    /// `thread.priority` (0–3).
    pub thread_priority: Option<u8>,
    /// `thread.last_agent`.
    pub thread_last_agent: Option<String>,
    /// `dialled`.
    pub dialled: String,
    /// `queue.NAME.*`.
    pub queues: Arc<dyn QueueView>,
}

impl Default for CallContext {
    fn default() -> CallContext {
        CallContext {
            caller_number: None,
            caller_known: false,
            caller_vip: false,
            contact_name: None,
            thread_open: false,
            thread_priority: None,
            thread_last_agent: None,
            dialled: String::new(),
            queues: Arc::new(NoQueues),
        }
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("caller_number", &self.caller_number)
            .field("caller_known", &self.caller_known)
            .field("caller_vip", &self.caller_vip)
            .field("contact_name", &self.contact_name)
            .field("thread_open", &self.thread_open)
            .field("thread_priority", &self.thread_priority)
            .field("thread_last_agent", &self.thread_last_agent)
            .field("dialled", &self.dialled)
            .finish_non_exhaustive()
    }
}

/// Ties the monotonic clock to the calendar: `instant` is `utc`. Inputs stay
/// `Instant`s; the `hours` action turns `now` into UTC through this anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    pub instant: Instant,
    pub utc: DateTime<Utc>,
}

impl WallClock {
    pub fn new(instant: Instant, utc: DateTime<Utc>) -> WallClock {
        WallClock { instant, utc }
    }

    /// The calendar time of `now` (saturating at the ends of chrono's range).
    pub fn utc_at(&self, now: Instant) -> DateTime<Utc> {
        let shifted = match now.checked_duration_since(self.instant) {
            Some(ahead) => TimeDelta::from_std(ahead)
                .ok()
                .and_then(|d| self.utc.checked_add_signed(d)),
            None => TimeDelta::from_std(self.instant.duration_since(now))
                .ok()
                .and_then(|d| self.utc.checked_sub_signed(d)),
        };
        shifted.unwrap_or(self.utc)
    }
}

/// Text or sounds of the flow handed to the driver without copying: the
/// handle keeps the flow alive and reads the field out of its node.
pub struct Shared<T: ?Sized + 'static> {
    flow: Arc<Flow>,
    node: NodeId,
    get: for<'a> fn(&'a Flow, NodeId) -> &'a T,
}

/// A playlist: sound names relative to the sounds folder, played in order.
pub type Sounds = Shared<[String]>;

impl<T: ?Sized> Shared<T> {
    pub(super) fn new(
        flow: &Arc<Flow>,
        node: NodeId,
        get: for<'a> fn(&'a Flow, NodeId) -> &'a T,
    ) -> Shared<T> {
        Shared {
            flow: Arc::clone(flow),
            node,
            get,
        }
    }
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared {
            flow: Arc::clone(&self.flow),
            node: self.node,
            get: self.get,
        }
    }
}

impl<T: ?Sized> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        (self.get)(&self.flow, self.node)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Shared<T>) -> bool {
        **self == **other
    }
}

fn action(flow: &Flow, node: NodeId) -> Option<&model::Action> {
    flow.node(node).map(|n| &n.action)
}

pub(super) fn play_sounds(flow: &Flow, node: NodeId) -> &[String] {
    match action(flow, node) {
        Some(model::Action::Play(p)) => &p.sounds,
        _ => &[],
    }
}

pub(super) fn menu_prompt(flow: &Flow, node: NodeId) -> &[String] {
    match action(flow, node) {
        Some(model::Action::Menu(m)) => &m.prompt,
        _ => &[],
    }
}

pub(super) fn menu_invalid(flow: &Flow, node: NodeId) -> &[String] {
    match action(flow, node) {
        Some(model::Action::Menu(m)) => &m.invalid,
        _ => &[],
    }
}

pub(super) fn collect_prompt(flow: &Flow, node: NodeId) -> &[String] {
    match action(flow, node) {
        Some(model::Action::Collect(c)) => &c.prompt,
        _ => &[],
    }
}

pub(super) fn voicemail_greeting(flow: &Flow, node: NodeId) -> &[String] {
    match action(flow, node) {
        Some(model::Action::Voicemail(v)) => &v.greeting,
        _ => &[],
    }
}

pub(super) fn queue_name(flow: &Flow, node: NodeId) -> &str {
    match action(flow, node) {
        Some(model::Action::Queue(q)) => &q.queue,
        _ => "",
    }
}

pub(super) fn webhook_url(flow: &Flow, node: NodeId) -> &str {
    match action(flow, node) {
        Some(model::Action::Webhook(w)) => &w.url,
        _ => "",
    }
}

static NO_TARGET: TransferTarget = TransferTarget::Agent(String::new());

pub(super) fn transfer_target(flow: &Flow, node: NodeId) -> &TransferTarget {
    match action(flow, node) {
        Some(model::Action::Transfer(t)) => &t.target,
        _ => &NO_TARGET,
    }
}

/// What the call must do next, from [`FlowRun::poll_action`](super::FlowRun::poll_action).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Play the sounds in order, replacing whatever plays now, and report
    /// `handle_prompt_finished` when the last one ends. With `barge`, any key
    /// cuts the playlist: the driver stops it at once, passes the key to
    /// `handle_digit` and does not report it finished.
    Play { sounds: Sounds, barge: bool },
    /// Stop the playlist now (no `handle_prompt_finished` for it).
    StopPlayback,
    /// Put the caller in `queue` with this priority (already the maximum of
    /// the node, the queue, the thread and VIP); report the outcome with
    /// `handle_queue_result`.
    Enqueue { queue: Shared<str>, priority: u32 },
    /// Hand the call over; report `handle_transfer_result`.
    Transfer {
        target: Shared<TransferTarget>,
        timeout: Duration,
    },
    /// Play the greeting (may be empty), a beep when asked, record at most
    /// `max`; report `handle_voicemail_done`.
    RecordVoicemail {
        greeting: Sounds,
        max: Duration,
        beep: bool,
    },
    /// POST `body` as JSON to `url`; report `handle_webhook_reply`. When the
    /// run gives up first (its own timer at `timeout`), a later reply is
    /// ignored: the driver may drop the request once it sees the next action.
    CallWebhook {
        url: Shared<str>,
        body: serde_json::Value,
        timeout: Duration,
    },
    /// End the call (send BYE).
    HangUp,
    /// The flow is over; the run takes no more inputs.
    Finished,
}

/// Why a queue stopped waiting for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The queue's `max_wait` passed.
    MaxWait,
    /// The queue's hours closed it.
    Closed,
    /// No agent can take the call.
    NoAgents,
}

/// The routing engine's news about a queued caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOutcome {
    /// An agent took the call; the caller is bridged to them.
    Answered { agent: String },
    /// The agent hung up: the run goes to the node's `after`, else hangs up.
    AgentHungUp,
    /// The caller hung up while queued or talking.
    CallerLeft,
    /// The queue gave up: the run takes `next`.
    GaveUp { reason: GiveUpReason },
}

/// Why a webhook brought no reply the run can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no reply in time")]
    Timeout,
    #[error("could not reach the server")]
    Unreachable,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the reply is not a JSON object")]
    BadReply,
}

/// Up to [`Digits::CAPACITY`] keys (`0-9`, `*`, `#`, `A-D`), stored inline.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Digits {
    keys: [u8; Digits::CAPACITY],
    len: u8,
}

impl Digits {
    pub const CAPACITY: usize = 32;

    /// Appends `key`; false (and nothing changes) when full.
    pub(super) fn push(&mut self, key: u8) -> bool {
        match self.keys.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = key;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Removes and returns the first key.
    pub(super) fn pop_front(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let first = self.keys[0];
        self.keys.copy_within(1..usize::from(self.len), 0);
        self.len -= 1;
        Some(first)
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII keys are ever pushed.
        std::str::from_utf8(self.keys.get(..self.len()).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Debug for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// How a `collect` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectEnd {
    /// `max` digits were typed.
    Full,
    /// The terminator was pressed.
    Terminator,
    /// A wait (first key or between keys) ran out.
    Timeout,
}

/// How a step of the path ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Still running (the current step).
    Pending,
    /// `play` or `set` finished: `next`.
    Next,
    /// A menu option was chosen.
    Key(char),
    /// The menu's tries ran out: `failure`.
    Failure,
    /// `collect` ended; `short` when fewer than `min` digits were typed.
    Collected {
        end: CollectEnd,
        short: bool,
    },
    /// The branch arm at this index (0-based) held.
    Arm(usize),
    /// No arm held: `else`.
    Else,
    Open,
    Closed,
    /// The queue gave up: `next`.
    GaveUp(GiveUpReason),
    /// An agent answered (what follows is `after` or the end of the call).
    Answered {
        agent: String,
    },
    /// The agent hung up before the run heard they answered.
    AgentHungUp,
    Transferred,
    TransferFailed,
    /// Voicemail recorded (the recording's name, if anything was kept).
    Recorded {
        recording: Option<String>,
    },
    /// The webhook replied; this many variables were set.
    Replied {
        vars: usize,
    },
    WebhookFailed(WebhookError),
    /// A `hangup` node.
    HungUp,
    /// The caller hung up during this step.
    CallerLeft,
    /// The runaway guard ended the call here (too many steps without input).
    Runaway,
    /// The flow names something that does not exist (validation prevents it).
    FlowError,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pending => f.write_str("pending"),
            Outcome::Next => f.write_str("next"),
            Outcome::Key(k) => write!(f, "key {k}"),
            Outcome::Failure => f.write_str("failure"),
            Outcome::Collected { end, short } => {
                let end = match end {
                    CollectEnd::Full => "full",
                    CollectEnd::Terminator => "terminator",
                    CollectEnd::Timeout => "timeout",
                };
                write!(
                    f,
                    "collected ({end}{})",
                    if *short { ", short" } else { "" }
                )
            }
            Outcome::Arm(i) => write!(f, "arm {}", i + 1),
            Outcome::Else => f.write_str("else"),
            Outcome::Open => f.write_str("open"),
            Outcome::Closed => f.write_str("closed"),
            Outcome::GaveUp(r) => {
                let r = match r {
                    GiveUpReason::MaxWait => "max wait",
                    GiveUpReason::Closed => "closed",
                    GiveUpReason::NoAgents => "no agents",
                };
                write!(f, "gave up ({r})")
            }
            Outcome::Answered { agent } => write!(f, "answered by {agent}"),
            Outcome::AgentHungUp => f.write_str("agent hung up"),
            Outcome::Transferred => f.write_str("transferred"),
            Outcome::TransferFailed => f.write_str("transfer failed"),
            Outcome::Recorded { recording: Some(r) } => write!(f, "recorded {r}"),
            Outcome::Recorded { recording: None } => f.write_str("nothing recorded"),
            Outcome::Replied { vars } => write!(f, "replied ({vars} vars)"),
            Outcome::WebhookFailed(e) => write!(f, "webhook failed: {e}"),
            Outcome::HungUp => f.write_str("hung up"),
            Outcome::CallerLeft => f.write_str("caller left"),
            Outcome::Runaway => f.write_str("error: too many steps without input"),
            Outcome::FlowError => f.write_str("error: broken flow"),
        }
    }
}

/// One node the caller passed through, for the call record.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStep {
    pub node: NodeId,
    /// When the node was entered, from the run's creation.
    pub at: Duration,
    /// The keys a menu or collect took (terminator included).
    pub digits: Digits,
    pub outcome: Outcome,
}

impl PathStep {
    /// The node's name in `flow` (the run's [`FlowRun::flow`](super::FlowRun::flow)).
    pub fn name<'f>(&self, flow: &'f Flow) -> &'f str {
        flow.node(self.node).map_or("", |n| n.name.as_str())
    }
}

/// `vars.*`: names without the `vars.` prefix.
pub type Vars = BTreeMap<String, Value>;
