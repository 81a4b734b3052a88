//! `POST /api/v1/emails`: one raw RFC 5322 message (`message/rfc822`),
//! parsed with `mail-parser`. Threading, first match wins: a reply token in
//! a recipient address (`support+t-TOKEN@…`), then In-Reply-To, then
//! References (RFC 5322 §3.6.4; matched against the Message-IDs stored on
//! email events), else a new email thread. Auto-replies (RFC 3834
//! `Auto-Submitted`, `X-Autoreply`, `Precedence`) and bounces (RFC 3464
//! delivery-status reports, MAILER-DAEMON) are stored, but never reopen a
//! resolved thread or start one.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;
use serde_json::json;

use super::{party_contact, request_hash};
use crate::store::Store;
use crate::thread::contacts::{self, ContactId, Role};
use crate::thread::events::{self, Event, NewEvent};
use crate::thread::identity::{IdentityKind, normalize_email};
use crate::thread::threads::{self, Status, Thread};
use crate::thread::{Channel, Direction, EventKind, ThreadError};

/// Most Message-IDs read from In-Reply-To or References.
const MAX_IDS: usize = 64;

/// Longest Message-ID kept.
const MAX_ID_LEN: usize = 512;

/// A parsed inbound email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEmail {
    /// Without angle brackets; `sha256:HEX` of the raw message when it has
    /// no Message-ID.
    pub message_id: String,
    pub derived_id: bool,
    /// The sender's address, lower-cased.
    pub from: String,
    pub from_name: Option<String>,
    /// Recipient addresses (To, Cc, Delivered-To, X-Original-To).
    pub recipients: Vec<String>,
    pub subject: Option<String>,
    pub body: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_reply: bool,
    pub bounce: bool,
    /// The Date header (epoch ms).
    pub date: Option<i64>,
}

/// How the thread was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadedBy {
    ReplyToken,
    InReplyTo,
    References,
    /// A new thread was started.
    New,
    /// An auto-reply or bounce joined the sender's latest thread as it is.
    Latest,
    /// An auto-reply or bounce with nowhere to go: not stored.
    Dropped,
}

/// What ingest did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmailIngested {
    pub contact_id: Option<ContactId>,
    pub thread: Option<Thread>,
    pub event: Option<Event>,
    pub created: bool,
    pub threaded_by: Option<ThreadedBy>,
    pub auto_reply: bool,
    pub bounce: bool,
}

/// Message-IDs in a header value: every `<…>`, else whitespace-separated
/// words (folded headers unfold as whitespace).
pub fn message_ids(raw: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        push_id(&mut ids, &rest[start + 1..start + len]);
        rest = &rest[start + len + 1..];
    }
    if ids.is_empty() {
        for word in raw.split_whitespace() {
            push_id(&mut ids, word);
        }
    }
    ids
}

fn push_id(ids: &mut Vec<String>, id: &str) {
    let id = id.trim();
    if !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && ids.len() < MAX_IDS
        && !ids.iter().any(|i| i == id)
    {
        ids.push(id.to_owned());
    }
}

/// The token of a `local+t-TOKEN@domain` address.
pub fn reply_token(address: &str) -> Option<&str> {
    let local = address.split('@').next()?;
    let (_, token) = local.split_once("+t-")?;
    let ok = !token.is_empty()
        && token.len() <= 64
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some(token)
}

/// Parses a raw message; errors name what is missing.
pub fn parse(raw: &[u8]) -> Result<InboundEmail, ThreadError> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| ThreadError::invalid("body", "not an RFC 5322 message"))?;
    let from_addr = message.from().and_then(|a| a.first());
    let from = from_addr
        .and_then(|a| a.address())
        .and_then(normalize_email)
        .ok_or_else(|| ThreadError::invalid("From", "missing or not an address"))?;
    let from_name = from_addr.and_then(|a| a.name()).map(str::to_owned);
    let (message_id, derived_id) = match message
        .message_id()
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
    {
        Some(id) => (id.to_owned(), false),
        None => (format!("sha256:{}", request_hash(&[raw])), true),
    };
    let mut recipients = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        for addr in list.iter().take(MAX_IDS) {
            if let Some(a) = addr.address().and_then(normalize_email) {
                recipients.push(a);
            }
        }
    }
    for name in ["Delivered-To", "X-Original-To"] {
        if let Some(a) = message.header_raw(name).and_then(normalize_email) {
            recipients.push(a);
        }
    }
    let raw_header = |name: &str| message.header_raw(name).unwrap_or_default().to_owned();
    let auto_submitted = raw_header("Auto-Submitted");
    let auto_word = auto_submitted.split(';').next().unwrap_or_default().trim();
    let precedence = raw_header("Precedence").trim().to_ascii_lowercase();
    let auto_reply = (!auto_word.is_empty() && !auto_word.eq_ignore_ascii_case("no"))
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some()
        || matches!(precedence.as_str(), "bulk" | "auto_reply" | "junk");
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"))
    });
    let daemon = from.starts_with("mailer-daemon@") || from.starts_with("postmaster@");
    Ok(InboundEmail {
        message_id,
        derived_id,
        from,
        from_name,
        recipients,
        subject: message.subject().map(str::to_owned),
        body: message
            .body_text(0)
            .map(|b| events::truncate(&b, events::MAX_BODY).to_owned())
            .unwrap_or_default(),
        in_reply_to: message_ids(&raw_header("In-Reply-To")),
        references: message_ids(&raw_header("References")),
        auto_reply,
        bounce: report || daemon,
        date: message
            .date()
            .map(|d| d.to_timestamp().saturating_mul(1000)),
    })
}

/// The thread an email names, and how.
async fn find_thread(
    store: &Store,
    email: &InboundEmail,
) -> Result<Option<(Thread, ThreadedBy)>, ThreadError> {
    for token in email.recipients.iter().filter_map(|r| reply_token(r)) {
        if let Some(t) = threads::by_reply_token(store, token).await? {
            return Ok(Some((t, ThreadedBy::ReplyToken)));
        }
    }
    let lists = [
        (&email.in_reply_to, ThreadedBy::InReplyTo),
        (&email.references, ThreadedBy::References),
    ];
    for (ids, how) in lists {
        // The last reference is the closest ancestor.
        for id in ids.iter().rev() {
            if let Some(event) = events::by_external_id(store, Channel::Email, id).await?
                && let Some(t) = threads::get(store, event.thread_id.as_str()).await?
            {
                return Ok(Some((t, how)));
            }
        }
    }
    Ok(None)
}

/// Stores an email into its thread (see the module documentation).
pub async fn ingest(
    store: &Store,
    email: &InboundEmail,
    now: i64,
) -> Result<EmailIngested, ThreadError> {
    let automatic = email.auto_reply || email.bounce;
    let answer = |thread: Option<Thread>, event: Option<Event>, created, how| EmailIngested {
        contact_id: thread.as_ref().map(|t: &Thread| t.contact_id.clone()),
        thread,
        event,
        created,
        threaded_by: how,
        auto_reply: email.auto_reply,
        bounce: email.bounce,
    };
    if let Some(event) = events::by_external_id(store, Channel::Email, &email.message_id).await? {
        let thread = threads::get(store, event.thread_id.as_str()).await?;
        return Ok(answer(thread, Some(event), false, None));
    }
    let (thread, how) = match find_thread(store, email).await? {
        Some((thread, how)) => {
            if !automatic {
                if contacts::by_identity(store, IdentityKind::Email, &email.from)
                    .await?
                    .is_empty()
                {
                    contacts::link(
                        store,
                        &thread.contact_id,
                        IdentityKind::Email,
                        &email.from,
                        Role::Shared,
                        now,
                    )
                    .await?;
                }
                if thread.status == Status::Resolved {
                    threads::set_status(store, &thread.id, Status::Open, now).await?;
                }
            }
            (thread, how)
        }
        None if automatic => {
            let known = contacts::by_identity(store, IdentityKind::Email, &email.from).await?;
            let latest = match known.first() {
                Some((c, _)) => threads::for_contact(store, &c.id, 1)
                    .await?
                    .into_iter()
                    .next(),
                None => None,
            };
            match latest {
                Some(t) => (t, ThreadedBy::Latest),
                None => return Ok(answer(None, None, false, Some(ThreadedBy::Dropped))),
            }
        }
        None => {
            let name = email.from_name.as_deref();
            let contact = party_contact(store, IdentityKind::Email, &email.from, name, now).await?;
            let subject = email.subject.as_deref();
            let thread = threads::create(store, &contact.id, Channel::Email, subject, now).await?;
            (thread, ThreadedBy::New)
        }
    };
    let event = NewEvent {
        channel: Channel::Email,
        kind: EventKind::Message,
        direction: Direction::Inbound,
        body: Some(email.body.clone()),
        metadata: json!({
            "message_id": email.message_id,
            "derived_message_id": email.derived_id,
            "in_reply_to": email.in_reply_to,
            "references": email.references,
            "subject": email.subject,
            "from": email.from,
            "to": email.recipients,
            "auto_reply": email.auto_reply,
            "bounce": email.bounce,
        }),
        occurred_at: email.date.unwrap_or(now),
        external_id: Some(email.message_id.clone()),
    };
    let (event, created) = events::append(store, &thread.id, event, now).await?;
    let thread = threads::get(store, thread.id.as_str()).await?;
    Ok(answer(thread, Some(event), created, Some(how)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_folded_references() {
        let raw = " <a@x.example>\r\n\t<b@y.example>\r\n  <c@z.example>";
        assert_eq!(
            message_ids(raw),
            ["a@x.example", "b@y.example", "c@z.example"]
        );
        assert_eq!(message_ids("bare@id.example"), ["bare@id.example"]);
        assert_eq!(message_ids(""), Vec::<String>::new());
        assert_eq!(message_ids("<unterminated@x"), ["<unterminated@x"]);
        assert_eq!(message_ids(&"<a@b> ".repeat(1000)).len(), 1);
    }

    #[test]
    fn reply_tokens() {
        assert_eq!(reply_token("support+t-abc123@help.example"), Some("abc123"));
        assert_eq!(reply_token("support@help.example"), None);
        assert_eq!(reply_token("support+t-@help.example"), None);
        assert_eq!(reply_token("support+t-a b@help.example"), None);
    }

    #[test]
    fn parse_real_world_headers() {
        let raw = "Return-Path: <ann@example.com>\r\n\
            From: \"Ann Lee\" <Ann@Example.com>\r\n\
            To: Support <support+t-0011aabb@help.example>\r\n\
            Subject: Re: my order\r\n\
            Date: Sun, 1 Mar 2026 10:00:00 +0000\r\n\
            Message-ID: <reply-1@mail.example.com>\r\n\
            In-Reply-To: <orig-1@help.example>\r\n\
            References: <first@help.example>\r\n\t<orig-1@help.example>\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            \r\n\
            Thanks!\r\n";
        let e = parse(raw.as_bytes()).unwrap();
        assert_eq!(e.message_id, "reply-1@mail.example.com");
        assert_eq!(e.from, "ann@example.com");
        assert_eq!(e.from_name.as_deref(), Some("Ann Lee"));
        assert_eq!(e.recipients, ["support+t-0011aabb@help.example"]);
        assert_eq!(e.in_reply_to, ["orig-1@help.example"]);
        assert_eq!(e.references, ["first@help.example", "orig-1@help.example"]);
        assert_eq!(e.date, Some(1_772_359_200_000));
        assert!(!e.auto_reply && !e.bounce);
        assert_eq!(e.body.trim(), "Thanks!");
    }

    #[test]
    fn missing_message_id_is_derived_from_the_content() {
        let raw = b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n";
        let e = parse(raw).unwrap();
        assert!(e.derived_id);
        assert!(e.message_id.starts_with("sha256:"));
        assert_eq!(parse(raw).unwrap().message_id, e.message_id);
        let other = parse(b"From: a@b.example\r\nSubject: hi\r\n\r\nbody 2\r\n").unwrap();
        assert_ne!(other.message_id, e.message_id);
    }

    /// RFC 3834 §5 Auto-Submitted, and the older vacation headers.
    #[test]
    fn auto_replies_and_bounces() {
        let base = "From: a@b.example\r\nMessage-ID: <m@b>\r\n";
        for (extra, auto) in [
            ("Auto-Submitted: auto-replied\r\n", true),
            ("Auto-Submitted: auto-generated; (vacation)\r\n", true),
            ("Auto-Submitted: no\r\n", false),
            ("X-Autoreply: yes\r\n", true),
            ("Precedence: bulk\r\n", true),
            ("Precedence: junk\r\n", true),
            ("Precedence: list\r\n", false),
        ] {
            let e = parse(format!("{base}{extra}\r\nx\r\n").as_bytes()).unwrap();
            assert_eq!(e.auto_reply, auto, "{extra}");
        }
        let dsn = "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n\
            Message-ID: <dsn@mx>\r\n\
            Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"b1\"\r\n\
            \r\n--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n\
            --b1\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b1--\r\n";
        let e = parse(dsn.as_bytes()).unwrap();
        assert!(e.bounce);
        let report = dsn.replace("MAILER-DAEMON@mx.example", "relay@mx.example");
        assert!(parse(report.as_bytes()).unwrap().bounce);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"").is_err());
        assert!(matches!(
            parse(b"Subject: no sender\r\n\r\nx"),
            Err(ThreadError::Invalid { field: "From", .. })
        ));
    }
}
