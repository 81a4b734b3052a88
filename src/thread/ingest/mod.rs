//! Inbound messages and email (DESIGN §7): neutral JSON messages, raw
//! RFC 5322 email and Twilio's SMS webhook. Every ingest is idempotent on a
//! key: the first answer is kept in `inbound_receipts` and a repeat gets it
//! back without writing anything; the same key with another request is a
//! conflict.

pub mod email;
pub mod messages;
pub mod sha1;
pub mod twilio;

use sha2::{Digest as _, Sha256};

use super::contacts::{self, Contact, Role};
use super::identity::IdentityKind;
use super::{ThreadError, hex};
use crate::store::Store;

/// Longest idempotency key accepted.
pub const MAX_KEY: usize = 256;

/// An HTTP answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Lower-case hex SHA-256 of a request, compared on replay.
pub fn request_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

/// Checks a key: `Some(first answer)` for a repeat of the same request,
/// `None` when the key is new, a conflict when it came with another request.
pub async fn replay(store: &Store, key: &str, hash: &str) -> Result<Option<Reply>, ThreadError> {
    let row: Option<(String, i64, String, String)> = sqlx::query_as(
        "SELECT request_hash, status, content_type, response FROM inbound_receipts WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(store.pool())
    .await?;
    match row {
        None => Ok(None),
        Some((stored, status, content_type, body)) => {
            if stored != hash {
                return Err(ThreadError::IdempotencyConflict {
                    key: key.to_owned(),
                });
            }
            Ok(Some(Reply {
                status: u16::try_from(status).unwrap_or(200),
                content_type,
                body,
            }))
        }
    }
}

/// Keeps `reply` as the answer to `key`; when a racing request kept one
/// first, that one is returned instead (the first answer wins).
pub async fn keep(
    store: &Store,
    key: &str,
    hash: &str,
    reply: Reply,
    now: i64,
) -> Result<Reply, ThreadError> {
    sqlx::query(
        "INSERT INTO inbound_receipts (key, request_hash, status, content_type, response, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(hash)
    .bind(i64::from(reply.status))
    .bind(&reply.content_type)
    .bind(&reply.body)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(replay(store, key, hash).await?.unwrap_or(reply))
}

/// Checks an idempotency key's shape.
pub fn check_key(key: &str) -> Result<(), ThreadError> {
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        return Err(ThreadError::invalid(
            "idempotency_key",
            format!("must be 1 to {MAX_KEY} printable characters"),
        ));
    }
    Ok(())
}

/// The contact behind a sender or recipient identity: its owner, else the
/// first contact sharing it, else (for a phone or WhatsApp number) the
/// owner of the same number on the other kind, else a new contact.
pub async fn party_contact(
    store: &Store,
    kind: IdentityKind,
    value: &str,
    name: Option<&str>,
    now: i64,
) -> Result<Contact, ThreadError> {
    let linked = contacts::by_identity(store, kind, value).await?;
    if let Some((contact, _)) = linked.into_iter().next() {
        return Ok(contact);
    }
    let sibling = match kind {
        IdentityKind::Phone => Some(IdentityKind::Whatsapp),
        IdentityKind::Whatsapp => Some(IdentityKind::Phone),
        _ => None,
    };
    if let Some(sibling) = sibling {
        let owners = contacts::by_identity(store, sibling, value).await?;
        if let Some((owner, Role::Owner)) = owners.into_iter().next() {
            contacts::link(store, &owner.id, kind, value, Role::Owner, now).await?;
        }
    }
    contacts::ensure_owner(store, kind, value, name, now).await
}
