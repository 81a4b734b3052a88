//! Agent selection (DESIGN §6): requirement indexes and the queue
//! strategies `longest-idle`, `round-robin`, `fewest-calls`, `best-skill`,
//! `ring-all` and `random`.
//!
//! A requirement is a set of (skill, minimum level). Every distinct
//! requirement of every queue and widen stage is one [`Req`]; each knows
//! the agents meeting it through per-state counters and keeps its
//! *available* agents in the orders its queues' strategies need, so a pick
//! is a few `first()` calls, never a scan of all agents:
//!
//! - `longest-idle`: earliest `available_since`;
//! - `fewest-calls`: fewest answered calls, then longest idle;
//! - `best-skill`: highest sum of the agent's levels in the requirement's
//!   skills, then longest idle;
//! - `round-robin`: the next agent after the queue's last pick, in the
//!   engine's agent order, wrapping around;
//! - `random`: uniform over the requirement's available agents (a caller
//!   eligible through several requirements picks one in proportion to their
//!   sizes, then an agent in it), from the seeded generator;
//! - `ring-all`: every available eligible agent, longest idle first, up to
//!   [`MAX_RING_ALL`].

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::time::Instant;

use rand::Rng;
use rand::rngs::StdRng;

use super::MAX_RING_ALL;
use super::agents::{Agent, AgentIx, Kind, SkillIx};
use crate::acd::queues::Strategy;

const BY_IDLE: u8 = 1;
const BY_CALLS: u8 = 2;
const BY_SKILL: u8 = 4;
const BY_IX: u8 = 8;
const BY_RANDOM: u8 = 16;

/// The available-agent order a strategy reads.
pub(super) fn order_of(s: Strategy) -> u8 {
    match s {
        Strategy::LongestIdle | Strategy::RingAll => BY_IDLE,
        Strategy::FewestCalls => BY_CALLS,
        Strategy::BestSkill => BY_SKILL,
        Strategy::RoundRobin => BY_IX,
        Strategy::Random => BY_RANDOM,
    }
}

/// One requirement and the agents meeting it.
#[derive(Debug, Default)]
pub(super) struct Req {
    /// (skill, minimum level ≥ 1), sorted; empty: every agent.
    pub skills: Vec<(SkillIx, u8)>,
    /// Caller sets (queue, widen stage) whose agents this includes.
    pub buckets: Vec<usize>,
    /// Queues that use this requirement at some stage.
    pub queues: Vec<usize>,
    /// Which orders of available agents to keep (`BY_*`).
    pub orders: u8,
    /// Member agents per [`Kind`].
    pub counts: [u32; Kind::COUNT],
    /// Members reachable and not paused.
    pub active: u32,
    by_idle: BTreeSet<(Instant, AgentIx)>,
    by_calls: BTreeSet<(u32, Instant, AgentIx)>,
    by_skill: BTreeSet<(Reverse<u32>, Instant, AgentIx)>,
    by_ix: BTreeSet<AgentIx>,
    random: Vec<AgentIx>,
    random_pos: HashMap<AgentIx, usize>,
}

impl Req {
    pub(super) fn new(skills: Vec<(SkillIx, u8)>) -> Req {
        Req {
            skills,
            ..Req::default()
        }
    }

    /// The sum of the agent's levels in this requirement's skills.
    fn score(&self, agent: &Agent) -> u32 {
        self.skills
            .iter()
            .map(|&(s, _)| u32::from(agent.level(s)))
            .sum()
    }

    /// Adds an available agent; its `available_since` and `calls` must not
    /// change until [`Req::remove_available`].
    pub(super) fn add_available(&mut self, a: AgentIx, agent: &Agent) {
        let since = agent.available_since;
        if self.orders & BY_IDLE != 0 {
            self.by_idle.insert((since, a));
        }
        if self.orders & BY_CALLS != 0 {
            self.by_calls.insert((agent.calls, since, a));
        }
        if self.orders & BY_SKILL != 0 {
            self.by_skill.insert((Reverse(self.score(agent)), since, a));
        }
        if self.orders & BY_IX != 0 {
            self.by_ix.insert(a);
        }
        if self.orders & BY_RANDOM != 0 && !self.random_pos.contains_key(&a) {
            self.random_pos.insert(a, self.random.len());
            self.random.push(a);
        }
    }

    pub(super) fn remove_available(&mut self, a: AgentIx, agent: &Agent) {
        let since = agent.available_since;
        if self.orders & BY_IDLE != 0 {
            self.by_idle.remove(&(since, a));
        }
        if self.orders & BY_CALLS != 0 {
            self.by_calls.remove(&(agent.calls, since, a));
        }
        if self.orders & BY_SKILL != 0 {
            self.by_skill
                .remove(&(Reverse(self.score(agent)), since, a));
        }
        if self.orders & BY_IX != 0 {
            self.by_ix.remove(&a);
        }
        if let Some(i) = self.random_pos.remove(&a) {
            self.random.swap_remove(i);
            if let Some(&moved) = self.random.get(i) {
                self.random_pos.insert(moved, i);
            }
        }
    }
}

/// Picks the agents to offer a caller to, among the available agents of
/// `eligible` (requirement indexes into `reqs`). `cursor` is the queue's
/// last round-robin pick. Empty when no agent is available.
pub(super) fn pick(
    strategy: Strategy,
    eligible: &[usize],
    reqs: &[Req],
    cursor: Option<AgentIx>,
    rng: &mut StdRng,
) -> Vec<AgentIx> {
    let reqs = || eligible.iter().filter_map(|&r| reqs.get(r));
    let one = match strategy {
        Strategy::LongestIdle => reqs()
            .filter_map(|r| r.by_idle.first())
            .min()
            .map(|&(_, a)| a),
        Strategy::FewestCalls => reqs()
            .filter_map(|r| r.by_calls.first())
            .min()
            .map(|&(_, _, a)| a),
        Strategy::BestSkill => reqs()
            .filter_map(|r| r.by_skill.first())
            .min()
            .map(|&(_, _, a)| a),
        Strategy::RoundRobin => {
            let after = cursor.and_then(|c| {
                reqs()
                    .filter_map(|r| r.by_ix.range((Bound::Excluded(c), Bound::Unbounded)).next())
                    .min()
            });
            after
                .or_else(|| reqs().filter_map(|r| r.by_ix.first()).min())
                .copied()
        }
        Strategy::Random => {
            let total: usize = reqs().map(|r| r.random.len()).sum();
            if total == 0 {
                None
            } else {
                let mut k = rng.random_range(0..total);
                reqs().find_map(|r| {
                    if k < r.random.len() {
                        r.random.get(k).copied()
                    } else {
                        k -= r.random.len();
                        None
                    }
                })
            }
        }
        Strategy::RingAll => {
            let mut out: Vec<AgentIx> = Vec::new();
            for r in reqs() {
                for &(_, a) in &r.by_idle {
                    if out.len() >= MAX_RING_ALL {
                        return out;
                    }
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
            return out;
        }
    };
    one.into_iter().collect()
}
