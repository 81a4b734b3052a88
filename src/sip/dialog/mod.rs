//! SIP dialogs, sans-IO (RFC 3261 §12, §13, §14, §15).
//!
//! A [`Dialog`] holds the state of §12: its id (Call-ID and the two tags),
//! the local and remote URIs and sequence numbers, the remote target, the
//! route set, our Contact and the secure flag. It is created on the UAS side
//! from an INVITE ([`Dialog::new_uas`], §12.1.1) and on the UAC side from an
//! INVITE and a 1xx-with-tag or 2xx response ([`Dialog::new_uac`], §12.1.2).
//! It builds in-dialog requests and the ACK for a 2xx (§12.2.1.1,
//! §13.2.2.4), checks incoming in-dialog requests (§12.2.2) and follows
//! responses (§12.2.1.2, §15.1). It never touches a socket or a clock.
//!
//! [`DialogSet`] finds the dialog a message belongs to, keeps one early
//! dialog per remote tag when an INVITE forks, and [`cancel_for`] builds the
//! CANCEL of a pending INVITE (§9.1). [`hold::hold_state`] reads hold and
//! unhold from a re-INVITE's SDP; [`method_not_supported`] answers methods we
//! do not handle (405 or 501, §8.2.1).

mod cancel;
pub mod hold;
mod methods;
mod request;
mod set;

pub use crate::sip::transaction::{new_branch, new_tag};
pub use cancel::cancel_for;
pub use hold::{HoldState, hold_state};
pub use methods::{ALLOW, ALLOWED_METHODS, is_allowed, method_not_supported};
pub use request::LocalVia;
pub use set::{DialogSet, MAX_EARLY_PER_INVITE};

use super::message::{
    ContactValue, HeaderName, Method, NameAddr, ParseErrorKind, Request, Response, Scheme, Uri,
};

/// The highest CSeq number allowed (§8.1.1.5: below 2^31).
const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Identifies a dialog (§12): Call-ID, our tag and the peer's tag. For an
/// incoming request our tag is the To tag; for an incoming response it is
/// the From tag. A peer following RFC 2543 may send no tag: the remote tag
/// is then empty (§12.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

impl DialogId {
    /// The id an incoming request names: our tag is its To tag (§12.2.2).
    /// `None` when the request carries no To tag (it is outside any dialog).
    pub fn for_incoming_request(req: &Request) -> Result<Option<DialogId>, DialogError> {
        let to = req.headers.to()?;
        let Some(local_tag) = to.tag() else {
            return Ok(None);
        };
        let from = req.headers.from()?;
        Ok(Some(DialogId {
            call_id: req.headers.call_id()?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: from.tag().unwrap_or_default().to_owned(),
        }))
    }

    /// The id a response to one of our requests names: our tag is its
    /// From tag, the peer's its To tag (§12.1.2).
    pub fn for_incoming_response(resp: &Response) -> Result<DialogId, DialogError> {
        let from = resp.headers.from()?;
        let to = resp.headers.to()?;
        Ok(DialogId {
            call_id: resp.headers.call_id()?.to_owned(),
            local_tag: from.tag().ok_or(DialogError::MissingFromTag)?.to_owned(),
            remote_tag: to.tag().unwrap_or_default().to_owned(),
        })
    }
}

/// Where a dialog stands (§12: early after a 1xx with a tag, confirmed
/// after a 2xx, terminated by BYE or a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

/// Why a message cannot create or continue a dialog. [`DialogError::status`]
/// gives the response the caller should answer a request with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("malformed message: {0}")]
    Malformed(#[from] ParseErrorKind),
    /// A dialog-creating or target-refresh message lacks a usable Contact
    /// (§12.1.1, §12.1.2).
    #[error("missing Contact header")]
    MissingContact,
    /// Our own INVITE, or the response to it, has no From tag (§8.1.1.3).
    #[error("missing From tag")]
    MissingFromTag,
    /// Only INVITE creates a dialog here, and only through a 101–299
    /// response (§12.1).
    #[error("message does not create a dialog")]
    NotDialogCreating,
    /// A 1xx without a To tag creates no early dialog (§12.1.2).
    #[error("provisional response without a To tag")]
    MissingToTag,
    /// The request names a dialog that is not this one, or is gone: answer
    /// 481 (§12.2.2).
    #[error("no such dialog")]
    NoSuchDialog,
    /// The request's CSeq is below the last one from the peer: answer 500
    /// (§12.2.2).
    #[error("CSeq {got} lower than the last remote CSeq {last}")]
    OutOfOrder { got: u32, last: u32 },
    /// The local CSeq reached 2^31 - 1 (§8.1.1.5).
    #[error("local CSeq exhausted")]
    SeqExhausted,
    /// ACK and CANCEL are not built by [`Dialog::request`]: use
    /// [`Dialog::ack_for`] and [`cancel_for`] (§13.2.2.4, §9.1).
    #[error("ACK and CANCEL have their own builders")]
    AckOrCancel,
    /// More early dialogs than [`MAX_EARLY_PER_INVITE`] for one INVITE.
    #[error("too many early dialogs for one INVITE")]
    TooManyForks,
}

impl DialogError {
    /// The status to answer a request with when this error came from
    /// handling it: 400 for a malformed request, 481 for no such dialog,
    /// 500 for an out-of-order CSeq (§12.2.2).
    pub fn status(&self) -> u16 {
        match self {
            DialogError::Malformed(_)
            | DialogError::MissingContact
            | DialogError::MissingFromTag
            | DialogError::NotDialogCreating
            | DialogError::MissingToTag => 400,
            DialogError::NoSuchDialog => 481,
            DialogError::OutOfOrder { .. }
            | DialogError::SeqExhausted
            | DialogError::AckOrCancel
            | DialogError::TooManyForks => 500,
        }
    }

    /// A response to `req` for this error (status from [`DialogError::status`],
    /// the RFC's reason phrase, a To tag added when absent, §8.2.6.2).
    pub fn response_to(&self, req: &Request) -> Response {
        let status = self.status();
        let reason = match status {
            400 => "Bad Request",
            481 => "Call/Transaction Does Not Exist",
            _ => "Server Internal Error",
        };
        let mut resp = Response::for_request(req, status, reason);
        ensure_to_tag(&mut resp, &new_tag());
        resp
    }
}

/// 481 Call/Transaction Does Not Exist for a request naming an unknown
/// dialog (§12.2.2).
pub fn no_such_dialog(req: &Request) -> Response {
    DialogError::NoSuchDialog.response_to(req)
}

/// One SIP dialog (RFC 3261 §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    /// The local URI with its display name; the tag lives in `id`.
    local_uri: NameAddr,
    /// The remote URI with its display name; the tag lives in `id`.
    remote_uri: NameAddr,
    /// Empty on the UAS side until we send a request (§12.1.1).
    local_seq: Option<u32>,
    /// Empty on the UAC side until the peer sends a request (§12.1.2).
    remote_seq: Option<u32>,
    remote_target: Uri,
    /// Route set in the order requests carry it (§12.1.1, §12.1.2).
    route_set: Vec<NameAddr>,
    local_contact: Uri,
    secure: bool,
}

impl Dialog {
    /// The UAS dialog created by answering `invite` with a 101–299 (§12.1.1):
    /// route set = Record-Route in order, remote target = Contact, remote
    /// sequence = CSeq, local URI = To, remote URI = From, our tag
    /// `local_tag` (§19.3: at least 32 bits of randomness, see [`new_tag`]).
    /// The dialog starts early; [`Dialog::handle_sent_response`] confirms it.
    /// An INVITE whose To already has a tag is a re-INVITE for a dialog we
    /// do not know: [`DialogError::NoSuchDialog`] (481, §12.2.2).
    ///
    /// The switch has no TLS transport, so `secure` only reflects a `sips:`
    /// Request-URI.
    pub fn new_uas(
        invite: &Request,
        local_tag: &str,
        local_contact: Uri,
    ) -> Result<Dialog, DialogError> {
        if invite.method != Method::Invite {
            return Err(DialogError::NotDialogCreating);
        }
        let h = &invite.headers;
        let mut to = h.to()?;
        if to.tag().is_some() {
            return Err(DialogError::NoSuchDialog);
        }
        let mut from = h.from()?;
        let remote_tag = from.tag().unwrap_or_default().to_owned();
        to.params.remove("tag");
        from.params.remove("tag");
        Ok(Dialog {
            id: DialogId {
                call_id: h.call_id()?.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            state: DialogState::Early,
            local_uri: to,
            remote_uri: from,
            local_seq: None,
            remote_seq: Some(h.cseq()?.seq),
            remote_target: contact_uri(&invite.headers)?.ok_or(DialogError::MissingContact)?,
            route_set: h.record_routes()?,
            local_contact,
            secure: invite.uri.scheme == Scheme::Sips,
        })
    }

    /// The UAC dialog created by `resp` to our `invite` (§12.1.2): early for
    /// a 101–199 with a To tag, confirmed for a 2xx. Route set = Record-Route
    /// reversed, remote target = the response's Contact, local sequence =
    /// the INVITE's CSeq, our tag = its From tag, our Contact = its Contact.
    ///
    /// When the INVITE forks, call this once per remote tag and keep each
    /// dialog ([`DialogSet::handle_uac_response`] does).
    pub fn new_uac(invite: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        if invite.method != Method::Invite || !(101..300).contains(&resp.status) {
            return Err(DialogError::NotDialogCreating);
        }
        let cseq = resp.headers.cseq()?;
        if cseq.method != Method::Invite {
            return Err(DialogError::NotDialogCreating);
        }
        let id = DialogId::for_incoming_response(resp)?;
        if resp.is_provisional() && id.remote_tag.is_empty() {
            return Err(DialogError::MissingToTag);
        }
        let mut from = invite.headers.from()?;
        let mut to = invite.headers.to()?;
        from.params.remove("tag");
        to.params.remove("tag");
        let mut route_set = resp.headers.record_routes()?;
        route_set.reverse();
        Ok(Dialog {
            id,
            state: if resp.is_success() {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_uri: from,
            remote_uri: to,
            local_seq: Some(invite.headers.cseq()?.seq),
            remote_seq: None,
            remote_target: contact_uri(&resp.headers)?.ok_or(DialogError::MissingContact)?,
            route_set,
            local_contact: contact_uri(&invite.headers)?.ok_or(DialogError::MissingContact)?,
            secure: invite.uri.scheme == Scheme::Sips,
        })
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }
    pub fn state(&self) -> DialogState {
        self.state
    }
    pub fn local_uri(&self) -> &NameAddr {
        &self.local_uri
    }
    pub fn remote_uri(&self) -> &NameAddr {
        &self.remote_uri
    }
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }
    pub fn local_contact(&self) -> &Uri {
        &self.local_contact
    }
    pub fn secure(&self) -> bool {
        self.secure
    }
    pub fn is_terminated(&self) -> bool {
        self.state == DialogState::Terminated
    }

    /// Ends the dialog (after sending BYE, §15.1.1, or on the caller's own
    /// decision).
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// Whether `req` belongs to this dialog: same Call-ID, its To tag is
    /// ours and its From tag the peer's (§12.2.2). CANCEL carries no To tag
    /// and never matches: it belongs to the INVITE transaction (§9.2).
    pub fn matches_request(&self, req: &Request) -> bool {
        matches!(DialogId::for_incoming_request(req), Ok(Some(id)) if id == self.id)
    }

    /// Whether `resp` (to a request we sent) belongs to this dialog (§12.1.2).
    pub fn matches_response(&self, resp: &Response) -> bool {
        matches!(DialogId::for_incoming_response(resp), Ok(id) if id == self.id)
    }

    /// A response to `req` from this dialog's UAS side (§12.1.1, §8.2.6):
    /// Via, From, To, Call-ID and CSeq copied, our tag added to To, and for
    /// a 101–299 to INVITE or UPDATE our Contact; a dialog-creating response
    /// (101–299 to INVITE) also carries the request's Record-Route values,
    /// in order.
    pub fn response(&self, req: &Request, status: u16, reason: &str) -> Response {
        let mut resp = Response::for_request(req, status, reason);
        ensure_to_tag(&mut resp, &self.id.local_tag);
        let target_refresh = matches!(req.method, Method::Invite | Method::Update);
        if target_refresh && (101..300).contains(&status) {
            resp.headers
                .set(HeaderName::Contact, format!("<{}>", self.local_contact));
        }
        if req.method == Method::Invite
            && (101..300).contains(&status)
            && resp.headers.get(&HeaderName::RecordRoute).is_none()
        {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                resp.headers.push(HeaderName::RecordRoute, rr);
            }
        }
        resp
    }

    /// Follows a response we sent to a request of this dialog: a 2xx to
    /// INVITE confirms an early dialog (§12.1.1); a final non-2xx to the
    /// initial INVITE ends it (§12.3).
    pub fn handle_sent_response(&mut self, resp: &Response) {
        let Ok(cseq) = resp.headers.cseq() else {
            return;
        };
        if cseq.method != Method::Invite || resp.is_provisional() {
            return;
        }
        match self.state {
            DialogState::Early if resp.is_success() => self.state = DialogState::Confirmed,
            DialogState::Early => self.state = DialogState::Terminated,
            _ => {}
        }
    }

    /// Checks and applies an in-dialog request from the peer (§12.2.2).
    ///
    /// Errors say what to answer: [`DialogError::NoSuchDialog`] → 481 (not
    /// this dialog, or it is terminated), [`DialogError::OutOfOrder`] → 500.
    /// On success the remote sequence number is updated; a target refresh
    /// (re-INVITE, UPDATE) with a Contact replaces the remote target
    /// (§12.2.2, §14.2); BYE terminates the dialog (§15.1.2). ACK and CANCEL
    /// are not sequence-checked (they reuse the INVITE's number).
    pub fn handle_request(&mut self, req: &Request) -> Result<(), DialogError> {
        if self.is_terminated() || !self.matches_request(req) {
            return Err(DialogError::NoSuchDialog);
        }
        let cseq = req.headers.cseq()?;
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if let Some(last) = self.remote_seq
            && cseq.seq < last
        {
            return Err(DialogError::OutOfOrder {
                got: cseq.seq,
                last,
            });
        }
        let new_target = if matches!(req.method, Method::Invite | Method::Update) {
            contact_uri(&req.headers)?
        } else {
            None
        };
        self.remote_seq = Some(cseq.seq);
        if let Some(target) = new_target {
            self.remote_target = target;
        }
        if req.method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// Follows a response to a request we sent in this dialog (UAC side):
    /// - a 2xx to INVITE confirms an early dialog and recomputes its route
    ///   set from the 2xx's Record-Route (§13.2.2.4);
    /// - a 2xx to a target refresh (INVITE, UPDATE) with a Contact replaces
    ///   the remote target (§12.2.1.2); a 1xx does too while early (§12.1.2);
    /// - a final non-2xx to the initial INVITE ends an early dialog (§12.3);
    /// - 481 or 408 to any request ends the dialog (§12.2.1.2);
    /// - any final response to BYE ends it (§15.1.1).
    pub fn handle_response(&mut self, resp: &Response) -> Result<(), DialogError> {
        if !self.matches_response(resp) {
            return Err(DialogError::NoSuchDialog);
        }
        let cseq = resp.headers.cseq()?;
        if self.is_terminated() {
            return Ok(());
        }
        if matches!(resp.status, 408 | 481) {
            self.state = DialogState::Terminated;
            return Ok(());
        }
        let target_refresh = matches!(cseq.method, Method::Invite | Method::Update);
        match cseq.method {
            Method::Invite if self.state == DialogState::Early => {
                if resp.is_success() {
                    let mut route_set = resp.headers.record_routes()?;
                    route_set.reverse();
                    self.route_set = route_set;
                    self.state = DialogState::Confirmed;
                } else if resp.status >= 300 {
                    self.state = DialogState::Terminated;
                    return Ok(());
                }
            }
            Method::Bye if !resp.is_provisional() => {
                self.state = DialogState::Terminated;
                return Ok(());
            }
            _ => {}
        }
        let refreshes =
            resp.is_success() || (resp.is_provisional() && self.state == DialogState::Early);
        if target_refresh
            && refreshes
            && let Some(target) = contact_uri(&resp.headers)?
        {
            self.remote_target = target;
        }
        Ok(())
    }
}

/// The URI of the first Contact value; `*` does not count.
fn contact_uri(headers: &super::message::Headers) -> Result<Option<Uri>, DialogError> {
    if headers.get(&HeaderName::Contact).is_none() {
        return Ok(None);
    }
    Ok(headers.contacts()?.into_iter().find_map(|c| match c {
        ContactValue::Addr(na) => Some(na.uri),
        ContactValue::Star => None,
    }))
}

/// Adds `tag` to the response's To when it has none (§8.2.6.2, §12.1.1).
fn ensure_to_tag(resp: &mut Response, tag: &str) {
    if let Ok(mut to) = resp.headers.to()
        && to.tag().is_none()
    {
        to.params.set("tag", Some(tag));
        resp.headers.set(HeaderName::To, to.to_string());
    }
}

#[cfg(test)]
mod tests;
