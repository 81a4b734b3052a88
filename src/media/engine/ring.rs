//! Batched tick I/O for the media worker (Linux `io_uring`): the reads of
//! one tick phase's legs go to the kernel in one submission, and then
//! their frames in another, instead of one syscall per datagram. At a few
//! thousand legs per worker that is the difference between a few hundred
//! thousand syscalls a second and a thousand. The sockets a wake-up found
//! ready (bridged legs' RTP, any RTCP) are read the same way, a round per
//! submission, with the previous round's relays in it.
//!
//! - Each leg's sockets are registered as fixed files (slot `2·i` RTP,
//!   `2·i + 1` RTCP), so no operation looks up a descriptor; a slot beyond
//!   the table uses its plain descriptor.
//! - Every operation carries `MSG_DONTWAIT`: an empty socket or a full
//!   send buffer completes at once with `EAGAIN` instead of waiting, so a
//!   submission's completions are all in when it returns and its buffers
//!   are free again. [`TickRing::new`] checks that the kernel does so (and
//!   knows `sendto`-style sends) before the worker relies on it.
//! - A read takes one datagram (`recvmsg`, with the source for symmetric
//!   RTP); the worker drains a socket with `recvmmsg` when a leg falls
//!   behind ([`super::batch`]).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::batch::socket_addr;
use super::leg::TransmitTo;

/// Submission queue entries; a phase with more operations is submitted in
/// parts.
const ENTRIES: u32 = 512;
/// Fixed-file table size: legs in slots below `FIXED_FILES / 2`.
const FIXED_FILES: u32 = 16_384;
/// Tags a send's completion (reads carry their index alone).
const SEND_TAG: u64 = 1 << 63;

/// One read: a datagram buffer, the source's address and the `msghdr` the
/// kernel fills. Boxed, so the pointers inside stay put while the vector
/// of operations grows.
struct RecvOp {
    /// The worker slot the read is for.
    owner: usize,
    buf: Box<[u8]>,
    name: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
    /// Bytes read, or `-errno`.
    result: i32,
}

/// One send: the datagram and where it goes.
struct SendOp {
    buf: Box<[u8]>,
    to: libc::sockaddr_storage,
    to_len: libc::socklen_t,
}

/// A read's outcome: the datagram and its source, or the `errno` it
/// failed with (`EAGAIN`: nothing was queued).
pub(crate) type Received<'a> = Result<(&'a [u8], Option<SocketAddr>), i32>;

/// A worker's ring with the buffers of one phase's operations.
// Operations are boxed on purpose: each holds pointers into itself (the
// msghdr names its iovec and address), which must not move when the
// vector grows.
#[allow(clippy::vec_box)]
pub(crate) struct TickRing {
    ring: IoUring,
    /// The kernel gave us a fixed-file table.
    table: bool,
    /// Slots whose sockets sit in the fixed-file table.
    fixed: Vec<bool>,
    max: usize,
    recvs: Vec<Box<RecvOp>>,
    recv_len: usize,
    sends: Vec<Box<SendOp>>,
    send_len: usize,
    /// Operations pushed and not yet submitted.
    queued: usize,
    /// Sends that failed since the last [`TickRing::submit`].
    send_errors: u64,
}

// SAFETY: the raw pointers in the operations point only into their own
// boxed buffers, which move with the ring; the ring is used by one thread
// at a time (the worker's), and nothing is in flight between calls.
unsafe impl Send for TickRing {}

/// Where an operation goes: a fixed-file slot or a plain descriptor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target(types::Fixed, RawFd, bool);

impl TickRing {
    /// A ring for datagrams of up to `max` bytes, after checking that this
    /// kernel completes non-blocking socket operations at once. `Err`
    /// when `io_uring` is missing, forbidden or too old: the worker then
    /// uses one syscall per datagram.
    pub fn new(max: usize) -> io::Result<TickRing> {
        TickRing::with_entries(max, ENTRIES)
    }

    fn with_entries(max: usize, entries: u32) -> io::Result<TickRing> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .build(entries)?;
        let table = ring.submitter().register_files_sparse(FIXED_FILES).is_ok();
        let mut me = TickRing {
            ring,
            table,
            fixed: Vec::new(),
            max,
            recvs: Vec::new(),
            recv_len: 0,
            sends: Vec::new(),
            send_len: 0,
            queued: 0,
            send_errors: 0,
        };
        me.check()?;
        Ok(me)
    }

    /// Sends a datagram to a fresh socket of our own and reads it back,
    /// after a read of the empty socket that must fail with `EAGAIN` at
    /// once (a kernel that waits instead would stall the worker).
    fn check(&mut self) -> io::Result<()> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let to = socket.local_addr()?;
        let target = Target(types::Fixed(0), socket.as_raw_fd(), false);
        let unexpected = |what: &str| io::Error::other(format!("io_uring {what}"));

        self.clear();
        self.push_recv(0, target)?;
        self.submit_recvs_within(Duration::from_millis(200))?;
        if self.recv_result(0).map(|(_, r)| r.err()) != Some(Some(libc::EAGAIN)) {
            return Err(unexpected("read of an empty socket did not fail at once"));
        }
        self.clear();
        self.push_send(target, b"switchboard", to)?;
        if self.submit()? > 0 {
            return Err(unexpected("send failed"));
        }
        self.push_recv(0, target)?;
        self.submit_recvs_within(Duration::from_millis(200))?;
        match self.recv_result(0) {
            Some((_, Ok((b"switchboard", Some(from))))) if from == to => {}
            _ => return Err(unexpected("read did not return the datagram sent")),
        }
        self.clear();
        Ok(())
    }

    /// Puts slot `slot`'s sockets in the fixed-file table (when it has
    /// room); operations on them then skip the descriptor lookup.
    pub fn register(&mut self, slot: usize, rtp: RawFd, rtcp: RawFd) {
        let Ok(offset) = u32::try_from(slot * 2) else {
            return;
        };
        if !self.table || offset + 1 >= FIXED_FILES {
            return;
        }
        let done = self
            .ring
            .submitter()
            .register_files_update(offset, &[rtp, rtcp]);
        if self.fixed.len() <= slot {
            self.fixed.resize(slot + 1, false);
        }
        self.fixed[slot] = done.is_ok();
    }

    /// Takes slot `slot`'s sockets out of the table (before they close).
    pub fn unregister(&mut self, slot: usize) {
        if let Some(f) = self.fixed.get_mut(slot)
            && std::mem::take(f)
            && let Ok(offset) = u32::try_from(slot * 2)
        {
            let _ = self
                .ring
                .submitter()
                .register_files_update(offset, &[-1, -1]);
        }
    }

    /// Where an operation on slot `slot`'s `via` socket (descriptor `fd`)
    /// goes.
    pub fn target(&self, slot: usize, via: TransmitTo, fd: RawFd) -> Target {
        let index = slot * 2 + usize::from(via == TransmitTo::Rtcp);
        let fixed = self.fixed.get(slot).copied().unwrap_or(false);
        Target(types::Fixed(index as u32), fd, fixed)
    }

    /// Forgets the last operations' results.
    pub fn clear(&mut self) {
        self.recv_len = 0;
        self.send_len = 0;
        self.send_errors = 0;
    }

    /// Forgets the last reads' results (the next submission's reads are
    /// numbered from 0); queued sends stay.
    pub fn start_reads(&mut self) {
        self.recv_len = 0;
    }

    /// Queues a read of one datagram for slot `owner`.
    pub fn push_recv(&mut self, owner: usize, target: Target) -> io::Result<()> {
        if self.recv_len == self.recvs.len() {
            self.recvs.push(Box::new(RecvOp {
                owner,
                buf: vec![0; self.max].into_boxed_slice(),
                // SAFETY: plain old data; all-zero is a valid value.
                name: unsafe { std::mem::zeroed() },
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
                // SAFETY: as above.
                msg: unsafe { std::mem::zeroed() },
                result: 0,
            }));
        }
        let k = self.recv_len;
        let op = &mut self.recvs[k];
        op.owner = owner;
        op.result = -libc::EAGAIN;
        op.iov = libc::iovec {
            iov_base: op.buf.as_mut_ptr().cast(),
            iov_len: op.buf.len(),
        };
        op.msg.msg_name = (&raw mut op.name).cast();
        op.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        op.msg.msg_iov = &raw mut op.iov;
        op.msg.msg_iovlen = 1;
        op.msg.msg_control = std::ptr::null_mut();
        op.msg.msg_controllen = 0;
        op.msg.msg_flags = 0;
        let entry = match target {
            Target(fixed, _, true) => opcode::RecvMsg::new(fixed, &raw mut op.msg),
            Target(_, fd, false) => opcode::RecvMsg::new(types::Fd(fd), &raw mut op.msg),
        }
        .flags(libc::MSG_DONTWAIT as u32)
        .build()
        .user_data(k as u64);
        self.recv_len += 1;
        self.push(&entry)
    }

    /// Submits what is queued, in order: every operation has completed
    /// when it returns. The reads' results stay readable until the next
    /// [`TickRing::start_reads`]; returns how many sends failed (a full
    /// socket buffer drops the datagram: media is not retransmitted).
    pub fn submit(&mut self) -> io::Result<u64> {
        self.flush()?;
        self.send_len = 0;
        Ok(std::mem::take(&mut self.send_errors))
    }

    /// Like [`TickRing::submit`] for reads alone, but gives up waiting after
    /// `limit` (used by the check, where the kernel is not yet trusted).
    fn submit_recvs_within(&mut self, limit: Duration) -> io::Result<()> {
        let want = self.queued;
        let ts = types::Timespec::from(limit);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) => return Err(e),
        }
        self.queued = 0;
        let done = self.reap();
        if done < want {
            // A read waits in the kernel on our buffers (nothing is ever
            // sent to that socket, so it never writes into them): never
            // use this ring.
            return Err(io::Error::other("io_uring read did not complete at once"));
        }
        Ok(())
    }

    /// Read `k` of this phase: its slot and what it received.
    pub fn recv_result(&self, k: usize) -> Option<(usize, Received<'_>)> {
        if k >= self.recv_len {
            return None;
        }
        let op = self.recvs.get(k)?;
        if op.result < 0 {
            return Some((op.owner, Err(-op.result)));
        }
        let len = (op.result as usize).min(op.buf.len());
        Some((op.owner, Ok((&op.buf[..len], socket_addr(&op.name)))))
    }

    /// Nothing is queued for the next submission.
    pub fn is_idle(&self) -> bool {
        self.queued == 0
    }

    /// Reads queued this phase.
    pub fn recv_count(&self) -> usize {
        self.recv_len
    }

    /// Queues one datagram.
    pub fn push_send(&mut self, target: Target, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        if self.send_len == self.sends.len() {
            self.sends.push(Box::new(SendOp {
                buf: vec![0; self.max].into_boxed_slice(),
                // SAFETY: plain old data; all-zero is a valid value.
                to: unsafe { std::mem::zeroed() },
                to_len: 0,
            }));
        }
        let k = self.send_len;
        let op = &mut self.sends[k];
        let len = bytes.len().min(op.buf.len());
        op.buf[..len].copy_from_slice(&bytes[..len]);
        op.to_len = write_sockaddr(&mut op.to, to);
        let buf = op.buf.as_ptr();
        let dest = (&raw const op.to).cast::<libc::sockaddr>();
        let entry = match target {
            Target(fixed, _, true) => opcode::Send::new(fixed, buf, len as u32),
            Target(_, fd, false) => opcode::Send::new(types::Fd(fd), buf, len as u32),
        }
        .flags(libc::MSG_DONTWAIT)
        .dest_addr(dest)
        .dest_addr_len(op.to_len)
        .build()
        .user_data(SEND_TAG | k as u64);
        self.send_len += 1;
        self.push(&entry)
    }

    /// Adds an entry, submitting what is queued first when the queue is
    /// full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entry's buffers live in boxed operations that are
            // neither dropped nor reused before its completion is reaped
            // (every operation completes within its submission).
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.queued += 1;
                return Ok(());
            }
            self.flush()?;
        }
    }

    /// Submits what is queued and reaps every completion.
    fn flush(&mut self) -> io::Result<()> {
        let want = self.queued;
        if want == 0 {
            return Ok(());
        }
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.queued = 0;
        self.reap();
        Ok(())
    }

    /// Files the completions under their operations; returns how many.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion() {
            n += 1;
            record(&mut self.recvs, &mut self.send_errors, &cqe);
        }
        n
    }
}

fn record(recvs: &mut [Box<RecvOp>], send_errors: &mut u64, cqe: &cqueue::Entry) {
    let tag = cqe.user_data();
    if tag & SEND_TAG != 0 {
        if cqe.result() < 0 {
            *send_errors += 1;
            tracing::trace!(errno = -cqe.result(), "media send failed");
        }
    } else if let Some(op) = recvs.get_mut(tag as usize) {
        op.result = cqe.result();
    }
}

/// Writes `addr` as a C socket address; returns its length.
fn write_sockaddr(storage: &mut libc::sockaddr_storage, addr: SocketAddr) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { std::ptr::write((&raw mut *storage).cast(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut *storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Option<TickRing> {
        match TickRing::with_entries(2048, 16) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("skipped: no usable io_uring here ({e})");
                None
            }
        }
    }

    /// One submission reads several sockets: the one with a datagram
    /// gives it with its source, the empty one fails with EAGAIN at once.
    #[test]
    fn reads_of_a_phase_complete_in_one_submission() {
        let Some(mut ring) = ring() else { return };
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"rtp", a.local_addr().unwrap()).unwrap();
        ring.register(3, a.as_raw_fd(), b.as_raw_fd());
        ring.clear();
        ring.push_recv(3, ring.target(3, TransmitTo::Rtp, a.as_raw_fd()))
            .unwrap();
        ring.push_recv(7, ring.target(7, TransmitTo::Rtp, b.as_raw_fd()))
            .unwrap();
        assert_eq!(ring.submit().unwrap(), 0);
        assert_eq!(ring.recv_count(), 2);
        let (owner, got) = ring.recv_result(0).unwrap();
        assert_eq!(owner, 3);
        assert_eq!(got, Ok((&b"rtp"[..], Some(peer.local_addr().unwrap()))));
        assert_eq!(ring.recv_result(1).unwrap(), (7, Err(libc::EAGAIN)));
        assert!(ring.recv_result(2).is_none());
        ring.unregister(3);
    }

    /// Sends from fixed and plain descriptors reach their destinations,
    /// more of them than the submission queue holds.
    #[test]
    fn sends_beyond_the_queue_size_all_leave() {
        let Some(mut ring) = ring() else { return };
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = UdpSocket::bind("127.0.0.1:0").unwrap();
        to.set_nonblocking(true).unwrap();
        let dest = to.local_addr().unwrap();
        ring.register(0, from.as_raw_fd(), rtcp.as_raw_fd());
        let n = 40;
        ring.clear();
        for i in 0..n {
            let (via, fd) = if i % 2 == 0 {
                (TransmitTo::Rtp, from.as_raw_fd())
            } else {
                (TransmitTo::Rtcp, rtcp.as_raw_fd())
            };
            ring.push_send(ring.target(0, via, fd), &(i as u32).to_be_bytes(), dest)
                .unwrap();
        }
        assert_eq!(ring.submit().unwrap(), 0);
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok((len, src)) = to.recv_from(&mut buf) {
            assert_eq!(len, 4);
            let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
            let expect = if i % 2 == 0 { &from } else { &rtcp };
            assert_eq!(
                src,
                expect.local_addr().unwrap(),
                "datagram {i} left from its socket"
            );
            got.push(i);
        }
        assert_eq!(got.len(), n);
    }
}
