//! RFC 4733 telephone-events: the payload codec (§2.3), a receiver that
//! reports each key press exactly once (§2.5.2), and a sender that produces
//! the packet sequence for one key press (§2.5.1).
//!
//! Both machines are sans-IO: the caller passes the RTP timestamp, marker
//! bit and payload of each packet with the time it arrived, and drives the
//! sender from its own media clock.

use std::time::{Duration, Instant};

use super::{Digit, EventQueue};

/// The largest value of the 16-bit duration field; a longer event is sent
/// in segments (§2.5.1.3).
pub const MAX_SEGMENT_DURATION: u32 = 0xFFFF;

/// Why a telephone-event payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rfc4733Error {
    #[error("telephone-event payload is {0} bytes, needs 4")]
    Short(usize),
    #[error("telephone-event payload is {0} bytes, not a multiple of 4")]
    BadLength(usize),
    #[error("a key press is already being sent")]
    Busy,
}

/// One telephone-event payload (RFC 4733 §2.3):
///
/// ```text
///  0                   1                   2                   3
/// |     event     |E|R| volume    |          duration             |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (§3.2: 0–9, `*` = 10, `#` = 11, A–D = 12–15).
    pub event: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// R bit: reserved, sent as 0, ignored on receipt.
    pub reserved: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses a payload. RFC 2198 redundancy aside, a payload holds one
    /// event; several 4-byte events (§2.5.1.5) are accepted and the last,
    /// the newest, is returned.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, Rfc4733Error> {
        if payload.len() < 4 {
            return Err(Rfc4733Error::Short(payload.len()));
        }
        if !payload.len().is_multiple_of(4) {
            return Err(Rfc4733Error::BadLength(payload.len()));
        }
        let last = payload.len() - 4;
        let b = &payload[last..];
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            reserved: b[1] & 0x40 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4 payload bytes; the R bit is always sent as 0.
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3f);
        [self.event, flags, d0, d1]
    }
}

/// When [`Rfc4733Receiver`] reports a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportOn {
    /// On its first packet ([`Rfc4733Event::Began`]), then
    /// [`Rfc4733Event::Ended`] with the final duration: lowest latency
    /// (barge-in stops the prompt at once).
    #[default]
    Start,
    /// Only when it ends ([`Rfc4733Event::Ended`]), with its duration.
    End,
}

/// How a received event came to an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// A packet with the E bit (§2.5.2.2).
    EndBit,
    /// No packet for the event within the timeout: the end packets were
    /// lost (§2.5.2.2).
    Timeout,
    /// A newer event began before this one's end arrived.
    NextEvent,
}

/// A key press reported by [`Rfc4733Receiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc4733Event {
    /// A new key press, reported once, on its first packet
    /// ([`ReportOn::Start`] only).
    Began {
        digit: Digit,
        /// RTP timestamp of the event (its identity, §2.5.1.2).
        timestamp: u32,
        at: Instant,
    },
    /// The key press ended.
    Ended {
        digit: Digit,
        timestamp: u32,
        /// Total duration in RTP timestamp units, all segments included.
        duration: u32,
        cause: EndCause,
        at: Instant,
    },
}

/// Settings of [`Rfc4733Receiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    pub report_on: ReportOn,
    /// An event with no packet for this long is ended (lost end packets).
    pub end_timeout: Duration,
    /// The telephone-event clock rate (8000 with PCMU/PCMA).
    pub clock_rate: u32,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            report_on: ReportOn::Start,
            // Five missed 50 ms updates.
            end_timeout: Duration::from_millis(250),
            clock_rate: 8000,
        }
    }
}

/// Older timestamps than this (in units) behind the current event are stale
/// packets; farther back is a new stream (sender restarted) and starts a new
/// event. Ten seconds at 8 kHz.
const STALE_WINDOW: u32 = 80_000;

/// The event being received, or the last one (kept to absorb retransmitted
/// end packets, §2.5.1.4).
#[derive(Debug, Clone, Copy)]
struct Current {
    digit: Digit,
    /// Timestamp of the first segment: the event's identity.
    timestamp: u32,
    /// Timestamp of the current segment (§2.5.1.3).
    segment_ts: u32,
    /// Units covered by the earlier segments.
    segment_base: u32,
    /// Largest duration seen in the current segment.
    duration: u32,
    last_packet: Instant,
    ended: bool,
}

impl Current {
    fn total(&self) -> u32 {
        self.segment_base.saturating_add(self.duration)
    }
}

/// Receives RFC 4733 telephone-events and reports each key press once
/// (§2.5.2): a new event is a new RTP timestamp (§2.5.1.2); updates and
/// the three retransmitted end packets (§2.5.1.4) with the same timestamp
/// are absorbed; long presses sent in segments (§2.5.1.3, §2.5.2.3) stay one
/// press; a press whose end packets are all lost ends after a timeout.
///
/// Feed packets with [`handle_packet`](Self::handle_packet), call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and drain
/// [`poll_event`](Self::poll_event).
#[derive(Debug, Clone)]
pub struct Rfc4733Receiver {
    config: ReceiverConfig,
    current: Option<Current>,
    events: EventQueue<Rfc4733Event, 8>,
    /// Packets with event codes other than 0–15, ignored.
    ignored: u64,
    /// Events dropped because the caller did not drain the queue.
    overflowed: u64,
}

impl Rfc4733Receiver {
    pub fn new(config: ReceiverConfig) -> Rfc4733Receiver {
        Rfc4733Receiver {
            config,
            current: None,
            events: EventQueue::new(),
            ignored: 0,
            overflowed: 0,
        }
    }

    /// Forgets the stream (call on SSRC change); an unfinished press is not
    /// reported as ended.
    pub fn reset(&mut self) {
        self.current = None;
        self.events.clear();
    }

    /// Packets ignored because their event is not a DTMF key (codes > 15).
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Events lost because [`poll_event`](Self::poll_event) was not called.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Converts a duration in timestamp units to time.
    pub fn units_to_duration(&self, units: u32) -> Duration {
        let rate = u64::from(self.config.clock_rate.max(1));
        Duration::from_micros(u64::from(units) * 1_000_000 / rate)
    }

    /// One telephone-event packet: its RTP timestamp, marker bit and
    /// payload, and when it arrived.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), Rfc4733Error> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(digit) = Digit::from_event_code(ev.event) else {
            self.ignored += 1;
            return Ok(());
        };
        let duration = u32::from(ev.duration);

        if let Some(cur) = self.current.as_mut() {
            let ahead = timestamp.wrapping_sub(cur.segment_ts);
            if ahead == 0 {
                // Same event: an update, a retransmitted end (§2.5.1.4) or a
                // late packet. Never a second report.
                if cur.ended || digit != cur.digit {
                    return Ok(());
                }
                cur.duration = cur.duration.max(duration);
                cur.last_packet = now;
                if ev.end {
                    self.end(now, EndCause::EndBit);
                }
                return Ok(());
            }
            if timestamp.wrapping_sub(cur.timestamp).wrapping_neg() <= STALE_WINDOW
                || cur.segment_ts.wrapping_sub(timestamp) <= STALE_WINDOW
            {
                // Behind the current event: a late packet of an older one.
                return Ok(());
            }
            // §2.5.2.3: the next segment of a long press carries the same
            // event, no marker, and a timestamp one full segment on.
            if !cur.ended
                && !marker
                && digit == cur.digit
                && ahead <= MAX_SEGMENT_DURATION + 1
                && ahead >= cur.duration.max(0x8000)
            {
                cur.segment_base = cur.segment_base.saturating_add(ahead);
                cur.segment_ts = timestamp;
                cur.duration = duration;
                cur.last_packet = now;
                if ev.end {
                    self.end(now, EndCause::EndBit);
                }
                return Ok(());
            }
            if !cur.ended {
                self.end(now, EndCause::NextEvent);
            }
        }

        // A new event (§2.5.1.2: a new timestamp), reported once whether or
        // not its first, marked packet arrived.
        self.current = Some(Current {
            digit,
            timestamp,
            segment_ts: timestamp,
            segment_base: 0,
            duration,
            last_packet: now,
            ended: false,
        });
        if self.config.report_on == ReportOn::Start {
            self.push(Rfc4733Event::Began {
                digit,
                timestamp,
                at: now,
            });
        }
        if ev.end {
            self.end(now, EndCause::EndBit);
        }
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the lost
    /// end-packet timeout of the unfinished event.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.current {
            Some(cur) if !cur.ended => Some(cur.last_packet + self.config.end_timeout),
            _ => None,
        }
    }

    /// Ends an event whose end packets never came (§2.5.2.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout()
            && now >= deadline
        {
            self.end(now, EndCause::Timeout);
        }
    }

    /// The next key press report, oldest first.
    pub fn poll_event(&mut self) -> Option<Rfc4733Event> {
        self.events.pop()
    }

    fn end(&mut self, now: Instant, cause: EndCause) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.ended {
            return;
        }
        cur.ended = true;
        let ev = Rfc4733Event::Ended {
            digit: cur.digit,
            timestamp: cur.timestamp,
            duration: cur.total(),
            cause,
            at: now,
        };
        self.push(ev);
    }

    fn push(&mut self, ev: Rfc4733Event) {
        if !self.events.push(ev) {
            self.overflowed += 1;
        }
    }
}

/// One telephone-event packet to send: the RTP layer adds the header with
/// this timestamp and marker bit, the next sequence number and the
/// negotiated telephone-event payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc4733Packet {
    pub timestamp: u32,
    pub marker: bool,
    pub payload: [u8; 4],
}

/// Settings of [`Rfc4733Sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Time between updates while the key is held (§2.5.1.2).
    pub update_interval: Duration,
    /// How many times the final packet is sent (§2.5.1.4: three).
    pub end_packets: u8,
    /// Time between the copies of the final packet; zero sends them
    /// back to back.
    pub end_spacing: Duration,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    pub clock_rate: u32,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            update_interval: Duration::from_millis(50),
            end_packets: 3,
            end_spacing: Duration::from_millis(20),
            volume: 10,
            clock_rate: 8000,
        }
    }
}

/// The key press being sent.
#[derive(Debug, Clone, Copy)]
struct Sending {
    digit: Digit,
    start: Instant,
    /// Total length in timestamp units.
    length: u32,
    /// Timestamp of the current segment (§2.5.1.3).
    segment_ts: u32,
    /// Units covered by earlier segments.
    segment_base: u32,
    /// The next packet is the first of its event (marker bit).
    first: bool,
    /// Updates sent so far (the next is due at `start + n * interval`).
    updates: u32,
    /// End packets sent so far.
    ends_sent: u8,
    next_due: Instant,
}

/// Produces the RFC 4733 packets for one key press at a time (§2.5.1):
/// the first packet with the marker bit and the event's start timestamp,
/// updates with the cumulative duration every `update_interval`, segments
/// for presses longer than the 16-bit duration (§2.5.1.3), and the final
/// packet with the E bit sent three times (§2.5.1.4).
///
/// The caller's clock drives it: call [`poll_packet`](Self::poll_packet)
/// at each media tick (or at [`poll_timeout`](Self::poll_timeout)).
#[derive(Debug, Clone)]
pub struct Rfc4733Sender {
    config: SenderConfig,
    sending: Option<Sending>,
}

impl Rfc4733Sender {
    pub fn new(config: SenderConfig) -> Rfc4733Sender {
        Rfc4733Sender {
            config,
            sending: None,
        }
    }

    /// Starts sending `digit` for `length`; `timestamp` is the RTP
    /// timestamp of the media stream at `now` (the event's start).
    pub fn start(
        &mut self,
        now: Instant,
        digit: Digit,
        timestamp: u32,
        length: Duration,
    ) -> Result<(), Rfc4733Error> {
        if self.is_busy() {
            return Err(Rfc4733Error::Busy);
        }
        let length = self.to_units(length).max(1);
        self.sending = Some(Sending {
            digit,
            start: now,
            length,
            segment_ts: timestamp,
            segment_base: 0,
            first: true,
            updates: 0,
            ends_sent: 0,
            next_due: now,
        });
        Ok(())
    }

    /// True while a key press is being sent.
    pub fn is_busy(&self) -> bool {
        self.sending.is_some()
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sending.map(|s| s.next_due)
    }

    /// The next packet due at `now`, if any. A late caller gets the newest
    /// update, not a backlog.
    pub fn poll_packet(&mut self, now: Instant) -> Option<Rfc4733Packet> {
        let cfg = self.config;
        let interval_units = self.to_units(cfg.update_interval).max(1);
        let s = self.sending.as_mut()?;
        if now < s.next_due {
            return None;
        }
        let volume = cfg.volume.min(63);

        if s.ends_sent > 0 || s.updates_done(interval_units) {
            // §2.5.1.4: the final packet, repeated.
            let packet = s.packet(s.length, true, volume);
            s.ends_sent += 1;
            if s.ends_sent >= cfg.end_packets.max(1) {
                self.sending = None;
            } else {
                s.next_due = now + cfg.end_spacing;
            }
            return Some(packet);
        }

        // Catch up on a late tick: skip to the newest update due.
        let elapsed = now.saturating_duration_since(s.start);
        let due = elapsed.as_nanos() / cfg.update_interval.as_nanos().max(1);
        s.updates = s.updates.max(u32::try_from(due).unwrap_or(u32::MAX));
        let position = s.updates.saturating_mul(interval_units).min(s.length);

        // §2.5.1.3: a press past 0xFFFF units goes on in a new segment,
        // timestamped where the previous one's duration ran out.
        if position - s.segment_base > MAX_SEGMENT_DURATION && !s.first {
            let closing = s.segment_base.saturating_add(MAX_SEGMENT_DURATION);
            let packet = s.packet(closing, false, volume);
            s.segment_ts = s.segment_ts.wrapping_add(MAX_SEGMENT_DURATION);
            s.segment_base = closing;
            return Some(packet);
        }

        let packet = s.packet(position, false, volume);
        s.first = false;
        s.updates = s.updates.saturating_add(1);
        if s.updates_done(interval_units) {
            // The end goes out at the press's end time, not the next update.
            let end_at = units_to_nanos(s.length, cfg.clock_rate);
            s.next_due = s.start + Duration::from_nanos(end_at);
        } else {
            s.next_due = s.start + cfg.update_interval * s.updates;
        }
        Some(packet)
    }

    fn to_units(&self, d: Duration) -> u32 {
        let units = d.as_micros() * u128::from(self.config.clock_rate) / 1_000_000;
        u32::try_from(units).unwrap_or(u32::MAX)
    }
}

impl Sending {
    /// True once the next update would reach the press's length.
    fn updates_done(&self, interval_units: u32) -> bool {
        self.updates.saturating_mul(interval_units) >= self.length
    }

    fn packet(&mut self, position: u32, end: bool, volume: u8) -> Rfc4733Packet {
        let in_segment = position.saturating_sub(self.segment_base);
        let duration = u16::try_from(in_segment.min(MAX_SEGMENT_DURATION)).unwrap_or(u16::MAX);
        let marker = self.first;
        self.first = false;
        Rfc4733Packet {
            timestamp: self.segment_ts,
            marker,
            payload: TelephoneEvent {
                event: self.digit.event_code(),
                end,
                reserved: false,
                volume,
                duration,
            }
            .to_bytes(),
        }
    }
}

fn units_to_nanos(units: u32, clock_rate: u32) -> u64 {
    u64::from(units) * 1_000_000_000 / u64::from(clock_rate.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digit {
        Digit::from_char(c).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A payload: event, E bit, volume 10, duration.
    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            reserved: false,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    fn drain(rx: &mut Rfc4733Receiver) -> Vec<Rfc4733Event> {
        std::iter::from_fn(|| rx.poll_event()).collect()
    }

    #[test]
    fn payload_parses_fields() {
        // RFC 4733 §2.3: event 5, E=1, R=0, volume 10, duration 800.
        let ev = TelephoneEvent::parse(&[0x05, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 5,
                end: true,
                reserved: false,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.to_bytes(), [0x05, 0x8a, 0x03, 0x20]);
        // R bit set by a sloppy sender: read, never written back.
        let ev = TelephoneEvent::parse(&[0x0b, 0x4a, 0x00, 0xa0]).unwrap();
        assert!(ev.reserved && !ev.end);
        assert_eq!(ev.to_bytes()[1], 0x0a);
    }

    #[test]
    fn short_and_odd_payloads_are_errors() {
        assert_eq!(TelephoneEvent::parse(&[]), Err(Rfc4733Error::Short(0)));
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(Rfc4733Error::Short(3))
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3, 4, 5]),
            Err(Rfc4733Error::BadLength(5))
        );
        // §2.5.1.5: several events in one payload; the last is the newest.
        let ev = TelephoneEvent::parse(&[1, 0x8a, 0, 160, 2, 0x0a, 0, 80]).unwrap();
        assert_eq!((ev.event, ev.duration), (2, 80));
    }

    /// The packets a typical phone sends for one 120 ms press at 20 ms
    /// ptime, with the end sent three times (§2.5.1.2, §2.5.1.4).
    fn press(rx: &mut Rfc4733Receiver, t0: Instant, ts: u32, code: u8) {
        rx.handle_packet(t0, ts, true, &ev(code, false, 0)).unwrap();
        for i in 1..6u16 {
            let at = t0 + ms(u64::from(i) * 20);
            rx.handle_packet(at, ts, false, &ev(code, false, i * 160))
                .unwrap();
        }
        for i in 0..3 {
            rx.handle_packet(t0 + ms(120 + i), ts, false, &ev(code, true, 960))
                .unwrap();
        }
    }

    #[test]
    fn each_press_reported_once_with_final_duration() {
        // §2.5.1.2 / §2.5.1.4: updates and three end packets share the
        // event's timestamp; one Began, one Ended.
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        press(&mut rx, t0, 1000, 5);
        assert_eq!(
            drain(&mut rx),
            vec![
                Rfc4733Event::Began {
                    digit: d('5'),
                    timestamp: 1000,
                    at: t0
                },
                Rfc4733Event::Ended {
                    digit: d('5'),
                    timestamp: 1000,
                    duration: 960,
                    cause: EndCause::EndBit,
                    at: t0 + ms(120)
                },
            ]
        );
        assert_eq!(rx.poll_timeout(), None);
        // A fourth, very late copy of the end packet changes nothing.
        rx.handle_packet(t0 + ms(900), 1000, false, &ev(5, true, 960))
            .unwrap();
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn same_digit_twice_is_two_presses() {
        // §2.5.1.2: a new event is a new timestamp, even for the same key.
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        press(&mut rx, t0, 1000, 1);
        press(&mut rx, t0 + ms(300), 1000 + 2400, 1);
        let began = drain(&mut rx)
            .into_iter()
            .filter(|e| matches!(e, Rfc4733Event::Began { .. }))
            .count();
        assert_eq!(began, 2);
    }

    #[test]
    fn report_on_end_gives_one_event_per_press() {
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig {
            report_on: ReportOn::End,
            ..ReceiverConfig::default()
        });
        for (i, code) in [1u8, 2, 3, 11, 0].into_iter().enumerate() {
            let i = i as u32;
            press(&mut rx, t0 + ms(u64::from(i) * 300), 8000 + i * 2400, code);
        }
        let digits: String = drain(&mut rx)
            .into_iter()
            .map(|e| match e {
                Rfc4733Event::Ended {
                    digit, duration, ..
                } => {
                    assert_eq!(duration, 960);
                    digit.as_char()
                }
                Rfc4733Event::Began { .. } => panic!("no Began in End mode"),
            })
            .collect();
        assert_eq!(digits, "123#0");
    }

    #[test]
    fn lost_first_packet_still_reports() {
        // §2.5.2.2: the marked packet may be lost; the first update starts
        // the event.
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        rx.handle_packet(t0, 50, false, &ev(10, false, 320))
            .unwrap();
        rx.handle_packet(t0 + ms(20), 50, false, &ev(10, true, 480))
            .unwrap();
        let evs = drain(&mut rx);
        assert_eq!(evs.len(), 2);
        assert!(matches!(evs[0], Rfc4733Event::Began { digit, .. } if digit == Digit::STAR));
    }

    #[test]
    fn lost_end_packets_end_the_event_on_timeout() {
        // §2.5.2.2: no end packet; the receiver ends the tone itself.
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        rx.handle_packet(t0, 7, true, &ev(9, false, 0)).unwrap();
        rx.handle_packet(t0 + ms(50), 7, false, &ev(9, false, 400))
            .unwrap();
        assert_eq!(rx.poll_timeout(), Some(t0 + ms(300)));
        rx.handle_timeout(t0 + ms(299));
        assert_eq!(drain(&mut rx).len(), 1);
        rx.handle_timeout(t0 + ms(300));
        assert_eq!(
            drain(&mut rx),
            vec![Rfc4733Event::Ended {
                digit: d('9'),
                timestamp: 7,
                duration: 400,
                cause: EndCause::Timeout,
                at: t0 + ms(300)
            }]
        );
        // Stragglers of the timed-out event are not a new press.
        rx.handle_packet(t0 + ms(320), 7, false, &ev(9, true, 800))
            .unwrap();
        assert!(drain(&mut rx).is_empty());
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn next_event_ends_an_unfinished_one() {
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        rx.handle_packet(t0, 100, true, &ev(1, false, 0)).unwrap();
        rx.handle_packet(t0 + ms(100), 900, true, &ev(2, false, 0))
            .unwrap();
        let evs = drain(&mut rx);
        assert!(matches!(
            evs[1],
            Rfc4733Event::Ended {
                cause: EndCause::NextEvent,
                ..
            }
        ));
        assert!(matches!(evs[2], Rfc4733Event::Began { digit, .. } if digit == d('2')));
        // A late update of the first event is stale, not a third press.
        rx.handle_packet(t0 + ms(110), 100, false, &ev(1, false, 160))
            .unwrap();
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn long_press_in_segments_is_one_press() {
        // §2.5.1.3 / §2.5.2.3: the duration field saturates at 0xFFFF; the
        // next segment has timestamp + 0xFFFF and no marker.
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        let ts = 0xFFFF_F000u32; // the timestamp wraps during the press
        rx.handle_packet(t0, ts, true, &ev(0, false, 0)).unwrap();
        rx.handle_packet(t0 + ms(8000), ts, false, &ev(0, false, 64000))
            .unwrap();
        rx.handle_packet(t0 + ms(8190), ts, false, &ev(0, false, 0xFFFF))
            .unwrap();
        let ts2 = ts.wrapping_add(0xFFFF);
        rx.handle_packet(t0 + ms(8200), ts2, false, &ev(0, false, 80))
            .unwrap();
        rx.handle_packet(t0 + ms(8250), ts2, false, &ev(0, true, 480))
            .unwrap();
        let evs = drain(&mut rx);
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert!(matches!(
            evs[1],
            Rfc4733Event::Ended { duration, timestamp, .. }
                if duration == 0xFFFF + 480 && timestamp == ts
        ));
    }

    #[test]
    fn non_dtmf_events_are_ignored() {
        // §3.2: 16 is flash; not a key.
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        rx.handle_packet(t0, 1, true, &ev(16, false, 0)).unwrap();
        rx.handle_packet(t0, 1, false, &ev(16, true, 800)).unwrap();
        assert!(drain(&mut rx).is_empty());
        assert_eq!(rx.ignored(), 2);
        assert!(rx.handle_packet(t0, 1, false, &[1, 2]).is_err());
    }

    #[test]
    fn far_timestamp_after_restart_is_a_new_event() {
        let t0 = Instant::now();
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        press(&mut rx, t0, 3_000_000_000, 4);
        // A restarted sender's random timestamp lies "behind" in serial
        // order but far outside the stale window.
        press(&mut rx, t0 + ms(500), 1_000_000_000, 4);
        assert_eq!(drain(&mut rx).len(), 4);
    }

    #[test]
    fn sender_produces_rfc_packet_sequence() {
        // §2.5.1.2: marker on the first packet, timestamp fixed at the
        // event start, cumulative durations; §2.5.1.4: three end packets.
        let t0 = Instant::now();
        let mut tx = Rfc4733Sender::new(SenderConfig::default());
        tx.start(t0, d('#'), 16000, ms(120)).unwrap();
        assert_eq!(tx.start(t0, d('1'), 0, ms(100)), Err(Rfc4733Error::Busy));
        let mut out = Vec::new();
        let mut now = t0;
        while tx.is_busy() {
            while let Some(p) = tx.poll_packet(now) {
                out.push((now - t0, p));
            }
            now += ms(10);
            assert!(now < t0 + ms(1000));
        }
        let got: Vec<(u64, bool, bool, u16)> = out
            .iter()
            .map(|(at, p)| {
                assert_eq!(p.timestamp, 16000);
                let ev = TelephoneEvent::parse(&p.payload).unwrap();
                assert_eq!(ev.event, 11);
                (at.as_millis() as u64, p.marker, ev.end, ev.duration)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, true, false, 0),
                (50, false, false, 400),
                (100, false, false, 800),
                (120, false, true, 960),
                (140, false, true, 960),
                (160, false, true, 960),
            ]
        );
    }

    #[test]
    fn sender_on_20ms_ticks_and_receiver_agree() {
        let t0 = Instant::now();
        let mut tx = Rfc4733Sender::new(SenderConfig::default());
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        tx.start(t0, d('7'), 123, ms(200)).unwrap();
        let mut now = t0;
        let mut sent = 0;
        for _ in 0..30 {
            if let Some(p) = tx.poll_packet(now) {
                rx.handle_packet(now, p.timestamp, p.marker, &p.payload)
                    .unwrap();
                sent += 1;
            }
            now += ms(20);
        }
        assert!(!tx.is_busy());
        assert!(sent >= 7);
        let evs = drain(&mut rx);
        assert_eq!(evs.len(), 2);
        assert!(matches!(
            evs[1],
            Rfc4733Event::Ended {
                duration: 1600,
                cause: EndCause::EndBit,
                ..
            }
        ));
    }

    #[test]
    fn sender_segments_a_long_press() {
        // §2.5.1.3: 10 s at 8 kHz = 80000 units > 0xFFFF.
        let t0 = Instant::now();
        let mut tx = Rfc4733Sender::new(SenderConfig::default());
        let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
        tx.start(t0, d('0'), 5, Duration::from_secs(10)).unwrap();
        let mut now = t0;
        let mut timestamps = Vec::new();
        while tx.is_busy() {
            if let Some(p) = tx.poll_packet(now) {
                if timestamps.last() != Some(&p.timestamp) {
                    timestamps.push(p.timestamp);
                    assert_eq!(p.marker, timestamps.len() == 1);
                }
                rx.handle_packet(now, p.timestamp, p.marker, &p.payload)
                    .unwrap();
            }
            now += ms(20);
            assert!(now < t0 + Duration::from_secs(11));
        }
        assert_eq!(timestamps, vec![5, 5 + 0xFFFF]);
        let evs = drain(&mut rx);
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert!(matches!(
            evs[1],
            Rfc4733Event::Ended {
                duration: 80000,
                ..
            }
        ));
    }

    #[test]
    fn late_sender_tick_skips_to_newest_update() {
        let t0 = Instant::now();
        let mut tx = Rfc4733Sender::new(SenderConfig::default());
        tx.start(t0, d('3'), 0, ms(1000)).unwrap();
        assert!(tx.poll_packet(t0).unwrap().marker);
        let p = tx.poll_packet(t0 + ms(260)).unwrap();
        assert_eq!(TelephoneEvent::parse(&p.payload).unwrap().duration, 2000);
        assert_eq!(tx.poll_packet(t0 + ms(260)), None);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(300)));
    }

    proptest::proptest! {
        /// Network input never panics the receiver, and reports stay
        /// bounded: at most one Began per packet.
        #[test]
        fn receiver_survives_any_packets(
            packets in proptest::collection::vec(
                (0u32..200_000, proptest::bool::ANY, proptest::collection::vec(0u8..=255, 0..12), 0u64..400),
                0..64,
            )
        ) {
            let t0 = Instant::now();
            let mut rx = Rfc4733Receiver::new(ReceiverConfig::default());
            let mut now = t0;
            let mut began = 0usize;
            for (ts, marker, payload, step) in &packets {
                now += ms(*step);
                rx.handle_timeout(now);
                let _ = rx.handle_packet(now, *ts, *marker, payload);
                while let Some(ev) = rx.poll_event() {
                    if matches!(ev, Rfc4733Event::Began { .. }) {
                        began += 1;
                    }
                }
            }
            proptest::prop_assert!(began <= packets.len());
        }
    }
}
