//! Transport drivers (RFC 3261 §18): thin tokio tasks that move bytes
//! between sockets and the endpoint. UDP datagrams and TCP streams are
//! parsed here so the endpoint only sees whole messages; what cannot be
//! parsed is answered statelessly with 400/505 when the message allows it,
//! otherwise dropped and counted.

mod tcp;
mod udp;

pub use tcp::{TcpConnections, run_tcp};
pub use udp::run_udp;

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::message::{Limits, Message, parse_message};
use super::peer::{Peer, Transport};
use crate::metrics::Metrics;

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
    metrics: Arc<Metrics>,
}

impl TransportHandle {
    pub fn new(udp: Arc<UdpSocket>, tcp: TcpConnections, metrics: Arc<Metrics>) -> Self {
        TransportHandle { udp, tcp, metrics }
    }

    /// Sends one serialized message. Errors are logged and counted: a lost
    /// send is what transactions exist for.
    pub async fn send(&self, dest: Peer, bytes: Vec<u8>) {
        let result = match dest.transport {
            Transport::Udp => self.udp.send_to(&bytes, dest.addr).await.map(drop),
            Transport::Tcp => self.tcp.send(dest.addr, bytes).await,
        };
        match result {
            Ok(()) => Metrics::inc(&self.metrics.sip_messages_sent_total),
            Err(err) => {
                Metrics::inc(&self.metrics.sip_send_errors_total);
                tracing::debug!(peer = %dest.addr, cause = %err, "SIP send failed");
            }
        }
    }
}

/// Parses one message from `bytes`; a request that cannot be parsed but can
/// be answered gets its 400/505 through `reply`. Returns the message or None.
fn accept_bytes(
    bytes: &[u8],
    source: Peer,
    metrics: &Metrics,
    limits: &Limits,
) -> Result<Message, Option<Vec<u8>>> {
    match parse_message(bytes, limits) {
        Ok(message) => {
            Metrics::inc(&metrics.sip_messages_received_total);
            Ok(message)
        }
        Err(err) => {
            Metrics::inc(&metrics.sip_messages_malformed_total);
            tracing::debug!(peer = %source.addr, cause = %err, "malformed SIP message");
            let reply = err.response().map(|r| r.to_bytes());
            if reply.is_none() {
                Metrics::inc(&metrics.sip_messages_dropped_total);
            }
            Err(reply)
        }
    }
}

/// Sends inbound messages to the endpoint; a full queue drops (UDP semantics:
/// the sender retransmits) and counts.
fn forward(tx: &mpsc::Sender<Inbound>, inbound: Inbound, metrics: &Metrics) -> bool {
    match tx.try_send(inbound) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            Metrics::inc(&metrics.sip_messages_dropped_total);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
