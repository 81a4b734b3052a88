//! Transaction layer tests: raw SIP text, a fake clock (`t0 + Duration`)
//! and a two-party harness in memory that can drop messages.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::message::{HeaderName, Limits, Message, parse_message};
use crate::sip::peer::Transport;

const ALICE: &str = "10.0.0.1:5060";
const BOB: &str = "10.0.0.2:5060";

fn peer(addr: &str, transport: Transport) -> Peer {
    let addr: SocketAddr = addr.parse().unwrap();
    Peer { transport, addr }
}

fn parse(text: &str) -> Message {
    let text = text.trim_start().replace('\n', "\r\n");
    parse_message(text.as_bytes(), &Limits::default()).unwrap()
}

fn req(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

fn resp(text: &str) -> Response {
    match parse(text) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("expected a response"),
    }
}

fn layer() -> TransactionLayer {
    TransactionLayer::new(TimerConfig::default())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn invite(transport: &str, branch: &str) -> Request {
    req(&format!(
        "INVITE sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/{transport} 10.0.0.1:5060;branch={branch}
Max-Forwards: 70
Route: <sip:proxy.example.com;lr>
From: \"Alice\" <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: call-1@10.0.0.1
CSeq: 1 INVITE
Contact: <sip:alice@10.0.0.1:5060>
Content-Length: 0

"
    ))
}

fn options(transport: &str, branch: &str) -> Request {
    req(&format!(
        "OPTIONS sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/{transport} 10.0.0.1:5060;branch={branch}
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a2
To: <sip:bob@example.com>
Call-ID: opt-1@10.0.0.1
CSeq: 7 OPTIONS
Content-Length: 0

"
    ))
}

/// The dialog layer's ACK for a 2xx: a new branch (§13.2.2.4).
fn ack_2xx(branch: &str, to_tag: &str) -> Request {
    req(&format!(
        "ACK sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag={to_tag}
Call-ID: call-1@10.0.0.1
CSeq: 1 ACK
Content-Length: 0

"
    ))
}

/// The UAS core's response: §8.2.6.2 copy plus a To tag for non-100.
fn answer(request: &Request, status: u16, reason: &str) -> Response {
    let mut r = Response::for_request(request, status, reason);
    if status > 100 {
        let to = r.headers.get(&HeaderName::To).unwrap_or("").to_owned();
        r.headers.set(HeaderName::To, format!("{to};tag=b1"));
    }
    r
}

fn start_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().next().unwrap_or("").to_owned()
}

fn drain(l: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn events(l: &mut TransactionLayer) -> Vec<Event> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

/// Fires every timer up to `until` in order, recording each transmit's
/// start line with its offset from `t0`.
fn run_until(l: &mut TransactionLayer, t0: Instant, until: Duration) -> Vec<(Duration, String)> {
    let mut log = Vec::new();
    for t in drain(l) {
        log.push((Duration::ZERO, start_line(&t.bytes)));
    }
    while let Some(at) = l.poll_timeout() {
        if at > t0 + until {
            break;
        }
        l.handle_timeout(at);
        for t in drain(l) {
            log.push((at - t0, start_line(&t.bytes)));
        }
    }
    log
}

fn instants(log: &[(Duration, String)], prefix: &str) -> Vec<Duration> {
    log.iter()
        .filter(|(_, line)| line.starts_with(prefix))
        .map(|(at, _)| *at)
        .collect()
}

fn secs_ms(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&m| ms(m)).collect()
}

// ----- two-party harness -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

/// A client layer (Alice) and a server layer (Bob) wired back to back.
/// Time jumps straight to the next deadline; `drop_next` loses messages.
struct Pair {
    t0: Instant,
    now: Instant,
    client: TransactionLayer,
    server: TransactionLayer,
    transport: Transport,
    /// (direction, start-line prefix, how many more to drop)
    drops: Vec<(Dir, String, usize)>,
    /// Every message on the wire: (offset, direction, start line, dropped).
    wire: Vec<(Duration, Dir, String, bool)>,
    incoming: Vec<Incoming>,
    client_strays: Vec<Response>,
    /// Random loss: xorshift state and the loss percentage.
    loss: Option<(u64, u64)>,
}

impl Pair {
    fn new(transport: Transport) -> Pair {
        let t0 = Instant::now();
        Pair {
            t0,
            now: t0,
            client: layer(),
            server: layer(),
            transport,
            drops: Vec::new(),
            wire: Vec::new(),
            incoming: Vec::new(),
            client_strays: Vec::new(),
            loss: None,
        }
    }

    fn alice(&self) -> Peer {
        peer(ALICE, self.transport)
    }

    fn bob(&self) -> Peer {
        peer(BOB, self.transport)
    }

    fn drop_next(&mut self, dir: Dir, prefix: &str, times: usize) {
        self.drops.push((dir, prefix.to_owned(), times));
    }

    fn lose(&mut self, dir: Dir, line: &str) -> bool {
        if let Some((state, percent)) = &mut self.loss {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            if *state % 100 < *percent {
                return true;
            }
        }
        for (d, prefix, left) in &mut self.drops {
            if *d == dir && *left > 0 && line.starts_with(prefix.as_str()) {
                *left -= 1;
                return true;
            }
        }
        false
    }

    /// Delivers messages both ways until both queues are empty.
    fn deliver(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                let line = start_line(&t.bytes);
                let lost = self.lose(Dir::ToServer, &line);
                self.wire
                    .push((self.now - self.t0, Dir::ToServer, line, lost));
                if lost {
                    continue;
                }
                assert_eq!(t.dest, self.bob());
                let source = self.alice();
                match parse_message(&t.bytes, &Limits::default()).unwrap() {
                    Message::Request(r) => {
                        if let Some(i) = self.server.handle_request(self.now, r, source) {
                            self.incoming.push(i);
                        }
                    }
                    Message::Response(_) => panic!("client sent a response"),
                }
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                let line = start_line(&t.bytes);
                let lost = self.lose(Dir::ToClient, &line);
                self.wire
                    .push((self.now - self.t0, Dir::ToClient, line, lost));
                if lost {
                    continue;
                }
                assert_eq!(t.dest, self.alice());
                match parse_message(&t.bytes, &Limits::default()).unwrap() {
                    Message::Response(r) => {
                        if let Some(stray) = self.client.handle_response(self.now, r) {
                            self.client_strays.push(stray);
                        }
                    }
                    Message::Request(_) => panic!("server sent a request"),
                }
            }
            if !moved {
                return;
            }
        }
        panic!("message storm");
    }

    /// Jumps to the next deadline of either side; false when none is left
    /// before `t0 + limit`.
    fn step(&mut self, limit: Duration) -> bool {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(at) if at <= self.t0 + limit => {
                self.now = at;
                self.client.handle_timeout(at);
                self.server.handle_timeout(at);
                self.deliver();
                true
            }
            _ => false,
        }
    }

    fn run_until(&mut self, limit: Duration) {
        while self.step(limit) {}
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        self.run_until(target - self.t0);
        self.now = target;
    }

    fn wire_times(&self, dir: Dir, prefix: &str) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|(_, d, line, _)| *d == dir && line.starts_with(prefix))
            .map(|(at, ..)| *at)
            .collect()
    }

    fn take_request(&mut self) -> (ServerTxId, Request) {
        match self.incoming.remove(0) {
            Incoming::Request { tx, request } => (tx, request),
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

fn statuses(events: &[Event]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response { response, .. } => Some(response.status),
            _ => None,
        })
        .collect()
}

// ----- INVITE server (§17.2.1) and client (§17.1.1) -----

/// §17.2.1: a new INVITE is answered 100 Trying at once; a retransmitted
/// INVITE is absorbed and the last provisional is sent again.
#[test]
fn rfc3261_17_2_1_invite_gets_100_trying_and_retransmission_is_absorbed() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinv1");
    let Some(Incoming::Request { tx, .. }) =
        l.handle_request(t0, inv.clone(), peer(ALICE, Transport::Udp))
    else {
        panic!("expected a new request");
    };
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(start_line(&sent[0].bytes), "SIP/2.0 100 Trying");
    assert_eq!(sent[0].dest, peer(ALICE, Transport::Udp));
    assert_eq!(l.server_state(tx), Some(ServerState::Proceeding));

    assert_eq!(
        l.handle_request(t0 + ms(500), inv.clone(), peer(ALICE, Transport::Udp)),
        None
    );
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(start_line(&sent[0].bytes), "SIP/2.0 100 Trying");

    l.send_response(t0 + ms(600), tx, answer(&inv, 180, "Ringing"))
        .unwrap();
    assert_eq!(start_line(&drain(&mut l)[0].bytes), "SIP/2.0 180 Ringing");
    assert_eq!(
        l.handle_request(t0 + ms(700), inv, peer(ALICE, Transport::Udp)),
        None
    );
    assert_eq!(start_line(&drain(&mut l)[0].bytes), "SIP/2.0 180 Ringing");
}

/// §17.1.1.2, §17.2.1, RFC 6026 §8.4/§8.7, §13.3.1.4: INVITE, 100, 180,
/// 200, ACK for the 2xx; both layers end empty once Timers L and M fire.
#[test]
fn rfc3261_17_1_1_and_17_2_1_invite_happy_path_with_2xx() {
    let mut p = Pair::new(Transport::Udp);
    let inv = invite("UDP", "z9hG4bKinv1");
    let ctx = p.client.send_request(p.now, inv, p.bob()).unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    assert_eq!(request.method, Method::Invite);
    assert_eq!(statuses(&events(&mut p.client)), vec![100]);
    assert_eq!(p.client.client_state(ctx), Some(ClientState::Proceeding));

    p.advance(ms(200));
    p.server
        .send_response(p.now, stx, answer(&request, 180, "Ringing"))
        .unwrap();
    p.server
        .send_response(p.now, stx, answer(&request, 200, "OK"))
        .unwrap();
    p.deliver();
    let ev = events(&mut p.client);
    assert_eq!(statuses(&ev), vec![180, 200]);
    assert!(
        ev.iter()
            .all(|e| matches!(e, Event::Response { tx, .. } if *tx == ctx))
    );
    assert_eq!(p.client.client_state(ctx), Some(ClientState::Accepted));
    assert_eq!(p.server.server_state(stx), Some(ServerState::Accepted));

    // The dialog layer ACKs the 2xx outside the transaction.
    let bob = p.bob();
    p.client.send_ack(&ack_2xx("z9hG4bKack1", "b1"), bob);
    p.deliver();
    assert!(matches!(
        p.incoming.as_slice(),
        [Incoming::Ack { matched_2xx: true, request }] if request.method == Method::Ack
    ));
    // No INVITE retransmission and no 2xx retransmission after the ACK.
    p.run_until(Duration::from_secs(40));
    assert_eq!(p.wire_times(Dir::ToServer, "INVITE").len(), 1);
    assert_eq!(p.wire_times(Dir::ToClient, "SIP/2.0 200").len(), 1);
    assert!(events(&mut p.server).is_empty());
    assert!(p.client.is_empty() && p.server.is_empty());
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.server.poll_timeout(), None);
}

/// §17.1.1.2: Timer A starts at T1 and doubles (no T2 cap for INVITE);
/// Timer B fires at 64*T1 with a timeout for the TU.
#[test]
fn rfc3261_17_1_1_2_timer_a_doubles_and_timer_b_times_out() {
    let t0 = Instant::now();
    let mut l = layer();
    let ctx = l
        .send_request(t0, invite("UDP", "z9hG4bKinvA"), peer(BOB, Transport::Udp))
        .unwrap();
    let log = run_until(&mut l, t0, Duration::from_secs(60));
    assert_eq!(
        instants(&log, "INVITE"),
        secs_ms(&[0, 500, 1500, 3500, 7500, 15500, 31500])
    );
    assert_eq!(events(&mut l), vec![Event::Timeout(ctx)]);
    assert!(l.is_empty());
}

/// RFC 6026 §8.4: in Accepted every further 2xx (retransmission or another
/// fork) goes to the TU; responses matching nothing come back as stray.
#[test]
fn rfc6026_8_4_client_accepted_passes_2xx_up_and_strays_return() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinvM");
    let ctx = l
        .send_request(t0, inv.clone(), peer(BOB, Transport::Udp))
        .unwrap();
    drain(&mut l);
    let ok = answer(&inv, 200, "OK");
    assert_eq!(l.handle_response(t0 + ms(100), ok.clone()), None);
    assert_eq!(l.handle_response(t0 + ms(600), ok.clone()), None);
    assert_eq!(statuses(&events(&mut l)), vec![200, 200]);
    assert!(
        drain(&mut l).is_empty(),
        "no ACK for a 2xx in the transaction"
    );
    l.handle_timeout(t0 + ms(100) + Duration::from_secs(32));
    assert_eq!(l.client_state(ctx), None);
    // After Timer M the 2xx is stray: the dialog layer re-ACKs it.
    assert_eq!(
        l.handle_response(t0 + Duration::from_secs(40), ok.clone()),
        Some(ok)
    );
    assert!(events(&mut l).is_empty());
}

/// §17.1.1.3: the ACK for a non-2xx final carries the INVITE's Request-URI,
/// top Via (same branch), From, Call-ID and Route, the response's To, and
/// CSeq number with method ACK; a retransmitted final is ACKed again and
/// not passed up (§17.1.1.2).
#[test]
fn rfc3261_17_1_1_3_ack_for_non_2xx_is_built_from_invite_and_response() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinvX");
    let ctx = l
        .send_request(t0, inv.clone(), peer(BOB, Transport::Udp))
        .unwrap();
    drain(&mut l);
    let busy = answer(&inv, 486, "Busy Here");
    assert_eq!(l.handle_response(t0 + ms(100), busy.clone()), None);
    assert_eq!(statuses(&events(&mut l)), vec![486]);
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].dest, peer(BOB, Transport::Udp));
    let Message::Request(ack) = parse_message(&sent[0].bytes, &Limits::default()).unwrap() else {
        panic!("ACK expected");
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, inv.uri);
    let via = ack.headers.via().unwrap();
    assert_eq!(via.len(), 1);
    assert_eq!(via[0], inv.headers.top_via().unwrap());
    assert_eq!(via[0].branch(), Some("z9hG4bKinvX"));
    assert_eq!(ack.headers.from().unwrap(), inv.headers.from().unwrap());
    assert_eq!(ack.headers.to().unwrap(), busy.headers.to().unwrap());
    assert_eq!(ack.headers.to().unwrap().tag(), Some("b1"));
    assert_eq!(ack.headers.call_id().unwrap(), "call-1@10.0.0.1");
    let cseq = ack.headers.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (1, Method::Ack));
    assert_eq!(ack.headers.routes().unwrap(), inv.headers.routes().unwrap());
    assert_eq!(ack.headers.max_forwards().unwrap(), Some(70));

    // Retransmitted 486: ACK again, nothing for the TU.
    assert_eq!(l.handle_response(t0 + ms(600), busy), None);
    assert!(events(&mut l).is_empty());
    assert_eq!(drain(&mut l)[0].bytes, sent[0].bytes);
    assert_eq!(l.client_state(ctx), Some(ClientState::Completed));
    // Timer D (32 s on UDP) ends it.
    l.handle_timeout(t0 + ms(100) + Duration::from_secs(32));
    assert!(l.is_empty());
}

/// §17.2.1: a lost ACK for a non-2xx: Timer G re-sends the final response,
/// the client's transaction ACKs again, the server absorbs that ACK
/// (Completed → Confirmed) and Timer I ends it.
#[test]
fn rfc3261_17_2_1_lost_ack_timer_g_resends_final_and_ack_is_absorbed() {
    let mut p = Pair::new(Transport::Udp);
    let ctx = p
        .client
        .send_request(p.now, invite("UDP", "z9hG4bKinvG"), p.bob())
        .unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    p.drop_next(Dir::ToServer, "ACK", 1);
    p.server
        .send_response(p.now, stx, answer(&request, 486, "Busy Here"))
        .unwrap();
    p.deliver();
    assert_eq!(p.server.server_state(stx), Some(ServerState::Completed));
    p.advance(ms(500));
    assert_eq!(
        p.wire_times(Dir::ToClient, "SIP/2.0 486"),
        secs_ms(&[0, 500])
    );
    assert_eq!(p.wire_times(Dir::ToServer, "ACK"), secs_ms(&[0, 500]));
    assert_eq!(p.server.server_state(stx), Some(ServerState::Confirmed));
    assert!(p.incoming.is_empty(), "the ACK for a non-2xx is absorbed");
    assert_eq!(statuses(&events(&mut p.client)), vec![100, 486]);

    // Timer I (T4) ends the server side, Timer D (32 s) the client side.
    p.run_until(ms(500) + Duration::from_secs(5));
    assert_eq!(p.server.server_state(stx), None);
    assert_eq!(p.client.client_state(ctx), Some(ClientState::Completed));
    p.run_until(Duration::from_secs(60));
    assert_eq!(p.wire_times(Dir::ToClient, "SIP/2.0 486").len(), 2);
    assert!(p.client.is_empty() && p.server.is_empty());
    assert!(events(&mut p.server).is_empty());
}

/// §17.2.1: without any ACK, Timer G retransmits at T1, 2T1, … capped at
/// T2, and Timer H (64*T1) ends the transaction with a failure for the TU.
#[test]
fn rfc3261_17_2_1_timer_g_capped_at_t2_and_timer_h() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinvH");
    let Some(Incoming::Request { tx, .. }) =
        l.handle_request(t0, inv.clone(), peer(ALICE, Transport::Udp))
    else {
        panic!()
    };
    drain(&mut l);
    l.send_response(t0, tx, answer(&inv, 603, "Decline"))
        .unwrap();
    let log = run_until(&mut l, t0, Duration::from_secs(60));
    assert_eq!(
        instants(&log, "SIP/2.0 603"),
        secs_ms(&[
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert_eq!(events(&mut l), vec![Event::ServerTimeout(tx)]);
    assert!(l.is_empty());
}

/// §13.3.1.4: the 2xx is re-sent at T1, 2T1, … capped at T2 until an ACK
/// with the same Call-ID, CSeq number and To tag arrives; repeated ACKs are
/// absorbed; an ACK for another To tag does not match.
#[test]
fn rfc3261_13_3_1_4_2xx_retransmitted_until_ack() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinv2");
    let Some(Incoming::Request { tx, .. }) =
        l.handle_request(t0, inv.clone(), peer(ALICE, Transport::Udp))
    else {
        panic!()
    };
    drain(&mut l);
    l.send_response(t0, tx, answer(&inv, 200, "OK")).unwrap();
    let log = run_until(&mut l, t0, ms(8000));
    assert_eq!(
        instants(&log, "SIP/2.0 200"),
        secs_ms(&[0, 500, 1500, 3500, 7500])
    );
    let src = peer(ALICE, Transport::Udp);
    assert_eq!(
        l.handle_request(t0 + ms(8000), ack_2xx("z9hG4bKack9", "other"), src),
        Some(Incoming::Ack {
            request: ack_2xx("z9hG4bKack9", "other"),
            matched_2xx: false
        })
    );
    assert_eq!(
        l.handle_request(t0 + ms(8000), ack_2xx("z9hG4bKack2", "b1"), src),
        Some(Incoming::Ack {
            request: ack_2xx("z9hG4bKack2", "b1"),
            matched_2xx: true
        })
    );
    assert_eq!(
        l.handle_request(t0 + ms(8100), ack_2xx("z9hG4bKack2", "b1"), src),
        None
    );
    let log = run_until(&mut l, t0, Duration::from_secs(60));
    assert!(instants(&log, "SIP/2.0 200").is_empty());
    assert!(events(&mut l).is_empty(), "no AckTimeout once acknowledged");
    assert!(l.is_empty());
}

/// §13.3.1.4: no ACK within 64*T1 → AckTimeout (the UAS then sends BYE).
#[test]
fn rfc3261_13_3_1_4_ack_timeout_after_64_t1() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinv3");
    let Some(Incoming::Request { tx, .. }) =
        l.handle_request(t0, inv.clone(), peer(ALICE, Transport::Udp))
    else {
        panic!()
    };
    l.send_response(t0, tx, answer(&inv, 200, "OK")).unwrap();
    // An INVITE retransmission in Accepted is absorbed (RFC 6026 §8.7).
    drain(&mut l);
    assert_eq!(
        l.handle_request(t0 + ms(100), inv, peer(ALICE, Transport::Udp)),
        None
    );
    assert!(drain(&mut l).is_empty());
    let log = run_until(&mut l, t0, Duration::from_secs(31));
    assert_eq!(
        instants(&log, "SIP/2.0 200"),
        secs_ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500])
    );
    assert!(events(&mut l).is_empty());
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(
        events(&mut l),
        vec![Event::AckTimeout {
            tx,
            call_id: "call-1@10.0.0.1".into()
        }]
    );
    assert!(l.is_empty());
}

// ----- non-INVITE (§17.1.2, §17.2.2) -----

/// §17.1.2.2: Timer E starts at T1, doubles, is capped at T2; Timer F
/// fires at 64*T1.
#[test]
fn rfc3261_17_1_2_2_timer_e_capped_at_t2_and_timer_f() {
    let t0 = Instant::now();
    let mut l = layer();
    let ctx = l
        .send_request(t0, options("UDP", "z9hG4bKoptE"), peer(BOB, Transport::Udp))
        .unwrap();
    let log = run_until(&mut l, t0, Duration::from_secs(60));
    assert_eq!(
        instants(&log, "OPTIONS"),
        secs_ms(&[
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert_eq!(events(&mut l), vec![Event::Timeout(ctx)]);
    assert!(l.is_empty());
}

/// §17.1.2.2: in Proceeding, Timer E is reset to T2 each time.
#[test]
fn rfc3261_17_1_2_2_timer_e_is_t2_in_proceeding() {
    let t0 = Instant::now();
    let mut l = layer();
    let opt = options("UDP", "z9hG4bKoptP");
    l.send_request(t0, opt.clone(), peer(BOB, Transport::Udp))
        .unwrap();
    drain(&mut l);
    l.handle_response(t0 + ms(200), answer(&opt, 100, "Trying"));
    assert_eq!(statuses(&events(&mut l)), vec![100]);
    let log = run_until(&mut l, t0, ms(13000));
    assert_eq!(
        instants(&log, "OPTIONS"),
        secs_ms(&[500, 4500, 8500, 12500])
    );
}

/// §17.1.2, §17.2.2: OPTIONS → 200; Timer K (T4) ends the client side,
/// Timer J (64*T1) the server side; nothing is left.
#[test]
fn rfc3261_17_2_2_non_invite_happy_path() {
    let mut p = Pair::new(Transport::Udp);
    let ctx = p
        .client
        .send_request(p.now, options("UDP", "z9hG4bKopt1"), p.bob())
        .unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    assert_eq!(p.server.server_state(stx), Some(ServerState::Trying));
    assert!(
        p.wire_times(Dir::ToClient, "").is_empty(),
        "no automatic 100 for non-INVITE"
    );
    p.server
        .send_response(p.now, stx, answer(&request, 200, "OK"))
        .unwrap();
    p.deliver();
    assert_eq!(statuses(&events(&mut p.client)), vec![200]);
    assert_eq!(p.client.client_state(ctx), Some(ClientState::Completed));
    assert_eq!(p.server.server_state(stx), Some(ServerState::Completed));
    p.run_until(Duration::from_secs(5));
    assert_eq!(p.client.client_state(ctx), None);
    p.run_until(Duration::from_secs(32));
    assert_eq!(p.server.server_state(stx), None);
    assert!(p.client.is_empty() && p.server.is_empty());
    assert_eq!(p.wire_times(Dir::ToServer, "OPTIONS").len(), 1);
}

/// §17.2.2: the final response is lost; the client retransmits (Timer E),
/// the server absorbs the retransmission and re-sends its final response;
/// the TU sees one request and one response.
#[test]
fn rfc3261_17_2_2_lost_final_response_is_resent_on_retransmission() {
    let mut p = Pair::new(Transport::Udp);
    p.client
        .send_request(p.now, options("UDP", "z9hG4bKopt2"), p.bob())
        .unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    p.drop_next(Dir::ToClient, "SIP/2.0 200", 1);
    p.server
        .send_response(p.now, stx, answer(&request, 200, "OK"))
        .unwrap();
    p.deliver();
    assert!(events(&mut p.client).is_empty());
    p.advance(ms(500));
    assert_eq!(p.wire_times(Dir::ToServer, "OPTIONS"), secs_ms(&[0, 500]));
    assert_eq!(
        p.wire_times(Dir::ToClient, "SIP/2.0 200"),
        secs_ms(&[0, 500])
    );
    assert!(p.incoming.is_empty(), "the retransmission is absorbed");
    assert_eq!(statuses(&events(&mut p.client)), vec![200]);
    p.run_until(Duration::from_secs(60));
    assert!(p.client.is_empty() && p.server.is_empty());
}

// ----- CANCEL (§9.1, §9.2) -----

/// §9.2: a CANCEL is its own server transaction and names the INVITE
/// server transaction with the same branch, sent-by, Call-ID and CSeq
/// number; a CANCEL that matches nothing gets `cancelled: None` (481).
#[test]
fn rfc3261_9_2_cancel_matching() {
    let t0 = Instant::now();
    let mut l = layer();
    let src = peer(ALICE, Transport::Udp);
    let inv = invite("UDP", "z9hG4bKinvC");
    let Some(Incoming::Request { tx: itx, .. }) = l.handle_request(t0, inv.clone(), src) else {
        panic!()
    };
    let cancel = |branch: &str, call_id: &str| {
        req(&format!(
            "CANCEL sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: {call_id}
CSeq: 1 CANCEL
Content-Length: 0

"
        ))
    };
    let Some(Incoming::Cancel {
        tx: ctx,
        cancelled,
        request,
    }) = l.handle_request(t0 + ms(10), cancel("z9hG4bKinvC", "call-1@10.0.0.1"), src)
    else {
        panic!("expected a CANCEL")
    };
    assert_eq!(cancelled, Some(itx));
    assert_ne!(ctx, itx);
    // The UA core: 200 to the CANCEL, 487 to the INVITE.
    l.send_response(t0 + ms(10), ctx, answer(&request, 200, "OK"))
        .unwrap();
    l.send_response(t0 + ms(10), itx, answer(&inv, 487, "Request Terminated"))
        .unwrap();
    // A retransmitted CANCEL is absorbed and answered again.
    drain(&mut l);
    assert_eq!(
        l.handle_request(t0 + ms(500), cancel("z9hG4bKinvC", "call-1@10.0.0.1"), src),
        None
    );
    assert_eq!(start_line(&drain(&mut l)[0].bytes), "SIP/2.0 200 OK");

    // Another branch: nothing to cancel.
    assert!(matches!(
        l.handle_request(
            t0 + ms(20),
            cancel("z9hG4bKnothing", "call-1@10.0.0.1"),
            src
        ),
        Some(Incoming::Cancel {
            cancelled: None,
            ..
        })
    ));
    // Same branch and sent-by but another Call-ID: not that INVITE.
    let mut l2 = layer();
    l2.handle_request(t0, inv, src);
    assert!(matches!(
        l2.handle_request(t0 + ms(10), cancel("z9hG4bKinvC", "other-call"), src),
        Some(Incoming::Cancel {
            cancelled: None,
            ..
        })
    ));
}

/// §9.1: cancelling an INVITE sends a CANCEL with the INVITE's branch
/// after a provisional response (held back until one arrives); the 487
/// comes as the INVITE's response and is ACKed; no events for the CANCEL.
#[test]
fn rfc3261_9_1_client_cancel() {
    let mut p = Pair::new(Transport::Udp);
    p.drop_next(Dir::ToClient, "SIP/2.0 100", 1);
    let ctx = p
        .client
        .send_request(p.now, invite("UDP", "z9hG4bKinvK"), p.bob())
        .unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    p.client.cancel(p.now, ctx).unwrap();
    p.deliver();
    assert!(
        p.wire_times(Dir::ToServer, "CANCEL").is_empty(),
        "not before a 1xx"
    );
    p.server
        .send_response(p.now, stx, answer(&request, 180, "Ringing"))
        .unwrap();
    p.deliver();
    assert_eq!(p.wire_times(Dir::ToServer, "CANCEL"), secs_ms(&[0]));
    let Incoming::Cancel {
        tx: cancel_tx,
        cancelled: Some(cancelled),
        request: cancel,
    } = p.incoming.remove(0)
    else {
        panic!("expected a matched CANCEL");
    };
    assert_eq!(cancelled, stx);
    assert_eq!(
        cancel.headers.top_via().unwrap().branch(),
        Some("z9hG4bKinvK")
    );
    assert_eq!(cancel.headers.cseq().unwrap().seq, 1);
    p.server
        .send_response(p.now, cancel_tx, answer(&cancel, 200, "OK"))
        .unwrap();
    p.server
        .send_response(p.now, stx, answer(&request, 487, "Request Terminated"))
        .unwrap();
    p.deliver();
    assert_eq!(statuses(&events(&mut p.client)), vec![180, 487]);
    assert_eq!(p.wire_times(Dir::ToServer, "ACK"), secs_ms(&[0]));
    p.run_until(Duration::from_secs(60));
    assert!(events(&mut p.client).is_empty());
    assert!(p.client.is_empty() && p.server.is_empty());
}

/// §9.1: an INVITE that gets no final response within 64*T1 of its CANCEL
/// is given up.
#[test]
fn rfc3261_9_1_invite_without_final_after_cancel_times_out() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinvT");
    let ctx = l
        .send_request(t0, inv.clone(), peer(BOB, Transport::Udp))
        .unwrap();
    l.handle_response(t0 + ms(100), answer(&inv, 180, "Ringing"));
    l.cancel(t0 + ms(1000), ctx).unwrap();
    assert_eq!(l.cancel(t0 + ms(1000), ctx), Ok(()), "idempotent");
    let sent: Vec<Request> = drain(&mut l)
        .iter()
        .filter_map(|t| match parse_message(&t.bytes, &Limits::default()) {
            Ok(Message::Request(r)) if r.method == Method::Cancel => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        l.handle_response(t0 + ms(1100), answer(&sent[0], 200, "OK")),
        None
    );
    events(&mut l);
    l.handle_timeout(t0 + ms(1000) + Duration::from_secs(32));
    assert_eq!(events(&mut l), vec![Event::Timeout(ctx)]);
    assert!(l.is_empty());
}

// ----- reliable transports -----

/// §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2: over TCP nothing is
/// retransmitted and timers D, I, J and K are zero (immediate termination);
/// Timers B and F still run.
#[test]
fn rfc3261_17_tcp_no_retransmission_and_immediate_termination() {
    // Non-INVITE: no Timer E; Timer F still fires.
    let t0 = Instant::now();
    let mut l = layer();
    let ctx = l
        .send_request(t0, options("TCP", "z9hG4bKtcp0"), peer(BOB, Transport::Tcp))
        .unwrap();
    let log = run_until(&mut l, t0, Duration::from_secs(60));
    assert_eq!(instants(&log, "OPTIONS"), secs_ms(&[0]));
    assert_eq!(events(&mut l), vec![Event::Timeout(ctx)]);

    // INVITE with a non-2xx, then OPTIONS with a 200: all end at once.
    let mut p = Pair::new(Transport::Tcp);
    let ictx = p
        .client
        .send_request(p.now, invite("TCP", "z9hG4bKtcp1"), p.bob())
        .unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    p.advance(Duration::from_secs(10));
    assert_eq!(p.wire_times(Dir::ToServer, "INVITE").len(), 1);
    p.server
        .send_response(p.now, stx, answer(&request, 486, "Busy Here"))
        .unwrap();
    p.deliver();
    assert_eq!(p.client.client_state(ictx), None, "Timer D is zero");
    assert_eq!(p.server.server_state(stx), None, "Timer I is zero");
    assert!(p.incoming.is_empty());

    let octx = p
        .client
        .send_request(p.now, options("TCP", "z9hG4bKtcp2"), p.bob())
        .unwrap();
    p.deliver();
    let (stx, request) = p.take_request();
    p.server
        .send_response(p.now, stx, answer(&request, 200, "OK"))
        .unwrap();
    assert_eq!(p.server.server_state(stx), None, "Timer J is zero");
    p.deliver();
    assert_eq!(p.client.client_state(octx), None, "Timer K is zero");
    assert!(p.client.is_empty() && p.server.is_empty());
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.server.poll_timeout(), None);
    assert_eq!(p.wire_times(Dir::ToClient, "SIP/2.0 486").len(), 1);
}

// ----- matching -----

/// §17.2.3: requests with the same branch but another sent-by, or another
/// method, are different transactions; a byte-identical one is a
/// retransmission.
#[test]
fn rfc3261_17_2_3_matching_by_branch_sent_by_and_method() {
    let t0 = Instant::now();
    let mut l = layer();
    let src = peer(ALICE, Transport::Udp);
    let make = |method: &str, sent_by: &str| {
        req(&format!(
            "{method} sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP {sent_by};branch=z9hG4bKsame
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a3
To: <sip:bob@example.com>
Call-ID: match-1
CSeq: 2 {method}
Content-Length: 0

"
        ))
    };
    let mut ids = Vec::new();
    for (method, sent_by) in [
        ("OPTIONS", "10.0.0.1:5060"),
        ("OPTIONS", "10.0.0.1:5070"),
        ("INFO", "10.0.0.1:5060"),
    ] {
        match l.handle_request(t0, make(method, sent_by), src) {
            Some(Incoming::Request { tx, .. }) => ids.push(tx),
            other => panic!("{method} {sent_by}: {other:?}"),
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(l.len(), 3);
    assert_eq!(
        l.handle_request(t0, make("INFO", "10.0.0.1:5060"), src),
        None
    );
    assert_eq!(l.len(), 3);
}

/// §17.1.3: a response matches by top Via branch and CSeq method; the same
/// branch with another CSeq method is stray.
#[test]
fn rfc3261_17_1_3_response_matching_by_branch_and_cseq_method() {
    let t0 = Instant::now();
    let mut l = layer();
    let opt = options("UDP", "z9hG4bKresp");
    let ctx = l
        .send_request(t0, opt.clone(), peer(BOB, Transport::Udp))
        .unwrap();
    let wrong = resp(
        "SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKresp
From: <sip:alice@example.com>;tag=a2
To: <sip:bob@example.com>;tag=x
Call-ID: opt-1@10.0.0.1
CSeq: 7 INFO
Content-Length: 0

",
    );
    assert_eq!(l.handle_response(t0, wrong.clone()), Some(wrong));
    assert_eq!(l.client_state(ctx), Some(ClientState::Trying));
    assert_eq!(l.handle_response(t0, answer(&opt, 200, "OK")), None);
    assert_eq!(statuses(&events(&mut l)), vec![200]);
}

/// §17.2.3: without the magic cookie (RFC 2543) a retransmission is still
/// recognised by Call-ID, CSeq, From tag and top Via.
#[test]
fn rfc3261_17_2_3_rfc2543_fallback_matching() {
    let t0 = Instant::now();
    let mut l = layer();
    let src = peer(ALICE, Transport::Udp);
    let old = invite("UDP", "oldstyle1");
    assert!(matches!(
        l.handle_request(t0, old.clone(), src),
        Some(Incoming::Request { .. })
    ));
    assert_eq!(l.handle_request(t0 + ms(500), old, src), None);
    assert_eq!(l.len(), 1);
}

/// §17.1.4: a transport failure ends the client transactions towards that
/// peer and tells the TU.
#[test]
fn rfc3261_17_1_4_transport_error_ends_client_transactions() {
    let t0 = Instant::now();
    let mut l = layer();
    let bob = peer(BOB, Transport::Tcp);
    let a = l
        .send_request(t0, invite("TCP", "z9hG4bKte1"), bob)
        .unwrap();
    let b = l
        .send_request(t0, options("TCP", "z9hG4bKte2"), bob)
        .unwrap();
    let c = l
        .send_request(t0, options("UDP", "z9hG4bKte3"), peer(BOB, Transport::Udp))
        .unwrap();
    l.handle_transport_error(t0, bob);
    assert_eq!(
        events(&mut l),
        vec![Event::TransportError(a), Event::TransportError(b)]
    );
    assert_eq!(l.len(), 1);
    assert_eq!(l.client_state(c), Some(ClientState::Trying));
}

/// §17 under loss: whatever is lost, every transaction on both sides ends
/// within its timers (no leaks) and the TU sees at most one final response
/// per client transaction.
#[test]
fn rfc3261_17_random_loss_never_leaks() {
    let mut lost = 0;
    for seed in 1..=300u64 {
        let mut p = Pair::new(Transport::Udp);
        p.loss = Some((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, 30));
        let ok = seed % 2 == 0;
        let ictx = p
            .client
            .send_request(p.now, invite("UDP", &format!("z9hG4bKl{seed}")), p.bob())
            .unwrap();
        let octx = p
            .client
            .send_request(p.now, options("UDP", &format!("z9hG4bKo{seed}")), p.bob())
            .unwrap();
        p.deliver();
        let mut finals = 0;
        for _ in 0..10_000 {
            for incoming in std::mem::take(&mut p.incoming) {
                if let Incoming::Request { tx, request } = incoming {
                    let (status, reason) = if ok || request.method != Method::Invite {
                        (200, "OK")
                    } else {
                        (486, "Busy Here")
                    };
                    p.server
                        .send_response(p.now, tx, answer(&request, status, reason))
                        .unwrap();
                }
            }
            for ev in events(&mut p.client) {
                match ev {
                    Event::Response { tx, response } if tx == ictx && response.is_success() => {
                        // The dialog layer ACKs every 2xx (§13.2.2.4).
                        let bob = p.bob();
                        p.client
                            .send_ack(&ack_2xx(&format!("z9hG4bKa{seed}"), "b1"), bob);
                    }
                    Event::Response { tx, response } if tx == octx && response.status >= 200 => {
                        finals += 1;
                    }
                    _ => {}
                }
            }
            p.deliver();
            if p.incoming.is_empty() && !p.step(Duration::from_secs(100)) {
                break;
            }
        }
        for _ in events(&mut p.server) {}
        assert!(finals <= 1, "seed {seed}");
        lost += p.wire.iter().filter(|w| w.3).count();
        assert!(p.client.is_empty() && p.server.is_empty(), "seed {seed}");
        assert_eq!(p.client.poll_timeout(), None);
        assert_eq!(p.server.poll_timeout(), None);
    }
    assert!(lost > 300, "the harness really lost messages ({lost})");
}

/// §9.1: a CANCEL asked for before any provisional response is not sent
/// when a final response arrives first.
#[test]
fn rfc3261_9_1_pending_cancel_dropped_on_final() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("UDP", "z9hG4bKinvP");
    let ctx = l
        .send_request(t0, inv.clone(), peer(BOB, Transport::Udp))
        .unwrap();
    drain(&mut l);
    l.cancel(t0, ctx).unwrap();
    l.handle_response(t0 + ms(100), answer(&inv, 486, "Busy Here"));
    let sent = drain(&mut l);
    assert_eq!(sent.len(), 1);
    assert!(start_line(&sent[0].bytes).starts_with("ACK "));
    assert_eq!(l.cancel(t0, ctx), Err(TransactionError::FinalReceived));
}

/// §17.2.1: the 100 Trying is lost; Timer A retransmits the INVITE, the
/// server absorbs it and sends 100 again, which stops Timer A.
#[test]
fn rfc3261_17_2_1_lost_100_trying_is_resent() {
    let mut p = Pair::new(Transport::Udp);
    p.drop_next(Dir::ToClient, "SIP/2.0 100", 1);
    p.client
        .send_request(p.now, invite("UDP", "z9hG4bKinv100"), p.bob())
        .unwrap();
    p.deliver();
    p.advance(Duration::from_secs(10));
    assert_eq!(p.wire_times(Dir::ToServer, "INVITE"), secs_ms(&[0, 500]));
    assert_eq!(
        p.wire_times(Dir::ToClient, "SIP/2.0 100"),
        secs_ms(&[0, 500])
    );
    assert_eq!(p.incoming.len(), 1);
    assert_eq!(statuses(&events(&mut p.client)), vec![100]);
}

/// The TU's misuse is refused without touching the layer.
#[test]
fn send_errors() {
    let t0 = Instant::now();
    let mut l = layer();
    let bob = peer(BOB, Transport::Udp);
    assert_eq!(
        l.send_request(t0, options("UDP", "nocookie"), bob),
        Err(TransactionError::MissingBranch)
    );
    l.send_request(t0, options("UDP", "z9hG4bKdup"), bob)
        .unwrap();
    assert_eq!(
        l.send_request(t0, options("UDP", "z9hG4bKdup"), bob),
        Err(TransactionError::DuplicateTransaction)
    );
    assert_eq!(
        l.send_response(
            t0,
            ServerTxId(999),
            answer(&options("UDP", "z9hG4bKx"), 200, "OK")
        ),
        Err(TransactionError::UnknownTransaction)
    );
    let opt = options("UDP", "z9hG4bKsrv");
    let Some(Incoming::Request { tx, .. }) =
        l.handle_request(t0, opt.clone(), peer(ALICE, Transport::Udp))
    else {
        panic!()
    };
    l.send_response(t0, tx, answer(&opt, 200, "OK")).unwrap();
    assert_eq!(
        l.send_response(t0, tx, answer(&opt, 200, "OK")),
        Err(TransactionError::FinalSent)
    );
}

/// §8.1.1.7: branches carry the magic cookie and enough randomness.
#[test]
fn rfc3261_8_1_1_7_new_branch_and_tag() {
    let a = new_branch();
    assert!(a.starts_with(MAGIC_COOKIE));
    assert!(a.len() >= MAGIC_COOKIE.len() + 16);
    assert_ne!(a, new_branch());
    let t = new_tag();
    assert!(t.len() >= 8);
    assert_ne!(t, new_tag());
}
