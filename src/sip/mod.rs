//! The SIP stack: messages, transactions, dialogs, registrar, transports.

pub mod message;
