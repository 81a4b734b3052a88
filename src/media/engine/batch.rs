//! Batched datagram reception for the media worker: one `recvmmsg`
//! (Linux) takes every datagram queued on a socket, up to [`BATCH`], with
//! each one's source address (needed for symmetric RTP).
//!
//! It also saves the second syscall of each readiness event: the poll is
//! edge-triggered, so a socket must be read until it is empty, and with
//! `recvfrom` that takes one more call that fails with `EWOULDBLOCK`. A
//! batch shorter than asked for means the queue was empty at the time of
//! the call; a datagram arriving later raises a new event. Elsewhere the
//! batch holds one datagram from `recv_from` and the worker reads on until
//! `EWOULDBLOCK`.
//!
//! Sending has no such batch: each frame leaves from its own leg's socket,
//! and `sendmmsg` batches datagrams of one socket.

use std::io;
use std::net::SocketAddr;

/// Datagrams taken by one call.
pub(crate) const BATCH: usize = 16;

/// Buffers for one batch of datagrams and what the kernel said of each.
pub(crate) struct RecvBatch {
    bufs: Vec<u8>,
    max: usize,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    count: usize,
}

impl RecvBatch {
    /// Room for [`BATCH`] datagrams of up to `max` bytes (longer ones are
    /// truncated).
    pub fn new(max: usize) -> RecvBatch {
        RecvBatch {
            bufs: vec![0; BATCH * max],
            max,
            lens: [0; BATCH],
            from: [None; BATCH],
            count: 0,
        }
    }

    /// Datagrams in the last batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Datagram `i` of the last batch and its source (none when the kernel
    /// gave no address it could read).
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        if i >= self.count {
            return None;
        }
        let start = i * self.max;
        let len = self.lens[i].min(self.max);
        Some((self.bufs.get(start..start + len)?, self.from[i]))
    }

    /// Reads what is queued on `socket` (non-blocking). Returns whether the
    /// queue is known to be empty now (no need to read again before the
    /// next readiness event). `EWOULDBLOCK` when nothing was queued.
    pub fn recv(&mut self, socket: &mio::net::UdpSocket) -> io::Result<bool> {
        self.count = 0;
        sys::recv(self, socket)
    }
}

#[cfg(target_os = "linux")]
pub(crate) use sys::socket_addr;

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::MaybeUninit;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use super::{BATCH, RecvBatch};

    pub fn recv(batch: &mut RecvBatch, socket: &mio::net::UdpSocket) -> io::Result<bool> {
        let max = batch.max;
        // SAFETY: sockaddr_storage and mmsghdr are plain old data; all-zero
        // is a valid value of each.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs = [MaybeUninit::<libc::iovec>::uninit(); BATCH];
        for (i, chunk) in batch.bufs.chunks_exact_mut(max).take(BATCH).enumerate() {
            iovs[i].write(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            });
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&raw mut names[i]).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = iovs[i].as_mut_ptr();
            hdr.msg_iovlen = 1;
        }
        // SAFETY: every mmsghdr points at a live sockaddr_storage and one
        // iovec (initialized just above) over a distinct `max`-byte chunk
        // of `batch.bufs`; the kernel writes within the stated lengths.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0).min(BATCH);
        for i in 0..n {
            batch.lens[i] = msgs[i].msg_len as usize;
            batch.from[i] = socket_addr(&names[i]);
        }
        batch.count = n;
        Ok(n < BATCH)
    }

    /// The address the kernel wrote into a `sockaddr_storage`.
    pub(crate) fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // which is smaller than sockaddr_storage.
                let a: libc::sockaddr_in =
                    unsafe { std::ptr::read_unaligned((&raw const *storage).cast()) };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let a: libc::sockaddr_in6 =
                    unsafe { std::ptr::read_unaligned((&raw const *storage).cast()) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    use super::RecvBatch;

    pub fn recv(batch: &mut RecvBatch, socket: &mio::net::UdpSocket) -> io::Result<bool> {
        let max = batch.max;
        let (len, from) = socket.recv_from(&mut batch.bufs[..max])?;
        batch.lens[0] = len;
        batch.from[0] = Some(from);
        batch.count = 1;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three queued datagrams come in one batch with their sources; the
    /// batch says the queue is empty, and the next read would block.
    #[test]
    fn one_call_takes_every_queued_datagram() {
        let rx = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = rx.local_addr().unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"one", to).unwrap();
        b.send_to(b"two!", to).unwrap();
        a.send_to(&[7u8; 3000], to).unwrap();
        let mut batch = RecvBatch::new(2048);
        let mut got = Vec::new();
        loop {
            let drained = batch.recv(&rx).unwrap();
            for i in 0..batch.len() {
                let (bytes, from) = batch.get(i).unwrap();
                got.push((bytes.len(), bytes.first().copied(), from));
            }
            if drained {
                break;
            }
        }
        assert_eq!(
            got,
            vec![
                (3, Some(b'o'), Some(a.local_addr().unwrap())),
                (4, Some(b't'), Some(b.local_addr().unwrap())),
                // Truncated to the buffer.
                (2048, Some(7), Some(a.local_addr().unwrap())),
            ]
        );
        assert!(batch.get(batch.len()).is_none());
        let err = batch.recv(&rx).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.len(), 0);
    }
}
