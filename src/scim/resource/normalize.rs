//! Normalization of a create, replace or patched body into a stored document: each top-level
//! key is classified as a core attribute, an extension object or attribute, a foreign URN or an
//! unknown name, and stored under its canonical name. Group member ids are collected separately.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::coerce::{json_type, normalize_attribute};
use super::Incoming;
use crate::scim::error::ScimError;
use crate::scim::schema::{self, AttrDef, Mutability, ResourceKind, SchemaDef};

/// The classification of a top-level key of a body.
enum KeyClass {
    /// `schemas`, `id` and `meta`, which the server sets itself.
    Managed,
    Attribute(&'static AttrDef),
    Extension(&'static SchemaDef),
    ExtensionAttribute(&'static SchemaDef, &'static AttrDef),
    /// A URN-qualified name in a known extension that the extension does not define.
    ExtensionUnknown(&'static SchemaDef, String),
    /// A URN that is not a schema of this resource type.
    Foreign,
    Unknown,
}

fn classify_key(kind: ResourceKind, key: &str) -> KeyClass {
    let managed = ["schemas", "id", "meta"];
    if managed.iter().any(|name| key.eq_ignore_ascii_case(name)) {
        return KeyClass::Managed;
    }
    if let Some(extension) = find_extension(kind, key) {
        return KeyClass::Extension(extension);
    }
    if let Some((schema, name)) = split_qualified(kind, key) {
        return classify_qualified(kind, schema, name);
    }
    if let Some(def) = schema::find_attr(kind, None, key) {
        return KeyClass::Attribute(def);
    }
    if let Some(extension) = schema::extension_defining(kind, key) {
        return classify_qualified(kind, extension, key);
    }
    if has_urn_prefix(key) {
        return KeyClass::Foreign;
    }
    KeyClass::Unknown
}

fn classify_qualified(kind: ResourceKind, schema: &'static SchemaDef, name: &str) -> KeyClass {
    let is_core = std::ptr::eq(schema, schema::core_schema(kind));
    match schema::find_attr(kind, Some(schema.id), name) {
        Some(def) if is_core => KeyClass::Attribute(def),
        Some(def) => KeyClass::ExtensionAttribute(schema, def),
        None if is_core => KeyClass::Unknown,
        None => KeyClass::ExtensionUnknown(schema, name.to_string()),
    }
}

/// Finds an extension of `kind` by URN, ignoring case.
pub fn find_extension(kind: ResourceKind, urn: &str) -> Option<&'static SchemaDef> {
    schema::extensions(kind)
        .iter()
        .copied()
        .find(|extension| extension.id.eq_ignore_ascii_case(urn))
}

/// Splits `URN:name` where URN is the core schema or an extension of `kind`.
pub fn split_qualified(kind: ResourceKind, key: &str) -> Option<(&'static SchemaDef, &str)> {
    let core = schema::core_schema(kind);
    let schemas = std::iter::once(core).chain(schema::extensions(kind).iter().copied());
    for schema in schemas {
        let Some(prefix) = key.get(..schema.id.len()) else {
            continue;
        };
        let rest = &key[schema.id.len()..];
        if prefix.eq_ignore_ascii_case(schema.id) && rest.starts_with(':') && rest.len() > 1 {
            return Some((schema, &rest[1..]));
        }
    }
    None
}

/// Returns whether `key` starts with `urn:` in any case.
pub fn has_urn_prefix(key: &str) -> bool {
    key.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"))
}

/// Returns whether `value` is unassigned in the sense of RFC 7643 section 2.5: null, an empty string,
/// an empty array or an empty object.
pub fn is_unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

pub(super) fn normalize_document(
    kind: ResourceKind,
    body: Map<String, Value>,
) -> Result<Incoming, ScimError> {
    let mut attributes = Map::new();
    let mut containers = Containers::new();
    let mut members = None;

    for (key, value) in body {
        match classify_key(kind, &key) {
            KeyClass::Managed => {}
            KeyClass::Attribute(def) if is_members(kind, def) => {
                members = Some(member_ids(&value)?);
            }
            KeyClass::Attribute(def) => put_attribute(&mut attributes, def, value, def.name)?,
            KeyClass::Extension(extension) => {
                let target = container_entry(&mut containers, extension.id);
                merge_extension(kind, target, extension, value)?;
            }
            KeyClass::ExtensionAttribute(extension, def) => {
                let label = format!("{}:{}", extension.id, def.name);
                let target = container_entry(&mut containers, extension.id);
                put_attribute(target, def, value, &label)?;
            }
            KeyClass::ExtensionUnknown(extension, name) => {
                let target = container_entry(&mut containers, extension.id);
                put_unknown(target, name, value);
            }
            KeyClass::Foreign if value.is_object() => {
                let target = container_entry(&mut containers, &key);
                if let Value::Object(entries) = value {
                    target.extend(entries);
                }
            }
            KeyClass::Foreign | KeyClass::Unknown => put_unknown(&mut attributes, key, value),
        }
    }

    Ok(Incoming {
        doc: build_document(kind, attributes, containers),
        members,
    })
}

/// Extension objects by URN, in the order they first appear.
type Containers = Vec<(String, Map<String, Value>)>;

/// Builds a document: `schemas` first (core URN, then each container with data), then the
/// attributes, then the non-empty containers.
fn build_document(
    kind: ResourceKind,
    attributes: Map<String, Value>,
    containers: Containers,
) -> Map<String, Value> {
    let containers: Vec<(String, Value)> = containers
        .into_iter()
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(urn, entries)| (urn, Value::Object(entries)))
        .collect();

    let mut schemas = vec![Value::from(schema::core_schema(kind).id)];
    schemas.extend(containers.iter().map(|(urn, _)| Value::from(urn.as_str())));

    let mut doc = Map::new();
    doc.insert("schemas".to_string(), Value::Array(schemas));
    doc.extend(attributes);
    doc.extend(containers);
    doc
}

fn container_entry<'a>(containers: &'a mut Containers, urn: &str) -> &'a mut Map<String, Value> {
    let index = match containers.iter().position(|(key, _)| key == urn) {
        Some(index) => index,
        None => {
            containers.push((urn.to_string(), Map::new()));
            containers.len() - 1
        }
    };
    &mut containers[index].1
}

fn merge_extension(
    kind: ResourceKind,
    target: &mut Map<String, Value>,
    extension: &'static SchemaDef,
    value: Value,
) -> Result<(), ScimError> {
    if is_unassigned(&value) {
        return Ok(());
    }
    let Value::Object(entries) = value else {
        return Err(ScimError::invalid_value(format!(
            "invalid value for '{}': expected complex, got {}",
            extension.id,
            json_type(&value)
        )));
    };
    for (name, value) in entries {
        match schema::find_attr(kind, Some(extension.id), &name) {
            Some(def) => {
                let label = format!("{}:{}", extension.id, def.name);
                put_attribute(target, def, value, &label)?;
            }
            None => put_unknown(target, name, value),
        }
    }
    Ok(())
}

/// Stores a normalized attribute value. readOnly attributes are dropped because a server
/// ignores them in a request (RFC 7644 section 3.5.1), and writeOnly ones are never stored.
pub(super) fn put_attribute(
    target: &mut Map<String, Value>,
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<(), ScimError> {
    if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
        return Ok(());
    }
    match normalize_attribute(def, value, label)? {
        Some(value) => target.insert(def.name.to_string(), value),
        None => target.remove(def.name),
    };
    Ok(())
}

pub(super) fn put_unknown(target: &mut Map<String, Value>, name: String, value: Value) {
    if is_unassigned(&value) {
        target.remove(&name);
    } else {
        target.insert(name, value);
    }
}

pub(super) fn is_members(kind: ResourceKind, def: &AttrDef) -> bool {
    kind == ResourceKind::Group && def.name == "members"
}

/// Collects member ids from a `members` value: an array (or a single element) of objects with
/// a non-empty string `value`, or of bare id strings. Duplicates are dropped, null and `""`
/// mean no members.
pub fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::String(text) if text.is_empty() => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for item in items {
        let id = member_id(item)?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn member_id(item: &Value) -> Result<String, ScimError> {
    let id = match item {
        Value::String(text) => Some(text.as_str()),
        Value::Object(map) => map
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("value"))
            .and_then(|(_, value)| value.as_str()),
        _ => None,
    };
    match id {
        // Ids here are lowercase UUIDs and `members.value` is not case-exact (RFC 7643
        // section 8.7.1), so a member given in upper case names the same resource.
        Some(id) if !id.trim().is_empty() => Ok(id.trim().to_ascii_lowercase()),
        _ => Err(ScimError::invalid_value(
            "each element of 'members' must be an object with a non-empty string 'value'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::resource::fixtures::{assert_invalid_value, create_user, ENTERPRISE};
    use crate::scim::resource::parse_create;

    #[test]
    fn create_canonicalizes_attribute_names() {
        let doc = create_user(json!({
            "USERNAME": "ada",
            "Name": {"GIVENNAME": "Ada", "familyname": "Lovelace"},
            "emails": [{"VALUE": "ada@example.org", "Type": "work"}],
        }))
        .unwrap();
        assert_eq!(doc["userName"], "ada");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Ada", "familyName": "Lovelace"})
        );
        assert_eq!(
            doc["emails"],
            json!([{"value": "ada@example.org", "type": "work"}])
        );
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA]));
    }

    #[test]
    fn create_folds_urn_qualified_extension_keys() {
        let doc = create_user(json!({
            "userName": "ada",
            format!("{ENTERPRISE}:department"): "Research",
            ENTERPRISE: {"EmployeeNumber": "7"},
        }))
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Research", "employeeNumber": "7"})
        );
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA, ENTERPRISE]));
    }

    #[test]
    fn create_drops_read_only_and_password() {
        let doc = create_user(json!({
            "userName": "ada",
            "id": "chosen-by-client",
            "meta": {"resourceType": "User"},
            "groups": [{"value": "g1"}],
            "password": "secret",
        }))
        .unwrap();
        for key in ["id", "meta", "groups", "password"] {
            assert!(!doc.contains_key(key), "{key} should be dropped");
        }
    }

    #[test]
    fn entra_group_marker_schema_dropped() {
        let body = json!({
            "schemas": [
                schema::GROUP_SCHEMA,
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
            ],
            "displayName": "Lantern Keepers",
            "externalId": "5b4c",
            "meta": {"resourceType": "Group"},
        });
        let incoming = parse_create(ResourceKind::Group, body).unwrap();
        assert_eq!(incoming.doc["schemas"], json!([schema::GROUP_SCHEMA]));
        assert_eq!(incoming.doc["externalId"], "5b4c");
        assert_eq!(incoming.members, None);
    }

    #[test]
    fn entra_custom_extension_kept() {
        let custom = "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User";
        let doc = create_user(json!({
            "schemas": [schema::USER_SCHEMA, custom],
            "userName": "ada",
            custom: {"badge": "42"},
        }))
        .unwrap();
        assert_eq!(doc[custom], json!({"badge": "42"}));
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA, custom]));
    }

    #[test]
    fn create_drops_empty_and_null() {
        let doc = create_user(json!({
            "userName": "ada",
            "title": "",
            "nickName": null,
            "name": {"givenName": ""},
            "emails": [],
            ENTERPRISE: {"department": null},
        }))
        .unwrap();
        for key in ["title", "nickName", "name", "emails", ENTERPRISE] {
            assert!(!doc.contains_key(key), "{key} should be unassigned");
        }
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA]));
    }

    #[test]
    fn create_keeps_unknown_attributes() {
        let doc = create_user(json!({"userName": "ada", "CostCode": {"x": [1, 2]}})).unwrap();
        assert_eq!(doc["CostCode"], json!({"x": [1, 2]}));
    }

    #[test]
    fn create_folds_unqualified_extension_attributes() {
        let body = json!({"userName": "ada", "department": "Research", "manager": [{"value": "boss"}]});
        let doc = create_user(body).unwrap();
        let enterprise = schema::ENTERPRISE_USER_SCHEMA;
        assert_eq!(doc[enterprise]["department"], "Research");
        assert_eq!(doc[enterprise]["manager"], json!({"value": "boss"}));
        assert!(doc.get("department").is_none());
        assert!(doc["schemas"].as_array().unwrap().contains(&json!(enterprise)));
    }

    #[test]
    fn create_collects_member_ids() {
        let body = json!({"displayName": "Ops", "members": [
            {"value": "u1", "display": null, "$ref": null},
            {"value": "u2", "display": "Bo"},
            {"value": "u1"},
        ]});
        let incoming = parse_create(ResourceKind::Group, body).unwrap();
        assert_eq!(
            incoming.members,
            Some(vec!["u1".to_string(), "u2".to_string()])
        );
        assert!(!incoming.doc.contains_key("members"));
    }

    #[test]
    fn create_rejects_member_without_value() {
        for members in [
            json!([{"display": "Bo"}]),
            json!([{"value": ""}]),
            json!([{"value": 7}]),
        ] {
            let body = json!({"displayName": "Ops", "members": members});
            let result = parse_create(ResourceKind::Group, body);
            assert_invalid_value(result.map(|incoming| incoming.doc), "members");
        }
    }
}
