//! The filter language of the console's `/` and the CLI's `--where`: field comparisons
//! combined with `and`, `or`, `not` and parentheses, e.g. `status = FAILED and attempts >= 2`
//! or `reason ~ busy or zone = America/Chicago`. Pure: the parser checks every field, operator
//! and value here, so a bad expression is refused with the column of its bad token before any
//! query runs; the store turns a parsed [`Filter`] into SQL.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::{CallStatus, ContactStatus, EndedClass};

/// What can be compared, one row of the table below each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// The call's status.
    Status,
    /// Vapi's ended reason.
    Reason,
    /// The ended reason's class (outcome, never-rang, …).
    Class,
    /// The campaign's name.
    Campaign,
    /// The assistant the call was made with (its arm).
    Arm,
    /// The contact's zone.
    Zone,
    /// The phone-number id the call was made from.
    Number,
    /// The contact's number.
    Phone,
    /// Create attempts of the call.
    Attempts,
    /// Seconds from the call's start to its end.
    Duration,
    /// The call's cost in US dollars.
    Cost,
    /// When the call was made.
    Created,
    /// When the call ended.
    Ended,
    /// Vapi's success evaluation, else whether the conversation ended normally.
    Success,
    /// A field of the call's structured data (`data.interested`).
    Data(String),
    /// The contact's name.
    Name,
    /// The call's summary.
    Summary,
}

/// What a field's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Status,
    Class,
    Integer,
    Seconds,
    Money,
    Time,
    Bool,
}

/// The fields, their names and kinds: the one table the parser, the help and the README use.
pub const FIELDS: &[(&str, Kind, &str)] = &[
    (
        "status",
        Kind::Status,
        "the call's status (FAILED, ENDED, IN_PROGRESS, …), or the contact's (PENDING, DIALING, DONE, SKIPPED)",
    ),
    (
        "reason",
        Kind::Text,
        "Vapi's ended reason (customer-busy, …)",
    ),
    (
        "class",
        Kind::Class,
        "the ended reason's class: outcome, assistant-fault, never-rang, concurrency, campaign-stop, number-stop, unclassified, ended-by-switchboard",
    ),
    ("campaign", Kind::Text, "the campaign's name"),
    ("arm", Kind::Text, "the assistant id the call was made with"),
    ("zone", Kind::Text, "the contact's zone (America/Chicago)"),
    (
        "number",
        Kind::Text,
        "the phone-number id the call was made from",
    ),
    ("phone", Kind::Text, "the contact's number"),
    ("attempts", Kind::Integer, "create attempts of the call"),
    (
        "duration",
        Kind::Seconds,
        "seconds from start to end (90, 90s, 2m)",
    ),
    ("cost", Kind::Money, "the call's cost in US dollars"),
    (
        "created",
        Kind::Time,
        "when the call was made (2026-12-01, \"2026-12-01 09:00\" UTC, RFC 3339, or 2h for 2 hours ago)",
    ),
    ("ended", Kind::Time, "when the call ended (as created)"),
    (
        "success",
        Kind::Bool,
        "Vapi's success evaluation, else a normal end: true or false",
    ),
    (
        "data.FIELD",
        Kind::Text,
        "a field of the call's structured data",
    ),
    ("name", Kind::Text, "the contact's name"),
    ("summary", Kind::Text, "the call's summary"),
];

impl Field {
    fn parse(name: &str) -> Option<Field> {
        let lower = name.to_ascii_lowercase();
        if let Some(key) = name
            .strip_prefix("data.")
            .or_else(|| name.strip_prefix("DATA."))
        {
            return (!key.is_empty()).then(|| Field::Data(key.to_string()));
        }
        Some(match lower.as_str() {
            "status" => Field::Status,
            "reason" => Field::Reason,
            "class" => Field::Class,
            "campaign" => Field::Campaign,
            "arm" | "assistant" => Field::Arm,
            "zone" => Field::Zone,
            "number" => Field::Number,
            "phone" => Field::Phone,
            "attempts" => Field::Attempts,
            "duration" => Field::Duration,
            "cost" => Field::Cost,
            "created" => Field::Created,
            "ended" => Field::Ended,
            "success" => Field::Success,
            "name" => Field::Name,
            "summary" => Field::Summary,
            _ => return None,
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Field::Status => Kind::Status,
            Field::Class => Kind::Class,
            Field::Attempts => Kind::Integer,
            Field::Duration => Kind::Seconds,
            Field::Cost => Kind::Money,
            Field::Created | Field::Ended => Kind::Time,
            Field::Success => Kind::Bool,
            Field::Reason
            | Field::Campaign
            | Field::Arm
            | Field::Zone
            | Field::Number
            | Field::Phone
            | Field::Data(_)
            | Field::Name
            | Field::Summary => Kind::Text,
        }
    }
}

/// A comparison (`!=` is `not =`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~`: contains, case-insensitive.
    Contains,
}

/// The ended-reason classes a filter can name (a class's details, such as which stop, are
/// not part of the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassName {
    Outcome,
    AssistantFault,
    NeverRang,
    Concurrency,
    CampaignStop,
    NumberStop,
    Unclassified,
    EndedBySwitchboard,
}

impl ClassName {
    pub const ALL: &'static [(ClassName, &'static str)] = &[
        (ClassName::Outcome, "outcome"),
        (ClassName::AssistantFault, "assistant-fault"),
        (ClassName::NeverRang, "never-rang"),
        (ClassName::Concurrency, "concurrency"),
        (ClassName::CampaignStop, "campaign-stop"),
        (ClassName::NumberStop, "number-stop"),
        (ClassName::Unclassified, "unclassified"),
        (ClassName::EndedBySwitchboard, "ended-by-switchboard"),
    ];

    pub fn of(class: EndedClass) -> ClassName {
        match class {
            EndedClass::Outcome => ClassName::Outcome,
            EndedClass::AssistantFault => ClassName::AssistantFault,
            EndedClass::NeverRang => ClassName::NeverRang,
            EndedClass::Concurrency => ClassName::Concurrency,
            EndedClass::CampaignStop { .. } => ClassName::CampaignStop,
            EndedClass::NumberStop { .. } => ClassName::NumberStop,
            EndedClass::Unclassified => ClassName::Unclassified,
            EndedClass::EndedBySwitchboard => ClassName::EndedBySwitchboard,
        }
    }

    fn parse(text: &str) -> Option<ClassName> {
        let text = text.to_ascii_lowercase().replace('_', "-");
        ClassName::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(c, _)| *c)
    }
}

/// A comparison's right-hand side, read by its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Status(CallStatus),
    /// `status = PENDING`: the contact's status (no call status has these names).
    ContactStatus(ContactStatus),
    Class(ClassName),
    Integer(i64),
    /// Seconds, or dollars.
    Number(f64),
    /// An instant, or so long before the query runs.
    At(DateTime<Utc>),
    Ago(std::time::Duration),
    Bool(bool),
}

/// What a filter's rows are: calls (each with its contact), or contacts (each with its latest
/// call, if it has one: a contact never dialled matches no comparison on a call's field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Calls,
    Contacts,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp { field: Field, op: Op, value: Value },
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// Whether any comparison is on `field`'s kind of thing (the store reads the ended
    /// reasons' classes only for a filter that names one).
    pub fn any(&self, test: &impl Fn(&Field) -> bool) -> bool {
        match self {
            Filter::Cmp { field, .. } => test(field),
            Filter::Not(f) => f.any(test),
            Filter::And(a, b) | Filter::Or(a, b) => a.any(test) || b.any(test),
        }
    }
}

/// A refused expression: what is wrong and at which column (1-based, in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

/// The longest name a saved filter takes (it is a tab's label).
pub const MAX_NAME_CHARS: usize = 24;

/// A saved filter's name: a short label (letters, digits, `-`, `_`, `.`), or why not.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a saved filter needs a name".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a filter's name is at most {MAX_NAME_CHARS} characters"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "`{}` in a filter's name: use letters, digits, -, _ or .",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

/// Whether what was typed after `/` is an expression (it has a comparison) rather than text
/// to search for: `busy` searches, `reason ~ busy` filters.
pub fn is_expression(text: &str) -> bool {
    text.contains(['=', '<', '>', '~'])
}

/// Parses `text` (see the module's doc).
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.chars().count() + 1,
    };
    let filter = parser.or()?;
    match parser.peek() {
        None => Ok(filter),
        Some(t) => Err(t.error(format!("expected `and`, `or` or the end, found {}", t.tok))),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(&'static str),
    Open,
    Close,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Quoted(q) => write!(f, "\"{q}\""),
            Tok::Op(o) => write!(f, "`{o}`"),
            Tok::Open => f.write_str("`(`"),
            Tok::Close => f.write_str("`)`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based column of its first character.
    column: usize,
}

impl Token {
    fn error(&self, message: String) -> FilterError {
        FilterError {
            column: self.column,
            message,
        }
    }
}

const OPS: &[&str] = &["!=", "<=", ">=", "=", "<", ">", "~"];

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' || c == ')' {
            let tok = if c == '(' { Tok::Open } else { Tok::Close };
            out.push(Token { tok, column });
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let mut value = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return Err(FilterError {
                            column,
                            message: "a quote that is never closed".into(),
                        });
                    }
                    Some('\\') if chars.get(j + 1).is_some() => {
                        value.push(chars[j + 1]);
                        j += 2;
                    }
                    Some(q) if *q == c => break,
                    Some(other) => {
                        value.push(*other);
                        j += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Quoted(value),
                column,
            });
            i = j + 1;
            continue;
        }
        if let Some(op) = OPS.iter().find(|op| {
            op.chars()
                .enumerate()
                .all(|(k, oc)| chars.get(i + k) == Some(&oc))
        }) {
            out.push(Token {
                tok: Tok::Op(op),
                column,
            });
            i += op.len();
            continue;
        }
        if c == '!' {
            return Err(FilterError {
                column,
                message: "`!` is only `!=` (for a negation write `not`)".into(),
            });
        }
        let start = i;
        while i < chars.len()
            && !chars[i].is_whitespace()
            && !matches!(
                chars[i],
                '(' | ')' | '"' | '\'' | '=' | '<' | '>' | '~' | '!'
            )
        {
            i += 1;
        }
        out.push(Token {
            tok: Tok::Word(chars[start..i].iter().collect()),
            column,
        });
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The column after the last character, where "the end" is.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self, wanted: &str) -> Result<Token, FilterError> {
        let token = self.tokens.get(self.at).cloned().ok_or(FilterError {
            column: self.end,
            message: format!("expected {wanted}, found the end"),
        })?;
        self.at += 1;
        Ok(token)
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(word));
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.keyword("not") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if matches!(self.peek(), Some(Token { tok: Tok::Open, .. })) {
            let open = self.next("`(`")?;
            let inner = self.or()?;
            return match self.tokens.get(self.at) {
                Some(Token {
                    tok: Tok::Close, ..
                }) => {
                    self.at += 1;
                    Ok(inner)
                }
                Some(t) => Err(t.error(format!("expected `)`, found {}", t.tok))),
                None => Err(open.error("a parenthesis that is never closed".into())),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, FilterError> {
        let token = self.next("a field")?;
        let Tok::Word(name) = &token.tok else {
            return Err(token.error(format!("expected a field, found {}", token.tok)));
        };
        let field = Field::parse(name).ok_or_else(|| {
            token.error(format!(
                "unknown field `{name}` (fields: {})",
                FIELDS
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let op_token = self.next("an operator (=, !=, <, <=, >, >=, ~)")?;
        let Tok::Op(op_text) = op_token.tok else {
            return Err(op_token.error(format!(
                "expected an operator (=, !=, <, <=, >, >=, ~) after `{name}`, found {}",
                op_token.tok
            )));
        };
        let (op, negated) = match op_text {
            "=" => (Op::Eq, false),
            "!=" => (Op::Eq, true),
            "<" => (Op::Lt, false),
            "<=" => (Op::Le, false),
            ">" => (Op::Gt, false),
            ">=" => (Op::Ge, false),
            _ => (Op::Contains, false),
        };
        let kind = field.kind();
        let ordered = matches!(
            kind,
            Kind::Integer | Kind::Seconds | Kind::Money | Kind::Time
        );
        let allowed = match op {
            Op::Eq => true,
            Op::Contains => kind == Kind::Text,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => ordered,
        };
        if !allowed {
            return Err(op_token.error(format!(
                "`{op_text}` does not apply to {name} ({})",
                if ordered {
                    "=, !=, <, <=, >, >="
                } else if kind == Kind::Text {
                    "=, != or ~"
                } else {
                    "= or !="
                }
            )));
        }
        let value_token = self.next("a value")?;
        let text = match &value_token.tok {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => q.clone(),
            other => return Err(value_token.error(format!("expected a value, found {other}"))),
        };
        let value = value_of(kind, &text).map_err(|message| value_token.error(message))?;
        let cmp = Filter::Cmp { field, op, value };
        Ok(if negated {
            Filter::Not(Box::new(cmp))
        } else {
            cmp
        })
    }
}

/// Reads a value by the kind of its field.
fn value_of(kind: Kind, text: &str) -> Result<Value, String> {
    match kind {
        Kind::Text => Ok(Value::Text(text.to_string())),
        Kind::Status => text
            .parse::<CallStatus>()
            .map(Value::Status)
            .or_else(|e| text.parse::<ContactStatus>().map(Value::ContactStatus).map_err(|_| e))
            .map_err(|e| {
                format!("{e} (or a contact's: PENDING, DIALING, DONE, SKIPPED)")
            }),
        Kind::Class => ClassName::parse(text).map(Value::Class).ok_or_else(|| {
            format!(
                "unknown class `{text}` (classes: {})",
                ClassName::ALL
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        Kind::Integer => text
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("`{text}` is not a whole number")),
        Kind::Money => text
            .trim_start_matches('$')
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::Number)
            .ok_or_else(|| format!("`{text}` is not an amount in dollars")),
        Kind::Seconds => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .or_else(|| humantime::parse_duration(text).ok().map(|d| d.as_secs_f64()))
            .map(Value::Number)
            .ok_or_else(|| format!("`{text}` is not a length (90, 90s, 2m)")),
        Kind::Time => time_of(text).ok_or_else(|| {
            format!(
                "`{text}` is not a time (2026-12-01, \"2026-12-01 09:00\", RFC 3339, or 2h for 2 hours ago)"
            )
        }),
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(Value::Bool(true)),
            "false" | "no" => Ok(Value::Bool(false)),
            _ => Err(format!("`{text}` is not true or false")),
        },
    }
}

/// An instant in UTC (a date is its midnight), or a length before now.
fn time_of(text: &str) -> Option<Value> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(Value::At(at.with_timezone(&Utc)));
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M") {
        return Some(Value::At(at.and_utc()));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(Value::At(date.and_hms_opt(0, 0, 0)?.and_utc()));
    }
    let ago = text.strip_suffix(" ago").unwrap_or(text);
    humantime::parse_duration(ago).ok().map(Value::Ago)
}

#[cfg(test)]
mod name_tests {
    use super::check_name;

    #[test]
    fn a_saved_filter_is_named_by_a_short_label() {
        assert_eq!(check_name("failed-twice"), Ok(()));
        assert_eq!(check_name("chicago_busy.2"), Ok(()));
        assert!(check_name("").is_err());
        assert!(
            check_name("with space")
                .unwrap_err()
                .contains("` ` in a filter's name")
        );
        assert!(check_name("a\u{1b}[31m").unwrap_err().contains("\\u{1b}"));
        assert!(
            check_name(&"x".repeat(25))
                .unwrap_err()
                .contains("at most 24")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: Field, op: Op, value: Value) -> Filter {
        Filter::Cmp { field, op, value }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn valid_expressions_parse_to_their_tree() {
        let failed_twice = Filter::And(
            Box::new(cmp(
                Field::Status,
                Op::Eq,
                Value::Status(CallStatus::Failed),
            )),
            Box::new(cmp(Field::Attempts, Op::Ge, Value::Integer(2))),
        );
        let cases: Vec<(&str, Filter)> = vec![
            ("status = FAILED and attempts >= 2", failed_twice.clone()),
            ("STATUS=failed AND attempts>=2", failed_twice),
            (
                "reason ~ busy or zone = America/Chicago",
                Filter::Or(
                    Box::new(cmp(Field::Reason, Op::Contains, text("busy"))),
                    Box::new(cmp(Field::Zone, Op::Eq, text("America/Chicago"))),
                ),
            ),
            (
                // `and` binds tighter than `or`; parentheses group.
                "class = never-rang or (cost > 0.5 and not success = true)",
                Filter::Or(
                    Box::new(cmp(
                        Field::Class,
                        Op::Eq,
                        Value::Class(ClassName::NeverRang),
                    )),
                    Box::new(Filter::And(
                        Box::new(cmp(Field::Cost, Op::Gt, Value::Number(0.5))),
                        Box::new(Filter::Not(Box::new(cmp(
                            Field::Success,
                            Op::Eq,
                            Value::Bool(true),
                        )))),
                    )),
                ),
            ),
            (
                "attempts = 1 or attempts = 2 and attempts = 3",
                Filter::Or(
                    Box::new(cmp(Field::Attempts, Op::Eq, Value::Integer(1))),
                    Box::new(Filter::And(
                        Box::new(cmp(Field::Attempts, Op::Eq, Value::Integer(2))),
                        Box::new(cmp(Field::Attempts, Op::Eq, Value::Integer(3))),
                    )),
                ),
            ),
            (
                "reason != customer-busy",
                Filter::Not(Box::new(cmp(Field::Reason, Op::Eq, text("customer-busy")))),
            ),
            (
                "data.interested = yes",
                cmp(Field::Data("interested".into()), Op::Eq, text("yes")),
            ),
            (
                "name ~ \"O'Brien\"",
                cmp(Field::Name, Op::Contains, text("O'Brien")),
            ),
            (
                "status = pending",
                cmp(
                    Field::Status,
                    Op::Eq,
                    Value::ContactStatus(crate::ContactStatus::Pending),
                ),
            ),
            (
                "duration >= 2m",
                cmp(Field::Duration, Op::Ge, Value::Number(120.0)),
            ),
            (
                "created >= 2026-12-01",
                cmp(
                    Field::Created,
                    Op::Ge,
                    Value::At("2026-12-01T00:00:00Z".parse().unwrap()),
                ),
            ),
            (
                "ended < \"2026-12-01 09:30\"",
                cmp(
                    Field::Ended,
                    Op::Lt,
                    Value::At("2026-12-01T09:30:00Z".parse().unwrap()),
                ),
            ),
            (
                "created > 2h",
                cmp(
                    Field::Created,
                    Op::Gt,
                    Value::Ago(std::time::Duration::from_secs(7_200)),
                ),
            ),
            (
                "cost <= $1.25",
                cmp(Field::Cost, Op::Le, Value::Number(1.25)),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn invalid_expressions_say_what_and_where() {
        let cases: &[(&str, usize, &str)] = &[
            ("stauts = FAILED", 1, "unknown field `stauts`"),
            ("status = FIALED", 10, "unknown call status"),
            ("status ~ FAIL", 8, "`~` does not apply to status"),
            ("reason < busy", 8, "`<` does not apply to reason"),
            ("attempts >= two", 13, "`two` is not a whole number"),
            ("status FAILED", 8, "expected an operator"),
            ("status =", 9, "expected a value, found the end"),
            ("status = FAILED and", 20, "expected a field, found the end"),
            (
                "status = FAILED attempts > 1",
                17,
                "expected `and`, `or` or the end",
            ),
            ("(status = FAILED", 1, "a parenthesis that is never closed"),
            ("name = \"Ann", 8, "a quote that is never closed"),
            ("!status = FAILED", 1, "`!` is only `!=`"),
            ("class = sad", 9, "unknown class `sad`"),
            ("created > yesterday", 11, "is not a time"),
            ("success = maybe", 11, "is not true or false"),
            ("duration > long", 12, "is not a length"),
            ("= FAILED", 1, "expected a field, found `=`"),
            ("data. = x", 1, "unknown field `data.`"),
            ("", 1, "expected a field, found the end"),
        ];
        for (input, column, message) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err.column, *column, "{input}: {err}");
            assert!(err.message.contains(message), "{input}: {err}");
        }
    }

    #[test]
    fn only_text_with_a_comparison_is_an_expression() {
        for (text, expression) in [
            ("busy", false),
            ("Grace Hopper", false),
            ("+1415", false),
            ("reason ~ busy", true),
            ("attempts>=2", true),
            ("status != ENDED", true),
        ] {
            assert_eq!(is_expression(text), expression, "{text}");
        }
    }

    #[test]
    fn a_filter_says_whether_it_names_a_field() {
        let f = parse("not (reason ~ busy and class = outcome)").unwrap();
        assert!(f.any(&|field| *field == Field::Class));
        assert!(!f.any(&|field| *field == Field::Success));
    }
}
