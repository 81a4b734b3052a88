//! `POST /api/v1/messages`: SMS, WhatsApp and chat messages in neutral
//! JSON (DESIGN §7), inbound or outbound. The customer's identity (sender
//! of an inbound message, recipient of an outbound one) names the contact;
//! the message joins the contact's thread by the linking rules.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::party_contact;
use crate::store::Store;
use crate::thread::contacts::{self, Contact};
use crate::thread::events::{self, Event, NewEvent};
use crate::thread::identity::{self, IdentityKind};
use crate::thread::linking::{ThreadChoice, choose_thread};
use crate::thread::threads::{self, Thread};
use crate::thread::{Channel, Direction, EventKind, ThreadError, parse_rfc3339};

/// Longest `from`/`to`/`external_id` accepted.
const MAX_FIELD: usize = 512;

/// A validated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub channel: Channel,
    pub direction: Direction,
    pub from: String,
    pub to: Option<String>,
    pub body: String,
    pub external_id: Option<String>,
    pub occurred_at: Option<i64>,
    /// Extra facts kept in the event's metadata (an object, or null).
    pub extra: Value,
}

/// What ingest did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ingested {
    pub contact: Contact,
    pub thread: Thread,
    pub event: Event,
    /// False when the event was already stored (same channel and
    /// external_id) and nothing was written.
    pub created: bool,
    pub thread_choice: Option<ThreadChoice>,
}

fn text<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<&'a str>, ThreadError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > max => Err(ThreadError::invalid(
            field,
            format!("longer than {max} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ThreadError::invalid(field, "must be a string")),
    }
}

fn required<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<&'a str, ThreadError> {
    text(obj, field, max)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ThreadError::invalid(field, "is required"))
}

/// Parses and checks a request body; errors name the field.
pub fn validate(body: &[u8]) -> Result<InboundMessage, ThreadError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ThreadError::invalid("body", format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ThreadError::invalid("body", "must be a JSON object"));
    };
    let channel = match required(&obj, "channel", 16)? {
        "sms" => Channel::Sms,
        "whatsapp" => Channel::Whatsapp,
        "chat" => Channel::Chat,
        _ => {
            return Err(ThreadError::invalid(
                "channel",
                "must be sms, whatsapp or chat",
            ));
        }
    };
    let direction = match text(&obj, "direction", 16)?.unwrap_or("inbound") {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        _ => {
            return Err(ThreadError::invalid(
                "direction",
                "must be inbound or outbound",
            ));
        }
    };
    let from = required(&obj, "from", MAX_FIELD)?.to_owned();
    let to = text(&obj, "to", MAX_FIELD)?.map(str::to_owned);
    if direction == Direction::Outbound && to.is_none() {
        return Err(ThreadError::invalid(
            "to",
            "is required for outbound messages",
        ));
    }
    let body = text(&obj, "body", events::MAX_BODY)?
        .unwrap_or_default()
        .to_owned();
    let external_id = text(&obj, "external_id", MAX_FIELD)?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let occurred_at = match text(&obj, "occurred_at", 64)? {
        None => None,
        Some(t) => Some(
            parse_rfc3339(t)
                .ok_or_else(|| ThreadError::invalid("occurred_at", "must be RFC 3339"))?,
        ),
    };
    Ok(InboundMessage {
        channel,
        direction,
        from,
        to,
        body,
        external_id,
        occurred_at,
        extra: Value::Null,
    })
}

/// The identity kind of a channel's addresses.
fn kind_of(channel: Channel) -> IdentityKind {
    match channel {
        Channel::Whatsapp => IdentityKind::Whatsapp,
        Channel::Chat => IdentityKind::Chat,
        _ => IdentityKind::Phone,
    }
}

/// Stores a message: links the customer's identity (creating the contact
/// when unknown), chooses the thread and appends the event.
pub async fn ingest(
    store: &Store,
    msg: &InboundMessage,
    now: i64,
) -> Result<Ingested, ThreadError> {
    if let Some(ext) = &msg.external_id
        && let Some(event) = events::by_external_id(store, msg.channel, ext).await?
    {
        return existing(store, event).await;
    }
    let kind = kind_of(msg.channel);
    let (party_field, party, ours) = match msg.direction {
        Direction::Outbound => ("to", msg.to.as_deref().unwrap_or_default(), Some(&msg.from)),
        _ => ("from", msg.from.as_str(), msg.to.as_ref()),
    };
    // National numbers are read in our number's country.
    let region = ours
        .and_then(|n| identity::normalize(kind, n, None))
        .and_then(|n| identity::parse_phone(&n, None))
        .and_then(|n| n.region());
    let value = identity::normalize(kind, party, region)
        .ok_or_else(|| ThreadError::invalid(party_field, format!("not a valid {kind} address")))?;
    let contact = party_contact(store, kind, &value, None, now).await?;
    let (thread, choice) = choose_thread(store, &contact.id, msg.channel, true, None, now).await?;
    let thread = thread.ok_or_else(|| ThreadError::NotFound {
        what: "thread of contact",
        id: contact.id.0.clone(),
    })?;
    let event = NewEvent {
        channel: msg.channel,
        kind: EventKind::Message,
        direction: msg.direction,
        body: Some(msg.body.clone()),
        metadata: metadata(msg),
        occurred_at: msg.occurred_at.unwrap_or(now),
        external_id: msg.external_id.clone(),
    };
    let (event, created) = events::append(store, &thread.id, event, now).await?;
    let thread = threads::get(store, thread.id.as_str())
        .await?
        .unwrap_or(thread);
    Ok(Ingested {
        contact,
        thread,
        event,
        created,
        thread_choice: Some(choice),
    })
}

fn metadata(msg: &InboundMessage) -> Value {
    let mut m = json!({ "from": msg.from, "to": msg.to });
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), &msg.extra) {
        m.extend(extra.clone());
    }
    m
}

/// The answer for an event that is already stored.
pub(crate) async fn existing(store: &Store, event: Event) -> Result<Ingested, ThreadError> {
    let thread = threads::get(store, event.thread_id.as_str())
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "thread",
            id: event.thread_id.0.clone(),
        })?;
    let contact = contacts::resolve(store, thread.contact_id.as_str())
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "contact",
            id: thread.contact_id.0.clone(),
        })?;
    Ok(Ingested {
        contact,
        thread,
        event,
        created: false,
        thread_choice: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> &'static str {
        match validate(body.as_bytes()) {
            Err(ThreadError::Invalid { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(field_of("nope"), "body");
        assert_eq!(field_of("[]"), "body");
        assert_eq!(field_of(r#"{"from":"+14155550123"}"#), "channel");
        assert_eq!(field_of(r#"{"channel":"fax","from":"x"}"#), "channel");
        assert_eq!(field_of(r#"{"channel":"sms"}"#), "from");
        assert_eq!(field_of(r#"{"channel":"sms","from":42}"#), "from");
        assert_eq!(
            field_of(r#"{"channel":"sms","from":"+1","direction":"sideways"}"#),
            "direction"
        );
        assert_eq!(
            field_of(r#"{"channel":"sms","from":"+1","direction":"outbound"}"#),
            "to"
        );
        assert_eq!(
            field_of(r#"{"channel":"sms","from":"+1","occurred_at":"monday"}"#),
            "occurred_at"
        );
    }

    #[test]
    fn a_full_message() {
        let m = validate(
            br#"{"channel":"sms","from":"+14155550123","to":"+14155550100","body":"hi",
                "external_id":"SM1","occurred_at":"2026-03-01T10:00:00Z","direction":"inbound"}"#,
        )
        .unwrap();
        assert_eq!(m.channel, Channel::Sms);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.external_id.as_deref(), Some("SM1"));
        assert_eq!(m.occurred_at, Some(1_772_359_200_000));
    }
}
