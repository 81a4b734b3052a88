//! The SIP stack: messages, transactions, dialogs, registrar, transports.

pub mod dialog;
pub mod endpoint;
pub mod message;
pub mod peer;
pub mod registrar;
pub mod transaction;
pub mod transport;
