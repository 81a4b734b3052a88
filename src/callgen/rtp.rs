//! The generator's media side: the 20 ms G.711 frames it sends (a tone or
//! silence, RFC 3551 §4.5.14), RTP sockets bound in a port range, and
//! datagram reception with the kernel's arrival timestamp.
//!
//! Arrival times come from the kernel (`SO_TIMESTAMPNS`, Linux) when it
//! gives them: the time the datagram reached the socket, which on loopback
//! is within microseconds of the switch's `send`. The generator's own
//! scheduling (thousands of sockets drained per wake-up) then does not show
//! in the measured deviation. Elsewhere, or if the kernel refuses, the time
//! of the `recv` is used.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::media::g711;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Frames in one second: the tone table repeats every second.
const FRAMES_PER_SECOND: usize = 50;
/// Frequency of the generated tone; a whole number of cycles per second,
/// so the one-second table loops without a click.
pub const TONE_HZ: f64 = 440.0;

/// Which G.711 law a call offers (RFC 3551 §4.5.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    /// The static payload type (RFC 3551 §6).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => g711::ulaw_encode(sample),
            Codec::Pcma => g711::alaw_encode(sample),
        }
    }

    /// Decodes one G.711 byte of this law.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_decode(code),
            Codec::Pcma => g711::alaw_decode(code),
        }
    }
}

/// What the generated calls send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendAudio {
    /// A 440 Hz tone at about −10 dBm0.
    Tone,
    /// Digital silence.
    Silence,
}

/// One second of encoded audio as 50 frames, shared by every call.
#[derive(Debug, Clone)]
pub struct AudioFrames {
    frames: Vec<[u8; FRAME_SAMPLES]>,
}

impl AudioFrames {
    pub fn new(codec: Codec, audio: SendAudio) -> AudioFrames {
        let frames = (0..FRAMES_PER_SECOND)
            .map(|f| {
                let mut frame = [0u8; FRAME_SAMPLES];
                for (i, out) in frame.iter_mut().enumerate() {
                    let n = (f * FRAME_SAMPLES + i) as f64;
                    let sample = match audio {
                        SendAudio::Tone => {
                            (n * TONE_HZ * std::f64::consts::TAU / 8000.0).sin() * 8000.0
                        }
                        SendAudio::Silence => 0.0,
                    };
                    *out = codec.encode(sample as i16);
                }
                frame
            })
            .collect();
        AudioFrames { frames }
    }

    /// The payload of frame number `n` of a call.
    pub fn frame(&self, n: u64) -> &[u8; FRAME_SAMPLES] {
        &self.frames[(n % FRAMES_PER_SECOND as u64) as usize]
    }
}

/// Hands out even RTP ports of a range to the workers (RFC 3550 §11: RTP
/// on even ports, the odd one above left for RTCP, which the generator
/// does not use).
#[derive(Debug)]
pub struct PortRange {
    start: u16,
    end: u16,
    next: AtomicU32,
}

/// Why no RTP socket could be bound.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("no free even port left in the RTP range {start}-{end}")]
    Exhausted { start: u16, end: u16 },
    #[error("bind RTP socket: {0}")]
    Bind(#[source] io::Error),
}

impl PortRange {
    pub fn new(start: u16, end: u16) -> PortRange {
        let start = start + start % 2;
        PortRange {
            start,
            end,
            next: AtomicU32::new(u32::from(start)),
        }
    }

    /// Binds a non-blocking UDP socket on the next free even port.
    pub fn bind(&self, ip: IpAddr) -> Result<mio::net::UdpSocket, PortError> {
        loop {
            let port = self.next.fetch_add(2, Ordering::Relaxed);
            let Ok(port) = u16::try_from(port) else {
                return Err(self.exhausted());
            };
            if port > self.end {
                return Err(self.exhausted());
            }
            match mio::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(sock) => return Ok(sock),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(PortError::Bind(e)),
            }
        }
    }

    fn exhausted(&self) -> PortError {
        PortError::Exhausted {
            start: self.start,
            end: self.end,
        }
    }
}

/// Bytes of a send-time tag at the start of a payload.
pub const TAG_LEN: usize = 12;
/// First bytes of a tagged payload ("cg" and a version).
const TAG_MAGIC: [u8; 4] = *b"cgT1";

/// Writes a send-time tag over the first [`TAG_LEN`] bytes of `payload`:
/// a marker, then `sent_ns` (realtime, big-endian). In a bridged run both
/// ends live in one process, so the far end reads the tag back and knows
/// the packet's delay through the switch on one clock. The switch relays
/// the payload unchanged between legs of one codec (a tag costs 1.5 ms of
/// noise in the audio). Does nothing to a payload shorter than a tag.
pub fn write_tag(payload: &mut [u8], sent_ns: i64) {
    if let Some(tag) = payload.get_mut(..TAG_LEN) {
        tag[..4].copy_from_slice(&TAG_MAGIC);
        tag[4..].copy_from_slice(&sent_ns.to_be_bytes());
    }
}

/// The send time of a tagged payload ([`write_tag`]).
pub fn read_tag(payload: &[u8]) -> Option<i64> {
    let tag = payload.get(..TAG_LEN)?;
    if tag[..4] != TAG_MAGIC {
        return None;
    }
    let sent: [u8; 8] = tag[4..].try_into().ok()?;
    Some(i64::from_be_bytes(sent))
}

/// Nanoseconds since the Unix epoch on the realtime clock, the clock of
/// kernel receive timestamps.
pub fn realtime_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Asks the kernel to timestamp datagrams arriving on `sock`; false if it
/// cannot (then [`recv_timestamped`] uses the time of the read).
pub fn enable_timestamps(sock: &mio::net::UdpSocket) -> bool {
    sys::enable_timestamps(sock)
}

/// Reads one datagram: its length, source and arrival time (ns on the
/// realtime clock).
pub fn recv_timestamped(sock: &mio::net::UdpSocket, buf: &mut [u8]) -> io::Result<(usize, i64)> {
    sys::recv_timestamped(sock, buf)
}

#[cfg(target_os = "linux")]
mod sys {
    //! `SO_TIMESTAMPNS` and `recvmsg` through `libc`; the unsafe is the
    //! two syscalls and the control-message walk, each with its reason.

    use std::io;
    use std::os::fd::AsRawFd;

    pub fn enable_timestamps(sock: &mio::net::UdpSocket) -> bool {
        let on: libc::c_int = 1;
        // SAFETY: a valid fd, a pointer to a live c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    pub fn recv_timestamped(
        sock: &mio::net::UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, i64)> {
        // Room for one control message holding a timespec (CMSG_SPACE of
        // 16 bytes is 32 on 64-bit, 28 on 32-bit), aligned for cmsghdr.
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is a valid empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: msg points at live buffers of the lengths it states; the
        // kernel writes at most those lengths.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = usize::try_from(n).unwrap_or(0);
        // SAFETY: the CMSG_* macros walk the control buffer the kernel
        // just filled, within `msg_controllen`; a timestamp's data is a
        // timespec, read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    let ns = i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_nsec);
                    return Ok((len, ns));
                }
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        Ok((len, super::realtime_ns()))
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    pub fn enable_timestamps(_: &mio::net::UdpSocket) -> bool {
        false
    }

    pub fn recv_timestamped(
        sock: &mio::net::UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, i64)> {
        let (n, _) = sock.recv_from(buf)?;
        Ok((n, super::realtime_ns()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tone table loops: frame 50 is frame 0, and it decodes to a
    /// 440 Hz sine (sample 0 is zero, a quarter period later the peak).
    #[test]
    fn tone_frames_loop_and_decode() {
        let frames = AudioFrames::new(Codec::Pcmu, SendAudio::Tone);
        assert_eq!(frames.frame(0), frames.frame(50));
        let f = frames.frame(0);
        assert!(Codec::Pcmu.decode(f[0]).abs() < 50);
        // 8000 / 440 / 4 ≈ 4.5 samples to the first peak.
        assert!(Codec::Pcmu.decode(f[4]) > 7000 && Codec::Pcmu.decode(f[5]) > 7000);
        let silence = AudioFrames::new(Codec::Pcma, SendAudio::Silence);
        assert!(
            silence
                .frame(3)
                .iter()
                .all(|&b| Codec::Pcma.decode(b).abs() < 16)
        );
    }

    /// Kernel timestamps arrive with the datagram and lie between the send
    /// and the read.
    #[test]
    fn kernel_timestamp_between_send_and_read() {
        let rx = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let stamped = enable_timestamps(&rx);
        // The kernel turns timestamping on a moment later (a deferred
        // static key); until then it stamps at the read.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = realtime_ns();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = [0u8; 64];
        let (n, at) = recv_timestamped(&rx, &mut buf).unwrap();
        let after = realtime_ns();
        assert_eq!(&buf[..n], b"hello");
        assert!(
            at >= before - 1_000_000 && at <= after,
            "{before} {at} {after}"
        );
        if stamped {
            // Stamped on arrival, not 20 ms later at the read.
            assert!(after - at > 15_000_000, "{}", after - at);
        }
    }

    /// A tag reads back; a payload without one (a prompt, a transcoded
    /// frame) or too short gives none.
    #[test]
    fn send_time_tag_round_trips() {
        let mut frame = *AudioFrames::new(Codec::Pcmu, SendAudio::Tone).frame(7);
        assert_eq!(read_tag(&frame), None);
        write_tag(&mut frame, 1_764_000_000_123_456_789);
        assert_eq!(read_tag(&frame), Some(1_764_000_000_123_456_789));
        assert_eq!(read_tag(&frame[..TAG_LEN - 1]), None);
        let mut short = [0u8; 4];
        write_tag(&mut short, 5);
        assert_eq!(short, [0; 4]);
    }

    #[test]
    fn ports_are_even_and_bounded() {
        let range = PortRange::new(41001, 41005);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = range.bind(ip);
        let b = range.bind(ip);
        let c = range.bind(ip);
        for s in [&a, &b].into_iter().flatten() {
            assert_eq!(s.local_addr().unwrap().port() % 2, 0);
        }
        assert!(matches!(c, Err(PortError::Exhausted { .. })) || a.is_err() || b.is_err());
    }
}
