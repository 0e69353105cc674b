//! Fixtures shared by the filter tests: AST constructors, a sample user and proptest
//! strategies for random filters.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{AttrPath, CompareOp, Filter};

pub(super) const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(super) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub(super) fn attr(name: &str) -> AttrPath {
    AttrPath {
        urn: None,
        name: name.to_string(),
        sub_attr: None,
    }
}

pub(super) fn sub(name: &str, sub_attr: &str) -> AttrPath {
    AttrPath {
        urn: None,
        name: name.to_string(),
        sub_attr: Some(sub_attr.to_string()),
    }
}

pub(super) fn qualified(urn: &str, name: &str, sub_attr: Option<&str>) -> AttrPath {
    AttrPath {
        urn: Some(urn.to_string()),
        name: name.to_string(),
        sub_attr: sub_attr.map(str::to_string),
    }
}

pub(super) fn compare(path: AttrPath, op: CompareOp, value: Value) -> Filter {
    Filter::Compare { path, op, value }
}

pub(super) fn eq(name: &str, value: &str) -> Filter {
    compare(attr(name), CompareOp::Eq, json!(value))
}

pub(super) fn pr(name: &str) -> Filter {
    Filter::Present(attr(name))
}

/// `left and right`, extending `left` when it is a chain, as the parser does for
/// `a and b and c`.
pub(super) fn and(left: Filter, right: Filter) -> Filter {
    match left {
        Filter::And(mut terms) => {
            terms.push(right);
            Filter::And(terms)
        }
        left => Filter::And(vec![left, right]),
    }
}

/// `left or right`, extending `left` when it is a chain.
pub(super) fn or(left: Filter, right: Filter) -> Filter {
    match left {
        Filter::Or(mut terms) => {
            terms.push(right);
            Filter::Or(terms)
        }
        left => Filter::Or(vec![left, right]),
    }
}

pub(super) fn not(inner: Filter) -> Filter {
    Filter::Not(Box::new(inner))
}

pub(super) fn value_path(name: &str, filter: Filter) -> Filter {
    Filter::ValuePath {
        path: attr(name),
        filter: Box::new(filter),
    }
}

pub(super) fn sample_user() -> Value {
    json!({
        "schemas": [CORE_USER, ENTERPRISE],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "BJensen@example.com",
        "name": { "familyName": "O'Malley", "givenName": "Barbara" },
        "nickName": "",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            { "value": "bjensen@example.com", "type": "work", "primary": true },
            { "value": "babs@jensen.org", "type": "home" }
        ],
        "ims": [{ "value": "bjensen@foo.com", "type": "xmpp" }],
        "phoneNumbers": [],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"a330bc54f0671c9\""
        },
        ENTERPRISE: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "manager": { "value": "26118915", "displayName": "John Smith" }
        },
        "level": 7,
        "ratio": 0.5
    })
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
        Just("$ref".to_string()),
        Just("not".to_string()),
        Just("and".to_string()),
        Just("pr".to_string()),
    ]
}

fn path_strategy() -> impl Strategy<Value = AttrPath> {
    let urn = proptest::option::of(prop_oneof![Just(CORE_USER), Just(ENTERPRISE)]);
    (urn, name_strategy(), proptest::option::of(name_strategy())).prop_map(
        |(urn, name, sub_attr)| AttrPath {
            urn: urn.map(str::to_string),
            name,
            sub_attr,
        },
    )
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let text = proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter);
    prop_oneof![
        text.prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |number| number.is_finite())
            .prop_map(Value::from),
    ]
}

fn op_strategy() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(CompareOp::ALL.to_vec())
}

fn leaf_strategy() -> impl Strategy<Value = Filter> {
    prop_oneof![
        path_strategy().prop_map(Filter::Present),
        (path_strategy(), op_strategy(), value_strategy())
            .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
    ]
}

fn combine(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(left, right)| and(left, right)),
            (inner.clone(), inner.clone()).prop_map(|(left, right)| or(left, right)),
            inner.prop_map(not),
        ]
    })
    .boxed()
}

pub(super) fn filter_strategy() -> BoxedStrategy<Filter> {
    let value_path =
        (name_strategy(), combine(leaf_strategy().boxed())).prop_map(|(name, filter)| {
            Filter::ValuePath {
                path: attr(&name),
                filter: Box::new(filter),
            }
        });
    combine(prop_oneof![leaf_strategy(), value_path].boxed())
}
