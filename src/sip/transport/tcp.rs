//! The TCP driver (RFC 3261 §18.3): one task per connection, framing by
//! Content-Length, and a table of open connections so responses and later
//! requests to the same address reuse them (§18.2.2).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Inbound, accept_bytes, forward};
use crate::metrics::Metrics;
use crate::sip::message::{Frame, Limits, MAX_MESSAGE_BYTES, frame_stream};
use crate::sip::peer::{Peer, Transport};

/// Most simultaneous TCP connections; more are refused at accept.
const MAX_CONNECTIONS: usize = 20_000;
/// Messages queued for one connection's writer before sends fail.
const WRITE_QUEUE: usize = 256;

struct Entry {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
}

/// Open connections by remote address.
#[derive(Clone)]
pub struct TcpConnections {
    inner: Arc<Inner>,
}

struct Inner {
    map: Mutex<HashMap<SocketAddr, Entry>>,
    next_id: AtomicU64,
    to_endpoint: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
}

impl TcpConnections {
    pub fn new(to_endpoint: mpsc::Sender<Inbound>, metrics: Arc<Metrics>) -> Self {
        TcpConnections {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                to_endpoint,
                metrics,
            }),
        }
    }

    fn lookup(&self, addr: SocketAddr) -> Option<mpsc::Sender<Vec<u8>>> {
        let map = self.inner.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&addr).map(|e| e.tx.clone())
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.inner
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends on the open connection to `addr`, opening one when none exists.
    pub async fn send(&self, addr: SocketAddr, bytes: Vec<u8>) -> io::Result<()> {
        let tx = match self.lookup(addr) {
            Some(tx) => tx,
            None => {
                let stream = TcpStream::connect(addr).await?;
                self.adopt(stream, addr)
            }
        };
        tx.send(bytes)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection closed"))
    }

    /// Registers a connection and starts its reader and writer.
    fn adopt(&self, stream: TcpStream, addr: SocketAddr) -> mpsc::Sender<Vec<u8>> {
        let _ = stream.set_nodelay(true);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        {
            let mut map = self.inner.map.lock().unwrap_or_else(|p| p.into_inner());
            map.insert(addr, Entry { id, tx: tx.clone() });
        }
        Metrics::inc(&self.inner.metrics.sip_tcp_connections_total);
        let conns = self.clone();
        let reply = tx.clone();
        tokio::spawn(async move {
            let (read, write) = stream.into_split();
            let writer = tokio::spawn(write_loop(write, rx));
            read_loop(
                read,
                addr,
                &conns.inner.to_endpoint,
                &conns.inner.metrics,
                &reply,
            )
            .await;
            conns.forget(addr, id);
            drop(reply);
            writer.abort();
        });
        tx
    }

    fn forget(&self, addr: SocketAddr, id: u64) {
        let mut map = self.inner.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&addr).is_some_and(|e| e.id == id) {
            map.remove(&addr);
        }
    }
}

/// Accepts connections until the listener fails for good.
pub async fn run_tcp(listener: TcpListener, conns: TcpConnections) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if conns.len() >= MAX_CONNECTIONS {
                    tracing::warn!("TCP connection limit reached; refusing");
                    continue;
                }
                conns.adopt(stream, addr);
            }
            Err(err) => {
                tracing::debug!(cause = %err, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn write_loop(mut write: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = rx.recv().await {
        if let Err(err) = write.write_all(&bytes).await {
            tracing::debug!(cause = %err, "TCP write failed");
            return;
        }
    }
}

/// Reads, frames and parses until EOF or a framing error (which closes the
/// connection: the stream can no longer be trusted, RFC 4475 §3.1.2.3).
async fn read_loop(
    mut read: tokio::net::tcp::OwnedReadHalf,
    addr: SocketAddr,
    to_endpoint: &mpsc::Sender<Inbound>,
    metrics: &Metrics,
    reply: &mpsc::Sender<Vec<u8>>,
) {
    let limits = Limits::default();
    let source = Peer {
        transport: Transport::Tcp,
        addr,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Take every whole frame already buffered.
        loop {
            match frame_stream(&buf, MAX_MESSAGE_BYTES) {
                Ok(None) => break,
                Ok(Some(Frame::KeepAlive { len })) => {
                    // RFC 5626 §3.5.1: a CRLFCRLF ping is answered with CRLF.
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = reply.try_send(b"\r\n".to_vec());
                    }
                    buf.drain(..len);
                }
                Ok(Some(Frame::Message { len })) => {
                    let outcome = accept_bytes(&buf[..len], source, metrics, &limits);
                    buf.drain(..len);
                    match outcome {
                        Ok(message) => {
                            if !forward(to_endpoint, Inbound { message, source }, metrics) {
                                return;
                            }
                        }
                        Err(Some(bytes)) => {
                            let _ = reply.try_send(bytes);
                        }
                        Err(None) => {}
                    }
                }
                Err(err) => {
                    tracing::debug!(peer = %addr, cause = %err, "TCP framing lost; closing");
                    return;
                }
            }
        }
        match read.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
