//! Switchboard: a cloud telephony and IVR switch.

pub mod config;
pub mod ivr;
pub mod sip;
pub mod store;
