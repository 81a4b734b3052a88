//! The unified thread over HTTP against the real binary (DESIGN §7, §8):
//! a message creates the contact and its thread, a repeat is replayed, a
//! conflicting repeat is 409, email threads by In-Reply-To, the read API
//! shows it all, and CDRs come back as JSON and RFC 4180 CSV.

mod common;

use common::{Switch, db_url};
use serde_json::{Value, json};
use switchboard::store::Store;
use switchboard::thread::calls::{CallEvent, Disposition, NewCall};
use switchboard::thread::identity::parse_phone;
use switchboard::thread::linking;

const TOKEN: &str = "test-token";

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(switch: &Switch) -> Api {
        Api {
            base: format!("http://{}/api/v1", switch.http),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, String) {
        let resp = req.bearer_auth(TOKEN).send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        (status, json_of(&body))
    }

    async fn post_json(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        self.send(req).await
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_contacts_threads_and_cdrs() {
    let switch = Switch::start("thread-api");
    let api = Api::new(&switch);

    // The ingest API wants the token too.
    let resp = api
        .http
        .post(format!("{}/messages", api.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Validation errors name the field.
    let (status, body) = api
        .post_json(
            "/messages",
            &json!({ "channel": "sms", "external_id": "x" }),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(json_of(&body)["error"]["field"], "from");

    // An SMS from a new number: contact, thread, event.
    let sms = json!({
        "channel": "sms", "from": "+14155550123", "to": "+14155550100",
        "body": "My router is broken", "external_id": "SM100",
        "occurred_at": "2026-03-01T10:00:00Z", "direction": "inbound",
    });
    let (status, first) = api.post_json("/messages", &sms, None).await;
    assert_eq!(status, 201, "{first}");
    let created = json_of(&first);
    let contact_id = created["contact"]["id"].as_str().unwrap().to_owned();
    let thread_id = created["thread"]["id"].as_str().unwrap().to_owned();

    // A repeat gets the first answer byte for byte; a different body under
    // the same key is a conflict.
    let (status, again) = api.post_json("/messages", &sms, None).await;
    assert_eq!((status, &again), (201, &first));
    let mut changed = sms.clone();
    changed["body"] = json!("something else");
    let (status, body) = api.post_json("/messages", &changed, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(json_of(&body)["error"]["code"], "idempotency_conflict");

    // An outbound reply under an Idempotency-Key joins the same thread.
    let reply = json!({
        "channel": "sms", "from": "+14155550100", "to": "+14155550123",
        "body": "Try turning it off and on", "direction": "outbound",
    });
    let (status, body) = api.post_json("/messages", &reply, Some("reply-1")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(json_of(&body)["thread"]["id"], thread_id.as_str());

    // Email: a new thread, then a reply by In-Reply-To.
    let post_mail = |raw: String| {
        api.http
            .post(format!("{}/emails", api.base))
            .header("content-type", "message/rfc822")
            .body(raw)
    };
    let (status, body) = api
        .send(api.http.post(format!("{}/emails", api.base)).body("x"))
        .await;
    assert_eq!(status, 415, "{body}");
    let mail = "From: Ann <ann@example.com>\r\nTo: support@help.example\r\nSubject: Invoice\r\n\
                Message-ID: <inv-1@example.com>\r\n\r\nWrong amount\r\n";
    let (status, body) = api.send(post_mail(mail.to_owned())).await;
    assert_eq!(status, 201, "{body}");
    let email_thread = json_of(&body)["thread"]["id"].as_str().unwrap().to_owned();
    let answer = "From: ann@example.com\r\nTo: support@help.example\r\n\
                  Message-ID: <inv-2@example.com>\r\nReferences: <x@y>\r\n <inv-1@example.com>\r\n\r\nAnd?\r\n";
    let (status, body) = api.send(post_mail(answer.to_owned())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(json_of(&body)["thread"]["id"], email_thread.as_str());
    assert_eq!(json_of(&body)["threaded_by"], "references");

    // Read it back.
    let (status, found) = api.get("/contacts?phone=%2B14155550123").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["contacts"][0]["id"], contact_id.as_str());
    assert_eq!(
        found["contacts"][0]["identities"][0]["value"],
        "+14155550123"
    );
    let (status, _) = api.get("/contacts?phone=123").await;
    assert_eq!(status, 400);
    let (status, contact) = api.get(&format!("/contacts/{contact_id}")).await;
    assert_eq!((status, &contact["vip"]), (200, &json!(false)));
    let (status, list) = api.get(&format!("/contacts/{contact_id}/threads")).await;
    assert_eq!(status, 200);
    assert_eq!(list["threads"][0]["id"], thread_id.as_str());
    let (status, thread) = api.get(&format!("/threads/{thread_id}")).await;
    assert_eq!(status, 200, "{thread}");
    let events = thread["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["direction"], "inbound");
    assert_eq!(events[0]["occurred_at"], "2026-03-01T10:00:00.000Z");
    assert_eq!(events[1]["direction"], "outbound");
    let (status, _) = api.get("/threads/nope").await;
    assert_eq!(status, 404);

    // Merge the email contact into the phone contact.
    let (_, by_mail) = api.get("/contacts?email=ANN@example.com").await;
    let mail_contact = by_mail["contacts"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = api
        .post_json(
            &format!("/contacts/{mail_contact}/merge"),
            &json!({ "into": contact_id }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, merged) = api.get(&format!("/contacts/{mail_contact}")).await;
    assert_eq!(status, 200);
    assert_eq!(merged["id"], contact_id.as_str());
    assert_eq!(merged["resolved_from"], mail_contact.as_str());
    let (_, list) = api.get(&format!("/contacts/{contact_id}/threads")).await;
    assert_eq!(list["threads"].as_array().unwrap().len(), 2);

    // A call from the same number, written through the linking API the
    // call task uses, joins the most recently active open thread (the
    // merged email thread) and lands in the CDRs.
    let store = Store::connect(&db_url(&switch.dir)).await.unwrap();
    let now = switchboard::store::now_ms();
    let call = NewCall {
        call_id: "cdr-1@test".to_owned(),
        from_uri: "\"Lee, Ann\" <sip:+14155550123@carrier.example>".to_owned(),
        to_uri: "sip:+14155550100@switch.example".to_owned(),
        caller: parse_phone("+14155550123", None),
        flow: Some("main".to_owned()),
    };
    let (record, link) = linking::start_call(&store, &call, now).await.unwrap();
    assert_eq!(link.thread.unwrap().id.as_str(), email_thread);
    let steps = [
        CallEvent::Queued {
            queue: "support".to_owned(),
            priority: 0,
            reason: None,
        },
        CallEvent::Answered {
            agent: "alice".to_owned(),
        },
        CallEvent::Ended {
            disposition: Disposition::Answered,
        },
    ];
    for (i, step) in steps.into_iter().enumerate() {
        linking::record(&store, &record.id, step, now + 1000 * i as i64)
            .await
            .unwrap();
    }
    store.close().await;

    let (status, cdrs) = api.get("/cdrs?since=0").await;
    assert_eq!(status, 200, "{cdrs}");
    assert_eq!(cdrs["cdrs"][0]["agent"], "alice");
    assert_eq!(cdrs["cdrs"][0]["thread_id"], email_thread.as_str());
    let (status, csv) = api
        .send(
            api.http
                .get(format!("{}/cdrs", api.base))
                .header("accept", "text/csv"),
        )
        .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].starts_with("id,call_id,from,to,caller,"), "{csv}");
    assert!(
        lines[1].contains(",\"\"\"Lee, Ann\"\" <sip:+14155550123@carrier.example>\","),
        "{csv}"
    );
    assert!(lines[1].contains(",alice,answered,"), "{csv}");
    let (status, _) = api.get("/cdrs?since=soon").await;
    assert_eq!(status, 400);

    // The thread now shows the call after the emails.
    let (_, thread) = api.get(&format!("/threads/{email_thread}")).await;
    let kinds: Vec<&str> = thread["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["message", "message", "call", "call", "call", "call"]
    );

    // No recording for this call: 404; nothing outside the folder.
    let (status, _) = api.get(&format!("/recordings/{}", record.id)).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_webhook_answers_twiml_once() {
    let switch = Switch::start("thread-twilio");
    let api = Api::new(&switch);
    let form = "From=%2B14155550199&To=%2B14155550100&Body=Hello+there&MessageSid=SM9&NumMedia=0";
    let post = || {
        api.http
            .post(format!("{}/webhooks/twilio/sms", api.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
    };
    let (status, body) = api.send(post()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Response/>"), "{body}");
    let (status, again) = api.send(post()).await;
    assert_eq!((status, again), (200, body));
    let (_, found) = api.get("/contacts?phone=%2B14155550199").await;
    let id = found["contacts"][0]["id"].as_str().unwrap().to_owned();
    let (_, threads) = api.get(&format!("/contacts/{id}/threads")).await;
    let thread = threads["threads"][0]["id"].as_str().unwrap().to_owned();
    let (_, thread) = api.get(&format!("/threads/{thread}")).await;
    assert_eq!(thread["events"].as_array().unwrap().len(), 1);
    assert_eq!(thread["events"][0]["body"], "Hello there");
    assert_eq!(thread["events"][0]["metadata"]["num_media"], 0);
}

/// DESIGN §7 end to end: an SMS from +14155550123 opens a thread; a call
/// from that number (From user part) joins the same thread, and the thread
/// then holds the SMS and the call (with its IVR path) in time order.
#[tokio::test]
async fn a_call_joins_the_callers_sms_thread() {
    use std::time::{Duration, Instant};

    let switch = Switch::start("thread-call");
    let api = Api::new(&switch);
    let (status, body) = api
        .post_json(
            "/messages",
            &json!({
                "channel": "sms", "direction": "inbound", "from": "+14155550123",
                "to": "+14155550100", "body": "My order is late", "external_id": "SM-1",
                "occurred_at": "2026-11-24T10:00:00Z"
            }),
            None,
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");

    // The call from the same number; key 1 (the test flow's menu option
    // that hangs up) as RFC 4733, then the switch's BYE.
    let caller = common::RawCaller::dial(&switch, "+14155550100", "+14155550123", "thread-call-1");
    caller
        .rtp
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (_, media) = caller.rtp.recv_from(&mut buf).expect("prompt RTP");
    for (i, end) in [false, true, true, true].into_iter().enumerate() {
        let payload = common::rfc4733_payload(1, end, 10, 480);
        let pkt = common::rtp_bytes(101, i == 0, 500 + i as u16, 8000, 0x55, &payload);
        caller.rtp.send_to(&pkt, media).unwrap();
    }
    caller.expect_bye();

    // The contact's thread holds the SMS, then the call.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, contacts) = api.get("/contacts?phone=%2B14155550123").await;
        assert_eq!(status, 200, "{contacts}");
        let contact = contacts
            .as_array()
            .and_then(|a| a.first())
            .or_else(|| contacts["contacts"].as_array().and_then(|a| a.first()))
            .cloned()
            .unwrap_or(contacts.clone());
        let id = contact["id"].as_str().unwrap_or_default().to_owned();
        let (_, threads) = api.get(&format!("/contacts/{id}/threads")).await;
        let text = threads.to_string();
        let thread_id = threads
            .as_array()
            .and_then(|a| a.first())
            .or_else(|| threads["threads"].as_array().and_then(|a| a.first()))
            .and_then(|t| t["id"].as_str())
            .map(str::to_owned);
        if let Some(thread_id) = thread_id {
            let (_, thread) = api.get(&format!("/threads/{thread_id}")).await;
            let events = thread["events"].as_array().cloned().unwrap_or_default();
            let channels: Vec<&str> = events
                .iter()
                .filter_map(|e| e["channel"].as_str())
                .collect();
            if channels.first() == Some(&"sms") && channels.contains(&"voice") {
                assert_eq!(
                    threads.as_array().map_or(1, Vec::len),
                    1,
                    "the call must join the SMS thread, not open another: {text}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "thread without the call: {thread}"
            );
        } else {
            assert!(Instant::now() < deadline, "no thread: {text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
