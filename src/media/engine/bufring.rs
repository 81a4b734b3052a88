//! Provided buffers for the media worker's multishot reads (Linux
//! `io_uring` buffer ring): the kernel picks a buffer for each datagram a
//! bridged leg's socket receives and names it in the completion, so a
//! socket is read without a read request of its own per datagram. The
//! worker hands each buffer back once the datagram is relayed
//! ([`BufRing::recycle`], [`BufRing::publish`]).
//!
//! A buffer holds the kernel's `io_uring_recvmsg_out` header, the source
//! address (room for an IPv6 one) and the datagram.

use std::alloc::{self, Layout};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{BufRingEntry, RecvMsgOut};

use super::batch::socket_addr;

/// Bytes per buffer: the header (16), the address (28) and a datagram of
/// up to 2,004 bytes; a longer one is truncated and dropped.
pub(crate) const BUF_LEN: usize = 2048;

/// A registered buffer ring and the buffers it hands out.
pub(crate) struct BufRing {
    /// `entries` ring entries, page aligned, shared with the kernel.
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    bufs: Box<[u8]>,
    entries: u16,
    /// The next entry we fill (the kernel consumes up to it).
    tail: u16,
    /// The `msghdr` every multishot read is armed with: it sizes the
    /// address field of each buffer.
    msg: Box<libc::msghdr>,
}

// SAFETY: the ring memory is owned by this value and only touched by the
// thread that owns it (and the kernel, which synchronises on the tail).
unsafe impl Send for BufRing {}

impl BufRing {
    /// `entries` (a power of two, at most 32,768) buffers, all handed to
    /// the kernel once registered.
    pub fn new(entries: u16) -> BufRing {
        debug_assert!(entries.is_power_of_two());
        let size = usize::from(entries) * size_of::<BufRingEntry>();
        let ring_layout = Layout::from_size_align(size.max(4096), 4096)
            .expect("a page-aligned layout of a few pages is valid");
        // SAFETY: the layout has a non-zero size.
        let ring = unsafe { alloc::alloc_zeroed(ring_layout) }.cast::<BufRingEntry>();
        if ring.is_null() {
            alloc::handle_alloc_error(ring_layout);
        }
        // SAFETY: plain old data; all-zero is a valid value.
        let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let mut me = BufRing {
            ring,
            ring_layout,
            bufs: vec![0; usize::from(entries) * BUF_LEN].into_boxed_slice(),
            entries,
            tail: 0,
            msg,
        };
        for bid in 0..entries {
            me.recycle(bid);
        }
        me.publish();
        me
    }

    /// The ring's address, for registration.
    pub fn addr(&self) -> u64 {
        self.ring as u64
    }

    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// The `msghdr` multishot reads are armed with.
    pub fn msghdr(&self) -> *const libc::msghdr {
        &raw const *self.msg
    }

    /// Queues buffer `bid` for the kernel again (seen once published).
    pub fn recycle(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: index < entries, inside the allocation.
        let entry = unsafe { &mut *self.ring.add(index) };
        let start = usize::from(bid) * BUF_LEN;
        entry.set_addr(self.bufs[start..].as_ptr() as u64);
        entry.set_len(BUF_LEN as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the recycled buffers visible to the kernel.
    pub fn publish(&self) {
        // SAFETY: the ring holds at least one initialised entry; the tail
        // field overlays the first entry's reserved field, which only this
        // store writes, and the kernel reads it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.ring).cast_mut().cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// The datagram in buffer `bid`, `len` bytes of which the kernel
    /// wrote, with its source. `None` when the buffer is malformed or the
    /// datagram did not fit.
    pub fn datagram(&self, bid: u16, len: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        let start = usize::from(bid).checked_mul(BUF_LEN)?;
        let buf = self.bufs.get(start..start + len.min(BUF_LEN))?;
        let out = RecvMsgOut::parse(buf, &self.msg).ok()?;
        if out.is_payload_truncated() {
            return None;
        }
        // SAFETY: plain old data; all-zero is a valid value.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let name_data = out.name_data();
        let n = name_data.len().min(size_of::<libc::sockaddr_storage>());
        // SAFETY: n fits both the storage and the name data.
        unsafe {
            std::ptr::copy_nonoverlapping(name_data.as_ptr(), (&raw mut name).cast::<u8>(), n);
        }
        let payload = out.payload_data();
        // The payload as a part of `buf` (the parse borrows it from there).
        let at = (payload.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
        Some((buf.get(at..at + payload.len())?, socket_addr(&name)))
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. The owner
        // unregisters the ring from the kernel before dropping it.
        unsafe { alloc::dealloc(self.ring.cast(), self.ring_layout) };
    }
}
