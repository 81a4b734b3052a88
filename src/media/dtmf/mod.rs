//! DTMF: the three ways a caller's key presses reach the switch (DESIGN §4).
//!
//! - [`rfc4733`]: telephone-events in RTP (RFC 4733 §2.3), a receiver that
//!   reports each key press once and a sender that produces the packets.
//! - [`goertzel`]: in-band tone detection in 8 kHz audio, for gateways that
//!   send the tones as sound (ITU-T Q.23/Q.24 frequencies and limits).
//! - [`info`]: SIP INFO bodies, `application/dtmf-relay` and
//!   `application/dtmf`.
//!
//! All three are sans-IO: time and timestamps are inputs, and nothing
//! allocates per packet or per frame.

pub mod goertzel;
pub mod info;
pub mod rfc4733;

use std::fmt;

/// One DTMF key: `0`–`9`, `*`, `#`, `A`–`D`, held as its RFC 4733 §3.2
/// event code (0–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digit(u8);

/// The keys in event-code order (RFC 4733 §3.2, Table 7).
const DIGIT_CHARS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

impl Digit {
    pub const STAR: Digit = Digit(10);
    pub const HASH: Digit = Digit(11);

    /// The key for an RFC 4733 §3.2 event code; `None` for codes above 15
    /// (flash and the other non-DTMF events).
    pub const fn from_event_code(code: u8) -> Option<Digit> {
        if code < 16 { Some(Digit(code)) } else { None }
    }

    /// The key for a character: `0`–`9`, `*`, `#`, `A`–`D` (either case).
    pub fn from_char(c: char) -> Option<Digit> {
        let upper = c.to_ascii_uppercase();
        DIGIT_CHARS
            .iter()
            .position(|&d| d == upper)
            .and_then(|i| u8::try_from(i).ok())
            .map(Digit)
    }

    /// The RFC 4733 §3.2 event code (0–15).
    pub const fn event_code(self) -> u8 {
        self.0
    }

    /// The key as printed on the keypad.
    pub fn as_char(self) -> char {
        DIGIT_CHARS[usize::from(self.0 & 0x0f)]
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// A fixed-capacity FIFO of outputs, so cores queue events without
/// allocating. When full, new items are refused (and counted by the caller).
#[derive(Debug, Clone)]
pub(crate) struct EventQueue<T: Copy, const N: usize> {
    items: [Option<T>; N],
    head: usize,
    len: usize,
}

impl<T: Copy, const N: usize> EventQueue<T, N> {
    pub(crate) const fn new() -> Self {
        EventQueue {
            items: [None; N],
            head: 0,
            len: 0,
        }
    }

    /// Appends `item`; false if the queue is full and it was dropped.
    pub(crate) fn push(&mut self, item: T) -> bool {
        if self.len == N {
            return false;
        }
        let slot = (self.head + self.len) % N;
        self.items[slot] = Some(item);
        self.len += 1;
        true
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.items[self.head].take();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        item
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_round_trip_through_codes_and_chars() {
        // RFC 4733 §3.2: events 0-9, * = 10, # = 11, A-D = 12-15.
        for code in 0..16u8 {
            let d = Digit::from_event_code(code).unwrap();
            assert_eq!(Digit::from_char(d.as_char()), Some(d));
            assert_eq!(d.event_code(), code);
        }
        assert_eq!(Digit::from_char('*'), Some(Digit::STAR));
        assert_eq!(Digit::from_char('#'), Some(Digit::HASH));
        assert_eq!(Digit::from_char('d').map(Digit::event_code), Some(15));
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::from_char('E'), None);
        assert_eq!(Digit::HASH.to_string(), "#");
    }

    #[test]
    fn event_queue_is_bounded_fifo() {
        let mut q: EventQueue<u8, 2> = EventQueue::new();
        assert!(q.push(1));
        assert!(q.push(2));
        assert!(!q.push(3));
        assert_eq!(q.pop(), Some(1));
        assert!(q.push(4));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), None);
    }
}
