//! The store on both backends: every test runs on a fresh SQLite file, and
//! on a fresh PostgreSQL database when `TEST_DATABASE_URL` is set.

use switchboard::sip::registrar::digest::{DigestAlgorithm, ha1};
use switchboard::store::testing::TestDb;
use switchboard::store::{Backend, NewAgent, Store, StoreError};

/// Defines `mod $name { sqlite, postgres }` running `$body(store)` on each.
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                run(Backend::Postgres).await;
            }

            async fn run(backend: Backend) {
                let Some(db) = TestDb::of(backend).await else {
                    return;
                };
                $body(&db.store).await;
                db.cleanup().await.expect("drop the test database");
            }
        }
    };
}

fn alice() -> NewAgent {
    NewAgent {
        login: "alice".to_owned(),
        password: "s3cret".to_owned(),
        display_name: Some("Alice A.".to_owned()),
        extension: Some("1001".to_owned()),
        realm: "pbx.example.com".to_owned(),
        skills: vec![("support".to_owned(), 5), ("sales".to_owned(), 2)],
    }
}

fn bob() -> NewAgent {
    NewAgent {
        login: "bob".to_owned(),
        password: "hunter2".to_owned(),
        display_name: None,
        extension: None,
        realm: "pbx.example.com".to_owned(),
        skills: vec![],
    }
}

async fn add_get_list(store: &Store) {
    let added = store.agents().add(alice()).await.unwrap();
    assert_eq!(added.login, "alice");
    assert_eq!(added.state, "offline");
    assert_eq!(added.id.0.len(), 36);
    assert_eq!(
        added.skills,
        vec![("sales".to_owned(), 2), ("support".to_owned(), 5)]
    );

    let got = store.agents().get("alice").await.unwrap().unwrap();
    assert_eq!(got, added);
    assert!(store.agents().get("nobody").await.unwrap().is_none());

    let bob = store.agents().add(bob()).await.unwrap();
    assert_eq!(bob.display_name, "bob");
    assert_eq!(bob.extension, None);
    let list = store.agents().list().await.unwrap();
    let logins: Vec<&str> = list.iter().map(|a| a.login.as_str()).collect();
    assert_eq!(logins, ["alice", "bob"]);
    assert_eq!(list[0].skills.len(), 2);
    assert!(list[1].skills.is_empty());
}
on_both!(add_get_list_agents, add_get_list);

async fn credentials_are_ha1(store: &Store) {
    store.agents().add(alice()).await.unwrap();
    let c = store.agents().credentials("alice").await.unwrap().unwrap();
    assert_eq!(c.realm, "pbx.example.com");
    assert_eq!(
        c.ha1(DigestAlgorithm::Md5),
        ha1(DigestAlgorithm::Md5, "alice", "pbx.example.com", "s3cret")
    );
    assert_eq!(
        c.ha1(DigestAlgorithm::Sha256),
        ha1(
            DigestAlgorithm::Sha256,
            "alice",
            "pbx.example.com",
            "s3cret"
        )
    );
    assert!(
        store
            .agents()
            .credentials("nobody")
            .await
            .unwrap()
            .is_none()
    );
}
on_both!(credentials_hold_ha1_not_the_password, credentials_are_ha1);

async fn duplicates_conflict(store: &Store) {
    store.agents().add(alice()).await.unwrap();
    let err = store.agents().add(alice()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "login", .. }),
        "{err}"
    );
    let mut other = bob();
    other.extension = Some("1001".to_owned());
    let err = store.agents().add(other).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "extension",
                ..
            }
        ),
        "{err}"
    );
    // Nothing half-written.
    assert_eq!(store.agents().list().await.unwrap().len(), 1);
}
on_both!(duplicate_login_or_extension_conflicts, duplicates_conflict);

async fn skills_replace_and_validate(store: &Store) {
    store.agents().add(alice()).await.unwrap();
    store
        .agents()
        .set_skills("alice", &[("billing".to_owned(), 3)])
        .await
        .unwrap();
    let a = store.agents().get("alice").await.unwrap().unwrap();
    assert_eq!(a.skills, vec![("billing".to_owned(), 3)]);

    let err = store
        .agents()
        .set_skills("alice", &[("billing".to_owned(), 9)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidSkill(_)), "{err}");
    let err = store
        .agents()
        .set_skills("nobody", &[("billing".to_owned(), 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    store.agents().set_skills("alice", &[]).await.unwrap();
    let a = store.agents().get("alice").await.unwrap().unwrap();
    assert!(a.skills.is_empty());
}
on_both!(
    set_skills_replaces_and_validates,
    skills_replace_and_validate
);

async fn level_check_in_schema(store: &Store) {
    let a = store.agents().add(bob()).await.unwrap();
    let res = sqlx::query("INSERT INTO agent_skills (agent_id, skill, level) VALUES ($1, $2, $3)")
        .bind(&a.id.0)
        .bind("x")
        .bind(7_i32)
        .execute(store.pool())
        .await;
    assert!(res.is_err(), "the schema refuses level 7");
}
on_both!(schema_checks_skill_levels, level_check_in_schema);

async fn remove_cascades(store: &Store) {
    let a = store.agents().add(alice()).await.unwrap();
    assert!(store.agents().remove("alice").await.unwrap());
    assert!(!store.agents().remove("alice").await.unwrap());
    assert!(store.agents().get("alice").await.unwrap().is_none());
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM agent_skills WHERE agent_id = $1")
        .bind(&a.id.0)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The login and extension are free again.
    store.agents().add(alice()).await.unwrap();
}
on_both!(remove_deletes_skills_too, remove_cascades);

async fn migrate_twice_and_meta(store: &Store) {
    store.migrate().await.unwrap();
    assert_eq!(store.meta_get("k").await.unwrap(), None);
    assert_eq!(store.meta_insert_once("k", "first").await.unwrap(), "first");
    assert_eq!(
        store.meta_insert_once("k", "second").await.unwrap(),
        "first"
    );
    store.meta_set("k", "third").await.unwrap();
    assert_eq!(store.meta_get("k").await.unwrap().as_deref(), Some("third"));
}
on_both!(
    migrations_are_idempotent_and_meta_works,
    migrate_twice_and_meta
);

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let db = TestDb::sqlite().await;
    let path = db.dir().unwrap().join("test.db");
    assert!(path.is_file());
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = Store::connect("mysql://x@y/z").await.unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedUrl { ref scheme } if scheme == "mysql"),
        "{err}"
    );
}

async fn profile_updates(store: &Store) {
    use switchboard::store::AgentUpdate;
    store.agents().add(alice()).await.unwrap();
    store.agents().add(bob()).await.unwrap();
    let a = store
        .agents()
        .update(
            "alice",
            AgentUpdate {
                display_name: Some("Alice B.".to_owned()),
                extension: Some(Some("1002".to_owned())),
                password: Some("n3w".to_owned()),
            },
        )
        .await
        .unwrap();
    assert_eq!(a.display_name, "Alice B.");
    assert_eq!(a.extension.as_deref(), Some("1002"));
    // The HA1s are re-hashed with the agent's own realm.
    let c = store.agents().credentials("alice").await.unwrap().unwrap();
    assert_eq!(
        c.ha1(DigestAlgorithm::Md5),
        ha1(DigestAlgorithm::Md5, "alice", "pbx.example.com", "n3w")
    );
    assert_eq!(
        c.ha1(DigestAlgorithm::Sha256),
        ha1(DigestAlgorithm::Sha256, "alice", "pbx.example.com", "n3w")
    );
    // Only what is given changes; a null extension clears it.
    let a = store
        .agents()
        .update(
            "alice",
            AgentUpdate {
                extension: Some(None),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.extension, None);
    assert_eq!(a.display_name, "Alice B.");
    // Another agent's extension is a conflict; bad ones are refused.
    store
        .agents()
        .update(
            "bob",
            AgentUpdate {
                extension: Some(Some("2000".to_owned())),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap();
    let err = store
        .agents()
        .update(
            "alice",
            AgentUpdate {
                extension: Some(Some("2000".to_owned())),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "extension",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .agents()
        .update(
            "alice",
            AgentUpdate {
                extension: Some(Some("12ab".to_owned())),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                what: "extension",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .agents()
        .update("nobody", AgentUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // A blank name falls back to the login.
    let a = store
        .agents()
        .update(
            "alice",
            AgentUpdate {
                display_name: Some(" ".to_owned()),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.display_name, "alice");
}
on_both!(update_changes_profile_and_rehashes, profile_updates);

async fn pause_state_is_kept(store: &Store) {
    store.agents().add(alice()).await.unwrap();
    store
        .agents()
        .set_state("alice", "paused", Some("lunch"))
        .await
        .unwrap();
    let a = store.agents().get("alice").await.unwrap().unwrap();
    assert_eq!(
        (a.state.as_str(), a.pause_reason.as_deref()),
        ("paused", Some("lunch"))
    );
    // Leaving the pause drops the reason.
    store
        .agents()
        .set_state("alice", "available", Some("ignored"))
        .await
        .unwrap();
    let a = store.agents().get("alice").await.unwrap().unwrap();
    assert_eq!((a.state.as_str(), a.pause_reason), ("available", None));
    // Transient call states are not stored.
    let err = store
        .agents()
        .set_state("alice", "on_call", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { what: "state", .. }),
        "{err}"
    );
    let err = store
        .agents()
        .set_state("nobody", "paused", None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}
on_both!(set_state_keeps_pause_and_reason, pause_state_is_kept);

async fn segments_round_trip(store: &Store) {
    use switchboard::store::{NewQueueSegment, SegmentOffer};
    let first = NewQueueSegment {
        call_id: "c1@test".to_owned(),
        queue: "support".to_owned(),
        enqueued_at: 1_700_000_000_000,
        left_at: 1_700_000_012_500,
        outcome: "answered",
        agent: Some("alice".to_owned()),
        offers: vec![
            SegmentOffer {
                login: "bob".to_owned(),
                at: 1_700_000_001_000,
            },
            SegmentOffer {
                login: "alice".to_owned(),
                at: 1_700_000_011_000,
            },
        ],
        wait_ms: 12_500,
    };
    let second = NewQueueSegment {
        call_id: "c1@test".to_owned(),
        queue: "sales".to_owned(),
        enqueued_at: 1_700_000_100_000,
        left_at: 1_700_000_100_000,
        outcome: "no_agents",
        agent: None,
        offers: vec![],
        wait_ms: 0,
    };
    // Inserted out of order: read back by entry time.
    store.segments().insert(&second).await.unwrap();
    let id = store.segments().insert(&first).await.unwrap();
    let got = store.segments().for_call("c1@test").await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].queue, "support");
    assert_eq!(got[0].outcome, "answered");
    assert_eq!(got[0].agent.as_deref(), Some("alice"));
    assert_eq!(got[0].offers, first.offers);
    assert_eq!(
        (got[0].wait_ms, got[0].left_at),
        (12_500, 1_700_000_012_500)
    );
    assert_eq!(got[1].outcome, "no_agents");
    assert!(got[1].offers.is_empty());
    assert!(store.segments().for_call("other").await.unwrap().is_empty());
    // An outcome outside the list is refused, by the store and the schema.
    let mut bad = second.clone();
    bad.outcome = "lost";
    assert!(store.segments().insert(&bad).await.is_err());
    let res = sqlx::query(
        "INSERT INTO queue_segments (id, call_id, queue, enqueued_at, left_at, outcome, wait_ms) \
         VALUES ('x', 'c', 'q', 0, 0, 'lost', 0)",
    )
    .execute(store.pool())
    .await;
    assert!(res.is_err(), "the schema refuses outcome 'lost'");
    // The CDR listing finds them through the call's start time.
    sqlx::query(
        "INSERT INTO calls (id, call_id, from_uri, to_uri, started_at) \
         VALUES ('row1', 'c1@test', 'sip:a@x', 'sip:b@x', 1000)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let listed = store.segments().for_calls_started(0, 2000).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        store
            .segments()
            .for_calls_started(2000, 3000)
            .await
            .unwrap()
            .is_empty()
    );
}
on_both!(queue_segments_are_stored_and_read_back, segments_round_trip);
