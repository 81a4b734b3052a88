//! Queue settings (DESIGN §6, `queues.yaml`).
//!
//! Everything local to the file is checked here (types, ranges, skill names
//! and levels, widen steps, `widen.also` queue names). Names that point into
//! other files (`hours`, `music`) keep their position for the folder
//! validator.

mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use parse::parse_queues_file;

use super::{NameRef, Pos};

/// Every queue of one `queues.yaml`, by name.
#[derive(Debug, Clone, Default)]
pub struct QueueSet {
    queues: BTreeMap<String, QueueConfig>,
}

impl QueueSet {
    /// The names of the queues, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&QueueConfig> {
        self.queues.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &QueueConfig> {
        self.queues.values()
    }

    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

/// Skill names mapped to a level: the minimum an agent needs (1–5), or in a
/// widen step the new minimum (0 drops the requirement).
pub type Skills = BTreeMap<String, u8>;

/// One queue. Omitted keys take the defaults named on each field.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub name: String,
    /// Where the queue's name was written.
    pub pos: Pos,
    /// Required skills and minimum levels (1–5). Default: none.
    pub skills: Skills,
    /// The hours set that opens the queue. Default: always open.
    pub hours: Option<NameRef>,
    /// Default: longest-idle.
    pub strategy: Strategy,
    /// Base caller priority, 0–1000; a caller gets max(queue, flow node,
    /// thread, VIP). Default: 0.
    pub priority: u32,
    /// How long one agent rings before the next is tried. Default: 20s.
    pub ring_timeout: Duration,
    /// How long a caller may wait before the flow's `next`. Default: no limit.
    pub max_wait: Option<Duration>,
    /// Agent pause after each call. Default: 0s.
    pub wrap_up: Duration,
    /// Hold music, a sound name under `--sounds`. Default: silence.
    pub music: Option<NameRef>,
    /// Periodic position/wait announcements. Default: none.
    pub announce: Option<Announce>,
    /// What the caller hears while an agent's phone rings. Default: music.
    pub on_ring: OnRing,
    /// Answer-time target for the service-level metric. Default: 20s.
    pub service_level: Duration,
    /// Missed offers in a row after which an agent is paused; 0 = never.
    /// Default: 3.
    pub max_no_answer: u32,
    /// How long to wait for the agent of the caller's thread first; 0s = do
    /// not wait. Default: 0s.
    pub prefer_last_agent: Duration,
    /// Relaxations as the caller waits, in increasing `after`.
    pub widen: Vec<WidenStep>,
}

impl QueueConfig {
    /// A queue with every default.
    pub fn new(name: &str, pos: Pos) -> QueueConfig {
        QueueConfig {
            name: name.to_owned(),
            pos,
            skills: Skills::new(),
            hours: None,
            strategy: Strategy::LongestIdle,
            priority: 0,
            ring_timeout: Duration::from_secs(20),
            max_wait: None,
            wrap_up: Duration::ZERO,
            music: None,
            announce: None,
            on_ring: OnRing::Music,
            service_level: Duration::from_secs(20),
            max_no_answer: 3,
            prefer_last_agent: Duration::ZERO,
            widen: Vec::new(),
        }
    }
}

/// How a queue picks among eligible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    LongestIdle,
    RoundRobin,
    FewestCalls,
    BestSkill,
    RingAll,
    Random,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
        Strategy::BestSkill,
        Strategy::RingAll,
        Strategy::Random,
    ];

    /// The name used in `queues.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest-idle",
            Strategy::RoundRobin => "round-robin",
            Strategy::FewestCalls => "fewest-calls",
            Strategy::BestSkill => "best-skill",
            Strategy::RingAll => "ring-all",
            Strategy::Random => "random",
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `announce: { every, position, wait_time }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    /// Default: 60s.
    pub every: Duration,
    /// Say the caller's position. Default: true.
    pub position: bool,
    /// Say the estimated wait. Default: true.
    pub wait_time: bool,
}

/// `on_ring`: what a waiting caller hears while an agent's phone rings
/// (after its 180 Ringing) until the agent answers or the offer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRing {
    /// The queue's hold music goes on.
    #[default]
    Music,
    /// A ringback tone (ETSI: 425 Hz, 1 s on, 4 s off) replaces the music.
    Ringback,
}

impl OnRing {
    pub const ALL: [OnRing; 2] = [OnRing::Music, OnRing::Ringback];

    /// The name used in `queues.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnRing::Music => "music",
            OnRing::Ringback => "ringback",
        }
    }

    pub fn from_name(name: &str) -> Option<OnRing> {
        OnRing::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// One `widen` step: after `after` in the queue, the skills' minimum levels
/// change (0 drops a skill) and agents of the `also` queues become eligible.
#[derive(Debug, Clone, PartialEq)]
pub struct WidenStep {
    pub after: Duration,
    /// Where the step was written.
    pub pos: Pos,
    pub skills: Skills,
    pub also: Vec<NameRef>,
}
