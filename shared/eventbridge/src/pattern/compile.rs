//! Checking a pattern and compiling it into a [`Node`] tree.
//!
//! The refusals and their wording follow event-ruler's `JsonRuleCompiler`
//! (which is what EventBridge reports after "Reason:"), with the path of the
//! offending part appended, since a parsed [`Value`] has no line and column.

use std::fmt::{self, Write as _};

use ipnet::IpNet;
use serde_json::{Map, Number, Value};

use super::PatternError;
use super::complexity;
use super::leaf::{AnythingBut, Leaf, Matcher, Num, Range, StrSet, ip_address, looks_like_ip};
use super::text::{IgnoreCase, Wildcard};
use super::tree::{Field, FieldKind, Node, merge_fields};

/// EventBridge refuses patterns whose `$or`s expand to more rules than this.
const MAX_COMBINATIONS: u64 = 1000;

/// Deeper patterns are refused rather than risk the stack; serde_json's own
/// parser stops at the same depth.
const MAX_DEPTH: usize = 128;

/// Field names event-ruler refuses inside `$or`, where they would be
/// mistaken for operators.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

pub(super) fn compile(pattern: &Value) -> Result<Node, PatternError> {
    let mut compiler = Compiler { path: Vec::new() };
    let Value::Object(object) = pattern else {
        return compiler.fail("Filter is not an object");
    };
    let root = compiler.object(object, false)?;
    if root.combinations() > MAX_COMBINATIONS {
        return compiler.fail(format!(
            "The $or usage results in over {MAX_COMBINATIONS} rule combinations"
        ));
    }
    if let Some(path) = complexity::too_complex(&root) {
        return Err(PatternError(format!(
            "{} (at {path})",
            complexity::TOO_COMPLEX
        )));
    }
    Ok(root)
}

/// Where in the pattern compilation is, for error messages.
enum Step<'a> {
    Key(&'a str),
    Or(usize),
    Item(usize),
}

struct Compiler<'a> {
    path: Vec<Step<'a>>,
}

impl fmt::Display for Compiler<'_> {
    /// Renders the path as `detail.$or[1].state[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str("the top level");
        }
        for (i, step) in self.path.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => f.write_str(key)?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Or(n) if i == 0 => write!(f, "$or[{n}]")?,
                Step::Or(n) => write!(f, ".$or[{n}]")?,
                Step::Item(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl<'a> Compiler<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, PatternError> {
        let mut message = reason.into();
        let _ = write!(message, " (at {self})");
        Err(PatternError(message))
    }

    /// An object pattern. `in_or` is set below a `$or`, where operator names
    /// are refused as field names.
    fn object(
        &mut self,
        object: &'a Map<String, Value>,
        in_or: bool,
    ) -> Result<Node, PatternError> {
        if self.path.len() > MAX_DEPTH {
            return self.fail(format!(
                "Patterns nested deeper than {MAX_DEPTH} levels are not supported"
            ));
        }
        if object.is_empty() {
            return self.fail("Empty objects are not allowed");
        }
        let mut fields = Vec::with_capacity(object.len());
        let mut any_of = Vec::new();
        for (key, value) in object {
            if key == "$or" {
                any_of = self.or(value)?;
                continue;
            }
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return self.fail(format!(
                    "{key} is Ruler reserved fieldName which cannot be used inside $or."
                ));
            }
            self.path.push(Step::Key(key));
            let kind = match value {
                Value::Object(object) => FieldKind::Object(self.object(object, in_or)?),
                Value::Array(items) => FieldKind::Leaf(self.leaf(items)?),
                _ => return self.fail(format!("\"{key}\" must be an object or an array")),
            };
            self.path.pop();
            // event-ruler names fields by their path joined with dots, so
            // `"a.b.c": ..` is `"a": {"b": {"c": ..}}`.
            let mut segments = key.rsplit('.');
            let mut field = Field {
                key: segments.next().unwrap_or_default().into(),
                kind,
            };
            for segment in segments {
                field = Field {
                    key: segment.into(),
                    kind: FieldKind::Object(Node::new(vec![field], Vec::new())),
                };
            }
            fields.push(field);
        }
        Ok(Node::new(merge_fields(fields), any_of))
    }

    /// The alternatives of a `$or`: an array of at least two objects. They
    /// apply to the enclosing object, so paths name them `$or[i]`.
    fn or(&mut self, value: &'a Value) -> Result<Vec<Node>, PatternError> {
        let Value::Array(alternatives) = value else {
            self.path.push(Step::Key("$or"));
            return self.fail("It must be an Array followed with $or.");
        };
        let mut nodes = Vec::with_capacity(alternatives.len());
        for (i, alternative) in alternatives.iter().enumerate() {
            self.path.push(Step::Or(i));
            let Value::Object(object) = alternative else {
                return self.fail("Only JSON object is allowed in array of $or relationship.");
            };
            nodes.push(self.object(object, true)?);
            self.path.pop();
        }
        if nodes.len() < 2 {
            self.path.push(Step::Key("$or"));
            return self.fail("There must have at least 2 Objects in $or relationship.");
        }
        Ok(nodes)
    }

    /// A field's array of matchers.
    fn leaf(&mut self, items: &'a [Value]) -> Result<Leaf, PatternError> {
        if items.is_empty() {
            return self.fail("Empty arrays are not allowed");
        }
        let mut leaf = Leaf::default();
        let mut strings = Vec::new();
        for (i, item) in items.iter().enumerate() {
            self.path.push(Step::Item(i));
            match item {
                Value::String(s) => strings.push(s.as_str().into()),
                Value::Number(n) => leaf.numbers.push(self.number(n)?),
                Value::Bool(b) => leaf.booleans[usize::from(*b)] = true,
                Value::Null => leaf.null = true,
                Value::Object(expression) => {
                    self.expression(expression, &mut leaf, &mut strings)?
                }
                Value::Array(_) => {
                    return self.fail("Match value must be String, number, true, false, or null");
                }
            }
            self.path.pop();
        }
        leaf.strings = StrSet::new(strings);
        Ok(leaf)
    }

    /// A match expression such as `{"prefix": "x"}`, added to `leaf`.
    fn expression(
        &mut self,
        expression: &'a Map<String, Value>,
        leaf: &mut Leaf,
        strings: &mut Vec<Box<str>>,
    ) -> Result<(), PatternError> {
        let mut entries = expression.iter();
        let Some((operator, operand)) = entries.next() else {
            return self.fail("Match expression name not found");
        };
        if entries.next().is_some() {
            return self.fail("Only one key allowed in match expression");
        }
        let matcher = match (operator.as_str(), operand) {
            ("exactly", Value::String(s)) => {
                strings.push(s.as_str().into());
                return Ok(());
            }
            ("exactly", _) => return self.fail("exact match pattern must be a string"),
            ("prefix", Value::String(s)) => Matcher::Prefix(s.as_str().into()),
            ("prefix", Value::Object(inner)) => {
                Matcher::PrefixIgnoreCase(self.ignoring_case(inner, "Prefix", "prefix")?)
            }
            ("prefix", _) => return self.fail("prefix match pattern must be a string"),
            ("suffix", Value::String(s)) => Matcher::Suffix(s.as_str().into()),
            ("suffix", Value::Object(inner)) => {
                Matcher::SuffixIgnoreCase(self.ignoring_case(inner, "Suffix", "suffix")?)
            }
            ("suffix", _) => return self.fail("suffix match pattern must be a string"),
            ("equals-ignore-case", Value::String(s)) => {
                Matcher::EqualsIgnoreCase(IgnoreCase::new(s))
            }
            ("equals-ignore-case", _) => {
                return self.fail("equals-ignore-case match pattern must be a string");
            }
            ("wildcard", Value::String(s)) => Matcher::Wildcard(self.wildcard(s)?),
            ("wildcard", _) => return self.fail("wildcard match pattern must be a string"),
            ("numeric", Value::Array(terms)) => Matcher::Numeric(self.numeric(terms)?),
            ("numeric", _) => return self.fail("Value of numeric must be an array."),
            ("anything-but", operand) => Matcher::AnythingBut(self.anything_but(operand)?),
            ("exists", Value::Bool(true)) => {
                leaf.exists = true;
                return Ok(());
            }
            ("exists", Value::Bool(false)) => {
                leaf.absent = true;
                return Ok(());
            }
            ("exists", _) => {
                return self.fail("exists match pattern must be either true or false.");
            }
            ("cidr", Value::String(s)) => Matcher::Cidr(self.cidr(s)?),
            // event-ruler says "prefix match pattern must be a string" here,
            // a copy-and-paste slip; name the operator actually used.
            ("cidr", _) => return self.fail("cidr match pattern must be a string"),
            (other, _) => return self.fail(format!("Unrecognized match type {other}")),
        };
        leaf.matchers.push(matcher);
        Ok(())
    }

    /// The `{"equals-ignore-case": "x"}` operand of `prefix` or `suffix`.
    fn ignoring_case(
        &self,
        inner: &Map<String, Value>,
        capitalized: &str,
        operator: &str,
    ) -> Result<IgnoreCase, PatternError> {
        let mut entries = inner.iter();
        let Some((name, operand)) = entries.next() else {
            return self.fail(format!("{capitalized} expression name not found"));
        };
        if entries.next().is_some() {
            return self.fail("Only one key allowed in match expression");
        }
        if name != "equals-ignore-case" {
            return self.fail(format!("Unsupported {operator} pattern: {name}"));
        }
        match operand {
            Value::String(s) => Ok(IgnoreCase::new(s)),
            _ => self.fail("equals-ignore-case match pattern must be a string"),
        }
    }

    fn wildcard(&self, operand: &str) -> Result<Wildcard, PatternError> {
        Wildcard::parse(operand).or_else(|reason| self.fail(reason))
    }

    /// A number in an exact match or an `anything-but` list.
    fn number(&self, n: &Number) -> Result<Num, PatternError> {
        match Num::of(n) {
            Some(num) if num.float().is_finite() => Ok(num),
            _ => self.fail(format!("Cannot compare number : {n}")),
        }
    }

    /// `["=", n]`, `["<", n]`, `[">=", n, "<", m]` and the like, read term
    /// by term as event-ruler reads them so the same mistake gets the same
    /// message.
    fn numeric(&self, terms: &[Value]) -> Result<Range, PatternError> {
        let mut terms = terms.iter();
        let operator = match terms.next() {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => return self.fail(format!("Invalid member in numeric match: {other}")),
            None => return self.fail("Invalid member in numeric match: ]"),
        };
        let bound = |term: Option<&Value>, operator: &str| -> Result<f64, PatternError> {
            let name = if operator == "=" { "equals" } else { operator };
            match term {
                Some(Value::Number(n)) => Ok(self.number(n)?.float()),
                _ => self.fail(format!("Value of {name} must be numeric")),
            }
        };
        let too_many = || self.fail("Too many elements in numeric expression");
        match operator {
            "=" | "<" | "<=" => {
                let value = bound(terms.next(), operator)?;
                if terms.next().is_some() {
                    return too_many();
                }
                Ok(match operator {
                    "=" => Range {
                        lower: Some((value, true)),
                        upper: Some((value, true)),
                    },
                    _ => Range {
                        lower: None,
                        upper: Some((value, operator == "<=")),
                    },
                })
            }
            ">" | ">=" => {
                let bottom = bound(terms.next(), operator)?;
                let lower = Some((bottom, operator == ">="));
                let top_operator = match terms.next() {
                    None => return Ok(Range { lower, upper: None }),
                    Some(Value::String(op)) if op == "<" || op == "<=" => op.as_str(),
                    Some(Value::String(op)) => {
                        return self.fail(format!("Bad numeric range operator: {op}"));
                    }
                    Some(other) => {
                        return self.fail(format!("Bad value in numeric range: {other}"));
                    }
                };
                let top = bound(terms.next(), top_operator)?;
                if terms.next().is_some() {
                    return self.fail("Too many terms in numeric range expression");
                }
                if bottom >= top {
                    return self.fail("Bottom must be less than top");
                }
                Ok(Range {
                    lower,
                    upper: Some((top, top_operator == "<=")),
                })
            }
            other => self.fail(format!("Unrecognized numeric range operator: {other}")),
        }
    }

    /// `anything-but`: a string, a number, a list of either, or an object
    /// naming `prefix`, `suffix`, `equals-ignore-case` or `wildcard` with a
    /// string or a list of strings.
    fn anything_but(&self, operand: &Value) -> Result<AnythingBut, PatternError> {
        match operand {
            Value::String(s) => Ok(AnythingBut::Strings(StrSet::new(vec![s.as_str().into()]))),
            Value::Number(n) => Ok(AnythingBut::Numbers(vec![self.number(n)?].into())),
            Value::Array(items) => {
                let mut strings = Vec::new();
                let mut numbers = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => strings.push(s.as_str().into()),
                        Value::Number(n) => numbers.push(self.number(n)?),
                        _ => {
                            return self.fail(
                                "Inside anything but list, start|null|boolean is not supported.",
                            );
                        }
                    }
                }
                match (strings.is_empty(), numbers.is_empty()) {
                    (false, true) => Ok(AnythingBut::Strings(StrSet::new(strings))),
                    (true, false) => Ok(AnythingBut::Numbers(numbers.into())),
                    _ => self.fail(
                        "Inside anything but list, either all values are number or string, \
                         mixed type is not supported",
                    ),
                }
            }
            Value::Object(inner) => self.anything_but_operator(inner),
            Value::Null | Value::Bool(_) => {
                self.fail("Value of anything-but must be an array or single string/number value.")
            }
        }
    }

    fn anything_but_operator(
        &self,
        inner: &Map<String, Value>,
    ) -> Result<AnythingBut, PatternError> {
        let mut entries = inner.iter();
        let Some((operator, operand)) = entries.next() else {
            return self.fail("Anything-But expression name not found");
        };
        if entries.next().is_some() {
            return self.fail("Only one key allowed in anything-but expression");
        }
        let type_error = match operator.as_str() {
            "prefix" | "suffix" => "prefix/suffix match pattern must be a string",
            "equals-ignore-case" => {
                "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
            }
            "wildcard" => "wildcard match pattern must be a string",
            other => return self.fail(format!("Unsupported anything-but pattern: {other}")),
        };
        let operands: Vec<&str> = match operand {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => {
                let mut operands = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => operands.push(s.as_str()),
                        _ => return self.fail(type_error),
                    }
                }
                operands
            }
            Value::Number(_) => return self.fail(type_error),
            Value::Null | Value::Bool(_) | Value::Object(_) => {
                return self
                    .fail("Value of anything-but must be an array or single string/number value.");
            }
        };
        let boxed = |operands: Vec<&str>| operands.into_iter().map(Box::from).collect();
        match operator.as_str() {
            "prefix" | "suffix" if operands.iter().any(|s| s.is_empty()) => {
                self.fail("Null prefix/suffix not allowed")
            }
            "prefix" => Ok(AnythingBut::Prefixes(boxed(operands))),
            "suffix" => Ok(AnythingBut::Suffixes(boxed(operands))),
            "equals-ignore-case" => Ok(AnythingBut::IgnoringCase(
                operands.into_iter().map(IgnoreCase::new).collect(),
            )),
            _ => Ok(AnythingBut::Wildcards(
                operands
                    .into_iter()
                    .map(|s| self.wildcard(s))
                    .collect::<Result<_, _>>()?,
            )),
        }
    }

    /// `10.0.0.0/24` or `2001:db8::/64`, refused as event-ruler refuses it.
    /// Host bits are cleared: `10.0.0.7/24` is `10.0.0.0/24`.
    fn cidr(&self, text: &str) -> Result<IpNet, PatternError> {
        // Java's String.split drops trailing empty strings: "10.0.0.0/" has
        // one part, not two.
        let mut parts: Vec<&str> = text.split('/').collect();
        while parts.last() == Some(&"") {
            parts.pop();
        }
        let [ip, mask] = parts[..] else {
            return self.fail("Malformed CIDR, one '/' required");
        };
        let Ok(mask) = mask.parse::<i32>() else {
            return self.fail("Malformed CIDR, mask bits must be an integer");
        };
        if mask < 0 {
            return self.fail("Malformed CIDR, mask bits must not be negative");
        }
        if !looks_like_ip(ip) {
            return self.fail(format!("Nonstandard IP address: {ip}"));
        }
        let Some(address) = ip_address(ip) else {
            return self.fail(format!("Invalid IP address: {ip}"));
        };
        // event-ruler's limits: /32 and /128 are refused (an exact string
        // matches a single address).
        let limit = if address.is_ipv4() { 32 } else { 128 };
        if mask >= limit {
            let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
            return self.fail(format!("{family} mask bits must be < {limit}"));
        }
        match u8::try_from(mask)
            .ok()
            .and_then(|m| IpNet::new(address, m).ok())
        {
            Some(net) => Ok(net.trunc()),
            None => self.fail(format!("Invalid CIDR: {text}")),
        }
    }
}
