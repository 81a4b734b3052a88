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
