//! What a pattern says about one field's values: the compiled form of a
//! matcher array such as `["a", {"prefix": "b"}, {"exists": false}]`.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Number, Value};

use super::text::{IgnoreCase, Wildcard};

/// The matchers of one field, any of which may match (OR).
#[derive(Debug, Clone, Default)]
pub(super) struct Leaf {
    /// Exact values, split by JSON type so a value is only compared with
    /// operands of its own type (`"5"` never equals `5`).
    pub(super) strings: StrSet,
    pub(super) numbers: Vec<Num>,
    /// Indexed by the boolean: `[accepts false, accepts true]`.
    pub(super) booleans: [bool; 2],
    pub(super) null: bool,
    /// Every other operator.
    pub(super) matchers: Vec<Matcher>,
    /// `{"exists": true}`: any leaf value at all.
    pub(super) exists: bool,
    /// `{"exists": false}`: satisfied by the absence of leaf values, which
    /// the evaluator checks, never by a value.
    pub(super) absent: bool,
}

impl Leaf {
    /// Whether one leaf value (a string, number, boolean or null; never an
    /// object or array) satisfies a matcher that needs a value.
    pub(super) fn accepts(&self, value: &Value) -> bool {
        if self.exists {
            return true;
        }
        let exact = match value {
            Value::String(s) => self.strings.contains(s),
            Value::Number(n) => {
                !self.numbers.is_empty()
                    && Num::of(n).is_some_and(|n| self.numbers.iter().any(|p| p.same_as(&n)))
            }
            Value::Bool(b) => self.booleans[usize::from(*b)],
            Value::Null => self.null,
            Value::Array(_) | Value::Object(_) => false,
        };
        exact || self.matchers.iter().any(|m| m.accepts(value))
    }

    /// Only exact values: the cheapest kind to evaluate, so evaluated first.
    pub(super) fn is_exact_only(&self) -> bool {
        self.matchers.is_empty() && !self.exists && !self.absent
    }
}

/// Exact string operands. Most fields list a handful, where a linear scan
/// beats hashing; long lists get a hash set.
#[derive(Debug, Clone)]
pub(super) enum StrSet {
    Few(Box<[Box<str>]>),
    Many(HashSet<Box<str>>),
}

impl Default for StrSet {
    fn default() -> Self {
        Self::Few(Box::default())
    }
}

impl StrSet {
    const LINEAR_MAX: usize = 8;

    pub(super) fn new(mut items: Vec<Box<str>>) -> Self {
        items.sort_unstable();
        items.dedup();
        if items.len() <= Self::LINEAR_MAX {
            Self::Few(items.into_boxed_slice())
        } else {
            Self::Many(items.into_iter().collect())
        }
    }

    pub(super) fn contains(&self, value: &str) -> bool {
        match self {
            Self::Few(items) => items.iter().any(|item| **item == *value),
            Self::Many(items) => items.contains(value),
        }
    }
}

/// A JSON number as patterns compare it: by value, so `300`, `300.0` and
/// `3e2` are equal. Integers are also kept exactly, so two integers beyond
/// f64's 53-bit precision (account numbers, say) compare exactly too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Num {
    float: f64,
    int: Option<i128>,
}

impl Num {
    pub(super) fn of(n: &Number) -> Option<Self> {
        let int = n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from));
        let float = n.as_f64()?;
        Some(Self { float, int })
    }

    pub(super) fn float(self) -> f64 {
        self.float
    }

    pub(super) fn same_as(&self, other: &Self) -> bool {
        match (self.int, other.int) {
            (Some(a), Some(b)) => a == b,
            _ => self.float == other.float,
        }
    }
}

/// Every operator other than an exact value and `exists`.
#[derive(Debug, Clone)]
pub(super) enum Matcher {
    Prefix(Box<str>),
    PrefixIgnoreCase(IgnoreCase),
    Suffix(Box<str>),
    SuffixIgnoreCase(IgnoreCase),
    EqualsIgnoreCase(IgnoreCase),
    Wildcard(Wildcard),
    Numeric(Range),
    Cidr(IpNet),
    AnythingBut(AnythingBut),
}

impl Matcher {
    fn accepts(&self, value: &Value) -> bool {
        match self {
            Self::Prefix(p) => value.as_str().is_some_and(|s| s.starts_with(&**p)),
            Self::PrefixIgnoreCase(p) => value.as_str().is_some_and(|s| p.is_prefix_of(s)),
            Self::Suffix(p) => value.as_str().is_some_and(|s| s.ends_with(&**p)),
            Self::SuffixIgnoreCase(p) => value.as_str().is_some_and(|s| p.is_suffix_of(s)),
            Self::EqualsIgnoreCase(p) => value.as_str().is_some_and(|s| p.equals(s)),
            Self::Wildcard(w) => value.as_str().is_some_and(|s| w.matches(s)),
            Self::Numeric(range) => value.as_f64().is_some_and(|x| range.contains(x)),
            Self::Cidr(net) => value
                .as_str()
                .and_then(ip_address)
                .is_some_and(|ip| net.contains(&ip)),
            Self::AnythingBut(but) => but.accepts(value),
        }
    }
}

/// `anything-but`: any present leaf value except the excluded ones. Values
/// of another JSON type than the operands (null, booleans, numbers against
/// string operands) are never excluded, as in event-ruler.
#[derive(Debug, Clone)]
pub(super) enum AnythingBut {
    Strings(StrSet),
    Numbers(Box<[Num]>),
    Prefixes(Box<[Box<str>]>),
    Suffixes(Box<[Box<str>]>),
    IgnoringCase(Box<[IgnoreCase]>),
    Wildcards(Box<[Wildcard]>),
}

impl AnythingBut {
    fn accepts(&self, value: &Value) -> bool {
        let excluded = match (self, value) {
            (Self::Strings(set), Value::String(s)) => set.contains(s),
            (Self::Numbers(nums), Value::Number(n)) => {
                Num::of(n).is_some_and(|n| nums.iter().any(|p| p.same_as(&n)))
            }
            (Self::Prefixes(ps), Value::String(s)) => ps.iter().any(|p| s.starts_with(&**p)),
            (Self::Suffixes(ps), Value::String(s)) => ps.iter().any(|p| s.ends_with(&**p)),
            (Self::IgnoringCase(ps), Value::String(s)) => ps.iter().any(|p| p.equals(s)),
            (Self::Wildcards(ws), Value::String(s)) => ws.iter().any(|w| w.matches(s)),
            _ => false,
        };
        !excluded
    }
}

/// A `numeric` interval; a bound is `(value, inclusive)`. `=` is the
/// interval from a number to itself, both ends included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Range {
    pub(super) lower: Option<(f64, bool)>,
    pub(super) upper: Option<(f64, bool)>,
}

impl Range {
    pub(super) fn contains(&self, x: f64) -> bool {
        let above = self
            .lower
            .is_none_or(|(low, inclusive)| if inclusive { x >= low } else { x > low });
        let below = self
            .upper
            .is_none_or(|(high, inclusive)| if inclusive { x <= high } else { x < high });
        above && below
    }
}

/// Reads an IP address literal, in event values and in CIDR operands alike.
///
/// event-ruler only treats text shaped like dotted-quad IPv4
/// (`[0-9]+.[0-9]+.[0-9]+.[0-9]+`) or hex-and-colons IPv6 as an address, so
/// forms such as `::ffff:10.0.0.1` or `[::1]` are not addresses here either.
pub(super) fn ip_address(text: &str) -> Option<IpAddr> {
    if looks_like_ip(text) {
        text.parse().ok()
    } else {
        None
    }
}

/// The shape check event-ruler applies before parsing an address.
pub(super) fn looks_like_ip(text: &str) -> bool {
    let ipv4 = {
        let mut groups = 0;
        let all_digits = text.split('.').all(|group| {
            groups += 1;
            !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit())
        });
        all_digits && groups == 4
    };
    let ipv6 = text.contains(':') && text.bytes().all(|b| b == b':' || b.is_ascii_hexdigit());
    ipv4 || ipv6
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: Value) -> Num {
        Num::of(v.as_number().unwrap()).unwrap()
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(num(json!(300)).same_as(&num(json!(300.0))));
        assert!(num(json!(300)).same_as(&num(json!(3e2))));
        assert!(!num(json!(300)).same_as(&num(json!(300.5))));
        assert!(num(json!(-0.0)).same_as(&num(json!(0))));
    }

    #[test]
    fn large_integers_compare_exactly() {
        // Both round to the same f64; compared as integers they differ.
        let a = num(json!(9_007_199_254_740_993_u64));
        let b = num(json!(9_007_199_254_740_992_u64));
        assert!(!a.same_as(&b));
        assert!(a.same_as(&a));
        assert!(num(json!(u64::MAX)).same_as(&num(json!(u64::MAX))));
    }

    #[test]
    fn range_bounds() {
        let r = Range {
            lower: Some((0.0, false)),
            upper: Some((5.0, true)),
        };
        assert!(!r.contains(0.0) && r.contains(0.1) && r.contains(5.0) && !r.contains(5.1));
        let eq = Range {
            lower: Some((3.0, true)),
            upper: Some((3.0, true)),
        };
        assert!(eq.contains(3.0) && !eq.contains(3.000_000_1));
    }

    #[test]
    fn ip_shapes_follow_event_ruler() {
        assert_eq!(ip_address("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert!(ip_address("2001:db8::1").is_some());
        assert!(ip_address("::ffff:10.0.0.1").is_none());
        assert!(ip_address("10.0.0").is_none());
        assert!(ip_address("10.0.0.256").is_none());
        assert!(ip_address("host.example").is_none());
        assert!(ip_address("").is_none());
        assert!(looks_like_ip("999.1.1.1") && ip_address("999.1.1.1").is_none());
    }

    #[test]
    fn anything_but_never_excludes_other_types() {
        let but = AnythingBut::Strings(StrSet::new(vec!["5".into()]));
        assert!(!but.accepts(&json!("5")));
        assert!(but.accepts(&json!(5)));
        assert!(but.accepts(&json!(null)));
        assert!(but.accepts(&json!(true)));
        let but = AnythingBut::Numbers(vec![num(json!(5))].into());
        assert!(!but.accepts(&json!(5.0)));
        assert!(but.accepts(&json!("5")));
    }

    #[test]
    fn string_sets_small_and_large() {
        let few = StrSet::new(vec!["b".into(), "a".into(), "a".into()]);
        assert!(matches!(few, StrSet::Few(ref items) if items.len() == 2));
        assert!(few.contains("a") && !few.contains("c"));
        let many = StrSet::new((0..20).map(|i| i.to_string().into()).collect());
        assert!(matches!(many, StrSet::Many(_)));
        assert!(many.contains("19") && !many.contains("20"));
    }
}
