//! Opening hours (DESIGN §6, `hours.yaml`): weekly ranges in a time zone,
//! closed dates and special days, evaluated correctly across DST changes.
//!
//! Times in the file are wall-clock times in the set's zone. A range
//! belongs to the day it starts on: `22:00-06:00` on Friday is open until
//! 06:00 on Saturday, even if Saturday is a closed date, and a closed date
//! or special day only removes or replaces the ranges that start on it.
//! A special day wins over a yearly closed date.
//!
//! Local times that do not exist or exist twice resolve as follows:
//! - a start or end inside a spring-forward gap moves to the gap's end
//!   (the first instant after it; `02:30` on a 02:00→03:00 night is 03:00);
//! - an ambiguous start (a fall-back repeats the hour) takes the earlier
//!   instant, an ambiguous end the later one, so the range covers the whole
//!   repeated stretch;
//! - a range that collapses to nothing (`02:00-02:30` on a spring-forward
//!   night) is closed that day.

mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::offset::LocalResult;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

pub use parse::parse_hours_file;

use super::Pos;

/// Every hours set of one `hours.yaml`, by name.
#[derive(Debug, Clone, Default)]
pub struct HoursSet {
    sets: BTreeMap<String, Hours>,
}

impl HoursSet {
    /// The names of the sets, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Hours> {
        self.sets.get(name)
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// One named set of opening hours.
#[derive(Debug, Clone)]
pub struct Hours {
    name: String,
    pos: Pos,
    tz: Tz,
    /// Ranges per weekday, Monday first, sorted by start.
    week: [Vec<Range>; 7],
    /// Dates closed once.
    closed: BTreeSet<NaiveDate>,
    /// (month, day) closed every year; 02-29 only in leap years.
    yearly: BTreeSet<(u32, u32)>,
    /// Dates whose ranges replace the week's (empty: closed).
    special: BTreeMap<NaiveDate, Vec<Range>>,
}

/// A daily opening range in minutes after local midnight. `end` may be
/// 1440 (`24:00`); `end <= start` means it ends on the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    start: u16,
    end: u16,
}

impl Range {
    fn crosses_midnight(self) -> bool {
        self.end <= self.start
    }
}

/// How far ahead `next_change` looks: eight years covers a yearly 02-29
/// across a century's skipped leap year.
const HORIZON_DAYS: i64 = 8 * 366 + 14;

/// Longest run of nonexistent local minutes searched for a gap's end
/// (Samoa skipped a whole day in 2011).
const MAX_GAP_MINUTES: i64 = 2 * 24 * 60;

/// A bound on |UTC offset| plus margin, used to know which instants a local
/// date can reach.
const MAX_OFFSET: TimeDelta = TimeDelta::hours(26);

/// Which end of a range a local time is; decides how ambiguous times resolve.
#[derive(Clone, Copy)]
enum Edge {
    Start,
    End,
}

impl Hours {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the set's name was written in `hours.yaml`.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether the set is open at `now`: a range includes its start and
    /// excludes its end.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let today = now.with_timezone(&self.tz).date_naive();
        // Yesterday's overnight ranges reach into today; the extra days cover
        // zones whose clocks jump across midnight.
        (-2..=1)
            .filter_map(|d| today.checked_add_signed(TimeDelta::days(d)))
            .any(|date| {
                self.day_intervals(date)
                    .iter()
                    .any(|&(s, e)| s <= now && now < e)
            })
    }

    /// The next instant after `now` at which the open/closed state changes,
    /// for arming a timer; `None` if it never changes within eight years.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.tz).date_naive();
        let mut date = today.checked_sub_signed(TimeDelta::days(2))?;
        // Merged, sorted open intervals that end after `now`.
        let mut open: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for _ in 0..HORIZON_DAYS {
            open.extend(self.day_intervals(date));
            open.retain(|&(_, e)| e > now);
            open.sort();
            open = merge(open);
            date = date.succ_opt()?;
            // Ranges of `date` and later cannot start before `frontier`.
            let frontier = date.and_hms_opt(0, 0, 0)?.and_utc() - MAX_OFFSET;
            match open.first() {
                // Open: the stretch holding `now` ends for good.
                Some(&(s, e)) if s <= now && e < frontier => return Some(e),
                // Closed: the next opening, if no later day can come first.
                Some(&(s, _)) if s > now && s <= frontier => return Some(s),
                _ => {}
            }
        }
        None
    }

    /// The ranges that start on `date`.
    fn day_ranges(&self, date: NaiveDate) -> &[Range] {
        if let Some(ranges) = self.special.get(&date) {
            return ranges;
        }
        if self.closed.contains(&date) || self.yearly.contains(&(date.month(), date.day())) {
            return &[];
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        self.week.get(weekday).map_or(&[], Vec::as_slice)
    }

    /// The non-empty instants `[start, end)` of the ranges starting on `date`.
    fn day_intervals(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let Some(midnight) = date.and_hms_opt(0, 0, 0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &r in self.day_ranges(date) {
            let start = midnight + TimeDelta::minutes(i64::from(r.start));
            let end_day = if r.crosses_midnight() {
                midnight + TimeDelta::days(1)
            } else {
                midnight
            };
            let end = end_day + TimeDelta::minutes(i64::from(r.end));
            if let (Some(s), Some(e)) = (
                resolve(self.tz, start, Edge::Start),
                resolve(self.tz, end, Edge::End),
            ) && s < e
            {
                out.push((s, e));
            }
        }
        out
    }
}

/// Merges sorted intervals that overlap or touch.
fn merge(sorted: Vec<(DateTime<Utc>, DateTime<Utc>)>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(sorted.len());
    for (s, e) in sorted {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The instant of wall-clock time `local` in `tz` (see the module doc for
/// gaps and repeated times).
fn resolve(tz: Tz, local: NaiveDateTime, edge: Edge) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            Some(match edge {
                Edge::Start => a.min(b),
                Edge::End => a.max(b),
            })
        }
        LocalResult::None => {
            // In a gap: the first local minute that exists is the gap's end.
            (1..=MAX_GAP_MINUTES).find_map(|m| {
                match tz.from_local_datetime(&(local + TimeDelta::minutes(m))) {
                    LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
                    LocalResult::None => None,
                }
            })
        }
    }
}
