//! The sans-IO core of one call leg (DESIGN §4): everything a leg does
//! between its UDP sockets and its call, with time as an input.
//!
//! Inputs: [`LegCore::handle_rtp`] and [`LegCore::handle_rtcp`] for each
//! datagram (with its source address), [`LegCore::handle_tick`] on the
//! worker's 20 ms grid, [`LegCore::handle_relay`] for a packet the bridged
//! leg received, and [`LegCore::handle_command`]. Outputs: packets to send
//! (written into the caller's buffer, with their destination), events for
//! the call ([`LegCore::poll_event`]) and audio for the recorder
//! ([`LegCore::poll_record`]).
//!
//! **Symmetric RTP** (RFC 4961 practice, DESIGN §4): until the remote's
//! RTP arrives, media goes to the SDP address; the first packet latches the
//! destination to its source address and SSRC. After that, packets from
//! other addresses are ignored unless they carry the latched SSRC (a NAT
//! rebinding the same stream), which moves the latch; a re-INVITE with a
//! new remote address unlatches.
//!
//! **Timestamps**: the leg's RTP clock advances 160 units per tick whether
//! or not it sends, so a prompt after silence carries a timestamp that
//! counts the gap (RFC 3551 §4.1) and the marker bit. Relayed packets keep
//! the other leg's timestamp spacing, shifted by an offset fixed at the
//! start of each relayed talk-spurt so it continues this leg's clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{DigitSource, InbandDtmf, LegCommand, LegEventKind, PlaybackId};
use crate::media::dtmf::Digit;
use crate::media::dtmf::goertzel::{ToneDetector, ToneDetectorConfig};
use crate::media::dtmf::rfc4733::{
    ReceiverConfig, Rfc4733Event, Rfc4733Receiver, Rfc4733Sender, SenderConfig,
};
use crate::media::g711;
use crate::media::jitter::{self, Timeline};
use crate::media::prompt::{FRAME_SAMPLES, Prompt, PromptCursor};
use crate::media::recorder::{Layout, SAMPLE_RATE};
use crate::media::rtp::rtcp::{
    NtpTime, ReceiverReport, RtcpCompound, RtcpPacket, SenderReport, write_bye, write_sdes_cname,
};
use crate::media::rtp::{RtpPacket, RtpReceiverStats, RtpSender};
use crate::media::sdp::{Codec, Negotiated};

/// RTP timestamp units per 20 ms frame at 8 kHz.
const FRAME_UNITS: u32 = FRAME_SAMPLES as u32;
/// Events queued for the call before new ones are dropped.
const MAX_EVENTS: usize = 64;
/// Recording chunks handed out before new audio is dropped (the worker
/// drains after every input, so this is only reached if it stops).
const MAX_RECORD_OUTPUTS: usize = 64;

/// Per-leg settings.
#[derive(Debug, Clone)]
pub struct LegConfig {
    /// No RTP or RTCP for this long → [`LegEventKind::MediaTimeout`].
    pub media_timeout: Duration,
    /// Time between RTCP reports (RFC 3550 §6.2 allows a fixed interval
    /// for two-party sessions; 5 s is its minimum).
    pub rtcp_interval: Duration,
    /// When to listen for DTMF tones in the audio.
    pub inband_dtmf: InbandDtmf,
    /// Length of a digit sent with [`LegCommand::SendDtmf`].
    pub dtmf_length: Duration,
    /// SDES CNAME sent with every report (RFC 3550 §6.5.1).
    pub cname: Arc<str>,
}

impl Default for LegConfig {
    fn default() -> Self {
        LegConfig {
            media_timeout: Duration::from_secs(60),
            rtcp_interval: Duration::from_secs(5),
            inband_dtmf: InbandDtmf::Auto,
            dtmf_length: Duration::from_millis(100),
            cname: Arc::from("switchboard"),
        }
    }
}

/// Which socket a [`Transmit`] leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitTo {
    Rtp,
    Rtcp,
}

/// A datagram the core wrote into the caller's buffer: `len` bytes to
/// send to `to` from the `via` socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub len: usize,
    pub via: TransmitTo,
}

/// A received packet for the bridged leg to send on
/// ([`LegCore::handle_relay`]); borrows the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay<'a> {
    /// The audio codec, or `None` for an RFC 4733 telephone-event.
    pub codec: Option<Codec>,
    pub ssrc: u32,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
}

/// Counters of one leg, given with [`LegEventKind::Closed`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets sent (prompt frames, relayed packets, events).
    pub packets_sent: u64,
    /// Prompt frames sent on the tick.
    pub frames_sent: u64,
    /// Packets relayed from the bridged leg and sent here.
    pub relayed: u64,
    /// RTP packets received from the remote.
    pub packets_received: u64,
    /// Datagrams that were not RTP, or came from a foreign source.
    pub packets_ignored: u64,
    /// Packets the remote's stream lost (RFC 3550 A.3).
    pub lost: i64,
    /// Interarrival jitter in RTP units (RFC 3550 A.8).
    pub jitter: u32,
    /// Digits reported.
    pub digits: u64,
    /// RTCP reports sent.
    pub rtcp_sent: u64,
    /// Fraction lost (of 256) the remote last reported about our stream.
    pub remote_fraction_lost: u8,
}

/// Audio for the recorder, in the order it must be written.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordOutput {
    Start {
        path: PathBuf,
        layout: Layout,
    },
    /// 8 kHz G.711 codes of `codec`, as they crossed the wire (the
    /// recorder decodes them); `right` is empty for mono.
    Audio {
        codec: Codec,
        left: Vec<u8>,
        right: Vec<u8>,
    },
    Stop,
}

#[derive(Debug)]
struct Playback {
    id: PlaybackId,
    cursor: PromptCursor,
    barge: bool,
}

/// A recording in progress: the remote's audio (left) and what the leg
/// sends (right), each placed on the recording's timeline by its RTP
/// timestamp ([`Timeline`]) and handed to the recorder a chunk at a time,
/// both channels over the same stretch so they stay aligned.
#[derive(Debug)]
struct Recording {
    /// Sample 0 of the timeline.
    start: Instant,
    heard: Timeline,
    sent: Option<Timeline>,
}

impl Recording {
    fn new(layout: Layout, codec: Codec, start: Instant) -> Recording {
        Recording {
            start,
            heard: Timeline::new(codec),
            sent: (layout == Layout::Stereo).then(|| Timeline::new(codec)),
        }
    }

    /// The timeline's head at `now`: samples since the recording began.
    fn head(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start);
        let rate = u64::from(SAMPLE_RATE);
        since.as_secs() * rate + u64::from(since.subsec_micros()) * rate / 1_000_000
    }

    /// The next chunk, once the head is past its end by the delay.
    fn due_chunk(&mut self, now: Instant) -> Option<RecordOutput> {
        let taken = self.heard.taken();
        (self.head(now) >= taken + jitter::CHUNK + jitter::DELAY)
            .then(|| self.take(taken + jitter::CHUNK))
    }

    /// What is left at `now`, when the recording stops: everything up to
    /// the head (the recording lasts as long as it was on).
    fn rest(&mut self, now: Instant) -> Vec<RecordOutput> {
        let end = self.head(now);
        let mut out = Vec::new();
        while self.heard.taken() < end {
            let to = end.min(self.heard.taken() + jitter::CHUNK);
            out.push(self.take(to));
        }
        out
    }

    /// Both channels up to `to`.
    fn take(&mut self, to: u64) -> RecordOutput {
        let len = usize::try_from(to - self.heard.taken()).unwrap_or(0);
        let mut left = Vec::with_capacity(len);
        self.heard.take(to, &mut left);
        let mut right = Vec::new();
        if let Some(sent) = self.sent.as_mut() {
            right.reserve_exact(len);
            sent.take(to, &mut right);
        }
        RecordOutput::Audio {
            codec: self.heard.codec(),
            left,
            right,
        }
    }
}

/// Where to send, per symmetric RTP (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Remote {
    /// From the SDP.
    sdp_rtp: SocketAddr,
    sdp_rtcp: SocketAddr,
    /// Latched RTP source and its SSRC.
    latched: Option<(SocketAddr, u32)>,
    /// Where the remote's RTCP comes from.
    rtcp: Option<SocketAddr>,
}

impl Remote {
    fn new(n: &Negotiated) -> Remote {
        Remote {
            sdp_rtp: n.remote_rtp,
            sdp_rtcp: n.remote_rtcp,
            latched: None,
            rtcp: None,
        }
    }

    fn rtp(&self) -> SocketAddr {
        self.latched.map_or(self.sdp_rtp, |(a, _)| a)
    }

    fn rtcp(&self) -> SocketAddr {
        self.rtcp.unwrap_or(self.sdp_rtcp)
    }
}

/// The state of one call leg. See the module docs.
#[derive(Debug)]
pub struct LegCore {
    config: LegConfig,
    negotiated: Negotiated,
    remote: Remote,
    sender: RtpSender,
    /// RTP time of the next tick's frame.
    next_ts: u32,
    /// The next packet sent starts a talk-spurt (marker bit).
    talkspurt: bool,
    receiver: RtpReceiverStats,
    /// Packets arrived at `now` are on this RTP clock (for jitter).
    created: Instant,
    ntp_anchor: (Instant, NtpTime),
    rfc4733: Rfc4733Receiver,
    dtmf_out: Rfc4733Sender,
    tones: Option<Box<ToneDetector>>,
    playback: Option<Playback>,
    /// A playback waiting under an interjection ([`LegCommand::Interject`]):
    /// it goes on where it stopped when the interjection ends.
    paused: Option<Playback>,
    /// The remote is on hold (command or SDP): no media timeout.
    held: bool,
    last_rx: Instant,
    timed_out: bool,
    next_rtcp: Instant,
    /// Packets sent when the last report went out (SR or RR?).
    sent_at_last_report: u64,
    bye_pending: bool,
    /// Bridged: relayed packets are numbered from this offset, fixed at
    /// the first relayed packet of the source SSRC's talk-spurt.
    bridged: bool,
    relay_anchor: Option<(u32, u32)>,
    recording: Option<Box<Recording>>,
    events: VecDeque<LegEventKind>,
    record_out: VecDeque<RecordOutput>,
    stats: LegStats,
}

impl LegCore {
    /// A leg for `negotiated`, opened at `now`, when the wall clock reads
    /// `ntp` (for RTCP sender reports). `sender` holds the random SSRC,
    /// sequence and timestamp (RFC 3550 §5.1).
    pub fn new(
        config: LegConfig,
        negotiated: Negotiated,
        sender: RtpSender,
        now: Instant,
        ntp: NtpTime,
    ) -> LegCore {
        let next_ts = sender.next_timestamp();
        let mut leg = LegCore {
            remote: Remote::new(&negotiated),
            next_rtcp: now + config.rtcp_interval,
            rfc4733: Rfc4733Receiver::new(ReceiverConfig::default()),
            dtmf_out: Rfc4733Sender::new(SenderConfig::default()),
            tones: None,
            config,
            negotiated,
            sender,
            next_ts,
            talkspurt: true,
            receiver: RtpReceiverStats::with_probation(1),
            created: now,
            ntp_anchor: (now, ntp),
            playback: None,
            paused: None,
            held: false,
            last_rx: now,
            timed_out: false,
            sent_at_last_report: 0,
            bye_pending: false,
            bridged: false,
            relay_anchor: None,
            recording: None,
            events: VecDeque::new(),
            record_out: VecDeque::new(),
            stats: LegStats::default(),
        };
        leg.configure_tones();
        leg
    }

    fn configure_tones(&mut self) {
        let wanted = match self.config.inband_dtmf {
            InbandDtmf::Always => true,
            InbandDtmf::Off => false,
            InbandDtmf::Auto => self.negotiated.telephone_event_pt.is_none(),
        };
        match (wanted, self.tones.is_some()) {
            (true, false) => {
                self.tones = Some(Box::new(ToneDetector::new(ToneDetectorConfig::default())));
            }
            (false, true) => self.tones = None,
            _ => {}
        }
    }

    /// The negotiated media in use.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Where RTP goes now (symmetric RTP).
    pub fn remote_rtp(&self) -> SocketAddr {
        self.remote.rtp()
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    /// Whether the leg has sent any RTP yet.
    pub fn has_sent(&self) -> bool {
        self.stats.packets_sent > 0
    }

    /// Whether a playback is running.
    pub fn is_playing(&self) -> bool {
        self.playback.is_some()
    }

    /// Counters so far.
    pub fn stats(&self) -> LegStats {
        let mut s = self.stats;
        s.lost = self.receiver.cumulative_lost();
        s.jitter = self.receiver.jitter();
        s
    }

    /// The next event for the call.
    pub fn poll_event(&mut self) -> Option<LegEventKind> {
        self.events.pop_front()
    }

    /// The next piece of work for the recorder.
    pub fn poll_record(&mut self) -> Option<RecordOutput> {
        self.record_out.pop_front()
    }

    fn event(&mut self, kind: LegEventKind) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(kind);
        } else {
            tracing::warn!("media leg event queue full; event dropped");
        }
    }

    fn record(&mut self, out: RecordOutput) {
        if self.record_out.len() < MAX_RECORD_OUTPUTS {
            self.record_out.push_back(out);
        }
    }

    /// Whether media may be sent now (direction and address, RFC 3264 §8.4).
    fn may_send(&self) -> bool {
        self.negotiated.may_send() && !self.remote.rtp().ip().is_unspecified()
    }

    /// RTP time of `now` for jitter statistics (8 kHz units since open).
    fn arrival_units(&self, now: Instant) -> u32 {
        let us = now.saturating_duration_since(self.created).as_micros();
        (us * 8 / 1000) as u32
    }

    fn ntp(&self, now: Instant) -> NtpTime {
        let (at, ntp) = self.ntp_anchor;
        let d = now.saturating_duration_since(at);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime::from_u64(ntp.to_u64().wrapping_add((d.as_secs() << 32) | frac))
    }

    /// The codec of an audio payload type: the negotiated one, or a static
    /// G.711 type (a phone may switch without a re-INVITE).
    fn audio_codec(&self, pt: u8) -> Option<Codec> {
        if pt == self.negotiated.codec_pt {
            return Some(self.negotiated.codec);
        }
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// A key press from any source: stops a barge-in playback at once (no
    /// further frame of it is sent) and reports the digit.
    fn digit(&mut self, digit: Digit, source: DigitSource) {
        let barged = match &self.playback {
            Some(p) if p.barge => self.playback.take().map(|p| p.id),
            _ => None,
        };
        self.stats.digits += 1;
        self.event(LegEventKind::Digit {
            digit,
            source,
            barged,
        });
    }

    /// One datagram from the RTP socket. Returns what to relay to the
    /// bridged leg, if bridged and the packet is audio or an event.
    pub fn handle_rtp<'a>(
        &mut self,
        now: Instant,
        src: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<Relay<'a>> {
        let Ok(packet) = RtpPacket::parse(bytes) else {
            self.stats.packets_ignored += 1;
            return None;
        };
        let ssrc = packet.ssrc();
        match self.remote.latched {
            Some((addr, _)) if addr == src => {}
            Some((_, latched_ssrc)) if latched_ssrc != ssrc => {
                // Not the remote's stream: a stray or an injection attempt.
                self.stats.packets_ignored += 1;
                return None;
            }
            _ => {
                // First packet, or the same stream from a new address (NAT
                // rebinding): send there from now on.
                self.remote.latched = Some((src, ssrc));
                self.event(LegEventKind::RemoteLatched { rtp: src });
            }
        }
        if let Some((addr, latched_ssrc)) = self.remote.latched
            && latched_ssrc != ssrc
        {
            // The remote restarted its stream on the latched address.
            self.remote.latched = Some((addr, ssrc));
        }
        self.last_rx = now;
        self.timed_out = false;
        self.stats.packets_received += 1;
        let arrival = self.arrival_units(now);
        self.receiver
            .handle_packet(ssrc, packet.sequence(), packet.timestamp(), arrival);

        let pt = packet.payload_type();
        let payload = packet.payload();
        if Some(pt) == self.negotiated.telephone_event_pt {
            // RFC 4733 §2.5.2: the receiver reports each press once.
            if self
                .rfc4733
                .handle_packet(now, packet.timestamp(), packet.marker(), payload)
                .is_err()
            {
                self.stats.packets_ignored += 1;
                return None;
            }
            self.drain_rfc4733();
            return self.bridged.then_some(Relay {
                codec: None,
                ssrc,
                timestamp: packet.timestamp(),
                marker: packet.marker(),
                payload,
            });
        }
        let codec = self.audio_codec(pt)?;
        if self.tones.is_some() || self.recording.is_some() {
            self.hear_audio(now, codec, &packet, payload);
        }
        self.bridged.then_some(Relay {
            codec: Some(codec),
            ssrc,
            timestamp: packet.timestamp(),
            marker: packet.marker(),
            payload,
        })
    }

    fn drain_rfc4733(&mut self) {
        while let Some(ev) = self.rfc4733.poll_event() {
            if let Rfc4733Event::Began { digit, .. } = ev {
                self.digit(digit, DigitSource::Rfc4733);
            }
        }
    }

    /// Decodes received audio for the in-band detector (on arrival, for the
    /// lowest barge-in latency) and the recorder (through its jitter buffer).
    fn hear_audio(&mut self, now: Instant, codec: Codec, packet: &RtpPacket<'_>, payload: &[u8]) {
        if let Some(tones) = self.tones.as_mut() {
            for (i, chunk) in payload.chunks(FRAME_SAMPLES).enumerate().take(8) {
                let mut pcm = [0i16; FRAME_SAMPLES];
                let n = decode(codec, chunk, &mut pcm);
                tones.handle_frame(now + super::TICK * i as u32, &pcm[..n]);
            }
        }
        if let Some(rec) = self.recording.as_mut() {
            let head = rec.head(now);
            rec.heard
                .place(head, packet.ssrc(), packet.timestamp(), codec, payload);
        }
        while let Some(ev) = self.tones.as_mut().and_then(|t| t.poll_event()) {
            self.digit(ev.digit, DigitSource::Inband);
        }
    }

    /// One datagram from the RTCP socket (RFC 3550 §6.4): sender reports
    /// feed the next report block; any RTCP from the remote keeps the
    /// media timeout away.
    pub fn handle_rtcp(&mut self, now: Instant, src: SocketAddr, bytes: &[u8]) {
        let mut compound = RtcpCompound::new(bytes);
        let mut any = false;
        let remote_ssrc = self.remote.latched.map(|(_, s)| s);
        let mut count = 0;
        while let Some(Ok(packet)) = compound.next() {
            count += 1;
            if count > 16 {
                break;
            }
            match packet {
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    if remote_ssrc.is_some_and(|s| s != ssrc) {
                        continue;
                    }
                    any = true;
                    self.receiver.handle_sender_report(ssrc, info.ntp, now);
                    if let Some(b) = reports.find(self.sender.ssrc()) {
                        self.stats.remote_fraction_lost = b.fraction_lost;
                    }
                }
                RtcpPacket::ReceiverReport { ssrc, reports } => {
                    if remote_ssrc.is_some_and(|s| s != ssrc) {
                        continue;
                    }
                    any = true;
                    if let Some(b) = reports.find(self.sender.ssrc()) {
                        self.stats.remote_fraction_lost = b.fraction_lost;
                    }
                }
                _ => {}
            }
        }
        if any {
            self.remote.rtcp = Some(src);
            self.last_rx = now;
            self.timed_out = false;
        } else {
            self.stats.packets_ignored += 1;
        }
    }

    /// A packet the bridged leg received: rewritten into this leg's SSRC,
    /// sequence and timestamp, transcoded if the codecs differ, written
    /// into `buf`. `None` if nothing is to be sent (a playback runs here,
    /// the direction forbids sending, or an event with no telephone-event
    /// negotiated here).
    pub fn handle_relay(
        &mut self,
        now: Instant,
        relay: &Relay<'_>,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        if !self.bridged || self.playback.is_some() || !self.may_send() {
            return None;
        }
        let offset = match self.relay_anchor {
            Some((ssrc, offset)) if ssrc == relay.ssrc => offset,
            _ => {
                let offset = self.next_ts.wrapping_sub(relay.timestamp);
                self.relay_anchor = Some((relay.ssrc, offset));
                self.talkspurt = true;
                offset
            }
        };
        let timestamp = relay.timestamp.wrapping_add(offset);
        let marker = relay.marker || self.talkspurt;
        let len = match relay.codec {
            None => {
                let pt = self.negotiated.telephone_event_pt?;
                self.sender
                    .next_packet_at(pt, relay.payload, timestamp, marker, buf)
                    .ok()?
            }
            Some(codec) => {
                let ours = self.negotiated.codec;
                let len = self
                    .sender
                    .next_packet_at(
                        self.negotiated.codec_pt,
                        relay.payload,
                        timestamp,
                        marker,
                        buf,
                    )
                    .ok()?;
                let body = buf.get_mut(crate::media::rtp::RTP_HEADER_LEN..len)?;
                match (codec, ours) {
                    (Codec::Pcmu, Codec::Pcma) => g711::transcode_ulaw_to_alaw(body),
                    (Codec::Pcma, Codec::Pcmu) => g711::transcode_alaw_to_ulaw(body),
                    _ => {}
                }
                if let Some(rec) = self.recording.as_mut() {
                    let head = rec.head(now);
                    if let Some(sent) = rec.sent.as_mut() {
                        sent.place(head, self.sender.ssrc(), timestamp, ours, body);
                    }
                }
                len
            }
        };
        self.talkspurt = false;
        self.stats.packets_sent += 1;
        self.stats.relayed += 1;
        Some(Transmit {
            to: self.remote.rtp(),
            len,
            via: TransmitTo::Rtp,
        })
    }

    /// The tick at `now` on the worker's grid; `missed` ticks before it
    /// were skipped (the worker woke late). Returns the one packet this leg
    /// sends for the tick: the next prompt frame, or an RFC 4733 packet
    /// while a digit is being sent. Also runs timers (media timeout,
    /// RFC 4733 end timeout, RTCP, recorder); call
    /// [`poll_transmit`](Self::poll_transmit) after it.
    pub fn handle_tick(&mut self, now: Instant, missed: u64, buf: &mut [u8]) -> Option<Transmit> {
        let missed32 = u32::try_from(missed).unwrap_or(u32::MAX / FRAME_UNITS);
        let frame_ts = self
            .next_ts
            .wrapping_add(FRAME_UNITS.wrapping_mul(missed32));
        self.next_ts = frame_ts.wrapping_add(FRAME_UNITS);
        if missed > 0 {
            self.talkspurt = true;
        }

        self.rfc4733.handle_timeout(now);
        self.drain_rfc4733();
        self.check_media_timeout(now);
        while let Some(out) = self.recording.as_mut().and_then(|r| r.due_chunk(now)) {
            self.record(out);
        }

        // A digit being sent replaces the audio (RFC 4733 §2.5.1).
        if self.dtmf_out.is_busy() {
            let pt = self.negotiated.telephone_event_pt;
            if let (Some(pt), Some(p)) = (pt, self.dtmf_out.poll_packet(now))
                && self.may_send()
            {
                let len = self
                    .sender
                    .next_packet_at(pt, &p.payload, p.timestamp, p.marker, buf)
                    .ok()?;
                self.talkspurt = true;
                self.stats.packets_sent += 1;
                return Some(Transmit {
                    to: self.remote.rtp(),
                    len,
                    via: TransmitTo::Rtp,
                });
            }
            return None;
        }

        let codec = self.negotiated.codec;
        let pt = self.negotiated.codec_pt;
        let may_send = self.may_send();
        let playback = self.playback.as_mut()?;
        let Some(frame) = playback.cursor.next_frame(codec) else {
            let id = playback.id;
            self.finish_playback(id);
            return None;
        };
        // The frame is borrowed from the shared prompt: written straight
        // into the packet, never copied.
        let mut sent = None;
        if may_send {
            let marker = self.talkspurt;
            if let Ok(len) = self.sender.next_packet_at(pt, frame, frame_ts, marker, buf) {
                self.talkspurt = false;
                self.relay_anchor = None;
                self.stats.packets_sent += 1;
                self.stats.frames_sent += 1;
                if let Some(rec) = self.recording.as_mut() {
                    let head = rec.head(now);
                    if let Some(sent) = rec.sent.as_mut() {
                        sent.place(head, self.sender.ssrc(), frame_ts, codec, frame);
                    }
                }
                sent = Some(Transmit {
                    to: self.remote.rtp(),
                    len,
                    via: TransmitTo::Rtp,
                });
            }
        } else {
            self.talkspurt = true;
        }
        if playback.cursor.is_finished() {
            let id = playback.id;
            self.finish_playback(id);
        }
        sent
    }

    /// The playback `id` sent its last frame: reported, and a playback
    /// paused under it goes on.
    fn finish_playback(&mut self, id: PlaybackId) {
        self.playback = self.paused.take();
        self.talkspurt = true;
        self.event(LegEventKind::PlaybackFinished { playback: id });
    }

    fn check_media_timeout(&mut self, now: Instant) {
        if self.held || self.negotiated.held || self.timed_out {
            return;
        }
        let silent_for = now.saturating_duration_since(self.last_rx);
        if silent_for >= self.config.media_timeout {
            self.timed_out = true;
            self.event(LegEventKind::MediaTimeout { silent_for });
        }
    }

    /// Further datagrams due: an RTCP report (every `rtcp_interval`) or
    /// the BYE of a closing leg. Call after each input until `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.bye_pending {
            self.bye_pending = false;
            let len = self.write_report(now, buf, true)?;
            return Some(Transmit {
                to: self.remote.rtcp(),
                len,
                via: TransmitTo::Rtcp,
            });
        }
        if now < self.next_rtcp {
            return None;
        }
        self.next_rtcp = now + self.config.rtcp_interval;
        if !self.may_send() {
            return None;
        }
        let len = self.write_report(now, buf, false)?;
        self.stats.rtcp_sent += 1;
        Some(Transmit {
            to: self.remote.rtcp(),
            len,
            via: TransmitTo::Rtcp,
        })
    }

    /// When the core next needs [`poll_transmit`](Self::poll_transmit)
    /// (besides the tick, which it already gets).
    pub fn poll_timeout(&self) -> Instant {
        self.next_rtcp
    }

    /// A compound RTCP packet (RFC 3550 §6.1): SR if we sent RTP since the
    /// last report, else RR; SDES CNAME; BYE when closing.
    fn write_report(&mut self, now: Instant, buf: &mut [u8], bye: bool) -> Option<usize> {
        let block = self.receiver.report_block(now);
        let ssrc = self.sender.ssrc();
        let sent = self.stats.packets_sent;
        let mut len = if sent > self.sent_at_last_report {
            let sr = SenderReport {
                ssrc,
                info: self.sender.sender_info(self.ntp(now), self.next_ts),
                report: block,
            };
            sr.write(buf).ok()?
        } else {
            ReceiverReport {
                ssrc,
                report: block,
            }
            .write(buf)
            .ok()?
        };
        self.sent_at_last_report = sent;
        len += write_sdes_cname(ssrc, self.config.cname.as_bytes(), buf.get_mut(len..)?).ok()?;
        if bye {
            len += write_bye(&[ssrc], None, buf.get_mut(len..)?).ok()?;
        }
        Some(len)
    }

    /// A command from the call.
    pub fn handle_command(&mut self, now: Instant, command: LegCommand) {
        match command {
            LegCommand::Play {
                playback,
                prompts,
                barge,
                looped,
            } => {
                self.paused = None;
                self.play(playback, prompts, barge, looped);
            }
            LegCommand::Interject { playback, prompts } => {
                // Over an interjection, the new one replaces it; the
                // playback paused under both stays paused.
                if self.paused.is_none() {
                    self.paused = self.playback.take();
                }
                self.play(playback, prompts, false, false);
            }
            LegCommand::Stop => {
                self.paused = None;
                if self.playback.take().is_some() {
                    self.talkspurt = true;
                }
            }
            LegCommand::Digit(digit) => self.digit(digit, DigitSource::SipInfo),
            LegCommand::Update(negotiated) => self.update(now, negotiated),
            LegCommand::Hold(held) => {
                self.held = held;
                if !held {
                    // Count silence afresh from the unhold.
                    self.last_rx = now;
                    self.timed_out = false;
                }
            }
            LegCommand::StartRecording { path, layout } => self.start_recording(now, path, layout),
            LegCommand::StopRecording => self.stop_recording(now),
            LegCommand::SendDtmf(digit) => {
                if self.negotiated.telephone_event_pt.is_some() {
                    let length = self.config.dtmf_length;
                    if self
                        .dtmf_out
                        .start(now, digit, self.next_ts, length)
                        .is_err()
                    {
                        tracing::debug!(%digit, "digit not sent: another is being sent");
                    }
                }
            }
        }
    }

    fn play(&mut self, id: PlaybackId, prompts: Vec<Arc<Prompt>>, barge: bool, looped: bool) {
        let cursor = if looped {
            PromptCursor::looping(prompts)
        } else {
            PromptCursor::new(prompts)
        };
        self.talkspurt = true;
        self.relay_anchor = None;
        if cursor.is_finished() {
            // Nothing to play: finished at once.
            self.finish_playback(id);
            return;
        }
        self.playback = Some(Playback { id, cursor, barge });
    }

    fn update(&mut self, now: Instant, negotiated: Negotiated) {
        if negotiated.remote_rtp != self.negotiated.remote_rtp {
            // The remote moved: latch afresh.
            self.remote = Remote::new(&negotiated);
        } else {
            self.remote.sdp_rtcp = negotiated.remote_rtcp;
        }
        if negotiated.telephone_event_pt != self.negotiated.telephone_event_pt {
            self.rfc4733.reset();
        }
        if negotiated.codec != self.negotiated.codec {
            self.talkspurt = true;
        }
        if negotiated.held != self.negotiated.held {
            // Held or resumed by SDP: count silence from now.
            self.last_rx = now;
            self.timed_out = false;
        }
        self.negotiated = negotiated;
        self.configure_tones();
    }

    fn start_recording(&mut self, now: Instant, path: PathBuf, layout: Layout) {
        self.stop_recording(now);
        let rec = Recording::new(layout, self.negotiated.codec, now);
        self.recording = Some(Box::new(rec));
        self.record(RecordOutput::Start { path, layout });
    }

    fn stop_recording(&mut self, now: Instant) {
        if let Some(mut rec) = self.recording.take() {
            for out in rec.rest(now) {
                self.record(out);
            }
            self.record(RecordOutput::Stop);
        }
    }

    /// The leg is now bridged (`true`) or not.
    pub fn set_bridged(&mut self, bridged: bool) {
        self.bridged = bridged;
        self.relay_anchor = None;
    }

    /// Whether the leg is bridged.
    pub fn is_bridged(&self) -> bool {
        self.bridged
    }

    /// Closes the leg at `now`: the recording is finished and an RTCP BYE
    /// is due (RFC 3550 §6.6) from [`poll_transmit`](Self::poll_transmit).
    pub fn close(&mut self, now: Instant) {
        self.stop_recording(now);
        self.playback = None;
        self.paused = None;
        self.bridged = false;
        self.bye_pending = self.may_send();
    }
}

/// Decodes G.711 into `out`; returns the samples written.
fn decode(codec: Codec, codes: &[u8], out: &mut [i16]) -> usize {
    match codec {
        Codec::Pcmu => g711::decode_ulaw(codes, out),
        Codec::Pcma => g711::decode_alaw(codes, out),
    }
}

#[cfg(test)]
mod tests;
