//! REGISTER processing (RFC 3261 §10.3) with digest authentication
//! (RFC 3261 §22.4, RFC 7616, RFC 8760) and failure throttling (DESIGN §10).
//!
//! The account lookup is asynchronous in the switch, so a REGISTER takes
//! two calls: [`Registrar::account_needed`] names the login to load, then
//! [`Registrar::handle_register`] gets the loaded [`Account`] (or `None`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};

use super::bindings::{
    Binding, BindingError, BindingEvent, Bindings, ContactUpdate, UpdateOrigin, percent_decode,
};
use super::digest::{Credentials, DigestAlgorithm, DigestError, challenges};
use super::nonce::{NcCheck, NonceCounts, NonceMint, NonceState};
use super::throttle::{Throttle, ThrottleConfig, ThrottleVerdict};
use crate::sip::message::{ContactValue, HeaderName, Method, Request, Response, Scheme, Uri};
use crate::sip::peer::Peer;

/// Registrar settings.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Used when neither the contact nor the request says (§10.2.1.1).
    pub default_expires: u32,
    /// Shorter non-zero requests get 423 with this Min-Expires (§10.3 step 7).
    pub min_expires: u32,
    /// Longer requests are shortened to this (§10.3 step 7).
    pub max_expires: u32,
    pub nonce_lifetime: Duration,
    pub max_contacts_per_login: usize,
    pub max_tracked_nonces: usize,
    pub throttle: ThrottleConfig,
    /// Algorithms challenged with, most preferred first (RFC 8760 §2.4);
    /// credentials using any other are challenged again.
    pub algorithms: Vec<DigestAlgorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> RegistrarConfig {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            nonce_lifetime: NonceMint::DEFAULT_LIFETIME,
            max_contacts_per_login: 16,
            max_tracked_nonces: NonceCounts::DEFAULT_CAPACITY,
            throttle: ThrottleConfig::default(),
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        }
    }
}

/// An agent's digest credentials as stored (HA1 only, DESIGN §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub login: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl Account {
    /// The stored HA1 for `algorithm`.
    pub fn ha1(&self, algorithm: DigestAlgorithm) -> &str {
        match algorithm {
            DigestAlgorithm::Md5 => &self.ha1_md5,
            DigestAlgorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// What the driver does with the answer to a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send now.
    Send(Response),
    /// Send after this delay (the source has failed repeatedly).
    Delay(Response, Duration),
    /// The source is banned: send nothing.
    Drop,
}

/// Wall-clock anchor: the epoch milliseconds at one `Instant`, so nonces
/// carry wall time (valid across nodes sharing the secret) while every
/// input stays a plain `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct ClockAnchor {
    pub instant: Instant,
    pub unix_ms: i64,
}

impl ClockAnchor {
    fn unix_ms(&self, now: Instant) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match now.checked_duration_since(self.instant) {
            Some(d) => self.unix_ms.saturating_add(ms(d)),
            None => self
                .unix_ms
                .saturating_sub(ms(self.instant.duration_since(now))),
        }
    }
}

/// How often tables of nonces and throttled sources are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Result of checking a request's credentials.
enum Auth {
    Ok,
    /// Answer 401 with fresh challenges; `failure` counts for the throttle.
    Challenge {
        stale: bool,
        failure: bool,
    },
    /// Answer with this status; `failure` counts for the throttle.
    Reject {
        status: u16,
        reason: &'static str,
        failure: bool,
    },
}

/// Which digest exchange (RFC 3261 §22.2, §22.3): a registrar answers 401
/// with WWW-Authenticate and reads Authorization; calls are challenged
/// 407 with Proxy-Authenticate and answer with Proxy-Authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    Registrar,
    Proxy,
}

impl AuthKind {
    fn credentials_header(self) -> HeaderName {
        match self {
            AuthKind::Registrar => HeaderName::Authorization,
            AuthKind::Proxy => HeaderName::ProxyAuthorization,
        }
    }

    fn challenge(self) -> (u16, &'static str, HeaderName) {
        match self {
            AuthKind::Registrar => (401, "Unauthorized", HeaderName::WwwAuthenticate),
            AuthKind::Proxy => (
                407,
                "Proxy Authentication Required",
                HeaderName::ProxyAuthenticate,
            ),
        }
    }

    fn malformed_reason(self) -> &'static str {
        match self {
            AuthKind::Registrar => "Bad Request (Malformed Authorization header)",
            AuthKind::Proxy => "Bad Request (Malformed Proxy-Authorization header)",
        }
    }
}

/// The registrar core: sans-IO, time is an input.
pub struct Registrar {
    config: RegistrarConfig,
    secret: [u8; 32],
    clock: ClockAnchor,
    rng: StdRng,
    mint: NonceMint,
    counts: NonceCounts,
    throttle: Throttle,
    bindings: Bindings,
    next_sweep: Instant,
}

impl Registrar {
    /// `secret` keys nonces and To tags (share it between nodes so nonces
    /// verify anywhere); `seed` seeds the nonce randomness.
    pub fn new(
        config: RegistrarConfig,
        secret: [u8; 32],
        seed: [u8; 32],
        clock: ClockAnchor,
    ) -> Registrar {
        Registrar {
            mint: NonceMint::new(secret, config.nonce_lifetime),
            counts: NonceCounts::new(config.max_tracked_nonces),
            throttle: Throttle::new(config.throttle.clone()),
            bindings: Bindings::new(config.max_contacts_per_login),
            next_sweep: clock.instant + SWEEP_EVERY,
            rng: StdRng::from_seed(seed),
            config,
            secret,
            clock,
        }
    }

    /// The agent login a REGISTER is for (the user part of To, §10.3 step
    /// 3), or the answer when there is none: 400 for a To that is not a
    /// sip/sips URI (RFC 4475 §3.3.14 unksm2), 404 when it has no user.
    pub fn account_needed(&self, req: &Request) -> Result<String, Response> {
        if req.method != Method::Register {
            return Err(self.reply(req, 405, "Method Not Allowed"));
        }
        let to = match req.headers.to() {
            Ok(to) => to,
            Err(kind) => return Err(self.reply(req, 400, &format!("Bad Request ({kind})"))),
        };
        if !matches!(to.uri.scheme, Scheme::Sip | Scheme::Sips) {
            return Err(self.reply(req, 400, "Bad Request (To is not a SIP URI)"));
        }
        match to.uri.user.as_deref().map(percent_decode) {
            Some(login) if !login.is_empty() => Ok(login),
            _ => Err(self.reply(req, 404, "Not Found")),
        }
    }

    /// Whether answers to `ip` are dropped; lets the driver skip the
    /// account lookup for banned sources.
    pub fn is_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.throttle.is_banned(now, ip)
    }

    /// Processes a REGISTER (RFC 3261 §10.3) from `source` with the account
    /// loaded for [`Registrar::account_needed`]'s login.
    pub fn handle_register(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        account: Option<&Account>,
    ) -> Verdict {
        self.sweep(now);
        let ip = source.addr.ip();
        if self.throttle.is_banned(now, ip) {
            return Verdict::Drop;
        }
        let (response, failure) = self.process(now, req, source, account);
        let verdict = if failure {
            self.throttle.record_failure(now, ip)
        } else {
            self.throttle.verdict(now, ip)
        };
        match verdict {
            ThrottleVerdict::Allow => Verdict::Send(response),
            ThrottleVerdict::Delay(d) => Verdict::Delay(response, d),
            ThrottleVerdict::Ban => Verdict::Drop,
        }
    }

    /// The response and whether it counts as an authentication failure.
    fn process(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        account: Option<&Account>,
    ) -> (Response, bool) {
        let login = match self.account_needed(req) {
            Ok(login) => login,
            Err(resp) => return (resp, false),
        };
        let Some(account) = account.filter(|a| a.login == login) else {
            return (self.reply(req, 404, "Not Found"), true);
        };
        match self.authenticate(now, req, account, AuthKind::Registrar) {
            Auth::Ok => {}
            Auth::Challenge { stale, failure } => {
                let resp = self.challenge(now, req, &account.realm, stale, AuthKind::Registrar);
                return (resp, failure);
            }
            Auth::Reject {
                status,
                reason,
                failure,
            } => return (self.reply(req, status, reason), failure),
        }
        self.throttle.record_success(now, source.addr.ip());
        (self.update_bindings(now, req, source, &login), false)
    }

    /// §10.3 steps 2–3 with digest (RFC 7616 §3.4): the first `Digest`
    /// credentials for the account's realm are checked.
    fn authenticate(
        &mut self,
        now: Instant,
        req: &Request,
        account: &Account,
        kind: AuthKind,
    ) -> Auth {
        let no_credentials = Auth::Challenge {
            stale: false,
            failure: false,
        };
        let mut found = None;
        for value in req.headers.get_all(&kind.credentials_header()) {
            match Credentials::parse(value) {
                Ok(Some(c)) if c.realm == account.realm => {
                    found = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(DigestError::UnsupportedAlgorithm) => {}
                Err(_) => {
                    return Auth::Reject {
                        status: 400,
                        reason: kind.malformed_reason(),
                        failure: true,
                    };
                }
            }
        }
        let Some(creds) = found else {
            return no_credentials;
        };
        if creds.username != account.login {
            return Auth::Reject {
                status: 403,
                reason: "Forbidden",
                failure: true,
            };
        }
        let now_ms = self.clock.unix_ms(now);
        let state = self.mint.check(&creds.nonce, now_ms);
        if state == NonceState::Invalid {
            return no_credentials;
        }
        if !self.config.algorithms.contains(&creds.algorithm) {
            return no_credentials;
        }
        let method = req.method.as_str();
        if creds.expected_response(method, "").is_none() {
            // No qop=auth: the RFC 2069 form is not accepted.
            return no_credentials;
        }
        if !creds.verify(method, account.ha1(creds.algorithm)) {
            return Auth::Challenge {
                stale: false,
                failure: true,
            };
        }
        if !digest_uri_matches(&creds.uri, &req.uri) {
            return Auth::Reject {
                status: 400,
                reason: "Bad Request (Digest URI does not match)",
                failure: false,
            };
        }
        let NonceState::Fresh { id, issued_at_ms } = state else {
            return Auth::Challenge {
                stale: true,
                failure: false,
            };
        };
        let nc = creds.nonce_count().unwrap_or(0);
        match self
            .counts
            .check(id, issued_at_ms, nc, now_ms, self.mint.lifetime_ms())
        {
            NcCheck::Accepted => Auth::Ok,
            NcCheck::Replay | NcCheck::Forgotten => Auth::Challenge {
                stale: true,
                failure: false,
            },
        }
    }

    /// 401 (or 407 for calls) with a new nonce and one challenge per
    /// configured algorithm (RFC 8760 §2.4).
    fn challenge(
        &mut self,
        now: Instant,
        req: &Request,
        realm: &str,
        stale: bool,
        kind: AuthKind,
    ) -> Response {
        let mut random = [0u8; 12];
        self.rng.fill_bytes(&mut random);
        let nonce = self.mint.issue(self.clock.unix_ms(now), random);
        let (status, reason, header) = kind.challenge();
        let mut resp = self.reply(req, status, reason);
        for value in challenges(&self.config.algorithms, realm, &nonce, stale) {
            resp.headers.push(header.clone(), value);
        }
        resp
    }

    /// The username of the first digest `Proxy-Authorization` of a request
    /// from an untrusted caller (RFC 3261 §22.3), to load its account.
    pub fn caller_login(&self, req: &Request) -> Option<String> {
        req.headers
            .get_all(&HeaderName::ProxyAuthorization)
            .find_map(|v| Credentials::parse(v).ok().flatten())
            .map(|c| c.username)
    }

    /// Authenticates a call (INVITE) from a source that is not a trusted
    /// peer (DESIGN §3): `Ok(login)` when its `Proxy-Authorization` proves
    /// the account; otherwise the 407 challenge (RFC 3261 §22.3), or the
    /// refusal, to send. Failures count towards the source's throttle like
    /// REGISTER's.
    pub fn authorize_call(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        realm: &str,
        account: Option<&Account>,
    ) -> Result<String, Verdict> {
        self.sweep(now);
        let ip = source.addr.ip();
        if self.throttle.is_banned(now, ip) {
            return Err(Verdict::Drop);
        }
        let (response, failure) = match account {
            None => {
                let attempted = self.caller_login(req).is_some();
                (
                    self.challenge(now, req, realm, false, AuthKind::Proxy),
                    attempted,
                )
            }
            Some(account) => match self.authenticate(now, req, account, AuthKind::Proxy) {
                Auth::Ok => {
                    self.throttle.record_success(now, ip);
                    return Ok(account.login.clone());
                }
                Auth::Challenge { stale, failure } => (
                    self.challenge(now, req, &account.realm, stale, AuthKind::Proxy),
                    failure,
                ),
                Auth::Reject {
                    status,
                    reason,
                    failure,
                } => (self.reply(req, status, reason), failure),
            },
        };
        let verdict = if failure {
            self.throttle.record_failure(now, ip)
        } else {
            self.throttle.verdict(now, ip)
        };
        Err(match verdict {
            ThrottleVerdict::Allow => Verdict::Send(response),
            ThrottleVerdict::Delay(d) => Verdict::Delay(response, d),
            ThrottleVerdict::Ban => Verdict::Drop,
        })
    }

    /// §10.3 steps 5–8 for an authenticated request.
    fn update_bindings(
        &mut self,
        now: Instant,
        req: &Request,
        source: Peer,
        login: &str,
    ) -> Response {
        let (call_id, cseq) = match (req.headers.call_id(), req.headers.cseq()) {
            (Ok(call_id), Ok(cseq)) => (call_id.to_owned(), cseq.seq),
            (Err(kind), _) | (_, Err(kind)) => {
                return self.reply(req, 400, &format!("Bad Request ({kind})"));
            }
        };
        let contacts = match req.headers.contacts() {
            Ok(c) => c,
            Err(kind) => return self.reply(req, 400, &format!("Bad Request ({kind})")),
        };
        // A malformed Expires counts as 3600 (§20.19).
        let header_expires = match req.headers.expires() {
            Ok(e) => e,
            Err(_) => Some(3600),
        };
        let origin = UpdateOrigin {
            call_id: &call_id,
            cseq,
            source,
        };
        let star = contacts.iter().any(|c| matches!(c, ContactValue::Star));
        let result = if star {
            // §10.3 step 6: `*` alone, with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return self.reply(req, 400, "Bad Request (Contact * needs Expires: 0)");
            }
            self.bindings.remove_all(login, origin)
        } else {
            let mut updates = Vec::with_capacity(contacts.len());
            for c in contacts {
                let ContactValue::Addr(contact) = c else {
                    continue;
                };
                let requested = match contact.params.get("expires") {
                    Some(value) => parse_delta(value.unwrap_or("")),
                    None => header_expires.unwrap_or(self.config.default_expires),
                };
                if requested != 0 && requested < self.config.min_expires {
                    let mut resp = self.reply(req, 423, "Interval Too Brief");
                    resp.headers
                        .push(HeaderName::MinExpires, self.config.min_expires.to_string());
                    return resp;
                }
                let q = contact.params.get("q").flatten().and_then(parse_q);
                let instance = contact
                    .params
                    .get("+sip.instance")
                    .flatten()
                    .map(|v| v.trim_matches('"').to_owned());
                updates.push(ContactUpdate {
                    contact,
                    expires: requested.min(self.config.max_expires),
                    q,
                    instance,
                });
            }
            if updates.is_empty() {
                Ok(())
            } else {
                self.bindings.apply(now, login, origin, updates)
            }
        };
        match result {
            Ok(()) => {}
            Err(BindingError::OutOfOrder) => {
                return self.reply(req, 500, "Server Internal Error (Out of order REGISTER)");
            }
            Err(BindingError::TooMany) => {
                return self.reply(req, 403, "Forbidden (Too many contacts)");
            }
        }
        let mut resp = self.reply(req, 200, "OK");
        for b in self.bindings.contacts(login) {
            if b.expires_at <= now {
                continue;
            }
            let mut contact = b.contact.clone();
            contact
                .params
                .set("expires", Some(&b.remaining_secs(now).to_string()));
            resp.headers.push(HeaderName::Contact, contact.to_string());
        }
        resp
    }

    /// A response to `req` with a To tag (§8.2.6.2); the tag is derived
    /// from the request so a retransmission gets the same one.
    fn reply(&self, req: &Request, status: u16, reason: &str) -> Response {
        let mut resp = Response::for_request(req, status, reason);
        if let Ok(mut to) = resp.headers.to()
            && to.tag().is_none()
        {
            let mut h = Sha256::new();
            h.update(self.secret);
            for name in [HeaderName::CallId, HeaderName::From, HeaderName::CSeq] {
                h.update(req.headers.get(&name).unwrap_or("").as_bytes());
                h.update([0]);
            }
            let digest = h.finalize();
            let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            to.params.set("tag", Some(&tag));
            resp.headers.set(HeaderName::To, to.to_string());
        }
        resp
    }

    fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_EVERY;
        self.counts
            .purge(self.clock.unix_ms(now), self.mint.lifetime_ms());
        self.throttle.purge(now);
    }

    /// Expires bindings and sweeps the bounded tables.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.bindings.handle_timeout(now);
        self.sweep(now);
    }

    /// The next instant [`Registrar::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.bindings.poll_timeout() {
            Some(t) => t.min(self.next_sweep),
            None => self.next_sweep,
        })
    }

    /// Agents becoming reachable or unreachable, for presence.
    pub fn poll_event(&mut self) -> Option<BindingEvent> {
        self.bindings.poll_event()
    }

    /// Live bindings of an agent, to route calls to (RFC 3261 §10.3 step 8).
    pub fn contacts(&self, login: &str) -> Vec<Binding> {
        self.bindings.contacts(login).to_vec()
    }
}

/// Delta-seconds (§25.1), saturating; anything malformed counts as 3600.
fn parse_delta(text: &str) -> u32 {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return 3600;
    }
    text.parse::<u32>().unwrap_or(u32::MAX)
}

/// A qvalue (§20.10) in thousandths.
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

/// RFC 7616 §3.4.6: the digest-uri must name the Request-URI. Scheme,
/// user, host and port are compared; parameters may differ.
fn digest_uri_matches(digest_uri: &str, request_uri: &Uri) -> bool {
    let Ok(uri) = Uri::parse(digest_uri) else {
        return false;
    };
    // Some clients (SIPp among them) send the bare `sip:host:port` of the
    // target as digest-uri for every request; a user part, when present,
    // must match.
    let user_matches = match uri.user.as_deref() {
        None => true,
        Some(user) => Some(percent_decode(user)) == request_uri.user.as_deref().map(percent_decode),
    };
    uri.scheme == request_uri.scheme
        && user_matches
        && uri.host.eq_ignore_ascii_case(&request_uri.host)
        && uri.port == request_uri.port
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, Message, NameAddr, parse_message};
    use crate::sip::peer::Transport;
    use crate::sip::registrar::digest::ha1;

    const REALM: &str = "example.com";
    const PASSWORD: &str = "secret";

    fn peer(ip: &str) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: format!("{ip}:5060").parse().unwrap(),
        }
    }

    fn parse(text: &str) -> Request {
        let bytes = text.replace('\n', "\r\n");
        match parse_message(bytes.as_bytes(), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// A REGISTER for alice; `headers` are extra lines (Contact, Expires,
    /// Authorization), each ending in a newline.
    fn register(call_id: &str, cseq: u32, headers: &str) -> String {
        format!(
            "REGISTER sip:example.com SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{call_id}-{cseq}\n\
             Max-Forwards: 70\n\
             From: <sip:alice@example.com>;tag=a1\n\
             To: <sip:alice@example.com>\n\
             Call-ID: {call_id}\n\
             CSeq: {cseq} REGISTER\n\
             {headers}\
             Content-Length: 0\n\n"
        )
    }

    fn authorization(
        alg: DigestAlgorithm,
        username: &str,
        password: &str,
        nonce: &str,
        nc: u32,
        uri: &str,
    ) -> String {
        let ha1 = ha1(alg, username, REALM, password);
        let ha2 = alg.hex(format!("REGISTER:{uri}").as_bytes());
        let nc = format!("{nc:08x}");
        let cnonce = "0a4f113b";
        let response = alg.hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
        format!(
            "Authorization: Digest username=\"{username}\", realm=\"{REALM}\", \
             nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", \
             algorithm={}, cnonce=\"{cnonce}\", qop=auth, nc={nc}\n",
            alg.as_str()
        )
    }

    fn nonce_of(resp: &Response) -> String {
        let line = resp
            .headers
            .get(&HeaderName::WwwAuthenticate)
            .expect("challenge");
        let start = line.find("nonce=\"").expect("nonce") + 7;
        let len = line[start..].find('"').expect("end quote");
        line[start..start + len].to_owned()
    }

    fn response(v: Verdict) -> Response {
        match v {
            Verdict::Send(r) => r,
            other => panic!("expected an immediate answer, got {other:?}"),
        }
    }

    /// (host, expires) of each Contact in a 200.
    fn listed(resp: &Response) -> Vec<(String, String)> {
        let mut out: Vec<_> = resp
            .headers
            .get_all(&HeaderName::Contact)
            .map(|v| {
                let na = NameAddr::parse(v).unwrap();
                let e = na.params.get("expires").flatten().unwrap_or("").to_owned();
                (na.uri.host, e)
            })
            .collect();
        out.sort();
        out
    }

    struct Fx {
        reg: Registrar,
        t0: Instant,
        account: Account,
        nonce: String,
        nc: u32,
    }

    impl Fx {
        fn new() -> Fx {
            let t0 = Instant::now();
            let reg = Registrar::new(
                RegistrarConfig::default(),
                [9; 32],
                [3; 32],
                ClockAnchor {
                    instant: t0,
                    unix_ms: 1_790_000_000_000,
                },
            );
            let account = Account {
                login: "alice".into(),
                realm: REALM.into(),
                ha1_md5: ha1(DigestAlgorithm::Md5, "alice", REALM, PASSWORD),
                ha1_sha256: ha1(DigestAlgorithm::Sha256, "alice", REALM, PASSWORD),
            };
            Fx {
                reg,
                t0,
                account,
                nonce: String::new(),
                nc: 0,
            }
        }

        fn at(&self, secs: u64) -> Instant {
            self.t0 + Duration::from_secs(secs)
        }

        fn send_from(&mut self, secs: u64, text: &str, src: Peer) -> Verdict {
            let req = parse(text);
            let login = self.reg.account_needed(&req);
            let account = match login {
                Ok(l) if l == self.account.login => Some(self.account.clone()),
                _ => None,
            };
            self.reg
                .handle_register(self.at(secs), &req, src, account.as_ref())
        }

        fn send(&mut self, secs: u64, text: &str) -> Response {
            response(self.send_from(secs, text, peer("192.0.2.10")))
        }

        /// Gets a fresh nonce from a 401.
        fn challenge(&mut self, secs: u64) -> Response {
            let resp = self.send(secs, &register("challenge", 1, ""));
            assert_eq!(resp.status, 401);
            self.nonce = nonce_of(&resp);
            self.nc = 0;
            resp
        }

        /// An authorized REGISTER with the current nonce and the next nc.
        fn authed(&mut self, secs: u64, call_id: &str, cseq: u32, headers: &str) -> Response {
            self.nc += 1;
            let auth = authorization(
                DigestAlgorithm::Sha256,
                "alice",
                PASSWORD,
                &self.nonce,
                self.nc,
                "sip:example.com",
            );
            self.send(secs, &register(call_id, cseq, &format!("{headers}{auth}")))
        }
    }

    /// RFC 3261 §22.4 / RFC 8760 §2.4: no credentials → 401 with a SHA-256
    /// and then an MD5 challenge, qop="auth", and a To tag (§8.2.6.2).
    #[test]
    fn unauthenticated_register_is_challenged() {
        let mut fx = Fx::new();
        let resp = fx.challenge(0);
        let lines: Vec<_> = resp.headers.get_all(&HeaderName::WwwAuthenticate).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("Digest realm=\"example.com\", nonce=\""));
        assert!(lines[0].contains("algorithm=SHA-256, qop=\"auth\""));
        assert!(lines[1].contains("algorithm=MD5, qop=\"auth\""));
        assert!(!lines[0].contains("stale"));
        assert_eq!(nonce_of(&resp).len(), 72);
        assert!(resp.headers.to().unwrap().tag().is_some());
        // Challenges do not count as failures.
        for _ in 0..30 {
            fx.challenge(0);
        }
        assert!(!fx.reg.is_banned(fx.at(0), "192.0.2.10".parse().unwrap()));
    }

    /// RFC 3261 §10.3 steps 7–8: register, refresh, unregister with
    /// expires=0, expiry on timeout; presence events follow (DESIGN §3).
    #[test]
    fn register_refresh_unregister_expire() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let ok = fx.authed(0, "c1", 1, "Contact: <sip:alice@192.0.2.10:5060>\n");
        assert_eq!(ok.status, 200);
        assert_eq!(listed(&ok), vec![("192.0.2.10".into(), "3600".into())]);
        assert_eq!(
            fx.reg.poll_event(),
            Some(BindingEvent::Registered {
                login: "alice".into()
            })
        );
        let b = fx.reg.contacts("alice");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].source, peer("192.0.2.10"));
        assert_eq!(b[0].call_id, "c1");
        assert_eq!(fx.reg.poll_timeout(), Some(fx.at(60)), "sweep first");

        // Refresh with Expires header; a second phone with a contact param.
        let ok = fx.authed(
            100,
            "c1",
            2,
            "Contact: <sip:alice@192.0.2.10:5060>\nExpires: 120\n",
        );
        assert_eq!(listed(&ok), vec![("192.0.2.10".into(), "120".into())]);
        let ok = fx.authed(
            100,
            "c2",
            1,
            "Contact: <sip:alice@198.51.100.7>;expires=300;q=0.5\nExpires: 120\n",
        );
        assert_eq!(
            listed(&ok),
            vec![
                ("192.0.2.10".into(), "120".into()),
                ("198.51.100.7".into(), "300".into())
            ]
        );
        assert_eq!(fx.reg.contacts("alice")[1].q, Some(500));
        assert_eq!(fx.reg.poll_event(), None);

        // Fetch: no Contact lists what is bound (§10.3 step 8).
        let ok = fx.authed(150, "c3", 1, "");
        assert_eq!(
            listed(&ok),
            vec![
                ("192.0.2.10".into(), "70".into()),
                ("198.51.100.7".into(), "250".into())
            ]
        );

        // Unregister one with expires=0.
        let ok = fx.authed(
            200,
            "c2",
            2,
            "Contact: <sip:alice@198.51.100.7>;expires=0\n",
        );
        assert_eq!(listed(&ok), vec![("192.0.2.10".into(), "20".into())]);

        // The other one expires.
        fx.reg.handle_timeout(fx.at(219));
        assert_eq!(fx.reg.contacts("alice").len(), 1);
        fx.reg.handle_timeout(fx.at(220));
        assert!(fx.reg.contacts("alice").is_empty());
        assert_eq!(
            fx.reg.poll_event(),
            Some(BindingEvent::Unregistered {
                login: "alice".into()
            })
        );
    }

    /// RFC 3261 §10.3 step 7: the registrar shortens long requests (cap
    /// 7200 s) and answers 423 with Min-Expires to short non-zero ones.
    #[test]
    fn expires_bounds_and_423_min_expires() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let resp = fx.authed(0, "c1", 1, "Contact: <sip:alice@192.0.2.10>\nExpires: 30\n");
        assert_eq!(resp.status, 423);
        assert_eq!(resp.headers.get(&HeaderName::MinExpires), Some("60"));
        assert!(fx.reg.contacts("alice").is_empty());
        let resp = fx.authed(0, "c1", 2, "Contact: <sip:alice@192.0.2.10>;expires=1\n");
        assert_eq!(resp.status, 423);
        let ok = fx.authed(
            0,
            "c1",
            3,
            "Contact: <sip:alice@192.0.2.10>;expires=99999\n",
        );
        assert_eq!(listed(&ok), vec![("192.0.2.10".into(), "7200".into())]);
        let ok = fx.authed(0, "c1", 4, "Contact: <sip:alice@192.0.2.10>;expires=60\n");
        assert_eq!(listed(&ok), vec![("192.0.2.10".into(), "60".into())]);
    }

    /// RFC 3261 §10.3 step 6: `Contact: *` with Expires: 0 removes every
    /// binding; with another Expires or other contacts it is a 400.
    #[test]
    fn contact_star_removes_all() {
        let mut fx = Fx::new();
        fx.challenge(0);
        fx.authed(0, "c1", 1, "Contact: <sip:alice@192.0.2.10>\n");
        fx.authed(0, "c2", 1, "Contact: <sip:alice@192.0.2.11>\n");
        assert_eq!(fx.reg.contacts("alice").len(), 2);
        let bad = fx.authed(10, "c3", 1, "Contact: *\nExpires: 60\n");
        assert_eq!(bad.status, 400);
        let bad = fx.authed(10, "c3", 2, "Contact: *\n");
        assert_eq!(bad.status, 400);
        let bad = fx.authed(
            10,
            "c3",
            3,
            "Contact: *, <sip:alice@192.0.2.12>\nExpires: 0\n",
        );
        assert_eq!(bad.status, 400);
        assert_eq!(fx.reg.contacts("alice").len(), 2);
        let ok = fx.authed(10, "c3", 4, "Contact: *\nExpires: 0\n");
        assert_eq!(ok.status, 200);
        assert!(listed(&ok).is_empty());
        assert!(fx.reg.contacts("alice").is_empty());
    }

    /// RFC 3261 §10.3 step 7: same Call-ID with a CSeq not above the
    /// stored one fails (500) and changes nothing.
    #[test]
    fn cseq_ordering_gives_500() {
        let mut fx = Fx::new();
        fx.challenge(0);
        fx.authed(0, "c1", 5, "Contact: <sip:alice@192.0.2.10>\n");
        let resp = fx.authed(1, "c1", 5, "Contact: <sip:alice@192.0.2.10>;expires=0\n");
        assert_eq!(resp.status, 500);
        let resp = fx.authed(1, "c1", 4, "Contact: <sip:alice@192.0.2.10>;expires=0\n");
        assert_eq!(resp.status, 500);
        assert_eq!(fx.reg.contacts("alice").len(), 1);
        let resp = fx.authed(1, "c1", 6, "Contact: <sip:alice@192.0.2.10>;expires=0\n");
        assert_eq!(resp.status, 200);
        assert!(fx.reg.contacts("alice").is_empty());
    }

    /// RFC 7616 §3.3 / §3.4: a right response on an expired nonce gets 401
    /// stale=true with a new nonce and is not counted as a failure.
    #[test]
    fn stale_nonce_gets_stale_true() {
        let mut fx = Fx::new();
        fx.challenge(0);
        for i in 0..6 {
            let resp = fx.authed(301, "c1", i + 1, "Contact: <sip:alice@192.0.2.10>\n");
            assert_eq!(resp.status, 401);
            let lines: Vec<_> = resp.headers.get_all(&HeaderName::WwwAuthenticate).collect();
            assert!(
                lines.iter().all(|l| l.ends_with(", stale=true")),
                "{lines:?}"
            );
            assert_ne!(nonce_of(&resp), fx.nonce);
        }
        fx.nonce = nonce_of(&response(fx.send_from(
            301,
            &register("x", 1, ""),
            peer("192.0.2.10"),
        )));
        fx.nc = 0;
        let ok = fx.authed(301, "c1", 10, "Contact: <sip:alice@192.0.2.10>\n");
        assert_eq!(ok.status, 200);
    }

    /// RFC 7616 §3.4.5 / §5.13: a replayed nonce count is refused (401
    /// stale=true), the next higher one is accepted.
    #[test]
    fn nc_replay_is_rejected() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let first = fx.authed(0, "c1", 1, "Contact: <sip:alice@192.0.2.10>\n");
        assert_eq!(first.status, 200);
        fx.nc -= 1;
        let replay = fx.authed(0, "c1", 2, "Contact: <sip:alice@192.0.2.10>\n");
        assert_eq!(replay.status, 401);
        assert!(
            replay
                .headers
                .get(&HeaderName::WwwAuthenticate)
                .unwrap()
                .contains("stale=true")
        );
        let next = fx.authed(0, "c1", 3, "Contact: <sip:alice@192.0.2.10>\n");
        assert_eq!(next.status, 200);
    }

    /// RFC 7616 §3.4 / RFC 3261 §22.4: a wrong password gets a new 401 and
    /// counts as a failure; MD5 credentials verify too.
    #[test]
    fn bad_password_is_401_and_counted() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let src = peer("203.0.113.5");
        for i in 1..=5u32 {
            let auth = authorization(
                DigestAlgorithm::Md5,
                "alice",
                "guess",
                &fx.nonce,
                i,
                "sip:example.com",
            );
            let v = fx.send_from(0, &register("c1", i, &auth), src);
            let resp = match v {
                Verdict::Send(r) if i < 5 => r,
                Verdict::Delay(r, d) if i == 5 => {
                    assert_eq!(d, Duration::from_secs(1));
                    r
                }
                other => panic!("attempt {i}: {other:?}"),
            };
            assert_eq!(resp.status, 401);
            assert_ne!(nonce_of(&resp), fx.nonce);
        }
        let auth = authorization(
            DigestAlgorithm::Md5,
            "alice",
            PASSWORD,
            &fx.nonce,
            1,
            "sip:example.com",
        );
        // The right password is answered at once: a success resets the source.
        let ok = response(fx.send_from(0, &register("c1", 9, &auth), src));
        assert_eq!(ok.status, 200);
        let v = fx.send_from(0, &register("c1", 10, ""), src);
        assert!(
            matches!(v, Verdict::Send(ref r) if r.status == 401),
            "{v:?}"
        );
    }

    /// RFC 3261 §10.3 step 3: credentials of another user for this AOR →
    /// 403, counted as a failure.
    #[test]
    fn wrong_user_for_aor_is_403() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let auth = authorization(
            DigestAlgorithm::Sha256,
            "bob",
            "bobs-password",
            &fx.nonce,
            1,
            "sip:example.com",
        );
        let resp = fx.send(0, &register("c1", 1, &auth));
        assert_eq!(resp.status, 403);
        assert!(fx.reg.contacts("alice").is_empty());
    }

    /// DESIGN §10: repeated failures delay, then ban (dropped unanswered);
    /// other sources are unaffected.
    #[test]
    fn throttle_delays_then_bans() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let src = peer("203.0.113.9");
        let mut delayed = 0;
        for i in 1..=20u32 {
            let auth = authorization(
                DigestAlgorithm::Sha256,
                "alice",
                "guess",
                &fx.nonce,
                i,
                "sip:example.com",
            );
            match fx.send_from(i as u64, &register("c1", i, &auth), src) {
                Verdict::Send(r) => assert!(i < 5 && r.status == 401),
                Verdict::Delay(r, _) => {
                    assert_eq!(r.status, 401);
                    delayed += 1;
                }
                Verdict::Drop => assert_eq!(i, 20),
            }
        }
        assert_eq!(delayed, 15);
        assert!(fx.reg.is_banned(fx.at(21), src.addr.ip()));
        let v = fx.send_from(21, &register("c1", 30, ""), src);
        assert_eq!(v, Verdict::Drop);
        let ok = fx.send(21, &register("c9", 1, ""));
        assert_eq!(ok.status, 401);
        let v = fx.send_from(20 + 3600, &register("c1", 31, ""), src);
        assert!(matches!(v, Verdict::Send(_)));
    }

    /// RFC 3261 §10.3 steps 1–3: To must be a sip/sips URI (RFC 4475
    /// §3.3.14 unksm2 → 400), its user a known account (404, counted).
    #[test]
    fn to_and_account_checks() {
        let mut fx = Fx::new();
        let text =
            register("c1", 1, "").replace("To: <sip:alice@example.com>", "To: isbn:2983792873");
        let req = parse(&text);
        let resp = fx.reg.account_needed(&req).unwrap_err();
        assert_eq!(resp.status, 400);
        let resp = response(fx.send_from(0, &text, peer("192.0.2.10")));
        assert_eq!(resp.status, 400);

        let text =
            register("c1", 1, "").replace("sip:alice@example.com>\n", "sip:carol@example.com>\n");
        let req = parse(&text);
        assert_eq!(fx.reg.account_needed(&req), Ok("carol".to_owned()));
        let src = peer("203.0.113.7");
        for _ in 0..4 {
            let resp = response(fx.send_from(0, &text, src));
            assert_eq!(resp.status, 404);
        }
        assert!(matches!(fx.send_from(0, &text, src), Verdict::Delay(ref r, _) if r.status == 404));

        let text =
            register("c1", 1, "").replace("To: <sip:alice@example.com>", "To: <sip:example.com>");
        assert_eq!(
            fx.reg.account_needed(&parse(&text)).unwrap_err().status,
            404
        );
    }

    /// RFC 7616 §3.4.6: the digest-uri must be the Request-URI.
    #[test]
    fn digest_uri_must_match_request_uri() {
        let mut fx = Fx::new();
        fx.challenge(0);
        let auth = authorization(
            DigestAlgorithm::Sha256,
            "alice",
            PASSWORD,
            &fx.nonce,
            1,
            "sip:other.example.net",
        );
        let resp = fx.send(0, &register("c1", 1, &auth));
        assert_eq!(resp.status, 400);
    }

    /// RFC 3261 §20.10 qvalues and §25.1 delta-seconds.
    #[test]
    fn parses_q_and_delta() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.125"), Some(125));
        for bad in ["1.5", "0.1234", "2", "", "x", "0.-1"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
        assert_eq!(parse_delta("60"), 60);
        assert_eq!(parse_delta("99999999999"), u32::MAX);
        assert_eq!(parse_delta("abc"), 3600);
    }

    /// An INVITE to a non-public number with optional Proxy-Authorization.
    fn invite(cseq: u32, proxy_auth: &str) -> Request {
        parse(&format!(
            "INVITE sip:300@example.com SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv-{cseq}\n\
             Max-Forwards: 70\n\
             From: <sip:alice@example.com>;tag=a1\n\
             To: <sip:300@example.com>\n\
             Call-ID: inv-1\n\
             CSeq: {cseq} INVITE\n\
             Contact: <sip:alice@192.0.2.10>\n\
             {proxy_auth}\
             Content-Length: 0\n\n"
        ))
    }

    fn proxy_authorization(password: &str, nonce: &str, nc: u32) -> String {
        let alg = DigestAlgorithm::Sha256;
        let uri = "sip:300@example.com";
        let ha1 = ha1(alg, "alice", REALM, password);
        let ha2 = alg.hex(format!("INVITE:{uri}").as_bytes());
        let nc = format!("{nc:08x}");
        let response = alg.hex(format!("{ha1}:{nonce}:{nc}:c1:auth:{ha2}").as_bytes());
        format!(
            "Proxy-Authorization: Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{nonce}\", \
             uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, cnonce=\"c1\", qop=auth, nc={nc}\n"
        )
    }

    /// RFC 3261 §22.3: a call without credentials gets 407 with
    /// Proxy-Authenticate (SHA-256 first, RFC 8760 §2.4); the right
    /// credentials pass, a wrong password is challenged again.
    #[test]
    fn rfc3261_22_3_calls_are_challenged_with_407() {
        let mut fx = Fx::new();
        let src = peer("192.0.2.10");
        let Err(Verdict::Send(challenge)) =
            fx.reg
                .authorize_call(fx.at(0), &invite(1, ""), src, REALM, None)
        else {
            panic!("no challenge");
        };
        assert_eq!(challenge.status, 407);
        let offers: Vec<&str> = challenge
            .headers
            .get_all(&HeaderName::ProxyAuthenticate)
            .collect();
        assert_eq!(offers.len(), 2);
        assert!(offers[0].contains("algorithm=SHA-256"));
        assert!(
            challenge
                .headers
                .get(&HeaderName::WwwAuthenticate)
                .is_none()
        );
        let nonce = {
            let start = offers[0].find("nonce=\"").unwrap() + 7;
            let len = offers[0][start..].find('"').unwrap();
            offers[0][start..start + len].to_owned()
        };

        let wrong = invite(2, &proxy_authorization("nope", &nonce, 1));
        assert_eq!(fx.reg.caller_login(&wrong).as_deref(), Some("alice"));
        match fx
            .reg
            .authorize_call(fx.at(1), &wrong, src, REALM, Some(&fx.account))
        {
            Err(Verdict::Send(r)) => assert_eq!(r.status, 407),
            other => panic!("wrong password not challenged: {other:?}"),
        }
        let right = invite(3, &proxy_authorization(PASSWORD, &nonce, 2));
        assert_eq!(
            fx.reg
                .authorize_call(fx.at(2), &right, src, REALM, Some(&fx.account)),
            Ok("alice".to_owned())
        );
        // The same nonce count again is a replay (RFC 7616 §3.4.5).
        let replay = invite(4, &proxy_authorization(PASSWORD, &nonce, 2));
        assert!(
            fx.reg
                .authorize_call(fx.at(3), &replay, src, REALM, Some(&fx.account))
                .is_err()
        );
    }
}
