//! RTP and RTCP (RFC 3550) for the switch's audio legs (DESIGN §4).
//!
//! Everything here is sans-IO: [`packet`] reads and writes RTP headers in
//! caller-owned buffers without allocating, [`sender`] numbers one outgoing
//! stream, [`receiver`] keeps the statistics of one incoming stream, and
//! [`rtcp`] builds and reads the sender and receiver reports. Time is an
//! input: RTP timestamps, NTP timestamps and `Instant`s are passed in.

pub mod packet;
pub mod receiver;
pub mod rtcp;
pub mod sender;

pub use packet::{RTP_HEADER_LEN, RtpError, RtpHeader, RtpPacket};
pub use receiver::RtpReceiverStats;
pub use rtcp::{
    NtpTime, ReceiverReport, ReportBlock, RtcpError, RtcpPacket, SenderInfo, SenderReport,
};
pub use sender::RtpSender;
