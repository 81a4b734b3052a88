//! Switchboard: a cloud telephony and IVR switch.
//!
//! [`run`] is the whole switch: the caller binds the [`Sockets`] and owns
//! the shutdown signal, so tests run it on `127.0.0.1:0` and stop it at will.

pub mod acd;
pub mod api;
pub mod call;
pub mod callgen;
pub mod config;
pub mod events;
pub mod ivr;
pub mod media;
pub mod metrics;
pub mod sip;
pub mod store;
pub mod thread;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::{AdminAuth, AppState};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// The `meta` key holding the SHA-256 of a generated admin token.
pub const ADMIN_TOKEN_META_KEY: &str = "admin_token_sha256";

/// How long in-flight HTTP requests may take to finish after shutdown.
const HTTP_GRACE: Duration = Duration::from_secs(5);

/// Parsed SIP messages waiting for the endpoint; more are dropped (the
/// sender retransmits).
const SIP_INBOUND_QUEUE: usize = 8192;

/// How long calls may take to end (BYE and its answer) after shutdown begins.
const SIP_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often to retry when port 0 gave a UDP port whose TCP twin is taken.
const SIP_BIND_ATTEMPTS: usize = 16;

/// The switch's listening sockets, bound before [`run`].
#[derive(Debug)]
pub struct Sockets {
    pub sip_udp: UdpSocket,
    pub sip_tcp: TcpListener,
    pub http: TcpListener,
}

impl Sockets {
    /// Binds SIP over UDP and TCP on the same port of `sip_listen` and the
    /// HTTP listener. With port 0, UDP picks the port and TCP follows it,
    /// retrying with a new port if TCP's is taken.
    pub async fn bind(config: &Config) -> io::Result<Sockets> {
        let (sip_udp, sip_tcp) = bind_sip(config.sip_listen).await?;
        let http = TcpListener::bind(config.http_listen).await?;
        Ok(Sockets {
            sip_udp,
            sip_tcp,
            http,
        })
    }

    /// The bound SIP address (UDP and TCP share it).
    pub fn sip_addr(&self) -> io::Result<SocketAddr> {
        self.sip_udp.local_addr()
    }

    pub fn http_addr(&self) -> io::Result<SocketAddr> {
        self.http.local_addr()
    }
}

async fn bind_sip(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        return Ok((udp, tcp));
    }
    let mut last_err = None;
    for _ in 0..SIP_BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await?;
        let port_addr = udp.local_addr()?;
        match TcpListener::bind(port_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// Why the switch stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read a bound socket address: {0}")]
    LocalAddr(#[source] io::Error),
    #[error("HTTP server failed: {0}")]
    Http(#[source] io::Error),
    #[error("HTTP server task ended abnormally: {0}")]
    HttpTask(#[from] tokio::task::JoinError),
    #[error("flows folder {}:\n{}", .dir.display(), .problems.join("\n"))]
    Flows {
        dir: std::path::PathBuf,
        problems: Vec<String>,
    },
    #[error("media engine: {0}")]
    Media(#[source] media::engine::EngineError),
    #[error("webhook client: {0}")]
    Webhooks(#[source] ivr::webhook::WebhookError),
    #[error("RTP port range: {0}")]
    Ports(#[from] media::port_pool::PortPoolError),
}

/// The running SIP side: endpoint and transport tasks.
struct SipTasks {
    endpoint: tokio::task::JoinHandle<()>,
    transports: Vec<tokio::task::JoinHandle<()>>,
}

impl SipTasks {
    /// Waits for the endpoint to end its calls (it watches the stop
    /// signal), then stops the transports.
    async fn stop(self) {
        if let Err(err) = self.endpoint.await {
            warn!(cause = %err, "SIP endpoint task ended abnormally");
        }
        for t in self.transports {
            t.abort();
        }
    }
}

/// Starts the SIP transports and endpoint on the bound sockets.
fn start_sip(
    state: &AppState,
    sip_udp: UdpSocket,
    sip_tcp: TcpListener,
    sip_addr: SocketAddr,
    http_base: String,
    mut stop: watch::Receiver<bool>,
) -> Result<SipTasks, RunError> {
    use crate::sip::endpoint::{Endpoint, EndpointConfig, run_endpoint};
    use crate::sip::transport::{TcpConnections, TransportHandle, run_tcp, run_udp};

    let config = &state.config;
    let ports = media::port_pool::PortPool::new(config.rtp_ports.start..=config.rtp_ports.end)?;
    let advertised = SocketAddr::new(config.public_ip, sip_addr.port());
    let presence = state.acd.presence();
    let services = Arc::new(call::CallServices {
        advertised,
        media_ip: config.public_ip,
        bind_ip: sip_addr.ip(),
        ports,
        engine: media::engine::MediaEngine::start(media::engine::EngineConfig {
            nice: (config.media_nice != 0).then_some(config.media_nice),
            ..media::engine::EngineConfig::default()
        })
        .map_err(RunError::Media)?,
        recordings: config.recordings.clone(),
        webhooks: ivr::webhook::WebhookClient::new().map_err(RunError::Webhooks)?,
        store: state.store.clone(),
        acd: state.acd.clone(),
        events: state.events.clone(),
        active: state.calls.clone(),
        http_base,
    });
    let (inbound_tx, inbound_rx) = tokio::sync::mpsc::channel(SIP_INBOUND_QUEUE);
    let udp = Arc::new(sip_udp);
    let tcp = TcpConnections::new(inbound_tx.clone(), state.metrics.clone());
    let transports = vec![
        tokio::spawn(run_udp(udp.clone(), inbound_tx, state.metrics.clone())),
        tokio::spawn(run_tcp(sip_tcp, tcp.clone())),
    ];
    let transport = TransportHandle::new(udp, tcp, state.metrics.clone());
    let endpoint = Arc::new(Endpoint {
        config: EndpointConfig {
            advertised,
            domain: config.domain.clone(),
            shutdown_grace: SIP_SHUTDOWN_GRACE,
            digest_algorithms: config.digest_algorithms.clone(),
            trusted_peers: config.trusted_peers.clone(),
        },
        flows: state.flows.handle().clone(),
        services,
        store: state.store.clone(),
        presence: Some(presence),
    });
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let endpoint = tokio::spawn(run_endpoint(endpoint, transport, inbound_rx, stopped));
    Ok(SipTasks {
        endpoint,
        transports,
    })
}

/// The switch's HTTP address as agents reach it, for screen-pop links
/// (`Call-Info`): the listening address when it names one interface, else
/// the public IP, with the bound port.
fn http_base(public_ip: std::net::IpAddr, http: SocketAddr) -> String {
    let ip = if http.ip().is_unspecified() {
        public_ip
    } else {
        http.ip()
    };
    format!("http://{}", SocketAddr::new(ip, http.port()))
}

/// Runs the switch on bound `sockets` until `shutdown` completes, then stops
/// accepting, lets in-flight work finish (bounded) and returns.
pub async fn run(
    config: Config,
    sockets: Sockets,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let admin = admin_auth(&config, &store).await?;
    let flows = ivr::reload::FlowReloader::load(&config.flows, &config.sounds).map_err(|d| {
        RunError::Flows {
            dir: config.flows.clone(),
            problems: d.iter().map(ToString::to_string).collect(),
        }
    })?;

    let sip_addr = sockets.sip_addr().map_err(RunError::LocalAddr)?;
    let http_addr = sockets.http_addr().map_err(RunError::LocalAddr)?;
    let Sockets {
        sip_udp,
        sip_tcp,
        http,
    } = sockets;

    let events = events::EventBus::new();
    let acd = acd::driver::spawn_acd(store.clone(), flows.handle().clone(), events.clone());
    let state = AppState {
        config: Arc::new(config),
        store: store.clone(),
        acd,
        events,
        calls: call::ActiveCalls::default(),
        metrics: Arc::new(Metrics::default()),
        admin: Arc::new(admin),
        flows: Arc::new(flows),
        twilio: thread::ingest::twilio::TwilioAuth::from_env().map(Arc::new),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    // Without a watcher the switch still runs; reloads go through the API.
    let watcher = match ivr::reload::spawn_watcher(state.flows.clone(), stop_rx.clone()) {
        Ok(task) => Some(task),
        Err(e) => {
            warn!(cause = %e, "flow folder changes will not reload by themselves");
            None
        }
    };

    let app = api::router(state.clone());
    let mut http_stop = stop_rx.clone();
    let mut http_task = tokio::spawn(
        axum::serve(http, app)
            .with_graceful_shutdown(async move {
                // An error means the sender is gone: stop too.
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );

    let sip = start_sip(
        &state,
        sip_udp,
        sip_tcp,
        sip_addr,
        http_base(state.config.public_ip, http_addr),
        stop_rx.clone(),
    )?;

    info!("listening sip={sip_addr} http={http_addr}");

    let early = tokio::select! {
        () = shutdown => None,
        res = &mut http_task => Some(res),
    };
    if let Some(res) = early {
        res?.map_err(RunError::Http)?;
        warn!("HTTP server stopped on its own");
        let _ = stop_tx.send(true);
        state.events.close();
        sip.stop().await;
        stop_watcher(watcher).await;
        store.close().await;
        return Ok(());
    }

    info!("shutting down");
    // Receivers only fail if they are all gone, which is fine.
    let _ = stop_tx.send(true);
    // Event streams are upgraded connections the HTTP server no longer
    // tracks: they close themselves.
    state.events.close();
    sip.stop().await;
    match tokio::time::timeout(HTTP_GRACE, &mut http_task).await {
        Ok(res) => res?.map_err(RunError::Http)?,
        Err(_) => {
            warn!("HTTP connections still open after the grace period; closing them");
            http_task.abort();
        }
    }
    drop(stop_rx);
    stop_watcher(watcher).await;
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Waits for the flow folder watcher, told to stop with the rest; a reload
/// in progress finishes first.
async fn stop_watcher(watcher: Option<tokio::task::JoinHandle<()>>) {
    if let Some(task) = watcher
        && let Err(err) = task.await
    {
        warn!(cause = %err, "flow folder watcher ended abnormally");
    }
}

/// The admin token check: the configured token, else the stored hash of a
/// generated one, else a new token, stored as a hash and printed once.
async fn admin_auth(config: &Config, store: &Store) -> Result<AdminAuth, StoreError> {
    if let Some(token) = &config.admin_token {
        return Ok(AdminAuth::from_token(token));
    }
    if let Some(hex) = store.meta_get(ADMIN_TOKEN_META_KEY).await?
        && let Some(auth) = AdminAuth::from_sha256_hex(&hex)
    {
        return Ok(auth);
    }
    let token = new_token();
    let hex = AdminAuth::sha256_hex(&token);
    let stored = store.meta_insert_once(ADMIN_TOKEN_META_KEY, &hex).await?;
    if stored == hex {
        // Printed once, on stdout, never logged: it is only kept as a hash.
        println!("admin token (shown once, keep it): {token}");
    } else if let Some(auth) = AdminAuth::from_sha256_hex(&stored) {
        // Another node generated one first.
        return Ok(auth);
    } else {
        // A malformed stored hash: replace it.
        store.meta_set(ADMIN_TOKEN_META_KEY, &hex).await?;
        println!("admin token (shown once, keep it): {token}");
    }
    Ok(AdminAuth::from_token(&token))
}

/// 256 random bits as lower-case hex.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_pop_base_is_where_http_answers() {
        let public: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            http_base(public, "0.0.0.0:8080".parse().unwrap()),
            "http://203.0.113.7:8080"
        );
        assert_eq!(
            http_base(public, "127.0.0.1:8081".parse().unwrap()),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            http_base("2001:db8::1".parse().unwrap(), "[::]:80".parse().unwrap()),
            "http://[2001:db8::1]:80"
        );
    }
}
