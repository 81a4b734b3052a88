//! The answered part of a call: the flow run (sans-IO interpreter) driven by
//! the caller's media leg (prompts, digits, recording) and by webhooks.
//! Signalling stays in [`super::Call`]; this module turns the interpreter's
//! actions into media commands and the leg's events into interpreter inputs.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::acd::queues::OnRing;
use crate::ivr::interpreter::{
    Action, CallContext, FlowRun, QueueOutcome, WallClock, WebhookError as FlowWebhookError,
};
use crate::ivr::model::TransferTarget;
use crate::ivr::reload::LoadedFlows;
use crate::ivr::webhook::{WebhookClient, WebhookError};
use crate::media::engine::{LegEvent, LegEventKind, LegHandle, PlaybackId};
use crate::media::prompt::Prompt;
use crate::media::recorder::Layout;
use crate::thread::CallEvent;

use super::log::CallLog;

/// Why the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The flow hung up or finished: the switch sends BYE.
    FlowDone,
    /// The caller's media stopped arriving.
    MediaTimeout,
}

/// The voicemail steps the flow asked for.
enum Voicemail {
    Greeting { max: Duration, beep: bool },
    Beep { max: Duration },
    Recording { until: Instant },
    Stopping,
}

/// What a queued caller hears (DESIGN §6): the queue's music looped, an
/// announcement over it (the music waits, then goes on), or with
/// `on_ring: ringback` a ringback tone while an agent's phone rings.
struct Hold {
    music: Option<Arc<Prompt>>,
    on_ring: OnRing,
    /// An agent's phone said 180 Ringing and still rings.
    alerting: bool,
    /// The announcement playing, if any.
    announcing: Option<PlaybackId>,
}

impl Hold {
    fn ringback(&self) -> bool {
        self.alerting && self.on_ring == OnRing::Ringback
    }
}

/// The flow and media of one answered call.
pub struct Session {
    run: FlowRun,
    leg: LegHandle,
    flows: Arc<LoadedFlows>,
    recordings: PathBuf,
    call_id: String,
    webhooks: WebhookClient,
    webhook_tx:
        mpsc::UnboundedSender<Result<serde_json::Map<String, serde_json::Value>, FlowWebhookError>>,
    /// The playlist the flow is waiting on, if any.
    playing: Option<PlaybackId>,
    /// A transfer the flow asked for, for the call task to dial.
    transfer: Option<(TransferTarget, Duration)>,
    /// A queue the flow entered (name, priority), for the call task.
    enqueue: Option<(String, u32)>,
    voicemail: Option<Voicemail>,
    /// While the caller waits in a queue.
    hold: Option<Hold>,
    done: Option<SessionEnd>,
    /// The call record: the IVR path is written when the session ends.
    log: CallLog,
}

impl Drop for Session {
    /// Writes the path the caller took and a survey score (`vars.csat`)
    /// into the call record.
    fn drop(&mut self) {
        let flow = self.run.flow().clone();
        for step in self.run.path() {
            let digits = step.digits.as_str();
            self.log.record(CallEvent::Ivr {
                node: step.name(&flow).to_owned(),
                digits: (!digits.is_empty()).then(|| digits.to_owned()),
            });
        }
        let score = self
            .run
            .vars()
            .get("csat")
            .and_then(|v| v.to_string().trim_matches('"').parse::<i64>().ok());
        if let Some(score) = score {
            self.log.record(CallEvent::Survey { score });
        }
    }
}

/// What the session waits for besides SIP: leg events and webhook replies.
pub struct SessionInputs {
    pub leg_events: mpsc::UnboundedReceiver<LegEvent>,
    pub webhook_replies: mpsc::UnboundedReceiver<
        Result<serde_json::Map<String, serde_json::Value>, FlowWebhookError>,
    >,
}

/// A short 1 kHz tone when the sounds folder ships no `beep.wav`.
fn synthetic_beep() -> Prompt {
    let pcm = (0..3200)
        .map(|n| {
            let t = n as f32 / 8000.0;
            ((t * 1000.0 * std::f32::consts::TAU).sin() * 8000.0) as i16
        })
        .collect();
    Prompt::from_pcm("beep", pcm)
}

/// The ETSI ringback tone (ETSI ES 201 970, ITU-T E.180 for most of
/// Europe): 425 Hz, 1 s on, 4 s off, at about -13 dBm0. Made and encoded
/// once per process; played looped.
fn ringback_tone() -> Arc<Prompt> {
    static TONE: LazyLock<Arc<Prompt>> = LazyLock::new(|| {
        let on = 8000;
        let fade = 40.0; // 5 ms ramps: no clicks at the cadence edges
        let pcm = (0..5 * 8000)
            .map(|n| {
                if n >= on {
                    return 0;
                }
                let t = n as f32 / 8000.0;
                let ramp = (n as f32 / fade).min((on - n) as f32 / fade).min(1.0);
                ((t * 425.0 * std::f32::consts::TAU).sin() * 5000.0 * ramp) as i16
            })
            .collect();
        Arc::new(Prompt::from_pcm("ringback", pcm))
    });
    TONE.clone()
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        flows: Arc<LoadedFlows>,
        flow: Arc<crate::ivr::model::Flow>,
        ctx: CallContext,
        leg: LegHandle,
        recordings: PathBuf,
        call_id: String,
        webhooks: WebhookClient,
        log: CallLog,
        leg_events: mpsc::UnboundedReceiver<LegEvent>,
        now: Instant,
    ) -> (Session, SessionInputs) {
        let clock = WallClock::new(now, chrono::Utc::now());
        let mut run = FlowRun::new(flows.set.clone(), flow, ctx, clock, now);
        run.handle_start(now);
        let (webhook_tx, webhook_replies) = mpsc::unbounded_channel();
        let mut session = Session {
            run,
            leg,
            flows,
            recordings,
            call_id,
            webhooks,
            webhook_tx,
            playing: None,
            transfer: None,
            enqueue: None,
            voicemail: None,
            hold: None,
            done: None,
            log,
        };
        session.drain(now);
        (
            session,
            SessionInputs {
                leg_events,
                webhook_replies,
            },
        )
    }

    /// When the flow next needs [`Session::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let vm = match self.voicemail {
            Some(Voicemail::Recording { until }) => Some(until),
            _ => None,
        };
        [self.run.poll_timeout(), vm].into_iter().flatten().min()
    }

    /// Set once the call should end.
    pub fn finished(&self) -> Option<SessionEnd> {
        self.done
    }

    /// The path the caller took, for the call record.
    pub fn path_json(&self) -> serde_json::Value {
        self.run.path_json()
    }

    pub fn leg(&self) -> &LegHandle {
        &self.leg
    }

    /// The transfer the flow asked for (once).
    pub fn take_transfer(&mut self) -> Option<(TransferTarget, Duration)> {
        self.transfer.take()
    }

    /// The queue the flow entered (once): the call task enqueues the caller.
    pub fn take_enqueue(&mut self) -> Option<(String, u32)> {
        self.enqueue.take()
    }

    /// How long one agent of `queue` may ring.
    pub fn ring_timeout(&self, queue: &str) -> Duration {
        self.flows
            .set
            .queues()
            .get(queue)
            .map_or(Duration::from_secs(20), |q| q.ring_timeout)
    }

    /// Plays the queue's hold music looped (silence without one).
    fn hold_music(&mut self, queue: &str) {
        let config = self.flows.set.queues().get(queue);
        let music = config
            .and_then(|q| q.music.as_ref())
            .and_then(|m| self.flows.prompts.get(&m.name));
        self.hold = Some(Hold {
            music,
            on_ring: config.map_or(OnRing::Music, |q| q.on_ring),
            alerting: false,
            announcing: None,
        });
        self.hold_background();
        // Looped music never finishes: the flow waits on the queue.
        self.playing = None;
    }

    /// Plays `queue`'s hold music (an agent's REFER is ringing its target).
    pub fn play_hold_music(&mut self, queue: &str) {
        self.hold_music(queue);
    }

    /// Ringback while the target of a transfer's own REFER rings (no
    /// queue's music applies).
    pub fn play_ringback(&mut self) {
        self.hold = Some(Hold {
            music: None,
            on_ring: OnRing::Ringback,
            alerting: true,
            announcing: None,
        });
        self.hold_background();
        self.playing = None;
    }

    /// An agent's REFER sends the caller to `queue`: the bridge ends, the
    /// queue's music plays and the call task enqueues the caller again.
    pub fn requeue(&mut self, queue: &str, priority: u32) {
        self.leg.unbridge();
        self.hold_music(queue);
        self.enqueue = Some((queue.to_owned(), priority));
    }

    /// What a waiting caller hears between announcements: ringback while
    /// an agent rings (`on_ring: ringback`), else the music, else silence.
    fn hold_background(&mut self) {
        let Some(hold) = &self.hold else {
            return;
        };
        if hold.ringback() {
            self.leg.play(vec![ringback_tone()], false, true);
        } else if let Some(music) = &hold.music {
            self.leg.play(vec![music.clone()], false, true);
        } else {
            self.leg.stop();
        }
    }

    /// An agent's phone started (`true`) or stopped ringing for this
    /// caller: with `on_ring: ringback` the caller hears ringback instead
    /// of the music meanwhile.
    pub fn set_agent_ringing(&mut self, alerting: bool) {
        let Some(hold) = self.hold.as_mut() else {
            return;
        };
        if hold.alerting == alerting {
            return;
        }
        let was = hold.ringback();
        hold.alerting = alerting;
        // An announcement finishes first; then the right sound follows.
        if hold.ringback() != was && hold.announcing.is_none() {
            self.hold_background();
        }
    }

    /// The routing engine says it is time to tell the caller their position
    /// and estimated wait: the music pauses for the sentence made of the
    /// `announce/` recordings (pre-loaded with the flow version), then goes
    /// on where it stopped. Skipped while one is still playing or ringback
    /// plays.
    pub fn announce(&mut self, position: Option<u32>, ewt: Option<Duration>) {
        let Some(hold) = &self.hold else {
            return;
        };
        if hold.announcing.is_some() || hold.ringback() {
            tracing::debug!("announcement skipped: the caller hears another");
            return;
        }
        let prompts = &self.flows.prompts;
        let names =
            crate::acd::announce::sentence(position, ewt, &|name| prompts.get(name).is_some());
        if names.is_empty() {
            tracing::debug!(
                ?position,
                ?ewt,
                "nothing to announce with the loaded sounds"
            );
            return;
        }
        tracing::info!(sounds = ?names, "queue announcement");
        let prompts = self.prompts(&names);
        let id = self.leg.interject(prompts);
        if let Some(hold) = self.hold.as_mut() {
            hold.announcing = Some(id);
        }
    }

    /// What became of the caller in the queue: the music stops when an
    /// agent answers or the queue gives up; when the agent hangs up the
    /// bridge ends and the flow goes on (`after`, else hang up).
    pub fn handle_queue_result(&mut self, outcome: QueueOutcome, now: Instant) {
        // Music, announcement or ringback: whatever plays is cut at once.
        self.hold = None;
        match outcome {
            QueueOutcome::Answered { .. } => self.leg.stop(),
            QueueOutcome::GaveUp { .. } => {
                self.leg.stop();
                self.log.back_in_flow();
            }
            QueueOutcome::AgentHungUp => {
                self.leg.unbridge();
                self.log.back_in_flow();
            }
            QueueOutcome::CallerLeft => {}
        }
        self.run.handle_queue_result(outcome, now);
        self.drain(now);
    }

    /// The transfer reached its target (`true`, the call is now bridged)
    /// or failed (the flow goes on through the node's `next`).
    pub fn handle_transfer_result(&mut self, ok: bool, now: Instant) {
        if ok {
            // Whatever plays stops: the caller now hears the target.
            self.leg.stop();
            self.playing = None;
        }
        self.run.handle_transfer_result(ok, now);
        if ok {
            // The flow is over; the bridge, not the flow, decides the end.
            while self.run.poll_action().is_some() {}
        } else {
            self.drain(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(Voicemail::Recording { until }) = self.voicemail
            && now >= until
        {
            self.leg.stop_recording();
            self.voicemail = Some(Voicemail::Stopping);
        }
        self.run.handle_timeout(now);
        self.drain(now);
    }

    /// The caller hung up.
    pub fn handle_hangup(&mut self, now: Instant) {
        if matches!(self.voicemail, Some(Voicemail::Recording { .. })) {
            self.leg.stop_recording();
        }
        self.run.handle_hangup(now);
        // Nothing more is sent to a caller who is gone.
        while self.run.poll_action().is_some() {}
    }

    pub fn handle_webhook_reply(
        &mut self,
        reply: Result<serde_json::Map<String, serde_json::Value>, FlowWebhookError>,
        now: Instant,
    ) {
        self.run.handle_webhook_reply(reply, now);
        self.drain(now);
    }

    pub fn handle_leg_event(&mut self, event: LegEvent, now: Instant) {
        match event.kind {
            LegEventKind::PlaybackFinished { playback } => {
                if let Some(hold) = self.hold.as_mut()
                    && hold.announcing == Some(playback)
                {
                    // The music went on by itself where it paused; an agent
                    // that started ringing meanwhile brings the ringback.
                    hold.announcing = None;
                    if hold.ringback() {
                        self.hold_background();
                    }
                    return;
                }
                if self.playing != Some(playback) {
                    return; // a playlist the flow already moved past
                }
                self.playing = None;
                match self.voicemail.take() {
                    Some(Voicemail::Greeting { max, beep }) => self.after_greeting(max, beep),
                    Some(Voicemail::Beep { max }) => self.record(max, now),
                    other => {
                        self.voicemail = other;
                        self.run.handle_prompt_finished(now);
                    }
                }
            }
            LegEventKind::Digit { digit, barged, .. } => {
                if barged.is_some() && barged == self.playing {
                    self.playing = None;
                }
                match self.voicemail {
                    // A key ends the greeting or the message (`#` by habit).
                    Some(Voicemail::Greeting { max, beep }) => {
                        self.leg.stop();
                        self.playing = None;
                        self.voicemail = None;
                        self.after_greeting(max, beep);
                    }
                    Some(Voicemail::Recording { .. }) => {
                        self.leg.stop_recording();
                        self.voicemail = Some(Voicemail::Stopping);
                    }
                    _ => self.run.handle_digit(digit.as_char(), now),
                }
            }
            LegEventKind::RecordingFinished(result) => {
                self.voicemail = None;
                let path = match result {
                    Ok(info) => {
                        tracing::info!(seconds = info.duration.as_secs_f32(), "voicemail recorded");
                        let path = info.path.display().to_string();
                        self.log.record(CallEvent::Voicemail { path: path.clone() });
                        Some(path)
                    }
                    Err(err) => {
                        tracing::error!(cause = %err, "voicemail recording failed");
                        None
                    }
                };
                self.run.handle_voicemail_done(path, now);
            }
            LegEventKind::MediaTimeout { silent_for } => {
                tracing::info!(
                    seconds = silent_for.as_secs(),
                    "no media from the caller; hanging up"
                );
                self.done = Some(SessionEnd::MediaTimeout);
                return;
            }
            LegEventKind::RemoteLatched { .. } | LegEventKind::Closed { .. } => {}
        }
        self.drain(now);
    }

    fn prompts(&self, names: &[String]) -> Vec<Arc<Prompt>> {
        names
            .iter()
            .filter_map(|name| {
                let prompt = self.flows.prompts.get(name);
                if prompt.is_none() {
                    tracing::warn!(%name, "sound not loaded; skipped");
                }
                prompt
            })
            .collect()
    }

    fn play(&mut self, prompts: Vec<Arc<Prompt>>, barge: bool) {
        self.playing = Some(self.leg.play(prompts, barge, false));
    }

    fn after_greeting(&mut self, max: Duration, beep: bool) {
        if beep {
            let tone = self
                .flows
                .prompts
                .get("beep.wav")
                .unwrap_or_else(|| Arc::new(synthetic_beep()));
            self.voicemail = Some(Voicemail::Beep { max });
            self.play(vec![tone], false);
        } else {
            self.record(max, Instant::now());
        }
    }

    fn record(&mut self, max: Duration, now: Instant) {
        let file = format!(
            "voicemail-{}-{}.wav",
            crate::store::now_ms(),
            file_safe(&self.call_id)
        );
        self.leg
            .start_recording(self.recordings.join(file), Layout::Mono);
        self.voicemail = Some(Voicemail::Recording { until: now + max });
    }

    /// Carries out every action the run has queued.
    fn drain(&mut self, _now: Instant) {
        while let Some(action) = self.run.poll_action() {
            match action {
                Action::Play { sounds, barge } => {
                    let prompts = self.prompts(&sounds);
                    self.play(prompts, barge);
                }
                Action::StopPlayback => {
                    self.leg.stop();
                    self.playing = None;
                }
                Action::Enqueue { queue, priority } => {
                    // The caller hears the queue's music (looped) until an
                    // agent answers or the queue gives up.
                    self.hold_music(&queue);
                    self.enqueue = Some((queue.to_string(), priority));
                }
                Action::Transfer { target, timeout } => {
                    self.transfer = Some(((*target).clone(), timeout));
                }
                Action::RecordVoicemail {
                    greeting,
                    max,
                    beep,
                } => {
                    let prompts = self.prompts(&greeting);
                    if prompts.is_empty() {
                        self.after_greeting(max, beep);
                    } else {
                        self.voicemail = Some(Voicemail::Greeting { max, beep });
                        self.play(prompts, true);
                    }
                }
                Action::CallWebhook { url, body, timeout } => {
                    let client = self.webhooks.clone();
                    let back = self.webhook_tx.clone();
                    let url = url.to_string();
                    tokio::spawn(async move {
                        let reply = client.call(&url, &body, timeout).await.map_err(flow_error);
                        if let Err(err) = &reply {
                            tracing::debug!(cause = %err, "webhook failed");
                        }
                        let _ = back.send(reply);
                    });
                }
                Action::HangUp | Action::Finished => {
                    self.done = Some(SessionEnd::FlowDone);
                }
            }
        }
    }
}

/// The interpreter only needs to know the kind of failure.
fn flow_error(err: WebhookError) -> FlowWebhookError {
    match err {
        WebhookError::Timeout(_) => FlowWebhookError::Timeout,
        WebhookError::InvalidUrl
        | WebhookError::UnsupportedScheme(_)
        | WebhookError::Request(_) => FlowWebhookError::Unreachable,
        WebhookError::Status(code) => FlowWebhookError::Status(code),
        WebhookError::TooLarge | WebhookError::NotJson(_) | WebhookError::NotObject => {
            FlowWebhookError::BadReply
        }
    }
}

/// A Call-ID made safe for a file name.
pub(super) fn file_safe(call_id: &str) -> String {
    call_id
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `freq` in `pcm` relative to the total (a one-bin DFT).
    fn share(pcm: &[i16], freq: f64) -> f64 {
        let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
        for (n, &x) in pcm.iter().enumerate() {
            let x = f64::from(x);
            let w = std::f64::consts::TAU * freq * n as f64 / 8000.0;
            re += x * w.cos();
            im += x * w.sin();
            total += x * x;
        }
        (re * re + im * im) * 2.0 / (pcm.len() as f64 * total.max(1.0))
    }

    #[test]
    fn ringback_is_425_hz_one_second_on_four_off() {
        let tone = ringback_tone();
        assert_eq!(tone.duration, Duration::from_secs(5));
        assert_eq!(tone.frame_count(), 250);
        let (on, off) = tone.pcm.split_at(8000);
        assert!(share(on, 425.0) > 0.95, "{}", share(on, 425.0));
        assert!(share(on, 440.0) < 0.05);
        assert!(off.iter().all(|&s| s == 0));
        // Made once: every call shares the same frames.
        assert!(Arc::ptr_eq(&tone, &ringback_tone()));
    }
}
