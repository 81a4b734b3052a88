//! The endpoint task: one loop over inbound messages, call commands and the
//! transaction layer's timers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::screen::{options_response, screen_request};
use super::{CallEvent, EndpointCommand};
use crate::call::{CallServices, CallSetup, spawn_call};
use crate::config::CidrList;
use crate::ivr::numbers::FlowEntry;
use crate::ivr::reload::FlowsHandle;
use crate::sip::dialog::{method_not_supported, no_such_dialog};
use crate::sip::message::{CSeq, Message, Method, Request, Response};
use crate::sip::peer::Peer;
use crate::sip::registrar::digest::DigestAlgorithm;
use crate::sip::registrar::{
    Account, BindingEvent, ClockAnchor, Registrar, RegistrarConfig, Verdict,
};
use crate::sip::transaction::{
    ClientTxId, Event, Incoming, ServerTxId, TimerConfig, TransactionLayer,
};
use crate::sip::transport::{Inbound, TransportHandle};
use crate::store::Store;

/// Settings of the endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Our address as written into Via and Contact (public IP, bound port).
    pub advertised: SocketAddr,
    /// The SIP domain agents register in (digest realm).
    pub domain: String,
    /// How long live calls may go on after shutdown begins.
    pub shutdown_grace: Duration,
    /// Digest algorithms offered to registering phones, preferred first.
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// SIP trunks that may call non-public numbers without digest auth.
    pub trusted_peers: CidrList,
}

/// Shared state the endpoint and the HTTP API read.
pub struct Endpoint {
    pub config: EndpointConfig,
    /// The running flow set; each new call takes the version current then.
    pub flows: FlowsHandle,
    pub services: Arc<CallServices>,
    pub store: Store,
    /// Where agents' registration changes go (the routing engine).
    pub presence: Option<mpsc::UnboundedSender<BindingEvent>>,
}

/// Work the endpoint gave to helper tasks, coming back.
enum Internal {
    /// The agent account a REGISTER (or an INVITE's Proxy-Authorization)
    /// named, loaded from the store; `call` is the INVITE's flow.
    AccountLoaded {
        tx: ServerTxId,
        request: Request,
        source: Peer,
        account: Option<Account>,
        call: Option<FlowEntry>,
    },
    /// A response held back for a throttled source.
    Delayed { tx: ServerTxId, response: Response },
}

struct CallEntry {
    events: mpsc::UnboundedSender<CallEvent>,
    /// The INVITE server transaction of an inbound call; `None` for a call
    /// the switch placed (to an agent).
    invite_tx: Option<ServerTxId>,
}

struct State {
    layer: TransactionLayer,
    registrar: Registrar,
    internal_tx: mpsc::UnboundedSender<Internal>,
    calls: HashMap<String, CallEntry>,
    /// Client transactions sent by calls: which call and which request.
    client_txs: HashMap<ClientTxId, (String, CSeq)>,
    transport: TransportHandle,
    commands_tx: mpsc::UnboundedSender<EndpointCommand>,
    /// Where agents' registration changes go (the queues follow them).
    presence: Option<mpsc::UnboundedSender<BindingEvent>>,
    shutting_down: bool,
}

/// Runs the endpoint until `shutdown` resolves and every call has ended (or
/// the grace period is over).
pub async fn run_endpoint(
    endpoint: Arc<Endpoint>,
    transport: TransportHandle,
    mut inbound: mpsc::Receiver<Inbound>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (commands_tx, mut commands) = mpsc::unbounded_channel();
    let (internal_tx, mut internal) = mpsc::unbounded_channel();
    let clock = ClockAnchor {
        instant: Instant::now().into_std(),
        unix_ms: crate::store::now_ms(),
    };
    let mut state = State {
        layer: TransactionLayer::new(TimerConfig::default()),
        registrar: Registrar::new(
            RegistrarConfig {
                algorithms: endpoint.config.digest_algorithms.clone(),
                ..RegistrarConfig::default()
            },
            rand::random(),
            rand::random(),
            clock,
        ),
        internal_tx,
        calls: HashMap::new(),
        client_txs: HashMap::new(),
        transport,
        commands_tx,
        presence: endpoint.presence.clone(),
        shutting_down: false,
    };
    tokio::pin!(shutdown);
    let mut grace_deadline: Option<Instant> = None;
    loop {
        let next_timer = [state.layer.poll_timeout(), state.registrar.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map(Instant::from_std);
        tokio::select! {
            Some(msg) = inbound.recv() => {
                let now = Instant::now().into_std();
                handle_inbound(&endpoint, &mut state, now, msg);
            }
            Some(cmd) = commands.recv() => {
                let now = Instant::now().into_std();
                handle_command(&mut state, now, cmd);
            }
            Some(work) = internal.recv() => {
                let now = Instant::now().into_std();
                handle_internal(&endpoint, &mut state, now, work);
            }
            _ = sleep_until_opt(next_timer) => {
                let now = Instant::now().into_std();
                state.layer.handle_timeout(now);
                state.registrar.handle_timeout(now);
            }
            _ = &mut shutdown, if !state.shutting_down => {
                tracing::info!(calls = state.calls.len(), "shutting down: ending calls");
                state.shutting_down = true;
                grace_deadline = Some(Instant::now() + endpoint.config.shutdown_grace);
                for call in state.calls.values() {
                    let _ = call.events.send(CallEvent::Shutdown);
                }
            }
            _ = sleep_until_opt(grace_deadline) => {
                tracing::warn!(calls = state.calls.len(), "grace period over; leaving calls");
                break;
            }
        }
        flush(&mut state).await;
        if state.shutting_down && state.calls.is_empty() {
            // Let final transmissions (BYE responses, ACKs) leave.
            flush(&mut state).await;
            break;
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends what the layer queued and hands its events to the calls.
async fn flush(state: &mut State) {
    while let Some(event) = state.registrar.poll_event() {
        match &event {
            BindingEvent::Registered { login } => tracing::info!(%login, "agent registered"),
            BindingEvent::Unregistered { login } => tracing::info!(%login, "agent unregistered"),
        }
        if let Some(presence) = &state.presence {
            let _ = presence.send(event);
        }
    }
    while let Some(t) = state.layer.poll_transmit() {
        state.transport.send(t.dest, t.bytes).await;
    }
    while let Some(event) = state.layer.poll_event() {
        match event {
            Event::Response { tx, response } => {
                let Some((call_id, _)) = state.client_txs.get(&tx) else {
                    continue;
                };
                let call_id = call_id.clone();
                let done = response.status >= 200
                    && response
                        .headers
                        .cseq()
                        .is_ok_and(|c| c.method != Method::Invite);
                if done {
                    state.client_txs.remove(&tx);
                }
                to_call(state, &call_id, CallEvent::Response(response));
            }
            Event::Timeout(tx) | Event::TransportError(tx) => {
                if let Some((call_id, cseq)) = state.client_txs.remove(&tx) {
                    to_call(state, &call_id, CallEvent::RequestFailed(cseq));
                }
            }
            Event::AckTimeout { call_id, .. } => to_call(state, &call_id, CallEvent::AckTimeout),
            Event::ServerTimeout(tx) => tracing::debug!(?tx, "no ACK for a final response"),
        }
    }
}

fn to_call(state: &State, call_id: &str, event: CallEvent) {
    if let Some(call) = state.calls.get(call_id) {
        let _ = call.events.send(event);
    }
}

fn respond(state: &mut State, now: std::time::Instant, tx: ServerTxId, response: Response) {
    if let Err(err) = state.layer.send_response(now, tx, response) {
        tracing::debug!(cause = %err, "response not sent");
    }
}

fn handle_inbound(endpoint: &Endpoint, state: &mut State, now: std::time::Instant, msg: Inbound) {
    match msg.message {
        Message::Response(resp) => {
            // A response that matches no transaction: a retransmitted 2xx
            // to one of our INVITEs is the call's to re-ACK (§13.2.2.4).
            if let Some(stray) = state.layer.handle_response(now, resp) {
                if let Ok(call_id) = stray.headers.call_id() {
                    let call_id = call_id.to_owned();
                    to_call(state, &call_id, CallEvent::Response(stray));
                }
            }
        }
        Message::Request(mut req) => {
            stamp_via(&mut req, msg.source);
            match state.layer.handle_request(now, req, msg.source) {
                Some(Incoming::Request { tx, request }) => {
                    handle_request(endpoint, state, now, tx, request, msg.source)
                }
                Some(Incoming::Cancel {
                    tx,
                    cancelled,
                    request,
                }) => handle_cancel(state, now, tx, cancelled, &request),
                Some(Incoming::Ack { request, .. }) => {
                    if let Ok(call_id) = request.headers.call_id() {
                        let call_id = call_id.to_owned();
                        to_call(state, &call_id, CallEvent::Ack(request));
                    }
                }
                None => {}
            }
        }
    }
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: note where the request really came
/// from in the top Via, so responses find their way back through NAT.
fn stamp_via(req: &mut Request, source: Peer) {
    let Ok(mut via) = req.headers.top_via() else {
        return;
    };
    let mut changed = false;
    if via.host.trim_matches(|c| c == '[' || c == ']') != source.addr.ip().to_string() {
        via.params
            .set("received", Some(&source.addr.ip().to_string()));
        changed = true;
    }
    if via.params.get("rport") == Some(None) {
        via.params
            .set("rport", Some(&source.addr.port().to_string()));
        via.params
            .set("received", Some(&source.addr.ip().to_string()));
        changed = true;
    }
    if changed {
        replace_top_via(req, &via.to_string());
    }
}

/// Replaces the first Via value (which may share a line with others).
fn replace_top_via(req: &mut Request, new_top: &str) {
    use crate::sip::message::HeaderName;
    let values: Vec<String> = req
        .headers
        .values(&HeaderName::Via)
        .iter()
        .map(|v| v.to_string())
        .collect();
    if values.is_empty() {
        return;
    }
    req.headers.remove(&HeaderName::Via);
    // Keep Via first among the headers, one value per line.
    for v in values[1..].iter().rev() {
        req.headers.push_front(HeaderName::Via, v.clone());
    }
    req.headers.push_front(HeaderName::Via, new_top.to_owned());
}

fn handle_request(
    endpoint: &Endpoint,
    state: &mut State,
    now: std::time::Instant,
    tx: ServerTxId,
    req: Request,
    source: Peer,
) {
    if let Some(resp) = screen_request(&req) {
        return respond(state, now, tx, resp);
    }
    let in_dialog = req.headers.to().is_ok_and(|to| to.tag().is_some());
    let call_id = match req.headers.call_id() {
        Ok(c) => c.to_owned(),
        Err(_) => return,
    };
    if in_dialog {
        if let Some(call) = state.calls.get(&call_id) {
            let _ = call.events.send(CallEvent::Request { tx, request: req });
        } else if req.method == Method::Options {
            respond(state, now, tx, options_response(&req));
        } else {
            // §12.2.2: no such dialog.
            respond(state, now, tx, no_such_dialog(&req));
        }
        return;
    }
    match req.method {
        Method::Invite => handle_invite(endpoint, state, now, tx, req, source, call_id),
        Method::Options => respond(state, now, tx, options_response(&req)),
        Method::Register => handle_register(endpoint, state, now, tx, req, source),
        Method::Bye | Method::Info | Method::Update | Method::Prack => {
            respond(state, now, tx, no_such_dialog(&req));
        }
        _ => respond(state, now, tx, method_not_supported(&req)),
    }
}

fn handle_invite(
    endpoint: &Endpoint,
    state: &mut State,
    now: std::time::Instant,
    tx: ServerTxId,
    req: Request,
    source: Peer,
    call_id: String,
) {
    if state.shutting_down {
        let mut resp = Response::for_request(&req, 503, "Service Unavailable");
        resp.headers
            .push(crate::sip::message::HeaderName::RetryAfter, "30");
        return respond(state, now, tx, resp);
    }
    if state.calls.contains_key(&call_id) {
        // §8.2.2.2: the same request arrived again by another path.
        return respond(
            state,
            now,
            tx,
            Response::for_request(&req, 482, "Loop Detected"),
        );
    }
    let dialled = req.uri.user.clone().unwrap_or_default();
    let flows = endpoint.flows.current();
    let flow = flows.numbers().lookup(&dialled).cloned();
    let Some(flow) = flow else {
        tracing::debug!(%dialled, "no flow serves this number");
        return respond(
            state,
            now,
            tx,
            Response::for_request(&req, 404, "Not Found"),
        );
    };
    if !flow.public && !endpoint.config.trusted_peers.contains(source.addr.ip()) {
        // DESIGN §3: a non-public number takes calls from trusted peers
        // and from agents proving their account (RFC 3261 §22.3).
        match state.registrar.caller_login(&req) {
            None => {
                let realm = endpoint.config.domain.clone();
                if let Err(verdict) = state
                    .registrar
                    .authorize_call(now, &req, source, &realm, None)
                {
                    apply_verdict(state, now, tx, &req, verdict);
                }
            }
            Some(login) => lookup_account(endpoint, state, login, tx, req, source, Some(flow)),
        }
        return;
    }
    start_call(endpoint, state, tx, req, source, flow, call_id);
}

/// Hands a new INVITE to its own call task.
fn start_call(
    endpoint: &Endpoint,
    state: &mut State,
    tx: ServerTxId,
    req: Request,
    source: Peer,
    flow: FlowEntry,
    call_id: String,
) {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    state.calls.insert(
        call_id.clone(),
        CallEntry {
            events: events_tx,
            invite_tx: Some(tx),
        },
    );
    spawn_call(
        endpoint.services.clone(),
        CallSetup {
            invite_tx: tx,
            invite: req,
            source,
            flow,
            flows: endpoint.flows.loaded(),
            trusted: endpoint.config.trusted_peers.contains(source.addr.ip()),
            call_id,
        },
        events_rx,
        state.commands_tx.clone(),
    );
}

/// §9.2: the CANCEL is answered here; the call answers its INVITE 487.
fn handle_cancel(
    state: &mut State,
    now: std::time::Instant,
    tx: ServerTxId,
    cancelled: Option<ServerTxId>,
    req: &Request,
) {
    let call = req
        .headers
        .call_id()
        .ok()
        .and_then(|c| state.calls.get(c))
        .filter(|call| call.invite_tx.is_some() && call.invite_tx == cancelled);
    match call {
        Some(call) => {
            let _ = call.events.send(CallEvent::Cancelled);
            respond(state, now, tx, Response::for_request(req, 200, "OK"));
        }
        None => respond(
            state,
            now,
            tx,
            Response::for_request(req, 481, "Call/Transaction Does Not Exist"),
        ),
    }
}

fn handle_command(state: &mut State, now: std::time::Instant, cmd: EndpointCommand) {
    match cmd {
        EndpointCommand::Respond { tx, response } => respond(state, now, tx, response),
        EndpointCommand::Send {
            call_id,
            request,
            dest,
        } => {
            let cseq = request.headers.cseq();
            match (state.layer.send_request(now, request, dest), cseq) {
                (Ok(tx), Ok(cseq)) => {
                    state.client_txs.insert(tx, (call_id, cseq));
                }
                (Err(err), Ok(cseq)) => {
                    tracing::debug!(cause = %err, "request not sent");
                    to_call(state, &call_id, CallEvent::RequestFailed(cseq));
                }
                (_, Err(err)) => tracing::debug!(cause = %err, "request without CSeq not sent"),
            }
        }
        EndpointCommand::Ack { request, dest } => state.layer.send_ack(&request, dest),
        EndpointCommand::Originate {
            call_id,
            request,
            dest,
            events,
        } => {
            state.calls.insert(
                call_id.clone(),
                CallEntry {
                    events,
                    invite_tx: None,
                },
            );
            handle_command(
                state,
                now,
                EndpointCommand::Send {
                    call_id,
                    request,
                    dest,
                },
            );
        }
        EndpointCommand::Cancel { call_id } => {
            let invite = state
                .client_txs
                .iter()
                .find(|(_, (c, cseq))| *c == call_id && cseq.method == Method::Invite)
                .map(|(tx, _)| *tx);
            if let Some(tx) = invite
                && let Err(err) = state.layer.cancel(now, tx)
            {
                tracing::debug!(cause = %err, "CANCEL not sent");
            }
        }
        EndpointCommand::Contacts { login, reply } => {
            let _ = reply.send(state.registrar.contacts(&login));
        }
        EndpointCommand::Ended { call_id } => {
            state.calls.remove(&call_id);
            state.client_txs.retain(|_, (c, _)| *c != call_id);
        }
    }
}

/// REGISTER (RFC 3261 §10.3): the account is loaded from the store off the
/// loop, then the registrar decides.
fn handle_register(
    endpoint: &Endpoint,
    state: &mut State,
    now: std::time::Instant,
    tx: ServerTxId,
    req: Request,
    source: Peer,
) {
    if state.registrar.is_banned(now, source.addr.ip()) {
        // A banned source learns nothing; the transaction ends unanswered.
        return respond(
            state,
            now,
            tx,
            Response::for_request(&req, 403, "Forbidden"),
        );
    }
    let login = match state.registrar.account_needed(&req) {
        Ok(login) => login,
        Err(resp) => return respond(state, now, tx, resp),
    };
    lookup_account(endpoint, state, login, tx, req, source, None);
}

/// Loads the account `login` off the loop; the request comes back as
/// [`Internal::AccountLoaded`] (`call` holds the flow of an INVITE).
fn lookup_account(
    endpoint: &Endpoint,
    state: &State,
    login: String,
    tx: ServerTxId,
    request: Request,
    source: Peer,
    call: Option<FlowEntry>,
) {
    let store = endpoint.store.clone();
    let back = state.internal_tx.clone();
    tokio::spawn(async move {
        let account = load_account(&store, &login).await;
        let _ = back.send(Internal::AccountLoaded {
            tx,
            request,
            source,
            account,
            call,
        });
    });
}

fn handle_internal(
    endpoint: &Endpoint,
    state: &mut State,
    now: std::time::Instant,
    work: Internal,
) {
    match work {
        Internal::AccountLoaded {
            tx,
            request,
            source,
            account,
            call: None,
        } => {
            let verdict = state
                .registrar
                .handle_register(now, &request, source, account.as_ref());
            apply_verdict(state, now, tx, &request, verdict);
        }
        Internal::AccountLoaded {
            tx,
            request,
            source,
            account,
            call: Some(flow),
        } => {
            let realm = endpoint.config.domain.clone();
            match state
                .registrar
                .authorize_call(now, &request, source, &realm, account.as_ref())
            {
                Ok(login) => {
                    tracing::debug!(%login, "caller authenticated");
                    let Ok(call_id) = request.headers.call_id().map(str::to_owned) else {
                        return;
                    };
                    if state.shutting_down || state.calls.contains_key(&call_id) {
                        let resp = Response::for_request(&request, 503, "Service Unavailable");
                        return respond(state, now, tx, resp);
                    }
                    start_call(endpoint, state, tx, request, source, flow, call_id);
                }
                Err(verdict) => apply_verdict(state, now, tx, &request, verdict),
            }
        }
        Internal::Delayed { tx, response } => respond(state, now, tx, response),
    }
}

/// Sends, delays or refuses a digest answer as the throttle decided.
fn apply_verdict(
    state: &mut State,
    now: std::time::Instant,
    tx: ServerTxId,
    req: &Request,
    verdict: Verdict,
) {
    match verdict {
        Verdict::Send(resp) => respond(state, now, tx, resp),
        Verdict::Delay(response, delay) => {
            let back = state.internal_tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = back.send(Internal::Delayed { tx, response });
            });
        }
        // A banned source is refused without a challenge, so the
        // transaction ends instead of lingering unanswered.
        Verdict::Drop => respond(state, now, tx, Response::for_request(req, 403, "Forbidden")),
    }
}

async fn load_account(store: &Store, login: &str) -> Option<Account> {
    match store.agents().credentials(login).await {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(cause = %err, "cannot load agent credentials");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{HeaderName, Limits, parse_message};
    use crate::sip::peer::Transport;

    fn request(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:100@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:100@example.com>\r\nCall-ID: v1\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_message(text.as_bytes(), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn source() -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: "203.0.113.7:40000".parse().unwrap(),
        }
    }

    /// RFC 3581 §4: an empty rport gets the source port, and received is
    /// added with it; the second Via is untouched.
    #[test]
    fn rfc3581_s4_rport_filled_in() {
        let mut req = request("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport");
        stamp_via(&mut req, source());
        let via = req.headers.top_via().unwrap();
        assert_eq!(via.params.get("rport"), Some(Some("40000")));
        assert_eq!(via.params.get("received"), Some(Some("203.0.113.7")));
        assert_eq!(via.branch(), Some("z9hG4bKa"));
        let all = req.headers.values(&HeaderName::Via);
        assert_eq!(all.len(), 2);
        assert!(all[1].contains("proxy.example.com"));
    }

    /// RFC 3261 §18.2.1: a sent-by that differs from the source address gets
    /// `received`; one that matches is left alone.
    #[test]
    fn rfc3261_18_2_1_received_added_only_when_needed() {
        let mut req = request("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKb");
        stamp_via(&mut req, source());
        let via = req.headers.top_via().unwrap();
        assert_eq!(via.params.get("received"), Some(Some("203.0.113.7")));
        assert!(via.params.get("rport").is_none());

        let mut req = request("SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bKc");
        let before = req.clone();
        stamp_via(&mut req, source());
        assert_eq!(req, before);
    }
}
