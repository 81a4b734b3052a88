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
    fn ha1(&self, algorithm: DigestAlgorithm) -> &str {
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
        match self.authenticate(now, req, account) {
            Auth::Ok => {}
            Auth::Challenge { stale, failure } => {
                return (self.challenge(now, req, account, stale), failure);
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
    fn authenticate(&mut self, now: Instant, req: &Request, account: &Account) -> Auth {
        let no_credentials = Auth::Challenge {
            stale: false,
            failure: false,
        };
        let mut found = None;
        for value in req.headers.get_all(&HeaderName::Authorization) {
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
                        reason: "Bad Request (Malformed Authorization header)",
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

    /// 401 with a new nonce, SHA-256 then MD5 (RFC 8760 §2.4).
    fn challenge(
        &mut self,
        now: Instant,
        req: &Request,
        account: &Account,
        stale: bool,
    ) -> Response {
        let mut random = [0u8; 12];
        self.rng.fill_bytes(&mut random);
        let nonce = self.mint.issue(self.clock.unix_ms(now), random);
        let mut resp = self.reply(req, 401, "Unauthorized");
        for value in challenges(&account.realm, &nonce, stale) {
            resp.headers.push(HeaderName::WwwAuthenticate, value);
        }
        resp
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
    uri.scheme == request_uri.scheme
        && uri.user.as_deref().map(percent_decode)
            == request_uri.user.as_deref().map(percent_decode)
        && uri.host.eq_ignore_ascii_case(&request_uri.host)
        && uri.port == request_uri.port
}
