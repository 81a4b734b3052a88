//! The unified customer thread (DESIGN §7): contacts and their identities,
//! threads of events across voice, SMS, WhatsApp, chat and email, the call
//! records (CDR), the rules that link a call to a thread, and the ingest of
//! messages and email.
//!
//! Everything here works on the [`Store`](crate::store::Store) pool with one
//! SQL text for SQLite and PostgreSQL. Races are settled by unique keys and
//! `INSERT … ON CONFLICT … DO NOTHING` followed by a re-select.

pub mod calls;
pub mod contacts;
pub mod events;
pub mod identity;
pub mod ingest;
pub mod linking;
pub mod screen;
pub mod threads;

#[cfg(test)]
mod store_tests;

use std::fmt;

use serde::Serializer;

pub use calls::{CallEvent, CallRecord, Disposition, NewCall};
pub use contacts::{Contact, ContactId, Role};
pub use events::{Event, NewEvent};
pub use identity::{E164, IdentityKind};
pub use linking::{CallStage, LinkReason, LinkResult, ThreadChoice};
pub use threads::{Status, Thread, ThreadId};

/// Errors of the thread store and ingest.
#[derive(Debug, thiserror::Error)]
pub enum ThreadError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    /// A request field is missing or malformed; `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The idempotency key was first used with a different request.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyConflict { key: String },
    /// A stored column holds a value this version does not know.
    #[error("stored {column} has unknown value {value:?}")]
    BadColumn { column: &'static str, value: String },
    #[error("JSON column: {0}")]
    Json(#[from] serde_json::Error),
}

impl ThreadError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> ThreadError {
        ThreadError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Declares a closed set of names kept as text in the store and the API.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $column:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The variant named `text`, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Reads a stored column.
            pub(crate) fn from_column(text: &str) -> Result<$name, $crate::thread::ThreadError> {
                $name::parse(text).ok_or_else(|| $crate::thread::ThreadError::BadColumn {
                    column: $column,
                    value: text.to_owned(),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Where a thread event came from.
    Channel, "channel" {
        Voice => "voice",
        Sms => "sms",
        Whatsapp => "whatsapp",
        Chat => "chat",
        Email => "email",
    }
);

text_enum!(
    /// What a thread event is.
    EventKind, "kind" {
        Message => "message",
        Call => "call",
        Voicemail => "voicemail",
        Note => "note",
        Survey => "survey",
        Status => "status",
    }
);

text_enum!(
    /// Who a thread event went to.
    Direction, "direction" {
        Inbound => "inbound",
        Outbound => "outbound",
        Internal => "internal",
    }
);

/// Epoch milliseconds as RFC 3339 (UTC, milliseconds), the API's time form.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses RFC 3339 into epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

pub(crate) fn ser_time<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

pub(crate) fn ser_opt_time<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

/// Declares a newtype id (UUIDv7 text).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use id_type;

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
    Hex(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2026-03-01T10:00:00+01:00"),
            Some(1_772_355_600_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
        assert_eq!(Channel::parse("fax"), None);
    }
}
