//! Agents as the routing engine sees them (DESIGN §6): skills with levels
//! 1–5, reachability (a live registration or browser session) and the
//! reported state `offline`, `available`, `offered`, `on_call`, `wrap_up`,
//! `paused(reason)`.

use std::fmt;

/// An agent's state as reported to supervisors and the API (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Not reachable: no live registration or browser session.
    Offline,
    /// Reachable, idle, and may be offered a caller.
    Available,
    /// A caller is ringing on the agent's devices.
    Offered,
    /// Talking to a caller.
    OnCall,
    /// After-call work; available again when the queue's `wrap_up` ends.
    WrapUp,
    /// Reachable but taking no calls, with the reason (`"missed calls"`
    /// after `max_no_answer` missed offers in a row).
    Paused(String),
}

impl AgentState {
    /// The name used in the API: `offline`, `available`, `offered`,
    /// `on_call`, `wrap_up`, `paused`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Available => "available",
            AgentState::Offered => "offered",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
            AgentState::Paused(_) => "paused",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentState::Paused(reason) => write!(f, "paused({reason})"),
            other => f.write_str(other.as_str()),
        }
    }
}

use std::collections::BTreeMap;
use std::time::Instant;

use super::{CallerId, CallerKey};

/// Index of an agent in the engine's table.
pub(super) type AgentIx = usize;

/// Interned skill name.
pub(super) type SkillIx = u32;

/// Skills as (skill, level), sorted by skill, levels 1–5.
pub(super) type SkillLevels = Vec<(SkillIx, u8)>;

/// The reported state without the pause reason, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Offline,
    Available,
    Offered,
    OnCall,
    WrapUp,
    Paused,
}

impl Kind {
    pub(super) const COUNT: usize = 6;
}

/// What the agent is doing with calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activity {
    Idle,
    Offered(CallerId),
    OnCall {
        queue: usize,
        answered_at: Instant,
    },
    /// On a call the engine did not route (a flow's `transfer`, an agent's
    /// REFER): busy, no wrap-up after it.
    Direct,
    WrapUp {
        until: Instant,
    },
}

/// One agent.
#[derive(Debug)]
pub(super) struct Agent {
    pub login: String,
    pub skills: SkillLevels,
    /// A live registration or browser session.
    pub reachable: bool,
    pub pause: Option<String>,
    pub activity: Activity,
    /// When the agent last became available (longest-idle).
    pub available_since: Instant,
    /// Calls answered (fewest-calls).
    pub calls: u32,
    /// Missed offers in a row.
    pub missed_in_row: u32,
    /// Requirements the agent meets, sorted.
    pub reqs: Vec<usize>,
    /// Caller sets (queue, widen stage) the agent may serve, sorted.
    pub buckets: Vec<usize>,
    /// Callers waiting for this agent only (`prefer_last_agent`).
    pub preferred: BTreeMap<CallerKey, CallerId>,
    pub removed: bool,
    /// The wrap-up timer, when armed.
    pub timer: Option<Instant>,
    /// The state last reported in an event.
    pub reported: AgentState,
}

impl Agent {
    pub(super) fn new(login: &str, skills: SkillLevels, now: Instant) -> Agent {
        Agent {
            login: login.to_owned(),
            skills,
            reachable: false,
            pause: None,
            activity: Activity::Idle,
            available_since: now,
            calls: 0,
            missed_in_row: 0,
            reqs: Vec::new(),
            buckets: Vec::new(),
            preferred: BTreeMap::new(),
            removed: false,
            timer: None,
            reported: AgentState::Offline,
        }
    }

    pub(super) fn kind(&self) -> Kind {
        match self.activity {
            Activity::Offered(_) => Kind::Offered,
            Activity::OnCall { .. } | Activity::Direct => Kind::OnCall,
            Activity::WrapUp { .. } => Kind::WrapUp,
            Activity::Idle if self.removed || !self.reachable => Kind::Offline,
            Activity::Idle if self.pause.is_some() => Kind::Paused,
            Activity::Idle => Kind::Available,
        }
    }

    pub(super) fn state(&self) -> AgentState {
        match self.kind() {
            Kind::Offline => AgentState::Offline,
            Kind::Available => AgentState::Available,
            Kind::Offered => AgentState::Offered,
            Kind::OnCall => AgentState::OnCall,
            Kind::WrapUp => AgentState::WrapUp,
            Kind::Paused => AgentState::Paused(self.pause.clone().unwrap_or_default()),
        }
    }

    /// Reachable and not paused: could serve a caller now or later.
    pub(super) fn active(&self) -> bool {
        !self.removed && self.reachable && self.pause.is_none()
    }

    pub(super) fn level(&self, skill: SkillIx) -> u8 {
        self.skills
            .binary_search_by_key(&skill, |&(s, _)| s)
            .ok()
            .and_then(|i| self.skills.get(i))
            .map_or(0, |&(_, l)| l)
    }

    /// Meets every required skill at its minimum level.
    pub(super) fn meets(&self, required: &[(SkillIx, u8)]) -> bool {
        required.iter().all(|&(s, min)| self.level(s) >= min)
    }
}
