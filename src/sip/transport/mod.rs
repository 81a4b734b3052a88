//! Transport drivers (RFC 3261 §18): thin tokio tasks that move bytes
//! between sockets and the endpoint. UDP datagrams and TCP streams are
//! parsed here so the endpoint only sees whole messages; what cannot be
//! parsed is answered statelessly with 400/505 when the message allows it,
//! otherwise dropped and counted.

mod stats;
mod tcp;
mod udp;

pub use stats::TransportStats;
pub use tcp::{TcpConnections, run_tcp};
pub use udp::run_udp;

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::message::{Limits, Message, parse_message};
use super::peer::{Peer, Transport};

/// One parsed message and where it came from.
#[derive(Debug)]
pub struct Inbound {
    pub message: Message,
    pub source: Peer,
}

/// Sends bytes to a peer on the transport it names. Cheap to clone.
#[derive(Clone)]
pub struct TransportHandle {
    udp: Arc<UdpSocket>,
    tcp: TcpConnections,
    stats: Arc<TransportStats>,
}

impl TransportHandle {
    pub fn new(udp: Arc<UdpSocket>, tcp: TcpConnections, stats: Arc<TransportStats>) -> Self {
        TransportHandle { udp, tcp, stats }
    }

    /// Sends one serialized message. Errors are logged and counted: a lost
    /// send is what transactions exist for.
    pub async fn send(&self, dest: Peer, bytes: Vec<u8>) {
        let result = match dest.transport {
            Transport::Udp => self.udp.send_to(&bytes, dest.addr).await.map(drop),
            Transport::Tcp => self.tcp.send(dest.addr, bytes).await,
        };
        match result {
            Ok(()) => self.stats.count_sent(),
            Err(err) => {
                self.stats.count_send_error();
                tracing::debug!(peer = %dest.addr, cause = %err, "SIP send failed");
            }
        }
    }

    pub fn stats(&self) -> &Arc<TransportStats> {
        &self.stats
    }
}

/// Parses one message from `bytes`; a request that cannot be parsed but can
/// be answered gets its 400/505 through `reply`. Returns the message or None.
fn accept_bytes(
    bytes: &[u8],
    source: Peer,
    stats: &TransportStats,
    limits: &Limits,
) -> Result<Message, Option<Vec<u8>>> {
    match parse_message(bytes, limits) {
        Ok(message) => {
            stats.count_received();
            Ok(message)
        }
        Err(err) => {
            stats.count_malformed();
            tracing::debug!(peer = %source.addr, cause = %err, "malformed SIP message");
            Err(err.response().map(|r| r.to_bytes()))
        }
    }
}

/// Sends inbound messages to the endpoint; a full queue drops (UDP semantics:
/// the sender retransmits) and counts.
fn forward(tx: &mpsc::Sender<Inbound>, inbound: Inbound, stats: &TransportStats) -> bool {
    match tx.try_send(inbound) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            stats.count_overload();
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
