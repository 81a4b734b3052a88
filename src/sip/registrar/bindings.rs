//! The location service: contact bindings per address-of-record (RFC 3261
//! §10.3 steps 6–8), their expiry, and events for presence.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sip::message::{NameAddr, Scheme, Uri};
use crate::sip::peer::Peer;

/// One registered contact of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact value as registered, without its `expires` parameter.
    pub contact: NameAddr,
    pub expires_at: Instant,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from: the address to reach a phone behind NAT.
    pub source: Peer,
    /// `q` in thousandths (RFC 3261 §20.10), when given.
    pub q: Option<u16>,
    /// `+sip.instance` (RFC 5626 §4.1), quotes removed, when given.
    pub instance: Option<String>,
}

impl Binding {
    /// Seconds left, rounded up, for the `expires` parameter of a 200
    /// (§10.3 step 8).
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        let left = self.expires_at.saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

/// Presence-relevant changes: an agent became reachable (first binding) or
/// unreachable (last binding removed or expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingEvent {
    Registered { login: String },
    Unregistered { login: String },
}

/// One Contact of a REGISTER, already checked: `expires` 0 removes.
#[derive(Debug, Clone)]
pub struct ContactUpdate {
    pub contact: NameAddr,
    pub expires: u32,
    pub q: Option<u16>,
    pub instance: Option<String>,
}

/// The request that carries a set of updates (§10.3 step 7 compares these).
#[derive(Debug, Clone, Copy)]
pub struct UpdateOrigin<'a> {
    pub call_id: &'a str,
    pub cseq: u32,
    pub source: Peer,
}

/// Why an update was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// Same Call-ID and a CSeq not above the stored one (§10.3 steps 6–7).
    #[error("Out of order REGISTER")]
    OutOfOrder,
    /// More contacts than allowed per address-of-record.
    #[error("Too many contacts")]
    TooMany,
}

/// Bindings per agent login.
#[derive(Debug, Clone)]
pub struct Bindings {
    by_login: HashMap<String, Vec<Binding>>,
    events: VecDeque<BindingEvent>,
    max_per_login: usize,
    next_expiry: Option<Instant>,
}

impl Bindings {
    pub fn new(max_per_login: usize) -> Bindings {
        Bindings {
            by_login: HashMap::new(),
            events: VecDeque::new(),
            max_per_login: max_per_login.max(1),
            next_expiry: None,
        }
    }

    /// Current bindings of `login` (possibly including ones whose time
    /// has passed but whose timeout was not handled yet).
    pub fn contacts(&self, login: &str) -> &[Binding] {
        self.by_login.get(login).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Applies every update of one REGISTER, all or nothing (§10.3 step 7).
    pub fn apply(
        &mut self,
        now: Instant,
        login: &str,
        origin: UpdateOrigin<'_>,
        updates: Vec<ContactUpdate>,
    ) -> Result<(), BindingError> {
        let mut list: Vec<Binding> = self.contacts(login).to_vec();
        list.retain(|b| b.expires_at > now);
        for update in updates {
            let existing = list
                .iter()
                .position(|b| same_contact(&b.contact.uri, &update.contact.uri));
            if let Some(i) = existing {
                let b = &list[i];
                if b.call_id == origin.call_id && origin.cseq <= b.cseq {
                    return Err(BindingError::OutOfOrder);
                }
                list.remove(i);
            }
            if update.expires > 0 {
                let mut contact = update.contact;
                contact.params.remove("expires");
                list.push(Binding {
                    contact,
                    expires_at: now + Duration::from_secs(u64::from(update.expires)),
                    call_id: origin.call_id.to_owned(),
                    cseq: origin.cseq,
                    source: origin.source,
                    q: update.q,
                    instance: update.instance,
                });
            }
        }
        if list.len() > self.max_per_login {
            return Err(BindingError::TooMany);
        }
        self.commit(login, list);
        Ok(())
    }

    /// `Contact: *` with Expires 0: removes every binding, unless one has
    /// the same Call-ID and a CSeq not below this one (§10.3 step 6).
    pub fn remove_all(
        &mut self,
        login: &str,
        origin: UpdateOrigin<'_>,
    ) -> Result<(), BindingError> {
        let stale = self
            .contacts(login)
            .iter()
            .any(|b| b.call_id == origin.call_id && origin.cseq <= b.cseq);
        if stale {
            return Err(BindingError::OutOfOrder);
        }
        self.commit(login, Vec::new());
        Ok(())
    }

    fn commit(&mut self, login: &str, list: Vec<Binding>) {
        let had = !self.contacts(login).is_empty();
        let has = !list.is_empty();
        if has {
            self.by_login.insert(login.to_owned(), list);
        } else {
            self.by_login.remove(login);
        }
        let login = login.to_owned();
        match (had, has) {
            (false, true) => self.events.push_back(BindingEvent::Registered { login }),
            (true, false) => self.events.push_back(BindingEvent::Unregistered { login }),
            _ => {}
        }
        self.recompute_next_expiry();
    }

    fn recompute_next_expiry(&mut self) {
        self.next_expiry = self
            .by_login
            .values()
            .flat_map(|v| v.iter().map(|b| b.expires_at))
            .min();
    }

    /// Removes bindings whose time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let mut emptied = Vec::new();
        for (login, list) in self.by_login.iter_mut() {
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                emptied.push(login.clone());
            }
        }
        emptied.sort();
        for login in emptied {
            self.by_login.remove(&login);
            self.events.push_back(BindingEvent::Unregistered { login });
        }
        self.recompute_next_expiry();
    }

    /// When the next binding expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_expiry
    }

    pub fn poll_event(&mut self) -> Option<BindingEvent> {
        self.events.pop_front()
    }
}

/// URI comparison for bindings (RFC 3261 §19.1.4): scheme, user and
/// password (unescaped, case-sensitive), host (case-insensitive) and port
/// must agree; `user`, `ttl`, `method`, `maddr` and `transport` must agree
/// when either side has them; other parameters only when both have them.
/// The `?headers` part is not compared.
pub fn same_contact(a: &Uri, b: &Uri) -> bool {
    if a.scheme != b.scheme {
        return false;
    }
    if let (Scheme::Other(_), Scheme::Other(_)) = (&a.scheme, &b.scheme) {
        return a.opaque == b.opaque;
    }
    let unescaped = |s: &Option<String>| s.as_deref().map(percent_decode);
    if unescaped(&a.user) != unescaped(&b.user)
        || unescaped(&a.password) != unescaped(&b.password)
        || !a.host.eq_ignore_ascii_case(&b.host)
        || a.port != b.port
    {
        return false;
    }
    for name in ["user", "ttl", "method", "maddr", "transport"] {
        let (x, y) = (a.params.get(name), b.params.get(name));
        if (x.is_some() || y.is_some()) && !opt_eq_ignore_case(x, y) {
            return false;
        }
    }
    a.params
        .0
        .iter()
        .all(|(name, value)| match b.params.get(name) {
            Some(other) => opt_eq_ignore_case(Some(value.as_deref()), Some(other)),
            None => true,
        })
}

fn opt_eq_ignore_case(x: Option<Option<&str>>, y: Option<Option<&str>>) -> bool {
    match (x, y) {
        (Some(Some(x)), Some(Some(y))) => x.eq_ignore_ascii_case(y),
        (Some(None), Some(None)) => true,
        (None, None) => true,
        _ => false,
    }
}

/// Undoes %-escapes (RFC 3261 §19.1.2); a broken escape is kept as text.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Params;
    use crate::sip::peer::Transport;

    fn uri(user: &str, host: &str, port: Option<u16>, params: &[(&str, &str)]) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: Some(user.to_owned()),
            password: None,
            host: host.to_owned(),
            port,
            params: Params(
                params
                    .iter()
                    .map(|(n, v)| (n.to_string(), Some(v.to_string())))
                    .collect(),
            ),
            headers: None,
            opaque: None,
        }
    }

    fn update(host: &str, expires: u32) -> ContactUpdate {
        ContactUpdate {
            contact: NameAddr {
                display: None,
                uri: uri("alice", host, Some(5060), &[]),
                params: Params::default(),
            },
            expires,
            q: None,
            instance: None,
        }
    }

    fn origin(call_id: &str, cseq: u32) -> UpdateOrigin<'_> {
        UpdateOrigin {
            call_id,
            cseq,
            source: Peer {
                transport: Transport::Udp,
                addr: "192.0.2.1:5060".parse().unwrap(),
            },
        }
    }

    /// RFC 3261 §19.1.4: escapes, host case and unshared parameters do not
    /// matter; port, transport and user do.
    #[test]
    fn contact_uri_equality() {
        let a = uri("al%69ce", "EXAMPLE.com", Some(5060), &[("foo", "1")]);
        let b = uri("alice", "example.com", Some(5060), &[("bar", "2")]);
        assert!(same_contact(&a, &b));
        assert!(!same_contact(&a, &uri("alice", "example.com", None, &[])));
        assert!(!same_contact(
            &a,
            &uri("Alice", "example.com", Some(5060), &[])
        ));
        let t = uri("alice", "example.com", Some(5060), &[("transport", "tcp")]);
        assert!(!same_contact(&b, &t));
        assert!(same_contact(
            &t,
            &uri("alice", "example.com", Some(5060), &[("transport", "TCP")])
        ));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz%"), "A%zz%");
    }

    /// RFC 3261 §10.3 steps 7–8: add, refresh (higher CSeq), remove with
    /// expires 0, expire on timeout; events on first and last binding.
    #[test]
    fn register_refresh_unregister_expire() {
        let t0 = Instant::now();
        let mut b = Bindings::new(4);
        b.apply(t0, "alice", origin("c1", 1), vec![update("a.example", 60)])
            .unwrap();
        assert_eq!(
            b.poll_event(),
            Some(BindingEvent::Registered {
                login: "alice".into()
            })
        );
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        let t1 = t0 + Duration::from_secs(30);
        b.apply(t1, "alice", origin("c1", 2), vec![update("a.example", 60)])
            .unwrap();
        b.apply(t1, "alice", origin("c2", 1), vec![update("b.example", 120)])
            .unwrap();
        assert_eq!(b.poll_event(), None);
        assert_eq!(b.contacts("alice").len(), 2);
        assert_eq!(b.contacts("alice")[0].remaining_secs(t1), 60);
        assert_eq!(b.poll_timeout(), Some(t1 + Duration::from_secs(60)));

        b.apply(t1, "alice", origin("c1", 3), vec![update("a.example", 0)])
            .unwrap();
        assert_eq!(b.contacts("alice").len(), 1);
        b.handle_timeout(t1 + Duration::from_secs(119));
        assert_eq!(b.contacts("alice").len(), 1);
        b.handle_timeout(t1 + Duration::from_secs(120));
        assert!(b.contacts("alice").is_empty());
        assert_eq!(
            b.poll_event(),
            Some(BindingEvent::Unregistered {
                login: "alice".into()
            })
        );
        assert_eq!(b.poll_timeout(), None);
    }

    /// RFC 3261 §10.3 step 7: same Call-ID with CSeq not above the stored
    /// one aborts the whole request; a new Call-ID replaces the binding.
    #[test]
    fn cseq_ordering_is_enforced() {
        let t0 = Instant::now();
        let mut b = Bindings::new(4);
        b.apply(t0, "alice", origin("c1", 5), vec![update("a.example", 60)])
            .unwrap();
        let before = b.contacts("alice").to_vec();
        assert_eq!(
            b.apply(
                t0,
                "alice",
                origin("c1", 5),
                vec![update("b.example", 60), update("a.example", 0)]
            ),
            Err(BindingError::OutOfOrder)
        );
        assert_eq!(b.contacts("alice"), before.as_slice());
        b.apply(t0, "alice", origin("c9", 1), vec![update("a.example", 90)])
            .unwrap();
        assert_eq!(b.contacts("alice")[0].call_id, "c9");
        assert_eq!(
            b.remove_all("alice", origin("c9", 1)),
            Err(BindingError::OutOfOrder)
        );
        b.remove_all("alice", origin("c9", 2)).unwrap();
        assert!(b.contacts("alice").is_empty());
    }

    /// Bounded per agent: too many contacts refuses the request.
    #[test]
    fn too_many_contacts() {
        let t0 = Instant::now();
        let mut b = Bindings::new(2);
        let ups = ["a", "b", "c"].map(|h| update(h, 60)).to_vec();
        assert_eq!(
            b.apply(t0, "alice", origin("c1", 1), ups),
            Err(BindingError::TooMany)
        );
        assert!(b.contacts("alice").is_empty());
        assert_eq!(b.poll_event(), None);
    }
}
