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
