//! Dialogs by id (RFC 3261 §12): finding the dialog of an incoming request
//! or response, and one early dialog per remote tag when an INVITE forks
//! (§12.1.2, §13.2.2.4).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::{Dialog, DialogError, DialogId, DialogState};
use crate::sip::message::{Method, Request, Response};

/// Most dialogs one INVITE may create by forking (one per remote tag); a
/// bound so a flood of 1xx with fresh tags cannot grow the table.
pub const MAX_EARLY_PER_INVITE: usize = 16;

/// A table of dialogs keyed by [`DialogId`].
#[derive(Debug, Default)]
pub struct DialogSet {
    dialogs: HashMap<DialogId, Dialog>,
}

impl DialogSet {
    pub fn new() -> DialogSet {
        DialogSet::default()
    }
    pub fn len(&self) -> usize {
        self.dialogs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }
    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id)
    }
    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        self.dialogs.get_mut(id)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.values()
    }

    /// Adds a dialog (replacing one with the same id).
    pub fn insert(&mut self, dialog: Dialog) -> &mut Dialog {
        match self.dialogs.entry(dialog.id().clone()) {
            Entry::Occupied(mut slot) => {
                slot.insert(dialog);
                slot.into_mut()
            }
            Entry::Vacant(slot) => slot.insert(dialog),
        }
    }

    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        self.dialogs.remove(id)
    }

    /// Drops every terminated dialog.
    pub fn remove_terminated(&mut self) {
        self.dialogs.retain(|_, d| !d.is_terminated());
    }

    /// The dialog an incoming request belongs to: Call-ID, our tag = its To
    /// tag, the peer's tag = its From tag (§12.2.2). `None` for a request
    /// without a To tag (out of dialog) or one naming no dialog here (the
    /// caller answers 481, see [`super::no_such_dialog`]).
    pub fn find_for_request(&mut self, req: &Request) -> Option<&mut Dialog> {
        let id = DialogId::for_incoming_request(req).ok()??;
        self.dialogs.get_mut(&id)
    }

    /// The dialog a response to our request belongs to: our tag = its From
    /// tag, the peer's = its To tag (§12.1.2).
    pub fn find_for_response(&mut self, resp: &Response) -> Option<&mut Dialog> {
        let id = DialogId::for_incoming_response(resp).ok()?;
        self.dialogs.get_mut(&id)
    }

    /// Follows a response to our INVITE `invite` (UAC side, §12.1.2,
    /// §13.2.2.4): a 101–299 whose To tag names a known dialog updates it; a
    /// new To tag creates another dialog (forking). A final non-2xx ends
    /// every early dialog of the INVITE (§12.3) and gives `Ok(None)`, as do
    /// a 100 and a 1xx without a To tag.
    pub fn handle_uac_response(
        &mut self,
        invite: &Request,
        resp: &Response,
    ) -> Result<Option<&mut Dialog>, DialogError> {
        if resp.status >= 300 {
            let id = DialogId::for_incoming_response(resp)?;
            for d in self.dialogs.values_mut() {
                let same_invite = d.id.call_id == id.call_id && d.id.local_tag == id.local_tag;
                if same_invite && d.state == DialogState::Early {
                    d.state = DialogState::Terminated;
                }
            }
            return Ok(None);
        }
        if resp.status < 101 || invite.method != Method::Invite {
            return Ok(None);
        }
        let id = DialogId::for_incoming_response(resp)?;
        if resp.is_provisional() && id.remote_tag.is_empty() {
            return Ok(None);
        }
        if self.dialogs.contains_key(&id) {
            let Some(d) = self.dialogs.get_mut(&id) else {
                return Ok(None);
            };
            d.handle_response(resp)?;
            return Ok(Some(d));
        }
        let forks = self
            .dialogs
            .keys()
            .filter(|k| k.call_id == id.call_id && k.local_tag == id.local_tag)
            .count();
        if forks >= MAX_EARLY_PER_INVITE {
            return Err(DialogError::TooManyForks);
        }
        let dialog = Dialog::new_uac(invite, resp)?;
        Ok(Some(self.insert(dialog)))
    }
}
