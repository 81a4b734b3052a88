//! Hours files (DESIGN §6): parsing, problems with their positions, and
//! evaluation across midnight, closed and special days and DST changes.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::ivr::Severity;

fn parse_ok(text: &str) -> HoursSet {
    let (set, diags) = parse_hours_file(Path::new("hours.yaml"), text);
    assert!(diags.is_empty(), "unexpected problems: {diags:#?}");
    set
}

/// One set named `h` in zone `tz` with the given `week` and extra keys.
fn hours(tz: &str, body: &str) -> Hours {
    let text = format!("hours:\n  h:\n    timezone: {tz}\n{body}");
    let set = parse_ok(&text);
    set.get("h").cloned().expect("set h")
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
}

/// Every problem as `LINE:COL: message`, in order; all must be errors.
fn problems(text: &str) -> Vec<String> {
    let (_, diags) = parse_hours_file(Path::new("hours.yaml"), text);
    diags
        .into_iter()
        .map(|d| {
            assert_eq!(d.severity, Severity::Error, "{d}");
            format!("{}:{}: {}", d.line, d.col, d.message)
        })
        .collect()
}

/// Checks `is_open` at each instant.
fn check_open(h: &Hours, table: &[(&str, bool)]) {
    for &(at, want) in table {
        assert_eq!(h.is_open(utc(at)), want, "{} at {at}", h.name());
    }
}

/// Checks `next_change` from each instant.
fn check_next(h: &Hours, table: &[(&str, Option<&str>)]) {
    for &(at, want) in table {
        assert_eq!(
            h.next_change(utc(at)),
            want.map(utc),
            "{} next change after {at}",
            h.name()
        );
    }
}

const DESIGN_EXAMPLE: &str = r#"
hours:
  support-hours:
    timezone: Europe/Berlin      # IANA names (chrono-tz); DST handled
    week: { mon-fri: ["09:00-12:30", "13:30-18:00"], sat: ["10:00-14:00"] }
    closed: [2026-12-24, { yearly: 12-25 }, { yearly: 01-01 }]
    special: [{ date: 2026-12-31, hours: ["09:00-12:00"] }]
  always:
    timezone: UTC
    week: { mon-sun: ["00:00-24:00"] }
"#;

#[test]
fn design_example_parses_every_key() {
    let set = parse_ok(DESIGN_EXAMPLE);
    assert_eq!(set.names().collect::<Vec<_>>(), ["always", "support-hours"]);
    let h = set.get("support-hours").expect("support-hours");
    assert_eq!(h.timezone(), chrono_tz::Europe::Berlin);
    assert_eq!(h.pos(), Pos { line: 3, col: 3 });
    let r = |start, end| Range { start, end };
    assert_eq!(h.week[0], [r(540, 750), r(810, 1080)]);
    assert_eq!(h.week[4], [r(540, 750), r(810, 1080)]);
    assert_eq!(h.week[5], [r(600, 840)]);
    assert!(h.week[6].is_empty());
    assert_eq!(h.closed.len(), 1);
    assert_eq!(
        h.yearly.iter().copied().collect::<Vec<_>>(),
        [(1, 1), (12, 25)]
    );
    assert_eq!(h.special.len(), 1);
    assert!(set.get("nope").is_none());
}

#[test]
fn design_example_week_closed_and_special_days() {
    let set = parse_ok(DESIGN_EXAMPLE);
    let h = set.get("support-hours").expect("support-hours");
    // June: CEST, UTC+2. 2026-06-15 is a Monday.
    check_open(
        h,
        &[
            ("2026-06-15T06:59:59Z", false),
            ("2026-06-15T07:00:00Z", true),
            ("2026-06-15T10:29:59Z", true),
            ("2026-06-15T10:30:00Z", false), // 12:30 local: lunch
            ("2026-06-15T11:30:00Z", true),
            ("2026-06-15T15:59:59Z", true),
            ("2026-06-15T16:00:00Z", false), // 18:00: the end is exclusive
            ("2026-06-20T09:00:00Z", true),  // Saturday 11:00
            ("2026-06-20T12:00:00Z", false), // Saturday 14:00
            ("2026-06-21T09:00:00Z", false), // Sunday
            // December: CET, UTC+1.
            ("2026-12-23T09:00:00Z", true),
            ("2026-12-24T09:00:00Z", false), // closed date
            ("2026-12-25T09:00:00Z", false), // yearly
            ("2027-12-25T10:00:00Z", false), // yearly, a Saturday
            ("2026-12-31T10:59:59Z", true),  // special 09:00-12:00
            ("2026-12-31T11:00:00Z", false),
            ("2026-12-31T13:00:00Z", false), // special replaces 13:30-18:00
            ("2027-01-01T09:00:00Z", false), // yearly 01-01
            ("2027-01-04T08:00:00Z", true),
        ],
    );
    check_next(
        h,
        &[
            ("2026-06-15T08:00:00Z", Some("2026-06-15T10:30:00Z")),
            ("2026-06-15T10:30:00Z", Some("2026-06-15T11:30:00Z")),
            ("2026-06-15T16:00:00Z", Some("2026-06-16T07:00:00Z")),
            ("2026-06-19T16:00:00Z", Some("2026-06-20T08:00:00Z")),
            ("2026-06-20T12:00:00Z", Some("2026-06-22T07:00:00Z")),
            ("2026-12-23T17:00:00Z", Some("2026-12-26T09:00:00Z")),
            ("2026-12-30T17:00:00Z", Some("2026-12-31T08:00:00Z")),
            ("2026-12-31T08:00:00Z", Some("2026-12-31T11:00:00Z")),
            ("2026-12-31T11:00:00Z", Some("2027-01-02T09:00:00Z")),
        ],
    );
    let always = set.get("always").expect("always");
    check_open(always, &[("2026-03-29T01:30:00Z", true)]);
    check_next(always, &[("2026-06-15T08:00:00Z", None)]);
}

#[test]
fn overnight_ranges_belong_to_their_start_day() {
    let h = hours(
        "UTC",
        "    week: { fri: [\"22:00-06:00\"], sat-sun: [\"10:00-12:00\"] }\n    closed: [2026-06-20]\n",
    );
    // 2026-06-19 is a Friday; Saturday the 20th is closed, yet Friday's
    // night runs into it.
    check_open(
        &h,
        &[
            ("2026-06-19T21:59:59Z", false),
            ("2026-06-19T22:00:00Z", true),
            ("2026-06-20T00:00:00Z", true),
            ("2026-06-20T05:59:59Z", true),
            ("2026-06-20T06:00:00Z", false),
            ("2026-06-20T11:00:00Z", false), // closed date
            ("2026-06-21T11:00:00Z", true),
            ("2026-06-26T23:00:00Z", true),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-06-19T12:00:00Z", Some("2026-06-19T22:00:00Z")),
            ("2026-06-19T23:00:00Z", Some("2026-06-20T06:00:00Z")),
            ("2026-06-20T06:00:00Z", Some("2026-06-21T10:00:00Z")),
        ],
    );
}

#[test]
fn end_of_day_24_00_joins_the_next_morning() {
    let h = hours(
        "UTC",
        "    week: { mon: [\"20:00-24:00\"], tue: [\"00:00-02:00\", \"23:00-24:00\"] }\n",
    );
    // 2026-06-15 is a Monday.
    check_open(
        &h,
        &[
            ("2026-06-15T19:59:59Z", false),
            ("2026-06-15T23:59:59Z", true),
            ("2026-06-16T00:00:00Z", true),
            ("2026-06-16T02:00:00Z", false),
            ("2026-06-16T23:30:00Z", true),
            ("2026-06-17T00:00:00Z", false),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-06-15T20:00:00Z", Some("2026-06-16T02:00:00Z")),
            ("2026-06-16T23:00:00Z", Some("2026-06-17T00:00:00Z")),
        ],
    );
}

#[test]
fn always_open_until_a_closed_date() {
    let h = hours(
        "UTC",
        "    week: { mon-sun: [\"00:00-24:00\"] }\n    closed: [2026-12-24]\n",
    );
    check_next(
        &h,
        &[
            ("2026-06-01T00:00:00Z", Some("2026-12-24T00:00:00Z")),
            ("2026-12-24T12:00:00Z", Some("2026-12-25T00:00:00Z")),
            ("2026-12-25T00:00:00Z", None),
        ],
    );
}

#[test]
fn yearly_feb_29_only_in_leap_years() {
    let h = hours(
        "UTC",
        "    week: { mon-sun: [\"00:00-24:00\"] }\n    closed: [{ yearly: 02-29 }]\n",
    );
    check_open(
        &h,
        &[
            ("2027-02-28T12:00:00Z", true),
            ("2027-03-01T12:00:00Z", true),
            ("2028-02-28T12:00:00Z", true),
            ("2028-02-29T12:00:00Z", false),
            ("2028-03-01T00:00:00Z", true),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-06-01T00:00:00Z", Some("2028-02-29T00:00:00Z")),
            ("2028-02-29T12:00:00Z", Some("2028-03-01T00:00:00Z")),
            // 2100 is not a leap year: the next one is 2104.
            ("2096-03-01T00:00:00Z", Some("2104-02-29T00:00:00Z")),
        ],
    );
}

#[test]
fn special_day_replaces_the_week_and_can_close() {
    let h = hours(
        "UTC",
        concat!(
            "    week: { mon-fri: [\"09:00-17:00\"] }\n",
            "    closed: [{ yearly: 06-20 }]\n",
            "    special:\n",
            "      - { date: 2026-06-15, hours: [] }\n",
            "      - { date: 2026-06-20, hours: [\"10:00-11:00\"] }\n",
            "      - { date: 2026-06-21, hours: [\"22:00-02:00\"] }\n",
        ),
    );
    check_open(
        &h,
        &[
            ("2026-06-15T10:00:00Z", false), // Monday made closed
            ("2026-06-16T10:00:00Z", true),
            ("2026-06-20T10:30:00Z", true), // special beats yearly closed
            ("2026-06-21T23:00:00Z", true), // a Sunday opened overnight
            ("2026-06-22T01:59:00Z", true),
            ("2026-06-22T02:00:00Z", false),
            ("2027-06-20T10:30:00Z", false),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-06-14T12:00:00Z", Some("2026-06-16T09:00:00Z")),
            ("2026-06-21T22:00:00Z", Some("2026-06-22T02:00:00Z")),
        ],
    );
}

#[test]
fn wrapping_day_spans() {
    let h = hours("UTC", "    week: { fri-mon: [\"10:00-11:00\"] }\n");
    let open: Vec<bool> = (0..7).map(|d| !h.week[d].is_empty()).collect();
    assert_eq!(open, [true, false, false, false, true, true, true]);
}

/// Berlin: 2026-03-29 02:00 CET → 03:00 CEST (01:00Z);
/// 2026-10-25 03:00 CEST → 02:00 CET (01:00Z).
#[test]
fn berlin_dst_days() {
    let berlin = |week: &str| hours("Europe/Berlin", &format!("    week: {{ {week} }}\n"));
    // Spring forward.
    let h = berlin("sun: [\"01:00-04:00\"]");
    check_open(
        &h,
        &[
            ("2026-03-28T23:59:59Z", false),
            ("2026-03-29T00:00:00Z", true), // 01:00 CET
            ("2026-03-29T01:59:59Z", true),
            ("2026-03-29T02:00:00Z", false), // 04:00 CEST: two real hours
        ],
    );
    check_next(
        &h,
        &[("2026-03-29T00:00:00Z", Some("2026-03-29T02:00:00Z"))],
    );
    // A start in the gap opens when the gap ends.
    let h = berlin("sun: [\"02:30-05:00\"]");
    check_open(
        &h,
        &[
            ("2026-03-29T00:59:59Z", false),
            ("2026-03-29T01:00:00Z", true),
            ("2026-03-29T02:59:59Z", true),
            ("2026-03-29T03:00:00Z", false),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-03-28T12:00:00Z", Some("2026-03-29T01:00:00Z")),
            ("2026-03-29T01:00:00Z", Some("2026-03-29T03:00:00Z")),
        ],
    );
    // An end in the gap closes when the gap ends.
    let h = berlin("sun: [\"00:00-02:30\"]");
    check_open(
        &h,
        &[
            ("2026-03-28T23:00:00Z", true),
            ("2026-03-29T00:59:59Z", true),
            ("2026-03-29T01:00:00Z", false),
        ],
    );
    // A range wholly inside the gap is closed that day.
    let h = berlin("sun: [\"02:00-02:30\"]");
    check_open(&h, &[("2026-03-29T01:00:00Z", false)]);
    check_next(
        &h,
        &[("2026-03-28T12:00:00Z", Some("2026-04-05T00:00:00Z"))],
    );
    // The night of the change: 22:00 CET to 06:00 CEST is seven hours.
    let h = berlin("sat: [\"22:00-06:00\"]");
    check_open(
        &h,
        &[
            ("2026-03-28T20:59:59Z", false),
            ("2026-03-28T21:00:00Z", true),
            ("2026-03-29T03:59:59Z", true),
            ("2026-03-29T04:00:00Z", false),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-03-28T20:00:00Z", Some("2026-03-28T21:00:00Z")),
            ("2026-03-28T21:00:00Z", Some("2026-03-29T04:00:00Z")),
        ],
    );

    // Fall back: 02:00-03:00 local happens twice (00:00Z-01:00Z CEST,
    // 01:00Z-02:00Z CET). An ambiguous start takes the first.
    let h = berlin("sun: [\"02:30-05:00\"]");
    check_open(
        &h,
        &[
            ("2026-10-25T00:29:59Z", false),
            ("2026-10-25T00:30:00Z", true), // 02:30 CEST
            ("2026-10-25T03:59:59Z", true),
            ("2026-10-25T04:00:00Z", false), // 05:00 CET
        ],
    );
    // An ambiguous end takes the second.
    let h = berlin("sun: [\"00:00-02:30\"]");
    check_open(
        &h,
        &[
            ("2026-10-24T21:59:59Z", false),
            ("2026-10-24T22:00:00Z", true), // 00:00 CEST
            ("2026-10-25T01:29:59Z", true),
            ("2026-10-25T01:30:00Z", false), // 02:30 CET
        ],
    );
    check_next(
        &h,
        &[("2026-10-25T00:45:00Z", Some("2026-10-25T01:30:00Z"))],
    );
    // The night of the change: 22:00 CEST to 06:00 CET is nine hours.
    let h = berlin("sat: [\"22:00-06:00\"]");
    check_open(
        &h,
        &[
            ("2026-10-24T19:59:59Z", false),
            ("2026-10-24T20:00:00Z", true),
            ("2026-10-25T04:59:59Z", true),
            ("2026-10-25T05:00:00Z", false),
        ],
    );
    check_next(
        &h,
        &[("2026-10-24T20:00:00Z", Some("2026-10-25T05:00:00Z"))],
    );
}

/// New York: 2026-03-08 02:00 EST → 03:00 EDT (07:00Z);
/// 2026-11-01 02:00 EDT → 01:00 EST (06:00Z).
#[test]
fn new_york_dst_days() {
    let ny = |week: &str| hours("America/New_York", &format!("    week: {{ {week} }}\n"));
    let h = ny("sun: [\"02:15-03:30\"]");
    check_open(
        &h,
        &[
            ("2026-03-08T06:59:59Z", false),
            ("2026-03-08T07:00:00Z", true), // 03:00 EDT, the gap's end
            ("2026-03-08T07:29:59Z", true),
            ("2026-03-08T07:30:00Z", false),
        ],
    );
    check_next(
        &h,
        &[("2026-03-08T05:00:00Z", Some("2026-03-08T07:00:00Z"))],
    );
    // Overnight into the spring-forward morning: 11 real hours.
    let h = ny("sat: [\"20:00-08:00\"]");
    check_open(
        &h,
        &[
            ("2026-03-08T00:59:59Z", false),
            ("2026-03-08T01:00:00Z", true),
            ("2026-03-08T11:59:59Z", true),
            ("2026-03-08T12:00:00Z", false),
        ],
    );
    check_next(
        &h,
        &[("2026-03-08T01:00:00Z", Some("2026-03-08T12:00:00Z"))],
    );
    // Fall back, 01:00-02:00 twice: 05:00Z-06:00Z EDT, 06:00Z-07:00Z EST.
    let h = ny("sun: [\"01:30-09:00\"]");
    check_open(
        &h,
        &[
            ("2026-11-01T05:29:59Z", false),
            ("2026-11-01T05:30:00Z", true), // 01:30 EDT
            ("2026-11-01T13:59:59Z", true),
            ("2026-11-01T14:00:00Z", false), // 09:00 EST
        ],
    );
    // Overnight ending in the repeated hour runs to its second pass.
    let h = ny("sat: [\"22:00-01:30\"]");
    check_open(
        &h,
        &[
            ("2026-11-01T01:59:59Z", false),
            ("2026-11-01T02:00:00Z", true), // 22:00 EDT
            ("2026-11-01T05:45:00Z", true), // 01:45 EDT, before the second 01:30
            ("2026-11-01T06:29:59Z", true),
            ("2026-11-01T06:30:00Z", false), // 01:30 EST
        ],
    );
    check_next(
        &h,
        &[("2026-11-01T02:00:00Z", Some("2026-11-01T06:30:00Z"))],
    );
    // Saturday's end (later 01:30) and Sunday's start (earlier 01:30)
    // overlap: one open stretch.
    let h = ny("sat: [\"20:00-01:30\"], sun: [\"01:30-03:00\"]");
    check_open(
        &h,
        &[
            ("2026-11-01T00:00:00Z", true),
            ("2026-11-01T06:00:00Z", true),
            ("2026-11-01T07:59:59Z", true),
            ("2026-11-01T08:00:00Z", false), // 03:00 EST
        ],
    );
    check_next(
        &h,
        &[("2026-11-01T01:00:00Z", Some("2026-11-01T08:00:00Z"))],
    );
}

/// Sydney: 2026-04-05 03:00 AEDT → 02:00 AEST (16:00Z on the 4th);
/// 2026-10-04 02:00 AEST → 03:00 AEDT (16:00Z on the 3rd).
#[test]
fn sydney_dst_days() {
    let h = hours("Australia/Sydney", "    week: { sun: [\"02:30-04:00\"] }\n");
    check_open(
        &h,
        &[
            // Fall back: start 02:30 AEDT, end 04:00 AEST.
            ("2026-04-04T15:29:59Z", false),
            ("2026-04-04T15:30:00Z", true),
            ("2026-04-04T17:59:59Z", true),
            ("2026-04-04T18:00:00Z", false),
            // Spring forward: start at the gap's end, 03:00 AEDT.
            ("2026-10-03T15:59:59Z", false),
            ("2026-10-03T16:00:00Z", true),
            ("2026-10-03T16:59:59Z", true),
            ("2026-10-03T17:00:00Z", false),
        ],
    );
    check_next(
        &h,
        &[
            ("2026-04-04T12:00:00Z", Some("2026-04-04T15:30:00Z")),
            ("2026-10-03T12:00:00Z", Some("2026-10-03T16:00:00Z")),
        ],
    );
}

/// For every 10 minutes of the weeks around the DST changes, `next_change`
/// returns a later instant where `is_open` flips, the same one until then,
/// and `is_open` does not flip before it (sampled each minute).
#[test]
fn next_change_agrees_with_is_open() {
    let weeks = [
        "mon-fri: [\"09:00-17:00\"], sat-sun: [\"22:00-06:00\", \"01:30-03:00\"]",
        "mon-sun: [\"00:00-02:30\", \"02:30-23:00\"]",
        "sat: [\"23:00-02:15\"], sun: [\"01:15-01:45\", \"02:15-02:45\"]",
    ];
    let cases = [
        ("Europe/Berlin", "2026-03-25T00:00:00Z"),
        ("Europe/Berlin", "2026-10-21T00:00:00Z"),
        ("America/New_York", "2026-03-05T00:00:00Z"),
        ("America/New_York", "2026-10-29T00:00:00Z"),
        ("Australia/Sydney", "2026-04-01T00:00:00Z"),
        ("Australia/Sydney", "2026-10-01T00:00:00Z"),
    ];
    let step = TimeDelta::minutes(10);
    for week in weeks {
        for (tz, from) in cases {
            let h = hours(tz, &format!("    week: {{ {week} }}\n"));
            let mut now = utc(from);
            let mut previous: Option<DateTime<Utc>> = None;
            for _ in 0..(6 * 24 * 6) {
                let state = h.is_open(now);
                let Some(next) = h.next_change(now) else {
                    panic!("{tz} {week}: no change after {now}");
                };
                assert!(next > now, "{tz} {week}: {next} after {now}");
                assert_ne!(h.is_open(next), state, "{tz} {week}: flip at {next}");
                if let Some(p) = previous
                    && p > now
                {
                    assert_eq!(next, p, "{tz} {week}: next change from {now}");
                }
                let mut t = now;
                while t < next && t < now + step {
                    assert_eq!(h.is_open(t), state, "{tz} {week}: {t} before {next}");
                    t += TimeDelta::minutes(1);
                }
                previous = Some(next);
                now += step;
            }
        }
    }
}

#[test]
fn problems_with_their_positions() {
    let text = r#"hours:
  support:
    timezone: Europe/Berln
    weeek: {}
    week:
      mon-fri: ["09:00-25:00", "10:00-10:00", "24:00-01:00", "9:00-10:00"]
      fri: ["08:00-09:00"]
      xyz: []
      sat: ["08:00-12:00", "11:00-13:00", nope]
    closed: [2026-02-30, { yearly: 13-01 }, { yearly: 02-29 }, { yerly: 01-01 }, 5]
    special:
      - { date: 2026-13-01, hours: [] }
      - { date: 2026-12-31, hours: ["09:00-12:00"] }
      - { date: 2026-12-31, hours: [] }
      - { hours: [] }
  empty:
    week: {}
  support:
    timezone: UTC
"#;
    let want = [
        "3:15: unknown time zone `Europe/Berln`: expected an IANA name such as Europe/Berlin",
        "4:5: unknown key `weeek` in hours `support`; did you mean `week`? (known keys: timezone, week, closed, special)",
        "6:17: bad range `09:00-25:00`: `25:00`: hours go from 00 to 23, or 24:00 for the end of the day",
        "6:32: bad range `10:00-10:00`: it starts where it ends (use 00:00-24:00 for a whole day)",
        "6:47: bad range `24:00-01:00`: a range cannot start at 24:00 (use 00:00)",
        "6:62: bad range `9:00-10:00`: `9:00` is not HH:MM",
        "7:7: `fri` is already given by `mon-fri` (line 6, column 7)",
        "8:7: bad day `xyz`: expected mon, tue, wed, thu, fri, sat, sun or a span such as mon-fri",
        "9:28: range 11:00-13:00 overlaps 08:00-12:00",
        "9:43: bad range `nope`: expected HH:MM-HH:MM such as 09:00-17:30",
        "10:14: bad date `2026-02-30`: expected YYYY-MM-DD such as 2026-12-24",
        "10:36: bad yearly date `13-01`: expected MM-DD such as 12-25",
        "10:64: a closed date needs `yearly: MM-DD`",
        "10:66: unknown key `yerly` in a closed date; did you mean `yearly`? (known keys: yearly)",
        "10:82: a closed date: expected YYYY-MM-DD or { yearly: MM-DD }, found a number",
        "12:17: bad date `2026-13-01`: expected YYYY-MM-DD such as 2026-12-31",
        "14:17: special day 2026-12-31 is given twice",
        "15:9: a special day needs `date`",
        "16:3: hours `empty`: missing `timezone` (an IANA name such as Europe/Berlin)",
        "18:3: hours `support` is defined twice (first at line 2, column 3)",
    ];
    assert_eq!(problems(text), want);
}

#[test]
fn yaml_and_shape_problems() {
    let cases = [
        ("hours: [\n", "1:8: unclosed bracket '['"),
        ("hourz: {}\n", "1:1: unknown key `hourz`: expected `hours`"),
        (
            "hours:\n  h: [1]\n",
            "2:6: hours `h`: expected a mapping, found a list",
        ),
        (
            "hours:\n  h:\n    timezone: UTC\n    week: [mon]\n",
            "4:11: `week`: expected a mapping of days to ranges, found a list",
        ),
        (
            "hours:\n  h:\n    timezone: UTC\n    week: { mon: \"09:00-10:00\" }\n",
            "4:18: opening hours: expected a list, found a string",
        ),
        (
            "hours:\n  h:\n    timezone: [UTC]\n",
            "3:15: `timezone`: expected a string, found a list",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(problems(text), [want], "{text:?}");
    }
    // An empty file or an empty `hours` is no set and no problem.
    for text in ["", "hours:\n", "hours: {}\n"] {
        assert!(parse_ok(text).is_empty(), "{text:?}");
    }
}

/// Ranges that meet at a time inside the gap or the repeated hour stay
/// joined: the set never closes.
#[test]
fn ranges_meeting_in_a_dst_change_stay_joined() {
    for tz in ["Europe/Berlin", "America/New_York", "Australia/Sydney"] {
        let h = hours(
            tz,
            "    week: { mon-sun: [\"00:00-02:30\", \"02:30-24:00\"] }\n",
        );
        for from in ["2026-03-01T00:00:00Z", "2026-09-25T00:00:00Z"] {
            let from = utc(from);
            for step in 0..(60 * 24) {
                let now = from + TimeDelta::minutes(60 * step);
                assert!(h.is_open(now), "{tz} at {now}");
            }
            assert_eq!(h.next_change(from), None, "{tz}");
        }
    }
}
