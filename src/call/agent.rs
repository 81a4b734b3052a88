//! The switch's own call to an agent's phone (B2BUA, DESIGN §3): a UAC
//! INVITE with an SDP offer to one registered contact (RFC 3261 §13.2), the
//! agent's dialog, and a media leg on the caller's worker so the two can be
//! bridged. It runs as its own task; the caller's call task talks to it
//! through [`AgentControl`] and hears from it through [`AgentEvent`].

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::CallServices;
use crate::media::engine::{LegHandle, LegId, LegSetup};
use crate::media::sdp::{self, LocalMedia, SessionDescription};
use crate::sip::dialog::{Dialog, LocalVia, new_branch, new_tag};
use crate::sip::endpoint::{CallEvent, EndpointCommand};
use crate::sip::message::{HeaderName, Headers, Method, NameAddr, Request, Response, Uri};

/// How long the agent leg waits for the answer to its BYE or CANCEL.
const END_WAIT: Duration = Duration::from_secs(4);

/// Who to call and on whose behalf.
pub struct AgentDial {
    /// Shown in To: the agent login, or the user part of a dialled URI.
    pub login: String,
    /// The device's address (a registered Contact, or a transfer URI).
    pub contact: Uri,
    /// Where requests go: the registration's source (phones behind NAT).
    pub dest: crate::sip::peer::Peer,
    /// The caller's number, shown to the agent (From display and
    /// P-Asserted-Identity).
    pub caller: Option<String>,
    /// How long the phone may ring.
    pub ring_timeout: Duration,
    /// The caller's media leg: the agent's leg goes on the same worker.
    pub near: LegId,
    /// The caller's thread and contact, named on the INVITE (DESIGN §7).
    pub screen_pop: Option<super::screen::ScreenPop>,
}

/// News from the agent leg.
#[derive(Debug)]
pub enum AgentEvent {
    Ringing,
    /// The agent answered; its media leg is open.
    Answered(LegHandle),
    /// The agent's phone refused, did not answer in time, or failed.
    Failed {
        status: Option<u16>,
    },
    /// The agent hung up (or the leg ended) after answering.
    Ended,
    /// The agent transferred the caller blind with REFER (RFC 3515): the
    /// REFER was accepted (202) and `Refer-To` is this URI. The caller's
    /// task moves the caller and answers with [`AgentControl::ReferDone`].
    Refer {
        to: Uri,
    },
}

/// What the caller's task can ask of the agent leg.
#[derive(Debug, Clone, Copy)]
pub enum AgentControl {
    /// Stop ringing / hang up.
    End,
    /// How the transfer asked by [`AgentEvent::Refer`] ended: the final
    /// NOTIFY reports `status`; on success (2xx) the agent's leg then
    /// ends with BYE, otherwise the agent keeps the caller.
    ReferDone { status: u16 },
}

/// Starts the agent leg; events come back on the returned receiver.
pub fn dial(
    services: Arc<CallServices>,
    commands: mpsc::UnboundedSender<EndpointCommand>,
    dial: AgentDial,
) -> (
    mpsc::UnboundedSender<AgentControl>,
    mpsc::UnboundedReceiver<AgentEvent>,
) {
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let span = tracing::info_span!("agent_leg", agent = %dial.login);
    tokio::spawn(
        async move {
            let call_id = format!("{}-agent@switchboard", new_tag());
            let mut leg = AgentLeg {
                services,
                commands,
                call_id,
                control: control_rx,
                to_caller: events_tx,
            };
            leg.run(dial).await;
            let _ = leg.commands.send(EndpointCommand::Ended {
                call_id: leg.call_id.clone(),
            });
        }
        .instrument(span),
    );
    (control_tx, events_rx)
}

/// Whom a call rings, on every device alike: the [`AgentDial`] fields that
/// do not depend on the device.
pub struct RingAgent {
    pub login: String,
    pub caller: Option<String>,
    pub ring_timeout: Duration,
    pub near: LegId,
    pub screen_pop: Option<super::screen::ScreenPop>,
}

/// Rings `devices` (each a contact and where to send to; newest
/// registration first) for `ring`: [`dial_forked`] over one [`AgentDial`]
/// per device.
pub fn ring_devices(
    services: Arc<CallServices>,
    commands: mpsc::UnboundedSender<EndpointCommand>,
    ring: RingAgent,
    devices: Vec<(Uri, crate::sip::peer::Peer)>,
) -> (
    mpsc::UnboundedSender<AgentControl>,
    mpsc::UnboundedReceiver<AgentEvent>,
) {
    tracing::info!(login = %ring.login, devices = devices.len(), "ringing the agent");
    let dials = devices
        .into_iter()
        .map(|(contact, dest)| AgentDial {
            login: ring.login.clone(),
            contact,
            dest,
            caller: ring.caller.clone(),
            ring_timeout: ring.ring_timeout,
            near: ring.near,
            screen_pop: ring.screen_pop.clone(),
        })
        .collect();
    dial_forked(services, commands, dials)
}

/// Rings every device of one agent at once (parallel forking): one
/// [`dial`] per registered contact, seen by the caller's task as a single
/// agent leg. The first device to answer wins and the others are ended
/// (CANCEL while they ring; a 2xx that races in is ACKed, then BYEd by its
/// own leg, RFC 3261 §13.2.2.4). `Ringing` is told once, `Answered` and
/// the winner's later news as they come, and `Failed` only when every
/// device failed. A single device is simply [`dial`]led.
pub fn dial_forked(
    services: Arc<CallServices>,
    commands: mpsc::UnboundedSender<EndpointCommand>,
    mut dials: Vec<AgentDial>,
) -> (
    mpsc::UnboundedSender<AgentControl>,
    mpsc::UnboundedReceiver<AgentEvent>,
) {
    if dials.len() == 1 {
        return dial(services, commands, dials.remove(0));
    }
    let (control_tx, mut control) = mpsc::unbounded_channel::<AgentControl>();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (fork_tx, mut forks_rx) = mpsc::unbounded_channel();
    let mut forks = Vec::with_capacity(dials.len());
    for (i, d) in dials.into_iter().enumerate() {
        let (fork_control, mut fork_events) = dial(services.clone(), commands.clone(), d);
        forks.push(Some(fork_control));
        let tx = fork_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = fork_events.recv().await {
                if tx.send((i, event)).is_err() {
                    break;
                }
            }
        });
    }
    drop(fork_tx);
    tokio::spawn(
        async move {
            let mut forking = Forking::new(forks.len());
            loop {
                tokio::select! {
                    c = control.recv() => match c {
                        Some(c) => {
                            for (i, f) in forks.iter().enumerate() {
                                if forking.controls(i) && let Some(f) = f {
                                    let _ = f.send(c.clone());
                                }
                            }
                        }
                        // The caller's task let go: every device is ended.
                        None => return,
                    },
                    news = forks_rx.recv() => {
                        let Some((i, event)) = news else { return };
                        let news = ForkNews::of(&event);
                        let verdict = forking.handle(i, news);
                        for j in verdict.end {
                            tracing::info!(fork = j, "another device answered; ending this one");
                            if let Some(f) = forks.get_mut(j) {
                                // Dropping the control ends the fork: CANCEL
                                // while ringing, BYE once answered.
                                *f = None;
                            }
                        }
                        // An event not passed on is dropped here: a late
                        // answer's media leg closes with it.
                        let event = match news {
                            ForkNews::Failed(_) => AgentEvent::Failed { status: forking.failed_status() },
                            _ => event,
                        };
                        if verdict.forward && events_tx.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        .instrument(tracing::Span::current()),
    );
    (control_tx, events_rx)
}

/// What kind of news a fork sent, for [`Forking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForkNews {
    Ringing,
    Answered,
    Failed(Option<u16>),
    /// Anything else (the agent hung up, …): only the winner's counts.
    Other,
}

impl ForkNews {
    fn of(event: &AgentEvent) -> ForkNews {
        match event {
            AgentEvent::Ringing => ForkNews::Ringing,
            AgentEvent::Answered(_) => ForkNews::Answered,
            AgentEvent::Failed { status } => ForkNews::Failed(*status),
            _ => ForkNews::Other,
        }
    }
}

/// What to do with one fork's news.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// Pass the event on to the caller's task.
    forward: bool,
    /// Forks to end now.
    end: Vec<usize>,
}

/// The sans-IO part of [`dial_forked`]: which fork's news reaches the
/// caller's task, and which forks must end.
#[derive(Debug)]
struct Forking {
    /// Forks not yet failed.
    live: Vec<bool>,
    rang: bool,
    winner: Option<usize>,
    /// The most telling failure so far: a refusal beats a cancel (487),
    /// which beats no answer at all.
    failure: Option<u16>,
}

impl Forking {
    fn new(n: usize) -> Forking {
        Forking {
            live: vec![true; n],
            rang: false,
            winner: None,
            failure: None,
        }
    }

    /// Whether fork `i` gets the caller task's controls: all of them until
    /// one answers, then the winner only.
    fn controls(&self, i: usize) -> bool {
        self.winner.is_none_or(|w| w == i)
    }

    /// News from fork `i`. A `Failed` that is passed on carries
    /// [`Forking::failure`] (see [`Forking::failed_status`]).
    fn handle(&mut self, i: usize, news: ForkNews) -> Verdict {
        let pass = |forward| Verdict {
            forward,
            end: Vec::new(),
        };
        match (self.winner, news) {
            (None, ForkNews::Ringing) => {
                let first = !self.rang;
                self.rang = true;
                pass(first)
            }
            (None, ForkNews::Answered) => {
                self.winner = Some(i);
                let end = (0..self.live.len())
                    .filter(|&j| j != i && self.live[j])
                    .collect();
                Verdict { forward: true, end }
            }
            (None, ForkNews::Failed(status)) => {
                if let Some(live) = self.live.get_mut(i) {
                    *live = false;
                }
                self.failure = match (self.failure, status) {
                    (Some(old), Some(487)) => Some(old),
                    (_, Some(s)) => Some(s),
                    (old, None) => old,
                };
                pass(!self.live.iter().any(|&l| l))
            }
            // A second device answered too late: its leg is dropped and
            // the fork hangs up.
            (Some(w), ForkNews::Answered) if w != i => Verdict {
                forward: false,
                end: vec![i],
            },
            (Some(w), _) => pass(w == i),
            (None, ForkNews::Other) => pass(false),
        }
    }

    /// The status to report when every fork failed.
    fn failed_status(&self) -> Option<u16> {
        self.failure
    }
}

struct AgentLeg {
    services: Arc<CallServices>,
    commands: mpsc::UnboundedSender<EndpointCommand>,
    call_id: String,
    control: mpsc::UnboundedReceiver<AgentControl>,
    to_caller: mpsc::UnboundedSender<AgentEvent>,
}

impl AgentLeg {
    fn tell(&self, event: AgentEvent) {
        let _ = self.to_caller.send(event);
    }

    async fn run(&mut self, dial: AgentDial) {
        let services = self.services.clone();
        let bind_ip = services.bind_ip;
        let leased = services.ports.allocate_with(|port| {
            let rtp = UdpSocket::bind((bind_ip, port)).ok()?;
            let rtcp = UdpSocket::bind((bind_ip, port + 1)).ok()?;
            Some((rtp, rtcp))
        });
        let Some((lease, (rtp, rtcp))) = leased else {
            tracing::warn!("no free RTP port for the agent leg");
            return self.tell(AgentEvent::Failed { status: None });
        };
        let session_id = u64::from(rand::random::<u32>());
        let local = LocalMedia {
            addr: services.media_ip,
            port: lease.rtp_port(),
            session_id,
            version: session_id,
        };
        let invite = self.invite(&dial, &sdp::offer(&local).to_string());
        let dest = dial.dest;
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let _ = self.commands.send(EndpointCommand::Originate {
            call_id: self.call_id.clone(),
            request: invite.clone(),
            dest,
            events: events_tx,
        });
        let via = LocalVia::new(services.advertised.to_string(), dest.transport);
        let ring = tokio::time::sleep(dial.ring_timeout);
        tokio::pin!(ring);
        let mut cancelled = false;
        // Until the final response.
        let (mut dialog, ok) = loop {
            tokio::select! {
                _ = &mut ring, if !cancelled => {
                    tracing::info!("agent did not answer in time");
                    cancelled = true;
                    let _ = self.commands.send(EndpointCommand::Cancel { call_id: self.call_id.clone() });
                }
                control = self.control.recv() => {
                    if matches!(control, Some(AgentControl::End) | None) && !cancelled {
                        cancelled = true;
                        let _ = self.commands.send(EndpointCommand::Cancel { call_id: self.call_id.clone() });
                    }
                }
                event = events.recv() => match event {
                    None => return self.tell(AgentEvent::Failed { status: None }),
                    Some(CallEvent::Response(resp)) if resp.is_provisional() => {
                        if resp.status >= 180 {
                            self.tell(AgentEvent::Ringing);
                        }
                    }
                    Some(CallEvent::Response(resp)) if resp.is_success() => {
                        match Dialog::new_uac(&invite, &resp) {
                            Ok(d) => break (d, resp),
                            Err(err) => {
                                tracing::debug!(cause = %err, "unusable 2xx from the agent");
                                return self.tell(AgentEvent::Failed { status: Some(resp.status) });
                            }
                        }
                    }
                    Some(CallEvent::Response(resp)) => {
                        tracing::info!(status = resp.status, "agent leg refused");
                        return self.tell(AgentEvent::Failed { status: Some(resp.status) });
                    }
                    Some(CallEvent::RequestFailed(_)) => {
                        tracing::info!("agent's phone did not respond");
                        return self.tell(AgentEvent::Failed { status: None });
                    }
                    Some(_) => {}
                }
            }
        };
        // §13.2.2.4: ACK the 2xx (also when we meant to cancel: then BYE).
        self.ack(&dialog, &ok, &via, dest);
        let negotiated = SessionDescription::parse(&ok.body).and_then(|a| sdp::read_answer(&a));
        let negotiated = match negotiated {
            Ok(n) if !cancelled => n,
            other => {
                if let Err(err) = other {
                    tracing::info!(cause = %err, "agent answered without usable media");
                }
                self.bye(&mut dialog, &via, dest, &mut events).await;
                return self.tell(AgentEvent::Failed {
                    status: Some(ok.status),
                });
            }
        };
        let (media_tx, _media_rx) = mpsc::unbounded_channel();
        let leg = match services.engine.open_leg(LegSetup {
            lease,
            rtp,
            rtcp,
            negotiated,
            events: media_tx,
            near: Some(dial.near),
        }) {
            Ok(leg) => leg,
            Err(err) => {
                tracing::error!(cause = %err, "cannot open the agent's media leg");
                self.bye(&mut dialog, &via, dest, &mut events).await;
                return self.tell(AgentEvent::Failed { status: None });
            }
        };
        tracing::info!("agent answered");
        self.tell(AgentEvent::Answered(leg));
        // The CSeq of a REFER being carried out (RFC 3515 §2.4.6 `id`).
        let mut referring: Option<u32> = None;
        // Until either side hangs up.
        loop {
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(AgentControl::ReferDone { status }) => {
                        let Some(id) = referring.take() else { continue };
                        let left = self.notify_refer(&mut dialog, &via, dest, id, status, &mut events).await;
                        if (200..300).contains(&status) {
                            tracing::info!("caller transferred; ending the agent's leg");
                            if !left {
                                self.bye(&mut dialog, &via, dest, &mut events).await;
                            }
                            return self.tell(AgentEvent::Ended);
                        }
                        if left {
                            tracing::info!("agent hung up");
                            return self.tell(AgentEvent::Ended);
                        }
                    }
                    Some(AgentControl::End) | None => {
                        self.bye(&mut dialog, &via, dest, &mut events).await;
                        return self.tell(AgentEvent::Ended);
                    }
                },
                event = events.recv() => match event {
                    None => return self.tell(AgentEvent::Ended),
                    Some(CallEvent::Response(resp))
                        if resp.is_success()
                            && resp.headers.cseq().is_ok_and(|c| c.method == Method::Invite) =>
                    {
                        // A retransmitted 2xx: ACK it again.
                        self.ack(&dialog, &resp, &via, dest);
                    }
                    Some(CallEvent::Request { tx, request }) if request.method == Method::Refer => {
                        self.handle_refer(&mut dialog, tx, &request, &via, dest, &mut referring);
                    }
                    Some(CallEvent::Request { tx, request }) => {
                        let ends = request.method == Method::Bye;
                        let resp = match dialog.handle_request(&request) {
                            Ok(()) => dialog.response(&request, 200, "OK"),
                            Err(err) => err.response_to(&request),
                        };
                        let _ = self.commands.send(EndpointCommand::Respond { tx, response: resp });
                        if ends {
                            tracing::info!("agent hung up");
                            return self.tell(AgentEvent::Ended);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }

    fn ack(&self, dialog: &Dialog, ok: &Response, via: &LocalVia, dest: crate::sip::peer::Peer) {
        match dialog.ack_for(ok, via) {
            Ok(ack) => {
                let _ = self
                    .commands
                    .send(EndpointCommand::Ack { request: ack, dest });
            }
            Err(err) => tracing::debug!(cause = %err, "cannot build ACK"),
        }
    }

    async fn bye(
        &self,
        dialog: &mut Dialog,
        via: &LocalVia,
        dest: crate::sip::peer::Peer,
        events: &mut mpsc::UnboundedReceiver<CallEvent>,
    ) {
        let Ok(bye) = dialog.request(Method::Bye, via) else {
            return;
        };
        self.send_and_wait(dialog, bye, dest, events).await;
    }

    /// Sends an in-dialog request and waits (bounded) for its final
    /// answer. Requests of the agent meanwhile are answered; `true` when
    /// one was a BYE (the agent hung up).
    async fn send_and_wait(
        &self,
        dialog: &mut Dialog,
        request: Request,
        dest: crate::sip::peer::Peer,
        events: &mut mpsc::UnboundedReceiver<CallEvent>,
    ) -> bool {
        let method = request.method.clone();
        let _ = self.commands.send(EndpointCommand::Send {
            call_id: self.call_id.clone(),
            request,
            dest,
        });
        let mut hung_up = false;
        let _ = tokio::time::timeout(END_WAIT, async {
            while let Some(event) = events.recv().await {
                match event {
                    CallEvent::Response(r)
                        if r.status >= 200
                            && r.headers.cseq().is_ok_and(|c| c.method == method) =>
                    {
                        return;
                    }
                    CallEvent::RequestFailed(_) => return,
                    CallEvent::Request { tx, request } => {
                        let response = match dialog.handle_request(&request) {
                            Ok(()) => dialog.response(&request, 200, "OK"),
                            Err(err) => err.response_to(&request),
                        };
                        let _ = self
                            .commands
                            .send(EndpointCommand::Respond { tx, response });
                        hung_up |= request.method == Method::Bye;
                    }
                    _ => {}
                }
            }
        })
        .await;
        hung_up
    }

    /// A REFER from the agent (RFC 3515 §2.4.2): 400 unless it has exactly
    /// one SIP Refer-To (§2.4.1), 491 while another is being carried out;
    /// else 202 Accepted, the first NOTIFY (`SIP/2.0 100 Trying`, §2.4.4)
    /// and the caller's task is told where to move the caller.
    fn handle_refer(
        &self,
        dialog: &mut Dialog,
        tx: crate::sip::transaction::ServerTxId,
        request: &Request,
        via: &LocalVia,
        dest: crate::sip::peer::Peer,
        referring: &mut Option<u32>,
    ) {
        let respond = |response| {
            let _ = self
                .commands
                .send(EndpointCommand::Respond { tx, response });
        };
        if let Err(err) = dialog.handle_request(request) {
            return respond(err.response_to(request));
        }
        let to = match super::refer::refer_to(request) {
            Ok(to) => to,
            Err(err) => {
                tracing::info!(cause = %err, "REFER refused");
                return respond(dialog.response(request, 400, err.reason()));
            }
        };
        if referring.is_some() {
            return respond(dialog.response(request, 491, "Request Pending"));
        }
        let id = request.headers.cseq().map_or(0, |c| c.seq);
        respond(dialog.response(request, 202, "Accepted"));
        tracing::info!("agent transfers the caller with REFER");
        tracing::debug!(refer_to = %to, "REFER target");
        *referring = Some(id);
        if let Ok(mut notify) = dialog.request(Method::Notify, via) {
            super::refer::fill_notify(&mut notify, id, 100);
            let _ = self.commands.send(EndpointCommand::Send {
                call_id: self.call_id.clone(),
                request: notify,
                dest,
            });
        }
        self.tell(AgentEvent::Refer { to });
    }

    /// The final NOTIFY of a REFER (RFC 3515 §2.4.5, §2.4.7), answered
    /// before the leg goes on; `true` when the agent hung up meanwhile.
    async fn notify_refer(
        &self,
        dialog: &mut Dialog,
        via: &LocalVia,
        dest: crate::sip::peer::Peer,
        id: u32,
        status: u16,
        events: &mut mpsc::UnboundedReceiver<CallEvent>,
    ) -> bool {
        let Ok(mut notify) = dialog.request(Method::Notify, via) else {
            return false;
        };
        super::refer::fill_notify(&mut notify, id, status);
        self.send_and_wait(dialog, notify, dest, events).await
    }

    /// The INVITE to the agent's device (RFC 3261 §8.1.1).
    fn invite(&self, dial: &AgentDial, sdp: &str) -> Request {
        let s = &self.services;
        let host = s.advertised.ip().to_string();
        let transport = dial.dest.transport;
        let caller_user = dial
            .caller
            .clone()
            .unwrap_or_else(|| "anonymous".to_owned());
        let from = NameAddr {
            display: dial.caller.clone(),
            uri: Uri::sip(Some(&caller_user), &host, None),
            params: {
                let mut p = crate::sip::message::Params::default();
                p.set("tag", Some(&new_tag()));
                p
            },
        };
        let to = NameAddr {
            display: None,
            uri: Uri::sip(Some(&dial.login), &host, None),
            params: Default::default(),
        };
        let mut contact = Uri::sip(Some("switchboard"), &host, Some(s.advertised.port()));
        if transport.is_reliable() {
            contact.params.set("transport", Some("tcp"));
        }
        let mut headers = Headers::new();
        headers.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={};rport",
                transport.as_str(),
                s.advertised,
                new_branch()
            ),
        );
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(HeaderName::From, from.to_string());
        headers.push(HeaderName::To, to.to_string());
        headers.push(HeaderName::CallId, self.call_id.clone());
        headers.push(HeaderName::CSeq, "1 INVITE");
        headers.push(HeaderName::Contact, format!("<{contact}>"));
        if let Some(number) = &dial.caller {
            headers.push(
                HeaderName::PAssertedIdentity,
                format!("<sip:{number}@{host}>"),
            );
        }
        if let Some(pop) = &dial.screen_pop {
            for (name, value) in pop.headers() {
                headers.push(name, value);
            }
        }
        // The agent's phone may transfer the caller with REFER (RFC 3515).
        headers.push(
            HeaderName::Allow,
            format!("{}, REFER", crate::sip::dialog::ALLOW),
        );
        headers.push(HeaderName::ContentType, "application/sdp");
        Request {
            method: Method::Invite,
            uri: dial.contact.clone(),
            headers,
            body: sdp.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(forward: bool) -> Verdict {
        Verdict {
            forward,
            end: Vec::new(),
        }
    }

    #[test]
    fn first_answer_wins_and_ends_the_other_devices() {
        let mut f = Forking::new(3);
        assert_eq!(f.handle(0, ForkNews::Ringing), pass(true));
        // Ringing is told once however many devices ring.
        assert_eq!(f.handle(1, ForkNews::Ringing), pass(false));
        assert_eq!(f.handle(2, ForkNews::Failed(Some(486))), pass(false));
        assert!(f.controls(0) && f.controls(1));
        assert_eq!(
            f.handle(1, ForkNews::Answered),
            Verdict {
                forward: true,
                end: vec![0],
            }
        );
        assert!(f.controls(1) && !f.controls(0));
        // RFC 3261 §13.2.2.4: a second 2xx is not bridged; its fork ends
        // (the leg ACKs it, then sends BYE).
        assert_eq!(
            f.handle(0, ForkNews::Answered),
            Verdict {
                forward: false,
                end: vec![0],
            }
        );
        // The losers' failures are not the agent's: only the winner speaks.
        assert_eq!(f.handle(0, ForkNews::Failed(Some(487))), pass(false));
        assert_eq!(f.handle(1, ForkNews::Other), pass(true));
    }

    #[test]
    fn failed_only_when_every_device_failed() {
        let mut f = Forking::new(3);
        assert_eq!(f.handle(0, ForkNews::Failed(Some(487))), pass(false));
        assert_eq!(f.handle(1, ForkNews::Failed(None)), pass(false));
        assert_eq!(f.handle(2, ForkNews::Failed(Some(487))), pass(true));
        assert_eq!(f.failed_status(), Some(487));
        // A refusal (busy, decline) tells more than a cancel or silence.
        let mut f = Forking::new(2);
        f.handle(0, ForkNews::Failed(Some(486)));
        assert_eq!(f.handle(1, ForkNews::Failed(Some(487))), pass(true));
        assert_eq!(f.failed_status(), Some(486));
        // No device ever responded: a missed offer (no status).
        let mut f = Forking::new(2);
        f.handle(0, ForkNews::Failed(None));
        assert_eq!(f.handle(1, ForkNews::Failed(None)), pass(true));
        assert_eq!(f.failed_status(), None);
    }
}
