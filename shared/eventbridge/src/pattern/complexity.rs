//! EventBridge's limit on wildcard complexity.
//!
//! EventBridge adds a rule's sub-rules (one per combination of `$or`
//! alternatives) to an event-ruler `Machine` and refuses the rule when
//! `MachineComplexityEvaluator` finds a field whose byte machine is too
//! non-deterministic: when some value could keep too many wildcard prefixes
//! alive at once. This module rebuilds, for each field, the part of the byte
//! machine that matters (the `wildcard` and `anything-but` `wildcard`
//! operands, as `ByteMachine` lays them out) and runs the same evaluation:
//!
//! - the bytes of an operand up to its first `*` are shared with every other
//!   operand of the field that begins the same way (a trie), and so is that
//!   first `*`; what follows is the operand's own;
//! - a `*` is a state reached from the one before it on any byte, looping on
//!   any byte; the byte after it is reached from both (the `*` may be empty);
//! - a state weighs as many patterns as can be matched from it (an
//!   `anything-but` list is one pattern), and a set of states reached by one
//!   value weighs the sum of its states' weights, plus that of any `*` state
//!   they lead to and do not hold: the evaluator's "complexity".
//!
//! The operands are evaluated as the ruler stores them, between the quotes
//! of a JSON string. EventBridge does not document its limit; refusing above
//! [`MAX_COMPLEXITY`] reproduces the answers it has been seen to give.

use std::collections::{HashMap, HashSet};

use super::leaf::{AnythingBut, Leaf, Matcher};
use super::text::Wildcard;
use super::tree::{FieldKind, Node};

/// The largest complexity EventBridge accepts. Observed on one field: three
/// `*:stack/<name>/*` operands (complexity 9), four `*.<ext>` ones (8) and two
/// `*/dir/*.<ext>` ones (8) accepted; four `*:stack/<name>/*` (12) and four
/// `*/dir/*.<ext>` (16) refused. Any limit from 9 to 11 fits.
pub(super) const MAX_COMPLEXITY: usize = 10;

pub(super) const TOO_COMPLEX: &str = "Rule is too complex - try using fewer wildcard characters \
                                      or fewer repeating character sequences after a wildcard character";

/// Explored sets of states beyond which evaluation stops (and reports the
/// highest complexity seen): only reachable by operands far too complex
/// anyway.
const MAX_SETS: usize = 100_000;

/// A byte of an operand, or (`STAR`) an unescaped `*`.
type Token = u16;
const STAR: Token = 256;

/// Where a field's byte machine is: the fields before it in its sub-rule
/// (path and matchers, by address), and its own path.
type MachineKey = (Vec<(String, usize)>, String);

/// The path of the first field whose wildcards are too complex, if any.
pub(super) fn too_complex(root: &Node) -> Option<String> {
    if !has_wildcards(root) {
        return None;
    }
    // Fields of each sub-rule, by path, as the ruler orders them.
    let mut machines: HashMap<MachineKey, Vec<&Leaf>> = HashMap::new();
    let mut order = Vec::new();
    for mut rule in sub_rules(root, "") {
        rule.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (path, leaf)) in rule.iter().enumerate() {
            if !has_complexity(leaf) {
                continue;
            }
            // A field's byte machine hangs off the name state its preceding
            // fields lead to: sub-rules agreeing on those share it.
            let before: Vec<(String, usize)> = rule[..i]
                .iter()
                .map(|(p, l)| (p.clone(), std::ptr::from_ref(*l) as usize))
                .collect();
            let key = (before, path.clone());
            let leaves = machines.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Vec::new()
            });
            if !leaves.iter().any(|known| std::ptr::eq(*known, *leaf)) {
                leaves.push(leaf);
            }
        }
    }
    order.into_iter().find_map(|key| {
        let patterns = patterns(&machines[&key]);
        (complexity(&patterns, MAX_COMPLEXITY) > MAX_COMPLEXITY).then(|| key.1.clone())
    })
}

fn has_wildcards(node: &Node) -> bool {
    node.fields.iter().any(|field| match &field.kind {
        FieldKind::Leaf(leaf) => has_complexity(leaf),
        FieldKind::Object(node) => has_wildcards(node),
    }) || node.any_of.iter().any(has_wildcards)
}

fn has_complexity(leaf: &Leaf) -> bool {
    leaf.matchers.iter().any(|m| {
        matches!(
            m,
            Matcher::Wildcard(_) | Matcher::AnythingBut(AnythingBut::Wildcards(_))
        )
    })
}

/// The pattern's sub-rules, each a list of (dotted path, matchers).
fn sub_rules<'a>(node: &'a Node, prefix: &str) -> Vec<Vec<(String, &'a Leaf)>> {
    let mut rules = vec![Vec::new()];
    for field in node.fields.iter() {
        let path = if prefix.is_empty() {
            field.key.to_string()
        } else {
            format!("{prefix}.{}", field.key)
        };
        match &field.kind {
            FieldKind::Leaf(leaf) => rules.iter_mut().for_each(|r| r.push((path.clone(), leaf))),
            FieldKind::Object(child) => rules = product(&rules, &sub_rules(child, &path)),
        }
    }
    if !node.any_of.is_empty() {
        let alternatives: Vec<_> = node
            .any_of
            .iter()
            .flat_map(|alt| sub_rules(alt, prefix))
            .collect();
        rules = product(&rules, &alternatives);
    }
    rules
}

fn product<T: Clone>(a: &[Vec<T>], b: &[Vec<T>]) -> Vec<Vec<T>> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| x.iter().chain(y).cloned().collect()))
        .collect()
}

/// A field's complexity-bearing patterns, each with its operands' tokens,
/// quoted as the ruler stores strings. Equal patterns are one.
fn patterns(leaves: &[&Leaf]) -> Vec<Vec<Vec<Token>>> {
    let mut seen = HashSet::new();
    let mut patterns = Vec::new();
    for leaf in leaves {
        for matcher in &leaf.matchers {
            let (kind, wildcards): (u8, &[Wildcard]) = match matcher {
                Matcher::Wildcard(w) => (0, std::slice::from_ref(w)),
                Matcher::AnythingBut(AnythingBut::Wildcards(ws)) => (1, ws),
                _ => continue,
            };
            let mut paths: Vec<Vec<Token>> = wildcards.iter().map(quoted_tokens).collect();
            paths.sort();
            paths.dedup();
            if seen.insert((kind, paths.clone())) {
                patterns.push(paths);
            }
        }
    }
    patterns
}

fn quoted_tokens(wildcard: &Wildcard) -> Vec<Token> {
    let mut tokens = vec![Token::from(b'"')];
    for (i, piece) in wildcard.pieces().iter().enumerate() {
        if i > 0 {
            tokens.push(STAR);
        }
        tokens.extend(piece.bytes().map(Token::from));
    }
    tokens.push(Token::from(b'"'));
    tokens
}

#[derive(Debug, Default)]
struct State {
    /// Byte transitions.
    bytes: Vec<(u8, usize)>,
    /// The transition on any byte, to a `*` state.
    any: Option<usize>,
    /// The patterns that can be matched from here.
    weight: HashSet<usize>,
}

/// The evaluator's complexity of a byte machine holding `patterns` (each
/// a list of token paths), capped just above `cap`.
fn complexity(patterns: &[Vec<Vec<Token>>], cap: usize) -> usize {
    let mut states = vec![State::default()];
    let mut trie: HashMap<(usize, u8), usize> = HashMap::new();
    let mut first_star: HashMap<usize, usize> = HashMap::new();
    let mut ends: HashMap<usize, usize> = HashMap::new();
    let mut alphabet: HashSet<u8> = HashSet::new();
    for (id, paths) in patterns.iter().enumerate() {
        for tokens in paths {
            let (mut at, mut before_star, mut shared) = (0, None, true);
            for (i, &token) in tokens.iter().enumerate() {
                let next = if token == STAR {
                    let star = if shared {
                        shared = false;
                        *first_star
                            .entry(at)
                            .or_insert_with(|| new_state(&mut states))
                    } else {
                        new_state(&mut states)
                    };
                    states[at].any = Some(star);
                    states[star].any = Some(star);
                    before_star = Some(at);
                    star
                } else {
                    let byte = u8::try_from(token).unwrap_or(0);
                    alphabet.insert(byte);
                    let next = if i + 1 == tokens.len() {
                        *ends.entry(id).or_insert_with(|| new_state(&mut states))
                    } else if shared {
                        *trie
                            .entry((at, byte))
                            .or_insert_with(|| new_state(&mut states))
                    } else {
                        new_state(&mut states)
                    };
                    add_byte(&mut states[at], byte, next);
                    if let Some(before) = before_star.take() {
                        add_byte(&mut states[before], byte, next);
                    }
                    next
                };
                states[next].weight.insert(id);
                at = next;
            }
        }
    }
    // Every byte of the operands, and one standing for all other bytes.
    let mut symbols: Vec<Option<u8>> = alphabet.into_iter().map(Some).collect();
    symbols.push(None);
    let mut pending = vec![vec![0usize]];
    let mut seen: HashSet<Vec<usize>> = HashSet::new();
    let mut highest = 0;
    while let Some(set) = pending.pop() {
        for &symbol in &symbols {
            let mut next: Vec<usize> = Vec::new();
            for &s in &set {
                next.extend(states[s].any);
                if let Some(byte) = symbol {
                    next.extend(
                        states[s]
                            .bytes
                            .iter()
                            .filter(|(b, _)| *b == byte)
                            .map(|(_, t)| *t),
                    );
                }
            }
            if next.is_empty() {
                continue;
            }
            next.sort_unstable();
            next.dedup();
            let mut size: usize = next.iter().map(|&s| states[s].weight.len()).sum();
            for &s in &next {
                if let Some(star) = states[s].any
                    && next.binary_search(&star).is_err()
                {
                    size += states[star].weight.len();
                }
            }
            if size > cap {
                return size;
            }
            highest = highest.max(size);
            if seen.len() < MAX_SETS && seen.insert(next.clone()) {
                pending.push(next);
            }
        }
    }
    highest
}

fn new_state(states: &mut Vec<State>) -> usize {
    states.push(State::default());
    states.len() - 1
}

fn add_byte(state: &mut State, byte: u8, next: usize) {
    if !state.bytes.contains(&(byte, next)) {
        state.bytes.push((byte, next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operands unquoted, each its own pattern, as the cases of
    /// event-ruler's MachineComplexityEvaluatorTest add them to a
    /// ByteMachine.
    fn of(operands: &[&str]) -> usize {
        let patterns: Vec<Vec<Vec<Token>>> = operands
            .iter()
            .map(|operand| {
                let tokens = operand
                    .bytes()
                    .map(|b| if b == b'*' { STAR } else { Token::from(b) })
                    .collect();
                vec![tokens]
            })
            .collect();
        complexity(&patterns, 100)
    }

    #[test]
    fn agrees_with_event_ruler_machine_complexity_evaluator_test() {
        // Expected values and operands from MachineComplexityEvaluatorTest.
        for (expected, operands) in [
            (1, &["*"][..]),
            (3, &["*", "ab*c"]),
            (1, &["abc"]),
            (2, &["*ab"]),
            (3, &["*aa"]),
            (2, &["a*b"]),
            (2, &["aa*"]),
            (2, &["a*bc"]),
            (3, &["a*bb"]),
            (3, &["a*bcb"]),
            (4, &["a*bbb"]),
            (4, &["*ab*ad"]),
            (3, &["*ab*d"]),
            (4, &["*aba*"]),
            (5, &["a*b*bb"]),
            (4, &["a*b*cb"]),
            (3, &["a*b*cd"]),
            (4, &["a*b*b"]),
            (4, &["a*bb*"]),
            (3, &["ab*b*"]),
            (3, &["ab*c", "x*xx"]),
            (4, &["*abc", "*abcde"]),
            (4, &["a*bcd", "ab*cd"]),
            (4, &["a*bc", "a*bcde"]),
            (7, &["a*aaa", "aa*aa"]),
            (4, &["a*bc", "abc*d"]),
            (6, &["a*aaa", "aaa*a"]),
            (5, &["a*aax", "aaa*x"]),
        ] {
            assert_eq!(of(operands), expected, "{operands:?}");
        }
    }

    #[test]
    fn evaluation_stops_above_the_cap() {
        // Fifty different `*a<i>` patterns: "a" keeps them all alive.
        let patterns: Vec<Vec<Vec<Token>>> = (0..50u8)
            .map(|i| vec![vec![STAR, Token::from(b'a'), Token::from(i)]])
            .collect();
        assert_eq!(complexity(&patterns, 100), 100);
        assert!(complexity(&patterns, 10) > 10);
    }

    /// Operands of one field as compiled from a pattern: quoted.
    fn quoted(operands: &[&str]) -> usize {
        let patterns: Vec<Vec<Vec<Token>>> = operands
            .iter()
            .map(|w| vec![quoted_tokens(&Wildcard::parse(w).unwrap())])
            .collect();
        complexity(&patterns, 100)
    }

    #[test]
    fn complexities_of_the_rules_eventbridge_was_seen_to_judge() {
        let stacks = [
            "*:stack/SharedStack/*",
            "*:stack/ApiStack/*",
            "*:stack/DataStack/*",
        ];
        assert_eq!(quoted(&stacks), 9);
        assert_eq!(quoted(&["*.bif", "*.tiff", "*.tif", "*.svs"]), 8);
        assert_eq!(quoted(&["*/datasync/*.bif", "*/datasync/*.tif"]), 8);
        let four = [
            "*/datasync/*.bif",
            "*/datasync/*.tif",
            "*/datasync/*.tiff",
            "*/datasync/*.svs",
        ];
        assert_eq!(quoted(&four), 16);
        let mut stacks = stacks.to_vec();
        stacks.push("*:stack/MonitoringStack/*");
        assert_eq!(quoted(&stacks), 12);
    }
}
