//! The compiled pattern, a tree shaped like the events it matches, and its
//! evaluation against an event.
//!
//! # How arrays and `exists: false` are evaluated
//!
//! event-ruler flattens an event into leaf values, each labelled with its
//! path and with the array elements it sits in, and accepts a match only if
//! the leaves it uses are *array consistent*: no two come from different
//! elements of the same array. An `exists: false` is then checked against
//! the leaves consistent with the ones already used.
//!
//! Walking the tree instead gives the same answer without flattening:
//! when an object pattern meets an array, some element must satisfy the whole
//! sub-pattern, and its absences are checked within that element. The one
//! subtlety is a sub-pattern satisfied by absences alone: it uses no leaf,
//! so it binds no element, and its fields must then be absent from every
//! element. Each sub-pattern is therefore evaluated two ways:
//!
//! - [`Node::bound`]: satisfied using at least one leaf value, all of them
//!   (and every absence checked) inside one element of each array crossed;
//! - [`Node::absent`]: satisfied by absences alone, checked across all
//!   elements of the arrays crossed.
//!
//! A field that is satisfied either way can join a conjunction; the
//! conjunction is bound if any of its parts is. Only patterns that contain
//! `exists: false` ever need the second evaluation.

use serde_json::{Map, Value};

use super::leaf::Leaf;

type Object = Map<String, Value>;

/// An object pattern: all fields must match, and one alternative of `$or`.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// Ordered cheapest first so a failing event is rejected early.
    pub(super) fields: Box<[Field]>,
    /// The alternatives of this level's `$or`; empty when there is none.
    pub(super) any_of: Box<[Node]>,
    /// Whether absences alone can satisfy this node: every field allows
    /// absence and so does one `$or` alternative. Lets evaluation skip the
    /// absence check for the (usual) patterns without `exists: false`.
    pub(super) absence_can_satisfy: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) key: Box<str>,
    pub(super) kind: FieldKind,
}

#[derive(Debug, Clone)]
pub(super) enum FieldKind {
    Leaf(Leaf),
    Object(Node),
}

impl Node {
    pub(super) fn new(mut fields: Vec<Field>, any_of: Vec<Node>) -> Self {
        // Exact-value leaves are cheapest and usually most selective
        // (`source`, `detail-type`), then other leaves, then nested objects.
        fields.sort_by_key(|field| match &field.kind {
            FieldKind::Leaf(leaf) if leaf.is_exact_only() => 0,
            FieldKind::Leaf(_) => 1,
            FieldKind::Object(_) => 2,
        });
        let absence_can_satisfy = fields.iter().all(|field| match &field.kind {
            FieldKind::Leaf(leaf) => leaf.absent,
            FieldKind::Object(node) => node.absence_can_satisfy,
        }) && (any_of.is_empty()
            || any_of.iter().any(|alt| alt.absence_can_satisfy));
        Self {
            fields: fields.into_boxed_slice(),
            any_of: any_of.into_boxed_slice(),
            absence_can_satisfy,
        }
    }

    /// Both nodes at once: what a pattern says at one path through two
    /// spellings of it (`{"a": {"b": ..}, "a.c": ..}`). Two `$or`s at the
    /// same path must both hold: their alternatives are paired up.
    pub(super) fn merge(self, other: Node) -> Node {
        let mut fields = self.fields.into_vec();
        fields.extend(other.fields.into_vec());
        let any_of = match (self.any_of.is_empty(), other.any_of.is_empty()) {
            (_, true) => self.any_of.into_vec(),
            (true, false) => other.any_of.into_vec(),
            (false, false) => {
                let mut pairs = Vec::with_capacity(self.any_of.len() * other.any_of.len());
                for a in self.any_of.iter() {
                    for b in other.any_of.iter() {
                        pairs.push(a.clone().merge(b.clone()));
                    }
                }
                pairs
            }
        };
        Node::new(merge_fields(fields), any_of)
    }

    /// How many rules EventBridge expands this pattern's `$or`s into: the
    /// product, over the `$or`s, of their alternatives' counts.
    pub(super) fn combinations(&self) -> u64 {
        let nested = self
            .fields
            .iter()
            .filter_map(|field| match &field.kind {
                FieldKind::Object(node) => Some(node.combinations()),
                FieldKind::Leaf(_) => None,
            })
            .fold(1u64, u64::saturating_mul);
        if self.any_of.is_empty() {
            nested
        } else {
            let alternatives = self
                .any_of
                .iter()
                .map(Node::combinations)
                .fold(0u64, u64::saturating_add);
            nested.saturating_mul(alternatives)
        }
    }

    /// The whole pattern against an event envelope.
    pub(super) fn matches(&self, event: &Value) -> bool {
        let Value::Object(root) = event else {
            return false;
        };
        let root = [Obj::whole(root)];
        self.bound(&root) || (self.absence_can_satisfy && self.absent(&root))
    }

    /// Satisfied within `view` (one object as the ruler sees it, see
    /// [`Obj`]), using at least one leaf value.
    fn bound(&self, view: &[Obj<'_>]) -> bool {
        let mut used_a_value = false;
        let mut found = Found::default();
        for field in self.fields.iter() {
            found.look_up(view, &field.key);
            let bound = match &field.kind {
                FieldKind::Leaf(leaf) => found
                    .values
                    .iter()
                    .any(|child| any_item(child, |item| !item.is_object() && leaf.accepts(item))),
                FieldKind::Object(node) => node.bound_in_some_element(&found),
            };
            if bound {
                used_a_value = true;
                continue;
            }
            if !field_absent(field, &found) {
                return false;
            }
        }
        if !self.any_of.is_empty() {
            if self.any_of.iter().any(|alt| alt.bound(view)) {
                used_a_value = true;
            } else if !self
                .any_of
                .iter()
                .any(|alt| alt.absence_can_satisfy && alt.absent(view))
            {
                return false;
            }
        }
        used_a_value
    }

    /// Bound in what an event holds at this node's path: the objects found
    /// there outside arrays (never array-bound, so always together) plus one
    /// object element of each array found there, if it has any.
    fn bound_in_some_element<'a>(&self, found: &Found<'a>) -> bool {
        let mut view = found.objects.clone();
        let mut arrays: Vec<Vec<&'a Object>> = Vec::new();
        for value in &found.values {
            match value {
                Value::Object(object) => view.push(Obj::whole(object)),
                Value::Array(_) => {
                    let mut elements = Vec::new();
                    any_item(value, |item| {
                        if let Value::Object(o) = item {
                            elements.push(o);
                        }
                        false
                    });
                    if !elements.is_empty() {
                        arrays.push(elements);
                    }
                }
                _ => {}
            }
        }
        if view.is_empty() && arrays.is_empty() {
            return false;
        }
        self.bound_choosing(&mut view, &arrays)
    }

    /// Tries every choice of one element per array. Picking an element never
    /// loses a match that leaving the array unbound would find: unbound, all
    /// its elements would count against `exists: false`.
    fn bound_choosing<'a>(&self, view: &mut Vec<Obj<'a>>, arrays: &[Vec<&'a Object>]) -> bool {
        let Some((elements, rest)) = arrays.split_first() else {
            return self.bound(view);
        };
        elements.iter().any(|element| {
            view.push(Obj::whole(element));
            let bound = self.bound_choosing(view, rest);
            view.pop();
            bound
        })
    }

    /// Satisfied by absences alone across all of `objects` taken together
    /// (the elements of the arrays crossed on the way here, none of them
    /// bound): a field is absent only if no object has a leaf there.
    fn absent(&self, objects: &[Obj<'_>]) -> bool {
        if !self.absence_can_satisfy {
            return false;
        }
        let mut found = Found::default();
        for field in self.fields.iter() {
            found.look_up(objects, &field.key);
            if !field_absent(field, &found) {
                return false;
            }
        }
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|alt| alt.absence_can_satisfy && alt.absent(objects))
    }
}

/// Fields that share a key become one: objects are merged, and of two
/// matcher lists for the same name the later wins, as event-ruler's
/// `JsonRuleCompiler` overrides a name it meets twice. A key may hold both a
/// matcher list and an object (`"a"` and `"a.b"` are different names).
pub(super) fn merge_fields(fields: Vec<Field>) -> Vec<Field> {
    let mut merged: Vec<Field> = Vec::with_capacity(fields.len());
    for field in fields {
        let same = merged.iter_mut().find(|known| {
            known.key == field.key
                && matches!(
                    (&known.kind, &field.kind),
                    (FieldKind::Leaf(_), FieldKind::Leaf(_))
                        | (FieldKind::Object(_), FieldKind::Object(_))
                )
        });
        match same {
            None => merged.push(field),
            Some(known) => {
                known.kind = match (
                    std::mem::replace(&mut known.kind, FieldKind::Leaf(Leaf::default())),
                    field.kind,
                ) {
                    (FieldKind::Object(a), FieldKind::Object(b)) => FieldKind::Object(a.merge(b)),
                    (_, later) => later,
                };
            }
        }
    }
    merged
}

/// An event object as event-ruler sees it. The ruler names each leaf by its
/// path joined with dots, so `{"a": {"b": 1}}` and `{"a.b": 1}` both hold
/// `a.b`; pattern keys are split at dots when compiled, and here an object
/// is either a whole JSON object or the part of one behind a dotted prefix:
/// the keys of `object` that begin with `prefix` (which ends with a dot),
/// read without it.
#[derive(Debug, Clone, Copy)]
struct Obj<'a> {
    object: &'a Object,
    prefix: &'a str,
}

impl<'a> Obj<'a> {
    fn whole(object: &'a Object) -> Self {
        Self { object, prefix: "" }
    }
}

/// What a set of [`Obj`]s holds under one key.
#[derive(Debug, Default)]
struct Found<'a> {
    /// The values stored at the key itself.
    values: Vec<&'a Value>,
    /// The parts reached through dotted keys, `key.` being their prefix.
    objects: Vec<Obj<'a>>,
}

impl<'a> Found<'a> {
    fn look_up(&mut self, view: &[Obj<'a>], key: &str) {
        self.values.clear();
        self.objects.clear();
        for obj in view {
            let (p, k) = (obj.prefix.len(), key.len());
            if p == 0
                && let Some(value) = obj.object.get(key)
            {
                self.values.push(value);
            }
            let mut dotted = false;
            for (name, value) in obj.object {
                // `prefix` + `key`, then either the end or a dot.
                let Some(rest) = name.strip_prefix(obj.prefix) else {
                    continue;
                };
                let Some(after) = rest.strip_prefix(key) else {
                    continue;
                };
                if after.is_empty() {
                    if p != 0 {
                        self.values.push(value);
                    }
                } else if after.starts_with('.') && !dotted {
                    dotted = true;
                    self.objects.push(Obj {
                        object: obj.object,
                        prefix: &name[..p + k + 1],
                    });
                }
            }
        }
    }
}

/// Whether `field` is satisfied by absence, given what was found at its key
/// (in any number of unbound objects).
fn field_absent(field: &Field, found: &Found<'_>) -> bool {
    match &field.kind {
        FieldKind::Leaf(leaf) => {
            leaf.absent
                && !found
                    .values
                    .iter()
                    .any(|v| any_item(v, |item| !item.is_object()))
        }
        FieldKind::Object(node) => {
            if !node.absence_can_satisfy {
                return false;
            }
            let mut objects = found.objects.clone();
            for value in &found.values {
                any_item(value, |item| {
                    if let Value::Object(o) = item {
                        objects.push(Obj::whole(o));
                    }
                    false
                });
            }
            node.absent(&objects)
        }
    }
}

/// Calls `f` on `value`, or, if it is an array, on each of its items that is
/// not an array itself (nested arrays are looked through), until `f` returns
/// true. Iterative, so no event nesting can exhaust the stack.
fn any_item<'a>(value: &'a Value, mut f: impl FnMut(&'a Value) -> bool) -> bool {
    let Value::Array(items) = value else {
        return f(value);
    };
    let mut nested: Vec<std::slice::Iter<'a, Value>> = Vec::new();
    let mut current = items.iter();
    loop {
        match current.next() {
            Some(Value::Array(inner)) => {
                nested.push(std::mem::replace(&mut current, inner.iter()));
            }
            Some(item) => {
                if f(item) {
                    return true;
                }
            }
            None => match nested.pop() {
                Some(outer) => current = outer,
                None => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn any_item_looks_through_nested_arrays_in_order() {
        let v = json!([1, [2, [3, []], 4], {"a": 5}, 6]);
        let mut seen = Vec::new();
        any_item(&v, |item| {
            seen.push(item.clone());
            false
        });
        assert_eq!(
            seen,
            vec![
                json!(1),
                json!(2),
                json!(3),
                json!(4),
                json!({"a": 5}),
                json!(6)
            ]
        );
        assert!(any_item(&v, |item| *item == json!(4)));
        assert!(any_item(&json!("x"), |item| item.is_string()));
        assert!(!any_item(&json!([]), |_| true));
    }

    #[test]
    fn any_item_survives_very_deep_arrays() {
        let mut v = json!(1);
        for _ in 0..10_000 {
            v = Value::Array(vec![v]);
        }
        assert!(any_item(&v, |item| *item == json!(1)));
        // serde_json drops values recursively; unwrap iteratively instead.
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }
}
