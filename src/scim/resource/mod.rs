//! Incoming resource bodies (normalization, validation, PUT replacement) and outgoing projection
//! (RFC 7643 sections 2 and 7, RFC 7644 sections 3.3, 3.5.1 and 3.9).
//!
//! A stored document contains `schemas`, `id`, `externalId`, core attributes under their canonical
//! names, each extension's attributes in an object under the extension URN, attributes the
//! server does not model exactly as sent, and `meta`. Group members are not part of it.
//!
//! This file contains the entry points and the checks on a whole document. `normalize` sorts each
//! key of a body into the document, `coerce` checks and converts values to their attribute's
//! type, and `projection` applies `attributes` and `excludedAttributes` to a response.

mod coerce;
#[cfg(test)]
mod fixtures;
mod normalize;
mod projection;

use serde_json::{Map, Value};

use self::normalize::{is_members, normalize_document};
use super::error::ScimError;
use super::schema::{self, AttrDef, Mutability, ResourceKind};

pub use coerce::{is_primary, normalize_attribute, normalize_single};
pub use normalize::{find_extension, has_urn_prefix, is_unassigned, member_ids, split_qualified};
pub use projection::{project, wants_members, Projection};

/// A normalized create or replace body.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The document to store, without Group members.
    pub doc: Map<String, Value>,
    /// Group member ids in request order without duplicates; `None` when the body has no
    /// `members` key.
    pub members: Option<Vec<String>>,
}

/// Normalizes and validates a POST body (RFC 7644 section 3.3). The document has no `id` and
/// no `meta`, because the store assigns both.
pub fn parse_create(kind: ResourceKind, body: Value) -> Result<Incoming, ScimError> {
    let body = into_object(body)?;
    let incoming = normalize_document(kind, body)?;
    check_required(kind, &incoming.doc)?;
    Ok(incoming)
}

/// Normalizes and validates a PUT body (RFC 7644 section 3.5.1). The result replaces the stored
/// document: attributes missing from the body are cleared, readOnly attributes in the body are
/// ignored, and `id` and `meta` are carried over from `existing`.
pub fn parse_replace(
    kind: ResourceKind,
    existing: &Map<String, Value>,
    body: Value,
) -> Result<Incoming, ScimError> {
    let body = into_object(body)?;
    let mut incoming = normalize_document(kind, body)?;
    check_required(kind, &incoming.doc)?;
    check_immutable(kind, existing, &incoming.doc)?;

    let id = existing.get("id").cloned();
    let meta = existing.get("meta").cloned();
    incoming.doc = assemble(incoming.doc, id, meta);
    Ok(incoming)
}

/// Normalizes a document after PATCH operations changed it, and checks types, required
/// attributes and immutable attributes against `original`. `schemas` is rebuilt from the
/// extension objects that hold data; `id` and `meta` are kept.
pub fn revalidate(
    kind: ResourceKind,
    original: &Map<String, Value>,
    doc: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    let id = doc.remove("id");
    let meta = doc.remove("meta");
    let body = std::mem::take(doc);
    let incoming = normalize_document(kind, body)?;
    check_required(kind, &incoming.doc)?;
    check_immutable(kind, original, &incoming.doc)?;

    *doc = assemble(incoming.doc, id, meta);
    Ok(())
}

fn into_object(body: Value) -> Result<Map<String, Value>, ScimError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        )),
    }
}

/// Rebuilds a document with `id` after `schemas` and `meta` last.
fn assemble(doc: Map<String, Value>, id: Option<Value>, meta: Option<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut rest = doc;
    if let Some(schemas) = rest.remove("schemas") {
        out.insert("schemas".to_string(), schemas);
    }
    if let Some(id) = id {
        out.insert("id".to_string(), id);
    }
    out.extend(rest);
    if let Some(meta) = meta {
        out.insert("meta".to_string(), meta);
    }
    out
}

/// Checks the attributes a resource type requires: `userName` for User and `displayName` for
/// Group, plus any writable attribute the schema table marks required. A value of only
/// whitespace counts as missing, because no IdP or application can use a blank name.
fn check_required(kind: ResourceKind, doc: &Map<String, Value>) -> Result<(), ScimError> {
    let core = schema::core_schema(kind);
    let required = core.attributes.iter().filter(|def| {
        def.required && def.mutability != Mutability::ReadOnly && !is_members(kind, def)
    });
    for def in required {
        let blank = |value: &Value| is_unassigned(value) || value.as_str().is_some_and(|text| text.trim().is_empty());
        if doc.get(def.name).is_none_or(blank) {
            return Err(ScimError::invalid_value(format!(
                "attribute '{}' is required and must not be empty or blank",
                def.name
            )));
        }
    }
    Ok(())
}

/// RFC 7644 section 3.5.1: an immutable attribute that has a value may not change.
fn check_immutable(
    kind: ResourceKind,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Result<(), ScimError> {
    let core = schema::core_schema(kind).attributes.iter();
    for def in core.chain(schema::COMMON_ATTRIBUTES.iter()) {
        compare_immutable(def, before.get(def.name), after.get(def.name), def.name)?;
    }
    for extension in schema::extensions(kind) {
        let old = before.get(extension.id);
        let new = after.get(extension.id);
        for def in extension.attributes {
            let label = format!("{}:{}", extension.id, def.name);
            let old_value = old.and_then(|container| container.get(def.name));
            let new_value = new.and_then(|container| container.get(def.name));
            compare_immutable(def, old_value, new_value, &label)?;
        }
    }
    Ok(())
}

fn compare_immutable(
    def: &AttrDef,
    before: Option<&Value>,
    after: Option<&Value>,
    label: &str,
) -> Result<(), ScimError> {
    if def.mutability != Mutability::Immutable {
        return Ok(());
    }
    match before {
        Some(old) if !is_unassigned(old) && after != Some(old) => Err(ScimError::mutability(
            format!("attribute '{label}' is immutable and cannot change once set"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::{assert_invalid_value, create_user, ENTERPRISE};
    use super::*;
    use crate::scim::error::ScimType;

    #[test]
    fn create_requires_user_name() {
        assert_invalid_value(create_user(json!({"displayName": "Ada"})), "userName");
        assert_invalid_value(create_user(json!({"userName": ""})), "userName");
    }

    #[test]
    fn create_requires_group_display_name() {
        let result = parse_create(ResourceKind::Group, json!({"members": []}));
        assert_invalid_value(result.map(|incoming| incoming.doc), "displayName");
    }

    #[test]
    fn create_rejects_blank_names() {
        assert_invalid_value(create_user(json!({"userName": " \t "})), "userName");
        let result = parse_create(ResourceKind::Group, json!({"displayName": "   "}));
        assert_invalid_value(result.map(|incoming| incoming.doc), "displayName");
    }

    #[test]
    fn create_rejects_non_object_body() {
        let error = parse_create(ResourceKind::User, json!([1])).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn replace_clears_omitted_and_keeps_id_and_meta() {
        let existing = json!({
            "schemas": [schema::USER_SCHEMA, ENTERPRISE],
            "id": "u1",
            "userName": "ada",
            "title": "Engineer",
            ENTERPRISE: {"department": "Research"},
            "meta": {"resourceType": "User", "version": "W/\"1\""},
        });
        let existing = existing.as_object().unwrap();
        let body = json!({"id": "other", "userName": "ada2", "meta": {"version": "x"}});
        let incoming = parse_replace(ResourceKind::User, existing, body).unwrap();
        let expected = json!({
            "schemas": [schema::USER_SCHEMA],
            "id": "u1",
            "userName": "ada2",
            "meta": {"resourceType": "User", "version": "W/\"1\""},
        });
        assert_eq!(Value::Object(incoming.doc), expected);
    }

    #[test]
    fn okta_put_group_replaces_members() {
        let existing = json!({"schemas": [schema::GROUP_SCHEMA], "id": "g1", "displayName": "Ops"});
        let body = json!({
            "schemas": [schema::GROUP_SCHEMA],
            "id": "g1",
            "displayName": "Berth Schedulers",
            "members": [{"value": "u2", "display": null}, {"value": "u3", "display": null}],
        });
        let incoming =
            parse_replace(ResourceKind::Group, existing.as_object().unwrap(), body).unwrap();
        assert_eq!(
            incoming.members,
            Some(vec!["u2".to_string(), "u3".to_string()])
        );
        assert_eq!(incoming.doc["displayName"], "Berth Schedulers");
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::{json, Value};

        fn key() -> impl Strategy<Value = String> {
            let known = prop::sample::select(vec![
                "userName", "USERNAME", "name", "givenName", "emails", "value", "primary", "type",
                "active", "members", "displayName", "groups", "password", "meta", "id", "schemas",
                "manager", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "urn:example:custom:1.0:User", "x509Certificates", "addresses",
            ])
            .prop_map(str::to_string);
            prop_oneof![known, "[a-zA-Z:.$]{0,10}"]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<f64>().prop_map(|number| json!(number)),
                any::<i64>().prop_map(Value::from),
                "[a-zA-Z0-9 @.\\-]{0,12}".prop_map(Value::String),
                prop::sample::select(vec!["True", "false", "", "2026-01-01T00:00:00Z"]).prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((key(), inner), 0..5)
                        .prop_map(|entries| Value::Object(entries.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn create_and_replace_never_panic(body in json_value(), existing in json_value()) {
                for kind in [ResourceKind::User, ResourceKind::Group] {
                    let _ = parse_create(kind, body.clone());
                    let existing = existing.as_object().cloned().unwrap_or_default();
                    let _ = parse_replace(kind, &existing, body.clone());
                }
            }

            #[test]
            fn projection_never_panics(attributes in "[a-zA-Z:.,$ ]{0,40}", excluded in "[a-zA-Z:.,$ ]{0,40}", resource in json_value()) {
                if let Ok(projection) = Projection::parse(Some(&attributes), Some(&excluded)) {
                    let _ = project(ResourceKind::User, &resource, &projection);
                    let _ = project(ResourceKind::Group, &resource, &projection);
                }
            }
        }
    }
}
