//! Incoming resource bodies (normalization, validation, PUT replacement) and outgoing projection
//! (RFC 7643 sections 2 and 7, RFC 7644 sections 3.3, 3.5.1 and 3.9).
//!
//! A stored document contains `schemas`, `id`, `externalId`, core attributes under their canonical
//! names, each extension's attributes in an object under the extension URN, attributes the
//! server does not model exactly as sent, and `meta`. Group members are not part of it.

use std::collections::HashSet;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::ScimError;
use super::schema::{self, AttrDef, AttrType, Mutability, ResourceKind, Returned, SchemaDef};

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

fn normalize_document(kind: ResourceKind, body: Map<String, Value>) -> Result<Incoming, ScimError> {
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
fn put_attribute(
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

fn put_unknown(target: &mut Map<String, Value>, name: String, value: Value) {
    if is_unassigned(&value) {
        target.remove(&name);
    } else {
        target.insert(name, value);
    }
}

fn is_members(kind: ResourceKind, def: &AttrDef) -> bool {
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
        Some(id) if !id.trim().is_empty() => Ok(id.to_string()),
        _ => Err(ScimError::invalid_value(
            "each element of 'members' must be an object with a non-empty string 'value'",
        )),
    }
}

/// Normalizes a value for `def`: type checks and coercions, canonical sub-attribute names,
/// unassigned values removed. Returns `None` when nothing is left.
pub fn normalize_attribute(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if def.multi_valued {
        return normalize_multi(def, value, label);
    }
    match value {
        // A one-element list for a single-valued attribute is that element; Entra ID's
        // tutorial sends `manager` as `[{"value": ...}]`.
        Value::Array(mut items) if items.len() == 1 => normalize_single(def, items.remove(0), label),
        value => normalize_single(def, value, label),
    }
}

fn normalize_multi(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if let Some(item) = normalize_single(def, item, label)? {
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    check_single_primary(&out, label)?;
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// Normalizes one value of `def`, or one element when `def` is multi-valued.
pub fn normalize_single(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if is_unassigned(&value) {
        return Ok(None);
    }
    match def.ty {
        AttrType::Complex => normalize_complex(def, value, label),
        ty => coerce_simple(ty, value, label).map(Some),
    }
}

fn normalize_complex(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let entries = match value {
        Value::Object(entries) => entries,
        // Entra sends the enterprise `manager` as a bare id; a string stands for `value`.
        Value::String(text) if schema::find_sub_attr(def, "value").is_some() => {
            let mut entries = Map::new();
            entries.insert("value".to_string(), Value::String(text));
            entries
        }
        other => return Err(type_error(label, AttrType::Complex, &other)),
    };

    let mut out = Map::new();
    for (name, value) in entries {
        match schema::find_sub_attr(def, &name) {
            Some(sub) => {
                let sub_label = format!("{label}.{}", sub.name);
                put_attribute(&mut out, sub, value, &sub_label)?;
            }
            None => put_unknown(&mut out, name, value),
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn coerce_simple(ty: AttrType, value: Value, label: &str) -> Result<Value, ScimError> {
    let valid = match (&ty, &value) {
        (AttrType::String | AttrType::Binary | AttrType::Reference, Value::String(_)) => true,
        (AttrType::Boolean, Value::Bool(_)) => true,
        (AttrType::Boolean, Value::String(text)) => return parse_bool(text, label, &value),
        (AttrType::Integer, Value::Number(number)) => number.is_i64() || number.is_u64(),
        (AttrType::Decimal, Value::Number(_)) => true,
        (AttrType::DateTime, Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339).is_ok(),
        _ => false,
    };
    if valid {
        Ok(value)
    } else {
        Err(type_error(label, ty, &value))
    }
}

/// Accepts `"true"` and `"false"` in any case, as Entra ID sends booleans.
fn parse_bool(text: &str, label: &str, value: &Value) -> Result<Value, ScimError> {
    if text.eq_ignore_ascii_case("true") {
        Ok(Value::Bool(true))
    } else if text.eq_ignore_ascii_case("false") {
        Ok(Value::Bool(false))
    } else {
        Err(type_error(label, AttrType::Boolean, value))
    }
}

fn type_error(label: &str, expected: AttrType, value: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "invalid value for '{label}': expected {}, got {}",
        type_name(expected),
        json_type(value)
    ))
}

/// Returns the data type name of RFC 7643 section 2.3.
fn type_name(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime (RFC 3339)",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Returns whether an element of a multi-valued attribute has `primary: true`.
pub fn is_primary(element: &Value) -> bool {
    element.get("primary") == Some(&Value::Bool(true))
}

/// RFC 7643 section 2.4: at most one element may be primary.
fn check_single_primary(items: &[Value], label: &str) -> Result<(), ScimError> {
    let primaries = items.iter().filter(|item| is_primary(item)).count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one element of '{label}' may have 'primary' set to true, found {primaries}"
        )));
    }
    Ok(())
}

/// Checks the attributes a resource type requires: `userName` for User and `displayName` for
/// Group, plus any writable attribute the schema table marks required.
fn check_required(kind: ResourceKind, doc: &Map<String, Value>) -> Result<(), ScimError> {
    let core = schema::core_schema(kind);
    let required = core.attributes.iter().filter(|def| {
        def.required && def.mutability != Mutability::ReadOnly && !is_members(kind, def)
    });
    for def in required {
        if doc.get(def.name).is_none_or(is_unassigned) {
            return Err(ScimError::invalid_value(format!(
                "attribute '{}' is required and must not be empty",
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
/// `returned` (RFC 7643 section 7): `schemas`, `id` and `meta` are always returned, `never`
/// attributes never, `request` attributes only when named in `attributes`. Extension objects
/// left empty are dropped.
pub fn project(kind: ResourceKind, resource: &Value, projection: &Projection) -> Value {
    let Some(map) = resource.as_object() else {
        return resource.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let always = ["schemas", "id", "meta"].contains(&key.as_str());
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

    use super::super::error::ScimType;
    use super::*;

    const ENTERPRISE: &str = schema::ENTERPRISE_USER_SCHEMA;

    fn create_user(body: Value) -> Result<Map<String, Value>, ScimError> {
        parse_create(ResourceKind::User, body).map(|incoming| incoming.doc)
    }

    fn assert_invalid_value(result: Result<Map<String, Value>, ScimError>, mentions: &str) {
        let error = result.expect_err("the body should be rejected");
        assert_eq!(error.status, 400);
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(error.detail.contains(mentions), "detail: {}", error.detail);
    }

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
    fn entra_string_booleans_on_create() {
        for (sent, stored) in [
            ("True", true),
            ("false", false),
            ("TRUE", true),
            ("False", false),
        ] {
            let doc = create_user(json!({"userName": "ada", "active": sent})).unwrap();
            assert_eq!(doc["active"], json!(stored), "sent {sent}");
        }
    }

    #[test]
    fn entra_manager_bare_string_on_create() {
        let doc =
            create_user(json!({"userName": "ada", ENTERPRISE: {"manager": "boss-id"}})).unwrap();
        assert_eq!(doc[ENTERPRISE]["manager"], json!({"value": "boss-id"}));
    }

    #[test]
    fn create_wraps_single_value_of_multi_valued() {
        let doc =
            create_user(json!({"userName": "ada", "emails": {"value": "a@example.org"}})).unwrap();
        assert_eq!(doc["emails"], json!([{"value": "a@example.org"}]));
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
    fn create_rejects_wrong_types() {
        let cases = [
            (json!({"userName": 5}), "expected string"),
            (
                json!({"userName": "ada", "active": "yes"}),
                "expected boolean",
            ),
            (
                json!({"userName": "ada", "name": "Ada"}),
                "expected complex",
            ),
            (
                json!({"userName": "ada", "emails": [{"primary": 1}]}),
                "expected boolean",
            ),
            (
                json!({"userName": "ada", ENTERPRISE: "Research"}),
                "expected complex",
            ),
            (
                json!({"userName": "ada", "photos": [{"value": true}]}),
                "expected reference",
            ),
        ];
        for (body, expected) in cases {
            assert_invalid_value(create_user(body), expected);
        }
    }

    #[test]
    fn create_rejects_two_primaries() {
        let body = json!({"userName": "ada", "emails": [
            {"value": "a@example.org", "primary": true},
            {"value": "b@example.org", "primary": "True"},
        ]});
        assert_invalid_value(create_user(body), "primary");
    }

    #[test]
    fn create_rejects_non_object_body() {
        let error = parse_create(ResourceKind::User, json!([1])).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
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
            "meta": {"resourceType": "User"},
        });
        assert_eq!(out, expected);
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
