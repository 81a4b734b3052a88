//! The per-call task: one tokio task per inbound call joins the caller's
//! dialog, the media offer/answer and (as they arrive) the flow, queue and
//! thread. It runs in the span `call{call_id}`.

mod active;
mod agent;
mod log;
mod queue;
mod refer;
mod screen;
mod session;

pub use active::{ActiveCall, ActiveCalls, Stage};

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use session::{Session, SessionEnd, SessionInputs};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ivr::interpreter::CallContext;
use crate::ivr::model::Flow;
use crate::ivr::numbers::FlowEntry;
use crate::ivr::reload::LoadedFlows;
use crate::ivr::webhook::WebhookClient;
use crate::media::dtmf::info::parse_info_body;
use crate::media::engine::{LegSetup, MediaEngine};
use crate::media::port_pool::{PortLease, PortPool};
use crate::media::sdp::{self, LocalMedia, Negotiated, SessionDescription};
use crate::sip::dialog::{Dialog, LocalVia, hold_state, method_not_supported, new_tag};
use crate::sip::endpoint::screen::options_response;
use crate::sip::endpoint::{CallEvent, EndpointCommand};
use crate::sip::message::{HeaderName, Method, Request, Response, Uri};
use crate::sip::peer::{Peer, Transport};
use crate::sip::transaction::ServerTxId;

/// What every call shares: addresses and the RTP port pool.
pub struct CallServices {
    /// Our SIP address as advertised (Via, Contact).
    pub advertised: SocketAddr,
    /// The address written into SDP.
    pub media_ip: IpAddr,
    /// The address RTP sockets bind to.
    pub bind_ip: IpAddr,
    pub ports: PortPool,
    /// Moves every call's RTP.
    pub engine: MediaEngine,
    /// Where voicemails and recordings are written.
    pub recordings: PathBuf,
    pub webhooks: WebhookClient,
    /// Agents' extensions, for transfers to an extension.
    pub store: crate::store::Store,
    /// The routing engine, for `queue` nodes.
    pub acd: crate::acd::driver::AcdHandle,
    /// The live event stream (`call.*` events).
    pub events: crate::events::EventBus,
    /// The calls in progress (`GET /api/v1/calls`).
    pub active: ActiveCalls,
    /// The switch's HTTP address as agents reach it (`http://IP:PORT`), for
    /// screen-pop links.
    pub http_base: String,
}

/// A new inbound call.
pub struct CallSetup {
    pub invite_tx: ServerTxId,
    pub invite: Request,
    pub source: Peer,
    pub flow: FlowEntry,
    /// The flow version the call runs to its end (DESIGN §5 hot reload).
    pub flows: Arc<LoadedFlows>,
    /// The call came from a `--trusted-peers` address (its
    /// P-Asserted-Identity names the caller).
    pub trusted: bool,
    pub call_id: String,
}

/// How long the switch waits for the answer to its BYE before forgetting a call.
const BYE_WAIT: Duration = Duration::from_secs(4);

/// Starts the call task.
pub fn spawn_call(
    services: std::sync::Arc<CallServices>,
    setup: CallSetup,
    events: mpsc::UnboundedReceiver<CallEvent>,
    commands: mpsc::UnboundedSender<EndpointCommand>,
) {
    let span = tracing::info_span!("call", call_id = %setup.call_id);
    tokio::spawn(
        async move {
            let call_id = setup.call_id.clone();
            let trusted = setup.trusted;
            let (mut log, link) = log::CallLog::begin(
                services.store.clone(),
                services.events.clone(),
                &setup.invite,
                &setup.flow.name,
                trusted,
            );
            let active = services.active.register(active::NewActive {
                call_id: &call_id,
                from: setup
                    .invite
                    .headers
                    .from()
                    .map(|f| f.uri.to_string())
                    .unwrap_or_default(),
                to: setup.invite.uri.to_string(),
                flow: &setup.flow.name,
                started_at: crate::store::now_ms(),
                ringing: !setup.flow.ring.is_zero(),
                log: log.state(),
            });
            log.track(active.tracker());
            let mut call = Call {
                services,
                setup,
                events,
                commands: commands.clone(),
                media: None,
                log,
                link: Some(link),
                transferred: false,
                active,
            };
            let outcome = call.run().await;
            tracing::info!(outcome, "call ended");
            call.log.record(crate::thread::CallEvent::Ended {
                disposition: call.disposition(outcome),
            });
            let _ = commands.send(EndpointCommand::Ended { call_id });
        }
        .instrument(span),
    );
}

/// The media side of a call as far as signalling knows it: the leased
/// port with its bound sockets, and what offer/answer agreed.
struct MediaLeg {
    /// The port and its bound sockets until the engine takes them.
    reserved: Option<(PortLease, UdpSocket, UdpSocket)>,
    port: u16,
    negotiated: Option<Negotiated>,
    session_id: u64,
    version: u64,
    /// The SDP we sent last (repeated in answers that change nothing).
    local_sdp: String,
}

struct Call {
    services: std::sync::Arc<CallServices>,
    setup: CallSetup,
    events: mpsc::UnboundedReceiver<CallEvent>,
    commands: mpsc::UnboundedSender<EndpointCommand>,
    media: Option<MediaLeg>,
    /// The CDR row and the caller's thread.
    log: log::CallLog,
    /// The caller's contact and thread, looked up since the INVITE.
    link: Option<tokio::sync::oneshot::Receiver<crate::thread::linking::LinkResult>>,
    /// The call was bridged to a transfer target.
    transferred: bool,
    /// The call's entry among the calls in progress (the API's view and
    /// hang-up).
    active: active::ActiveEntry,
}

impl Call {
    /// How the call ended, for the CDR.
    fn disposition(&self, outcome: &str) -> crate::thread::Disposition {
        use crate::thread::Disposition;
        match outcome {
            _ if self.transferred => Disposition::Transferred,
            "rejected" | "no usable media" | "no ACK" => Disposition::Failed,
            "cancelled"
            | "caller hung up"
            | "shutdown before answer"
            | "hung up by the API before answer" => Disposition::AbandonedIvr,
            _ => Disposition::Answered,
        }
    }

    /// What the lookup at INVITE found about the caller, when it is ready.
    fn caller_context(&mut self) -> CallContext {
        let mut ctx = CallContext {
            dialled: self.setup.invite.uri.user.clone().unwrap_or_default(),
            ..CallContext::default()
        };
        let Some(link) = self.link.take().and_then(|mut rx| rx.try_recv().ok()) else {
            return ctx;
        };
        ctx.caller_number = link.caller.as_ref().map(|c| c.as_str().to_owned());
        if let Some(contact) = &link.contact {
            ctx.caller_known = true;
            ctx.caller_vip = contact.vip;
            ctx.contact_name = contact.display_name.clone();
        }
        if let Some(thread) = &link.thread {
            ctx.thread_open = true;
            ctx.thread_priority = Some(thread.priority);
            ctx.thread_last_agent = thread
                .last_agent
                .clone()
                .or_else(|| thread.assignee.clone());
        }
        ctx
    }

    fn respond(&self, tx: ServerTxId, response: Response) {
        let _ = self
            .commands
            .send(EndpointCommand::Respond { tx, response });
    }

    fn reject(&self, status: u16, reason: &str) -> &'static str {
        let invite = &self.setup.invite;
        let mut resp = Response::for_request(invite, status, reason);
        if resp.headers.to().is_ok_and(|t| t.tag().is_none()) {
            if let Ok(mut to) = resp.headers.to() {
                to.params.set("tag", Some(&new_tag()));
                resp.headers.set(HeaderName::To, to.to_string());
            }
        }
        self.respond(self.setup.invite_tx, resp);
        "rejected"
    }

    fn local_via(&self) -> LocalVia {
        LocalVia::new(
            self.services.advertised.to_string(),
            self.setup.source.transport,
        )
    }

    fn contact(&self) -> Uri {
        let mut uri = Uri::sip(
            self.setup.invite.uri.user.as_deref(),
            &self.services.advertised.ip().to_string(),
            Some(self.services.advertised.port()),
        );
        if self.setup.source.transport == Transport::Tcp {
            uri.params.set("transport", Some("tcp"));
        }
        uri
    }

    /// Leases an RTP/RTCP port pair and binds both sockets.
    fn lease_media(&mut self) -> bool {
        let bind_ip = self.services.bind_ip;
        let leased = self.services.ports.allocate_with(|port| {
            let rtp = UdpSocket::bind((bind_ip, port)).ok()?;
            let rtcp = UdpSocket::bind((bind_ip, port + 1)).ok()?;
            Some((rtp, rtcp))
        });
        let Some((lease, (rtp, rtcp))) = leased else {
            return false;
        };
        let session_id = u64::from(rand::random::<u32>());
        self.media = Some(MediaLeg {
            port: lease.rtp_port(),
            reserved: Some((lease, rtp, rtcp)),
            negotiated: None,
            session_id,
            version: session_id,
            local_sdp: String::new(),
        });
        true
    }

    fn local_media(&self, leg: &MediaLeg) -> LocalMedia {
        LocalMedia {
            addr: self.services.media_ip,
            port: leg.port,
            session_id: leg.session_id,
            version: leg.version,
        }
    }

    /// Answers an offer (RFC 3264 §6), or builds our offer when the INVITE
    /// had none (the answer then comes in the ACK, §13.2.1). Returns the
    /// SDP text or the status to refuse with.
    fn negotiate(&mut self, body: &[u8]) -> Result<String, (u16, &'static str)> {
        let Some(mut leg) = self.media.take() else {
            return Err((500, "Server Internal Error"));
        };
        let result = if body.is_empty() {
            Ok(sdp::offer(&self.local_media(&leg)).to_string())
        } else {
            match SessionDescription::parse(body) {
                Err(err) => {
                    tracing::debug!(cause = %err, "unreadable SDP offer");
                    Err((err.status_code(), "Not Acceptable Here"))
                }
                Ok(offer) => match sdp::answer(&offer, &self.local_media(&leg)) {
                    Ok((answer, negotiated)) => {
                        tracing::debug!(codec = ?negotiated.codec, held = negotiated.held, "media negotiated");
                        leg.negotiated = Some(negotiated);
                        Ok(answer.to_string())
                    }
                    Err(err) => {
                        tracing::debug!(cause = %err, "no acceptable media in the offer");
                        Err((488, "Not Acceptable Here"))
                    }
                },
            }
        };
        if let Ok(text) = &result {
            leg.local_sdp = text.clone();
        }
        self.media = Some(leg);
        result
    }

    fn with_sdp(mut resp: Response, sdp: &str) -> Response {
        resp.headers.set(HeaderName::ContentType, "application/sdp");
        resp.body = sdp.as_bytes().to_vec();
        resp
    }

    async fn run(&mut self) -> &'static str {
        tracing::info!(flow = %self.setup.flow.name, "incoming call");
        tracing::debug!(dialled = ?self.setup.invite.uri.user, "dialled number");
        if !self.lease_media() {
            tracing::warn!("no free RTP port");
            return self.reject(503, "Service Unavailable");
        }
        let offer = self.setup.invite.body.clone();
        let sdp = match self.negotiate(&offer) {
            Ok(sdp) => sdp,
            Err((status, reason)) => return self.reject(status, reason),
        };
        let mut dialog = match Dialog::new_uas(&self.setup.invite, &new_tag(), self.contact()) {
            Ok(d) => d,
            Err(err) => {
                tracing::debug!(cause = %err, "INVITE cannot create a dialog");
                return self.reject(400, "Bad Request (Missing Contact header)");
            }
        };
        let invite_tx = self.setup.invite_tx;
        let ringing = dialog.response(&self.setup.invite, 180, "Ringing");
        self.respond(invite_tx, ringing);
        if !self.setup.flow.ring.is_zero() {
            let ring = tokio::time::sleep(self.setup.flow.ring);
            tokio::pin!(ring);
            loop {
                tokio::select! {
                    _ = &mut ring => break,
                    event = self.events.recv() => match event {
                        Some(CallEvent::Cancelled) => {
                            // §9.2: the INVITE ends with 487.
                            let resp = dialog.response(&self.setup.invite, 487, "Request Terminated");
                            self.respond(invite_tx, resp);
                            return "cancelled";
                        }
                        Some(CallEvent::Shutdown) | None => {
                            let resp = dialog.response(&self.setup.invite, 480, "Temporarily Unavailable");
                            self.respond(invite_tx, resp);
                            return "shutdown before answer";
                        }
                        Some(CallEvent::Request { tx, request }) => self.in_dialog_early(&mut dialog, tx, request),
                        Some(_) => {}
                    },
                    () = self.active.hangup_requested() => {
                        let resp = dialog.response(&self.setup.invite, 480, "Temporarily Unavailable");
                        self.respond(invite_tx, resp);
                        return "hung up by the API before answer";
                    }
                }
            }
        }
        let ok = Self::with_sdp(dialog.response(&self.setup.invite, 200, "OK"), &sdp);
        dialog.handle_sent_response(&ok);
        self.respond(invite_tx, ok);
        self.active.answered();
        tracing::debug!("answered");
        self.confirmed(&mut dialog).await
    }

    /// Requests inside an early dialog (before our 2xx).
    fn in_dialog_early(&mut self, dialog: &mut Dialog, tx: ServerTxId, request: Request) {
        let resp = match request.method {
            Method::Options => options_response(&request),
            Method::Prack | Method::Info | Method::Update => dialog.response(&request, 200, "OK"),
            _ => dialog.response(&request, 491, "Request Pending"),
        };
        self.respond(tx, resp);
    }

    /// Where a transfer goes (DESIGN §5 `transfer`): every registered
    /// device of an agent (by login or extension; they ring at once), or a
    /// `sip:` URI whose host is an IP address. `None` when the target
    /// cannot be reached now.
    async fn transfer_target(
        &self,
        target: &crate::ivr::model::TransferTarget,
    ) -> Option<(String, Vec<(Uri, Peer)>)> {
        use crate::ivr::model::TransferTarget;
        let login = match target {
            TransferTarget::Agent(login) => login.clone(),
            TransferTarget::Extension(ext) => {
                let agents = self.services.store.agents().list().await.ok()?;
                agents
                    .into_iter()
                    .find(|a| a.extension.as_deref() == Some(ext.as_str()))?
                    .login
            }
            TransferTarget::Uri(text) => {
                let uri = Uri::parse(text).ok()?;
                let ip: IpAddr = uri
                    .host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse()
                    .ok()?;
                let transport = if uri
                    .params
                    .get("transport")
                    .flatten()
                    .is_some_and(|t| t.eq_ignore_ascii_case("tcp"))
                {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                let dest = Peer {
                    transport,
                    addr: SocketAddr::new(ip, uri.port.unwrap_or(5060)),
                };
                let login = uri.user.clone().unwrap_or_default();
                return Some((login, vec![(uri, dest)]));
            }
        };
        let (reply, contacts) = tokio::sync::oneshot::channel();
        let _ = self.commands.send(EndpointCommand::Contacts {
            login: login.clone(),
            reply,
        });
        let mut bindings = contacts.await.ok()?;
        // Every registered device rings (newest first); none: unreachable.
        bindings.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
        let devices: Vec<(Uri, Peer)> = bindings
            .into_iter()
            .map(|b| (b.contact.uri, b.source))
            .collect();
        (!devices.is_empty()).then_some((login, devices))
    }

    /// Opens the caller's media leg in the engine and starts the flow.
    fn start_session(&mut self) -> Option<(Session, SessionInputs)> {
        let leg = self.media.as_mut()?;
        let negotiated = leg.negotiated?;
        let (lease, rtp, rtcp) = leg.reserved.take()?;
        let (events, leg_events) = mpsc::unbounded_channel();
        let handle = match self.services.engine.open_leg(LegSetup {
            lease,
            rtp,
            rtcp,
            negotiated,
            events,
            near: None,
        }) {
            Ok(h) => h,
            Err(err) => {
                tracing::error!(cause = %err, "cannot open the media leg");
                return None;
            }
        };
        let flows = self.setup.flows.clone();
        let flow: Arc<Flow> = flows.set.flow(&self.setup.flow.name)?.clone();
        let ctx = self.caller_context();
        Some(Session::start(
            flows,
            flow,
            ctx,
            handle,
            self.services.recordings.clone(),
            self.setup.call_id.clone(),
            self.services.webhooks.clone(),
            self.log.clone(),
            leg_events,
            std::time::Instant::now(),
        ))
    }

    /// The caller's number, shown to agents.
    fn caller_number(&self) -> Option<String> {
        self.setup
            .invite
            .headers
            .from()
            .ok()
            .and_then(|f| f.uri.user.clone())
    }

    async fn confirmed(&mut self, dialog: &mut Dialog) -> &'static str {
        let mut queued = None;
        let end = self.confirmed_inner(dialog, &mut queued).await;
        if let Some(q) = queued {
            self.leave_queue(q);
        }
        end
    }

    async fn confirmed_inner(
        &mut self,
        dialog: &mut Dialog,
        queued: &mut Option<queue::QueueLeg>,
    ) -> &'static str {
        let mut queue_rx: Option<mpsc::UnboundedReceiver<crate::acd::driver::QueueEvent>> = None;
        let mut offer_rx: Option<mpsc::UnboundedReceiver<(String, agent::AgentEvent)>> = None;
        let mut session: Option<Session> = None;
        let mut leg_rx = None;
        let mut hook_rx = None;
        // A transfer in progress or done: the agent leg's control and news,
        // and its media once it answered.
        let mut agent: Option<mpsc::UnboundedSender<agent::AgentControl>> = None;
        let mut agent_rx: Option<mpsc::UnboundedReceiver<agent::AgentEvent>> = None;
        let mut agent_leg: Option<crate::media::engine::LegHandle> = None;
        // The agent a transfer rings, and once it answered, its call as the
        // routing engine knows it (ended when dropped).
        let mut direct_target: Option<String> = None;
        let mut _direct: Option<DirectCall> = None;
        // The transfer target whose own REFER is ringing the next target:
        // the caller goes back to it if that one does not answer. Dropped,
        // its leg ends with BYE.
        let mut handoff: Option<Handoff> = None;
        let mut handoff_rx: Option<mpsc::UnboundedReceiver<agent::AgentEvent>> = None;
        // A REFER from a transfer target was carried out, or is ringing.
        let mut chained = false;
        loop {
            let deadline = session
                .as_ref()
                .and_then(|s| s.poll_timeout())
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                event = self.events.recv() => {
                    let Some(event) = event else { return "endpoint gone" };
                    match event {
                        CallEvent::Ack(ack) => {
                            if self.media.as_ref().is_some_and(|m| m.negotiated.is_none())
                                && !ack.body.is_empty()
                            {
                                self.read_late_answer(&ack.body);
                            }
                            tracing::debug!("ACK received");
                            if session.is_none() {
                                let Some((s, inputs)) = self.start_session() else {
                                    return self.hang_up(dialog, "no usable media").await;
                                };
                                let SessionInputs { leg_events, webhook_replies } = inputs;
                                session = Some(s);
                                leg_rx = Some(leg_events);
                                hook_rx = Some(webhook_replies);
                            }
                        }
                        CallEvent::AckTimeout => {
                            tracing::info!("no ACK for our 200; hanging up");
                            return self.hang_up(dialog, "no ACK").await;
                        }
                        CallEvent::Request { tx, request } => {
                            let digit = is_dtmf_info(&request);
                            if let Some(end) = self.in_dialog(dialog, tx, request, session.as_ref()) {
                                if let Some(s) = session.as_mut() {
                                    s.handle_hangup(std::time::Instant::now());
                                }
                                if let Some(control) = &agent {
                                    let _ = control.send(agent::AgentControl::End);
                                }
                                return end;
                            }
                            if let (Some(digit), Some(s)) = (digit, session.as_ref()) {
                                s.leg().dtmf_from_signalling(digit);
                            }
                        }
                        CallEvent::Shutdown => {
                            if let Some(control) = &agent {
                                let _ = control.send(agent::AgentControl::End);
                            }
                            return self.hang_up(dialog, "switch shutting down").await;
                        }
                        CallEvent::Cancelled | CallEvent::Response(_) | CallEvent::RequestFailed(_) => {}
                    }
                }
                () = self.active.hangup_requested() => {
                    tracing::info!("hang-up asked through the API");
                    if let Some(s) = session.as_mut() {
                        s.handle_hangup(std::time::Instant::now());
                    }
                    if let Some(control) = &agent {
                        let _ = control.send(agent::AgentControl::End);
                    }
                    return self.hang_up(dialog, "hung up by the API").await;
                }
                Some(event) = recv_opt(agent_rx.as_mut()) => {
                    let now = std::time::Instant::now();
                    match event {
                        agent::AgentEvent::Ringing => tracing::debug!("transfer target ringing"),
                        agent::AgentEvent::Answered(leg) => {
                            let bridged = session.as_ref().map(|s| s.leg().bridge(&leg));
                            match bridged {
                                Some(Ok(())) => {
                                    tracing::info!("bridged to the transfer target");
                                    if let Some(h) = handoff.take() {
                                        // RFC 3515 §2.4.5: the final NOTIFY says
                                        // 200; the transferring leg then ends.
                                        tracing::info!("transfer target's REFER carried out");
                                        let _ = h.control.send(agent::AgentControl::ReferDone { status: 200 });
                                        handoff_rx = None;
                                    }
                                    _direct = direct_target
                                        .take()
                                        .map(|login| DirectCall::start(&self.services.acd, login));
                                    if let Some(q) = queued.as_mut() {
                                        self.refer_answered(q);
                                    }
                                    agent_leg = Some(leg);
                                    if let Some(s) = session.as_mut() {
                                        s.handle_transfer_result(true, now);
                                        // DESIGN §4: bridged calls are recorded in
                                        // stereo, caller left, agent right.
                                        let file = format!(
                                            "call-{}-{}.wav",
                                            crate::store::now_ms(),
                                            session::file_safe(&self.setup.call_id)
                                        );
                                        let path = self.services.recordings.join(file);
                                        s.leg().start_recording(
                                            path.clone(),
                                            crate::media::recorder::Layout::Stereo,
                                        );
                                        self.transferred = true;
                                        self.log.record(crate::thread::CallEvent::Recording {
                                            path: path.display().to_string(),
                                        });
                                    }
                                }
                                other => {
                                    if let Some(Err(err)) = other {
                                        tracing::error!(cause = %err, "cannot bridge the legs");
                                    }
                                    if let Some(control) = agent.take() {
                                        let _ = control.send(agent::AgentControl::End);
                                    }
                                    agent_rx = None;
                                    if let Some(s) = session.as_mut() {
                                        s.handle_transfer_result(false, now);
                                        if let Some(q) = queued.as_mut() {
                                            self.refer_failed(q, s, None);
                                        }
                                    }
                                }
                            }
                        }
                        agent::AgentEvent::Failed { status } => {
                            tracing::info!(?status, "transfer failed");
                            agent = None;
                            agent_rx = None;
                            if let Some(h) = handoff.take() {
                                // Back to the agent who transferred, who
                                // hears the failure (RFC 3515 §2.4.5).
                                if let Some(s) = session.as_mut() {
                                    s.leg().stop();
                                    if let Err(err) = s.leg().bridge(&h.leg) {
                                        tracing::error!(cause = %err, "cannot bridge the caller back");
                                    }
                                }
                                let status = status.filter(|s| *s >= 300).unwrap_or(408);
                                tracing::info!(status, "transfer failed; the caller is back with the agent");
                                let _ = h.control.send(agent::AgentControl::ReferDone { status });
                                agent = Some(h.control);
                                agent_rx = handoff_rx.take();
                                agent_leg = Some(h.leg);
                                _direct = h.direct;
                                continue;
                            }
                            if chained {
                                // The agent who transferred already left.
                                return self.hang_up(dialog, "transfer failed").await;
                            }
                            if let Some(s) = session.as_mut() {
                                s.handle_transfer_result(false, now);
                                if let Some(q) = queued.as_mut() {
                                    self.refer_failed(q, s, status);
                                }
                            }
                        }
                        agent::AgentEvent::Refer { to } => {
                            // The transfer target transfers the caller on.
                            let Some(control) = agent.clone() else { continue };
                            let done = |status| {
                                let _ = control.send(agent::AgentControl::ReferDone { status });
                            };
                            let (Some(s), Some(leg)) = (session.as_mut(), agent_leg.take()) else {
                                done(603);
                                continue;
                            };
                            match self.plan_refer(&to).await {
                                queue::ReferPlan::Unknown => {
                                    agent_leg = Some(leg);
                                    done(404);
                                }
                                queue::ReferPlan::Queue(queue) => {
                                    tracing::info!(%queue, "transfer target moved the caller to a queue");
                                    done(200);
                                    agent = None;
                                    agent_rx = None;
                                    _direct = None;
                                    let priority = queued.as_ref().map_or(0, |q| q.priority());
                                    s.requeue(&queue, priority);
                                    drop(leg);
                                }
                                queue::ReferPlan::Transfer(target) => {
                                    let direct = direct_agent(&target);
                                    let Some((login, devices)) = self.transfer_target(&target).await else {
                                        tracing::info!("REFER target not reachable");
                                        agent_leg = Some(leg);
                                        done(480);
                                        continue;
                                    };
                                    tracing::info!(agent = %login, "transfer target transfers the caller on");
                                    // The caller's queue's ring timeout, if it came through one.
                                    let ring_timeout = s.ring_timeout(queued.as_ref().map_or("", |q| q.queue()));
                                    s.leg().unbridge();
                                    s.play_ringback();
                                    let (next, events) = self
                                        .ring_transfer_target(&login, devices, direct, ring_timeout, s.leg().id())
                                        .await;
                                    handoff = Some(Handoff {
                                        control,
                                        leg,
                                        direct: _direct.take(),
                                    });
                                    handoff_rx = agent_rx.replace(events);
                                    agent = Some(next);
                                    direct_target = direct.then_some(login);
                                    chained = true;
                                }
                            }
                        }
                        agent::AgentEvent::Ended => {
                            drop(agent_leg.take());
                            return self.hang_up(dialog, "transfer target hung up").await;
                        }
                    }
                }
                Some(event) = recv_opt(handoff_rx.as_mut()) => {
                    // The transferring agent while its REFER's target rings:
                    // if it hangs up, the transfer goes on without it.
                    if matches!(event, agent::AgentEvent::Ended) {
                        tracing::info!("transferring agent left; the transfer goes on");
                        handoff = None;
                        handoff_rx = None;
                    }
                }
                Some(event) = recv_opt(queue_rx.as_mut()) => {
                    if let (Some(q), Some(s)) = (queued.as_mut(), session.as_mut()) {
                        self.handle_queue_event(q, s, event).await;
                    }
                }
                Some((login, event)) = recv_opt(offer_rx.as_mut()) => {
                    if let (Some(q), Some(s)) = (queued.as_mut(), session.as_mut()) {
                        self.handle_offer_event(q, s, login, event);
                    }
                }
                Some(event) = recv_opt(leg_rx.as_mut()) => {
                    if let Some(s) = session.as_mut() {
                        s.handle_leg_event(event, std::time::Instant::now());
                    }
                }
                Some(reply) = recv_opt(hook_rx.as_mut()) => {
                    if let Some(s) = session.as_mut() {
                        s.handle_webhook_reply(reply, std::time::Instant::now());
                    }
                }
                _ = sleep_until_opt(deadline) => {
                    if let Some(s) = session.as_mut() {
                        s.handle_timeout(std::time::Instant::now());
                    }
                }
            }
            if let (Some(q), Some(s)) = (queued.as_mut(), session.as_mut())
                && q.has_refer()
                && let Some((control, events, target)) = self.handle_refer(q, s).await
            {
                agent = Some(control);
                agent_rx = Some(events);
                direct_target = target;
            }
            if let Some(s) = session.as_mut()
                && let Some((target, timeout)) = s.take_transfer()
            {
                let near = s.leg().id();
                let direct = direct_agent(&target);
                match self.transfer_target(&target).await {
                    Some((login, devices)) => {
                        let (control, events) = self
                            .ring_transfer_target(&login, devices, direct, timeout, near)
                            .await;
                        direct_target = direct.then_some(login);
                        agent = Some(control);
                        agent_rx = Some(events);
                    }
                    None => {
                        tracing::info!(?target, "transfer target not reachable");
                        s.handle_transfer_result(false, std::time::Instant::now());
                    }
                }
            }
            if let Some(s) = session.as_mut()
                && let Some((queue, priority)) = s.take_enqueue()
            {
                if let Some(old) = queued.take() {
                    self.leave_queue(old);
                }
                let (q, inputs) = self.enqueue(queue, priority);
                *queued = Some(q);
                queue_rx = Some(inputs.events);
                offer_rx = Some(inputs.offers);
            }
            if agent_leg.is_some() {
                // Bridged: the flow is over; the call lasts until a side hangs up.
                continue;
            }
            if let Some(s) = session.as_ref()
                && let Some(end) = s.finished()
            {
                tracing::debug!(path = %s.path_json(), "flow path");
                let why = match end {
                    SessionEnd::FlowDone => "flow ended",
                    SessionEnd::MediaTimeout => "media timeout",
                };
                return self.hang_up(dialog, why).await;
            }
        }
    }

    fn read_late_answer(&mut self, body: &[u8]) {
        match SessionDescription::parse(body).and_then(|a| sdp::read_answer(&a)) {
            Ok(negotiated) => {
                if let Some(leg) = self.media.as_mut() {
                    leg.negotiated = Some(negotiated);
                }
            }
            Err(err) => tracing::debug!(cause = %err, "unusable SDP answer in ACK"),
        }
    }

    /// A request in the confirmed dialog; `Some` when it ends the call.
    fn in_dialog(
        &mut self,
        dialog: &mut Dialog,
        tx: ServerTxId,
        request: Request,
        session: Option<&Session>,
    ) -> Option<&'static str> {
        if let Err(err) = dialog.handle_request(&request) {
            self.respond(tx, err.response_to(&request));
            return None;
        }
        match request.method {
            Method::Bye => {
                self.respond(tx, dialog.response(&request, 200, "OK"));
                Some("caller hung up")
            }
            Method::Invite | Method::Update => {
                // Re-INVITE / UPDATE: hold, unhold or a new offer (RFC 3264 §8).
                let resp = if request.body.is_empty() {
                    let sdp = self
                        .media
                        .as_ref()
                        .map(|m| m.local_sdp.clone())
                        .unwrap_or_default();
                    Self::with_sdp(dialog.response(&request, 200, "OK"), &sdp)
                } else {
                    let hold = hold_state(&request.body);
                    tracing::info!(?hold, "media re-offer");
                    if let Some(leg) = self.media.as_mut() {
                        leg.version += 1;
                    }
                    match self.negotiate(&request.body) {
                        Ok(sdp) => {
                            let negotiated = self.media.as_ref().and_then(|m| m.negotiated);
                            if let (Some(s), Some(n)) = (session, negotiated) {
                                s.leg().update(n);
                                s.leg().hold(n.held);
                            }
                            Self::with_sdp(dialog.response(&request, 200, "OK"), &sdp)
                        }
                        Err((status, reason)) => dialog.response(&request, status, reason),
                    }
                };
                self.respond(tx, resp);
                None
            }
            Method::Options => {
                let mut resp = options_response(&request);
                if let Ok(to) = dialog_to(dialog, &resp) {
                    resp.headers.set(HeaderName::To, to);
                }
                self.respond(tx, resp);
                None
            }
            Method::Info | Method::Prack | Method::Notify => {
                self.respond(tx, dialog.response(&request, 200, "OK"));
                None
            }
            _ => {
                self.respond(tx, method_not_supported(&request));
                None
            }
        }
    }

    /// Sends BYE (§15.1.1) and waits a little for its answer.
    async fn hang_up(&mut self, dialog: &mut Dialog, why: &'static str) -> &'static str {
        let bye = match dialog.request(Method::Bye, &self.local_via()) {
            Ok(bye) => bye,
            Err(err) => {
                tracing::debug!(cause = %err, "cannot build BYE");
                return why;
            }
        };
        let _ = self.commands.send(EndpointCommand::Send {
            call_id: self.setup.call_id.clone(),
            request: bye,
            dest: self.setup.source,
        });
        let wait = tokio::time::sleep(BYE_WAIT);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => return why,
                event = self.events.recv() => match event {
                    None | Some(CallEvent::RequestFailed(_)) => return why,
                    Some(CallEvent::Response(r)) if r.status >= 200 && r.headers.cseq().is_ok_and(|c| c.method == Method::Bye) => return why,
                    Some(CallEvent::Request { tx, request }) => {
                        // A crossing BYE from the caller: answer it and finish.
                        let resp = dialog.response(&request, 200, "OK");
                        self.respond(tx, resp);
                        if request.method == Method::Bye {
                            return why;
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// The To header of a dialog response (our tag added).
fn dialog_to(
    dialog: &Dialog,
    resp: &Response,
) -> Result<String, crate::sip::message::ParseErrorKind> {
    let mut to = resp.headers.to()?;
    to.params.set("tag", Some(&dialog.id().local_tag));
    Ok(to.to_string())
}

/// Receives from an optional channel; pending forever when there is none.
/// An agent's call that the routing engine did not route (a transfer to
/// the agent): the agent is busy for queues until this is dropped.
struct DirectCall {
    acd: crate::acd::driver::AcdHandle,
    login: String,
}

impl DirectCall {
    fn start(acd: &crate::acd::driver::AcdHandle, login: String) -> DirectCall {
        acd.send(crate::acd::driver::AcdCommand::DirectCallStarted {
            login: login.clone(),
        });
        DirectCall {
            acd: acd.clone(),
            login,
        }
    }
}

impl Drop for DirectCall {
    fn drop(&mut self) {
        self.acd
            .send(crate::acd::driver::AcdCommand::DirectCallEnded {
                login: std::mem::take(&mut self.login),
            });
    }
}

impl Call {
    /// Rings every device of a transfer's target (a flow's `transfer` or
    /// a REFER); `direct` when it is one of our agents, whose offer is
    /// announced on the event stream.
    async fn ring_transfer_target(
        &self,
        login: &str,
        devices: Vec<(crate::sip::message::Uri, crate::sip::peer::Peer)>,
        direct: bool,
        ring_timeout: std::time::Duration,
        near: crate::media::engine::LegId,
    ) -> (
        mpsc::UnboundedSender<agent::AgentControl>,
        mpsc::UnboundedReceiver<agent::AgentEvent>,
    ) {
        let (screen_pop, facts) = self.screen_pop().await;
        if direct {
            self.announce_offer(facts, login, None);
        }
        let ringing = agent::RingAgent {
            login: login.to_owned(),
            caller: self.caller_number(),
            ring_timeout,
            near,
            screen_pop,
        };
        agent::ring_devices(
            self.services.clone(),
            self.commands.clone(),
            ringing,
            devices,
        )
    }
}

/// A transfer target whose REFER is ringing the next target.
struct Handoff {
    control: mpsc::UnboundedSender<agent::AgentControl>,
    leg: crate::media::engine::LegHandle,
    /// Its call as the routing engine knows it (ended when dropped).
    direct: Option<DirectCall>,
}

/// Whether a transfer target is one of our agents (by login or extension),
/// whose call the routing engine must know about.
fn direct_agent(target: &crate::ivr::model::TransferTarget) -> bool {
    use crate::ivr::model::TransferTarget;
    matches!(
        target,
        TransferTarget::Agent(_) | TransferTarget::Extension(_)
    )
}

async fn recv_opt<T>(rx: Option<&mut mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The digit of a SIP INFO carrying DTMF (`application/dtmf-relay`,
/// `application/dtmf`), if the request is one.
fn is_dtmf_info(request: &Request) -> Option<crate::media::dtmf::Digit> {
    if request.method != Method::Info {
        return None;
    }
    let content_type = request.headers.get(&HeaderName::ContentType)?;
    parse_info_body(content_type, &request.body)
        .ok()
        .map(|d| d.digit)
}
