//! Estimated wait (DESIGN §6).
