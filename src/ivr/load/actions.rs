//! The settings of the actions that take a mapping or a list: `menu`,
//! `collect`, `branch` (with its conditions), `set`, `transfer`,
//! `voicemail` and `webhook`.

use std::time::Duration;

use super::{MAX_LIST, Reader, is_name};
use crate::ivr::expr::{self, Expr, Value as ExprValue};
use crate::ivr::model::{
    Action, Branch, Collect, Menu, NodeId, TransferTarget, Voicemail, Webhook,
};
use crate::ivr::yaml::{Pos, Value, Yaml};

impl Reader<'_> {
    pub(super) fn menu(&mut self, y: &Yaml) -> Option<Action> {
        let mut f = self.fields(y, "menu")?;
        let prompt = match f.get("prompt") {
            Some(p) => self.sounds(p, "prompt"),
            None => {
                self.error(y.pos, "menu needs `prompt`");
                None
            }
        };
        let options = match f.get("options") {
            Some(o) => self.options(o),
            None => {
                self.error(y.pos, "menu needs `options`");
                None
            }
        };
        let timeout = match f.get("timeout") {
            Some(t) => self.duration(
                t,
                "timeout",
                Duration::from_millis(100),
                Duration::from_secs(120),
            ),
            None => Some(Duration::from_secs(5)),
        };
        let tries = match f.get("tries") {
            Some(t) => self.uint(t, "tries", 1, 10),
            None => Some(3),
        };
        let invalid = match f.get("invalid") {
            Some(i) => self.sounds(i, "invalid"),
            None => Some(Vec::new()),
        };
        let failure = match f.get("failure") {
            Some(n) => self.target(n, "failure"),
            None => {
                self.error(
                    y.pos,
                    "menu needs `failure`: where the caller goes when the tries run out",
                );
                None
            }
        };
        self.unknown_keys(
            &f,
            "menu",
            &[
                "prompt", "options", "timeout", "tries", "invalid", "failure",
            ],
        );
        Some(Action::Menu(Menu {
            prompt: prompt?,
            options: options?,
            timeout: timeout?,
            tries: tries?,
            invalid: invalid?,
            failure: failure?,
        }))
    }

    pub(super) fn options(&mut self, y: &Yaml) -> Option<Vec<(char, NodeId)>> {
        let entries = match &y.value {
            Value::Map(m) if !m.is_empty() && m.len() <= 12 => m,
            _ => {
                self.expected(y, "options", "a mapping of keys (0-9, *, #) to nodes");
                return None;
            }
        };
        let mut out: Vec<(char, NodeId)> = Vec::new();
        let mut ok = true;
        for (k, v) in entries {
            let key = match &k.value {
                Value::Str(s) => Some(s.clone()),
                Value::Int(n) => Some(n.to_string()),
                _ => None,
            };
            let digit = key.as_deref().and_then(|s| {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
                    _ => None,
                }
            });
            let target = self.target(v, "option");
            match digit {
                None => {
                    ok = false;
                    self.error(
                        k.pos,
                        format!(
                            "bad menu key `{}`: a key is one of 0-9, * or # (quote * and #)",
                            key.unwrap_or_else(|| k.value.kind().to_owned())
                        ),
                    );
                }
                // Reported as a repeated key of the mapping.
                Some(d) if out.iter().any(|&(o, _)| o == d) => ok = false,
                Some(d) => match target {
                    Some(t) => out.push((d, t)),
                    None => ok = false,
                },
            }
        }
        out.sort_by_key(|&(k, _)| k);
        ok.then_some(out)
    }

    pub(super) fn collect(&mut self, y: &Yaml) -> Option<Action> {
        let mut f = self.fields(y, "collect")?;
        let prompt = match f.get("prompt") {
            Some(p) => self.sounds(p, "prompt"),
            None => Some(Vec::new()),
        };
        let var = match f.get("var") {
            Some(v) => match self.string(v, "var") {
                Some(name) if expr::is_var_name(&name) => Some(name),
                Some(name) => {
                    let hint = if name.starts_with("vars.") {
                        " (write the name without `vars.`)"
                    } else {
                        ""
                    };
                    self.error(
                        v.pos,
                        format!("bad variable name `{name}`: use letters, digits and _{hint}"),
                    );
                    None
                }
                None => None,
            },
            None => {
                self.error(
                    y.pos,
                    "collect needs `var`: the variable that gets the digits",
                );
                None
            }
        };
        let digits_y = f.get("digits");
        let min_y = f.get("min");
        let max_y = f.get("max");
        let range = match (digits_y, min_y, max_y) {
            (Some(d), None, None) => self.uint(d, "digits", 1, 32).map(|n| (n, n)),
            (Some(d), _, _) => {
                self.error(d.pos, "give either `digits` or `min`/`max`, not both");
                None
            }
            (None, min, Some(max)) => {
                let max = self.uint(max, "max", 1, 32);
                let min = match min {
                    Some(m) => self.uint(m, "min", 0, 32),
                    None => Some(1.min(max.unwrap_or(1))),
                };
                match (min, max) {
                    (Some(lo), Some(hi)) if lo > hi => {
                        self.error(
                            min_y.map(|m| m.pos).unwrap_or(y.pos),
                            format!("min ({lo}) is more than max ({hi})"),
                        );
                        None
                    }
                    (Some(lo), Some(hi)) => Some((lo, hi)),
                    _ => None,
                }
            }
            (None, _, None) => {
                self.error(y.pos, "collect needs `digits` (an exact count) or `max`");
                None
            }
        };
        let terminator = match f.get("terminator") {
            None => Some(Some('#')),
            Some(t) => match &t.value {
                Value::Null => Some(None),
                Value::Str(s) if s.is_empty() => Some(None),
                Value::Str(s) if s == "*" || s == "#" => Some(s.chars().next()),
                Value::Int(n) if (0..=9).contains(n) => Some(char::from_digit(*n as u32, 10)),
                _ => {
                    self.error(
                        t.pos,
                        "terminator: expected one key (\"#\", \"*\" or a digit), or ~ for none",
                    );
                    None
                }
            },
        };
        let timeout = match f.get("timeout") {
            Some(t) => self.duration(
                t,
                "timeout",
                Duration::from_millis(100),
                Duration::from_secs(120),
            ),
            None => Some(Duration::from_secs(5)),
        };
        let inter_digit = match f.get("inter_digit") {
            Some(t) => self.duration(
                t,
                "inter_digit",
                Duration::from_millis(100),
                Duration::from_secs(60),
            ),
            None => Some(Duration::from_secs(3)),
        };
        self.unknown_keys(
            &f,
            "collect",
            &[
                "prompt",
                "var",
                "digits",
                "min",
                "max",
                "terminator",
                "timeout",
                "inter_digit",
            ],
        );
        let (min, max) = range?;
        Some(Action::Collect(Collect {
            prompt: prompt?,
            var: var?,
            min,
            max,
            terminator: terminator?,
            timeout: timeout?,
            inter_digit: inter_digit?,
        }))
    }

    pub(super) fn branch(&mut self, y: &Yaml) -> Option<Action> {
        let items = match &y.value {
            Value::Seq(items) if !items.is_empty() && items.len() <= MAX_LIST => items,
            _ => {
                self.expected(
                    y,
                    "branch",
                    "a list of `{ if: CONDITION, then: NODE }` ending with `{ else: NODE }`",
                );
                return None;
            }
        };
        let mut arms = Vec::new();
        let mut otherwise = None;
        let mut ok = true;
        let last = items.len() - 1;
        for (i, item) in items.iter().enumerate() {
            let Some(mut f) = self.fields(item, "branch arm") else {
                ok = false;
                continue;
            };
            if let Some(e) = f.get("else") {
                if i != last {
                    self.error(item.pos, "`else` must be the last arm of the branch");
                    ok = false;
                }
                if f.has("if") || f.has("then") {
                    self.error(item.pos, "an `else` arm has no `if` or `then`");
                    ok = false;
                }
                otherwise = self.target(e, "else");
                ok &= otherwise.is_some();
                for k in ["if", "then"] {
                    f.get(k);
                }
                self.unknown_keys(&f, "the else arm", &["else"]);
                continue;
            }
            let cond = match f.get("if") {
                Some(c) => self.condition(c),
                None => {
                    self.error(
                        item.pos,
                        "branch arm needs `if` (or `else` for the last arm)",
                    );
                    None
                }
            };
            let then = match f.get("then") {
                Some(t) => self.target(t, "then"),
                None => {
                    self.error(item.pos, "branch arm needs `then`");
                    None
                }
            };
            self.unknown_keys(&f, "a branch arm", &["if", "then"]);
            match (cond, then) {
                (Some(c), Some(t)) => arms.push((c, t)),
                _ => ok = false,
            }
        }
        if otherwise.is_none() && ok {
            self.error(
                items.last().map(|l| l.pos).unwrap_or(y.pos),
                "branch needs a last arm `{ else: NODE }`",
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(Action::Branch(Branch {
            arms,
            otherwise: otherwise?,
        }))
    }

    /// A condition; errors point at the exact character inside it.
    pub(super) fn condition(&mut self, y: &Yaml) -> Option<Expr> {
        let text = match &y.value {
            Value::Str(s) => s.clone(),
            Value::Bool(_) => {
                self.error(y.pos, "if: a condition needs a variable");
                return None;
            }
            _ => {
                self.expected(y, "if", "a condition");
                return None;
            }
        };
        match Expr::parse(&text) {
            Ok(e) => {
                for var in e.vars() {
                    if let Some(queue) = var.queue() {
                        let at = self.inside(y, &text, var.start);
                        self.info.queues.push((queue.to_owned(), at));
                    }
                }
                Some(e)
            }
            Err(e) => {
                let at = self.inside(y, &text, e.start);
                self.error(at, format!("bad condition: {}", e.message));
                None
            }
        }
    }

    /// The position of byte `offset` of the string scalar `y` (whose text is
    /// `text`), skipping an opening quote.
    pub(super) fn inside(&self, y: &Yaml, text: &str, offset: usize) -> Pos {
        let line = self.text.lines().nth(y.pos.line.saturating_sub(1));
        let first = line.and_then(|l| l.chars().nth(y.pos.col.saturating_sub(1)));
        let quote = usize::from(matches!(first, Some('"' | '\'')));
        let before = text.get(..offset).unwrap_or(text);
        match before.rfind('\n') {
            // A condition written over several lines: count within its line.
            Some(nl) => Pos::new(
                y.pos.line + before.matches('\n').count(),
                before.get(nl + 1..).unwrap_or("").chars().count() + 1,
            ),
            None => Pos::new(y.pos.line, y.pos.col + quote + before.chars().count()),
        }
    }

    pub(super) fn set(&mut self, y: &Yaml) -> Option<Action> {
        let entries = match &y.value {
            Value::Map(m) if !m.is_empty() && m.len() <= MAX_LIST => m,
            _ => {
                self.expected(y, "set", "a mapping of variable names to values");
                return None;
            }
        };
        let mut out: Vec<(String, ExprValue)> = Vec::new();
        let mut ok = true;
        for (k, v) in entries {
            let name = k.scalar_text().unwrap_or_default();
            if !expr::is_var_name(&name) {
                let hint = if name.starts_with("vars.") {
                    " (write the name without `vars.`)"
                } else {
                    ""
                };
                self.error(
                    k.pos,
                    format!("bad variable name `{name}`: use letters, digits and _{hint}"),
                );
                ok = false;
                continue;
            }
            let value = match &v.value {
                Value::Str(s) => ExprValue::Str(s.clone()),
                Value::Int(n) => ExprValue::Num(*n as f64),
                Value::Float(x) => ExprValue::Num(*x),
                Value::Bool(b) => ExprValue::Bool(*b),
                _ => {
                    self.expected(v, &format!("set {name}"), "a string, number or boolean");
                    ok = false;
                    continue;
                }
            };
            out.push((name, value));
        }
        ok.then_some(Action::Set(out))
    }

    pub(super) fn transfer_target(&mut self, y: &Yaml) -> Option<TransferTarget> {
        let text = match &y.value {
            Value::Str(s) => s.trim().to_owned(),
            Value::Int(n) if *n >= 0 => n.to_string(),
            _ => {
                self.expected(y, "transfer", "an agent login, an extension or a SIP URI");
                return None;
            }
        };
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            let rest = text.split_once(':').map(|(_, r)| r).unwrap_or("");
            let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            if host.is_empty() || text.contains(char::is_whitespace) || text.len() > 256 {
                self.error(y.pos, format!("bad SIP URI `{text}`"));
                return None;
            }
            return Some(TransferTarget::Uri(text));
        }
        if !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_digit()) {
            return Some(TransferTarget::Extension(text));
        }
        if is_name(&text) {
            return Some(TransferTarget::Agent(text));
        }
        self.error(
            y.pos,
            format!(
                "bad transfer target `{text}`: an agent login, an extension (digits) or a sip: URI"
            ),
        );
        None
    }

    pub(super) fn voicemail(&mut self, y: &Yaml) -> Option<Action> {
        let mut f = self.fields(y, "voicemail")?;
        let greeting = match f.get("greeting") {
            Some(g) => self.sounds(g, "greeting"),
            None => Some(Vec::new()),
        };
        let max = match f.get("max") {
            Some(m) => self.duration(m, "max", Duration::from_secs(1), Duration::from_secs(3600)),
            None => Some(Duration::from_secs(120)),
        };
        let beep = match f.get("beep") {
            Some(b) => self.boolean(b, "beep"),
            None => Some(true),
        };
        self.unknown_keys(&f, "voicemail", &["greeting", "max", "beep"]);
        Some(Action::Voicemail(Voicemail {
            greeting: greeting?,
            max: max?,
            beep: beep?,
        }))
    }

    pub(super) fn webhook(&mut self, y: &Yaml) -> Option<Action> {
        let mut f = self.fields(y, "webhook")?;
        let url = match f.get("url") {
            Some(u) => self
                .string(u, "url")
                .and_then(|text| match reqwest::Url::parse(&text) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                        Some(text)
                    }
                    Ok(_) => {
                        self.error(u.pos, format!("url `{text}` must be http:// or https://"));
                        None
                    }
                    Err(e) => {
                        self.error(u.pos, format!("bad url `{text}`: {e}"));
                        None
                    }
                }),
            None => {
                self.error(y.pos, "webhook needs `url`");
                None
            }
        };
        let timeout = match f.get("timeout") {
            Some(t) => self.duration(
                t,
                "timeout",
                Duration::from_millis(100),
                Duration::from_secs(30),
            ),
            None => Some(Duration::from_secs(5)),
        };
        let failure = match f.get("failure") {
            Some(n) => self.target(n, "failure").map(Some),
            None => Some(None),
        };
        self.unknown_keys(&f, "webhook", &["url", "timeout", "failure"]);
        Some(Action::Webhook(Webhook {
            url: url?,
            timeout: timeout?,
            failure: failure?,
        }))
    }
}
