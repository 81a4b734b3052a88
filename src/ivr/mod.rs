//! IVR flows.

pub mod duration;
pub mod numbers;
