//! Projection of a response by `attributes` and `excludedAttributes` (RFC 7644 section 3.9) and
//! each attribute's `returned` characteristic (RFC 7643 section 7).

use serde_json::{Map, Value};

use super::normalize::{find_extension, has_urn_prefix};
use crate::scim::error::ScimError;
use crate::scim::schema::{self, AttrDef, ResourceKind, Returned, SchemaDef};

/// The `attributes` and `excludedAttributes` query parameters (RFC 7644 section 3.9).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    attributes: Vec<Selector>,
    excluded: Vec<Selector>,
}

/// One attribute path of a projection, lower-cased: `[urn ":"] name ["." sub]`.
#[derive(Debug, Clone, PartialEq)]
struct Selector {
    urn: Option<String>,
    name: String,
    sub: Option<String>,
}

impl Projection {
    /// Parses the two comma-separated parameters. When both are given, `attributes` wins, as
    /// `excludedAttributes` only narrows the default set.
    pub fn parse(
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: parse_selectors(attributes, "attributes")?,
            excluded: parse_selectors(excluded_attributes, "excludedAttributes")?,
        })
    }

    fn select(
        &self,
        kind: ResourceKind,
        container: Option<&str>,
        name: &str,
        def: Option<&AttrDef>,
        value: &Value,
    ) -> Option<Value> {
        let returned = def.map_or(Returned::Default, |def| def.returned);
        match returned {
            Returned::Never => return None,
            Returned::Always => return Some(value.clone()),
            Returned::Default | Returned::Request => {}
        }
        if !self.attributes.is_empty() {
            return pick(&self.attributes, kind, container, name, value, true);
        }
        if returned == Returned::Request {
            return None;
        }
        if self
            .excluded
            .iter()
            .any(|s| s.sub.is_none() && s.targets(kind, container, name))
        {
            return None;
        }
        let excluded_subs = pick(&self.excluded, kind, container, name, value, false);
        Some(excluded_subs.unwrap_or_else(|| value.clone()))
    }
}

/// With `keep`, returns the part of `value` that `selectors` name (the whole value or the named
/// sub-attributes), or `None`. Without `keep`, returns `value` minus the named sub-attributes,
/// or `None` when no selector names a sub-attribute of it.
fn pick(
    selectors: &[Selector],
    kind: ResourceKind,
    container: Option<&str>,
    name: &str,
    value: &Value,
    keep: bool,
) -> Option<Value> {
    let named: Vec<&Selector> = selectors
        .iter()
        .filter(|selector| selector.targets(kind, container, name))
        .collect();
    if named.is_empty() {
        return None;
    }
    if keep && named.iter().any(|selector| selector.sub.is_none()) {
        return Some(value.clone());
    }
    let subs: Vec<&str> = named
        .iter()
        .filter_map(|selector| selector.sub.as_deref())
        .collect();
    if subs.is_empty() {
        return None;
    }
    filter_sub_attributes(value, &subs, keep)
}

fn filter_sub_attributes(value: &Value, subs: &[&str], keep: bool) -> Option<Value> {
    match value {
        Value::Object(map) => filter_object(map, subs, keep),
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(map) => filter_object(map, subs, keep),
                    other => (!keep).then(|| other.clone()),
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => (!keep).then(|| other.clone()),
    }
}

fn filter_object(map: &Map<String, Value>, subs: &[&str], keep: bool) -> Option<Value> {
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(key, _)| subs.iter().any(|sub| sub.eq_ignore_ascii_case(key)) == keep)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

impl Selector {
    /// Returns whether this selector names attribute `name` of `container` (`None` for the core schema).
    fn targets(&self, kind: ResourceKind, container: Option<&str>, name: &str) -> bool {
        if !self.name.eq_ignore_ascii_case(name) {
            return false;
        }
        match (&self.urn, container) {
            (None, None) => true,
            (Some(urn), None) => urn.eq_ignore_ascii_case(schema::core_schema(kind).id),
            (Some(urn), Some(container)) => urn.eq_ignore_ascii_case(container),
            (None, Some(_)) => false,
        }
    }

    /// Returns whether this selector names a whole extension object, as in
    /// `attributes=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    fn targets_container(&self, container: &str) -> bool {
        let Some(urn) = &self.urn else {
            return false;
        };
        self.sub.is_none() && format!("{urn}:{}", self.name).eq_ignore_ascii_case(container)
    }

    fn names_members(&self) -> bool {
        let core = self
            .urn
            .as_deref()
            .is_none_or(|urn| urn.eq_ignore_ascii_case(schema::GROUP_SCHEMA));
        core && self.name == "members"
    }
}

fn parse_selectors(text: Option<&str>, parameter: &str) -> Result<Vec<Selector>, ScimError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| parse_selector(part, parameter))
        .collect()
}

/// Parses `[URN ":"] attrName ["." subAttr]`; the URN ends at the last colon.
fn parse_selector(text: &str, parameter: &str) -> Result<Selector, ScimError> {
    let lower = text.to_ascii_lowercase();
    let (urn, path) = match lower.rfind(':') {
        Some(index) => (Some(&lower[..index]), &lower[index + 1..]),
        None => (None, lower.as_str()),
    };
    let (name, sub) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    };

    let urn_valid = urn.is_none_or(|urn| {
        has_urn_prefix(urn)
            && urn
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":.-_".contains(c))
    });
    if !urn_valid || !is_attribute_name(name) || !sub.is_none_or(is_attribute_name) {
        return Err(ScimError::invalid_value(format!(
            "invalid attribute path '{text}' in '{parameter}'; expected [URN:]name[.subAttribute]"
        )));
    }
    Ok(Selector {
        urn: urn.map(str::to_string),
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

/// ATTRNAME of RFC 7644 section 3.10, also allowing a leading `$` for `$ref`.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$');
    first_valid && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Applies `attributes` and `excludedAttributes` to a resource, following each attribute's
/// `returned` (RFC 7643 section 7): `schemas` and `id` are always returned, `never` attributes
/// never, `request` attributes only when named in `attributes`. `meta` is `default` like any
/// other attribute (RFC 7643 section 3.1), so `attributes=userName` leaves it out. Extension
/// objects left empty are dropped.
pub fn project(kind: ResourceKind, resource: &Value, projection: &Projection) -> Value {
    let Some(map) = resource.as_object() else {
        return resource.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let always = ["schemas", "id"].contains(&key.as_str());
        let projected = if always {
            Some(value.clone())
        } else if is_container(kind, key, value) {
            project_container(kind, key, value, projection)
        } else {
            let def = schema::find_attr(kind, None, key);
            projection.select(kind, None, key, def, value)
        };
        if let Some(projected) = projected {
            out.insert(key.clone(), projected);
        }
    }
    Value::Object(out)
}

fn is_container(kind: ResourceKind, key: &str, value: &Value) -> bool {
    find_extension(kind, key).is_some() || (has_urn_prefix(key) && value.is_object())
}

fn project_container(
    kind: ResourceKind,
    key: &str,
    value: &Value,
    projection: &Projection,
) -> Option<Value> {
    let entries = value.as_object()?;
    let extension = find_extension(kind, key);
    let requested = !projection.attributes.is_empty();
    let whole = |selectors: &[Selector]| selectors.iter().any(|s| s.targets_container(key));
    if requested && whole(&projection.attributes) {
        return Some(drop_never(kind, extension, entries));
    }
    if !requested && whole(&projection.excluded) {
        return None;
    }

    let mut out = Map::new();
    for (name, value) in entries {
        let def = extension.and_then(|extension| schema::find_attr(kind, Some(extension.id), name));
        if let Some(projected) = projection.select(kind, Some(key), name, def, value) {
            out.insert(name.clone(), projected);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn drop_never(
    kind: ResourceKind,
    extension: Option<&SchemaDef>,
    entries: &Map<String, Value>,
) -> Value {
    let kept = entries.iter().filter(|(name, _)| {
        let def = extension.and_then(|extension| schema::find_attr(kind, Some(extension.id), name));
        def.is_none_or(|def| def.returned != Returned::Never)
    });
    Value::Object(
        kept.map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    )
}

/// Returns whether a Group response under `projection` includes `members`, so the store can skip
/// loading them.
pub fn wants_members(projection: &Projection) -> bool {
    if !projection.attributes.is_empty() {
        return projection.attributes.iter().any(Selector::names_members);
    }
    !projection
        .excluded
        .iter()
        .any(|selector| selector.names_members() && selector.sub.is_none())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::resource::fixtures::ENTERPRISE;

    fn sample_user() -> Value {
        json!({
            "schemas": [schema::USER_SCHEMA, ENTERPRISE],
            "id": "u1",
            "userName": "ada",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "a@example.org", "type": "work"}],
            "password": "should never be returned",
            ENTERPRISE: {"department": "Research", "employeeNumber": "7"},
            "meta": {"resourceType": "User"},
        })
    }

    fn projected(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let projection = Projection::parse(attributes, excluded).unwrap();
        project(ResourceKind::User, &sample_user(), &projection)
    }

    #[test]
    fn project_without_parameters_drops_never() {
        let mut expected = sample_user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(projected(None, None), expected);
    }

    #[test]
    fn project_attributes_keeps_named_and_always() {
        let out = projected(Some("UserName,name.givenName,emails.value"), None);
        let expected = json!({
            "schemas": [schema::USER_SCHEMA, ENTERPRISE],
            "id": "u1",
            "userName": "ada",
            "name": {"givenName": "Ada"},
            "emails": [{"value": "a@example.org"}],
        });
        assert_eq!(out, expected);
    }

    #[test]
    fn project_meta_is_returned_by_default() {
        assert_eq!(projected(Some("userName"), None).get("meta"), None);
        assert_eq!(projected(None, Some("meta")).get("meta"), None);
        assert_eq!(
            projected(Some("meta.resourceType"), None)["meta"],
            json!({"resourceType": "User"})
        );
        assert_eq!(
            projected(Some("userName,meta"), None)["meta"],
            json!({"resourceType": "User"})
        );
    }

    #[test]
    fn project_urn_qualified_attribute() {
        let out = projected(Some(&format!("{ENTERPRISE}:department")), None);
        assert_eq!(out[ENTERPRISE], json!({"department": "Research"}));
        assert!(out.get("userName").is_none());
    }

    #[test]
    fn project_whole_extension() {
        let out = projected(Some(ENTERPRISE), None);
        assert_eq!(
            out[ENTERPRISE],
            json!({"department": "Research", "employeeNumber": "7"})
        );
    }

    #[test]
    fn project_excluded_drops_empty_extension() {
        let excluded =
            format!("{ENTERPRISE}:department,{ENTERPRISE}:employeeNumber,name.familyName");
        let out = projected(None, Some(&excluded));
        assert!(out.get(ENTERPRISE).is_none());
        assert_eq!(out["name"], json!({"givenName": "Ada"}));
        assert_eq!(out["userName"], "ada");
    }

    #[test]
    fn project_never_returns_password() {
        let out = projected(Some("password,id"), None);
        assert!(out.get("password").is_none());
        assert_eq!(out["id"], "u1");
    }

    #[test]
    fn project_excluded_members() {
        let group = json!({
            "schemas": [schema::GROUP_SCHEMA],
            "id": "g1",
            "displayName": "Ops",
            "members": [{"value": "u1"}],
        });
        let projection = Projection::parse(None, Some("members")).unwrap();
        let out = project(ResourceKind::Group, &group, &projection);
        assert!(out.get("members").is_none());
        assert_eq!(out["displayName"], "Ops");
    }

    #[test]
    fn projection_rejects_invalid_paths() {
        for text in [
            "name..givenName",
            "1abc",
            "name.",
            "urn:x:",
            "na me",
            "foo:bar",
        ] {
            let error = Projection::parse(Some(text), None).unwrap_err();
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "path {text}");
        }
    }

    #[test]
    fn wants_members_follows_projection() {
        let cases = [
            (None, None, true),
            (Some("displayName"), None, false),
            (Some("displayName,Members"), None, true),
            (Some("members.value"), None, true),
            (
                Some("urn:ietf:params:scim:schemas:core:2.0:Group:members"),
                None,
                true,
            ),
            (None, Some("members"), false),
            (None, Some("displayName"), true),
            (None, Some("members.display"), true),
        ];
        for (attributes, excluded, expected) in cases {
            let projection = Projection::parse(attributes, excluded).unwrap();
            assert_eq!(
                wants_members(&projection),
                expected,
                "{attributes:?} {excluded:?}"
            );
        }
    }
}
