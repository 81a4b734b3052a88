//! Dialog tests with raw SIP text (RFC 3261 §9, §12, §13, §14, §15).

use super::*;
use crate::sip::message::{Limits, Message, parse_message};
use crate::sip::peer::Transport;

fn parse(text: &str) -> Message {
    match parse_message(text.as_bytes(), &Limits::default()) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
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

fn uri(text: &str) -> Uri {
    Uri::parse(text).expect("uri")
}

fn via() -> LocalVia {
    LocalVia::new("switch.example.com:5060", Transport::Udp)
}

/// Re-parses a built message, as the peer would see it.
fn reparse_req(r: &Request) -> Request {
    match parse_message(&r.to_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("built request does not parse: {other:?}"),
    }
}

fn route_uris(r: &Request) -> Vec<String> {
    r.headers
        .routes()
        .expect("Route")
        .iter()
        .map(|na| na.uri.to_string())
        .collect()
}

/// An INVITE from a caller reaching us through two record-routing proxies.
const INCOMING_INVITE: &str = "INVITE sip:1000@switch.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK-p2\r\n\
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK-p1\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-uac\r\n\
Max-Forwards: 68\r\n\
Record-Route: <sip:p2.example.com;lr>\r\n\
Record-Route: <sip:p1.example.com;lr>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=alice-tag\r\n\
To: <sip:1000@switch.example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 101 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn uas_dialog() -> Dialog {
    Dialog::new_uas(
        &req(INCOMING_INVITE),
        "our-tag",
        uri("sip:switch@198.51.100.1:5060"),
    )
    .expect("UAS dialog")
}

/// An in-dialog request from the caller to `uas_dialog`.
fn in_dialog(method: &str, seq: u32, contact: &str, body: &str) -> Request {
    let contact_line = if contact.is_empty() {
        String::new()
    } else {
        format!("Contact: <{contact}>\r\n")
    };
    req(&format!(
        "{method} sip:switch@198.51.100.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{method}-{seq}\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=alice-tag\r\n\
         To: <sip:1000@switch.example.com>;tag=our-tag\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: {seq} {method}\r\n\
         {contact_line}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// RFC 3261 §12.1.1: the UAS dialog takes the Record-Route in order, the
/// Contact as remote target, the CSeq as remote sequence number, To/From as
/// local/remote URI; the local sequence number is empty.
#[test]
fn uas_dialog_from_invite_with_two_record_routes() {
    let d = uas_dialog();
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: "call-1@192.0.2.10".into(),
            local_tag: "our-tag".into(),
            remote_tag: "alice-tag".into(),
        }
    );
    assert_eq!(d.state(), DialogState::Early);
    let routes: Vec<String> = d.route_set().iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(
        routes,
        ["sip:p2.example.com;lr", "sip:p1.example.com;lr"],
        "§12.1.1: Record-Route in order"
    );
    assert_eq!(d.remote_target(), &uri("sip:alice@192.0.2.10:5060"));
    assert_eq!(d.remote_seq(), Some(101));
    assert_eq!(d.local_seq(), None);
    assert_eq!(d.local_uri().uri, uri("sip:1000@switch.example.com"));
    assert_eq!(d.remote_uri().uri, uri("sip:alice@example.com"));
    assert_eq!(d.remote_uri().display.as_deref(), Some("Alice"));
    assert!(d.remote_uri().tag().is_none(), "tags live in the id");
    assert!(!d.secure());
}

/// RFC 3261 §12.1.1: the dialog-creating response carries our To tag, our
/// Contact and the request's Record-Route values in order; sending the 2xx
/// confirms the dialog.
#[test]
fn uas_response_carries_tag_contact_and_record_route() {
    let invite = req(INCOMING_INVITE);
    let mut d = uas_dialog();
    for status in [180, 200] {
        let r = d.response(&invite, status, "x");
        assert_eq!(r.headers.to().expect("To").tag(), Some("our-tag"));
        let contacts = r.headers.contacts().expect("Contact");
        assert_eq!(contacts.len(), 1);
        assert!(
            matches!(&contacts[0], ContactValue::Addr(na) if na.uri == uri("sip:switch@198.51.100.1:5060"))
        );
        let rr: Vec<String> = r
            .headers
            .record_routes()
            .expect("Record-Route")
            .iter()
            .map(|na| na.uri.to_string())
            .collect();
        assert_eq!(rr, ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]);
        assert_eq!(
            r.headers.via().expect("Via").len(),
            3,
            "§8.2.6.2 Via copied"
        );
    }
    let ringing = d.response(&invite, 180, "Ringing");
    d.handle_sent_response(&ringing);
    assert_eq!(d.state(), DialogState::Early);
    let ok = d.response(&invite, 200, "OK");
    d.handle_sent_response(&ok);
    assert_eq!(d.state(), DialogState::Confirmed);
}

/// RFC 3261 §12.3: a final non-2xx to the initial INVITE ends the early
/// UAS dialog.
#[test]
fn uas_failure_ends_early_dialog() {
    let invite = req(INCOMING_INVITE);
    let mut d = uas_dialog();
    let busy = d.response(&invite, 486, "Busy Here");
    assert!(busy.headers.get(&HeaderName::Contact).is_none());
    d.handle_sent_response(&busy);
    assert_eq!(d.state(), DialogState::Terminated);
}

/// RFC 3261 §12.1.1: an INVITE without Contact cannot create a dialog (400).
#[test]
fn uas_invite_without_contact_is_rejected() {
    let text = INCOMING_INVITE.replace("Contact: <sip:alice@192.0.2.10:5060>\r\n", "");
    let err =
        Dialog::new_uas(&req(&text), "t", uri("sip:switch@198.51.100.1")).expect_err("no Contact");
    assert_eq!(err, DialogError::MissingContact);
    assert_eq!(err.status(), 400);
}

/// Our INVITE to an agent, and the responses to it.
const OUTGOING_INVITE: &str = "INVITE sip:agent@example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP switch.example.com:5060;branch=z9hG4bK-ours\r\n\
Max-Forwards: 70\r\n\
Route: <sip:edge.example.net;lr>\r\n\
From: <sip:ivr@switch.example.com>;tag=uac-tag\r\n\
To: \"Agent\" <sip:agent@example.net>\r\n\
Call-ID: call-2@switch.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:ivr@198.51.100.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn answer(status: &str, to_tag: &str, record_route: &str, contact: &str) -> Response {
    let rr = if record_route.is_empty() {
        String::new()
    } else {
        format!("Record-Route: {record_route}\r\n")
    };
    resp(&format!(
        "SIP/2.0 {status}\r\n\
         Via: SIP/2.0/UDP switch.example.com:5060;branch=z9hG4bK-ours\r\n\
         {rr}\
         From: <sip:ivr@switch.example.com>;tag=uac-tag\r\n\
         To: \"Agent\" <sip:agent@example.net>;tag={to_tag}\r\n\
         Call-ID: call-2@switch.example.com\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <{contact}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

const LOOSE_RR: &str = "<sip:p2.example.net;lr>, <sip:p1.example.net;lr>";

fn uac_dialog(record_route: &str) -> Dialog {
    let ok = answer(
        "200 OK",
        "agent-tag",
        record_route,
        "sip:agent@203.0.113.7:5070",
    );
    Dialog::new_uac(&req(OUTGOING_INVITE), &ok).expect("UAC dialog")
}

/// RFC 3261 §12.1.2: the UAC route set is the 2xx's Record-Route reversed;
/// remote target = its Contact; local sequence = the INVITE's CSeq; the
/// remote sequence number is empty.
#[test]
fn uac_dialog_from_200_reverses_record_route() {
    let d = uac_dialog(LOOSE_RR);
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.id().local_tag, "uac-tag");
    assert_eq!(d.id().remote_tag, "agent-tag");
    assert_eq!(d.id().call_id, "call-2@switch.example.com");
    let routes: Vec<String> = d.route_set().iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(routes, ["sip:p1.example.net;lr", "sip:p2.example.net;lr"]);
    assert_eq!(d.remote_target(), &uri("sip:agent@203.0.113.7:5070"));
    assert_eq!(d.local_seq(), Some(314159));
    assert_eq!(d.remote_seq(), None);
    assert_eq!(d.local_contact(), &uri("sip:ivr@198.51.100.1:5060"));
    assert_eq!(d.local_uri().uri, uri("sip:ivr@switch.example.com"));
    assert_eq!(d.remote_uri().display.as_deref(), Some("Agent"));
}

/// RFC 3261 §12.1.2: a 1xx with a To tag makes an early dialog; one without
/// makes none.
#[test]
fn uac_early_dialog_needs_to_tag() {
    let invite = req(OUTGOING_INVITE);
    let ringing = answer("180 Ringing", "agent-tag", "", "sip:agent@203.0.113.7");
    let d = Dialog::new_uac(&invite, &ringing).expect("early");
    assert_eq!(d.state(), DialogState::Early);
    let text = String::from_utf8(ringing.to_bytes())
        .expect("utf8")
        .replace(";tag=agent-tag", "");
    assert_eq!(
        Dialog::new_uac(&invite, &resp(&text)),
        Err(DialogError::MissingToTag)
    );
}

/// RFC 3261 §12.2.1.1 loose routing: Request-URI = remote target, Route =
/// the route set in order; From/To carry the tags; new Via branch.
#[test]
fn bye_with_loose_routing() {
    let mut d = uac_dialog(LOOSE_RR);
    let bye = reparse_req(&d.request(Method::Bye, &via()).expect("BYE"));
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri, uri("sip:agent@203.0.113.7:5070"));
    assert_eq!(
        route_uris(&bye),
        ["sip:p1.example.net;lr", "sip:p2.example.net;lr"]
    );
    let h = &bye.headers;
    assert_eq!(h.from().expect("From").tag(), Some("uac-tag"));
    assert_eq!(h.to().expect("To").tag(), Some("agent-tag"));
    assert_eq!(h.call_id().expect("Call-ID"), "call-2@switch.example.com");
    assert_eq!(h.cseq().expect("CSeq").seq, 314160);
    assert_eq!(h.max_forwards().expect("Max-Forwards"), Some(70));
    let top = h.top_via().expect("Via");
    assert_eq!(top.transport, "UDP");
    assert_eq!(top.sent_by(), "switch.example.com:5060");
    let branch = top.branch().expect("branch");
    assert!(branch.starts_with("z9hG4bK") && branch != "z9hG4bK-ours");
    assert!(h.contacts().is_ok_and(|c| c.len() == 1));
}

/// RFC 3261 §12.2.1.1 strict routing: the first route (no `lr`) becomes the
/// Request-URI, Route = the rest of the route set then the remote target.
#[test]
fn bye_with_strict_routing() {
    let mut d = uac_dialog("<sip:p2.example.net;lr>, <sip:p1.example.net;maddr=192.0.2.99>");
    let bye = reparse_req(&d.request(Method::Bye, &via()).expect("BYE"));
    assert_eq!(bye.uri, uri("sip:p1.example.net;maddr=192.0.2.99"));
    assert_eq!(
        route_uris(&bye),
        ["sip:p2.example.net;lr", "sip:agent@203.0.113.7:5070"]
    );
}

/// RFC 3261 §12.2.1.1 strict routing: parameters a Request-URI may not
/// hold (§19.1.1: `method`, headers) are stripped from the first route.
#[test]
fn strict_route_strips_request_uri_params() {
    let mut d = uac_dialog("<sip:p1.example.net;method=INVITE?X-A=1>");
    let bye = d.request(Method::Bye, &via()).expect("BYE");
    assert_eq!(bye.uri, uri("sip:p1.example.net"));
    assert_eq!(route_uris(&bye), ["sip:agent@203.0.113.7:5070"]);
}

/// RFC 3261 §12.2.1.1: without a route set there is no Route header.
#[test]
fn no_route_set_no_route_header() {
    let mut d = uac_dialog("");
    let info = d.request(Method::Info, &via()).expect("INFO");
    assert_eq!(info.uri, uri("sip:agent@203.0.113.7:5070"));
    assert!(info.headers.get(&HeaderName::Route).is_none());
}

/// RFC 3261 §12.2.1.1: the local CSeq goes up by one per request; a UAS
/// dialog with an empty local sequence number starts at 1 (§8.1.1.5).
#[test]
fn cseq_increments() {
    let mut d = uac_dialog(LOOSE_RR);
    let seqs: Vec<u32> = [Method::Info, Method::Invite, Method::Bye]
        .into_iter()
        .map(|m| {
            let r = d.request(m.clone(), &via()).expect("request");
            let cseq = r.headers.cseq().expect("CSeq");
            assert_eq!(cseq.method, m);
            cseq.seq
        })
        .collect();
    assert_eq!(seqs, [314160, 314161, 314162]);
    assert_eq!(d.local_seq(), Some(314162));
    assert_eq!(
        d.request(Method::Ack, &via()),
        Err(DialogError::AckOrCancel),
        "§13.2.2.4: ACK keeps the INVITE's number"
    );
    assert_eq!(d.local_seq(), Some(314162));

    let mut uas = uas_dialog();
    let bye = uas.request(Method::Bye, &via()).expect("BYE");
    assert_eq!(bye.headers.cseq().expect("CSeq").seq, 1);
    // The UAS side sends to the caller's Contact through p1 then p2.
    assert_eq!(bye.uri, uri("sip:alice@192.0.2.10:5060"));
    assert_eq!(
        route_uris(&bye),
        ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    );
    assert_eq!(bye.headers.from().expect("From").tag(), Some("our-tag"));
    assert_eq!(bye.headers.to().expect("To").tag(), Some("alice-tag"));
}

/// RFC 3261 §13.2.2.4: the ACK for a 2xx has the INVITE's CSeq number and
/// method ACK, routes like any in-dialog request and does not move the
/// local sequence number.
#[test]
fn ack_for_2xx_keeps_invite_cseq() {
    let mut d = uac_dialog(LOOSE_RR);
    let ok = answer(
        "200 OK",
        "agent-tag",
        LOOSE_RR,
        "sip:agent@203.0.113.7:5070",
    );
    let ack = reparse_req(&d.ack_for(&ok, &via()).expect("ACK"));
    assert_eq!(ack.method, Method::Ack);
    let cseq = ack.headers.cseq().expect("CSeq");
    assert_eq!((cseq.seq, cseq.method), (314159, Method::Ack));
    assert_eq!(ack.uri, uri("sip:agent@203.0.113.7:5070"));
    assert_eq!(
        route_uris(&ack),
        ["sip:p1.example.net;lr", "sip:p2.example.net;lr"]
    );
    assert_eq!(d.local_seq(), Some(314159));

    // The ACK of a re-INVITE takes the re-INVITE's number.
    let reinvite = d.request(Method::Invite, &via()).expect("re-INVITE");
    let seq = reinvite.headers.cseq().expect("CSeq").seq;
    let text = String::from_utf8(ok.to_bytes())
        .expect("utf8")
        .replace("314159 INVITE", &format!("{seq} INVITE"));
    let ack = d.ack_for(&resp(&text), &via()).expect("ACK");
    assert_eq!(ack.headers.cseq().expect("CSeq").seq, 314160);
    assert_eq!(d.local_seq(), Some(314160));
}

/// RFC 3261 §9.1: CANCEL has the INVITE's Request-URI, Call-ID, From, To
/// (no tag), top Via (same branch, only that one), CSeq number with method
/// CANCEL, and its Route.
#[test]
fn cancel_built_from_invite() {
    let invite = req(OUTGOING_INVITE);
    let cancel = reparse_req(&cancel_for(&invite));
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    let (h, ih) = (&cancel.headers, &invite.headers);
    let vias = h.via().expect("Via");
    assert_eq!(vias.len(), 1);
    assert_eq!(vias[0].branch(), Some("z9hG4bK-ours"));
    assert_eq!(
        h.call_id().expect("Call-ID"),
        ih.call_id().expect("Call-ID")
    );
    assert_eq!(h.from().expect("From"), ih.from().expect("From"));
    assert_eq!(h.to().expect("To"), ih.to().expect("To"));
    assert!(h.to().expect("To").tag().is_none());
    let cseq = h.cseq().expect("CSeq");
    assert_eq!((cseq.seq, cseq.method), (314159, Method::Cancel));
    assert_eq!(route_uris(&cancel), ["sip:edge.example.net;lr"]);
    assert!(cancel.body.is_empty());
}

/// RFC 3261 §12.2.2: a CSeq lower than the last remote one is out of order
/// (answer 500); higher is accepted and remembered; ACK is not checked.
#[test]
fn lower_remote_cseq_rejected() {
    let mut d = uas_dialog();
    let old = in_dialog("INFO", 100, "", "");
    let err = d.handle_request(&old).expect_err("out of order");
    assert_eq!(
        err,
        DialogError::OutOfOrder {
            got: 100,
            last: 101
        }
    );
    assert_eq!(err.status(), 500);
    assert_eq!(err.response_to(&old).status, 500);
    assert_eq!(d.remote_seq(), Some(101));
    d.handle_request(&in_dialog("ACK", 101, "", ""))
        .expect("ACK of the INVITE");
    d.handle_request(&in_dialog("INFO", 102, "", ""))
        .expect("in order");
    assert_eq!(d.remote_seq(), Some(102));
}

/// RFC 3261 §12.2.2, §14.2: a re-INVITE replaces the remote target with its
/// Contact; a non-target-refresh request does not.
#[test]
fn reinvite_updates_remote_target() {
    let mut d = uas_dialog();
    d.handle_request(&in_dialog("INFO", 102, "sip:alice@192.0.2.55:5060", ""))
        .expect("INFO");
    assert_eq!(d.remote_target(), &uri("sip:alice@192.0.2.10:5060"));
    let sdp = "v=0\r\no=a 1 2 IN IP4 192.0.2.66\r\ns=-\r\nc=IN IP4 192.0.2.66\r\n\
               t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
    let reinvite = in_dialog("INVITE", 103, "sip:alice@192.0.2.66:5062", sdp);
    d.handle_request(&reinvite).expect("re-INVITE");
    assert_eq!(d.remote_target(), &uri("sip:alice@192.0.2.66:5062"));
    assert_eq!(d.remote_seq(), Some(103));
    assert_eq!(hold_state(&reinvite.body), HoldState::Held);
    // Our reply to the re-INVITE keeps our tag and Contact.
    let ok = d.response(&reinvite, 200, "OK");
    assert_eq!(ok.headers.to().expect("To").tag(), Some("our-tag"));
    assert!(ok.headers.get(&HeaderName::Contact).is_some());
}

/// RFC 3261 §15.1.2: BYE terminates the dialog; later requests get 481
/// (§12.2.2).
#[test]
fn bye_terminates() {
    let mut d = uas_dialog();
    d.handle_request(&in_dialog("BYE", 102, "", ""))
        .expect("BYE");
    assert!(d.is_terminated());
    let err = d
        .handle_request(&in_dialog("INFO", 103, "", ""))
        .expect_err("gone");
    assert_eq!(err.status(), 481);
}

/// RFC 3261 §12.2.2: a request whose Call-ID or tags name another dialog
/// does not match (481); CANCEL never matches (§9.2).
#[test]
fn request_for_unknown_dialog_gets_481() {
    let mut d = uas_dialog();
    let good = in_dialog("INFO", 102, "", "");
    assert!(d.matches_request(&good));
    let text = String::from_utf8(good.to_bytes()).expect("utf8");
    for bad in [
        text.replace("tag=our-tag", "tag=other-tag"),
        text.replace("tag=alice-tag", "tag=mallory"),
        text.replace("call-1@", "call-9@"),
    ] {
        let bad = req(&bad);
        assert!(!d.matches_request(&bad));
        assert_eq!(d.handle_request(&bad), Err(DialogError::NoSuchDialog));
        let r = no_such_dialog(&bad);
        assert_eq!(r.status, 481);
    }
    let cancel = req(&text.replace("INFO", "CANCEL").replace(";tag=our-tag", ""));
    assert!(!d.matches_request(&cancel));
}

/// RFC 3261 §12.2.2: the set finds a dialog by Call-ID + To tag (ours) +
/// From tag (theirs); a request without a To tag is out of dialog.
#[test]
fn dialog_set_finds_by_id() {
    let mut set = DialogSet::new();
    set.insert(uas_dialog());
    set.insert(uac_dialog(LOOSE_RR));
    assert_eq!(set.len(), 2);
    let info = in_dialog("INFO", 102, "", "");
    let d = set.find_for_request(&info).expect("found");
    assert_eq!(d.id().local_tag, "our-tag");
    d.handle_request(&info).expect("INFO");
    assert!(set.find_for_request(&req(INCOMING_INVITE)).is_none());
    let text = String::from_utf8(info.to_bytes())
        .expect("utf8")
        .replace("tag=our-tag", "tag=nope");
    assert!(set.find_for_request(&req(&text)).is_none());
    let ok = answer("200 OK", "agent-tag", "", "sip:agent@203.0.113.7");
    assert_eq!(
        set.find_for_response(&ok)
            .map(|d| d.id().remote_tag.clone()),
        Some("agent-tag".into())
    );
}

/// RFC 3261 §12.1.2, §13.2.2.4: a forked INVITE gets one early dialog per
/// To tag; a 2xx confirms its dialog and recomputes its route set and
/// remote target; a final failure ends the remaining early dialogs (§12.3).
#[test]
fn forked_early_dialogs() {
    let invite = req(OUTGOING_INVITE);
    let mut set = DialogSet::new();
    let r1 = answer(
        "180 Ringing",
        "fork-a",
        "<sip:pa.example.net;lr>",
        "sip:a@203.0.113.1",
    );
    let r2 = answer("183 Session Progress", "fork-b", "", "sip:b@203.0.113.2");
    let trying = answer("100 Trying", "fork-c", "", "sip:c@203.0.113.3");
    assert!(set.handle_uac_response(&invite, &r1).expect("a").is_some());
    assert!(set.handle_uac_response(&invite, &r2).expect("b").is_some());
    assert!(
        set.handle_uac_response(&invite, &trying)
            .expect("100")
            .is_none()
    );
    assert!(
        set.handle_uac_response(&invite, &r1)
            .expect("again")
            .is_some()
    );
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|d| d.state() == DialogState::Early));

    let ok = answer("200 OK", "fork-a", LOOSE_RR, "sip:a@203.0.113.1:5080");
    let d = set
        .handle_uac_response(&invite, &ok)
        .expect("2xx")
        .expect("dialog");
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.remote_target(), &uri("sip:a@203.0.113.1:5080"));
    let routes: Vec<String> = d.route_set().iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(routes, ["sip:p1.example.net;lr", "sip:p2.example.net;lr"]);

    let busy = answer("486 Busy Here", "fork-b", "", "sip:b@203.0.113.2");
    assert!(
        set.handle_uac_response(&invite, &busy)
            .expect("486")
            .is_none()
    );
    let states: Vec<(String, DialogState)> = {
        let mut v: Vec<_> = set
            .iter()
            .map(|d| (d.id().remote_tag.clone(), d.state()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        states,
        [
            ("fork-a".to_owned(), DialogState::Confirmed),
            ("fork-b".to_owned(), DialogState::Terminated)
        ]
    );
    set.remove_terminated();
    assert_eq!(set.len(), 1);
}

/// RFC 3261 §12.2.1.2: a 2xx to our re-INVITE updates the remote target; a
/// 481 to an in-dialog request ends the dialog.
#[test]
fn uac_response_handling() {
    let mut d = uac_dialog(LOOSE_RR);
    let reinvite = d.request(Method::Invite, &via()).expect("re-INVITE");
    let seq = reinvite.headers.cseq().expect("CSeq").seq;
    let ok = answer("200 OK", "agent-tag", "", "sip:agent@203.0.113.9:5070");
    let text = String::from_utf8(ok.to_bytes())
        .expect("utf8")
        .replace("314159 INVITE", &format!("{seq} INVITE"));
    d.handle_response(&resp(&text)).expect("2xx");
    assert_eq!(d.remote_target(), &uri("sip:agent@203.0.113.9:5070"));
    assert_eq!(d.route_set().len(), 2, "confirmed route set unchanged");
    let gone = resp(
        &text
            .replace("200 OK", "481 Call/Transaction Does Not Exist")
            .replace(&format!("{seq} INVITE"), &format!("{} INFO", seq + 1)),
    );
    d.handle_response(&gone).expect("481");
    assert!(d.is_terminated());
}

/// RFC 3261 §12.1.1: a `sips:` Request-URI marks the dialog secure (the
/// switch has no TLS transport to check against).
#[test]
fn sips_request_uri_sets_secure() {
    let text = INCOMING_INVITE.replace(
        "INVITE sip:1000@switch.example.com",
        "INVITE sips:1000@switch.example.com",
    );
    let d = Dialog::new_uas(&req(&text), "t", uri("sips:switch@198.51.100.1")).expect("UAS dialog");
    assert!(d.secure());
}
