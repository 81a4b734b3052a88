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
//! - A successful send posts no completion (`IOSQE_CQE_SKIP_SUCCESS`):
//!   only failures are counted.
//! - Bridged legs' RTP is read by a multishot `recvmsg` per socket into
//!   provided buffers ([`BufRing`]): each datagram arrives as a completion
//!   ([`TickRing::pop_arrival`]) with no read request or readiness event
//!   of its own, and the worker waits for them, for the rest of its poll
//!   (a multishot poll of the `epoll` descriptor) and for its deadline in
//!   one call ([`TickRing::wait`]) that also submits the relays queued
//!   since the last. [`TickRing::new`] checks multishot reads work;
//!   where they do not, bridged legs wake the `epoll` poll instead.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::batch::socket_addr;
use super::bufring::BufRing;
use super::leg::TransmitTo;

/// Submission queue entries; a phase with more operations is submitted in
/// parts.
const ENTRIES: u32 = 512;
/// Fixed-file table size: legs in slots below `FIXED_FILES / 2`.
const FIXED_FILES: u32 = 16_384;
/// Tags a send's completion (reads carry their index alone).
const SEND_TAG: u64 = 1 << 63;
/// Tags a multishot read's completions; the rest is the worker's id.
const MULTI_TAG: u64 = 1 << 62;
/// Tags a cancellation's own completion.
const CANCEL_TAG: u64 = 1 << 61;
/// Tags the multishot poll of the worker's `epoll` descriptor.
const POLL_TAG: u64 = 1 << 60;
/// Provided buffers for multishot reads: datagrams received and not yet
/// relayed, per worker (2 MiB of buffers).
const PROVIDED_BUFFERS: u16 = 1024;
/// The provided buffers' group.
const BUF_GROUP: u16 = 0;
/// Completions that wake a gathering wait before its time is up.
pub(crate) const GATHER_COMPLETIONS: usize = 32;

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

/// One completion of a multishot read: a datagram in a provided buffer,
/// or the end of the read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    /// The id the read was armed with ([`TickRing::arm_multishot`]).
    pub id: u64,
    /// Bytes written to the buffer, or `-errno`.
    result: i32,
    flags: u32,
}

impl Arrival {
    /// The read is over (cancelled, out of buffers or failed) and must be
    /// armed again to go on.
    pub fn ended(&self) -> bool {
        !cqueue::more(self.flags)
    }

    /// The `errno` the read ended with, if it failed.
    pub fn error(&self) -> Option<i32> {
        (self.result < 0).then_some(-self.result)
    }
}

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
    /// Of those, the ones that always complete (reads): a submission
    /// waits for them.
    waits: usize,
    /// Sends that failed since the last [`TickRing::submit`].
    send_errors: u64,
    /// Provided buffers, registered, where multishot reads work.
    bufs: Option<BufRing>,
    /// Multishot reads' completions not yet taken by the worker.
    arrivals: VecDeque<Arrival>,
    /// The `epoll` descriptor's poll completed since last asked.
    poll_ready: bool,
    /// The multishot poll of the `epoll` descriptor is armed.
    poll_armed: bool,
}

// SAFETY: the raw pointers in the operations point only into their own
// boxed buffers, which move with the ring; the ring is used by one thread
// at a time (the worker's, which also creates it: the ring is
// single-issuer). Between calls only multishot reads are in flight, and
// they write only into the provided buffers, owned by the ring and freed
// after they are unregistered.
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
        TickRing::with_entries(max, ENTRIES, PROVIDED_BUFFERS)
    }

    fn with_entries(max: usize, entries: u32, buffers: u16) -> io::Result<TickRing> {
        // Deferred task work: the kernel does the multishot reads when the
        // worker waits, and wakes it only when enough of them are due
        // ([`TickRing::wait`]). Older kernels get cooperative task work.
        // The completion queue has room for a datagram in every provided
        // buffer and more, so a worker held up never overflows it.
        let cq = (4 * u32::from(buffers)).max(2 * entries);
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(cq)
            .build(entries)
            .or_else(|_| {
                IoUring::builder()
                    .setup_single_issuer()
                    .setup_coop_taskrun()
                    .setup_cqsize(cq)
                    .build(entries)
            })?;
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
            waits: 0,
            send_errors: 0,
            bufs: None,
            arrivals: VecDeque::new(),
            poll_ready: false,
            poll_armed: false,
        };
        me.check()?;
        if let Err(e) = me.start_multishot(buffers) {
            tracing::debug!(cause = %e, "no multishot reads; bridged legs wake the poll");
            me.stop_multishot();
        }
        Ok(me)
    }

    /// Registers the provided buffers and checks a multishot read on a
    /// fresh socket of our own: a datagram sent to it arrives in a buffer
    /// with its source, and a cancel ends the read.
    fn start_multishot(&mut self, buffers: u16) -> io::Result<()> {
        let bufs = BufRing::new(buffers);
        // SAFETY: the ring memory lives in `bufs`, which the TickRing keeps
        // until it unregisters it (`stop_multishot`, `Drop`).
        unsafe {
            self.ring.submitter().register_buf_ring_with_flags(
                bufs.addr(),
                bufs.entries(),
                BUF_GROUP,
                0,
            )?;
        }
        self.bufs = Some(bufs);
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let to = socket.local_addr()?;
        let unexpected = |what: &str| io::Error::other(format!("io_uring multishot read {what}"));
        let target = Target(types::Fixed(0), socket.as_raw_fd(), false);
        self.clear()?;
        self.arm_multishot(0, target)?;
        self.submit()?;
        socket.send_to(b"switchboard", to)?;
        let mut got = None;
        for _ in 0..20 {
            self.wait(Some(Duration::from_millis(10)), Duration::ZERO)?;
            if let Some(a) = self.pop_arrival() {
                got = Some(a);
                break;
            }
        }
        let a = got.ok_or_else(|| unexpected("did not complete"))?;
        let ok = matches!(self.arrival(&a), Some((b"switchboard", Some(from))) if from == to);
        self.release(&a);
        if !ok || a.ended() {
            return Err(unexpected("did not return the datagram sent"));
        }
        self.cancel_multishot(0)?;
        let mut ended = false;
        for _ in 0..20 {
            self.wait(Some(Duration::from_millis(10)), Duration::ZERO)?;
            while let Some(a) = self.pop_arrival() {
                self.release(&a);
                ended |= a.ended();
            }
            if ended {
                break;
            }
        }
        self.publish_buffers();
        if !ended {
            return Err(unexpected("was not cancelled"));
        }
        Ok(())
    }

    /// Unregisters the provided buffers (multishot reads then fail).
    fn stop_multishot(&mut self) {
        if let Some(bufs) = self.bufs.take()
            && self
                .ring
                .submitter()
                .unregister_buf_ring(BUF_GROUP)
                .is_err()
        {
            // The kernel may still write into them: never free them.
            std::mem::forget(bufs);
        }
        self.arrivals.clear();
    }

    /// Multishot reads work here.
    pub fn multishot(&self) -> bool {
        self.bufs.is_some()
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

        self.clear()?;
        self.push_recv(0, target)?;
        self.submit_recvs_within(Duration::from_millis(200))?;
        if self.recv_result(0).map(|(_, r)| r.err()) != Some(Some(libc::EAGAIN)) {
            return Err(unexpected("read of an empty socket did not fail at once"));
        }
        self.clear()?;
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
        self.clear()?;
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

    /// Forgets the last operations' results, after submitting what is
    /// queued (relays waiting for the next [`TickRing::wait`]).
    pub fn clear(&mut self) -> io::Result<()> {
        self.flush()?;
        self.recv_len = 0;
        self.send_len = 0;
        self.send_errors = 0;
        Ok(())
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
        self.push(&entry)?;
        self.waits += 1;
        Ok(())
    }

    /// Queues a multishot read of `target` into the provided buffers; its
    /// datagrams arrive tagged `id` ([`TickRing::pop_arrival`]) until it
    /// ends or is cancelled.
    pub fn arm_multishot(&mut self, id: u64, target: Target) -> io::Result<()> {
        let Some(bufs) = &self.bufs else {
            return Err(io::Error::other("no provided buffers"));
        };
        let msg = bufs.msghdr();
        // No MSG_DONTWAIT: an empty socket keeps the read armed.
        let entry = match target {
            Target(fixed, _, true) => opcode::RecvMsgMulti::new(fixed, msg, BUF_GROUP),
            Target(_, fd, false) => opcode::RecvMsgMulti::new(types::Fd(fd), msg, BUF_GROUP),
        }
        .build()
        .user_data(MULTI_TAG | id);
        self.push(&entry)
    }

    /// Queues the cancellation of multishot read `id`; its last
    /// completion says it ended.
    pub fn cancel_multishot(&mut self, id: u64) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(MULTI_TAG | id)
            .build()
            .user_data(CANCEL_TAG);
        self.push(&entry)
    }

    /// Queues a multishot poll of `fd` (the worker's `epoll` descriptor)
    /// for readability ([`TickRing::take_poll_ready`]).
    pub fn arm_poll(&mut self, fd: RawFd) -> io::Result<()> {
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(POLL_TAG);
        self.push(&entry)?;
        self.poll_armed = true;
        Ok(())
    }

    /// The polled descriptor became readable since the last call.
    pub fn take_poll_ready(&mut self) -> bool {
        std::mem::take(&mut self.poll_ready)
    }

    /// The multishot poll is still armed (it ends if the kernel drops it).
    pub fn poll_armed(&self) -> bool {
        self.poll_armed
    }

    /// Submits what is queued and waits until a completion arrives or
    /// `timeout` passes (`None`: no limit; zero: no wait, but what the
    /// kernel has is collected). Within `timeout`, for up to `gather` the
    /// worker is woken only when [`GATHER_COMPLETIONS`] are due (where the
    /// kernel knows how): datagrams arriving close together are handled
    /// in one wake-up, each relay a little later. Returns how many sends
    /// failed.
    pub fn wait(&mut self, timeout: Option<Duration>, gather: Duration) -> io::Result<u64> {
        let mut timeout = timeout;
        if !self.arrivals.is_empty() || self.poll_ready {
            timeout = Some(Duration::ZERO);
        }
        let ts;
        let mut args;
        let done = match timeout {
            Some(d) => {
                ts = types::Timespec::from(d);
                args = types::SubmitArgs::new().timespec(&ts);
                let mut want = 1;
                let gather = gather.min(d);
                // Where the kernel takes a shortest wait.
                if self.ring.params().is_feature_min_timeout() && !gather.is_zero() {
                    args = args.min_wait_usec(gather.as_micros().max(1) as u32);
                    want = GATHER_COMPLETIONS;
                }
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match done {
            Ok(_) => {}
            // Timed out, interrupted, or the completion queue is full:
            // what is there gets reaped.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        self.queued = 0;
        self.waits = 0;
        self.send_len = 0;
        self.reap();
        Ok(std::mem::take(&mut self.send_errors))
    }

    /// The next multishot completion, oldest first.
    pub fn pop_arrival(&mut self) -> Option<Arrival> {
        if self.arrivals.is_empty() {
            // Whatever the kernel has posted since the last submission.
            self.reap();
        }
        self.arrivals.pop_front()
    }

    /// The datagram an arrival carries and its source; `None` for an
    /// error, an end without data or a datagram too long for a buffer.
    pub fn arrival(&self, a: &Arrival) -> Option<(&[u8], Option<SocketAddr>)> {
        let len = usize::try_from(a.result).ok()?;
        let bid = cqueue::buffer_select(a.flags)?;
        self.bufs.as_ref()?.datagram(bid, len)
    }

    /// Hands an arrival's buffer back ([`TickRing::publish_buffers`] makes
    /// it visible to the kernel).
    pub fn release(&mut self, a: &Arrival) {
        if let (Some(bid), Some(bufs)) = (cqueue::buffer_select(a.flags), self.bufs.as_mut()) {
            bufs.recycle(bid);
        }
    }

    pub fn publish_buffers(&self) {
        if let Some(bufs) = &self.bufs {
            bufs.publish();
        }
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
        let want = self.waits;
        let ts = types::Timespec::from(limit);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) => return Err(e),
        }
        self.queued = 0;
        self.waits = 0;
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
        .flags(squeue::Flags::SKIP_SUCCESS)
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

    /// Submits what is queued and reaps every completion (each completes
    /// within the submission).
    fn flush(&mut self) -> io::Result<()> {
        if self.queued == 0 {
            return Ok(());
        }
        let want = self.waits;
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.queued = 0;
        self.waits = 0;
        self.reap();
        Ok(())
    }

    /// Files the completions under their operations; returns how many.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion() {
            n += 1;
            let tag = cqe.user_data();
            if tag & SEND_TAG != 0 {
                if cqe.result() < 0 {
                    self.send_errors += 1;
                    tracing::trace!(errno = -cqe.result(), "media send failed");
                }
            } else if tag & MULTI_TAG != 0 {
                self.arrivals.push_back(Arrival {
                    id: tag & !MULTI_TAG,
                    result: cqe.result(),
                    flags: cqe.flags(),
                });
            } else if tag & POLL_TAG != 0 {
                self.poll_ready = true;
                if !cqueue::more(cqe.flags()) {
                    self.poll_armed = false;
                }
            } else if tag & CANCEL_TAG != 0 {
                // The cancelled read's own last completion tells.
            } else if let Some(op) = self.recvs.get_mut(tag as usize) {
                op.result = cqe.result();
            }
        }
        n
    }
}

impl Drop for TickRing {
    fn drop(&mut self) {
        // Before the buffers are freed: the kernel must not pick them.
        self.stop_multishot();
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
        ring_with(16)
    }

    fn ring_with(buffers: u16) -> Option<TickRing> {
        match TickRing::with_entries(2048, 16, buffers) {
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
        ring.clear().unwrap();
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
        ring.clear().unwrap();
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

    /// A ring with `buffers` provided buffers, where multishot reads work.
    fn multishot_ring(buffers: u16) -> Option<TickRing> {
        let ring = ring_with(buffers)?;
        if !ring.multishot() {
            eprintln!("skipped: no multishot reads on this kernel");
            return None;
        }
        Some(ring)
    }

    /// A leg's socket (non-blocking), the peer sending to it and its
    /// address.
    fn leg_and_peer() -> (UdpSocket, UdpSocket, SocketAddr) {
        let leg = UdpSocket::bind("127.0.0.1:0").unwrap();
        leg.set_nonblocking(true).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = leg.local_addr().unwrap();
        (leg, peer, to)
    }

    /// Every arrival until `n` datagrams came or a read ended, released
    /// as taken.
    fn arrivals(ring: &mut TickRing, n: usize) -> (Vec<(Vec<u8>, SocketAddr)>, Option<Arrival>) {
        let mut got = Vec::new();
        for _ in 0..50 {
            ring.wait(Some(Duration::from_millis(20)), Duration::ZERO)
                .unwrap();
            while let Some(a) = ring.pop_arrival() {
                if let Some((bytes, Some(src))) = ring.arrival(&a) {
                    got.push((bytes.to_vec(), src));
                }
                ring.release(&a);
                if a.ended() {
                    ring.publish_buffers();
                    return (got, Some(a));
                }
            }
            ring.publish_buffers();
            if got.len() >= n {
                break;
            }
        }
        (got, None)
    }

    /// A bridged leg's socket read by one multishot read: each datagram
    /// arrives in a provided buffer with its source, with no read request
    /// of its own; a cancel ends the read, and what comes after stays in
    /// the socket.
    #[test]
    fn a_multishot_read_brings_each_datagram_until_cancelled() {
        let Some(mut ring) = multishot_ring(16) else {
            return;
        };
        let (leg, peer, to) = leg_and_peer();
        let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
        ring.register(2, leg.as_raw_fd(), rtcp.as_raw_fd());
        let id = 7 << 32 | 2;
        ring.arm_multishot(id, ring.target(2, TransmitTo::Rtp, leg.as_raw_fd()))
            .unwrap();
        ring.wait(Some(Duration::ZERO), Duration::ZERO).unwrap();
        for i in 0..3u8 {
            peer.send_to(&[i; 172], to).unwrap();
        }
        let (got, ended) = arrivals(&mut ring, 3);
        assert!(ended.is_none(), "{ended:?}");
        let from = peer.local_addr().unwrap();
        assert_eq!(
            got,
            (0..3u8).map(|i| (vec![i; 172], from)).collect::<Vec<_>>()
        );

        ring.cancel_multishot(id).unwrap();
        let (got, ended) = arrivals(&mut ring, 0);
        assert!(got.is_empty());
        let ended = ended.expect("the cancelled read ends");
        assert_eq!(ended.id, id);
        assert_eq!(ended.error(), Some(libc::ECANCELED));
        peer.send_to(b"after", to).unwrap();
        let (got, _) = arrivals(&mut ring, 1);
        assert!(got.is_empty(), "nothing read after the cancel");
        let mut buf = [0u8; 16];
        assert_eq!(leg.recv_from(&mut buf).unwrap().0, 5);
        ring.unregister(2);
    }

    /// A multishot read that finds no free buffer ends with `ENOBUFS`
    /// and loses nothing: the datagrams wait in the socket, and a new read
    /// armed once buffers are back brings them.
    #[test]
    fn a_multishot_read_out_of_buffers_ends_and_a_new_one_reads_the_rest() {
        let Some(mut ring) = multishot_ring(4) else {
            return;
        };
        let (leg, peer, to) = leg_and_peer();
        for i in 0..10u8 {
            peer.send_to(&[i; 20], to).unwrap();
        }
        let target = ring.target(0, TransmitTo::Rtp, leg.as_raw_fd());
        ring.arm_multishot(1, target).unwrap();
        // Buffers are not handed back until the read has ended.
        let mut held = Vec::new();
        let mut ended = None;
        for _ in 0..50 {
            ring.wait(Some(Duration::from_millis(20)), Duration::ZERO)
                .unwrap();
            while let Some(a) = ring.pop_arrival() {
                held.push(a);
            }
            if let Some(a) = held.iter().find(|a| a.ended()) {
                ended = Some(*a);
                break;
            }
        }
        let ended = ended.expect("the read ends when the buffers run out");
        assert_eq!(ended.error(), Some(libc::ENOBUFS));
        let mut got: Vec<u8> = held
            .iter()
            .filter_map(|a| ring.arrival(a).map(|(bytes, _)| bytes[0]))
            .collect();
        assert_eq!(got, [0, 1, 2, 3]);
        for a in &held {
            ring.release(a);
        }
        ring.publish_buffers();
        ring.arm_multishot(2, target).unwrap();
        while got.len() < 10 {
            let (more, ended) = arrivals(&mut ring, 4);
            got.extend(more.iter().map(|(bytes, _)| bytes[0]));
            if let Some(a) = ended {
                assert_eq!(a.error(), Some(libc::ENOBUFS));
                ring.arm_multishot(3, target).unwrap();
            }
        }
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
    }
}
