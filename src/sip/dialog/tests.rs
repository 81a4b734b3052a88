//! Dialog tests.
