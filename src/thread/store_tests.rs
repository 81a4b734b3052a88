//! The thread store on both backends: every test runs on a fresh SQLite
//! file, and on a fresh PostgreSQL database when `TEST_DATABASE_URL` is set.

use serde_json::json;

use super::calls::{CallEvent, Disposition, NewCall};
use super::contacts::{self, Role};
use super::identity::{IdentityKind, parse_phone};
use super::ingest::{self, Reply, email, messages};
use super::linking::{self, CallStage, LinkReason, ThreadChoice};
use super::threads::{self, Status};
use super::{Channel, EventKind, ThreadError, events};
use crate::store::testing::TestDb;
use crate::store::{Backend, Store};

const T0: i64 = 1_772_359_200_000; // 2026-03-01T10:00:00Z
const HOUR: i64 = 60 * 60 * 1000;
const DAY: i64 = 24 * HOUR;
const ANN: &str = "+14155550123";

/// Defines `mod $name { sqlite, postgres }` running `$body(store)` on each.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                run(Backend::Postgres).await;
            }

            async fn run(backend: Backend) {
                let Some(db) = TestDb::of(backend).await else {
                    return;
                };
                super::$name(&db.store).await;
                db.cleanup().await.expect("drop the test database");
            }
        }
    };
}

async fn count(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(store.pool())
        .await
        .unwrap();
    n
}

fn call(n: u32, caller: Option<&str>) -> NewCall {
    NewCall {
        call_id: format!("call-{n}@test"),
        from_uri: format!("sip:{}@carrier.example", caller.unwrap_or("anonymous")),
        to_uri: "sip:+14155550100@switch.example".to_owned(),
        caller: caller.and_then(|c| parse_phone(c, None)),
        flow: Some("main".to_owned()),
    }
}

/// A contact owning ANN with one thread started at `at`.
async fn ann_with_thread(store: &Store, at: i64) -> (contacts::Contact, threads::Thread) {
    let ann = contacts::ensure_owner(store, IdentityKind::Phone, ANN, Some("Ann"), at)
        .await
        .unwrap();
    let thread = threads::create(store, &ann.id, Channel::Sms, None, at)
        .await
        .unwrap();
    (ann, thread)
}

/// Racing first contacts from one number end with one contact.
async fn concurrent_first_contact(store: &Store) {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            contacts::ensure_owner(&store, IdentityKind::Phone, ANN, None, T0).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(count(store, "contacts").await, 1);
    assert_eq!(count(store, "identities").await, 1);
    assert_eq!(count(store, "identity_links").await, 1);
}
on_both!(concurrent_first_contact);

/// Racing deliveries of one message store one event.
async fn concurrent_messages(store: &Store) {
    let body = br#"{"channel":"sms","from":"+14155550123","to":"+14155550100","body":"hi","external_id":"SM-race"}"#;
    let msg = messages::validate(body).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, msg) = (store.clone(), msg.clone());
        tasks.push(tokio::spawn(async move {
            messages::ingest(&store, &msg, T0).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(store, "thread_events").await, 1);
    assert_eq!(count(store, "contacts").await, 1);
}
on_both!(concurrent_messages);

/// DESIGN §7: the call joins the most recently active open thread within
/// 7 days.
async fn joins_open_thread_within_7_days(store: &Store) {
    let (ann, old) = ann_with_thread(store, T0).await;
    let recent = threads::create(store, &ann.id, Channel::Email, None, T0 + DAY)
        .await
        .unwrap();
    let now = T0 + 7 * DAY;
    let (record, link) = linking::start_call(store, &call(1, Some(ANN)), now)
        .await
        .unwrap();
    assert_eq!(link.reason, LinkReason::Owner);
    assert_eq!(link.contact.as_ref().map(|c| &c.id), Some(&ann.id));
    assert_eq!(link.thread.as_ref().map(|t| &t.id), Some(&recent.id));
    let (thread, choice) = linking::attach_call(store, &record.id, CallStage::Queue, now)
        .await
        .unwrap();
    assert_eq!(choice, ThreadChoice::JoinedOpen);
    assert_eq!(thread.unwrap().id, recent.id);
    assert_ne!(old.id, recent.id);
    // Attaching again keeps the bound thread.
    let (again, choice) = linking::attach_call(store, &record.id, CallStage::Agent, now)
        .await
        .unwrap();
    assert_eq!(
        (again.unwrap().id, choice),
        (recent.id, ThreadChoice::AlreadyBound)
    );
}
on_both!(joins_open_thread_within_7_days);

/// An open thread idle for more than 7 days is not joined: a new thread.
async fn stale_open_thread_gives_a_new_thread(store: &Store) {
    let (_, stale) = ann_with_thread(store, T0).await;
    let now = T0 + 7 * DAY + 1;
    let (record, link) = linking::start_call(store, &call(1, Some(ANN)), now)
        .await
        .unwrap();
    assert!(link.thread.is_none());
    let (thread, choice) = linking::attach_call(store, &record.id, CallStage::Queue, now)
        .await
        .unwrap();
    let thread = thread.unwrap();
    assert_eq!(choice, ThreadChoice::Created);
    assert_ne!(thread.id, stale.id);
    assert_eq!(thread.channel, Channel::Voice);
}
on_both!(stale_open_thread_gives_a_new_thread);

/// DESIGN §7: a thread resolved within 72 h is reopened; later, not.
async fn reopens_within_72_hours(store: &Store) {
    let (_, thread) = ann_with_thread(store, T0).await;
    threads::set_status(store, &thread.id, Status::Resolved, T0 + HOUR)
        .await
        .unwrap();
    let now = T0 + HOUR + 72 * HOUR - 1;
    let (record, _) = linking::start_call(store, &call(1, Some(ANN)), now)
        .await
        .unwrap();
    let (got, choice) = linking::attach_call(store, &record.id, CallStage::Voicemail, now)
        .await
        .unwrap();
    let got = got.unwrap();
    assert_eq!(
        (got.id.clone(), choice),
        (thread.id.clone(), ThreadChoice::Reopened)
    );
    assert_eq!(got.status, Status::Open);
    assert_eq!(got.resolved_at, None);

    threads::set_status(store, &thread.id, Status::Resolved, now)
        .await
        .unwrap();
    let later = now + 72 * HOUR + 1;
    let (record, _) = linking::start_call(store, &call(2, Some(ANN)), later)
        .await
        .unwrap();
    let (got, choice) = linking::attach_call(store, &record.id, CallStage::Agent, later)
        .await
        .unwrap();
    assert_eq!(choice, ThreadChoice::Created);
    assert_ne!(got.unwrap().id, thread.id);
}
on_both!(reopens_within_72_hours);

/// DESIGN §7: a call abandoned in the IVR never creates (or reopens) a
/// thread, but is logged into an open one.
async fn abandoned_in_ivr_never_creates(store: &Store) {
    let (record, link) = linking::start_call(store, &call(1, Some(ANN)), T0)
        .await
        .unwrap();
    assert_eq!(link.reason, LinkReason::Unknown);
    let ivr = CallEvent::Ivr {
        node: "menu".to_owned(),
        digits: Some("1".to_owned()),
    };
    linking::record(store, &record.id, ivr, T0 + 1000)
        .await
        .unwrap();
    let ended = CallEvent::Ended {
        disposition: Disposition::AbandonedIvr,
    };
    let cdr = linking::record(store, &record.id, ended, T0 + 5000)
        .await
        .unwrap();
    assert_eq!(cdr.thread_id, None);
    assert_eq!(cdr.disposition, Some(Disposition::AbandonedIvr));
    assert_eq!(cdr.ivr_path[0]["digits"], "1");
    assert_eq!(count(store, "threads").await, 0);
    assert_eq!(count(store, "contacts").await, 0);

    // With an open thread, the abandoned call is logged there.
    let (_, thread) = ann_with_thread(store, T0).await;
    let (record, _) = linking::start_call(store, &call(2, Some(ANN)), T0 + HOUR)
        .await
        .unwrap();
    let ended = CallEvent::Ended {
        disposition: Disposition::AbandonedIvr,
    };
    let cdr = linking::record(store, &record.id, ended, T0 + HOUR)
        .await
        .unwrap();
    assert_eq!(cdr.thread_id.as_ref(), Some(&thread.id));
    let kinds: Vec<_> = events::list(store, &thread.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.metadata["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["started", "ended"]);

    // A resolved thread is not reopened by an IVR-abandoned call.
    threads::set_status(store, &thread.id, Status::Resolved, T0 + 2 * HOUR)
        .await
        .unwrap();
    let (record, _) = linking::start_call(store, &call(3, Some(ANN)), T0 + 3 * HOUR)
        .await
        .unwrap();
    let (got, choice) = linking::attach_call(store, &record.id, CallStage::Ivr, T0 + 3 * HOUR)
        .await
        .unwrap();
    assert_eq!((got, choice), (None, ThreadChoice::NoOpenThread));
}
on_both!(abandoned_in_ivr_never_creates);

/// DESIGN §7: a shared number is ambiguous; anonymous links to nothing.
async fn shared_number_is_ambiguous(store: &Store) {
    let (ann, _) = ann_with_thread(store, T0).await;
    let bob = contacts::create(store, Some("Bob"), T0).await.unwrap();
    assert!(
        contacts::link(store, &bob.id, IdentityKind::Phone, ANN, Role::Shared, T0)
            .await
            .unwrap()
    );
    // A second owner is refused.
    let carol = contacts::create(store, Some("Carol"), T0).await.unwrap();
    assert!(
        !contacts::link(store, &carol.id, IdentityKind::Phone, ANN, Role::Owner, T0)
            .await
            .unwrap()
    );

    let (record, link) = linking::start_call(store, &call(1, Some(ANN)), T0)
        .await
        .unwrap();
    assert_eq!(link.reason, LinkReason::Ambiguous);
    assert_eq!(link.contact, None);
    let mut ids: Vec<_> = link.ambiguous.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut want = vec![ann.id.clone(), bob.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let (thread, choice) = linking::attach_call(store, &record.id, CallStage::Queue, T0)
        .await
        .unwrap();
    assert_eq!((thread, choice), (None, ThreadChoice::NoContact));

    let (_, link) = linking::start_call(store, &call(2, None), T0)
        .await
        .unwrap();
    assert_eq!(link.reason, LinkReason::NoCaller);
}
on_both!(shared_number_is_ambiguous);

/// A whole call written into its thread: IVR path, queue, agent, end,
/// recording, survey; the CDR holds wait and duration.
async fn call_events_fill_the_thread(store: &Store) {
    let (ann, thread) = ann_with_thread(store, T0).await;
    contacts::set_vip(store, &ann.id, true, T0).await.unwrap();
    threads::set_priority(store, &thread.id, 2, T0)
        .await
        .unwrap();
    let (record, link) = linking::start_call(store, &call(1, Some(ANN)), T0 + 1000)
        .await
        .unwrap();
    assert!(link.contact.as_ref().unwrap().vip);
    assert_eq!(link.thread.as_ref().unwrap().priority, 2);
    let id = record.id.clone();
    let steps = [
        (
            2_000,
            CallEvent::Ivr {
                node: "menu".into(),
                digits: Some("2".into()),
            },
        ),
        (
            3_000,
            CallEvent::Queued {
                queue: "support".into(),
                priority: 3,
                reason: Some("vip".into()),
            },
        ),
        (
            33_000,
            CallEvent::Answered {
                agent: "alice".into(),
            },
        ),
        (
            93_000,
            CallEvent::Recording {
                path: "r1.wav".into(),
            },
        ),
        (
            93_000,
            CallEvent::Ended {
                disposition: Disposition::Answered,
            },
        ),
        (99_000, CallEvent::Survey { score: 5 }),
    ];
    for (at, step) in steps {
        linking::record(store, &id, step, T0 + at).await.unwrap();
    }
    // A repeated step adds no second event.
    let again = CallEvent::Ended {
        disposition: Disposition::Answered,
    };
    let cdr = linking::record(store, &id, again, T0 + 93_000)
        .await
        .unwrap();
    assert_eq!(cdr.wait_ms, Some(30_000));
    assert_eq!(cdr.duration_ms(), Some(60_000));
    assert_eq!(cdr.agent.as_deref(), Some("alice"));
    assert_eq!(cdr.routing_reason.as_deref(), Some("vip"));
    assert_eq!(cdr.survey_score, Some(5));
    assert_eq!(cdr.thread_id.as_ref(), Some(&thread.id));
    let events = events::list(store, &thread.id).await.unwrap();
    let steps: Vec<_> = events
        .iter()
        .map(|e| e.metadata["event"].as_str().unwrap().to_owned())
        .collect();
    // The thread was open, so even the IVR step is logged into it.
    let want = [
        "started",
        "ivr:1",
        "queued",
        "answered",
        "recording",
        "ended",
        "survey",
    ];
    assert_eq!(steps, want);
    assert_eq!(events[0].metadata["ivr_path"][0]["node"], "menu");
    assert_eq!(events[1].body.as_deref(), Some("IVR menu: pressed 2"));
    assert_eq!(events[6].kind, EventKind::Survey);
    assert!(events[5].body.as_deref().unwrap().contains("60 s"));
    let thread = threads::get(store, thread.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(thread.last_agent.as_deref(), Some("alice"));
    assert_eq!(thread.last_activity_at, T0 + 99_000);
}
on_both!(call_events_fill_the_thread);

/// A repeated key returns the first answer and writes nothing; another
/// request under the same key is a conflict.
async fn idempotent_receipts(store: &Store) {
    let first = Reply {
        status: 201,
        content_type: "application/json".into(),
        body: "{\"n\":1}".into(),
    };
    assert_eq!(ingest::replay(store, "k", "h1").await.unwrap(), None);
    let kept = ingest::keep(store, "k", "h1", first.clone(), T0)
        .await
        .unwrap();
    assert_eq!(kept, first);
    let second = Reply {
        body: "{\"n\":2}".into(),
        ..first.clone()
    };
    assert_eq!(
        ingest::keep(store, "k", "h1", second, T0).await.unwrap(),
        first
    );
    assert_eq!(ingest::replay(store, "k", "h1").await.unwrap(), Some(first));
    assert!(matches!(
        ingest::replay(store, "k", "h2").await,
        Err(ThreadError::IdempotencyConflict { .. })
    ));
    // The same message twice: one event.
    let msg = messages::validate(
        br#"{"channel":"sms","from":"(415) 555-0123","to":"+14155550100","body":"hi","external_id":"SM1"}"#,
    )
    .unwrap();
    let a = messages::ingest(store, &msg, T0).await.unwrap();
    let b = messages::ingest(store, &msg, T0 + 1).await.unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.event.id, b.event.id);
    assert_eq!(count(store, "thread_events").await, 1);
    // The national number was read in the dialled number's country.
    let found = contacts::by_identity(store, IdentityKind::Phone, ANN)
        .await
        .unwrap();
    assert_eq!(found[0].0.id, a.contact.id);
}
on_both!(idempotent_receipts);

/// Messages follow the linking rules; outbound joins the recipient's
/// thread; WhatsApp finds the phone number's contact.
async fn messages_join_the_contact_thread(store: &Store) {
    let inbound = messages::validate(
        br#"{"channel":"sms","from":"+14155550123","to":"+14155550100","body":"hi","external_id":"SM1"}"#,
    )
    .unwrap();
    let a = messages::ingest(store, &inbound, T0).await.unwrap();
    let outbound = messages::validate(
        br#"{"channel":"sms","from":"+14155550100","to":"+14155550123","body":"hello","external_id":"SM2","direction":"outbound"}"#,
    )
    .unwrap();
    let b = messages::ingest(store, &outbound, T0 + 1000).await.unwrap();
    assert_eq!(a.thread.id, b.thread.id);
    let wa = messages::validate(
        br#"{"channel":"whatsapp","from":"whatsapp:+14155550123","body":"wa","external_id":"WA1"}"#,
    )
    .unwrap();
    let c = messages::ingest(store, &wa, T0 + 2000).await.unwrap();
    assert_eq!(c.contact.id, a.contact.id);
    assert_eq!(c.thread.id, a.thread.id);
    let bad =
        messages::validate(br#"{"channel":"sms","from":"Restricted","external_id":"x"}"#).unwrap();
    assert!(matches!(
        messages::ingest(store, &bad, T0).await,
        Err(ThreadError::Invalid { field: "from", .. })
    ));
}
on_both!(messages_join_the_contact_thread);

fn mail(headers: &str, body: &str) -> email::InboundEmail {
    let raw = format!("{headers}Content-Type: text/plain\r\n\r\n{body}\r\n")
        .replace('\n', "\r\n")
        .replace("\r\r", "\r");
    email::parse(raw.as_bytes()).unwrap()
}

/// Email threading: reply token, In-Reply-To, folded References, missing
/// Message-ID, auto-replies and bounces.
async fn email_threading(store: &Store) {
    let first = mail(
        "From: Ann Lee <ann@example.com>\nTo: support@help.example\nSubject: Order 42\nMessage-ID: <m1@example.com>\n",
        "Where is my order?",
    );
    let a = email::ingest(store, &first, T0).await.unwrap();
    assert_eq!(a.threaded_by, Some(email::ThreadedBy::New));
    let thread = a.thread.clone().unwrap();
    assert_eq!(thread.subject.as_deref(), Some("Order 42"));

    let by_reply = mail(
        "From: ann@example.com\nTo: support@help.example\nMessage-ID: <m2@example.com>\nIn-Reply-To: <m1@example.com>\n",
        "Any news?",
    );
    let b = email::ingest(store, &by_reply, T0 + 1).await.unwrap();
    assert_eq!(b.threaded_by, Some(email::ThreadedBy::InReplyTo));
    assert_eq!(b.thread.unwrap().id, thread.id);

    // Folded References, the known id in the middle; a new sender.
    let by_refs = mail(
        "From: Bo <bo@example.org>\nTo: support@help.example\nMessage-ID: <m3@example.org>\nReferences: <unknown@x.example>\n\t<m2@example.com>\n <other@y.example>\n",
        "Me too",
    );
    let c = email::ingest(store, &by_refs, T0 + 2).await.unwrap();
    assert_eq!(c.threaded_by, Some(email::ThreadedBy::References));
    assert_eq!(c.thread.unwrap().id, thread.id);

    // Resolved, then an auto-reply: stored, not reopened.
    threads::set_status(store, &thread.id, Status::Resolved, T0 + 3)
        .await
        .unwrap();
    let token_to = format!("support+t-{}@help.example", thread.reply_token);
    let auto = mail(
        &format!(
            "From: ann@example.com\nTo: {token_to}\nMessage-ID: <ooo@example.com>\nAuto-Submitted: auto-replied\n"
        ),
        "I am away",
    );
    let d = email::ingest(store, &auto, T0 + 4).await.unwrap();
    assert!(d.auto_reply);
    assert_eq!(d.threaded_by, Some(email::ThreadedBy::ReplyToken));
    assert_eq!(d.thread.unwrap().status, Status::Resolved);

    // A bounce from MAILER-DAEMON with nowhere to go: dropped, no contact.
    let contacts_before = count(store, "contacts").await;
    let bounce = mail(
        "From: MAILER-DAEMON@mx.example\nTo: noreply@help.example\nMessage-ID: <b1@mx.example>\n",
        "Undeliverable",
    );
    let e = email::ingest(store, &bounce, T0 + 5).await.unwrap();
    assert_eq!(e.threaded_by, Some(email::ThreadedBy::Dropped));
    assert!(e.event.is_none());
    assert_eq!(count(store, "contacts").await, contacts_before);

    // A human reply by token reopens the thread.
    let human = mail(
        &format!("From: ann@example.com\nTo: {token_to}\nMessage-ID: <m4@example.com>\n"),
        "Still broken",
    );
    let f = email::ingest(store, &human, T0 + 6).await.unwrap();
    assert_eq!(f.thread.unwrap().status, Status::Open);

    // No Message-ID: the same raw message twice is one event.
    let events_before = count(store, "thread_events").await;
    let raw = "From: zed@example.net\r\nSubject: hi\r\n\r\nno id\r\n";
    let g = email::ingest(store, &email::parse(raw.as_bytes()).unwrap(), T0 + 7)
        .await
        .unwrap();
    let h = email::ingest(store, &email::parse(raw.as_bytes()).unwrap(), T0 + 8)
        .await
        .unwrap();
    assert!(g.created && !h.created);
    assert_eq!(count(store, "thread_events").await, events_before + 1);
    let stored = g.event.unwrap();
    assert_eq!(stored.metadata["derived_message_id"], json!(true));
}
on_both!(email_threading);

/// Merging moves identities, threads and calls and leaves a pointer.
async fn merge_contacts(store: &Store) {
    let (ann, thread) = ann_with_thread(store, T0).await;
    let other = contacts::ensure_owner(store, IdentityKind::Email, "ann@example.com", None, T0)
        .await
        .unwrap();
    let (record, _) = linking::start_call(store, &call(1, Some(ANN)), T0)
        .await
        .unwrap();
    let survivor = contacts::merge(store, ann.id.as_str(), other.id.as_str(), T0 + 1)
        .await
        .unwrap();
    assert_eq!(survivor.id, other.id);
    let merged = contacts::get(store, ann.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(merged.merged_into.as_ref(), Some(&other.id));
    assert_eq!(
        contacts::resolve(store, ann.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .id,
        other.id
    );
    let ids = contacts::identities(store, &other.id).await.unwrap();
    assert_eq!(ids.len(), 2);
    let moved = threads::get(store, thread.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.contact_id, other.id);
    let cdr = super::calls::get(store, &record.id).await.unwrap().unwrap();
    assert_eq!(cdr.contact_id.as_ref(), Some(&other.id));
    let link = linking::link_caller(store, parse_phone(ANN, None).as_ref(), T0 + 2)
        .await
        .unwrap();
    assert_eq!(link.contact.unwrap().id, other.id);
    assert!(
        contacts::merge(store, ann.id.as_str(), other.id.as_str(), T0)
            .await
            .is_err()
    );
}
on_both!(merge_contacts);

/// The screen pop's store reads: the contact, the thread and its latest
/// five events in time order, bodies cut short.
async fn screen_pop_facts(store: &Store) {
    use super::screen;
    let (ann, thread) = ann_with_thread(store, T0).await;
    for i in 0..7 {
        let body = if i == 6 {
            "x".repeat(500)
        } else {
            format!("message {i}")
        };
        events::append(
            store,
            &thread.id,
            super::NewEvent {
                channel: Channel::Sms,
                kind: EventKind::Message,
                direction: super::Direction::Inbound,
                body: Some(body),
                metadata: json!({}),
                occurred_at: T0 + i64::from(i) * 1000,
                external_id: Some(format!("SM-pop-{i}")),
            },
            T0,
        )
        .await
        .unwrap();
    }
    let facts = screen::facts(store, None, Some(&thread.id)).await.unwrap();
    assert_eq!(facts.contact.as_ref().map(|c| &c.id), Some(&ann.id));
    assert_eq!(facts.thread.as_ref().map(|t| &t.id), Some(&thread.id));
    let bodies: Vec<_> = facts
        .last_events
        .iter()
        .map(|e| e.body.clone().unwrap_or_default())
        .collect();
    assert_eq!(bodies.len(), 5);
    assert_eq!(bodies[0], "message 2");
    assert_eq!(bodies[3], "message 5");
    let json = facts.last_events_json();
    assert_eq!(json[4]["body"].as_str().unwrap().len(), screen::SUMMARY_LEN);
    assert_eq!(json[0]["channel"], "sms");
    assert_eq!(facts.contact_json()["name"], "Ann");
    assert_eq!(facts.thread_json()["status"], "open");
    // Nothing known: nothing read.
    let none = screen::facts(store, None, None).await.unwrap();
    assert!(none.contact.is_none() && none.thread.is_none() && none.last_events.is_empty());
}
on_both!(screen_pop_facts);
