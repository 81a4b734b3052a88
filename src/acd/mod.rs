//! Automatic call distribution settings (DESIGN §6): the queue file
//! `queues.yaml` and the opening-hours file `hours.yaml`.
//!
//! Both parsers report every problem local to their file at once, each with
//! the line and column of the offending key or value. Names that point into
//! other files (hours sets, queues, sounds) keep their position in
//! [`NameRef`] so the folder validator can report them at the right place.

pub mod announce;
pub mod driver;
pub mod hours;
pub mod queues;
pub mod routing;
mod yaml;

/// A place in a YAML file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A name that refers to something defined elsewhere (an hours set, a queue,
/// a sound file) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    pub name: String,
    pub pos: Pos,
}
