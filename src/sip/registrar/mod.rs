//! The registrar (RFC 3261 §10) with digest authentication (RFC 2617,
//! RFC 7616, RFC 8760).

pub mod bindings;
pub mod digest;
pub mod nonce;
mod register;
pub mod throttle;

pub use bindings::{Binding, BindingEvent};
pub use register::{Account, ClockAnchor, Registrar, RegistrarConfig, Verdict};
