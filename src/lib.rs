//! Switchboard: a cloud telephony and IVR switch.

pub mod call;
pub mod config;
pub mod ivr;
pub mod media;
pub mod sip;
pub mod store;
