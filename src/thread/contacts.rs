//! Contacts and the identities linked to them (DESIGN §7). An identity has
//! at most one owner and any number of sharing contacts; a merged contact
//! keeps a `merged_into` pointer to its survivor.

use serde::Serialize;

use super::identity::IdentityKind;
use super::{ThreadError, id_type, ser_time, text_enum};
use crate::store::{Store, new_id};

/// How many `merged_into` hops are followed before giving up.
const MAX_MERGE_HOPS: usize = 16;

id_type!(
    /// A contact's id (UUIDv7 text).
    ContactId
);

text_enum!(
    /// How a contact holds an identity.
    Role, "role" {
        Owner => "owner",
        Shared => "shared",
    }
);

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub id: ContactId,
    pub display_name: Option<String>,
    /// Raises the caller's priority in routing (DESIGN §6).
    pub vip: bool,
    /// The survivor this contact was merged into.
    pub merged_into: Option<ContactId>,
    #[serde(serialize_with = "ser_time")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_time")]
    pub updated_at: i64,
}

/// An identity as linked to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkedIdentity {
    pub kind: IdentityKind,
    pub value: String,
    pub role: Role,
}

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: String,
    display_name: Option<String>,
    vip: i64,
    merged_into: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Contact {
        Contact {
            id: ContactId(r.id),
            display_name: r.display_name,
            vip: r.vip != 0,
            merged_into: r.merged_into.map(ContactId),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A contact's columns followed by the link's role.
type LinkedContactRow = (
    String,
    Option<String>,
    i64,
    Option<String>,
    i64,
    i64,
    String,
);

const COLUMNS: &str = "c.id, c.display_name, c.vip, c.merged_into, c.created_at, c.updated_at";

/// The contact `id` as stored (merged or not).
pub async fn get(store: &Store, id: &str) -> Result<Option<Contact>, ThreadError> {
    let sql = format!("SELECT {COLUMNS} FROM contacts c WHERE c.id = $1");
    let row: Option<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(Contact::from))
}

/// The contact `id`, or the survivor it was merged into.
pub async fn resolve(store: &Store, id: &str) -> Result<Option<Contact>, ThreadError> {
    let mut current = get(store, id).await?;
    for _ in 0..MAX_MERGE_HOPS {
        match current {
            Some(Contact {
                merged_into: Some(ref next),
                ..
            }) => current = get(store, next.as_str()).await?,
            _ => return Ok(current),
        }
    }
    Ok(current)
}

/// Contacts linked to identity (`kind`, `value`), owner first; merged
/// contacts are left out (their links moved to the survivor).
pub async fn by_identity(
    store: &Store,
    kind: IdentityKind,
    value: &str,
) -> Result<Vec<(Contact, Role)>, ThreadError> {
    let sql = format!(
        "SELECT {COLUMNS}, l.role FROM identities i \
         JOIN identity_links l ON l.identity_id = i.id \
         JOIN contacts c ON c.id = l.contact_id \
         WHERE i.kind = $1 AND i.value = $2 AND c.merged_into IS NULL \
         ORDER BY CASE l.role WHEN 'owner' THEN 0 ELSE 1 END, c.created_at, c.id"
    );
    let rows: Vec<LinkedContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(kind.as_str())
        .bind(value)
        .fetch_all(store.pool())
        .await?;
    rows.into_iter()
        .map(
            |(id, display_name, vip, merged_into, created_at, updated_at, role)| {
                let contact = Contact::from(ContactRow {
                    id,
                    display_name,
                    vip,
                    merged_into,
                    created_at,
                    updated_at,
                });
                Ok((contact, Role::from_column(&role)?))
            },
        )
        .collect()
}

/// The identities of a contact.
pub async fn identities(store: &Store, id: &ContactId) -> Result<Vec<LinkedIdentity>, ThreadError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT i.kind, i.value, l.role FROM identity_links l \
         JOIN identities i ON i.id = l.identity_id WHERE l.contact_id = $1 \
         ORDER BY i.kind, i.value",
    )
    .bind(id.as_str())
    .fetch_all(store.pool())
    .await?;
    rows.into_iter()
        .map(|(kind, value, role)| {
            Ok(LinkedIdentity {
                kind: IdentityKind::from_column(&kind)?,
                value,
                role: Role::from_column(&role)?,
            })
        })
        .collect()
}

/// The id of identity (`kind`, `value`), created if new (race-safe).
async fn ensure_identity(
    store: &Store,
    kind: IdentityKind,
    value: &str,
    now: i64,
) -> Result<String, ThreadError> {
    sqlx::query(
        "INSERT INTO identities (id, kind, value, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(new_id())
    .bind(kind.as_str())
    .bind(value)
    .bind(now)
    .execute(store.pool())
    .await?;
    let (id,): (String,) =
        sqlx::query_as("SELECT id FROM identities WHERE kind = $1 AND value = $2")
            .bind(kind.as_str())
            .bind(value)
            .fetch_one(store.pool())
            .await?;
    Ok(id)
}

/// The owner of identity (`kind`, `value`) (following merges), creating
/// the identity and a new contact that owns it when there is none. Racing
/// callers end with one contact: the owner link is unique per identity, and
/// a loser's contact is rolled back. `name` is the new contact's display
/// name.
pub async fn ensure_owner(
    store: &Store,
    kind: IdentityKind,
    value: &str,
    name: Option<&str>,
    now: i64,
) -> Result<Contact, ThreadError> {
    let identity = ensure_identity(store, kind, value, now).await?;
    if let Some(owner) = owner_of(store, &identity).await? {
        return Ok(owner);
    }
    let id = new_id();
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO contacts (id, display_name, vip, created_at, updated_at) \
         VALUES ($1, $2, 0, $3, $3)",
    )
    .bind(&id)
    .bind(name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let linked = sqlx::query(
        "INSERT INTO identity_links (identity_id, contact_id, role, created_at) \
         VALUES ($1, $2, 'owner', $3) ON CONFLICT DO NOTHING",
    )
    .bind(&identity)
    .bind(&id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if linked.rows_affected() == 1 {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    owner_of(store, &identity)
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "identity owner",
            id: identity,
        })
}

/// The live owner of an identity id.
async fn owner_of(store: &Store, identity: &str) -> Result<Option<Contact>, ThreadError> {
    let owner: Option<(String,)> = sqlx::query_as(
        "SELECT contact_id FROM identity_links WHERE identity_id = $1 AND role = 'owner'",
    )
    .bind(identity)
    .fetch_optional(store.pool())
    .await?;
    match owner {
        Some((id,)) => resolve(store, &id).await,
        None => Ok(None),
    }
}

/// Links identity (`kind`, `value`) to `contact` with `role`. A second
/// owner is refused quietly (the link is not made); returns whether a link
/// was added.
pub async fn link(
    store: &Store,
    contact: &ContactId,
    kind: IdentityKind,
    value: &str,
    role: Role,
    now: i64,
) -> Result<bool, ThreadError> {
    let identity = ensure_identity(store, kind, value, now).await?;
    let done = sqlx::query(
        "INSERT INTO identity_links (identity_id, contact_id, role, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&identity)
    .bind(contact.as_str())
    .bind(role.as_str())
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A new contact with no identities.
pub async fn create(store: &Store, name: Option<&str>, now: i64) -> Result<Contact, ThreadError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO contacts (id, display_name, vip, created_at, updated_at) \
         VALUES ($1, $2, 0, $3, $3)",
    )
    .bind(&id)
    .bind(name)
    .bind(now)
    .execute(store.pool())
    .await?;
    get(store, &id).await?.ok_or(ThreadError::NotFound {
        what: "contact",
        id,
    })
}

/// Marks a contact VIP or not.
pub async fn set_vip(
    store: &Store,
    id: &ContactId,
    vip: bool,
    now: i64,
) -> Result<(), ThreadError> {
    update(store, "vip = $1", i64::from(vip), id, now).await
}

/// Sets a contact's display name.
pub async fn set_display_name(
    store: &Store,
    id: &ContactId,
    name: Option<&str>,
    now: i64,
) -> Result<(), ThreadError> {
    let done = sqlx::query("UPDATE contacts SET display_name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now)
        .bind(id.as_str())
        .execute(store.pool())
        .await?;
    found(done.rows_affected(), "contact", id.as_str())
}

async fn update(
    store: &Store,
    set: &'static str,
    value: i64,
    id: &ContactId,
    now: i64,
) -> Result<(), ThreadError> {
    let sql = format!("UPDATE contacts SET {set}, updated_at = $2 WHERE id = $3");
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .bind(now)
        .bind(id.as_str())
        .execute(store.pool())
        .await?;
    found(done.rows_affected(), "contact", id.as_str())
}

fn found(rows: u64, what: &'static str, id: &str) -> Result<(), ThreadError> {
    if rows == 0 {
        return Err(ThreadError::NotFound {
            what,
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Merges contact `from` into `into`: identities, threads and calls move
/// to the survivor, `from` keeps a pointer (`merged_into`), contacts merged
/// into `from` before now point at the survivor, and a VIP flag carries
/// over. Returns the survivor.
pub async fn merge(
    store: &Store,
    from: &str,
    into: &str,
    now: i64,
) -> Result<Contact, ThreadError> {
    let Some(survivor) = resolve(store, into).await? else {
        return Err(ThreadError::NotFound {
            what: "contact",
            id: into.to_owned(),
        });
    };
    let Some(source) = get(store, from).await? else {
        return Err(ThreadError::NotFound {
            what: "contact",
            id: from.to_owned(),
        });
    };
    if source.merged_into.is_some() {
        return Err(ThreadError::invalid(
            "id",
            "this contact was already merged",
        ));
    }
    if source.id == survivor.id {
        return Err(ThreadError::invalid(
            "into",
            "a contact cannot be merged into itself",
        ));
    }
    let (from, into) = (source.id.as_str(), survivor.id.as_str());
    let mut tx = store.pool().begin().await?;
    // Identities the survivor already holds keep the survivor's link.
    sqlx::query(
        "DELETE FROM identity_links WHERE contact_id = $1 AND identity_id IN \
         (SELECT identity_id FROM identity_links WHERE contact_id = $2)",
    )
    .bind(from)
    .bind(into)
    .execute(&mut *tx)
    .await?;
    for sql in [
        "UPDATE identity_links SET contact_id = $2 WHERE contact_id = $1",
        "UPDATE threads SET contact_id = $2 WHERE contact_id = $1",
        "UPDATE calls SET contact_id = $2 WHERE contact_id = $1",
        "UPDATE contacts SET merged_into = $2 WHERE merged_into = $1",
    ] {
        sqlx::query(sql)
            .bind(from)
            .bind(into)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE contacts SET merged_into = $2, updated_at = $3 WHERE id = $1")
        .bind(from)
        .bind(into)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE contacts SET vip = CASE WHEN vip = 1 OR $2 = 1 THEN 1 ELSE 0 END, \
         display_name = COALESCE(display_name, $3), updated_at = $4 WHERE id = $1",
    )
    .bind(into)
    .bind(i64::from(source.vip))
    .bind(source.display_name.as_deref())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get(store, into)
        .await?
        .ok_or_else(|| ThreadError::NotFound {
            what: "contact",
            id: into.to_owned(),
        })
}
