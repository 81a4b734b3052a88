//! Agents (DESIGN §6, §8): `GET|POST /api/v1/agents` and
//! `GET|PATCH|DELETE /api/v1/agents/{login}`. The store keeps the profile,
//! credentials (HA1 only) and skills; the routing engine learns of every
//! change at once and reports the live state. Pausing and unpausing go
//! through the engine, which stores the pause so it survives a restart.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use crate::acd::driver::{AcdCommand, LiveAgent};
use crate::store::{Agent, AgentUpdate, NewAgent, SkillError, StoreError, check_skills};
use crate::thread::rfc3339;

/// Longest display name or pause reason accepted.
const MAX_TEXT: usize = 200;

/// `GET /api/v1/agents`: every agent with its live state, by login.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agents = state.store.agents().list().await?;
    let logins = agents.iter().map(|a| a.login.clone()).collect();
    let live = state.acd.agent_states(logins).await;
    let agents: Vec<Value> = agents
        .iter()
        .map(|a| agent_json(a, live.get(&a.login)))
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `GET /api/v1/agents/{login}`.
pub async fn show(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = state
        .store
        .agents()
        .get(&login)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(with_live(&state, &agent).await))
}

/// `POST /api/v1/agents`: 201 with the new agent; 409 when the login or
/// extension is taken.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let fields = object(&body)?;
    only(
        &fields,
        &["login", "password", "display_name", "extension", "skills"],
    )?;
    let login = required_text(&fields, "login")?;
    let password = required_text(&fields, "password")?;
    let display_name = optional_text(&fields, "display_name")?.flatten();
    let extension = optional_text(&fields, "extension")?.flatten();
    let skills = match fields.get("skills") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => skills_of(v)?,
    };
    let agent = state
        .store
        .agents()
        .add(NewAgent {
            login,
            password,
            display_name,
            extension,
            realm: state.config.domain.clone(),
            skills,
        })
        .await
        .map_err(store_error)?;
    state.acd.send(AcdCommand::AgentUpsert {
        agent: agent.clone(),
    });
    let body = with_live(&state, &agent).await;
    state.events.publish("agent.changed", body.clone());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// What `PATCH` may set.
#[derive(Debug)]
enum StateChange {
    Available,
    Paused(String),
}

/// `PATCH /api/v1/agents/{login}`: any of `display_name`, `extension`
/// (`null` clears it), `password`, `skills`, and `state` (`available`, or
/// `paused` with an optional `reason`).
pub async fn update(
    State(state): State<AppState>,
    Path(login): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let fields = object(&body)?;
    only(
        &fields,
        &[
            "display_name",
            "extension",
            "password",
            "skills",
            "state",
            "reason",
        ],
    )?;
    let display_name = match optional_text(&fields, "display_name")? {
        Some(None) => {
            return Err(invalid("display_name", "must be a string"));
        }
        other => other.flatten(),
    };
    let extension = optional_text(&fields, "extension")?;
    let password = match optional_text(&fields, "password")? {
        Some(None) => return Err(invalid("password", "must be a string")),
        other => other.flatten(),
    };
    let skills = match fields.get("skills") {
        None => None,
        Some(v) => Some(skills_of(v)?),
    };
    let change = state_change(&fields)?;

    let agents = state.store.agents();
    if agents.get(&login).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    if display_name.is_some() || extension.is_some() || password.is_some() {
        agents
            .update(
                &login,
                AgentUpdate {
                    display_name,
                    extension,
                    password,
                },
            )
            .await
            .map_err(store_error)?;
    }
    if let Some(skills) = &skills {
        agents
            .set_skills(&login, skills)
            .await
            .map_err(store_error)?;
    }
    let agent = agents.get(&login).await?.ok_or(ApiError::NotFound)?;
    if skills.is_some() {
        state.acd.send(AcdCommand::AgentUpsert {
            agent: agent.clone(),
        });
    }
    if let Some(change) = change {
        let stored = match &change {
            StateChange::Paused(reason) => state.acd.pause(&login, reason).await,
            StateChange::Available => state.acd.unpause(&login).await,
        };
        match stored {
            Some(result) => result.map_err(store_error)?,
            None => {
                // The engine is gone (shutting down): the store still
                // learns of the change.
                let (name, reason) = match &change {
                    StateChange::Paused(reason) => ("paused", Some(reason.as_str())),
                    StateChange::Available => ("offline", None),
                };
                agents
                    .set_state(&login, name, reason)
                    .await
                    .map_err(store_error)?;
            }
        }
    }
    let agent = agents.get(&login).await?.ok_or(ApiError::NotFound)?;
    let body = with_live(&state, &agent).await;
    state.events.publish("agent.changed", body.clone());
    Ok(Json(body))
}

/// `DELETE /api/v1/agents/{login}`: 204; the engine forgets the agent (an
/// offer ringing it goes to the next agent).
pub async fn remove(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.agents().remove(&login).await? {
        return Err(ApiError::NotFound);
    }
    state.acd.send(AcdCommand::AgentRemoved {
        login: login.clone(),
    });
    state
        .events
        .publish("agent.removed", json!({ "login": login }));
    Ok(StatusCode::NO_CONTENT)
}

/// The agent with its live state from the engine.
async fn with_live(state: &AppState, agent: &Agent) -> Value {
    let live = state.acd.agent_states(vec![agent.login.clone()]).await;
    agent_json(agent, live.get(&agent.login))
}

/// An agent as the API shows it. Without the engine's view (it is gone or
/// has not loaded the agent) the agent counts as offline with its stored
/// pause.
fn agent_json(agent: &Agent, live: Option<&LiveAgent>) -> Value {
    let skills: Map<String, Value> = agent
        .skills
        .iter()
        .map(|(name, level)| (name.clone(), json!(level)))
        .collect();
    let (state, pause_reason, registered) = match live {
        Some(live) => (
            live.state.as_str(),
            live.pause.clone(),
            live.state != crate::acd::routing::AgentState::Offline,
        ),
        None => {
            let pause =
                (agent.state == "paused").then(|| agent.pause_reason.clone().unwrap_or_default());
            ("offline", pause, false)
        }
    };
    json!({
        "login": agent.login,
        "display_name": agent.display_name,
        "extension": agent.extension,
        "skills": skills,
        "state": state,
        "pause_reason": pause_reason,
        "registered": registered,
        "created_at": rfc3339(agent.created_at),
    })
}

fn invalid(field: &str, reason: &str) -> ApiError {
    ApiError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The store's refusals as the API's: bad values name their field, taken
/// ones are 409.
fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound { .. } => ApiError::NotFound,
        StoreError::Conflict { what, value } => ApiError::Conflict {
            field: what.to_owned(),
            value,
        },
        StoreError::Invalid { what, reason, .. } => invalid(what, reason),
        StoreError::InvalidSkill(err) => skill_error(err),
        other => ApiError::Store(other),
    }
}

fn skill_error(err: SkillError) -> ApiError {
    let field = match &err {
        SkillError::Name { name, .. }
        | SkillError::Level { name, .. }
        | SkillError::Duplicate { name } => format!("skills.{name}"),
        SkillError::Syntax { .. } => "skills".to_owned(),
    };
    ApiError::Invalid {
        field,
        reason: err.to_string(),
    }
}

/// The request body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("body", "must be a JSON object")),
        Err(_) => Err(invalid("body", "must be JSON")),
    }
}

/// Refuses fields the endpoint does not know (a typo would otherwise be
/// ignored silently).
fn only(fields: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match fields.keys().find(|k| !known.contains(&k.as_str())) {
        Some(field) => Err(invalid(field, "unknown field")),
        None => Ok(()),
    }
}

fn required_text(fields: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match fields.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(invalid(field, "must not be empty")),
        None | Some(Value::Null) => Err(invalid(field, "is required")),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

/// Absent (`None`), `null` (`Some(None)`) or a string of at most
/// [`MAX_TEXT`] characters.
fn optional_text(
    fields: &Map<String, Value>,
    field: &str,
) -> Result<Option<Option<String>>, ApiError> {
    match fields.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() <= MAX_TEXT => Ok(Some(Some(s.clone()))),
        Some(Value::String(_)) => Err(invalid(field, "is too long")),
        Some(_) => Err(invalid(field, "must be a string or null")),
    }
}

/// `{ "support": 3, "sales": 1 }` as sorted (skill, level) pairs.
fn skills_of(value: &Value) -> Result<Vec<(String, u8)>, ApiError> {
    let Value::Object(map) = value else {
        return Err(invalid(
            "skills",
            "must be an object of skill names to levels 1-5",
        ));
    };
    let mut skills = Vec::with_capacity(map.len());
    for (name, level) in map {
        let level = level
            .as_u64()
            .and_then(|l| u8::try_from(l).ok())
            .filter(|l| (1..=5).contains(l))
            .ok_or_else(|| invalid(&format!("skills.{name}"), "level must be an integer 1-5"))?;
        skills.push((name.clone(), level));
    }
    skills.sort();
    check_skills(&skills).map_err(skill_error)?;
    Ok(skills)
}

/// The `state` and `reason` fields of a PATCH.
fn state_change(fields: &Map<String, Value>) -> Result<Option<StateChange>, ApiError> {
    let reason = match fields.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.trim().is_empty() => None,
        Some(Value::String(r)) if r.chars().count() <= MAX_TEXT => Some(r.trim().to_owned()),
        Some(Value::String(_)) => return Err(invalid("reason", "is too long")),
        Some(_) => return Err(invalid("reason", "must be a string")),
    };
    let change = match fields.get("state") {
        None => None,
        Some(Value::String(s)) if s == "available" => Some(StateChange::Available),
        Some(Value::String(s)) if s == "paused" => Some(StateChange::Paused(
            reason.clone().unwrap_or_else(|| "paused".to_owned()),
        )),
        Some(Value::String(s)) => {
            return Err(ApiError::Unprocessable {
                field: "state".to_owned(),
                reason: format!("{s:?} cannot be set; use \"available\" or \"paused\""),
            });
        }
        Some(_) => return Err(invalid("state", "must be a string")),
    };
    if reason.is_some() && !matches!(change, Some(StateChange::Paused(_))) {
        return Err(invalid("reason", "goes with \"state\": \"paused\" only"));
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::Invalid { field, .. } | ApiError::Unprocessable { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn skills_are_levels_one_to_five() {
        assert_eq!(
            skills_of(&json!({ "support": 3, "billing": 1 })).unwrap(),
            vec![("billing".to_owned(), 1), ("support".to_owned(), 3)]
        );
        for bad in [
            json!({ "support": 6 }),
            json!({ "support": 0 }),
            json!({ "support": "3" }),
        ] {
            assert_eq!(field_of(skills_of(&bad).unwrap_err()), "skills.support");
        }
        assert_eq!(
            field_of(skills_of(&json!({ "Bad Name": 2 })).unwrap_err()),
            "skills.Bad Name"
        );
        assert_eq!(field_of(skills_of(&json!([1])).unwrap_err()), "skills");
    }

    #[test]
    fn only_available_and_paused_are_settable() {
        assert!(matches!(
            state_change(&fields(json!({ "state": "paused", "reason": "lunch" }))),
            Ok(Some(StateChange::Paused(r))) if r == "lunch"
        ));
        assert!(matches!(
            state_change(&fields(json!({ "state": "paused" }))),
            Ok(Some(StateChange::Paused(r))) if r == "paused"
        ));
        assert!(matches!(
            state_change(&fields(json!({ "state": "available" }))),
            Ok(Some(StateChange::Available))
        ));
        let err = state_change(&fields(json!({ "state": "on_call" }))).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field_of(err), "state");
        let err =
            state_change(&fields(json!({ "state": "available", "reason": "x" }))).unwrap_err();
        assert_eq!(field_of(err), "reason");
        assert!(matches!(state_change(&fields(json!({}))), Ok(None)));
    }
}
