//! The condition language of `branch` nodes (DESIGN §5): comparisons of a
//! variable with a literal (`== != < <= > >=`), `and`, `or`, `not` and
//! parentheses.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | test
//! test    := operand [op operand]      (a bare variable tests truthiness)
//! operand := VARIABLE | "string" | 'string' | NUMBER | true | false
//! ```
//!
//! `not` binds tighter than `and`, which binds tighter than `or`. Typing at
//! run time never fails: a comparison with a missing variable is false, a
//! string meets a number only when it reads as one (`"4" == 4`), and any
//! other mix of types compares false.

use std::cmp::Ordering;
use std::fmt;

/// Longest condition accepted, in bytes.
pub const MAX_LEN: usize = 1024;
/// Deepest nesting of `not` and parentheses.
pub const MAX_DEPTH: usize = 32;

/// A variable's value at run time, or a literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// The operator with its sides swapped (`1 < x` is `x > 1`).
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            op => op,
        }
    }
}

/// A variable named in a condition, with its byte range in the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    /// The full dotted name, e.g. `queue.support.waiting`.
    pub name: String,
    pub start: usize,
    pub end: usize,
}

impl Var {
    /// For `queue.NAME.*`, the queue's name.
    pub fn queue(&self) -> Option<&str> {
        let rest = self.name.strip_prefix("queue.")?;
        rest.rsplit_once('.').map(|(queue, _)| queue)
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Var(Var),
    Lit(Value),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `var OP literal` or `var OP var` (a literal on the left is moved right).
    Cmp {
        left: Var,
        op: CmpOp,
        right: Operand,
    },
    /// A bare variable: true when it is `true`, a non-zero number or a
    /// non-empty string.
    Truthy(Var),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// Why a condition was refused; `start` is a byte offset into its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {start})")]
pub struct ExprError {
    pub start: usize,
    pub message: String,
}

/// The type a known variable always has (`vars.*` may hold anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarType {
    Str,
    Num,
    Bool,
    Any,
}

/// The variables of DESIGN §5 and their types, or why a name is unknown.
fn var_type(name: &str) -> Result<VarType, String> {
    let fixed = match name {
        "caller.number" | "contact.name" | "thread.last_agent" | "dialled" => Some(VarType::Str),
        "caller.known" | "caller.vip" | "thread.open" => Some(VarType::Bool),
        "thread.priority" => Some(VarType::Num),
        _ => None,
    };
    if let Some(t) = fixed {
        return Ok(t);
    }
    let (root, rest) = name.split_once('.').unwrap_or((name, ""));
    match root {
        "vars" => {
            if is_var_name(rest) {
                Ok(VarType::Any)
            } else {
                Err(format!(
                    "bad variable `{name}`: vars.NAME takes a name of letters, digits and _"
                ))
            }
        }
        "queue" => match rest.rsplit_once('.') {
            Some((queue, "waiting" | "available" | "ewt")) if !queue.is_empty() => Ok(VarType::Num),
            _ => Err(format!(
                "unknown variable `{name}`: expected queue.NAME.waiting, queue.NAME.available or queue.NAME.ewt"
            )),
        },
        "caller" => Err(format!(
            "unknown variable `{name}`: caller has number, known and vip"
        )),
        "contact" => Err(format!("unknown variable `{name}`: contact has name")),
        "thread" => Err(format!(
            "unknown variable `{name}`: thread has open, priority and last_agent"
        )),
        _ => Err(format!(
            "unknown variable `{name}`: variables are caller.*, contact.name, thread.*, dialled, queue.NAME.* and vars.NAME"
        )),
    }
}

/// A name `set`, `collect` and webhooks may give a variable (`vars.NAME`).
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(CmpOp),
    And,
    Or,
    Not,
    True,
    False,
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<(Tok, usize, usize)>, ExprError> {
    let err = |start, message: &str| ExprError {
        start,
        message: message.to_owned(),
    };
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let tok = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::Open
            }
            b')' => {
                i += 1;
                Tok::Close
            }
            b'=' | b'!' | b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                i += if eq { 2 } else { 1 };
                match (b, eq) {
                    (b'=', true) => Tok::Op(CmpOp::Eq),
                    (b'!', true) => Tok::Op(CmpOp::Ne),
                    (b'<', true) => Tok::Op(CmpOp::Le),
                    (b'>', true) => Tok::Op(CmpOp::Ge),
                    (b'<', false) => Tok::Op(CmpOp::Lt),
                    (b'>', false) => Tok::Op(CmpOp::Gt),
                    (b'=', false) => return Err(err(start, "use == to compare")),
                    _ => return Err(err(start, "use `not` to negate, or != to compare")),
                }
            }
            b'"' | b'\'' => {
                let quote = b;
                let mut s = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(err(start, "unterminated string")),
                        Some(&c) if c == quote => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match bytes.get(i + 1) {
                            Some(&c) if c == quote || c == b'\\' => {
                                s.push(c);
                                i += 2;
                            }
                            _ => return Err(err(i, "only \\\\ and an escaped quote are allowed")),
                        },
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                // Quotes and backslashes are ASCII, so the bytes between them
                // are whole UTF-8 characters of `text`.
                Tok::Str(String::from_utf8_lossy(&s).into_owned())
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                i += 1;
                while bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'_')
                {
                    i += 1;
                }
                let word = text.get(start..i).unwrap_or("");
                let valid = {
                    let digits = word.strip_prefix(['-', '+']).unwrap_or(word);
                    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
                    !int.is_empty()
                        && !frac.is_empty()
                        && int.bytes().all(|c| c.is_ascii_digit())
                        && frac.bytes().all(|c| c.is_ascii_digit())
                        && digits.len() <= 20
                };
                match word.parse::<f64>() {
                    Ok(n) if valid => Tok::Num(n),
                    _ => return Err(err(start, &format!("bad number `{word}`"))),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                i += 1;
                while bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
                {
                    i += 1;
                }
                let word = text.get(start..i).unwrap_or("");
                match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "true" => Tok::True,
                    "false" => Tok::False,
                    _ => Tok::Ident(word.to_owned()),
                }
            }
            b'&' | b'|' => return Err(err(start, "use `and` / `or`")),
            _ => {
                let c = text.get(start..).and_then(|s| s.chars().next());
                return Err(err(
                    start,
                    &format!("unexpected character `{}`", c.unwrap_or('?')),
                ));
            }
        };
        out.push((tok, start, i));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize, usize)>,
    at: usize,
    len: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.0)
    }

    /// Byte offset of the next token (or the end of the text).
    fn here(&self) -> usize {
        self.toks.get(self.at).map(|t| t.1).unwrap_or(self.len)
    }

    fn error(&self, message: impl Into<String>) -> ExprError {
        ExprError {
            start: self.here(),
            message: message.into(),
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} deep")));
        }
        match self.peek() {
            Some(Tok::Not) => {
                self.at += 1;
                self.depth += 1;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            Some(Tok::Open) => {
                let open = self.here();
                self.at += 1;
                self.depth += 1;
                let inner = self.or()?;
                self.depth -= 1;
                if self.peek() != Some(&Tok::Close) {
                    return Err(ExprError {
                        start: open,
                        message: "unclosed `(`".to_owned(),
                    });
                }
                self.at += 1;
                Ok(inner)
            }
            _ => self.test(),
        }
    }

    fn operand(&mut self) -> Result<(Operand, usize), ExprError> {
        let Some((tok, start, end)) = self.toks.get(self.at).cloned() else {
            return Err(self.error("expected a variable or a value"));
        };
        let operand = match tok {
            Tok::Ident(name) => {
                var_type(&name).map_err(|message| ExprError { start, message })?;
                Operand::Var(Var { name, start, end })
            }
            Tok::Str(s) => Operand::Lit(Value::Str(s)),
            Tok::Num(n) => Operand::Lit(Value::Num(n)),
            Tok::True => Operand::Lit(Value::Bool(true)),
            Tok::False => Operand::Lit(Value::Bool(false)),
            _ => return Err(self.error("expected a variable or a value")),
        };
        self.at += 1;
        Ok((operand, start))
    }

    fn test(&mut self) -> Result<Expr, ExprError> {
        let (left, left_start) = self.operand()?;
        let Some(Tok::Op(op)) = self.peek().cloned() else {
            return match left {
                Operand::Var(var) => Ok(Expr::Truthy(var)),
                Operand::Lit(_) => Err(ExprError {
                    start: left_start,
                    message: "a condition needs a variable".to_owned(),
                }),
            };
        };
        let op_start = self.here();
        self.at += 1;
        let (right, right_start) = self.operand()?;
        let (var, op, other, other_start) = match (left, right) {
            (Operand::Var(v), right) => (v, op, right, right_start),
            (Operand::Lit(lit), Operand::Var(v)) => {
                (v, op.flipped(), Operand::Lit(lit), left_start)
            }
            (Operand::Lit(_), Operand::Lit(_)) => {
                return Err(ExprError {
                    start: left_start,
                    message: "compares two values: one side must be a variable".to_owned(),
                });
            }
        };
        if let Operand::Lit(lit) = &other {
            check_types(&var, op, lit, op_start, other_start)?;
        }
        Ok(Expr::Cmp {
            left: var,
            op,
            right: other,
        })
    }
}

/// Refuses comparisons that can never be true for a variable's type.
fn check_types(
    var: &Var,
    op: CmpOp,
    lit: &Value,
    op_start: usize,
    lit_start: usize,
) -> Result<(), ExprError> {
    if op.is_ordering() && matches!(lit, Value::Bool(_)) {
        return Err(ExprError {
            start: op_start,
            message: "true and false can only be compared with == or !=".to_owned(),
        });
    }
    let want = var_type(&var.name).unwrap_or(VarType::Any);
    let fits = match (want, lit) {
        (VarType::Any, _) => true,
        (VarType::Bool, Value::Bool(_)) => true,
        (VarType::Num, Value::Num(_)) => true,
        (VarType::Str, Value::Str(_)) => true,
        // Caller numbers and dialled numbers are digit strings.
        (VarType::Str, Value::Num(_)) => true,
        _ => false,
    };
    if fits {
        return Ok(());
    }
    let kind = match want {
        VarType::Bool => "true or false",
        VarType::Num => "a number",
        VarType::Str | VarType::Any => "a string",
    };
    Err(ExprError {
        start: lit_start,
        message: format!("`{}` is compared with {kind}", var.name),
    })
}

impl Expr {
    /// Parses a condition; errors carry a byte offset into `text`.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        if text.len() > MAX_LEN {
            return Err(ExprError {
                start: 0,
                message: format!("condition longer than {MAX_LEN} bytes"),
            });
        }
        let toks = lex(text)?;
        let mut parser = Parser {
            toks,
            at: 0,
            len: text.len(),
            depth: 0,
        };
        if parser.peek().is_none() {
            return Err(parser.error("empty condition"));
        }
        let expr = parser.or()?;
        match parser.peek() {
            None => Ok(expr),
            Some(Tok::Close) => Err(parser.error("`)` without `(`")),
            Some(_) => Err(parser.error("expected `and`, `or` or the end of the condition")),
        }
    }

    /// Evaluates the condition; `lookup` gives a variable's value by its full
    /// name (`caller.vip`, `vars.csat`) or `None` when it is not set.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Expr::Cmp { left, op, right } => {
                let Some(a) = lookup(&left.name) else {
                    return false;
                };
                let b = match right {
                    Operand::Lit(v) => v.clone(),
                    Operand::Var(v) => match lookup(&v.name) {
                        Some(b) => b,
                        None => return false,
                    },
                };
                compare(&a, *op, &b)
            }
            Expr::Truthy(var) => match lookup(&var.name) {
                Some(Value::Bool(b)) => b,
                Some(Value::Num(n)) => n != 0.0 && !n.is_nan(),
                Some(Value::Str(s)) => !s.is_empty(),
                None => false,
            },
            Expr::Not(e) => !e.eval(lookup),
            Expr::And(a, b) => a.eval(lookup) && b.eval(lookup),
            Expr::Or(a, b) => a.eval(lookup) || b.eval(lookup),
        }
    }

    /// Every variable the condition reads, in text order.
    pub fn vars(&self) -> Vec<&Var> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out.sort_by_key(|v| v.start);
        out
    }

    fn collect_vars<'a>(&'a self, out: &mut Vec<&'a Var>) {
        match self {
            Expr::Cmp { left, right, .. } => {
                out.push(left);
                if let Operand::Var(v) = right {
                    out.push(v);
                }
            }
            Expr::Truthy(v) => out.push(v),
            Expr::Not(e) => e.collect_vars(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect_vars(out);
                b.collect_vars(out);
            }
        }
    }
}

/// Compares two values; mixed types never panic and mostly compare false.
fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|n| n.is_finite());
    let boolean = |s: &str| match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let ord = match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Num(x), Value::Str(s)) => number(s).and_then(|y| x.partial_cmp(&y)),
        (Value::Str(s), Value::Num(y)) => number(s).and_then(|x| x.partial_cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if !op.is_ordering() => Some(x.cmp(y)),
        (Value::Bool(x), Value::Str(s)) if !op.is_ordering() => boolean(s).map(|y| x.cmp(&y)),
        (Value::Str(s), Value::Bool(y)) if !op.is_ordering() => boolean(s).map(|x| x.cmp(y)),
        _ => None,
    };
    ord.is_some_and(|ord| op.holds(ord))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn eval(text: &str, env: &HashMap<String, Value>) -> bool {
        let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        expr.eval(&|name| env.get(name).cloned())
    }

    fn error(text: &str) -> ExprError {
        Expr::parse(text).expect_err(text)
    }

    #[test]
    fn precedence_not_and_or() {
        let env = vars(&[
            ("caller.vip", Value::Bool(true)),
            ("caller.known", Value::Bool(false)),
            ("thread.priority", Value::Num(2.0)),
        ]);
        // and binds tighter than or.
        assert!(eval(
            "caller.vip or caller.known and thread.priority > 5",
            &env
        ));
        assert!(!eval(
            "(caller.vip or caller.known) and thread.priority > 5",
            &env
        ));
        // not binds tighter than and.
        assert!(eval("not caller.known and caller.vip", &env));
        assert!(!eval("not (caller.known or caller.vip)", &env));
        assert!(eval("not not caller.vip", &env));
        assert!(eval("((thread.priority >= 2))", &env));
        let parsed = Expr::parse("caller.vip or caller.known and thread.open").unwrap();
        assert!(matches!(parsed, Expr::Or(_, ref b) if matches!(**b, Expr::And(..))));
    }

    #[test]
    fn operators_and_literals() {
        let env = vars(&[
            ("thread.priority", Value::Num(2.0)),
            ("contact.name", Value::Str("Ada".into())),
            ("vars.csat", Value::Str("4".into())),
            ("caller.known", Value::Bool(true)),
        ]);
        let cases = [
            ("thread.priority == 2", true),
            ("thread.priority != 2", false),
            ("thread.priority < 3", true),
            ("thread.priority <= 2", true),
            ("thread.priority > 2", false),
            ("thread.priority >= 2.5", false),
            ("thread.priority > -1", true),
            ("3 > thread.priority", true),
            ("contact.name == \"Ada\"", true),
            ("contact.name == 'Ada'", true),
            ("contact.name != 'Bob'", true),
            ("contact.name < 'B'", true),
            ("vars.csat >= 4", true),
            ("vars.csat == '4'", true),
            ("vars.csat < 4", false),
            ("caller.known == true", true),
            ("caller.known != false", true),
            ("caller.known", true),
            ("vars.csat", true),
        ];
        for (text, want) in cases {
            assert_eq!(eval(text, &env), want, "{text}");
        }
    }

    #[test]
    fn typing_rules_never_panic() {
        let env = vars(&[
            ("vars.word", Value::Str("abc".into())),
            ("vars.flag", Value::Bool(true)),
            ("vars.flagtext", Value::Str("true".into())),
            ("vars.n", Value::Num(f64::NAN)),
            ("vars.zero", Value::Num(0.0)),
            ("vars.empty", Value::Str(String::new())),
        ]);
        let cases = [
            // A missing variable compares false, whatever the operator.
            ("vars.missing == 1", false),
            ("vars.missing != 1", false),
            ("not vars.missing == 1", true),
            ("vars.missing", false),
            // A string that is not a number never meets a number.
            ("vars.word == 1", false),
            ("vars.word != 1", false),
            ("vars.word < 1", false),
            // Booleans: equality only; their string forms match.
            ("vars.flag == true", true),
            ("vars.flagtext == true", true),
            ("vars.flag == 1", false),
            ("vars.flag == 'yes'", false),
            ("vars.n == 1", false),
            ("vars.n != 1", false),
            ("vars.zero", false),
            ("vars.empty", false),
            ("vars.word == vars.word", true),
            ("vars.word == vars.missing", false),
        ];
        for (text, want) in cases {
            assert_eq!(eval(text, &env), want, "{text}");
        }
    }

    #[test]
    fn errors_carry_byte_positions() {
        let cases: [(&str, usize, &str); 16] = [
            ("", 0, "empty"),
            ("caller.vip ==", 13, "expected a variable"),
            ("caller.vip = true", 11, "use =="),
            ("(caller.vip", 0, "unclosed"),
            ("caller.vip)", 10, "without `(`"),
            ("caller.vip caller.known", 11, "expected `and`"),
            ("caller.foo", 0, "unknown variable `caller.foo`"),
            ("x.y == 1", 0, "unknown variable `x.y`"),
            ("queue.support.size > 1", 0, "queue.NAME.waiting"),
            ("vars.a-b == 1", 0, "bad variable"),
            ("thread.priority > 'high'", 18, "compared with a number"),
            ("caller.vip < true", 11, "only be compared with =="),
            ("1 == 2", 0, "one side must be a variable"),
            ("'x'", 0, "needs a variable"),
            ("dialled == \"100", 11, "unterminated"),
            ("thread.priority > 1.2.3", 18, "bad number"),
        ];
        for (text, at, message) in cases {
            let e = error(text);
            assert_eq!(e.start, at, "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
        assert!(
            error("caller.vip && caller.known")
                .message
                .contains("`and`")
        );
        assert!(error("caller.vip ! caller.known").message.contains("not"));
    }

    #[test]
    fn bounded_length_and_depth() {
        let deep = format!("{}caller.vip{}", "(".repeat(40), ")".repeat(40));
        assert!(error(&deep).message.contains("nested"));
        let nots = format!("{}caller.vip", "not ".repeat(40));
        assert!(error(&nots).message.contains("nested"));
        let long = vec!["caller.vip"; 200].join(" or ");
        assert!(error(&long).message.contains("longer"));
        let ok = format!("{}caller.vip{}", "(".repeat(20), ")".repeat(20));
        assert!(Expr::parse(&ok).is_ok());
    }

    #[test]
    fn vars_and_queue_names() {
        let e = Expr::parse("queue.sales-emea.waiting > 3 or vars.x == 'y' and dialled == 100")
            .unwrap();
        let names: Vec<(&str, usize)> = e
            .vars()
            .iter()
            .map(|v| (v.name.as_str(), v.start))
            .collect();
        assert_eq!(
            names,
            [
                ("queue.sales-emea.waiting", 0),
                ("vars.x", 32),
                ("dialled", 50)
            ]
        );
        assert_eq!(e.vars()[0].queue(), Some("sales-emea"));
        assert_eq!(e.vars()[1].queue(), None);
    }

    #[test]
    fn unicode_strings_and_odd_input() {
        let env = vars(&[("contact.name", Value::Str("Zoë".into()))]);
        assert!(eval("contact.name == \"Zoë\"", &env));
        assert!(eval(r#"contact.name != 'it\'s'"#, &env));
        for junk in [
            "é",
            "caller.vip == é",
            "\u{0}",
            "((((",
            "not",
            "or",
            "and caller.vip",
        ] {
            assert!(Expr::parse(junk).is_err(), "{junk:?}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// DESIGN §10: no input crashes the switch; conditions come from
        /// admin files, values from callers and webhooks.
        #[test]
        fn parse_and_eval_never_panic(
            text in "[a-z._()<>=!'\" 0-9-]{0,80}",
            n in any::<f64>(),
            s in ".{0,8}",
        ) {
            if let Ok(e) = Expr::parse(&text) {
                let env = |name: &str| match name.len() % 4 {
                    0 => Some(Value::Num(n)),
                    1 => Some(Value::Str(s.clone())),
                    2 => Some(Value::Bool(n > 0.0)),
                    _ => None,
                };
                let _ = e.eval(&env);
            }
        }

        #[test]
        fn error_offsets_are_inside_the_text(text in "\\PC{0,60}") {
            if let Err(e) = Expr::parse(&text) {
                prop_assert!(e.start <= text.len());
            }
        }
    }
}
