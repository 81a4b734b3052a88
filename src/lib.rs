//! Switchboard: a cloud telephony and IVR switch.

pub mod media;
pub mod sip;
