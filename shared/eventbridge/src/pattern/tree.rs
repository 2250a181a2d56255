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
        self.bound(root) || (self.absence_can_satisfy && self.absent(&[root]))
    }

    /// Satisfied within `object`, using at least one leaf value.
    fn bound(&self, object: &Object) -> bool {
        let mut used_a_value = false;
        for field in self.fields.iter() {
            let child = object.get(&*field.key);
            let bound = child.is_some_and(|child| match &field.kind {
                FieldKind::Leaf(leaf) => {
                    any_item(child, |item| !item.is_object() && leaf.accepts(item))
                }
                FieldKind::Object(node) => any_item(child, |item| {
                    item.as_object().is_some_and(|o| node.bound(o))
                }),
            });
            if bound {
                used_a_value = true;
                continue;
            }
            let found: &[&Value] = match &child {
                Some(child) => std::slice::from_ref(child),
                None => &[],
            };
            if !field_absent(field, found) {
                return false;
            }
        }
        if !self.any_of.is_empty() {
            if self.any_of.iter().any(|alt| alt.bound(object)) {
                used_a_value = true;
            } else if !self
                .any_of
                .iter()
                .any(|alt| alt.absence_can_satisfy && alt.absent(&[object]))
            {
                return false;
            }
        }
        used_a_value
    }

    /// Satisfied by absences alone across all of `objects` taken together
    /// (the elements of the arrays crossed on the way here, none of them
    /// bound): a field is absent only if no object has a leaf there.
    fn absent(&self, objects: &[&Object]) -> bool {
        if !self.absence_can_satisfy {
            return false;
        }
        for field in self.fields.iter() {
            let children: Vec<&Value> = objects
                .iter()
                .filter_map(|object| object.get(&*field.key))
                .collect();
            if !field_absent(field, &children) {
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

/// Whether `field` is satisfied by absence, given the values found at its
/// key (in any number of unbound objects).
fn field_absent(field: &Field, values: &[&Value]) -> bool {
    match &field.kind {
        FieldKind::Leaf(leaf) => {
            leaf.absent && !values.iter().any(|v| any_item(v, |item| !item.is_object()))
        }
        FieldKind::Object(node) => {
            if !node.absence_can_satisfy {
                return false;
            }
            let mut objects = Vec::new();
            for value in values {
                any_item(value, |item| {
                    if let Value::Object(o) = item {
                        objects.push(o);
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
