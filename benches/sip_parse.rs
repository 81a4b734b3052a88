//! Parse + serialize of a typical INVITE with SDP (DESIGN §9: the parser
//! must not be what limits call setup rate). Target: ≥ 500k messages/s on
//! one core.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use switchboard::sip::message::{Limits, Message, parse_message};

const SDP: &str = "v=0\r
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r
s=-\r
c=IN IP4 192.0.2.10\r
t=0 0\r
m=audio 49170 RTP/AVP 0 8 101\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-15\r
a=ptime:20\r
a=rtcp:49171 IN IP4 192.0.2.10\r
a=maxptime:40\r
a=sendrecv\r
";

fn invite() -> Vec<u8> {
    let head = format!(
        "INVITE sip:+14155550100@switch.example.com SIP/2.0\r
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r
Max-Forwards: 70\r
From: \"Alice Caller\" <sip:+14155550123@carrier.example.net>;tag=1928301774\r
To: <sip:+14155550100@switch.example.com>\r
Call-ID: a84b4c76e66710f2c9d1@192.0.2.10\r
CSeq: 314159 INVITE\r
Contact: <sip:+14155550123@192.0.2.10:5060;transport=udp>\r
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY\r
Supported: replaces, timer, 100rel\r
User-Agent: ExampleGateway/4.2.1 (build 2026-11-02; linux x86_64)\r
Content-Type: application/sdp\r
Content-Length: {}\r
\r
",
        SDP.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(SDP.as_bytes());
    out
}

fn bench(c: &mut Criterion) {
    let bytes = invite();
    let limits = Limits::default();
    assert!(matches!(
        parse_message(&bytes, &limits),
        Ok(Message::Request(_))
    ));
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        format!("parse+serialize INVITE {} bytes", bytes.len()),
        |b| {
            b.iter(|| {
                let msg = parse_message(black_box(&bytes), &limits).expect("valid");
                black_box(msg.to_bytes())
            })
        },
    );
    g.bench_function("parse only", |b| {
        b.iter(|| parse_message(black_box(&bytes), &limits).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
