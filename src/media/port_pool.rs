//! The RTP port pool (DESIGN §2 `--rtp-ports`, §4).
//!
//! Each call leg gets an even RTP port with RTCP on the next odd one
//! (RFC 3550 §11). Ports come back to the pool when their [`PortLease`] is
//! dropped, and go to the back of the queue, so a port just freed is the
//! last to be handed out again and stray late packets of the old call do
//! not reach the new one. The pool does not bind sockets; the driver does,
//! through [`PortPool::allocate_bindable`].

use std::collections::VecDeque;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most ports [`PortPool::allocate_bindable`] tries before giving up.
pub const MAX_BIND_ATTEMPTS: usize = 128;

/// Why a port range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortPoolError {
    #[error("port range {low}-{high} holds no even port with its odd neighbour")]
    Empty { low: u16, high: u16 },
}

/// Free ports in hand-out order, and how many are leased.
#[derive(Debug)]
struct State {
    free: VecDeque<u16>,
    in_use: usize,
}

/// A thread-safe pool of even RTP ports. Cloning shares the pool.
#[derive(Clone)]
pub struct PortPool {
    state: Arc<Mutex<State>>,
    capacity: usize,
    range: RangeInclusive<u16>,
}

/// One leased RTP port (and RTCP at `port + 1`); it returns to the pool
/// when dropped.
pub struct PortLease {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// Locks the state even if another thread panicked while holding it: the
/// queue is never left half-updated, so it is still sound.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PortPool {
    /// A pool of every even port `p` in `range` with `p + 1` also in it;
    /// port 0 is never used.
    pub fn new(range: RangeInclusive<u16>) -> Result<PortPool, PortPoolError> {
        let (low, high) = (*range.start(), *range.end());
        let first = u32::from(low.max(2));
        let first = first + (first & 1);
        let free: VecDeque<u16> = (first..u32::from(high))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        if free.is_empty() {
            return Err(PortPoolError::Empty { low, high });
        }
        Ok(PortPool {
            capacity: free.len(),
            state: Arc::new(Mutex::new(State { free, in_use: 0 })),
            range,
        })
    }

    /// Leases the free port that has been free longest, or `None` when all
    /// are in use.
    pub fn allocate(&self) -> Option<PortLease> {
        let mut state = lock(&self.state);
        let port = state.free.pop_front()?;
        state.in_use += 1;
        Some(PortLease {
            port,
            state: Arc::clone(&self.state),
        })
    }

    /// Leases a port the OS lets us bind: `try_bind(port)` binds RTP (and
    /// RTCP) and says whether it worked. Refused ports go back to the end
    /// of the queue. Gives up after [`MAX_BIND_ATTEMPTS`] tries or once
    /// every free port was tried.
    pub fn allocate_bindable(&self, mut try_bind: impl FnMut(u16) -> bool) -> Option<PortLease> {
        self.allocate_with(|port| try_bind(port).then_some(()))
            .map(|(lease, ())| lease)
    }

    /// Like [`PortPool::allocate_bindable`], keeping what `bind` returns
    /// (the bound sockets). The pool's lock is not held while `bind` runs.
    pub fn allocate_with<T>(
        &self,
        mut bind: impl FnMut(u16) -> Option<T>,
    ) -> Option<(PortLease, T)> {
        let attempts = self.available().min(MAX_BIND_ATTEMPTS);
        for _ in 0..attempts {
            let lease = self.allocate()?;
            if let Some(bound) = bind(lease.port) {
                return Some((lease, bound));
            }
        }
        None
    }

    /// How many ports are leased now.
    pub fn in_use(&self) -> usize {
        lock(&self.state).in_use
    }

    /// How many ports are free now.
    pub fn available(&self) -> usize {
        lock(&self.state).free.len()
    }

    /// How many ports the pool holds in all.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The configured range.
    pub fn range(&self) -> RangeInclusive<u16> {
        self.range.clone()
    }
}

impl fmt::Debug for PortPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortPool")
            .field("range", &self.range)
            .field("capacity", &self.capacity)
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl PortLease {
    /// The RTP port (even).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The RTP port (even), same as [`PortLease::port`].
    pub fn rtp_port(&self) -> u16 {
        self.port
    }

    /// The RTCP port, RTP + 1 (RFC 3550 §11).
    pub fn rtcp_port(&self) -> u16 {
        self.port + 1
    }
}

impl fmt::Debug for PortLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PortLease").field(&self.port).finish()
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.free.push_back(self.port);
        state.in_use = state.in_use.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn default_range_capacity_rfc3550_s11() {
        let pool = PortPool::new(20000..=29999).unwrap();
        assert_eq!(pool.capacity(), 5000);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.range(), 20000..=29999);
    }

    #[test]
    fn range_edges_rfc3550_s11() {
        // Odd start rounds up; an even end has no RTCP neighbour.
        let pool = PortPool::new(20001..=20004).unwrap();
        assert_eq!(pool.capacity(), 1);
        assert_eq!(pool.allocate().unwrap().port(), 20002);
        // Port 0 is never handed out; the top of the port space works.
        let pool = PortPool::new(0..=3).unwrap();
        assert_eq!(pool.allocate().unwrap().port(), 2);
        let pool = PortPool::new(65534..=65535).unwrap();
        let lease = pool.allocate().unwrap();
        assert_eq!((lease.rtp_port(), lease.rtcp_port()), (65534, 65535));
        for (low, high) in [(5, 5), (20000, 20000), (10, 3), (65535, 65535)] {
            assert_eq!(
                PortPool::new(low..=high).unwrap_err(),
                PortPoolError::Empty { low, high }
            );
        }
    }

    #[test]
    fn even_unique_until_exhausted_rfc3550_s11() {
        let pool = PortPool::new(20000..=20199).unwrap();
        let leases: Vec<PortLease> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(leases.len(), pool.capacity());
        assert_eq!(pool.in_use(), 100);
        assert!(pool.allocate().is_none());
        let ports: HashSet<u16> = leases.iter().map(PortLease::port).collect();
        assert_eq!(ports.len(), leases.len());
        assert!(
            ports
                .iter()
                .all(|p| p % 2 == 0 && (20000..=20198).contains(p))
        );
        drop(leases);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.available(), 100);
    }

    #[test]
    fn drop_returns_port_last_in_line_rfc3550_s11() {
        let pool = PortPool::new(20000..=20007).unwrap();
        let a = pool.allocate().unwrap();
        assert_eq!(a.port(), 20000);
        drop(a);
        assert_eq!(pool.in_use(), 0);
        // 20000 was freed just now: every other port comes first.
        let next: Vec<u16> = (0..4).map(|_| pool.allocate().unwrap().port()).collect();
        assert_eq!(next, vec![20002, 20004, 20006, 20000]);
    }

    #[test]
    fn bindable_skips_refused_ports_rfc3550_s11() {
        let pool = PortPool::new(20000..=20009).unwrap();
        let mut tried = Vec::new();
        let lease = pool
            .allocate_bindable(|p| {
                tried.push(p);
                p >= 20004
            })
            .unwrap();
        assert_eq!(lease.port(), 20004);
        assert_eq!(tried, vec![20000, 20002, 20004]);
        assert_eq!(pool.in_use(), 1);
        assert_eq!(pool.available(), 4);

        // Nothing binds: every free port tried once, none lost.
        let mut calls = 0;
        assert!(
            pool.allocate_bindable(|_| {
                calls += 1;
                false
            })
            .is_none()
        );
        assert_eq!(calls, 4);
        assert_eq!(pool.in_use(), 1);

        let (lease2, socket) = pool.allocate_with(|p| Some(format!("bound {p}"))).unwrap();
        assert_eq!(socket, format!("bound {}", lease2.port()));
    }

    #[test]
    fn bind_attempts_are_bounded_rfc3550_s11() {
        let pool = PortPool::new(20000..=29999).unwrap();
        let mut calls = 0;
        assert!(
            pool.allocate_bindable(|_| {
                calls += 1;
                false
            })
            .is_none()
        );
        assert_eq!(calls, MAX_BIND_ATTEMPTS);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn threads_never_share_a_port_rfc3550_s11() {
        let pool = PortPool::new(20000..=20019).unwrap();
        let held = Arc::new(Mutex::new(HashSet::new()));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                let held = Arc::clone(&held);
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        if let Some(lease) = pool.allocate() {
                            assert!(held.lock().unwrap().insert(lease.port()));
                            assert!(held.lock().unwrap().remove(&lease.port()));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.available(), 10);
    }
}
