//! Requests within a dialog (RFC 3261 §12.2.1.1) and the ACK for a 2xx
//! (§13.2.2.4).

use super::{Dialog, DialogError, MAX_CSEQ, new_branch};
use crate::sip::message::{HeaderName, Headers, Method, NameAddr, Request, Response, Uri};
use crate::sip::peer::Transport;

/// Max-Forwards of every request we originate (§8.1.1.6).
const MAX_FORWARDS: u32 = 70;

/// Our side of a new Via (§8.1.1.7, §18.1.1): the sent-by (`host[:port]`)
/// and the transport the request leaves on. Each request built with it gets
/// a fresh branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVia {
    pub sent_by: String,
    pub transport: Transport,
}

impl LocalVia {
    pub fn new(sent_by: impl Into<String>, transport: Transport) -> LocalVia {
        LocalVia {
            sent_by: sent_by.into(),
            transport,
        }
    }

    /// The Via value with a fresh branch.
    fn value(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch={}",
            self.transport.as_str(),
            self.sent_by,
            new_branch()
        )
    }
}

impl Dialog {
    /// Builds a request of `method` within the dialog (§12.2.1.1): the next
    /// local CSeq (1 when none was used yet), Request-URI and Route from the
    /// remote target and route set (loose or strict routing), From with our
    /// tag, To with the peer's, Call-ID, our Contact, Max-Forwards 70 and a
    /// new Via. For ACK to a 2xx use [`Dialog::ack_for`]; for CANCEL use
    /// [`super::cancel_for`].
    pub fn request(&mut self, method: Method, via: &LocalVia) -> Result<Request, DialogError> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(DialogError::AckOrCancel);
        }
        let seq = match self.local_seq {
            None => 1,
            Some(s) if s < MAX_CSEQ => s + 1,
            Some(_) => return Err(DialogError::SeqExhausted),
        };
        self.local_seq = Some(seq);
        Ok(self.build(method, seq, via))
    }

    /// The ACK for a 2xx to one of our INVITEs (§13.2.2.4): built like any
    /// in-dialog request, with the INVITE's CSeq number (taken from the 2xx)
    /// and method ACK; the local sequence number does not move. Credentials
    /// the INVITE carried, and an answer when the INVITE had no offer, are
    /// the caller's to add.
    pub fn ack_for(&self, ok: &Response, via: &LocalVia) -> Result<Request, DialogError> {
        let cseq = ok.headers.cseq()?;
        if cseq.method != Method::Invite || !ok.is_success() {
            return Err(DialogError::NotDialogCreating);
        }
        Ok(self.build(Method::Ack, cseq.seq, via))
    }

    fn build(&self, method: Method, seq: u32, via: &LocalVia) -> Request {
        let (uri, routes) = self.request_target();
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, via.value());
        headers.push(HeaderName::MaxForwards, MAX_FORWARDS.to_string());
        for route in routes {
            headers.push(HeaderName::Route, route);
        }
        let mut from = self.local_uri.clone();
        from.params.set("tag", Some(&self.id.local_tag));
        let mut to = self.remote_uri.clone();
        if !self.id.remote_tag.is_empty() {
            to.params.set("tag", Some(&self.id.remote_tag));
        }
        headers.push(HeaderName::From, from.to_string());
        headers.push(HeaderName::To, to.to_string());
        headers.push(HeaderName::CallId, self.id.call_id.clone());
        headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        headers.push(HeaderName::Contact, format!("<{}>", self.local_contact));
        Request {
            method,
            uri,
            headers,
            body: Vec::new(),
        }
    }

    /// Request-URI and Route values (§12.2.1.1). Empty route set: the
    /// remote target, no Route. First route with `lr` (loose): the remote
    /// target, Route = route set. Otherwise (strict): the first route's URI
    /// without the parameters a Request-URI may not hold, Route = the rest
    /// of the route set then the remote target.
    fn request_target(&self) -> (Uri, Vec<String>) {
        let Some((first, rest)) = self.route_set.split_first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        if first.uri.params.has("lr") {
            let routes = self.route_set.iter().map(NameAddr::to_string).collect();
            return (self.remote_target.clone(), routes);
        }
        let mut uri = first.uri.clone();
        strip_request_uri_params(&mut uri);
        let mut routes: Vec<String> = rest.iter().map(NameAddr::to_string).collect();
        routes.push(format!("<{}>", self.remote_target));
        (uri, routes)
    }
}

/// Removes what §19.1.1's table forbids in a Request-URI: the `method`
/// parameter and the `?headers` part.
fn strip_request_uri_params(uri: &mut Uri) {
    uri.params.remove("method");
    uri.headers = None;
}
