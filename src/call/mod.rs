//! The per-call task: one tokio task per inbound call joins the caller's
//! dialog, the media offer/answer and (as they arrive) the flow, queue and
//! thread. It runs in the span `call{call_id}`.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ivr::numbers::FlowEntry;
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
}

/// A new inbound call.
pub struct CallSetup {
    pub invite_tx: ServerTxId,
    pub invite: Request,
    pub source: Peer,
    pub flow: FlowEntry,
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
            let mut call = Call {
                services,
                setup,
                events,
                commands: commands.clone(),
                media: None,
            };
            let outcome = call.run().await;
            tracing::info!(outcome, "call ended");
            let _ = commands.send(EndpointCommand::Ended { call_id });
        }
        .instrument(span),
    );
}

/// The media side of a call as far as signalling knows it: the leased
/// port with its bound sockets, and what offer/answer agreed.
struct MediaLeg {
    lease: PortLease,
    _rtp: UdpSocket,
    _rtcp: UdpSocket,
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
}

impl Call {
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
            lease,
            _rtp: rtp,
            _rtcp: rtcp,
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
            port: leg.lease.rtp_port(),
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
                    }
                }
            }
        }
        let ok = Self::with_sdp(dialog.response(&self.setup.invite, 200, "OK"), &sdp);
        dialog.handle_sent_response(&ok);
        self.respond(invite_tx, ok);
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

    async fn confirmed(&mut self, dialog: &mut Dialog) -> &'static str {
        loop {
            let Some(event) = self.events.recv().await else {
                return "endpoint gone";
            };
            match event {
                CallEvent::Ack(ack) => {
                    if self.media.as_ref().is_some_and(|m| m.negotiated.is_none())
                        && !ack.body.is_empty()
                    {
                        self.read_late_answer(&ack.body);
                    }
                    tracing::debug!("ACK received");
                }
                CallEvent::AckTimeout => {
                    tracing::info!("no ACK for our 200; hanging up");
                    return self.hang_up(dialog, "no ACK").await;
                }
                CallEvent::Request { tx, request } => {
                    if let Some(end) = self.in_dialog(dialog, tx, request) {
                        return end;
                    }
                }
                CallEvent::Shutdown => return self.hang_up(dialog, "switch shutting down").await,
                CallEvent::Cancelled | CallEvent::Response(_) | CallEvent::RequestFailed(_) => {}
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
                        Ok(sdp) => Self::with_sdp(dialog.response(&request, 200, "OK"), &sdp),
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
