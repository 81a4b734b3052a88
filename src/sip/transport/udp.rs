//! The UDP driver: one socket, one receive loop.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Inbound, accept_bytes, forward};
use crate::metrics::Metrics;
use crate::sip::message::{Limits, MAX_MESSAGE_BYTES};
use crate::sip::peer::{Peer, Transport};

/// Receives datagrams until the endpoint goes away. A datagram is one
/// message (§18.3: trailing bytes after the body are ignored by the parser).
pub async fn run_udp(
    socket: Arc<UdpSocket>,
    to_endpoint: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
) {
    let limits = Limits::default();
    // One byte more than the limit, so an oversized datagram is seen as such.
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
    loop {
        let (len, addr) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(err) => {
                // ICMP port unreachable surfaces here on some systems; keep going.
                tracing::trace!(cause = %err, "UDP receive error");
                continue;
            }
        };
        let source = Peer {
            transport: Transport::Udp,
            addr,
        };
        let bytes = &buf[..len];
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue; // keep-alive (RFC 5626 §4.4.1)
        }
        match accept_bytes(bytes, source, &metrics, &limits) {
            Ok(message) => {
                if !forward(&to_endpoint, Inbound { message, source }, &metrics) {
                    return;
                }
            }
            Err(Some(reply)) => {
                if let Err(err) = socket.send_to(&reply, addr).await {
                    tracing::debug!(cause = %err, "could not send 400");
                }
            }
            Err(None) => {}
        }
    }
}
