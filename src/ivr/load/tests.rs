//! Every action and key of a flow file read into the model (DESIGN §5).

use std::time::Duration;

use crate::ivr::expr::Value;
use crate::ivr::model::*;
use crate::ivr::testing::Scratch;

/// The flow of `main.yaml` = numbers 100, start `a`, then `nodes`.
fn flow(nodes: &str) -> Flow {
    let s = Scratch::new();
    let set = s.good(&format!("numbers: [\"100\"]\nstart: a\nnodes:\n{nodes}"));
    let flow = set.flow("main").expect("main");
    (**flow).clone()
}

fn node<'f>(flow: &'f Flow, name: &str) -> &'f Node {
    let id = flow.node_id(name).expect(name);
    flow.node(id).expect("node")
}

fn id(flow: &Flow, name: &str) -> NodeId {
    flow.node_id(name).expect(name)
}

const BYE: &str = "  bye: { hangup: {} }\n";

#[test]
fn play_one_a_list_and_barge() {
    let f = flow(&format!(
        "  a: {{ play: welcome.wav, next: b }}\n  b: {{ play: [menu.wav, 'invalid.wav'], barge: true, next: bye }}\n{BYE}"
    ));
    let a = node(&f, "a");
    assert_eq!(
        a.action,
        Action::Play(Play {
            sounds: vec!["welcome.wav".into()],
            barge: false
        })
    );
    assert_eq!(a.next, Some(id(&f, "b")));
    assert_eq!(a.line, 4);
    assert_eq!(
        node(&f, "b").action,
        Action::Play(Play {
            sounds: vec!["menu.wav".into(), "invalid.wav".into()],
            barge: true
        })
    );
    assert_eq!(node(&f, "bye").action, Action::Hangup);
    assert_eq!(f.start, id(&f, "a"));
}

#[test]
fn menu_with_every_key_and_defaults() {
    let f = flow(&format!(
        "  a:\n    menu:\n      prompt: menu.wav\n      options: {{ \"1\": b, 2: bye, \"*\": a, \"#\": bye }}\n      timeout: 7s\n      tries: 2\n      invalid: [invalid.wav]\n      failure: bye\n  b:\n    menu: {{ prompt: [welcome.wav, menu.wav], options: {{ \"0\": bye }}, failure: bye }}\n{BYE}"
    ));
    let Action::Menu(m) = &node(&f, "a").action else {
        panic!("menu")
    };
    let (b, bye, a) = (id(&f, "b"), id(&f, "bye"), id(&f, "a"));
    assert_eq!(m.prompt, ["menu.wav"]);
    assert_eq!(m.options, [('#', bye), ('*', a), ('1', b), ('2', bye)]);
    assert_eq!(m.choice('1'), Some(b));
    assert_eq!(m.choice('5'), None);
    assert_eq!(m.timeout, Duration::from_secs(7));
    assert_eq!(m.tries, 2);
    assert_eq!(m.invalid, ["invalid.wav"]);
    assert_eq!(m.failure, bye);
    assert_eq!(node(&f, "a").next, None);
    let Action::Menu(m) = &node(&f, "b").action else {
        panic!("menu")
    };
    assert_eq!(m.prompt, ["welcome.wav", "menu.wav"]);
    assert_eq!(m.timeout, Duration::from_secs(5));
    assert_eq!(m.tries, 3);
    assert!(m.invalid.is_empty());
}

#[test]
fn collect_digits_range_terminator() {
    let f = flow(&format!(
        "  a: {{ collect: {{ prompt: rate.wav, var: csat, digits: 1, timeout: 5s }}, next: b }}\n  b: {{ collect: {{ var: account, min: 4, max: 10, terminator: \"*\", timeout: 8s, inter_digit: 2s }}, next: c }}\n  c: {{ collect: {{ var: pin, max: 4, terminator: ~ }}, next: bye }}\n{BYE}"
    ));
    assert_eq!(
        node(&f, "a").action,
        Action::Collect(Collect {
            prompt: vec!["rate.wav".into()],
            var: "csat".into(),
            min: 1,
            max: 1,
            terminator: Some('#'),
            timeout: Duration::from_secs(5),
            inter_digit: Duration::from_secs(3),
        })
    );
    assert_eq!(
        node(&f, "b").action,
        Action::Collect(Collect {
            prompt: vec![],
            var: "account".into(),
            min: 4,
            max: 10,
            terminator: Some('*'),
            timeout: Duration::from_secs(8),
            inter_digit: Duration::from_secs(2),
        })
    );
    let Action::Collect(c) = &node(&f, "c").action else {
        panic!("collect")
    };
    assert_eq!((c.min, c.max, c.terminator), (1, 4, None));
}

#[test]
fn branch_arms_in_order_and_else() {
    let f = flow(&format!(
        "  a:\n    branch:\n      - {{ if: caller.vip, then: b }}\n      - {{ if: \"queue.support.waiting > 5 and not thread.open\", then: bye }}\n      - {{ else: b }}\n  b: {{ play: welcome.wav, next: bye }}\n{BYE}"
    ));
    let Action::Branch(br) = &node(&f, "a").action else {
        panic!("branch")
    };
    assert_eq!(br.arms.len(), 2);
    assert_eq!(br.arms[0].1, id(&f, "b"));
    assert_eq!(br.arms[1].1, id(&f, "bye"));
    assert_eq!(br.otherwise, id(&f, "b"));
    let env = |name: &str| match name {
        "queue.support.waiting" => Some(Value::Num(9.0)),
        "thread.open" => Some(Value::Bool(false)),
        _ => None,
    };
    assert!(!br.arms[0].0.eval(&env));
    assert!(br.arms[1].0.eval(&env));
}

#[test]
fn hours_set_queue_transfer() {
    let f = flow(&format!(
        "  a: {{ hours: support-hours, open: b, closed: bye }}\n  b: {{ set: {{ lang: en, tier: 2, ratio: 0.5, vip: true }}, next: c }}\n  c:\n    queue: support\n    priority: 3\n    after: d\n    next: e\n  d: {{ transfer: alice, next: e }}\n  e: {{ transfer: 1001, timeout: 10s, next: g }}\n  g: {{ transfer: \"sip:desk@example.com\", next: bye }}\n{BYE}"
    ));
    assert_eq!(
        node(&f, "a").action,
        Action::Hours(HoursCheck {
            name: "support-hours".into(),
            open: id(&f, "b"),
            closed: id(&f, "bye"),
        })
    );
    assert_eq!(
        node(&f, "b").action,
        Action::Set(vec![
            ("lang".into(), Value::Str("en".into())),
            ("tier".into(), Value::Num(2.0)),
            ("ratio".into(), Value::Num(0.5)),
            ("vip".into(), Value::Bool(true)),
        ])
    );
    let c = node(&f, "c");
    assert_eq!(
        c.action,
        Action::Queue(QueueStep {
            queue: "support".into(),
            priority: Some(3),
            after: Some(id(&f, "d")),
        })
    );
    assert_eq!(c.next, Some(id(&f, "e")));
    assert_eq!(c.exits(), [id(&f, "e"), id(&f, "d")]);
    assert_eq!(
        node(&f, "d").action,
        Action::Transfer(Transfer {
            target: TransferTarget::Agent("alice".into()),
            timeout: Duration::from_secs(30),
        })
    );
    assert_eq!(
        node(&f, "e").action,
        Action::Transfer(Transfer {
            target: TransferTarget::Extension("1001".into()),
            timeout: Duration::from_secs(10),
        })
    );
    assert_eq!(
        node(&f, "g").action,
        Action::Transfer(Transfer {
            target: TransferTarget::Uri("sip:desk@example.com".into()),
            timeout: Duration::from_secs(30),
        })
    );
}

#[test]
fn voicemail_webhook_hangup() {
    let f = flow(
        "  a: { voicemail: { greeting: leave-message.wav, max: 2m, beep: false }, next: b }\n  b: { voicemail: {}, next: c }\n  c: { webhook: { url: \"https://crm.example.com/ivr\", timeout: 2s, failure: bye }, next: d }\n  d: { webhook: { url: \"http://127.0.0.1:9000/x\" }, next: bye }\n  bye: { hangup: }\n",
    );
    assert_eq!(
        node(&f, "a").action,
        Action::Voicemail(Voicemail {
            greeting: vec!["leave-message.wav".into()],
            max: Duration::from_secs(120),
            beep: false,
        })
    );
    assert_eq!(
        node(&f, "b").action,
        Action::Voicemail(Voicemail {
            greeting: vec![],
            max: Duration::from_secs(120),
            beep: true,
        })
    );
    assert_eq!(
        node(&f, "c").action,
        Action::Webhook(Webhook {
            url: "https://crm.example.com/ivr".into(),
            timeout: Duration::from_secs(2),
            failure: Some(id(&f, "bye")),
        })
    );
    let Action::Webhook(w) = &node(&f, "d").action else {
        panic!("webhook")
    };
    assert_eq!((w.timeout, w.failure), (Duration::from_secs(5), None));
    assert_eq!(node(&f, "bye").action, Action::Hangup);
}

#[test]
fn flow_keys_and_defaults() {
    let s = Scratch::new();
    s.write(
        "support.yaml",
        "description: the support line\nnumbers: [\"+1 415-555-0100\", \"*\"]\nring: 3s\npublic: false\nstart: bye\nnodes:\n  bye: { hangup: {} }\n",
    );
    let set =
        s.good("name: front\nnumbers: [\"100\"]\nstart: bye\nnodes:\n  bye: { hangup: {} }\n");
    let support = set.flow("support").expect("the stem names it");
    assert_eq!(support.ring, Duration::from_secs(3));
    assert!(!support.public);
    assert_eq!(support.numbers, ["+1 415-555-0100", "*"]);
    let front = set.flow("front").expect("front");
    assert_eq!(front.ring, Duration::ZERO);
    assert!(front.public);
    assert!(front.file.ends_with("main.yaml"));
    // The number plan the SIP side reads.
    assert_eq!(
        set.numbers().lookup("100").map(|e| e.name.as_str()),
        Some("front")
    );
    let entry = set.numbers().lookup("+14155550100").expect("normalized");
    assert_eq!((entry.name.as_str(), entry.public), ("support", false));
    assert_eq!(
        set.numbers().lookup("999").map(|e| e.name.as_str()),
        Some("support")
    );
    assert_eq!(
        set.for_number("100").map(|f| f.name.as_str()),
        Some("front")
    );
    assert!(set.queues().get("support").is_some());
    assert!(set.hours().get("support-hours").is_some());
    assert_eq!(set.len(), 2);
}

#[test]
fn node_ids_index_the_node_list() {
    let f = flow(&format!("  a: {{ play: welcome.wav, next: bye }}\n{BYE}"));
    for (i, n) in f.nodes.iter().enumerate() {
        assert_eq!(n.id.index(), i);
        assert_eq!(f.node(n.id), Some(n));
    }
    assert_eq!(f.node(NodeId(99)), None);
}

mod fuzz {
    use std::path::Path;

    use proptest::prelude::*;

    use crate::ivr::load::{Sounds, load_flow};

    const SEED: &str = "numbers: [\"100\"]\nstart: a\nnodes:\n  a: { menu: { prompt: m.wav, options: { \"1\": b }, failure: b } }\n  b: { branch: [ { if: \"caller.vip\", then: a }, { else: c } ] }\n  c: { collect: { var: x, digits: 2 }, next: d }\n  d: { hangup: {} }\n";

    proptest! {
        /// DESIGN §10: a flow file never panics the loader, whatever it holds.
        #[test]
        fn mutated_flow_files_never_panic(cuts in proptest::collection::vec((0usize..400, any::<char>()), 0..6)) {
            let mut text: Vec<char> = SEED.chars().collect();
            for (at, c) in cuts {
                let at = at % (text.len() + 1);
                text.insert(at, c);
            }
            let text: String = text.into_iter().collect();
            let mut sounds = Sounds::new(Path::new("/nonexistent-sounds"));
            let mut diags = Vec::new();
            let _ = load_flow(Path::new("f.yaml"), &text, &mut sounds, &mut diags);
        }

        #[test]
        fn random_text_never_panics(text in "\\PC{0,200}") {
            let mut sounds = Sounds::new(Path::new("/nonexistent-sounds"));
            let mut diags = Vec::new();
            let _ = load_flow(Path::new("f.yaml"), &text, &mut sounds, &mut diags);
        }
    }
}
