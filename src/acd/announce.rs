//! What a waiting caller is told (DESIGN §6): the sentence of a queue
//! announcement as a list of shipped recordings under `announce/`, from the
//! caller's position and estimated wait. Sans-IO: which sounds exist is
//! asked of the caller (the flow version's prompt cache), nothing is read.
//!
//! "You are caller number" + N, "Your estimated wait is" + N + "minutes"
//! ("minute" for one), or "less than a minute" under 60 s. The wait is
//! rounded up to whole minutes. Numbers are said from `numbers/N.wav` when
//! that file exists, else composed from what `scripts/make-sounds.sh`
//! ships: 0–20 and the tens as words, plus `hundred` (so 0–999). A part
//! whose number cannot be said, or one of whose sounds is missing, is left
//! out whole: the caller never hears "you are caller number" with no
//! number after it.

use std::time::Duration;

/// Where the announcement phrases live under the sounds folder.
pub const DIR: &str = "announce";

/// The largest number the shipped recordings can say.
pub const MAX_NUMBER: u32 = 999;

/// The sound names (relative to the sounds folder) of one announcement, in
/// order; empty when nothing can be said. `has` tells whether a sound is
/// loaded.
pub fn sentence(
    position: Option<u32>,
    ewt: Option<Duration>,
    has: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = position
        && let Some(part) = position_part(n, has)
    {
        out.extend(part);
    }
    if let Some(wait) = ewt
        && let Some(part) = wait_part(wait, has)
    {
        out.extend(part);
    }
    out
}

/// "You are caller number N".
fn position_part(n: u32, has: &dyn Fn(&str) -> bool) -> Option<Vec<String>> {
    let mut part = vec![phrase("you-are-caller-number")];
    part.extend(number(n, has)?);
    all_present(part, has)
}

/// "Your estimated wait is N minutes" (rounded up), or "… less than a
/// minute".
fn wait_part(wait: Duration, has: &dyn Fn(&str) -> bool) -> Option<Vec<String>> {
    let mut part = vec![phrase("your-estimated-wait-is")];
    if wait < Duration::from_secs(60) {
        part.push(phrase("less-than-a-minute"));
    } else {
        let minutes = wait.as_secs().div_ceil(60);
        let minutes = u32::try_from(minutes).ok()?;
        part.extend(number(minutes, has)?);
        part.push(phrase(if minutes == 1 { "minute" } else { "minutes" }));
    }
    all_present(part, has)
}

/// Every recording an announcement of `position` and/or `wait_time` may
/// use (the numbers as composed from words), for `switchboard check`.
pub fn needed(position: bool, wait_time: bool) -> Vec<String> {
    let mut out = Vec::new();
    if position {
        out.push(phrase("you-are-caller-number"));
    }
    if wait_time {
        for p in [
            "your-estimated-wait-is",
            "less-than-a-minute",
            "minute",
            "minutes",
        ] {
            out.push(phrase(p));
        }
    }
    if position || wait_time {
        out.extend((0..=20).chain((30..=90).step_by(10)).map(digit_file));
        out.push(format!("{DIR}/numbers/hundred.wav"));
    }
    out
}

fn all_present(part: Vec<String>, has: &dyn Fn(&str) -> bool) -> Option<Vec<String>> {
    part.iter().all(|s| has(s)).then_some(part)
}

fn phrase(name: &str) -> String {
    format!("{DIR}/{name}.wav")
}

fn digit_file(n: u32) -> String {
    format!("{DIR}/numbers/{n}.wav")
}

/// The sounds that say `n`: its own recording when there is one, else
/// words (`3 hundred 40 2`); `None` beyond [`MAX_NUMBER`].
pub fn number(n: u32, has: &dyn Fn(&str) -> bool) -> Option<Vec<String>> {
    if has(&digit_file(n)) {
        return Some(vec![digit_file(n)]);
    }
    if n > MAX_NUMBER {
        return None;
    }
    let mut out = Vec::new();
    let hundreds = n / 100;
    let rest = n % 100;
    if hundreds > 0 {
        out.push(digit_file(hundreds));
        out.push(format!("{DIR}/numbers/hundred.wav"));
    }
    if rest > 0 || hundreds == 0 {
        if rest <= 20 || has(&digit_file(rest)) {
            out.push(digit_file(rest));
        } else {
            out.push(digit_file(rest - rest % 10));
            if rest % 10 > 0 {
                out.push(digit_file(rest % 10));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `scripts/make-sounds.sh` ships under `announce/`.
    fn shipped(name: &str) -> bool {
        let Some(rest) = name.strip_prefix("announce/") else {
            return false;
        };
        match rest.strip_prefix("numbers/") {
            Some(n) => {
                let n = n.trim_end_matches(".wav");
                n == "hundred"
                    || n.parse::<u32>()
                        .is_ok_and(|n| n <= 20 || (n <= 90 && n % 10 == 0))
            }
            None => [
                "you-are-caller-number.wav",
                "your-estimated-wait-is.wav",
                "minute.wav",
                "minutes.wav",
                "less-than-a-minute.wav",
                "please-hold.wav",
            ]
            .contains(&rest),
        }
    }

    fn words(sounds: &[String]) -> String {
        sounds
            .iter()
            .map(|s| {
                s.trim_start_matches("announce/")
                    .trim_start_matches("numbers/")
                    .trim_end_matches(".wav")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn say(position: Option<u32>, ewt: Option<u64>) -> String {
        words(&sentence(position, ewt.map(Duration::from_secs), &shipped))
    }

    #[test]
    fn every_name_is_a_file_make_sounds_ships() {
        // The fixture agrees with the repository's sounds folder.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
        for name in sentence(Some(342), Some(Duration::from_secs(61)), &shipped)
            .iter()
            .chain(&sentence(None, Some(Duration::from_secs(5)), &shipped))
            .chain(&needed(true, true))
        {
            assert!(root.join(name).is_file(), "{name} is not shipped");
            assert!(shipped(name), "{name}");
        }
        assert!(needed(false, false).is_empty());
        assert!(!needed(false, true).contains(&phrase("you-are-caller-number")));
    }

    #[test]
    fn position_and_wait_sentences() {
        let table: &[(Option<u32>, Option<u64>, &str)] = &[
            (
                Some(3),
                Some(240),
                "you-are-caller-number 3 your-estimated-wait-is 4 minutes",
            ),
            (Some(1), None, "you-are-caller-number 1"),
            (None, Some(60), "your-estimated-wait-is 1 minute"),
            // Rounded up to whole minutes.
            (None, Some(61), "your-estimated-wait-is 2 minutes"),
            (None, Some(119), "your-estimated-wait-is 2 minutes"),
            (None, Some(0), "your-estimated-wait-is less-than-a-minute"),
            (None, Some(59), "your-estimated-wait-is less-than-a-minute"),
            (None, None, ""),
        ];
        for &(position, ewt, want) in table {
            assert_eq!(say(position, ewt), want, "{position:?} {ewt:?}");
        }
    }

    #[test]
    fn numbers_from_the_shipped_words() {
        let table: &[(u32, &str)] = &[
            (0, "0"),
            (7, "7"),
            (20, "20"),
            (21, "20 1"),
            (40, "40"),
            (99, "90 9"),
            (100, "1 hundred"),
            (105, "1 hundred 5"),
            (342, "3 hundred 40 2"),
            (999, "9 hundred 90 9"),
        ];
        for &(n, want) in table {
            let got = number(n, &shipped).expect("sayable");
            assert_eq!(words(&got), want, "{n}");
        }
        assert_eq!(number(1000, &shipped), None);
    }

    #[test]
    fn a_recording_of_the_whole_number_is_preferred() {
        let has = |n: &str| shipped(n) || n == "announce/numbers/42.wav";
        assert_eq!(words(&number(42, &has).expect("42")), "42");
        assert_eq!(words(&number(342, &has).expect("342")), "3 hundred 42");
    }

    #[test]
    fn what_cannot_be_said_is_left_out_whole() {
        // Beyond the recordings: no number, so no "caller number" either.
        assert_eq!(
            say(Some(1000), Some(120)),
            "your-estimated-wait-is 2 minutes"
        );
        // 1000 minutes and more: the wait is not announced.
        assert_eq!(say(Some(2), Some(1000 * 60)), "you-are-caller-number 2");
        // A sounds folder without the number recordings says nothing.
        let phrases_only = |n: &str| shipped(n) && !n.contains("/numbers/");
        assert_eq!(
            words(&sentence(
                Some(2),
                Some(Duration::from_secs(30)),
                &phrases_only
            )),
            "your-estimated-wait-is less-than-a-minute"
        );
        assert!(sentence(Some(2), Some(Duration::from_secs(30)), &|_| false).is_empty());
    }
}
