//! Reading and checking `hours.yaml` (DESIGN §6).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::{Hours, HoursSet, Range};
use crate::acd::Pos;
use crate::acd::yaml::{self, Diags, Fields, Node, Y, pos};
use crate::ivr::Diagnostic;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses `hours.yaml` (`path` is only used in the diagnostics). Every set
/// is returned, even one with problems, so names still resolve; any
/// diagnostic of severity error means the file must be refused.
pub fn parse_hours_file(path: &Path, text: &str) -> (HoursSet, Vec<Diagnostic>) {
    let mut diags = Diags::new(path);
    let entries = yaml::top_entries(text, "hours", &mut diags);
    let mut sets: BTreeMap<String, Hours> = BTreeMap::new();
    for (k, v) in &entries {
        let Some(name) = k.value.scalar_text().filter(|n| !n.trim().is_empty()) else {
            diags.expected(k, "hours name", "a name");
            continue;
        };
        if let Some(first) = sets.get(&name) {
            let first = first.pos;
            diags.error(
                pos(k),
                format!(
                    "hours `{name}` is defined twice (first at line {}, column {})",
                    first.line, first.col
                ),
            );
            continue;
        }
        let hours = parse_set(&name, pos(k), v, &mut diags);
        sets.insert(name, hours);
    }
    diags.out.sort_by_key(|d| (d.line, d.col));
    (HoursSet { sets }, diags.out)
}

/// One named set; problems are reported and the faulty parts left out.
fn parse_set(name: &str, at: Pos, v: &Y, diags: &mut Diags) -> Hours {
    let mut hours = Hours {
        name: name.to_owned(),
        pos: at,
        tz: Tz::UTC,
        week: Default::default(),
        closed: BTreeSet::new(),
        yearly: BTreeSet::new(),
        special: BTreeMap::new(),
    };
    let what = format!("hours `{name}`");
    let Some(f) = Fields::read(v, &what, &["timezone", "week", "closed", "special"], diags) else {
        return hours;
    };
    match f.get("timezone") {
        Some(y) => {
            if let Some(tz) = timezone(y, diags) {
                hours.tz = tz;
            }
        }
        None => diags.error(
            at,
            format!("{what}: missing `timezone` (an IANA name such as Europe/Berlin)"),
        ),
    }
    if let Some(y) = f.get("week") {
        hours.week = week(y, diags);
    }
    if let Some(y) = f.get("closed") {
        for item in yaml::list(y, "`closed`", diags) {
            closed_item(item, &mut hours, diags);
        }
    }
    if let Some(y) = f.get("special") {
        for item in yaml::list(y, "`special`", diags) {
            special_item(item, &mut hours, diags);
        }
    }
    hours
}

fn timezone(y: &Y, diags: &mut Diags) -> Option<Tz> {
    let text = yaml::string(y, "`timezone`", diags)?;
    match text.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            diags.error(
                pos(y),
                format!("unknown time zone `{text}`: expected an IANA name such as Europe/Berlin"),
            );
            None
        }
    }
}

/// The `week` mapping: day keys (`mon`, `mon-fri`, `fri-mon`) to ranges.
fn week(y: &Y, diags: &mut Diags) -> [Vec<Range>; 7] {
    let mut week: [Vec<Range>; 7] = Default::default();
    let Node::Map(entries) = &y.value else {
        diags.expected(y, "`week`", "a mapping of days to ranges");
        return week;
    };
    let mut owner: [Option<(String, Pos)>; 7] = Default::default();
    for (k, v) in entries {
        let key = k.value.scalar_text().unwrap_or_default();
        let Some(days) = day_spec(&key) else {
            diags.error(
                pos(k),
                format!(
                    "bad day {}: expected mon, tue, wed, thu, fri, sat, sun or a span such as mon-fri",
                    yaml::show_key(k)
                ),
            );
            continue;
        };
        let ranges = ranges(v, diags);
        for day in days {
            let (Some(slot), Some(ranges_of_day)) = (owner.get_mut(day), week.get_mut(day)) else {
                continue;
            };
            if let Some((first, at)) = slot {
                let day_name = DAYS.get(day).copied().unwrap_or("?");
                diags.error(
                    pos(k),
                    format!(
                        "`{day_name}` is already given by `{first}` (line {}, column {})",
                        at.line, at.col
                    ),
                );
                continue;
            }
            *slot = Some((key.clone(), pos(k)));
            *ranges_of_day = ranges.clone();
        }
    }
    week
}

/// The weekdays (0 = Monday) of `mon`, `mon-fri` or a wrapping `fri-mon`.
fn day_spec(text: &str) -> Option<Vec<usize>> {
    let index = |d: &str| DAYS.iter().position(|x| *x == d.trim());
    match text.split_once('-') {
        None => Some(vec![index(text)?]),
        Some((a, b)) => {
            let (a, b) = (index(a)?, index(b)?);
            if a == b {
                return None;
            }
            let len = (b + 7 - a) % 7 + 1;
            Some((0..len).map(|i| (a + i) % 7).collect())
        }
    }
}

/// A list of `"HH:MM-HH:MM"` ranges, checked for overlaps, sorted by start.
fn ranges(y: &Y, diags: &mut Diags) -> Vec<Range> {
    let mut out: Vec<(Range, Pos)> = Vec::new();
    for item in yaml::list(y, "opening hours", diags) {
        let Node::Str(text) = &item.value else {
            diags.expected(item, "opening hours", "a range such as \"09:00-17:30\"");
            continue;
        };
        match range(text) {
            Ok(r) => out.push((r, pos(item))),
            Err(message) => diags.error(pos(item), message),
        }
    }
    out.sort_by_key(|(r, _)| *r);
    // An overnight range occupies the rest of its start day.
    let day_end = |r: Range| if r.crosses_midnight() { 1440 } else { r.end };
    for pair in out.windows(2) {
        if let [(a, _), (b, at)] = pair
            && b.start < day_end(*a)
        {
            diags.error(
                *at,
                format!("range {} overlaps {}", show_range(*b), show_range(*a)),
            );
        }
    }
    out.into_iter().map(|(r, _)| r).collect()
}

fn show_range(r: Range) -> String {
    let t = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    format!("{}-{}", t(r.start), t(r.end))
}

/// Parses `"HH:MM-HH:MM"`; the end may be `24:00`, and an end at or before
/// the start crosses midnight.
fn range(text: &str) -> Result<Range, String> {
    let bad = || format!("bad range `{text}`: expected HH:MM-HH:MM such as 09:00-17:30");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let start = time(a.trim()).map_err(|e| format!("bad range `{text}`: {e}"))?;
    let end = time(b.trim()).map_err(|e| format!("bad range `{text}`: {e}"))?;
    if start == 1440 {
        return Err(format!(
            "bad range `{text}`: a range cannot start at 24:00 (use 00:00)"
        ));
    }
    if start == end {
        return Err(format!(
            "bad range `{text}`: it starts where it ends (use 00:00-24:00 for a whole day)"
        ));
    }
    Ok(Range { start, end })
}

/// `HH:MM` in minutes, `00:00` to `24:00`.
fn time(text: &str) -> Result<u16, String> {
    let b = text.as_bytes();
    let digits = |x: &[u8]| -> Option<u16> {
        match x {
            [h, l] if h.is_ascii_digit() && l.is_ascii_digit() => {
                Some(u16::from(h - b'0') * 10 + u16::from(l - b'0'))
            }
            _ => None,
        }
    };
    let (Some(h), Some(m)) = (b.get(..2).and_then(digits), b.get(3..).and_then(digits)) else {
        return Err(format!("`{text}` is not HH:MM"));
    };
    if b.get(2) != Some(&b':') {
        return Err(format!("`{text}` is not HH:MM"));
    }
    if m > 59 {
        return Err(format!("`{text}`: minutes go from 00 to 59"));
    }
    if h > 24 || (h == 24 && m != 0) {
        return Err(format!(
            "`{text}`: hours go from 00 to 23, or 24:00 for the end of the day"
        ));
    }
    Ok(h * 60 + m)
}

/// `YYYY-MM-DD`.
fn date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// `MM-DD` of a yearly date; `02-29` is allowed (leap years only).
fn month_day(text: &str) -> Option<(u32, u32)> {
    let d = date(&format!("2000-{text}"))?;
    use chrono::Datelike;
    Some((d.month(), d.day()))
}

fn closed_item(item: &Y, hours: &mut Hours, diags: &mut Diags) {
    match &item.value {
        Node::Str(text) => match date(text) {
            Some(d) => {
                hours.closed.insert(d);
            }
            None => diags.error(
                pos(item),
                format!("bad date `{text}`: expected YYYY-MM-DD such as 2026-12-24"),
            ),
        },
        Node::Map(_) => {
            let Some(f) = Fields::read(item, "a closed date", &["yearly"], diags) else {
                return;
            };
            let Some(y) = f.get("yearly") else {
                diags.error(pos(item), "a closed date needs `yearly: MM-DD`");
                return;
            };
            let text = yaml::string(y, "`yearly`", diags);
            match text.as_deref().map(|t| (t, month_day(t))) {
                Some((_, Some(md))) => {
                    hours.yearly.insert(md);
                }
                Some((t, None)) => diags.error(
                    pos(y),
                    format!("bad yearly date `{t}`: expected MM-DD such as 12-25"),
                ),
                None => {}
            }
        }
        _ => diags.expected(item, "a closed date", "YYYY-MM-DD or { yearly: MM-DD }"),
    }
}

fn special_item(item: &Y, hours: &mut Hours, diags: &mut Diags) {
    let Some(f) = Fields::read(item, "a special day", &["date", "hours"], diags) else {
        return;
    };
    let day = match f.get("date") {
        Some(y) => {
            let text = yaml::string(y, "`date`", diags);
            match text.as_deref().map(|t| (t, date(t))) {
                Some((t, Some(d))) => {
                    if hours.special.contains_key(&d) {
                        diags.error(pos(y), format!("special day {t} is given twice"));
                        None
                    } else if hours.closed.contains(&d) {
                        diags.error(pos(y), format!("{t} is both closed and a special day"));
                        None
                    } else {
                        Some(d)
                    }
                }
                Some((t, None)) => {
                    diags.error(
                        pos(y),
                        format!("bad date `{t}`: expected YYYY-MM-DD such as 2026-12-31"),
                    );
                    None
                }
                None => None,
            }
        }
        None => {
            diags.error(pos(item), "a special day needs `date`");
            None
        }
    };
    let ranges = match f.get("hours") {
        Some(y) => ranges(y, diags),
        None => {
            diags.error(
                pos(item),
                "a special day needs `hours` (a list of ranges; [] for closed)",
            );
            return;
        }
    };
    if let Some(d) = day {
        hours.special.insert(d, ranges);
    }
}
