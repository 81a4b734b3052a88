//! Routing engine tests (DESIGN §6).
