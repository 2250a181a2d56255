//! Properties of event-pattern matching, checked on generated patterns and
//! events.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use purser_eventbridge::EventPattern;
use serde_json::{Value, json};

fn compile(pattern: &Value) -> EventPattern {
    EventPattern::from_value(pattern).unwrap_or_else(|e| panic!("{pattern} refused: {e}"))
}

/// Whether `{"f": [matcher]}` matches `{"f": value}`.
fn field_matches(matcher: &Value, value: &Value) -> bool {
    compile(&json!({ "f": [matcher] })).matches(&json!({ "f": value }))
}

/// Short strings over few letters, so generated values and operands collide.
fn small_string() -> impl Strategy<Value = String> {
    "[aAbB.]{0,4}"
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..=3).prop_map(Value::from),
        prop::sample::select(vec![0.0, 1.0, 1.5, -2.5, 300.0, 1e-9]).prop_map(Value::from),
    ]
}

/// Any leaf value an event can hold.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        small_string().prop_map(Value::from),
        number(),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

/// A wildcard operand over a small alphabet, with no `**`.
fn wildcard_operand() -> impl Strategy<Value = String> {
    "[ab*]{0,5}".prop_filter("no consecutive wildcards", |w| !w.contains("**"))
}

/// One valid matcher of any kind.
fn matcher() -> impl Strategy<Value = Value> {
    let non_empty = "[aAbB.]{1,3}";
    prop_oneof![
        scalar(),
        small_string().prop_map(|s| json!({"prefix": s})),
        small_string().prop_map(|s| json!({"suffix": s})),
        small_string().prop_map(|s| json!({"prefix": {"equals-ignore-case": s}})),
        small_string().prop_map(|s| json!({"suffix": {"equals-ignore-case": s}})),
        small_string().prop_map(|s| json!({"equals-ignore-case": s})),
        wildcard_operand().prop_map(|w| json!({"wildcard": w})),
        small_string().prop_map(|s| json!({"anything-but": s})),
        number().prop_map(|n| json!({"anything-but": n})),
        non_empty.prop_map(|s| json!({"anything-but": {"prefix": s}})),
        non_empty.prop_map(|s| json!({"anything-but": {"suffix": s}})),
        small_string().prop_map(|s| json!({"anything-but": {"equals-ignore-case": s}})),
        wildcard_operand().prop_map(|w| json!({"anything-but": {"wildcard": w}})),
        (
            prop::sample::select(vec![">", ">=", "<", "<=", "="]),
            -3i64..=3
        )
            .prop_map(|(op, n)| json!({"numeric": [op, n]})),
        any::<bool>().prop_map(|b| json!({"exists": b})),
        Just(json!({"cidr": "10.0.0.0/8"})),
    ]
}

/// A field's matcher list.
fn matchers() -> impl Strategy<Value = Value> {
    prop::collection::vec(matcher(), 1..3).prop_map(Value::from)
}

/// What an event may hold at a field: nothing, a leaf, an array, an object.
fn field_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        scalar().prop_map(Some),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| Some(v.into())),
        scalar().prop_map(|v| Some(json!({"c": v}))),
    ]
}

/// An object with fields `a` and `b`, either possibly missing.
fn object_ab() -> impl Strategy<Value = Value> {
    (field_value(), field_value()).prop_map(|(a, b)| {
        let mut object = serde_json::Map::new();
        if let Some(a) = a {
            object.insert("a".into(), a);
        }
        if let Some(b) = b {
            object.insert("b".into(), b);
        }
        Value::Object(object)
    })
}

/// A pattern on `a` or `b` (or both), as leaves or through `c`.
fn pattern_ab() -> impl Strategy<Value = Value> {
    let field = prop_oneof![matchers(), matchers().prop_map(|m| json!({"c": m})),];
    (
        prop::sample::select(vec!["a", "b"]),
        field.clone(),
        prop::option::of(field),
    )
        .prop_map(|(key, first, second)| {
            let mut pattern = serde_json::Map::new();
            pattern.insert(key.into(), first);
            if let Some(second) = second {
                let other = if key == "a" { "b" } else { "a" };
                pattern.insert(other.into(), second);
            }
            Value::Object(pattern)
        })
}

/// Every way of writing each character in upper or lower case.
fn case_permutation(s: &str, upper: &[bool]) -> String {
    s.chars()
        .zip(upper.iter().copied().chain(std::iter::repeat(false)))
        .map(|(c, up)| {
            if up {
                c.to_uppercase().collect::<String>()
            } else {
                c.to_lowercase().collect()
            }
        })
        .collect()
}

/// A plain reference for `*` globs: backtracking over characters.
fn glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// Arbitrary JSON, for the "never panics" property.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z*\\\\/.:=<> -]{0,8}".prop_map(Value::from),
        prop::sample::select(vec![
            "prefix",
            "suffix",
            "anything-but",
            "numeric",
            "exists",
            "cidr",
            "wildcard",
            "equals-ignore-case",
            "$or",
            "10.0.0.0/8",
            "::/64",
            ">",
            "<=",
            "=",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "a",
            "b",
            "$or",
            "prefix",
            "suffix",
            "anything-but",
            "numeric",
            "exists",
            "cidr",
            "wildcard",
            "equals-ignore-case",
            "exactly",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..4).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prefix_matches_every_extension(p in "\\PC{0,6}", tail in "\\PC{0,6}") {
        let value = format!("{p}{tail}");
        prop_assert!(field_matches(&json!({"prefix": p}), &json!(value)), "see inputs");
    }

    #[test]
    fn prefix_and_suffix_agree_with_str(p in small_string(), v in small_string()) {
        prop_assert_eq!(field_matches(&json!({"prefix": &p}), &json!(&v)), v.starts_with(&p));
        prop_assert_eq!(field_matches(&json!({"suffix": &p}), &json!(&v)), v.ends_with(&p));
    }

    #[test]
    fn equals_ignore_case_matches_any_case_permutation(
        s in "\\PC{0,8}",
        upper in prop::collection::vec(any::<bool>(), 0..8),
        head in "\\PC{0,3}",
        tail in "\\PC{0,3}",
    ) {
        let permuted = case_permutation(&s, &upper);
        prop_assert!(field_matches(&json!({"equals-ignore-case": &s}), &json!(&permuted)), "see inputs");
        let longer = format!("{permuted}{tail}");
        prop_assert!(field_matches(&json!({"prefix": {"equals-ignore-case": &s}}), &json!(longer)), "see inputs");
        let longer = format!("{head}{permuted}");
        prop_assert!(field_matches(&json!({"suffix": {"equals-ignore-case": &s}}), &json!(longer)), "see inputs");
    }

    #[test]
    fn ascii_equals_ignore_case_agrees_with_std(p in "[a-zA-Z0-9]{0,4}", v in "[a-zA-Z0-9é]{0,4}") {
        prop_assert_eq!(
            field_matches(&json!({"equals-ignore-case": &p}), &json!(&v)),
            p.eq_ignore_ascii_case(&v)
        );
        prop_assert_eq!(
            field_matches(&json!({"prefix": {"equals-ignore-case": &p}}), &json!(&v)),
            v.len() >= p.len() && v.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        );
    }

    #[test]
    fn anything_but_is_the_negation_of_an_exact_match(
        operand in prop_oneof![small_string().prop_map(Value::from), number()],
        value in scalar(),
    ) {
        prop_assert_eq!(
            field_matches(&json!({"anything-but": &operand}), &value),
            !field_matches(&operand, &value)
        );
    }

    #[test]
    fn anything_but_list_is_the_negation_of_the_list(
        operands in prop_oneof![
            prop::collection::vec(small_string().prop_map(Value::from), 1..4),
            prop::collection::vec(number(), 1..4),
        ],
        value in scalar(),
    ) {
        let exact = compile(&json!({"f": &operands})).matches(&json!({"f": &value}));
        prop_assert_eq!(field_matches(&json!({"anything-but": operands}), &value), !exact);
    }

    #[test]
    fn anything_but_operators_negate_their_operator(
        operator in prop::sample::select(vec!["prefix", "suffix", "equals-ignore-case", "wildcard"]),
        operand in "[aAb]{1,3}",
        value in scalar(),
    ) {
        let positive = field_matches(&json!({ operator: &operand }), &value);
        let negative = field_matches(&json!({"anything-but": { operator: &operand }}), &value);
        prop_assert_eq!(negative, !positive);
    }

    #[test]
    fn anything_but_never_matches_a_missing_field(operand in prop_oneof![small_string().prop_map(Value::from), number()]) {
        prop_assert!(!compile(&json!({"f": [{"anything-but": operand}]})).matches(&json!({"g": 1})), "see inputs");
    }

    #[test]
    fn or_is_the_disjunction_of_its_alternatives(
        a in pattern_ab(),
        b in pattern_ab(),
        event in object_ab(),
        elements in prop::collection::vec(object_ab(), 0..3),
    ) {
        let either = compile(&json!({"$or": [&a, &b]}));
        prop_assert_eq!(either.matches(&event), compile(&a).matches(&event) || compile(&b).matches(&event));
        // Nested, and against an array of objects, where each alternative is
        // judged per element.
        let nested = compile(&json!({"x": {"$or": [&a, &b]}}));
        let in_array = json!({"x": elements});
        prop_assert_eq!(
            nested.matches(&in_array),
            compile(&json!({"x": a})).matches(&in_array) || compile(&json!({"x": b})).matches(&in_array)
        );
    }

    #[test]
    fn and_of_distinct_keys_is_the_conjunction(
        a in matchers(),
        b in matchers(),
        nested in any::<bool>(),
        event in object_ab(),
    ) {
        let b = if nested { json!({"c": b}) } else { b };
        let both = compile(&json!({"a": &a, "b": &b})).matches(&event);
        let each = compile(&json!({"a": a})).matches(&event) && compile(&json!({"b": b})).matches(&event);
        prop_assert_eq!(both, each);
    }

    #[test]
    fn wrapping_a_leaf_in_arrays_changes_nothing(m in matchers(), value in scalar()) {
        let pattern = compile(&json!({"f": m}));
        let bare = pattern.matches(&json!({"f": &value}));
        prop_assert_eq!(pattern.matches(&json!({"f": [&value]})), bare);
        prop_assert_eq!(pattern.matches(&json!({"f": [[&value]]})), bare);
        // And inside an object inside an array.
        let nested = compile(&json!({"o": {"f": m}}));
        prop_assert_eq!(nested.matches(&json!({"o": [{"f": &value}]})), bare);
    }

    #[test]
    fn numeric_ranges_agree_with_f64(
        a in -1e9f64..1e9,
        b in -1e9f64..1e9,
        x in prop_oneof![-1e9f64..1e9, Just(0.0)],
        open_low in any::<bool>(),
        open_high in any::<bool>(),
    ) {
        let value = json!(x);
        let op = |open: bool, strict: &'static str, loose: &'static str| if open { strict } else { loose };
        prop_assert_eq!(field_matches(&json!({"numeric": [op(open_low, ">", ">="), a]}), &value),
            if open_low { x > a } else { x >= a });
        prop_assert_eq!(field_matches(&json!({"numeric": [op(open_high, "<", "<="), b]}), &value),
            if open_high { x < b } else { x <= b });
        prop_assert_eq!(field_matches(&json!({"numeric": ["=", a]}), &json!(a)), true);
        prop_assert_eq!(field_matches(&json!({"numeric": ["=", a]}), &value), x == a);
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        prop_assume!(low < high);
        let range = json!({"numeric": [op(open_low, ">", ">="), low, op(open_high, "<", "<="), high]});
        let inside = (if open_low { x > low } else { x >= low }) && (if open_high { x < high } else { x <= high });
        prop_assert_eq!(field_matches(&range, &value), inside);
    }

    #[test]
    fn integers_match_exactly_and_by_value(n in any::<i64>(), m in any::<i64>()) {
        prop_assert_eq!(field_matches(&json!(n), &json!(m)), n == m);
        prop_assert!(field_matches(&json!(n), &json!(n as f64)) || (n as f64) as i64 != n, "see inputs");
    }

    #[test]
    fn cidr_v4_agrees_with_ipnet(network in any::<u32>(), prefix in 0u8..32, address in any::<u32>(), near in any::<bool>()) {
        let network = Ipv4Addr::from(network);
        // Half the time, an address that shares the network's top bits.
        let address = if near { Ipv4Addr::from(u32::from(network) ^ (address >> prefix.max(1))) } else { Ipv4Addr::from(address) };
        let net = IpNet::new(IpAddr::V4(network), prefix).unwrap();
        let pattern = json!({"cidr": format!("{network}/{prefix}")});
        prop_assert_eq!(field_matches(&pattern, &json!(address.to_string())), net.contains(&IpAddr::V4(address)));
    }

    #[test]
    fn cidr_v6_agrees_with_ipnet(network in any::<u128>(), prefix in 0u8..128, address in any::<u128>(), near in any::<bool>()) {
        let network = Ipv6Addr::from(network);
        let address = if near { Ipv6Addr::from(u128::from(network) ^ (address >> prefix.max(1))) } else { Ipv6Addr::from(address) };
        let net = IpNet::new(IpAddr::V6(network), prefix).unwrap();
        let pattern = json!({"cidr": format!("{network}/{prefix}")});
        prop_assert_eq!(field_matches(&pattern, &json!(address.to_string())), net.contains(&IpAddr::V6(address)));
    }

    #[test]
    fn a_lone_wildcard_matches_every_string(s in "\\PC{0,12}") {
        prop_assert!(field_matches(&json!({"wildcard": "*"}), &json!(s)), "see inputs");
    }

    #[test]
    fn wildcards_agree_with_a_backtracking_glob(w in wildcard_operand(), s in "[ab]{0,6}") {
        let expected = glob(&w.chars().collect::<Vec<_>>(), &s.chars().collect::<Vec<_>>());
        prop_assert_eq!(field_matches(&json!({"wildcard": &w}), &json!(&s)), expected);
    }

    #[test]
    fn escaped_wildcard_characters_are_literal(s in "[a*\\\\]{0,6}") {
        let escaped: String = s.chars().map(|c| if c == 'a' { c.to_string() } else { format!("\\{c}") }).collect();
        prop_assert!(field_matches(&json!({"wildcard": escaped}), &json!(&s)), "see inputs");
    }

    #[test]
    fn text_and_value_forms_compile_alike(pattern in pattern_ab(), event in object_ab()) {
        let parsed = EventPattern::parse(&pattern.to_string()).unwrap();
        prop_assert_eq!(parsed.matches(&event), compile(&pattern).matches(&event));
    }

    #[test]
    fn arbitrary_json_never_panics(pattern in json_value(), event in json_value()) {
        if let Ok(compiled) = EventPattern::from_value(&pattern) {
            let _ = compiled.matches(&event);
            let _ = compiled.matches(&json!({"a": &event, "b": [&event, {"c": &event}]}));
        }
        let _ = EventPattern::parse(&pattern.to_string());
    }
}
