//! Rule evaluation and name/value set unpacking, as Pacemaker does them.
//!
//! A `<rule>` combines conditions with `boolean-op` ("and" by default, or
//! "or"): node attribute `<expression>`s, `<date_expression>`s (`gt`, `lt`,
//! `in_range` with an end or a `<duration>`, `date_spec`), `<rsc_expression>`s,
//! `<op_expression>`s and nested `<rule>`s, any of which may be an `id-ref` to
//! an element defined elsewhere. [`evaluate_rule`] answers whether a rule
//! passes for a [`RuleContext`]: the current time, a node's attributes, the
//! resource and operation at hand.
//!
//! Pacemaker treats a misconfigured condition as "not passing", logs it and
//! carries on (so an `or` may still pass through a later condition).
//! [`evaluate_rule_with`] does exactly that and collects the problems in a
//! [`RuleLog`], together with the time at which the rule's result may change;
//! [`evaluate_rule`] is the strict form that turns the first problem met into
//! a [`RuleError`].
//!
//! [`unpack_nvpair_sets`] collects `instance_attributes`, `meta_attributes`,
//! `utilization` or `cluster_property_set` blocks into a map: blocks whose
//! rule fails are skipped, the rest are applied from highest `score` to
//! lowest, and the first value for a name wins (unless overwriting, where the
//! order is reversed and the last wins).

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::fmt;

use crate::time::{self, DateTime, ScanLl, scan_ll};
use crate::xml::{Element, Pos};

/// The longest chain of nested or referenced rules followed before giving up
/// (an `id-ref` loop would otherwise never end).
const MAX_DEPTH: usize = 64;

/// Everything a rule may be evaluated against. Fields left `None` make the
/// conditions that need them fail (or, for a missing `now`, report an error).
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleContext<'a> {
    /// The current time, for date expressions.
    pub now: Option<DateTime>,
    /// UTC offset (seconds east) given to date/time texts in the rules that
    /// carry a time of day but no offset. Pacemaker uses the host's local
    /// offset; 0 means UTC. (A bare time of day, such as `T12:00`, takes its
    /// date from `now`, where Pacemaker would read the clock.)
    pub local_offset: i32,
    /// The node's attributes (including `#uname`, `#id`, `#kind`), for
    /// `expression`.
    pub node_attrs: Option<&'a BTreeMap<String, String>>,
    /// Resource class (standard), provider and agent type, for
    /// `rsc_expression`.
    pub rsc_class: Option<&'a str>,
    pub rsc_provider: Option<&'a str>,
    pub rsc_type: Option<&'a str>,
    /// Resource parameters, for `value-source="param"`.
    pub rsc_params: Option<&'a BTreeMap<String, String>>,
    /// Resource meta-attributes, for `value-source="meta"`.
    pub rsc_meta: Option<&'a BTreeMap<String, String>>,
    /// Operation name and interval, for `op_expression`.
    pub op_name: Option<&'a str>,
    pub op_interval_ms: u64,
    /// Submatches of a location constraint's `rsc-pattern` against the
    /// resource id (index 0 is the whole match; a group that did not take
    /// part is an empty string). When set, `%0`..`%9` in an expression's
    /// `attribute` are replaced by them.
    pub rsc_id_submatches: Option<&'a [String]>,
}

impl<'a> RuleContext<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_now(mut self, now: DateTime) -> Self {
        self.now = Some(now);
        self
    }

    pub fn with_node_attrs(mut self, attrs: &'a BTreeMap<String, String>) -> Self {
        self.node_attrs = Some(attrs);
        self
    }

    pub fn with_resource(
        mut self,
        standard: &'a str,
        provider: Option<&'a str>,
        agent: &'a str,
    ) -> Self {
        self.rsc_class = Some(standard);
        self.rsc_provider = provider;
        self.rsc_type = Some(agent);
        self
    }

    pub fn with_rsc_params(mut self, params: &'a BTreeMap<String, String>) -> Self {
        self.rsc_params = Some(params);
        self
    }

    pub fn with_rsc_meta(mut self, meta: &'a BTreeMap<String, String>) -> Self {
        self.rsc_meta = Some(meta);
        self
    }

    pub fn with_op(mut self, name: &'a str, interval_ms: u64) -> Self {
        self.op_name = Some(name);
        self.op_interval_ms = interval_ms;
        self
    }
}

/// What is wrong with a rule element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleErrorKind {
    #[error("it has no id")]
    MissingId,
    #[error("attribute '{0}' is required")]
    MissingAttribute(&'static str),
    #[error("attribute '{attribute}' is not allowed when operation is '{operation}'")]
    NotAllowed {
        attribute: &'static str,
        operation: String,
    },
    #[error("'{0}' is not a valid operation")]
    UnknownOperation(String),
    #[error("'{0}' is not a valid boolean-op")]
    UnknownBooleanOp(String),
    #[error("'{0}' is not a valid type")]
    UnknownType(String),
    #[error("'{0}' is not a valid value-source")]
    UnknownValueSource(String),
    #[error("{attribute}: {message}")]
    BadDate {
        attribute: &'static str,
        message: String,
    },
    #[error("'{value}' is not a valid number for {attribute}")]
    BadNumber { attribute: String, value: String },
    #[error("'{value}' is not a valid range for {attribute}")]
    BadRange { attribute: String, value: String },
    #[error("'{0}' is not a valid interval")]
    BadInterval(String),
    #[error("a <{0}> child is required")]
    MissingChild(&'static str),
    #[error("id-ref '{0}' does not name an element of this kind")]
    UnresolvedIdRef(String),
    #[error("it is not a rule condition")]
    UnknownCondition,
    #[error("no current time was given to evaluate it")]
    NoTime,
    #[error("rules nest too deeply (an id-ref loop?)")]
    TooDeep,
}

/// A problem with one element of a rule or name/value set: which element
/// (name, id, position) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub element: String,
    pub id: Option<String>,
    pub pos: Pos,
    pub kind: RuleErrorKind,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(
                f,
                "{}: <{} id=\"{}\">: {}",
                self.pos, self.element, id, self.kind
            ),
            None => write!(f, "{}: <{}>: {}", self.pos, self.element, self.kind),
        }
    }
}

impl RuleError {
    fn new(el: &Element, kind: RuleErrorKind) -> Self {
        RuleError {
            element: el.name.clone(),
            id: el
                .attr("id")
                .or_else(|| el.attr("id-ref"))
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            pos: el.pos,
            kind,
        }
    }
}

/// What an evaluation noticed besides its result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleLog {
    /// Configuration errors; each made its condition fail.
    pub errors: Vec<RuleError>,
    /// Things Pacemaker warns about but accepts (empty rules, `#default`
    /// values, bad set scores).
    pub warnings: Vec<String>,
    /// The earliest time at which a date expression met so far may change
    /// its result (as Pacemaker computes it; `date_spec` does not set it).
    pub next_change: Option<DateTime>,
}

impl RuleLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn note_change(&mut self, t: DateTime) {
        if self.next_change.is_none_or(|old| t < old) {
            self.next_change = Some(t);
        }
    }
}

/// An index of the elements of a tree by `id`, to resolve `id-ref`s with.
/// The first element with a given id, in document order, wins.
#[derive(Debug, Default, Clone)]
pub struct IdIndex<'d> {
    by_id: BTreeMap<&'d str, &'d Element>,
}

impl<'d> IdIndex<'d> {
    pub fn new(root: &'d Element) -> Self {
        let mut by_id = BTreeMap::new();
        for e in root.descendants() {
            if let Some(id) = e.attr("id") {
                by_id.entry(id).or_insert(e);
            }
        }
        IdIndex { by_id }
    }

    pub fn get(&self, id: &str) -> Option<&'d Element> {
        self.by_id.get(id).copied()
    }
}

/// Evaluates `rule` (which may itself be an `id-ref`) and says whether it
/// passes, or names the first configuration problem met while evaluating it.
/// Conditions are evaluated in order and evaluation stops as soon as the
/// result is known, as in Pacemaker, so problems in conditions that were not
/// needed go unnoticed. `resolve` finds an element by id.
pub fn evaluate_rule<'d>(
    rule: &'d Element,
    ctx: &RuleContext<'_>,
    resolve: &dyn Fn(&str) -> Option<&'d Element>,
) -> Result<bool, RuleError> {
    let mut log = RuleLog::new();
    let passed = evaluate_rule_with(rule, ctx, resolve, &mut log);
    match log.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(passed),
    }
}

/// Evaluates `rule` exactly as Pacemaker does: a misconfigured condition
/// fails (and is recorded in `log`), and evaluation goes on. Also records in
/// `log` when the result may next change.
pub fn evaluate_rule_with<'d>(
    rule: &'d Element,
    ctx: &RuleContext<'_>,
    resolve: &dyn Fn(&str) -> Option<&'d Element>,
    log: &mut RuleLog,
) -> bool {
    let mut ev = Evaluator { ctx, resolve, log };
    ev.rule(rule, 0)
}

/// Evaluates a single condition (a rule or any kind of expression) as
/// [`evaluate_rule_with`] does.
pub fn evaluate_condition_with<'d>(
    condition: &'d Element,
    ctx: &RuleContext<'_>,
    resolve: &dyn Fn(&str) -> Option<&'d Element>,
    log: &mut RuleLog,
) -> bool {
    let mut ev = Evaluator { ctx, resolve, log };
    ev.condition(condition, 0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Comparison {
    Defined,
    NotDefined,
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

fn parse_comparison(op: &str) -> Option<Comparison> {
    let table = [
        ("defined", Comparison::Defined),
        ("not_defined", Comparison::NotDefined),
        ("eq", Comparison::Eq),
        ("ne", Comparison::Ne),
        ("lt", Comparison::Lt),
        ("lte", Comparison::Lte),
        ("gt", Comparison::Gt),
        ("gte", Comparison::Gte),
    ];
    table
        .iter()
        .find(|(name, _)| op.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
}

/// How values are compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ValueType {
    String,
    Integer,
    Number,
    Version,
}

/// The comparison type: as given, or by default `integer` for ordering
/// comparisons (`number` when either value has a decimal point) and `string`
/// for the rest.
fn parse_type(
    ty: Option<&str>,
    cmp: Comparison,
    v1: Option<&str>,
    v2: Option<&str>,
) -> Option<ValueType> {
    match ty {
        None => Some(match cmp {
            Comparison::Lt | Comparison::Lte | Comparison::Gt | Comparison::Gte => {
                if v1.is_some_and(|v| v.contains('.')) || v2.is_some_and(|v| v.contains('.')) {
                    ValueType::Number
                } else {
                    ValueType::Integer
                }
            }
            _ => ValueType::String,
        }),
        Some(t) if t.eq_ignore_ascii_case("string") => Some(ValueType::String),
        Some(t) if t.eq_ignore_ascii_case("integer") => Some(ValueType::Integer),
        Some(t) if t.eq_ignore_ascii_case("number") => Some(ValueType::Number),
        Some(t) if t.eq_ignore_ascii_case("version") => Some(ValueType::Version),
        Some(_) => None,
    }
}

/// C's `strcasecmp()` in the C locale.
fn strcasecmp(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads a floating-point prefix as C's `strtod()` does (decimal forms,
/// `inf`, `infinity`, `nan`), refusing what Pacemaker refuses: no digits,
/// overflow, and underflow (a nonzero text giving a value no larger than the
/// smallest normal double).
fn scan_double(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let num_start = i;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let rest = &text[i..];
    let lower: String = rest
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let negative = b.get(num_start) == Some(&b'-');
    if lower.starts_with("inf") || lower.starts_with("nan") {
        let v = if lower.starts_with("nan") {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if negative { -v } else { v });
    }
    let digits_start = i;
    let mut mantissa_digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        mantissa_digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let mut literal = String::new();
    if negative {
        literal.push('-');
    }
    let body = &text[digits_start..i];
    if body.starts_with('.') {
        literal.push('0');
    }
    literal.push_str(body);
    let v: f64 = literal.parse().ok()?;
    if v.is_infinite() {
        return None; // overflow
    }
    if v.abs() <= f64::MIN_POSITIVE && text[..i].bytes().any(|c| !b"0.eE".contains(&c)) {
        return None; // underflow (as Pacemaker judges it)
    }
    Some(v)
}

/// Pacemaker's version comparison: the leading dotted run of digits of each
/// (after white space) is compared segment by segment as integers, missing
/// segments counting as 0; trailing text is ignored.
fn compare_versions(v1: &str, v2: &str) -> Ordering {
    if v1 == v2 {
        return Ordering::Equal;
    }
    fn segments(v: &str) -> Vec<i64> {
        let t = v.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
        let mut out = Vec::new();
        let mut rest = t;
        loop {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                break;
            }
            let seg = &rest[..n];
            out.push(match scan_ll(seg) {
                ScanLl::Ok(x, _) | ScanLl::Range(x, _) => x,
                ScanLl::NoDigits => 0,
            });
            rest = &rest[n..];
            match rest.strip_prefix('.') {
                Some(r) if r.bytes().next().is_some_and(|c| c.is_ascii_digit()) => rest = r,
                _ => break,
            }
        }
        out
    }
    let (a, b) = (segments(v1), segments(v2));
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// Compares two optional values by type; an absent value is less than any
/// present one. Values that do not read as the type compare as strings.
fn cmp_by_type(v1: Option<&str>, v2: Option<&str>, ty: ValueType) -> Ordering {
    let (v1, v2) = match (v1, v2) {
        (None, None) => return Ordering::Equal,
        (Some(_), None) => return Ordering::Greater,
        (None, Some(_)) => return Ordering::Less,
        (Some(a), Some(b)) => (a, b),
    };
    match ty {
        ValueType::String => strcasecmp(v1, v2),
        ValueType::Integer => match (time::scan_integer(v1), time::scan_integer(v2)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => strcasecmp(v1, v2),
        },
        ValueType::Number => match (scan_double(v1), scan_double(v2)) {
            // NaN compares as neither less nor greater: equal.
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => strcasecmp(v1, v2),
        },
        ValueType::Version => compare_versions(v1, v2),
    }
}

fn compare_values(
    actual: Option<&str>,
    reference: Option<&str>,
    ty: ValueType,
    cmp: Comparison,
) -> bool {
    match cmp {
        Comparison::Defined => return actual.is_some(),
        Comparison::NotDefined => return actual.is_none(),
        _ => {}
    }
    let order = cmp_by_type(actual, reference, ty);
    match cmp {
        Comparison::Eq => return order == Ordering::Equal,
        Comparison::Ne => return order != Ordering::Equal,
        _ => {}
    }
    if actual.is_none() || reference.is_none() {
        return false;
    }
    match cmp {
        Comparison::Lt => order == Ordering::Less,
        Comparison::Lte => order != Ordering::Greater,
        Comparison::Gt => order == Ordering::Greater,
        Comparison::Gte => order != Ordering::Less,
        _ => false,
    }
}

/// Replaces `%0`..`%9` in `s` by the submatches (an absent or empty
/// submatch removes the sequence). `None` when nothing needs replacing.
fn expand_submatches(s: &str, submatches: &[String]) -> Option<String> {
    if s.is_empty() || submatches.first().is_none_or(String::is_empty) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = String::new();
    let mut expanded = false;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            out.push_str(&s[last..i]);
            let n = usize::from(b[i + 1] - b'0');
            if let Some(m) = submatches.get(n) {
                out.push_str(m);
            }
            expanded = true;
            i += 2;
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[last..]);
    expanded.then_some(out)
}

/// The date parts a `date_spec` may constrain, in the order Pacemaker checks
/// them.
const DATE_SPEC_PARTS: [&str; 10] = [
    "years",
    "months",
    "monthdays",
    "hours",
    "minutes",
    "seconds",
    "yeardays",
    "weekyears",
    "weeks",
    "weekdays",
];

/// Reads a `date_spec` range: `N`, `N-M`, `N-` or `-M`, with -1 standing for
/// an open end.
fn parse_range(text: &str) -> Option<(i64, i64)> {
    fn number(s: &str) -> Option<i64> {
        match scan_ll(s) {
            ScanLl::Ok(v, used) if used == s.len() => Some(v),
            _ => None,
        }
    }
    if text.is_empty() {
        return None;
    }
    let (start_s, end_s) = match text.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    if start_s.is_empty() && end_s.is_none_or(str::is_empty) {
        return None;
    }
    let start = if start_s.is_empty() {
        -1
    } else {
        number(start_s)?
    };
    let Some(end_s) = end_s else {
        return Some((start, start));
    };
    let end = if end_s.is_empty() { -1 } else { number(end_s)? };
    Some((start, end))
}

/// Duration components of a `<duration>` element, in the order Pacemaker
/// adds them.
const DURATION_PARTS: [&str; 7] = [
    "years", "months", "weeks", "days", "hours", "minutes", "seconds",
];

struct Evaluator<'e, 'a, 'd> {
    ctx: &'e RuleContext<'a>,
    resolve: &'e dyn Fn(&str) -> Option<&'d Element>,
    log: &'e mut RuleLog,
}

impl<'d> Evaluator<'_, '_, 'd> {
    fn fail(&mut self, el: &Element, kind: RuleErrorKind) -> bool {
        self.log.errors.push(RuleError::new(el, kind));
        false
    }

    /// Follows `el`'s `id-ref`, if any, to an element of the same name.
    fn deref(&mut self, el: &'d Element) -> Option<&'d Element> {
        let Some(reference) = el.attr("id-ref") else {
            return Some(el);
        };
        match (self.resolve)(reference) {
            Some(target) if target.name == el.name => Some(target),
            _ => {
                self.log.errors.push(RuleError::new(
                    el,
                    RuleErrorKind::UnresolvedIdRef(reference.to_string()),
                ));
                None
            }
        }
    }

    fn has_id(el: &Element) -> bool {
        el.attr("id").is_some_and(|id| !id.is_empty())
    }

    fn rule(&mut self, rule: &'d Element, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return self.fail(rule, RuleErrorKind::TooDeep);
        }
        let Some(rule) = self.deref(rule) else {
            return false;
        };
        if !Self::has_id(rule) {
            return self.fail(rule, RuleErrorKind::MissingId);
        }
        let any = match rule.attr("boolean-op") {
            None => false,
            Some(op) if op.eq_ignore_ascii_case("and") => false,
            Some(op) if op.eq_ignore_ascii_case("or") => true,
            Some(op) => {
                return self.fail(rule, RuleErrorKind::UnknownBooleanOp(op.to_string()));
            }
        };
        let mut empty = true;
        let mut passed = !any;
        for condition in rule.elements() {
            empty = false;
            let ok = self.condition(condition, depth + 1);
            if any && ok {
                passed = true;
                break;
            }
            if !any && !ok {
                passed = false;
                break;
            }
        }
        if empty {
            self.log.warnings.push(format!(
                "{}: ignoring rule {} because it contains no conditions",
                rule.pos,
                rule.attr("id").unwrap_or_default()
            ));
            return true;
        }
        passed
    }

    fn condition(&mut self, el: &'d Element, depth: usize) -> bool {
        match el.name.as_str() {
            "rule" => self.rule(el, depth),
            "expression" => self.attr_expression(el),
            "date_expression" => self.date_expression(el),
            "rsc_expression" => self.rsc_expression(el),
            "op_expression" => self.op_expression(el),
            _ => self.fail(el, RuleErrorKind::UnknownCondition),
        }
    }

    fn attr_expression(&mut self, el: &Element) -> bool {
        if !Self::has_id(el) {
            return self.fail(el, RuleErrorKind::MissingId);
        }
        let Some(attr) = el.attr("attribute") else {
            return self.fail(el, RuleErrorKind::MissingAttribute("attribute"));
        };
        let expanded = self
            .ctx
            .rsc_id_submatches
            .and_then(|subs| expand_submatches(attr, subs));
        let attr = expanded.as_deref().unwrap_or(attr);

        let op = el.attr("operation");
        let Some(cmp) = op.and_then(parse_comparison) else {
            return self.fail(
                el,
                match op {
                    None => RuleErrorKind::MissingAttribute("operation"),
                    Some(op) => RuleErrorKind::UnknownOperation(op.to_string()),
                },
            );
        };
        let op = op.unwrap_or_default();

        let source = el.attr("value-source");
        let table = match source {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("literal") => None,
            Some(s) if s.eq_ignore_ascii_case("param") => Some(self.ctx.rsc_params),
            Some(s) if s.eq_ignore_ascii_case("meta") => Some(self.ctx.rsc_meta),
            Some(s) => return self.fail(el, RuleErrorKind::UnknownValueSource(s.to_string())),
        };

        let value = el.attr("value");
        let reference = match cmp {
            Comparison::Defined | Comparison::NotDefined => {
                if value.is_some() {
                    return self.fail(
                        el,
                        RuleErrorKind::NotAllowed {
                            attribute: "value",
                            operation: op.to_string(),
                        },
                    );
                }
                None
            }
            _ => {
                let Some(value) = value else {
                    return self.fail(el, RuleErrorKind::MissingAttribute("value"));
                };
                match table {
                    None => Some(value),
                    Some(t) => t.and_then(|t| t.get(value)).map(String::as_str),
                }
            }
        };

        let actual = self
            .ctx
            .node_attrs
            .and_then(|a| a.get(attr))
            .map(String::as_str);

        let ty_s = el.attr("type");
        let Some(ty) = parse_type(ty_s, cmp, actual, reference) else {
            return self.fail(
                el,
                RuleErrorKind::UnknownType(ty_s.unwrap_or_default().to_string()),
            );
        };
        compare_values(actual, reference, ty, cmp)
    }

    fn rsc_expression(&mut self, el: &Element) -> bool {
        if !Self::has_id(el) {
            return self.fail(el, RuleErrorKind::MissingId);
        }
        let checks = [
            ("class", self.ctx.rsc_class),
            ("provider", self.ctx.rsc_provider),
            ("type", self.ctx.rsc_type),
        ];
        checks
            .iter()
            .all(|(attr, actual)| el.attr(attr).is_none_or(|want| Some(want) == *actual))
    }

    fn op_expression(&mut self, el: &Element) -> bool {
        if !Self::has_id(el) {
            return self.fail(el, RuleErrorKind::MissingId);
        }
        let Some(name) = el.attr("name") else {
            return self.fail(el, RuleErrorKind::MissingAttribute("name"));
        };
        let interval_s = el.attr("interval");
        let spec = time::interval_spec(interval_s);
        if spec.error.is_some() {
            return self.fail(
                el,
                RuleErrorKind::BadInterval(interval_s.unwrap_or_default().to_string()),
            );
        }
        if Some(name) != self.ctx.op_name {
            return false;
        }
        interval_s.is_none() || u64::from(spec.ms) == self.ctx.op_interval_ms
    }

    /// Reads a date attribute; `Ok(None)` when absent.
    fn date_attr(&mut self, el: &Element, attr: &'static str) -> Result<Option<DateTime>, ()> {
        let Some(text) = el.attr(attr) else {
            return Ok(None);
        };
        match DateTime::parse_with(text, self.ctx.local_offset, self.ctx.now.as_ref()) {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                self.fail(
                    el,
                    RuleErrorKind::BadDate {
                        attribute: attr,
                        message: e.to_string(),
                    },
                );
                Err(())
            }
        }
    }

    fn date_expression(&mut self, el: &Element) -> bool {
        if !Self::has_id(el) {
            return self.fail(el, RuleErrorKind::MissingId);
        }
        let Some(now) = self.ctx.now else {
            return self.fail(el, RuleErrorKind::NoTime);
        };
        let op = el.attr("operation");
        match op {
            None => self.in_range(el, now),
            Some(o) if o.eq_ignore_ascii_case("in_range") => self.in_range(el, now),
            Some(o) if o.eq_ignore_ascii_case("date_spec") => self.date_spec(el, now),
            Some(o) if o.eq_ignore_ascii_case("gt") => {
                let Ok(start) = self.date_attr(el, "start") else {
                    return false;
                };
                let Some(mut start) = start else {
                    return self.fail(el, RuleErrorKind::MissingAttribute("start"));
                };
                if now > start {
                    return true;
                }
                start.add_seconds(1);
                self.log.note_change(start);
                false
            }
            Some(o) if o.eq_ignore_ascii_case("lt") => {
                let Ok(end) = self.date_attr(el, "end") else {
                    return false;
                };
                let Some(end) = end else {
                    return self.fail(el, RuleErrorKind::MissingAttribute("end"));
                };
                if now < end {
                    self.log.note_change(end);
                    return true;
                }
                false
            }
            Some(o) => self.fail(el, RuleErrorKind::UnknownOperation(o.to_string())),
        }
    }

    fn in_range(&mut self, el: &Element, now: DateTime) -> bool {
        let Ok(start) = self.date_attr(el, "start") else {
            return false;
        };
        let Ok(mut end) = self.date_attr(el, "end") else {
            return false;
        };
        if start.is_none() && end.is_none() {
            return self.fail(el, RuleErrorKind::MissingAttribute("start"));
        }
        if end.is_none()
            && let (Some(start), Some(duration)) = (start, el.child("duration"))
        {
            match self.duration_end(duration, start) {
                Some(e) => end = Some(e),
                None => return false,
            }
        }
        if let Some(start) = start
            && now < start
        {
            self.log.note_change(start);
            return false;
        }
        if let Some(mut end) = end {
            if now > end {
                return false;
            }
            end.add_seconds(1);
            self.log.note_change(end);
        }
        true
    }

    /// `start` plus a `<duration>` element's components.
    fn duration_end(&mut self, duration: &Element, start: DateTime) -> Option<DateTime> {
        if !Self::has_id(duration) {
            self.fail(duration, RuleErrorKind::MissingId);
            return None;
        }
        let mut end = start;
        for part in DURATION_PARTS {
            let Some(text) = duration.attr(part) else {
                continue;
            };
            let value = match scan_ll(text) {
                ScanLl::Ok(v, _) if i32::try_from(v).is_ok() => v,
                _ => {
                    self.fail(
                        duration,
                        RuleErrorKind::BadNumber {
                            attribute: part.to_string(),
                            value: text.to_string(),
                        },
                    );
                    return None;
                }
            };
            match part {
                "years" => end.add_years(value),
                "months" => end.add_months(value),
                "weeks" => end.add_weeks(value),
                "days" => end.add_days(value),
                "hours" => end.add_hours(value),
                "minutes" => end.add_minutes(value),
                _ => end.add_seconds(value),
            }
        }
        Some(end)
    }

    fn date_spec(&mut self, el: &Element, now: DateTime) -> bool {
        let Some(spec) = el.child("date_spec") else {
            return self.fail(el, RuleErrorKind::MissingChild("date_spec"));
        };
        if !Self::has_id(spec) {
            return self.fail(spec, RuleErrorKind::MissingId);
        }
        let (weekyear, week, weekday) = now.iso_week();
        let values: [i64; 10] = [
            i64::from(now.year()),
            i64::from(now.month()),
            i64::from(now.monthday()),
            i64::from(now.hours()),
            i64::from(now.minutes()),
            i64::from(now.seconds()),
            i64::from(now.yearday()),
            i64::from(weekyear),
            i64::from(week),
            i64::from(weekday),
        ];
        for (part, value) in DATE_SPEC_PARTS.iter().zip(values) {
            let Some(text) = spec.attr(part) else {
                continue;
            };
            let Some((low, high)) = parse_range(text) else {
                return self.fail(
                    spec,
                    RuleErrorKind::BadRange {
                        attribute: part.to_string(),
                        value: text.to_string(),
                    },
                );
            };
            if (low != -1 && value < low) || (high != -1 && value > high) {
                return false;
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------
// Name/value sets

/// How [`unpack_nvpair_sets_into`] picks and orders blocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions<'s> {
    /// Only blocks with this element name (all element children if `None`).
    pub set_element: Option<&'s str>,
    /// A block id that goes first whatever its score.
    pub first_id: Option<&'s str>,
    /// Later blocks overwrite values from earlier ones. Blocks are then
    /// applied from lowest priority to highest, so the highest still wins;
    /// without it they are applied from highest to lowest and a name keeps
    /// its first value (including values already in the map).
    pub overwrite: bool,
}

/// A block's score as Pacemaker reads it for ordering: `INFINITY`,
/// `+INFINITY`, `-INFINITY`, the health colours (0 here), or an integer
/// prefix clipped to ±1000000; anything else counts as 0.
fn block_score(s: Option<&str>) -> Result<i64, ()> {
    const INF: i64 = 1_000_000;
    let Some(s) = s else { return Ok(0) };
    match s {
        "INFINITY" | "+INFINITY" => Ok(INF),
        "-INFINITY" => Ok(-INF),
        _ if ["red", "yellow", "green"]
            .iter()
            .any(|c| s.eq_ignore_ascii_case(c)) =>
        {
            Ok(0)
        }
        _ => match scan_ll(s) {
            ScanLl::Ok(v, _) | ScanLl::Range(v, _) => Ok(v.clamp(-INF, INF)),
            ScanLl::NoDigits => Err(()),
        },
    }
}

/// Collects the name/value pairs of `parent`'s `set_element` children (for
/// example `meta_attributes`) into a new map, as Pacemaker does, or names the
/// first configuration problem met (an unresolvable `id-ref`, a broken rule).
/// See [`unpack_nvpair_sets_into`] for the rules.
pub fn unpack_nvpair_sets<'d>(
    parent: &'d Element,
    set_element: &str,
    ctx: &RuleContext<'_>,
    resolve: &dyn Fn(&str) -> Option<&'d Element>,
    overwrite: bool,
) -> Result<BTreeMap<String, String>, RuleError> {
    let mut values = BTreeMap::new();
    let mut log = RuleLog::new();
    let opts = UnpackOptions {
        set_element: Some(set_element),
        first_id: None,
        overwrite,
    };
    unpack_nvpair_sets_into(parent, &opts, ctx, resolve, &mut values, &mut log);
    match log.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

/// Collects name/value blocks into `values` exactly as Pacemaker does,
/// recording problems in `log` and carrying on:
///
/// - each block may be an `id-ref` to a block of the same element name
///   elsewhere (which is then used whole, with its own score and rule);
///   an unresolvable reference skips the block;
/// - blocks are ordered by `first_id`, then by `score` (highest first without
///   `overwrite`, lowest first with it). Blocks with equal scores are taken
///   in reverse document order (Pacemaker gathers them backwards and its
///   sort keeps that order), so without `overwrite` the last of equal blocks
///   wins;
/// - a block whose first `rule` child does not pass is skipped;
/// - the block's `nvpair` children (or those of a legacy `attributes`
///   wrapper that is its first child) are applied in order; an `nvpair` may
///   be an `id-ref` to another `nvpair`; one without a name or a value is
///   ignored; one whose value is `#default` (any case; deprecated) removes
///   the name from the map; otherwise the value is set when the name is not
///   yet in the map or `overwrite` is on.
pub fn unpack_nvpair_sets_into<'d>(
    parent: &'d Element,
    opts: &UnpackOptions<'_>,
    ctx: &RuleContext<'_>,
    resolve: &dyn Fn(&str) -> Option<&'d Element>,
    values: &mut BTreeMap<String, String>,
    log: &mut RuleLog,
) {
    let mut blocks: Vec<&'d Element> = Vec::new();
    {
        let mut ev = Evaluator {
            ctx,
            resolve,
            log: &mut *log,
        };
        for child in parent.elements() {
            if opts.set_element.is_some_and(|n| child.name != n) {
                continue;
            }
            if let Some(block) = ev.deref(child) {
                blocks.push(block);
            }
        }
    }
    blocks.reverse();

    let mut keyed: Vec<((bool, i64), &'d Element)> = Vec::with_capacity(blocks.len());
    for block in blocks {
        let is_first = opts.first_id.is_some_and(|id| block.attr("id") == Some(id));
        let score = match block_score(block.attr("score")) {
            Ok(s) => s,
            Err(()) => {
                log.warnings.push(format!(
                    "{}: using 0 as the score of {} because '{}' is not a valid score",
                    block.pos,
                    block.attr("id").unwrap_or("a block"),
                    block.attr("score").unwrap_or_default()
                ));
                0
            }
        };
        keyed.push(((is_first, score), block));
    }
    if opts.overwrite {
        keyed.sort_by_key(|(k, _)| *k);
    } else {
        keyed.sort_by_key(|(k, _)| Reverse(*k));
    }

    for (_, block) in keyed {
        if let Some(rule) = block.child("rule")
            && !evaluate_rule_with(rule, ctx, resolve, log)
        {
            continue;
        }
        let container = match block.elements().next() {
            Some(first) if first.name == "attributes" => first,
            _ => block,
        };
        for pair in container.children_named("nvpair") {
            let pair = if let Some(reference) = pair.attr("id-ref") {
                match resolve(reference) {
                    Some(target) if target.name == "nvpair" => target,
                    _ => {
                        log.errors.push(RuleError::new(
                            pair,
                            RuleErrorKind::UnresolvedIdRef(reference.to_string()),
                        ));
                        continue;
                    }
                }
            } else {
                pair
            };
            let (Some(name), Some(value)) = (pair.attr("name"), pair.attr("value")) else {
                if pair.attr("name").is_none() {
                    log.warnings
                        .push(format!("{}: ignoring an nvpair without a name", pair.pos));
                }
                continue;
            };
            if value.eq_ignore_ascii_case("#default") {
                log.warnings.push(format!(
                    "{}: setting {name} to the explicit value '#default' is deprecated",
                    pair.pos
                ));
                values.remove(name);
            } else if opts.overwrite || !values.contains_key(name) {
                values.insert(name.to_string(), value.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Document;

    fn parse(text: &str) -> Document {
        Document::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Evaluates `rule_xml` (a `<rule>`, or a bare condition wrapped into
    /// one) in `ctx`: "pass", "fail" or "error".
    fn outcome(rule_xml: &str, ctx: &RuleContext<'_>) -> String {
        let text = if rule_xml.trim_start().starts_with("<rule") {
            format!("<cib>{rule_xml}</cib>")
        } else {
            format!("<cib><rule id=\"r\">{rule_xml}</rule></cib>")
        };
        let doc = parse(&text);
        let index = IdIndex::new(&doc.root);
        let rule = doc.root.child("rule").expect("a rule");
        match evaluate_rule(rule, ctx, &|id| index.get(id)) {
            Ok(true) => "pass".into(),
            Ok(false) => "fail".into(),
            Err(_) => "error".into(),
        }
    }

    fn check(cases: &[(&str, &str)], ctx: &RuleContext<'_>) {
        for (input, expected) in cases {
            assert_eq!(outcome(input, ctx), *expected, "{input}");
        }
    }

    #[test]
    fn attribute_expressions() {
        let node = attrs(&[
            ("#uname", "node1"),
            ("#kind", "cluster"),
            ("color", "Blue"),
            ("cpus", "8"),
            ("load", "0.75"),
            ("ver", "2.10.1"),
            ("junk", "abc"),
        ]);
        let ctx = RuleContext::new().with_node_attrs(&node);
        check(
            &[
                (
                    r##"<expression id="e" attribute="#uname" operation="eq" value="node1"/>"##,
                    "pass",
                ),
                (
                    r##"<expression id="e" attribute="#uname" operation="eq" value="node2"/>"##,
                    "fail",
                ),
                (
                    r##"<expression id="e" attribute="#uname" operation="ne" value="node2"/>"##,
                    "pass",
                ),
                // Strings compare without regard to case.
                (
                    r#"<expression id="e" attribute="color" operation="eq" value="blue"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="color" operation="EQ" value="BLUE"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="color" operation="defined"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="nope" operation="defined"/>"#,
                    "fail",
                ),
                (
                    r#"<expression id="e" attribute="nope" operation="not_defined"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="color" operation="not_defined"/>"#,
                    "fail",
                ),
                // A missing attribute is unequal to anything and not ordered.
                (
                    r#"<expression id="e" attribute="nope" operation="ne" value="x"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="nope" operation="eq" value="x"/>"#,
                    "fail",
                ),
                (
                    r#"<expression id="e" attribute="nope" operation="lt" value="5"/>"#,
                    "fail",
                ),
                (
                    r#"<expression id="e" attribute="nope" operation="gt" value="5"/>"#,
                    "fail",
                ),
                // Ordering defaults to integers ...
                (
                    r#"<expression id="e" attribute="cpus" operation="gt" value="10"/>"#,
                    "fail",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="lt" value="10"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="lte" value="8"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="gte" value="8"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="gte" value="9"/>"#,
                    "fail",
                ),
                // ... or numbers when a decimal point shows up.
                (
                    r#"<expression id="e" attribute="load" operation="lt" value="1"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="load" operation="gt" value="0.5"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="lt" value="10.5"/>"#,
                    "pass",
                ),
                // As strings, "8" > "10".
                (
                    r#"<expression id="e" attribute="cpus" operation="gt" value="10" type="string"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="08" type="integer"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="8.0" type="number"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="08"/>"#,
                    "fail",
                ),
                // Non-numbers fall back to string comparison.
                (
                    r#"<expression id="e" attribute="junk" operation="lt" value="abd" type="integer"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="junk" operation="gt" value="5"/>"#,
                    "pass",
                ),
                // Versions.
                (
                    r#"<expression id="e" attribute="ver" operation="gt" value="2.9" type="version"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="ver" operation="lt" value="2.10.1.1" type="version"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="ver" operation="eq" value="2.10.1.0" type="version"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="ver" operation="gt" value="2.9" type="number"/>"#,
                    "fail",
                ),
                // Misconfigurations.
                (
                    r#"<expression id="e" attribute="cpus" operation="like" value="8"/>"#,
                    "error",
                ),
                (
                    r#"<expression id="e" attribute="cpus" value="8"/>"#,
                    "error",
                ),
                (r#"<expression id="e" operation="eq" value="8"/>"#, "error"),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq"/>"#,
                    "error",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="defined" value="8"/>"#,
                    "error",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="8" type="float"/>"#,
                    "error",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="8" value-source="env"/>"#,
                    "error",
                ),
                (
                    r#"<expression attribute="cpus" operation="eq" value="8"/>"#,
                    "error",
                ),
            ],
            &ctx,
        );
    }

    #[test]
    fn value_sources_and_submatches() {
        let node = attrs(&[("cpus", "8"), ("site-a-weight", "3")]);
        let params = attrs(&[("want", "8")]);
        let meta = attrs(&[("limit", "4")]);
        let subs = vec!["rsc-a".to_string(), "a".to_string()];
        let mut ctx = RuleContext::new()
            .with_node_attrs(&node)
            .with_rsc_params(&params)
            .with_rsc_meta(&meta);
        check(
            &[
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="want" value-source="param"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="gt" value="limit" value-source="meta"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="want" value-source="meta"/>"#,
                    "fail",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="ne" value="nothing" value-source="param"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="cpus" operation="eq" value="8" value-source="literal"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="site-%1-weight" operation="eq" value="3"/>"#,
                    "fail",
                ),
            ],
            &ctx,
        );
        ctx.rsc_id_submatches = Some(&subs);
        check(
            &[
                (
                    r#"<expression id="e" attribute="site-%1-weight" operation="eq" value="3"/>"#,
                    "pass",
                ),
                (
                    r#"<expression id="e" attribute="site-%1%2-weight" operation="eq" value="3"/>"#,
                    "pass",
                ),
            ],
            &ctx,
        );
        assert_eq!(
            expand_submatches("x%0y%1z%9", &subs).as_deref(),
            Some("xrsc-ayaz")
        );
        assert_eq!(expand_submatches("plain", &subs), None);
    }

    #[test]
    fn boolean_ops_nesting_and_references() {
        let node = attrs(&[("a", "1"), ("b", "2")]);
        let ctx = RuleContext::new().with_node_attrs(&node);
        let a_yes = r#"<expression id="ea" attribute="a" operation="eq" value="1"/>"#;
        let b_no = r#"<expression id="eb" attribute="b" operation="eq" value="9"/>"#;
        let bad = r#"<expression id="ex" attribute="b" operation="bogus" value="9"/>"#;
        check(
            &[
                (&format!(r#"<rule id="r">{a_yes}{b_no}</rule>"#), "fail"),
                (
                    &format!(r#"<rule id="r" boolean-op="and">{a_yes}</rule>"#),
                    "pass",
                ),
                (
                    &format!(r#"<rule id="r" boolean-op="or">{b_no}{a_yes}</rule>"#),
                    "pass",
                ),
                (
                    &format!(r#"<rule id="r" boolean-op="OR">{b_no}{b_no}</rule>"#),
                    "fail",
                ),
                (
                    &format!(r#"<rule id="r" boolean-op="xor">{a_yes}</rule>"#),
                    "error",
                ),
                // Nested rules.
                (
                    &format!(
                        r#"<rule id="r" boolean-op="or"><rule id="n">{a_yes}{b_no}</rule><rule id="m">{a_yes}</rule></rule>"#
                    ),
                    "pass",
                ),
                (
                    &format!(r#"<rule id="r"><rule id="n" boolean-op="or">{b_no}</rule></rule>"#),
                    "fail",
                ),
                // An empty rule passes.
                (r#"<rule id="r"/>"#, "pass"),
                (r#"<rule/>"#, "error"),
                // Evaluation stops once the result is known, so a later
                // broken condition goes unnoticed ...
                (
                    &format!(r#"<rule id="r" boolean-op="or">{a_yes}{bad}</rule>"#),
                    "pass",
                ),
                (&format!(r#"<rule id="r">{b_no}{bad}</rule>"#), "fail"),
                // ... but one met first is reported.
                (
                    &format!(r#"<rule id="r" boolean-op="or">{bad}{a_yes}</rule>"#),
                    "error",
                ),
                (r#"<rule id="r"><frobnicate id="f"/></rule>"#, "error"),
                // References: to a rule defined in a later sibling.
                (
                    &format!(
                        r#"<rule id="r"><rule id-ref="def"/></rule><x><rule id="def">{a_yes}</rule></x>"#
                    ),
                    "pass",
                ),
                (
                    &format!(r#"<rule id-ref="def"/><x><rule id="def">{b_no}</rule></x>"#),
                    "fail",
                ),
                (r#"<rule id="r"><rule id-ref="missing"/></rule>"#, "error"),
                // A reference must name an element of the same kind.
                (
                    &format!(r#"<rule id="r"><rule id-ref="ea"/></rule><x>{a_yes}</x>"#),
                    "error",
                ),
                // A reference loop ends in an error, not a crash.
                (r#"<rule id="r"><rule id-ref="r"/></rule>"#, "error"),
            ],
            &ctx,
        );
        // The lenient form carries on past errors, as Pacemaker does.
        let doc = parse(&format!(
            r#"<rule id="r" boolean-op="or">{bad}{a_yes}</rule>"#
        ));
        let mut log = RuleLog::new();
        assert!(evaluate_rule_with(&doc.root, &ctx, &|_| None, &mut log));
        assert_eq!(log.errors.len(), 1);
        let e = &log.errors[0];
        assert_eq!(e.id.as_deref(), Some("ex"));
        assert_eq!(e.kind, RuleErrorKind::UnknownOperation("bogus".into()));
        assert_eq!(e.pos.line, 1);
        assert!(
            e.to_string().contains("'bogus' is not a valid operation"),
            "{e}"
        );
    }

    #[test]
    fn date_expressions() {
        let now = DateTime::parse("2019-09-23 15:30:00Z").unwrap();
        let ctx = RuleContext::new().with_now(now);
        check(
            &[
                (
                    r#"<date_expression id="d" operation="gt" start="2019-09-23 15:00:00Z"/>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="gt" start="2019-09-23 15:30:00Z"/>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="gt" start="2019-09-23 11:00:00 -05:00"/>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="gt" start="2020-01-01"/>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="lt" end="2019-09-23 17:00:00 -05:00"/>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="lt" end="2019-09-23 15:30:00Z"/>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 15:00:00Z" end="2019-09-23 15:30:00Z"/>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" start="2019-09-23 15:00:00Z" end="2019-09-23 15:29:59Z"/>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 15:30:01Z"/>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" end="2019-09-24"/>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-265"/>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 15:00:00Z"><duration id="du" minutes="30"/></date_expression>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 15:00:00Z"><duration id="du" minutes="29" seconds="59"/></date_expression>"#,
                    "fail",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-08-23 15:30:00Z"><duration id="du" months="1"/></date_expression>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2018-09-23 16:00:00Z"><duration id="du" years="1"/></date_expression>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-09 15:30:00Z"><duration id="du" weeks="2"/></date_expression>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-22 15:30:00Z"><duration id="du" days="1"/></date_expression>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 14:30:00Z"><duration id="du" hours="1"/></date_expression>"#,
                    "pass",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 14:30:00Z"><duration id="du" hours="x"/></date_expression>"#,
                    "error",
                ),
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 14:30:00Z"><duration hours="1"/></date_expression>"#,
                    "error",
                ),
                // An end given wins over a duration.
                (
                    r#"<date_expression id="d" operation="in_range" start="2019-09-23 14:30:00Z" end="2019-09-23 15:00:00Z"><duration id="du" hours="5"/></date_expression>"#,
                    "fail",
                ),
                (r#"<date_expression id="d" operation="in_range"/>"#, "error"),
                (
                    r#"<date_expression id="d" operation="in_range"><duration id="du" hours="1"/></date_expression>"#,
                    "error",
                ),
                (r#"<date_expression id="d" operation="gt"/>"#, "error"),
                (r#"<date_expression id="d" operation="lt"/>"#, "error"),
                (
                    r#"<date_expression id="d" operation="gt" start="yesterday"/>"#,
                    "error",
                ),
                (
                    r#"<date_expression id="d" operation="lt" end="2019-02-30"/>"#,
                    "error",
                ),
                (
                    r#"<date_expression id="d" operation="before" end="2020-01-01"/>"#,
                    "error",
                ),
                (
                    r#"<date_expression operation="lt" end="2020-01-01"/>"#,
                    "error",
                ),
            ],
            &ctx,
        );
        // Without a current time, date expressions cannot be evaluated.
        check(
            &[(
                r#"<date_expression id="d" operation="lt" end="2020-01-01"/>"#,
                "error",
            )],
            &RuleContext::new(),
        );
    }

    #[test]
    fn date_specs() {
        // Thursday 2005-01-20 (day 20, ISO week 2005-W03-4), 12:30:15.
        let now = DateTime::parse("2005-020T12:30:15").unwrap();
        let ctx = RuleContext::new().with_now(now);
        let spec = |attrs: &str| {
            format!(
                r#"<date_expression id="d" operation="date_spec"><date_spec id="s" {attrs}/></date_expression>"#
            )
        };
        let cases = [
            (r#"hours="12""#, "pass"),
            (r#"hours="11""#, "fail"),
            (r#"hours="9-16""#, "pass"),
            (r#"hours="13-""#, "fail"),
            (r#"hours="-12""#, "pass"),
            (r#"hours="12" minutes="0-29""#, "fail"),
            (r#"hours="12" minutes="30" seconds="15""#, "pass"),
            (r#"weekdays="1-5""#, "pass"),
            (r#"weekdays="6-7""#, "fail"),
            (r#"weekdays="4""#, "pass"),
            (r#"monthdays="20" months="1""#, "pass"),
            (r#"monthdays="1-19""#, "fail"),
            (r#"months="2-12""#, "fail"),
            (r#"years="2005""#, "pass"),
            (r#"years="2006-""#, "fail"),
            (r#"yeardays="20""#, "pass"),
            (r#"yeardays="21-366""#, "fail"),
            (r#"weeks="3""#, "pass"),
            (r#"weeks="1-2""#, "fail"),
            (r#"weekyears="2005""#, "pass"),
            (r#"weekyears="2004""#, "fail"),
            // An unknown attribute (such as the old "moon") is ignored.
            (r#"moon="4""#, "pass"),
            ("", "pass"),
            (r#"hours="x""#, "error"),
            (r#"hours="""#, "error"),
            (r#"hours="-""#, "error"),
            (r#"hours="1-2-3""#, "error"),
            (r#"hours="1 ""#, "error"),
            // Checks stop at the first part that fails.
            (r#"years="2004" hours="x""#, "fail"),
        ];
        for (attrs, expected) in cases {
            assert_eq!(outcome(&spec(attrs), &ctx), expected, "{attrs}");
        }
        check(
            &[
                (
                    r#"<date_expression id="d" operation="date_spec"/>"#,
                    "error",
                ),
                (
                    r#"<date_expression id="d" operation="date_spec"><date_spec hours="12"/></date_expression>"#,
                    "error",
                ),
            ],
            &ctx,
        );
        assert_eq!(parse_range("1-5"), Some((1, 5)));
        assert_eq!(parse_range("7"), Some((7, 7)));
        assert_eq!(parse_range("-5"), Some((-1, 5)));
        assert_eq!(parse_range("5-"), Some((5, -1)));
        assert_eq!(parse_range(" 5-+6"), Some((5, 6)));
        assert_eq!(parse_range("5x"), None);
    }

    #[test]
    fn next_change() {
        let now = DateTime::parse("2019-09-23 15:30:00Z").unwrap();
        let ctx = RuleContext::new().with_now(now);
        let cases = [
            (
                r#"<date_expression id="d" operation="gt" start="2019-09-23 16:00:00Z"/>"#,
                Some("2019-09-23 16:00:01Z"),
            ),
            (
                r#"<date_expression id="d" operation="gt" start="2019-09-23 15:00:00Z"/>"#,
                None,
            ),
            (
                r#"<date_expression id="d" operation="lt" end="2019-09-23 16:00:00Z"/>"#,
                Some("2019-09-23 16:00:00Z"),
            ),
            (
                r#"<date_expression id="d" start="2019-09-23 16:00:00Z" end="2019-09-23 17:00:00Z"/>"#,
                Some("2019-09-23 16:00:00Z"),
            ),
            (
                r#"<date_expression id="d" start="2019-09-23 15:00:00Z" end="2019-09-23 17:00:00Z"/>"#,
                Some("2019-09-23 17:00:01Z"),
            ),
        ];
        for (xml, expected) in cases {
            let doc = parse(&format!(r#"<rule id="r" boolean-op="or">{xml}</rule>"#));
            let mut log = RuleLog::new();
            evaluate_rule_with(&doc.root, &ctx, &|_| None, &mut log);
            assert_eq!(
                log.next_change.map(|t| t.to_string()).as_deref(),
                expected,
                "{xml}"
            );
        }
        // The earliest change wins.
        let doc = parse(
            r#"<rule id="r" boolean-op="or">
                 <date_expression id="a" operation="gt" start="2019-09-23 18:00:00Z"/>
                 <date_expression id="b" operation="gt" start="2019-09-23 16:00:00Z"/>
               </rule>"#,
        );
        let mut log = RuleLog::new();
        assert!(!evaluate_rule_with(&doc.root, &ctx, &|_| None, &mut log));
        assert_eq!(log.next_change.unwrap().to_string(), "2019-09-23 16:00:01Z");
    }

    #[test]
    fn resource_and_operation_expressions() {
        let ctx = RuleContext::new()
            .with_resource("ocf", Some("pacemaker"), "Dummy")
            .with_op("monitor", 10_000);
        check(
            &[
                (
                    r#"<rsc_expression id="x" class="ocf" provider="pacemaker" type="Dummy"/>"#,
                    "pass",
                ),
                (r#"<rsc_expression id="x" type="Dummy"/>"#, "pass"),
                (r#"<rsc_expression id="x"/>"#, "pass"),
                (
                    r#"<rsc_expression id="x" class="ocf" provider="heartbeat"/>"#,
                    "fail",
                ),
                (r#"<rsc_expression id="x" type="dummy"/>"#, "fail"),
                (r#"<rsc_expression class="ocf"/>"#, "error"),
                (r#"<op_expression id="o" name="monitor"/>"#, "pass"),
                (
                    r#"<op_expression id="o" name="monitor" interval="10s"/>"#,
                    "pass",
                ),
                (
                    r#"<op_expression id="o" name="monitor" interval="10000ms"/>"#,
                    "pass",
                ),
                (
                    r#"<op_expression id="o" name="monitor" interval="PT10S"/>"#,
                    "pass",
                ),
                (
                    r#"<op_expression id="o" name="monitor" interval="20s"/>"#,
                    "fail",
                ),
                (r#"<op_expression id="o" name="start"/>"#, "fail"),
                (r#"<op_expression id="o" name="Monitor"/>"#, "fail"),
                (
                    r#"<op_expression id="o" name="monitor" interval="often"/>"#,
                    "error",
                ),
                (r#"<op_expression id="o" interval="10s"/>"#, "error"),
            ],
            &ctx,
        );
        // Without a resource or operation, these simply fail.
        check(
            &[
                (r#"<rsc_expression id="x" class="ocf"/>"#, "fail"),
                (r#"<op_expression id="o" name="monitor"/>"#, "fail"),
                (
                    r#"<op_expression id="o" name="monitor" interval="0"/>"#,
                    "fail",
                ),
            ],
            &RuleContext::new(),
        );
    }

    #[test]
    fn comparisons_by_type() {
        use ValueType::*;
        let cases: &[(&str, &str, ValueType, Ordering)] = &[
            ("abc", "ABC", String, Ordering::Equal),
            ("abc", "abd", String, Ordering::Less),
            ("10", "9", Integer, Ordering::Greater),
            ("10", "9", String, Ordering::Less),
            (" 10", "10abc", Integer, Ordering::Equal),
            ("1.5", "1.25", Number, Ordering::Greater),
            ("1e3", "999", Number, Ordering::Greater),
            (".5", "0.5", Number, Ordering::Equal),
            ("inf", "1e300", Number, Ordering::Greater),
            ("1e400", "2", Number, Ordering::Less), // overflow: strings
            ("1.2.10", "1.2.9", Version, Ordering::Greater),
            ("1.2", "1.2.0", Version, Ordering::Equal),
            (" 2.0rc1", "2", Version, Ordering::Equal),
            ("abc", "0", Version, Ordering::Equal),
        ];
        for (a, b, ty, expected) in cases {
            assert_eq!(
                cmp_by_type(Some(a), Some(b), *ty),
                *expected,
                "{a} vs {b} as {ty:?}"
            );
        }
        assert_eq!(cmp_by_type(None, Some("a"), String), Ordering::Less);
        assert_eq!(cmp_by_type(None, None, Integer), Ordering::Equal);
    }

    /// Unpacks `set_element` blocks of the first child of `<cib>`.
    fn unpack(xml: &str, set: &str, ctx: &RuleContext<'_>, overwrite: bool) -> String {
        let doc = parse(&format!("<cib>{xml}</cib>"));
        let index = IdIndex::new(&doc.root);
        let parent = doc.root.elements().next().expect("a parent");
        match unpack_nvpair_sets(parent, set, ctx, &|id| index.get(id), overwrite) {
            Ok(map) => map
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {}", e.kind),
        }
    }

    #[test]
    fn nvpair_sets() {
        let now = DateTime::parse("2024-11-06 15:00:00Z").unwrap();
        let ctx = RuleContext::new().with_now(now);
        let blocks = r#"<x>
            <meta_attributes id="ia1" score="100">
              <nvpair id="n11" name="name1" value="1"/>
              <nvpair id="n12" name="name2" value="1"/>
              <rule id="rp"><date_expression id="ep" operation="gt" start="2024-11-05 00:00:00"/></rule>
            </meta_attributes>
            <instance_attributes id="ia2" score="2">
              <nvpair id="n21" name="name1" value="2"/>
              <nvpair id="n22" name="name2" value="2"/>
              <nvpair id="n23" name="name3" value="2"/>
            </instance_attributes>
            <instance_attributes id="ia3" score="30">
              <nvpair id="n31" name="name1" value="3"/>
              <nvpair id="n32" name="name2" value="3"/>
              <nvpair id="n33" name="name3" value="3"/>
            </instance_attributes>
          </x>"#;
        let cases: &[(&str, &str, bool, &str)] = &[
            (blocks, "meta_attributes", false, "name1=1 name2=1"),
            (
                blocks,
                "instance_attributes",
                false,
                "name1=3 name2=3 name3=3",
            ),
            // With overwrite, the highest score is applied last and wins.
            (
                blocks,
                "instance_attributes",
                true,
                "name1=3 name2=3 name3=3",
            ),
            // Equal scores: the last block in the document wins without
            // overwrite, the first with it.
            (
                r#"<x><meta_attributes id="a"><nvpair id="a1" name="n" value="a"/></meta_attributes>
                      <meta_attributes id="b"><nvpair id="b1" name="n" value="b"/></meta_attributes></x>"#,
                "meta_attributes",
                false,
                "n=b",
            ),
            (
                r#"<x><meta_attributes id="a"><nvpair id="a1" name="n" value="a"/></meta_attributes>
                      <meta_attributes id="b"><nvpair id="b1" name="n" value="b"/></meta_attributes></x>"#,
                "meta_attributes",
                true,
                "n=a",
            ),
            // INFINITY outranks numbers; a failing rule skips its block.
            (
                r#"<x><meta_attributes id="a" score="999999"><nvpair id="a1" name="n" value="a"/></meta_attributes>
                      <meta_attributes id="b" score="INFINITY"><nvpair id="b1" name="n" value="b"/></meta_attributes>
                      <meta_attributes id="c" score="+INFINITY"><rule id="cr"><date_expression id="ce" operation="lt" end="2000-01-01"/></rule><nvpair id="c1" name="n" value="c"/><nvpair id="c2" name="m" value="c"/></meta_attributes></x>"#,
                "meta_attributes",
                false,
                "n=b",
            ),
            // Within a block the first nvpair for a name wins, or the last
            // with overwrite.
            (
                r#"<x><utilization id="u"><nvpair id="u1" name="cpu" value="1"/><nvpair id="u2" name="cpu" value="2"/></utilization></x>"#,
                "utilization",
                false,
                "cpu=1",
            ),
            (
                r#"<x><utilization id="u"><nvpair id="u1" name="cpu" value="1"/><nvpair id="u2" name="cpu" value="2"/></utilization></x>"#,
                "utilization",
                true,
                "cpu=2",
            ),
            // A value-less nvpair is ignored; #default unsets the name.
            (
                r##"<x><meta_attributes id="a" score="2"><nvpair id="a1" name="n" value="a"/><nvpair id="a2" name="m" value="a"/></meta_attributes>
                      <meta_attributes id="b" score="1"><nvpair id="b1" name="n" value="#default"/><nvpair id="b2" name="m"/></meta_attributes></x>"##,
                "meta_attributes",
                false,
                "m=a",
            ),
            // Set and nvpair references.
            (
                r#"<x><meta_attributes id-ref="shared"/><meta_attributes id="own"><nvpair id-ref="p"/></meta_attributes></x>
                   <y><meta_attributes id="shared" score="5"><nvpair id="s1" name="from" value="shared"/></meta_attributes>
                      <nvpair id="p" name="ref" value="yes"/></y>"#,
                "meta_attributes",
                false,
                "from=shared ref=yes",
            ),
            (
                r#"<x><meta_attributes id-ref="nowhere"/></x>"#,
                "meta_attributes",
                false,
                "error: id-ref 'nowhere' does not name an element of this kind",
            ),
            (
                r#"<x><meta_attributes id="a"><nvpair id-ref="nowhere"/></meta_attributes></x>"#,
                "meta_attributes",
                false,
                "error: id-ref 'nowhere' does not name an element of this kind",
            ),
            (
                r#"<x><meta_attributes id="a"><rule id="r" boolean-op="nand"/><nvpair id="a1" name="n" value="1"/></meta_attributes></x>"#,
                "meta_attributes",
                false,
                "error: 'nand' is not a valid boolean-op",
            ),
            // The legacy <attributes> wrapper.
            (
                r#"<x><instance_attributes id="a"><attributes><nvpair id="a1" name="n" value="1"/></attributes></instance_attributes></x>"#,
                "instance_attributes",
                false,
                "n=1",
            ),
            // Other element names are left alone.
            (
                r#"<x><meta_attributes id="a"><nvpair id="a1" name="n" value="1"/></meta_attributes><instance_attributes id="i"><nvpair id="i1" name="p" value="1"/></instance_attributes></x>"#,
                "instance_attributes",
                false,
                "p=1",
            ),
        ];
        for (xml, set, overwrite, expected) in cases {
            assert_eq!(unpack(xml, set, &ctx, *overwrite), *expected, "{xml}");
        }
        // When the date rule fails, ia1 is skipped.
        let before = RuleContext::new().with_now(DateTime::parse("2024-11-04 15:00:00Z").unwrap());
        assert_eq!(unpack(blocks, "meta_attributes", &before, false), "");

        // first_id goes first whatever the score, and values already in the
        // map are kept without overwrite.
        let doc = parse(&format!("<cib>{blocks}</cib>"));
        let parent = doc.root.child("x").unwrap();
        let mut values = attrs(&[("name3", "old")]);
        let mut log = RuleLog::new();
        let opts = UnpackOptions {
            set_element: None,
            first_id: Some("ia2"),
            overwrite: false,
        };
        unpack_nvpair_sets_into(parent, &opts, &ctx, &|_| None, &mut values, &mut log);
        assert_eq!(
            values,
            attrs(&[("name1", "2"), ("name2", "2"), ("name3", "old")])
        );
        assert!(log.errors.is_empty());
        assert_eq!(log.next_change, None);

        // With the rule failing, the log says when it will pass.
        let mut values = BTreeMap::new();
        let mut log = RuleLog::new();
        unpack_nvpair_sets_into(parent, &opts, &before, &|_| None, &mut values, &mut log);
        assert_eq!(log.next_change.unwrap().to_string(), "2024-11-05 00:00:01Z");
    }

    /// The `-t` argument given to a corpus test in tests.json, if any.
    fn corpus_times(tests_json: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut name = None;
        let mut lines = tests_json.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("\"name\":") {
                name = Some(
                    rest.trim()
                        .trim_end_matches(',')
                        .trim_matches('"')
                        .to_string(),
                );
            } else if line == "\"-t\","
                && let (Some(n), Some(value)) = (&name, lines.next())
            {
                out.insert(
                    n.clone(),
                    value.trim_end_matches(',').trim_matches('"').to_string(),
                );
            }
        }
        out
    }

    #[test]
    fn every_corpus_rule_evaluates_without_error() {
        let dir = std::env::var("VIGIL_CTS_SCHEDULER_DIR")
            .unwrap_or_else(|_| "/work/shared/cts/scheduler".to_string());
        let xml_dir = std::path::Path::new(&dir).join("xml");
        let Ok(entries) = std::fs::read_dir(&xml_dir) else {
            eprintln!("skipping: no scheduler corpus at {}", xml_dir.display());
            return;
        };
        let times = std::fs::read_to_string(std::path::Path::new(&dir).join("tests.json"))
            .map(|t| corpus_times(&t))
            .unwrap_or_default();
        let default_now = DateTime::parse("2020-01-01 00:00:00Z").unwrap();
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        let (mut files, mut rules, mut sets) = (0, 0, 0);
        let mut failures = Vec::new();
        for path in paths {
            if path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = parse(&text);
            let index = IdIndex::new(&doc.root);
            let resolve = |id: &str| index.get(id);
            let now = match times.get(&name) {
                Some(t) => DateTime::parse(t).unwrap_or_else(|e| panic!("{name}: {e}")),
                None => doc
                    .root
                    .attr("execution-date")
                    .and_then(time::parse_epoch)
                    .map(DateTime::from_epoch_seconds)
                    .unwrap_or(default_now),
            };
            files += 1;
            let base = RuleContext::new().with_now(now);

            // Node attributes, as the scheduler would see them.
            let mut nodes = Vec::new();
            if let Some(node_list) = doc
                .root
                .child("configuration")
                .and_then(|c| c.child("nodes"))
            {
                for node in node_list.children_named("node") {
                    let mut a = match unpack_nvpair_sets(
                        node,
                        "instance_attributes",
                        &base,
                        &resolve,
                        false,
                    ) {
                        Ok(a) => a,
                        Err(e) => {
                            failures.push(format!("{name}: {e}"));
                            continue;
                        }
                    };
                    let uname = node.attr("uname").unwrap_or_default();
                    a.insert("#uname".into(), uname.into());
                    a.insert("#id".into(), node.attr("id").unwrap_or(uname).into());
                    a.insert("#kind".into(), "cluster".into());
                    nodes.push(a);
                }
            }
            if nodes.is_empty() {
                nodes.push(BTreeMap::new());
            }

            for el in doc.root.descendants() {
                if el.name == "rule" {
                    rules += 1;
                    for node in &nodes {
                        let ctx = base
                            .with_node_attrs(node)
                            .with_resource("ocf", Some("pacemaker"), "Dummy")
                            .with_op("monitor", 10_000);
                        if let Err(e) = evaluate_rule(el, &ctx, &resolve) {
                            failures.push(format!("{name}: {e}"));
                        }
                    }
                }
                for set in [
                    "instance_attributes",
                    "meta_attributes",
                    "utilization",
                    "cluster_property_set",
                ] {
                    if el.child(set).is_some() {
                        sets += 1;
                        if let Err(e) = unpack_nvpair_sets(el, set, &base, &resolve, false) {
                            failures.push(format!("{name}: {e}"));
                        }
                    }
                }
            }
        }
        failures.dedup();
        eprintln!("corpus: {files} files, {rules} rules, {sets} set groups");
        assert!(files > 0);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Reads a corpus CIB, or `None` (with a message) when it is missing.
    fn corpus_cib(name: &str) -> Option<Document> {
        let dir = std::env::var("VIGIL_CTS_SCHEDULER_DIR")
            .unwrap_or_else(|_| "/work/shared/cts/scheduler".to_string());
        let path = std::path::Path::new(&dir)
            .join("xml")
            .join(format!("{name}.xml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(parse(&text)),
            Err(_) => {
                eprintln!("skipping: no {}", path.display());
                None
            }
        }
    }

    fn find<'d>(root: &'d Element, name: &str, id: &str) -> &'d Element {
        root.descendants()
            .find(|e| e.name == name && e.attr("id") == Some(id))
            .unwrap_or_else(|| panic!("no <{name} id={id}>"))
    }

    #[test]
    fn corpus_nvpair_date_rules_give_the_expected_values() {
        let Some(doc) = corpus_cib("nvpair-date-rules-1") else {
            return;
        };
        let root = &doc.root;
        let index = IdIndex::new(root);
        let epoch = root
            .attr("execution-date")
            .and_then(time::parse_epoch)
            .unwrap();
        let ctx = RuleContext::new().with_now(DateTime::from_epoch_seconds(epoch));
        fn get<'d>(
            ctx: &RuleContext<'_>,
            index: &IdIndex<'d>,
            parent: &'d Element,
            set: &str,
            name: &str,
        ) -> String {
            let map = unpack_nvpair_sets(parent, set, ctx, &|id| index.get(id), false).unwrap();
            map[name].clone()
        }
        let crm_config = root
            .child("configuration")
            .unwrap()
            .child("crm_config")
            .unwrap();
        assert_eq!(
            get(
                &ctx,
                &index,
                crm_config,
                "cluster_property_set",
                "maintenance-mode"
            ),
            "false"
        );
        assert_eq!(
            get(
                &ctx,
                &index,
                find(root, "node", "1"),
                "utilization",
                "capacity"
            ),
            "5"
        );
        assert_eq!(
            get(
                &ctx,
                &index,
                find(root, "node", "3"),
                "instance_attributes",
                "standby"
            ),
            "on"
        );
        assert_eq!(
            get(
                &ctx,
                &index,
                find(root, "primitive", "rsc2"),
                "meta_attributes",
                "target-role"
            ),
            "Started"
        );
        let op_defaults = root
            .child("configuration")
            .unwrap()
            .child("op_defaults")
            .unwrap();
        assert_eq!(
            get(&ctx, &index, op_defaults, "meta_attributes", "timeout"),
            "120s"
        );
    }

    #[test]
    fn corpus_op_defaults_pick_the_expected_timeouts() {
        let Some(doc) = corpus_cib("op-defaults") else {
            return;
        };
        let root = &doc.root;
        let index = IdIndex::new(root);
        let resolve = |id: &str| index.get(id);
        let op_defaults = root
            .child("configuration")
            .unwrap()
            .child("op_defaults")
            .unwrap();
        // The timeouts the expected transition graph gives each action.
        let cases = [
            (("stonith", None, "fence_xvm"), ("start", 0), "5s"),
            (("ocf", Some("heartbeat"), "IPaddr2"), ("start", 0), "5s"),
            (("ocf", Some("heartbeat"), "IPaddr2"), ("monitor", 0), "7s"),
            (
                ("ocf", Some("heartbeat"), "IPaddr2"),
                ("monitor", 20_000),
                "7s",
            ),
            (
                ("ocf", Some("heartbeat"), "IPaddr2"),
                ("monitor", 10_000),
                "8s",
            ),
            (("ocf", Some("pacemaker"), "Dummy"), ("start", 0), "6s"),
            (
                ("ocf", Some("pacemaker"), "Dummy"),
                ("monitor", 60_000),
                "7s",
            ),
        ];
        for ((class, provider, agent), (op, interval), expected) in cases {
            let ctx = RuleContext::new()
                .with_resource(class, provider, agent)
                .with_op(op, interval);
            let meta =
                unpack_nvpair_sets(op_defaults, "meta_attributes", &ctx, &resolve, false).unwrap();
            assert_eq!(meta["timeout"], expected, "{agent} {op} {interval}");
        }
    }

    #[test]
    fn corpus_date_rules_match_expected_outcomes() {
        // date-2 and date-3 run the same CIB at 12:30 and 11:30 against a
        // date_spec of hours="12".
        let doc = parse(
            r#"<rule id="r"><date_expression operation="date_spec" id="e"><date_spec id="s" hours="12"/></date_expression></rule>"#,
        );
        for (t, expected) in [("2005-020T12:30", true), ("2005-020T11:30", false)] {
            let ctx = RuleContext::new().with_now(DateTime::parse(t).unwrap());
            assert_eq!(
                evaluate_rule(&doc.root, &ctx, &|_| None),
                Ok(expected),
                "{t}"
            );
        }
    }
}
