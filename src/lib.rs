//! Switchboard: a cloud telephony and IVR switch.

pub mod sip;
