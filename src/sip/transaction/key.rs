//! Transaction matching keys: server side per RFC 3261 §17.2.3, client side
//! per §17.1.3.

use crate::sip::message::{Headers, Method, ParseErrorKind, Request, Response};

/// The RFC 3261 magic cookie that starts every compliant branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies a server transaction from an incoming request (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// The branch carries the magic cookie: branch + sent-by + method, where
    /// ACK is looked up as INVITE.
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers (no cookie): a reduced form of the §17.2.3 fallback
    /// (Call-ID, CSeq number, From tag, top Via, method). The To tag and the
    /// Request-URI are left out so that an ACK matches its INVITE whatever
    /// tag our response carried.
    Rfc2543 {
        call_id: String,
        cseq: u32,
        from_tag: Option<String>,
        via: String,
        method: Method,
    },
}

impl ServerKey {
    /// The key of `req`, with ACK mapped to INVITE (§17.2.3).
    pub(crate) fn for_request(req: &Request) -> Result<ServerKey, ParseErrorKind> {
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        ServerKey::with_method(&req.headers, method)
    }

    /// The key the request's headers would have with another method: CANCEL
    /// looks up the INVITE it cancels this way (§9.2).
    pub(crate) fn with_method(
        headers: &Headers,
        method: Method,
    ) -> Result<ServerKey, ParseErrorKind> {
        let via = headers.top_via()?;
        let sent_by = via.sent_by().to_ascii_lowercase();
        match via.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => Ok(ServerKey::Rfc3261 {
                branch: branch.to_owned(),
                sent_by,
                method,
            }),
            branch => Ok(ServerKey::Rfc2543 {
                call_id: headers.call_id()?.to_owned(),
                cseq: headers.cseq()?.seq,
                from_tag: headers.from()?.tag().map(str::to_owned),
                via: format!("{}/{}/{}", via.transport, sent_by, branch.unwrap_or("")),
                method,
            }),
        }
    }
}

/// Identifies a client transaction: top Via branch + CSeq method (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub(crate) branch: String,
    pub(crate) method: Method,
}

impl ClientKey {
    /// The key of a request we send; `None` when its top Via has no branch
    /// with the magic cookie (we only send RFC 3261 branches).
    pub(crate) fn for_request(req: &Request) -> Result<Option<ClientKey>, ParseErrorKind> {
        let via = req.headers.top_via()?;
        Ok(via
            .branch()
            .filter(|b| b.starts_with(MAGIC_COOKIE))
            .map(|branch| ClientKey {
                branch: branch.to_owned(),
                method: req.method.clone(),
            }))
    }

    /// The key a response names.
    pub(crate) fn for_response(resp: &Response) -> Result<Option<ClientKey>, ParseErrorKind> {
        let via = resp.headers.top_via()?;
        let Some(branch) = via.branch() else {
            return Ok(None);
        };
        Ok(Some(ClientKey {
            branch: branch.to_owned(),
            method: resp.headers.cseq()?.method,
        }))
    }
}
