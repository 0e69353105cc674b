//! Filter evaluation against resources and multi-valued elements, schema validation of a
//! filter, the `sortBy` order, and the `eq` comparison that the store can look up in its index.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{AttrPath, CompareOp, Filter, FilterError};
use crate::scim::schema::{self, AttrDef, AttrType, ResourceKind};

/// Tests a whole resource (its JSON representation, extension objects under their URN keys).
///
/// A multi-valued attribute matches when any element matches, and a complex multi-valued
/// attribute without a sub-attribute compares each element's `value`. `ne` is the negation
/// of `eq`, so it holds when the attribute is absent and, on a multi-valued attribute, when
/// no element is equal.
pub fn matches(filter: &Filter, kind: ResourceKind, resource: &Value) -> bool {
    evaluate(filter, Scope::Resource(kind), resource)
}

/// Tests one element of the multi-valued attribute `parent` against a value filter, as in
/// `emails[type eq "work"]`; paths in `filter` are relative to the element.
pub fn matches_element(
    filter: &Filter,
    kind: ResourceKind,
    parent: &AttrPath,
    element: &Value,
) -> bool {
    evaluate(
        filter,
        Scope::Element(schema::resolve(kind, parent)),
        element,
    )
}

/// Checks operator and value types against the schema (RFC 7644 section 3.4.2.2): ordering
/// operators are rejected on boolean and binary attributes and with a boolean or null value,
/// and `co`, `sw`, `ew` need a string value.
///
/// NOTE: the AST keeps no byte offsets, so the error's position is 0 and its message names
/// the attribute instead.
pub fn validate(filter: &Filter, kind: ResourceKind) -> Result<(), FilterError> {
    validate_in(filter, Scope::Resource(kind))
}

/// Orders two resources by the `sortBy` attribute (RFC 7644 section 3.4.2.3) in ascending
/// order. A multi-valued attribute sorts by its primary element, or else by its first one.
/// Resources without a value sort last. Strings honour `caseExact`, and dateTime values
/// compare as instants.
pub fn compare_for_sort(kind: ResourceKind, path: &AttrPath, a: &Value, b: &Value) -> Ordering {
    let mut def = schema::resolve(kind, path);
    if path.sub_attr.is_none() && def.is_some_and(|def| def.ty == AttrType::Complex) {
        def = def.and_then(|def| schema::find_sub_attr(def, "value"));
    }

    match (sort_key(kind, path, a), sort_key(kind, path, b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => order_sort_values(def, a, b),
    }
}

/// Top-level core attributes that the store indexes, in lowercase.
const INDEXED_ATTRIBUTES: [&str; 4] = ["username", "externalid", "displayname", "id"];

/// Finds an `eq` with a string value on `userName`, `externalId`, `displayName` or `id`
/// (unqualified, without sub-attribute) that the whole filter requires: the filter itself or
/// either side of an `and`. Returns the lowercase attribute name and the value as written.
///
/// The store may look candidates up by this value, but must still run `matches` on them,
/// because the rest of the filter and the attribute's `caseExact` rule still apply.
pub fn indexed_eq(filter: &Filter) -> Option<(String, String)> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(value),
        } if path.urn.is_none() && path.sub_attr.is_none() => {
            let name = path.name.to_ascii_lowercase();
            INDEXED_ATTRIBUTES
                .contains(&name.as_str())
                .then(|| (name, value.clone()))
        }
        Filter::And(terms) => terms.iter().find_map(indexed_eq),
        _ => None,
    }
}

/// Lookup context for the paths of a filter: a whole resource, or one element of a
/// multi-valued attribute whose definition, when known, gives the sub-attributes.
#[derive(Clone, Copy)]
enum Scope {
    Resource(ResourceKind),
    Element(Option<&'static AttrDef>),
}

/// The values a path selects, with arrays flattened, and the definition of those values.
struct Target<'v> {
    def: Option<&'static AttrDef>,
    values: Vec<&'v Value>,
}

fn evaluate(filter: &Filter, scope: Scope, node: &Value) -> bool {
    match filter {
        Filter::Present(path) => lookup(scope, path, node).values.into_iter().any(is_present),
        Filter::Compare { path, op, value } => evaluate_compare(scope, path, *op, value, node),
        Filter::ValuePath { path, filter } => {
            let target = lookup(scope, path, node);
            let element_scope = Scope::Element(target.def);
            target
                .values
                .into_iter()
                .any(|element| evaluate(filter, element_scope, element))
        }
        Filter::And(terms) => terms.iter().all(|term| evaluate(term, scope, node)),
        Filter::Or(terms) => terms.iter().any(|term| evaluate(term, scope, node)),
        Filter::Not(inner) => !evaluate(inner, scope, node),
    }
}

fn evaluate_compare(
    scope: Scope,
    path: &AttrPath,
    op: CompareOp,
    expected: &Value,
    node: &Value,
) -> bool {
    let target = compared_values(lookup(scope, path, node));
    if expected.is_null() {
        let present = target.values.iter().any(|value| is_present(value));
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }

    // A multi-valued attribute matches when any of its values does (RFC 7644 section
    // 3.4.2.2), for `ne` too: emails [work, home] match `emails.type ne "work"`. An absent
    // attribute is "not identical" to any value, so it matches `ne` and no other operator.
    if op == CompareOp::Ne && target.values.is_empty() {
        return true;
    }
    target.values.iter().any(|actual| compare_leaf(target.def, op, actual, expected))
}

/// Replaces complex values by their `value` sub-attribute, as RFC 7644 section 3.4.2.2 does
/// for `emails co "example.com"`.
fn compared_values(target: Target<'_>) -> Target<'_> {
    let is_complex = target.def.is_some_and(|def| def.ty == AttrType::Complex)
        || target.values.iter().any(|value| value.is_object());
    if !is_complex {
        return target;
    }

    let values = target
        .values
        .into_iter()
        .filter_map(|value| match value {
            Value::Object(_) => get_ignore_case(value, "value"),
            _ => Some(value),
        })
        .collect();
    let def = target
        .def
        .and_then(|def| schema::find_sub_attr(def, "value"));
    Target { def, values }
}

fn lookup<'v>(scope: Scope, path: &AttrPath, node: &'v Value) -> Target<'v> {
    let attribute = match scope {
        Scope::Resource(kind) => resource_attribute(kind, path, node),
        Scope::Element(_) => element_attribute(node, &path.name),
    };

    let mut values = Vec::new();
    match (attribute, &path.sub_attr) {
        (None, _) => {}
        (Some(value), None) => values.extend(flatten(value)),
        (Some(value), Some(sub_attr)) => {
            let subs = flatten(value).filter_map(|item| get_ignore_case(item, sub_attr));
            values.extend(subs.flat_map(flatten));
        }
    }
    Target {
        def: definition(scope, path),
        values,
    }
}

fn definition(scope: Scope, path: &AttrPath) -> Option<&'static AttrDef> {
    match scope {
        Scope::Resource(kind) => schema::resolve(kind, path),
        Scope::Element(parent) => {
            let attr = schema::find_sub_attr(parent?, &path.name)?;
            match &path.sub_attr {
                Some(sub_attr) => schema::find_sub_attr(attr, sub_attr),
                None => Some(attr),
            }
        }
    }
}

/// Finds the attribute a path names in a resource: core attributes at the top level, and
/// extension attributes inside the object under the extension URN.
fn resource_attribute<'v>(
    kind: ResourceKind,
    path: &AttrPath,
    resource: &'v Value,
) -> Option<&'v Value> {
    let base = match &path.urn {
        Some(urn) if !schema::core_schema(kind).id.eq_ignore_ascii_case(urn) => {
            get_ignore_case(resource, urn)?
        }
        Some(_) => resource,
        // An extension attribute named without its URN, such as `manager.value`.
        None => match schema::extension_defining(kind, &path.name) {
            Some(extension) => get_ignore_case(resource, extension.id)?,
            None => resource,
        },
    };
    get_ignore_case(base, &path.name)
}

/// Finds the attribute `name` of an element. A simple element, such as a string in an array of
/// strings, is its own `value`.
fn element_attribute<'v>(element: &'v Value, name: &str) -> Option<&'v Value> {
    match element {
        Value::Object(_) => get_ignore_case(element, name),
        _ if name.eq_ignore_ascii_case("value") => Some(element),
        _ => None,
    }
}

/// Looks a key up in a JSON object, preferring an exact match, then ignoring ASCII case.
pub fn get_ignore_case<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

fn flatten(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

/// `pr` (RFC 7644 section 3.4.2.2): present and not null, "", [] or {}.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(members) => !members.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Compares one attribute value with the comparison value by the attribute's type, or by the
/// JSON type of the value when the attribute is not in the schema.
fn compare_leaf(def: Option<&AttrDef>, op: CompareOp, actual: &Value, expected: &Value) -> bool {
    let Some(ty) = def.map(|def| def.ty).or_else(|| json_type(actual)) else {
        return false;
    };
    let case_exact = def.is_some_and(|def| def.case_exact);

    match ty {
        AttrType::String | AttrType::Reference => compare_strings(op, actual, expected, case_exact),
        AttrType::Binary => {
            matches!(op, CompareOp::Eq | CompareOp::Ne)
                && compare_strings(op, actual, expected, true)
        }
        AttrType::Boolean => compare_booleans(op, actual, expected),
        AttrType::Integer | AttrType::Decimal => compare_numbers(op, actual, expected),
        AttrType::DateTime => compare_date_times(op, actual, expected),
        AttrType::Complex => false,
    }
}

fn json_type(value: &Value) -> Option<AttrType> {
    match value {
        Value::String(_) => Some(AttrType::String),
        Value::Bool(_) => Some(AttrType::Boolean),
        Value::Number(_) => Some(AttrType::Decimal),
        _ => None,
    }
}

fn compare_strings(op: CompareOp, actual: &Value, expected: &Value, case_exact: bool) -> bool {
    let (Value::String(actual), Value::String(expected)) = (actual, expected) else {
        return false;
    };
    // Identifiers such as member values are ASCII, and large groups compare many of them, so
    // equality on ASCII text avoids the lowercase copies.
    let is_equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
    if is_equality && !case_exact && actual.is_ascii() && expected.is_ascii() {
        return actual.eq_ignore_ascii_case(expected) == (op == CompareOp::Eq);
    }

    let (actual, expected): (Cow<str>, Cow<str>) = if case_exact {
        (actual.into(), expected.into())
    } else {
        (actual.to_lowercase().into(), expected.to_lowercase().into())
    };

    match op {
        CompareOp::Co => actual.contains(expected.as_ref()),
        CompareOp::Sw => actual.starts_with(expected.as_ref()),
        CompareOp::Ew => actual.ends_with(expected.as_ref()),
        _ => ordering_matches(op, actual.cmp(&expected)),
    }
}

fn compare_booleans(op: CompareOp, actual: &Value, expected: &Value) -> bool {
    let (Value::Bool(actual), Value::Bool(expected)) = (actual, expected) else {
        return false;
    };
    match op {
        CompareOp::Eq => actual == expected,
        CompareOp::Ne => actual != expected,
        _ => false,
    }
}

fn compare_numbers(op: CompareOp, actual: &Value, expected: &Value) -> bool {
    let (Value::Number(actual), Value::Number(expected)) = (actual, expected) else {
        return false;
    };
    order_numbers(actual, expected).is_some_and(|ordering| ordering_matches(op, ordering))
}

/// Orders two JSON numbers exactly when both are integers, else as f64.
fn order_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// dateTime values (RFC 7643 section 2.3.5) compare as instants, so `Z` and `+00:00` or
/// different fractions of a second are equal. Substring operators compare the text.
fn compare_date_times(op: CompareOp, actual: &Value, expected: &Value) -> bool {
    if op.is_substring() {
        return compare_strings(op, actual, expected, true);
    }
    let (Value::String(actual_text), Value::String(expected_text)) = (actual, expected) else {
        return false;
    };

    match (parse_date_time(actual_text), parse_date_time(expected_text)) {
        (Some(actual), Some(expected)) => ordering_matches(op, actual.cmp(&expected)),
        _ if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            compare_strings(op, actual, expected, true)
        }
        _ => false,
    }
}

fn parse_date_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn ordering_matches(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn validate_in(filter: &Filter, scope: Scope) -> Result<(), FilterError> {
    match filter {
        Filter::Present(_) => Ok(()),
        Filter::Compare { path, op, value } => {
            validate_compare(definition(scope, path), path, *op, value)
        }
        Filter::ValuePath { path, filter } => {
            validate_in(filter, Scope::Element(definition(scope, path)))
        }
        Filter::And(terms) | Filter::Or(terms) => terms.iter().try_for_each(|term| validate_in(term, scope)),
        Filter::Not(inner) => validate_in(inner, scope),
    }
}

fn validate_compare(
    def: Option<&AttrDef>,
    path: &AttrPath,
    op: CompareOp,
    value: &Value,
) -> Result<(), FilterError> {
    let ty = def.map(|def| def.ty);
    let message = if op.is_ordering() && matches!(ty, Some(AttrType::Boolean | AttrType::Binary)) {
        format!(
            "operator \"{op}\" cannot order the {} attribute \"{path}\"",
            ty.map_or("", AttrType::as_str)
        )
    } else if op.is_ordering() && matches!(value, Value::Bool(_) | Value::Null) {
        format!("operator \"{op}\" on \"{path}\" needs a string, number or dateTime value, found {value}")
    } else if op.is_substring() && !value.is_string() {
        format!("operator \"{op}\" on \"{path}\" needs a string value, found {value}")
    } else if ty == Some(AttrType::DateTime) && !value.is_null() && value.as_str().and_then(parse_date_time).is_none() {
        format!("\"{path}\" is a dateTime attribute, so compare it with an RFC 3339 date-time such as \"2026-01-31T12:00:00Z\", not {value}")
    } else {
        return Ok(());
    };
    Err(FilterError {
        position: 0,
        message,
    })
}

/// Returns the value a resource sorts by, or None when it has none.
fn sort_key<'v>(kind: ResourceKind, path: &AttrPath, resource: &'v Value) -> Option<&'v Value> {
    let attribute = resource_attribute(kind, path, resource)?;
    let chosen = match attribute {
        Value::Array(items) => items
            .iter()
            .find(|item| is_primary(item))
            .or(items.first())?,
        other => other,
    };

    let key = match &path.sub_attr {
        Some(sub_attr) => get_ignore_case(chosen, sub_attr)?,
        None if chosen.is_object() => get_ignore_case(chosen, "value")?,
        None => chosen,
    };
    (!key.is_null()).then_some(key)
}

fn is_primary(element: &Value) -> bool {
    get_ignore_case(element, "primary") == Some(&Value::Bool(true))
}

/// Orders sort keys: booleans, then numbers, then strings, then anything else. The order must
/// stay total, because the standard library's sort may panic on an inconsistent order.
fn order_sort_values(def: Option<&AttrDef>, a: &Value, b: &Value) -> Ordering {
    let rank = |value: &Value| match value {
        Value::Bool(_) => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        _ => 3,
    };

    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => {
            let as_float = |number: &Number| number.as_f64().unwrap_or(f64::NAN);
            as_float(a).total_cmp(&as_float(b))
        }
        (Value::String(a), Value::String(b)) => order_sort_strings(def, a, b),
        _ => Ordering::Equal,
    })
}

fn order_sort_strings(def: Option<&AttrDef>, a: &str, b: &str) -> Ordering {
    if def.is_some_and(|def| def.ty == AttrType::DateTime) {
        // Valid instants first, in time order, then unparsable text.
        return match (parse_date_time(a), parse_date_time(b)) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        };
    }
    if def.is_some_and(|def| def.case_exact) {
        a.cmp(b)
    } else {
        a.to_lowercase().cmp(&b.to_lowercase())
    }
}

#[cfg(test)]
mod tests;
