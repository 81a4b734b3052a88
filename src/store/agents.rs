//! Agents and their skills (DESIGN §6): login, display name, extension,
//! digest credentials kept as HA1 (RFC 7616 §3.4.2), skills with levels 1–5.

use crate::sip::registrar::Account;
use std::collections::BTreeMap;
use std::fmt;

use sqlx::AnyPool;

use super::{StoreError, new_id, now_ms};
use crate::sip::registrar::digest::{DigestAlgorithm, ha1};

/// An agent's id (UUIDv7 text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub String);

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent as stored. The credentials are not part of it; see
/// [`Agents::credentials`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub login: String,
    pub display_name: String,
    pub extension: Option<String>,
    pub realm: String,
    /// `offline`, `available`, `offered`, `on_call`, `wrap_up` or `paused`.
    pub state: String,
    pub pause_reason: Option<String>,
    pub created_at: i64,
    /// Skill names with levels 1–5, sorted by name.
    pub skills: Vec<(String, u8)>,
}

/// What `agent add` needs. The password is hashed into HA1s with `realm`
/// (the configured SIP domain) and then dropped.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub login: String,
    pub password: String,
    pub display_name: Option<String>,
    pub extension: Option<String>,
    pub realm: String,
    pub skills: Vec<(String, u8)>,
}

/// Changes to an agent's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentUpdate {
    /// A blank name falls back to the login.
    pub display_name: Option<String>,
    /// `Some(None)` clears the extension.
    pub extension: Option<Option<String>>,
    /// Re-hashed into HA1s with the agent's own realm, then dropped.
    pub password: Option<String>,
}

/// The states kept in the store: whether the agent is paused (and why)
/// survives a restart; the transient call states are never written.
pub const STORED_STATES: &[&str] = &["offline", "available", "paused"];

/// A bad skills list such as `support=5,sales=2`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkillError {
    #[error("{item:?} is not NAME=LEVEL (e.g. support=5)")]
    Syntax { item: String },
    #[error("skill name {name:?} must be 1-64 characters of a-z, 0-9, '_' or '-'")]
    Name { name: String },
    #[error("skill {name:?} has level {level:?}; levels are 1 to 5")]
    Level { name: String, level: String },
    #[error("skill {name:?} is listed twice")]
    Duplicate { name: String },
}

/// Parses `support=5,sales=2` (spaces around items allowed; an empty text
/// is an empty list) into skills sorted by name.
pub fn parse_skills(text: &str) -> Result<Vec<(String, u8)>, SkillError> {
    let mut out: Vec<(String, u8)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, level) = item.split_once('=').ok_or_else(|| SkillError::Syntax {
            item: item.to_owned(),
        })?;
        let (name, level) = (name.trim(), level.trim());
        check_skill_name(name)?;
        let level = match level.parse::<u8>() {
            Ok(l @ 1..=5) => l,
            _ => {
                return Err(SkillError::Level {
                    name: name.to_owned(),
                    level: level.to_owned(),
                });
            }
        };
        if out.iter().any(|(n, _)| n == name) {
            return Err(SkillError::Duplicate {
                name: name.to_owned(),
            });
        }
        out.push((name.to_owned(), level));
    }
    out.sort();
    Ok(out)
}

/// Writes skills back as `sales=2,support=5`.
pub fn format_skills(skills: &[(String, u8)]) -> String {
    let parts: Vec<String> = skills.iter().map(|(n, l)| format!("{n}={l}")).collect();
    parts.join(",")
}

fn check_skill_name(name: &str) -> Result<(), SkillError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SkillError::Name {
            name: name.to_owned(),
        })
    }
}

/// Checks skill names (a-z, 0-9, `_`, `-`, 1-64 long), levels 1–5 and
/// duplicates.
pub fn check_skills(skills: &[(String, u8)]) -> Result<(), SkillError> {
    for (i, (name, level)) in skills.iter().enumerate() {
        check_skill_name(name)?;
        if !(1..=5).contains(level) {
            return Err(SkillError::Level {
                name: name.clone(),
                level: level.to_string(),
            });
        }
        if skills[..i].iter().any(|(n, _)| n == name) {
            return Err(SkillError::Duplicate { name: name.clone() });
        }
    }
    Ok(())
}

/// A login is the SIP user part agents register with: 1–64 characters of
/// letters, digits and `.` `_` `-` `+`.
fn check_login(login: &str) -> Result<(), StoreError> {
    let ok = !login.is_empty()
        && login.len() <= 64
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "login",
            value: login.to_owned(),
            reason: "use 1-64 letters, digits, '.', '_', '-' or '+'",
        })
    }
}

fn check_extension(extension: &str) -> Result<(), StoreError> {
    let ok = !extension.is_empty()
        && extension.len() <= 15
        && extension.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "extension",
            value: extension.to_owned(),
            reason: "use 1-15 digits",
        })
    }
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: String,
    login: String,
    display_name: String,
    extension: Option<String>,
    realm: String,
    state: String,
    pause_reason: Option<String>,
    created_at: i64,
}

impl AgentRow {
    fn into_agent(self, skills: Vec<(String, u8)>) -> Agent {
        Agent {
            id: AgentId(self.id),
            login: self.login,
            display_name: self.display_name,
            extension: self.extension,
            realm: self.realm,
            state: self.state,
            pause_reason: self.pause_reason,
            created_at: self.created_at,
            skills,
        }
    }
}

const AGENT_COLUMNS: &str =
    "id, login, display_name, extension, realm, state, pause_reason, created_at";

/// The agents table; from [`super::Store::agents`].
pub struct Agents<'a> {
    pool: &'a AnyPool,
}

impl<'a> Agents<'a> {
    pub(super) fn new(pool: &'a AnyPool) -> Agents<'a> {
        Agents { pool }
    }

    /// Adds an agent with its skills. Duplicate login or extension is
    /// [`StoreError::Conflict`].
    pub async fn add(&self, new: NewAgent) -> Result<Agent, StoreError> {
        check_login(&new.login)?;
        if let Some(ext) = &new.extension {
            check_extension(ext)?;
        }
        check_skills(&new.skills)?;
        let mut skills = new.skills.clone();
        skills.sort();

        let mut tx = self.pool.begin().await?;
        let taken: Option<(String,)> = sqlx::query_as("SELECT id FROM agents WHERE login = $1")
            .bind(&new.login)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict {
                what: "login",
                value: new.login,
            });
        }
        if let Some(ext) = &new.extension {
            let taken: Option<(String,)> =
                sqlx::query_as("SELECT id FROM agents WHERE extension = $1")
                    .bind(ext)
                    .fetch_optional(&mut *tx)
                    .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict {
                    what: "extension",
                    value: ext.clone(),
                });
            }
        }

        let id = new_id();
        let created_at = now_ms();
        let display_name = new
            .display_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| new.login.clone());
        let md5 = ha1(DigestAlgorithm::Md5, &new.login, &new.realm, &new.password);
        let sha256 = ha1(
            DigestAlgorithm::Sha256,
            &new.login,
            &new.realm,
            &new.password,
        );
        sqlx::query(
            "INSERT INTO agents (id, login, display_name, extension, realm, ha1_md5, ha1_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&new.login)
        .bind(&display_name)
        .bind(new.extension.clone())
        .bind(&new.realm)
        .bind(&md5)
        .bind(&sha256)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, &new.login))?;
        for (skill, level) in &skills {
            sqlx::query("INSERT INTO agent_skills (agent_id, skill, level) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(skill)
                .bind(i32::from(*level))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Agent {
            id: AgentId(id),
            login: new.login,
            display_name,
            extension: new.extension,
            realm: new.realm,
            state: "offline".to_owned(),
            pause_reason: None,
            created_at,
            skills,
        })
    }

    /// The agent with this login.
    pub async fn get(&self, login: &str) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE login = $1");
        let row: Option<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(login)
            .fetch_optional(self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let skills: Vec<(String, i64)> = sqlx::query_as(
            "SELECT skill, level FROM agent_skills WHERE agent_id = $1 ORDER BY skill",
        )
        .bind(&row.id)
        .fetch_all(self.pool)
        .await?;
        Ok(Some(row.into_agent(skills_of(skills))))
    }

    /// Every agent, by login.
    pub async fn list(&self) -> Result<Vec<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY login");
        let rows: Vec<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool)
            .await?;
        let skill_rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT agent_id, skill, level FROM agent_skills ORDER BY agent_id, skill",
        )
        .fetch_all(self.pool)
        .await?;
        let mut by_agent: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
        for (agent_id, skill, level) in skill_rows {
            by_agent.entry(agent_id).or_default().push((skill, level));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let skills = by_agent.remove(&row.id).unwrap_or_default();
                row.into_agent(skills_of(skills))
            })
            .collect())
    }

    /// Removes an agent and its skills; `false` if there was none.
    pub async fn remove(&self, login: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM agent_skills WHERE agent_id IN (SELECT id FROM agents WHERE login = $1)",
        )
        .bind(login)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM agents WHERE login = $1")
            .bind(login)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces the agent's skills with `skills`.
    pub async fn set_skills(&self, login: &str, skills: &[(String, u8)]) -> Result<(), StoreError> {
        check_skills(skills)?;
        let mut tx = self.pool.begin().await?;
        let id: Option<(String,)> = sqlx::query_as("SELECT id FROM agents WHERE login = $1")
            .bind(login)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((id,)) = id else {
            return Err(StoreError::NotFound {
                what: "agent",
                key: login.to_owned(),
            });
        };
        sqlx::query("DELETE FROM agent_skills WHERE agent_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for (skill, level) in skills {
            sqlx::query("INSERT INTO agent_skills (agent_id, skill, level) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(skill)
                .bind(i32::from(*level))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies `update` to the agent; returns the agent as it is now.
    /// Unknown login is [`StoreError::NotFound`], an extension another
    /// agent has is [`StoreError::Conflict`].
    pub async fn update(&self, login: &str, update: AgentUpdate) -> Result<Agent, StoreError> {
        if let Some(Some(ext)) = &update.extension {
            check_extension(ext)?;
        }
        if update.password.as_deref() == Some("") {
            return Err(StoreError::Invalid {
                what: "password",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, realm FROM agents WHERE login = $1")
                .bind(login)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id, realm)) = row else {
            return Err(StoreError::NotFound {
                what: "agent",
                key: login.to_owned(),
            });
        };
        if let Some(name) = &update.display_name {
            let name = if name.trim().is_empty() { login } else { name };
            sqlx::query("UPDATE agents SET display_name = $1 WHERE id = $2")
                .bind(name)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(extension) = &update.extension {
            if let Some(ext) = extension {
                let taken: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM agents WHERE extension = $1 AND id <> $2")
                        .bind(ext)
                        .bind(&id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    return Err(StoreError::Conflict {
                        what: "extension",
                        value: ext.clone(),
                    });
                }
            }
            sqlx::query("UPDATE agents SET extension = $1 WHERE id = $2")
                .bind(extension.clone())
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, login))?;
        }
        if let Some(password) = &update.password {
            let md5 = ha1(DigestAlgorithm::Md5, login, &realm, password);
            let sha256 = ha1(DigestAlgorithm::Sha256, login, &realm, password);
            sqlx::query("UPDATE agents SET ha1_md5 = $1, ha1_sha256 = $2 WHERE id = $3")
                .bind(&md5)
                .bind(&sha256)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.get(login).await?.ok_or_else(|| StoreError::NotFound {
            what: "agent",
            key: login.to_owned(),
        })
    }

    /// Records whether the agent is `paused` (with `reason`), `available`
    /// or `offline` (one of [`STORED_STATES`]); a reason goes with
    /// `paused` only.
    pub async fn set_state(
        &self,
        login: &str,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        if !STORED_STATES.contains(&state) {
            return Err(StoreError::Invalid {
                what: "state",
                value: state.to_owned(),
                reason: "must be offline, available or paused",
            });
        }
        let reason = if state == "paused" {
            Some(reason.unwrap_or("paused"))
        } else {
            None
        };
        let done = sqlx::query("UPDATE agents SET state = $1, pause_reason = $2 WHERE login = $3")
            .bind(state)
            .bind(reason)
            .bind(login)
            .execute(self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "agent",
                key: login.to_owned(),
            });
        }
        Ok(())
    }

    /// The digest credentials of `login`, for the registrar.
    pub async fn credentials(&self, login: &str) -> Result<Option<Account>, StoreError> {
        let row: Option<(String, String, String, String)> =
            sqlx::query_as("SELECT login, realm, ha1_md5, ha1_sha256 FROM agents WHERE login = $1")
                .bind(login)
                .fetch_optional(self.pool)
                .await?;
        Ok(row.map(|(login, realm, ha1_md5, ha1_sha256)| Account {
            login,
            realm,
            ha1_md5,
            ha1_sha256,
        }))
    }
}

fn skills_of(rows: Vec<(String, i64)>) -> Vec<(String, u8)> {
    rows.into_iter()
        .map(|(skill, level)| (skill, u8::try_from(level.clamp(1, 5)).unwrap_or(1)))
        .collect()
}

/// A unique violation on insert (a race with another writer) is a conflict.
fn conflict_or(err: sqlx::Error, login: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what: "login or extension",
            value: login.to_owned(),
        },
        _ => StoreError::Database(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_parse_and_sort() {
        assert_eq!(
            parse_skills("support=5,sales=2").unwrap(),
            vec![("sales".to_owned(), 2), ("support".to_owned(), 5)]
        );
        assert_eq!(
            parse_skills(" billing = 1 , tier-2_x=3 ").unwrap(),
            vec![("billing".to_owned(), 1), ("tier-2_x".to_owned(), 3)]
        );
        assert_eq!(parse_skills("").unwrap(), vec![]);
        assert_eq!(format_skills(&parse_skills("b=1,a=2").unwrap()), "a=2,b=1");
    }

    #[test]
    fn skills_errors_are_specific() {
        assert!(matches!(
            parse_skills("support"),
            Err(SkillError::Syntax { .. })
        ));
        assert!(matches!(
            parse_skills("Support=1"),
            Err(SkillError::Name { .. })
        ));
        assert!(matches!(parse_skills("=1"), Err(SkillError::Name { .. })));
        assert!(matches!(parse_skills("a=0"), Err(SkillError::Level { .. })));
        assert!(matches!(parse_skills("a=6"), Err(SkillError::Level { .. })));
        assert!(matches!(parse_skills("a=x"), Err(SkillError::Level { .. })));
        assert!(matches!(
            parse_skills("a=1,a=2"),
            Err(SkillError::Duplicate { .. })
        ));
        let msg = parse_skills("support=9").unwrap_err().to_string();
        assert!(msg.contains("support") && msg.contains("1 to 5"), "{msg}");
    }

    #[test]
    fn logins_and_extensions_are_checked() {
        assert!(check_login("alice.smith+1").is_ok());
        assert!(check_login("").is_err());
        assert!(check_login("a b").is_err());
        assert!(check_login("a@b").is_err());
        assert!(check_extension("1001").is_ok());
        assert!(check_extension("10a1").is_err());
    }
}
