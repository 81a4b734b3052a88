//! Agent selection strategies (DESIGN §6).
