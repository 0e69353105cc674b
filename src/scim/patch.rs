//! SCIM PATCH (RFC 7644 section 3.5.2) on a stored resource document, including the forms that
//! identity providers send where they bend the RFC. Group members live outside the document and
//! change through [`MemberSet`].

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{self, AttrPath, CompareOp, Filter, PatchPath};
use super::resource;
use super::schema::{self, AttrDef, AttrType, Mutability, ResourceKind, SchemaDef};

/// The message schema of a PATCH body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The largest number of operations one PATCH request may carry.
pub const MAX_OPERATIONS: usize = 1000;

/// The members of one Group, read and changed through the store's staged (uncommitted) state.
pub trait MemberSet {
    /// Returns whether `id` is currently a member.
    fn contains(&mut self, id: &str) -> Result<bool, ScimError>;
    /// Adds a member; the store rejects an id that is neither a user nor a group (400
    /// invalidValue naming the id). Adding an existing member is a no-op.
    fn add(&mut self, id: &str) -> Result<(), ScimError>;
    /// Removes a member; returns whether it was one. Removing a non-member is a no-op.
    fn remove(&mut self, id: &str) -> Result<bool, ScimError>;
    /// Removes every member.
    fn clear(&mut self) -> Result<(), ScimError>;
    /// Lists every member as a JSON object `{"value", "type", "$ref"?}` (used only for member filters
    /// other than `value eq`).
    fn list(&mut self) -> Result<Vec<Value>, ScimError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub kind: PatchOpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Parses a PATCH body. Key names and `op` values match in any case (`operations`, `Replace`),
/// and a missing or different `schemas` list is tolerated because the body's shape is
/// unambiguous without it.
pub fn parse_patch(body: Value) -> Result<Vec<PatchOp>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the PATCH body must be a JSON object with 'schemas' and 'Operations'",
        ));
    };
    let Some(operations) = get_ignore_case(&body, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "the PATCH body has no 'Operations' array",
        ));
    };
    let Value::Array(operations) = operations else {
        return Err(ScimError::invalid_syntax("'Operations' must be an array"));
    };
    if operations.is_empty() {
        return Err(ScimError::invalid_syntax(
            "'Operations' must contain at least one operation",
        ));
    }
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "too many operations: {} (maximum {MAX_OPERATIONS}); split the request",
            operations.len()
        )));
    }

    operations
        .iter()
        .enumerate()
        .map(|(index, operation)| parse_operation(operation).map_err(|e| in_operation(e, index)))
        .collect()
}

fn parse_operation(operation: &Value) -> Result<PatchOp, ScimError> {
    let Value::Object(operation) = operation else {
        return Err(ScimError::invalid_syntax(
            "an operation must be a JSON object",
        ));
    };
    let kind = parse_kind(get_ignore_case(operation, "op"))?;
    let path = parse_path(get_ignore_case(operation, "path"))?;
    let value = get_ignore_case(operation, "value").cloned();

    match (kind, &path, &value) {
        (PatchOpKind::Remove, None, _) => {
            Err(ScimError::no_target("a remove operation needs a 'path'"))
        }
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => Err(ScimError::invalid_value(
            "add and replace operations need a 'value'",
        )),
        (PatchOpKind::Add | PatchOpKind::Replace, None, Some(value)) if !value.is_object() => Err(
            ScimError::invalid_value("without a 'path', 'value' must be an object of attributes"),
        ),
        _ => Ok(PatchOp { kind, path, value }),
    }
}

fn parse_kind(op: Option<&Value>) -> Result<PatchOpKind, ScimError> {
    let Some(op) = op else {
        return Err(ScimError::invalid_syntax("an operation has no 'op'"));
    };
    let name = op.as_str().unwrap_or_default();
    if name.eq_ignore_ascii_case("add") {
        Ok(PatchOpKind::Add)
    } else if name.eq_ignore_ascii_case("remove") {
        Ok(PatchOpKind::Remove)
    } else if name.eq_ignore_ascii_case("replace") {
        Ok(PatchOpKind::Replace)
    } else {
        Err(ScimError::invalid_syntax(format!(
            "unknown op {op}; expected add, remove or replace"
        )))
    }
}

/// Parses `path`; a null or blank path counts as absent.
fn parse_path(path: Option<&Value>) -> Result<Option<PatchPath>, ScimError> {
    let text = match path {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text,
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    filter::parse_patch_path(text)
        .map(Some)
        .map_err(|error| path_error(text, &error.message, error.position))
}

fn path_error(path: &str, message: &str, position: usize) -> ScimError {
    ScimError::invalid_path(format!(
        "invalid path '{path}': {message} at position {position}"
    ))
}

fn get_ignore_case<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// Prefixes a client error with the 1-based number of the operation that caused it.
fn in_operation(error: ScimError, index: usize) -> ScimError {
    if error.status != 400 {
        return error;
    }
    ScimError {
        detail: format!("operation {}: {}", index + 1, error.detail),
        ..error
    }
}

/// Applies `ops` in order to `doc` and `members`, then revalidates the document (types,
/// required and immutable attributes). On error, `doc` and `members` may be partly changed: the
/// caller passes a copy of the stored document and a staged member overlay and discards both,
/// which makes the request atomic.
pub fn apply_patch(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    ops: &[PatchOp],
    members: &mut dyn MemberSet,
) -> Result<(), ScimError> {
    let original = doc.clone();
    let mut patcher = Patcher { kind, doc, members };
    for (index, op) in ops.iter().enumerate() {
        patcher
            .apply(op)
            .map_err(|error| in_operation(error, index))?;
    }
    resource::revalidate(kind, &original, doc)
}

/// The target that a path resolves to.
enum Target {
    /// An attribute in the document.
    Slot(Slot),
    /// Group `members`, held by the [`MemberSet`].
    Members,
    /// A whole extension object under its URN key; the schema is `None` for extensions the
    /// server does not model.
    Container(String, Option<&'static SchemaDef>),
    Id,
    ReadOnly(String),
    /// A writeOnly attribute (`password`), accepted and never stored.
    Ignored,
}

/// An attribute in the document: top-level when `container` is `None`, otherwise inside the
/// extension object under that key. `def` is `None` for attributes the schema does not know.
struct Slot {
    container: Option<String>,
    name: String,
    def: Option<&'static AttrDef>,
}

impl Slot {
    fn label(&self) -> String {
        match &self.container {
            Some(urn) => format!("{urn}:{}", self.name),
            None => self.name.clone(),
        }
    }
}

struct Patcher<'a> {
    kind: ResourceKind,
    doc: &'a mut Map<String, Value>,
    members: &'a mut dyn MemberSet,
}

impl Patcher<'_> {
    fn apply(&mut self, op: &PatchOp) -> Result<(), ScimError> {
        match &op.path {
            Some(path) => self.apply_path(op.kind, path, op.value.as_ref()),
            None => self.apply_without_path(op.kind, op.value.as_ref()),
        }
    }

    /// RFC 7644 section 3.5.2.1 and 3.5.2.3 without `path`: each key of the value object is an
    /// attribute path (plain, dotted such as `name.givenName`, or URN-qualified) or an extension
    /// URN, applied as if it were the operation's path.
    fn apply_without_path(
        &mut self,
        op: PatchOpKind,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let Some(Value::Object(entries)) = value else {
            return Err(ScimError::invalid_value(
                "without a 'path', 'value' must be an object of attributes",
            ));
        };
        for (key, value) in entries {
            self.apply_key(op, key, value)?;
        }
        Ok(())
    }

    fn apply_key(&mut self, op: PatchOpKind, key: &str, value: &Value) -> Result<(), ScimError> {
        // The server manages `schemas` and `meta`; clients that echo them are not changing them.
        if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
            return Ok(());
        }
        if let Some(extension) = resource::find_extension(self.kind, key) {
            return self.apply_container(op, extension.id, Some(extension), Some(value));
        }
        let foreign = resource::has_urn_prefix(key)
            && value.is_object()
            && resource::split_qualified(self.kind, key).is_none();
        if foreign {
            let key = existing_key(self.doc, key);
            return self.apply_container(op, &key, None, Some(value));
        }
        let path = filter::parse_patch_path(key)
            .map_err(|error| path_error(key, &error.message, error.position))?;
        self.apply_path(op, &path, Some(value))
    }

    fn apply_path(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let (attr, filter, sub) = match path {
            PatchPath::Attr(attr) => (attr, None, attr.sub_attr.as_deref()),
            PatchPath::Filtered {
                path,
                filter,
                sub_attr,
            } => {
                if path.sub_attr.is_some() {
                    return Err(ScimError::invalid_path(
                        "a value filter must follow a top-level attribute",
                    ));
                }
                (path, Some(filter), sub_attr.as_deref())
            }
        };

        match self.resolve(attr) {
            Target::Slot(slot) => match (filter, sub) {
                (Some(filter), _) => self.apply_filtered(op, &slot, attr, filter, sub, value),
                (None, Some(sub)) => self.apply_sub(op, &slot, sub, value),
                (None, None) => self.apply_plain(op, &slot, value),
            },
            Target::Members => self.apply_members(op, attr, filter, sub, value),
            Target::Container(key, extension) => {
                if filter.is_some() || sub.is_some() {
                    return Err(ScimError::invalid_path(format!(
                        "'{key}' is an extension; name one of its attributes"
                    )));
                }
                self.apply_container(op, &key, extension, value)
            }
            Target::Id => self.check_id(op, value),
            Target::ReadOnly(name) => Err(ScimError::mutability(format!(
                "attribute '{name}' is readOnly and cannot be changed"
            ))),
            Target::Ignored => Ok(()),
        }
    }

    fn resolve(&self, attr: &AttrPath) -> Target {
        let Some(urn) = &attr.urn else {
            // The path parser returns a whole extension URN as a name without URN.
            if let Some(extension) = resource::find_extension(self.kind, &attr.name) {
                return Target::Container(extension.id.to_string(), Some(extension));
            }
            return self.resolve_core(&attr.name);
        };
        if urn.eq_ignore_ascii_case(schema::core_schema(self.kind).id) {
            return self.resolve_core(&attr.name);
        }
        if let Some(extension) = resource::find_extension(self.kind, urn) {
            return self.resolve_in_extension(extension, &attr.name);
        }

        // `urn:...:User` parses as URN `urn:...` with attribute `User`: the whole extension.
        let whole = format!("{urn}:{}", attr.name);
        if let Some(extension) = resource::find_extension(self.kind, &whole) {
            return Target::Container(extension.id.to_string(), Some(extension));
        }
        if self.doc.keys().any(|key| key.eq_ignore_ascii_case(&whole)) {
            return Target::Container(existing_key(self.doc, &whole), None);
        }
        let container = existing_key(self.doc, urn);
        let name = self.existing_name(Some(&container), &attr.name);
        Target::Slot(Slot {
            container: Some(container),
            name,
            def: None,
        })
    }

    fn resolve_core(&self, name: &str) -> Target {
        if name.eq_ignore_ascii_case("id") {
            return Target::Id;
        }
        if name.eq_ignore_ascii_case("schemas") {
            return Target::ReadOnly("schemas".to_string());
        }
        match schema::find_attr(self.kind, None, name) {
            Some(def) if self.kind == ResourceKind::Group && def.name == "members" => {
                Target::Members
            }
            Some(def) => classify(None, def),
            None => {
                if let Some(extension) = schema::extension_defining(self.kind, name) {
                    return self.resolve_in_extension(extension, name);
                }
                let name = self.existing_name(None, name);
                Target::Slot(Slot {
                    container: None,
                    name,
                    def: None,
                })
            }
        }
    }

    fn resolve_in_extension(&self, extension: &'static SchemaDef, name: &str) -> Target {
        let container = Some(extension.id.to_string());
        match schema::find_attr(self.kind, Some(extension.id), name) {
            Some(def) => classify(container, def),
            None => {
                let name = self.existing_name(container.as_deref(), name);
                Target::Slot(Slot {
                    container,
                    name,
                    def: None,
                })
            }
        }
    }

    /// Returns the stored spelling of an attribute the schema does not know, matched ignoring case, or
    /// `name` when it is not stored yet.
    fn existing_name(&self, container: Option<&str>, name: &str) -> String {
        match container_ref(self.doc, container) {
            Some(map) => existing_key(map, name),
            None => name.to_string(),
        }
    }

    /// Okta repeats the resource's own `id` in a path-less replace; only a different id is an
    /// attempt to change it.
    fn check_id(&self, op: PatchOpKind, value: Option<&Value>) -> Result<(), ScimError> {
        let same = value.is_some_and(|value| Some(value) == self.doc.get("id"));
        if op != PatchOpKind::Remove && same {
            return Ok(());
        }
        Err(ScimError::mutability(
            "attribute 'id' is readOnly and cannot be changed",
        ))
    }

    fn apply_plain(
        &mut self,
        op: PatchOpKind,
        slot: &Slot,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if op == PatchOpKind::Remove {
            return self.remove_plain(slot, value);
        }
        let Some(new) = normalize(slot.def, value, &slot.label())? else {
            return self.unset(slot);
        };
        match slot.def {
            Some(def) if def.multi_valued && op == PatchOpKind::Add => self.union(slot, new),
            // RFC 7644 sections 3.5.2.1 and 3.5.2.3: sub-attributes given for a complex
            // attribute replace those sub-attributes and leave the others unchanged.
            Some(def) if def.ty == AttrType::Complex && !def.multi_valued => self.merge(slot, new),
            _ => self.set(slot, new),
        }
    }

    /// Removes an attribute. For a multi-valued attribute with a `value`, removes only the
    /// listed elements: Entra ID removes group members this way, and reading the request as
    /// "clear the attribute" would empty the group.
    fn remove_plain(&mut self, slot: &Slot, value: Option<&Value>) -> Result<(), ScimError> {
        let listed = value.filter(|value| !value.is_null());
        match (slot.def, listed) {
            (Some(def), Some(listed)) if def.multi_valued => {
                let listed = resource::normalize_attribute(def, listed.clone(), &slot.label())?;
                let listed = match listed {
                    Some(Value::Array(items)) => items,
                    _ => return Ok(()),
                };
                let Some(Value::Array(items)) = self.get_mut(slot) else {
                    return Ok(());
                };
                items.retain(|item| !listed.iter().any(|removal| contains_all(item, removal)));
                self.prune(slot);
                Ok(())
            }
            _ => self.unset(slot),
        }
    }

    /// Adds elements to a multi-valued attribute as a set union (RFC 7644 section 3.5.2.1).
    fn union(&mut self, slot: &Slot, new: Value) -> Result<(), ScimError> {
        let additions = match new {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        for addition in additions {
            add_element(&mut items, addition);
        }
        self.set(slot, Value::Array(items))
    }

    fn merge(&mut self, slot: &Slot, new: Value) -> Result<(), ScimError> {
        let merged = match (self.take(slot), new) {
            (Some(Value::Object(mut existing)), Value::Object(entries)) => {
                existing.extend(entries);
                Value::Object(existing)
            }
            (_, new) => new,
        };
        self.set(slot, merged)
    }

    /// Applies a path with a sub-attribute and no filter: `name.givenName` on a single complex
    /// attribute, or `emails.value` on every element of a multi-valued one.
    fn apply_sub(
        &mut self,
        op: PatchOpKind,
        slot: &Slot,
        sub: &str,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if slot.def.is_some_and(|def| def.ty != AttrType::Complex) {
            return Err(ScimError::invalid_path(format!(
                "attribute '{}' has no sub-attribute '{sub}'",
                slot.label()
            )));
        }
        let (sub_name, sub_def) = resolve_sub(slot, sub)?;
        let new = match op {
            PatchOpKind::Remove => None,
            _ => normalize(sub_def, value, &format!("{}.{sub_name}", slot.label()))?,
        };

        if slot.def.is_some_and(|def| def.multi_valued) {
            return self.update_every_element(slot, &sub_name, new);
        }
        match new {
            Some(new) => {
                let mut entries = Map::new();
                entries.insert(sub_name, new);
                self.merge(slot, Value::Object(entries))
            }
            None => {
                if let Some(Value::Object(parent)) = self.get_mut(slot) {
                    parent.remove(&sub_name);
                }
                self.prune(slot);
                Ok(())
            }
        }
    }

    fn update_every_element(
        &mut self,
        slot: &Slot,
        sub: &str,
        new: Option<Value>,
    ) -> Result<(), ScimError> {
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        match &new {
            Some(new) if items.is_empty() => items.push(object_with(sub, new.clone())),
            _ => items
                .iter_mut()
                .for_each(|item| set_sub(item, sub, new.clone())),
        }
        self.set(slot, Value::Array(items))?;
        self.prune(slot);
        Ok(())
    }

    /// Applies a value-filter path such as `emails[type eq "work"]` or `emails[type eq "work"].value`.
    fn apply_filtered(
        &mut self,
        op: PatchOpKind,
        slot: &Slot,
        attr: &AttrPath,
        filter: &Filter,
        sub: Option<&str>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let Some(def) = slot.def.filter(|def| def.multi_valued) else {
            return Err(ScimError::invalid_path(format!(
                "a value filter needs a multi-valued attribute, and '{}' is not one",
                slot.label()
            )));
        };
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        let matched: Vec<usize> = (0..items.len())
            .filter(|&index| {
                items
                    .get(index)
                    .is_some_and(|item| filter::matches_element(filter, self.kind, attr, item))
            })
            .collect();

        let update = FilteredUpdate {
            def,
            label: slot.label(),
            filter,
            sub,
        };
        match op {
            PatchOpKind::Remove => update.remove(&mut items, &matched)?,
            _ => update.write(op, &mut items, &matched, value)?,
        }
        self.set(slot, Value::Array(items))?;
        self.prune(slot);
        Ok(())
    }

    fn apply_members(
        &mut self,
        op: PatchOpKind,
        attr: &AttrPath,
        filter: Option<&Filter>,
        sub: Option<&str>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if sub.is_some() {
            return Err(ScimError::invalid_path(
                "member sub-attributes cannot be changed on their own; add or remove the member",
            ));
        }
        let ids = match value {
            Some(value) if op != PatchOpKind::Remove || filter.is_none() => {
                resource::member_ids(value)?
            }
            _ => Vec::new(),
        };
        match (op, filter) {
            (PatchOpKind::Add, _) => self.add_members(&ids),
            (PatchOpKind::Replace, None) => {
                self.members.clear()?;
                self.add_members(&ids)
            }
            (PatchOpKind::Replace, Some(filter)) => {
                let matched = self.matching_members(attr, filter)?;
                self.remove_members(&matched)?;
                self.add_members(&ids)
            }
            (PatchOpKind::Remove, Some(filter)) => {
                let matched = self.matching_members(attr, filter)?;
                self.remove_members(&matched)
            }
            // Entra ID sends the members to remove as the value (see `remove_plain`).
            (PatchOpKind::Remove, None) if value.is_some_and(|value| !value.is_null()) => {
                self.remove_members(&ids)
            }
            (PatchOpKind::Remove, None) => self.members.clear(),
        }
    }

    fn add_members(&mut self, ids: &[String]) -> Result<(), ScimError> {
        ids.iter().try_for_each(|id| self.members.add(id))
    }

    fn remove_members(&mut self, ids: &[String]) -> Result<(), ScimError> {
        ids.iter()
            .try_for_each(|id| self.members.remove(id).map(drop))
    }

    /// Member ids a filter selects. `value eq "id"` (or several joined by `or`) needs no member
    /// list, so a one-member change costs the same in a group of any size.
    fn matching_members(
        &mut self,
        attr: &AttrPath,
        filter: &Filter,
    ) -> Result<Vec<String>, ScimError> {
        if let Some(ids) = value_eq_ids(filter) {
            return Ok(ids);
        }
        let listed = self.members.list()?;
        let ids = listed
            .iter()
            .filter(|member| filter::matches_element(filter, self.kind, attr, member))
            .filter_map(|member| member.get("value").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        Ok(ids)
    }

    /// Applies an operation to a whole extension object. Remove, or an unassigned value, drops
    /// the object. Add and replace apply each key of the value as an attribute path.
    fn apply_container(
        &mut self,
        op: PatchOpKind,
        key: &str,
        extension: Option<&'static SchemaDef>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let value = value.filter(|value| !resource::is_unassigned(value));
        let Some(value) = value.filter(|_| op != PatchOpKind::Remove) else {
            self.doc.remove(key);
            return Ok(());
        };
        let Value::Object(entries) = value else {
            return Err(ScimError::invalid_value(format!(
                "the value for '{key}' must be an object of extension attributes"
            )));
        };
        for (name, value) in entries {
            let (name, sub_attr) = match name.split_once('.') {
                Some((name, sub)) => (name.to_string(), Some(sub.to_string())),
                None => (name.clone(), None),
            };
            let urn = extension.map_or(key, |extension| extension.id);
            let path = AttrPath {
                urn: Some(urn.to_string()),
                name,
                sub_attr,
            };
            self.apply_path(op, &PatchPath::Attr(path), Some(value))?;
        }
        Ok(())
    }

    fn get_mut(&mut self, slot: &Slot) -> Option<&mut Value> {
        let container = match &slot.container {
            Some(key) => self.doc.get_mut(key)?.as_object_mut()?,
            None => &mut *self.doc,
        };
        container.get_mut(&slot.name)
    }

    fn take(&mut self, slot: &Slot) -> Option<Value> {
        let container = match &slot.container {
            Some(key) => self.doc.get_mut(key)?.as_object_mut()?,
            None => &mut *self.doc,
        };
        container.remove(&slot.name)
    }

    fn set(&mut self, slot: &Slot, value: Value) -> Result<(), ScimError> {
        let container = match &slot.container {
            Some(key) => {
                let entry = self
                    .doc
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                entry
                    .as_object_mut()
                    .ok_or_else(|| ScimError::internal("extension entry is not a JSON object"))?
            }
            None => &mut *self.doc,
        };
        container.insert(slot.name.clone(), value);
        Ok(())
    }

    fn unset(&mut self, slot: &Slot) -> Result<(), ScimError> {
        self.take(slot);
        self.prune(slot);
        Ok(())
    }

    /// Drops an attribute left unassigned, and its extension object when that is left empty.
    fn prune(&mut self, slot: &Slot) {
        if self
            .get_mut(slot)
            .is_some_and(|value| resource::is_unassigned(value))
        {
            self.take(slot);
        }
        if let Some(key) = &slot.container {
            if self.doc.get(key).is_some_and(resource::is_unassigned) {
                self.doc.remove(key);
            }
        }
    }
}

fn classify(container: Option<String>, def: &'static AttrDef) -> Target {
    match def.mutability {
        Mutability::ReadOnly => Target::ReadOnly(def.name.to_string()),
        Mutability::WriteOnly => Target::Ignored,
        Mutability::ReadWrite | Mutability::Immutable => Target::Slot(Slot {
            container,
            name: def.name.to_string(),
            def: Some(def),
        }),
    }
}

fn container_ref<'a>(
    doc: &'a Map<String, Value>,
    container: Option<&str>,
) -> Option<&'a Map<String, Value>> {
    match container {
        Some(key) => doc.get(key)?.as_object(),
        None => Some(doc),
    }
}

/// Returns the key of `map` equal to `name` ignoring case, or `name` itself.
fn existing_key(map: &Map<String, Value>, name: &str) -> String {
    if map.contains_key(name) {
        return name.to_string();
    }
    map.keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// Normalizes an add or replace value; `None` means the value clears the attribute, as
/// Entra ID sends `""` and `null` to clear.
fn normalize(
    def: Option<&'static AttrDef>,
    value: Option<&Value>,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let Some(value) = value else {
        return Err(ScimError::invalid_value(format!(
            "no value given for '{label}'"
        )));
    };
    match def {
        Some(def) => resource::normalize_attribute(def, value.clone(), label),
        None if resource::is_unassigned(value) => Ok(None),
        None => Ok(Some(value.clone())),
    }
}

/// Returns the canonical name and definition of a sub-attribute of `slot`; readOnly sub-attributes
/// cannot be written.
fn resolve_sub(slot: &Slot, sub: &str) -> Result<(String, Option<&'static AttrDef>), ScimError> {
    let sub_def = slot.def.and_then(|def| schema::find_sub_attr(def, sub));
    match sub_def {
        Some(def) if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) => {
            Err(ScimError::mutability(format!(
                "attribute '{}.{}' is {} and cannot be changed",
                slot.label(),
                def.name,
                if def.mutability == Mutability::ReadOnly {
                    "readOnly"
                } else {
                    "writeOnly"
                }
            )))
        }
        Some(def) => Ok((def.name.to_string(), Some(def))),
        None => Ok((sub.to_string(), None)),
    }
}

/// Adds one element to a multi-valued attribute. An element with the same `value` and `type`
/// as an existing one is merged into it, so a repeated add creates no duplicate. A new primary
/// element takes `primary` from the others (RFC 7643 section 2.4).
fn add_element(items: &mut Vec<Value>, element: Value) {
    if resource::is_primary(&element) {
        items.iter_mut().for_each(clear_primary);
    }
    match items.iter_mut().find(|item| same_element(item, &element)) {
        Some(Value::Object(existing)) => {
            if let Value::Object(entries) = element {
                existing.extend(entries);
            }
        }
        Some(_) => {}
        None => items.push(element),
    }
}

fn same_element(item: &Value, element: &Value) -> bool {
    match (item, element) {
        (Value::Object(a), Value::Object(b)) if a.contains_key("value") => {
            a.get("value") == b.get("value") && a.get("type") == b.get("type")
        }
        _ => item == element,
    }
}

fn clear_primary(item: &mut Value) {
    if let Value::Object(entries) = item {
        entries.remove("primary");
    }
}

/// Returns whether `item` has every sub-attribute value of `removal` (or equals it, for simple values).
fn contains_all(item: &Value, removal: &Value) -> bool {
    match (item, removal) {
        (Value::Object(item), Value::Object(removal)) => removal
            .iter()
            .all(|(key, value)| item.get(key) == Some(value)),
        _ => item == removal,
    }
}

fn object_with(name: &str, value: Value) -> Value {
    let mut entries = Map::new();
    entries.insert(name.to_string(), value);
    Value::Object(entries)
}

fn set_sub(item: &mut Value, sub: &str, value: Option<Value>) {
    if !item.is_object() {
        *item = Value::Object(Map::new());
    }
    let Value::Object(entries) = item else {
        return;
    };
    match value {
        Some(value) => entries.insert(sub.to_string(), value),
        None => entries.remove(sub),
    };
}

/// One value-filter operation on the elements of a multi-valued attribute.
struct FilteredUpdate<'a> {
    def: &'static AttrDef,
    label: String,
    filter: &'a Filter,
    sub: Option<&'a str>,
}

impl FilteredUpdate<'_> {
    /// Removes the matching elements, or their sub-attribute; no match is not an error.
    fn remove(&self, items: &mut Vec<Value>, matched: &[usize]) -> Result<(), ScimError> {
        match self.sub {
            Some(sub) => {
                let (sub_name, _) = self.sub_def(sub)?;
                for &index in matched {
                    if let Some(item) = items.get_mut(index) {
                        set_sub(item, &sub_name, None);
                    }
                }
                items.retain(|item| !resource::is_unassigned(item));
            }
            None => retain_unmatched(items, matched),
        }
        Ok(())
    }

    /// Writes `value` to the matching elements. With no match, a filter made only of `eq`
    /// conditions joined by `and` describes a new element, which is created: Entra ID sends
    /// `emails[type eq "work"].value` with Add and Replace to users that have no such email.
    fn write(
        &self,
        op: PatchOpKind,
        items: &mut Vec<Value>,
        matched: &[usize],
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let (sub_name, new) = self.new_value(value)?;
        if matched.is_empty() {
            let Some(new) = new else {
                return Ok(());
            };
            if let Some(element) = self.new_element(sub_name.as_deref(), new)? {
                add_element(items, element);
            }
            return Ok(());
        }

        for &index in matched {
            let Some(item) = items.get_mut(index) else {
                continue;
            };
            match (&sub_name, &new, op) {
                (Some(sub), _, _) => set_sub(item, sub, new.clone()),
                (None, Some(new), PatchOpKind::Replace) => *item = new.clone(),
                (None, Some(Value::Object(entries)), _) => {
                    if let Value::Object(existing) = item {
                        existing.extend(entries.clone());
                    }
                }
                (None, _, _) => *item = Value::Null,
            }
        }
        keep_primary_in(items, matched);
        items.retain(|item| !resource::is_unassigned(item));
        Ok(())
    }

    /// Returns the normalized value to write and the canonical sub-attribute it goes to, if any.
    fn new_value(
        &self,
        value: Option<&Value>,
    ) -> Result<(Option<String>, Option<Value>), ScimError> {
        let Some(sub) = self.sub else {
            let value = value.cloned().unwrap_or(Value::Null);
            return Ok((
                None,
                resource::normalize_single(self.def, value, &self.label)?,
            ));
        };
        let (sub_name, sub_def) = self.sub_def(sub)?;
        let label = format!("{}.{sub_name}", self.label);
        let new = normalize(sub_def, value, &label)?;
        Ok((Some(sub_name), new))
    }

    fn sub_def(&self, sub: &str) -> Result<(String, Option<&'static AttrDef>), ScimError> {
        let slot = Slot {
            container: None,
            name: self.label.clone(),
            def: Some(self.def),
        };
        resolve_sub(&slot, sub)
    }

    fn new_element(&self, sub: Option<&str>, new: Value) -> Result<Option<Value>, ScimError> {
        let Some(conditions) = equality_conditions(self.filter) else {
            return Err(ScimError::no_target(format!(
                "no element of '{}' matches the filter",
                self.label
            )));
        };
        let mut element = Map::new();
        for (name, value) in conditions {
            element.insert(name, value);
        }
        match (sub, new) {
            (Some(sub), new) => {
                element.insert(sub.to_string(), new);
            }
            (None, Value::Object(entries)) => element.extend(entries),
            (None, _) => {}
        }
        resource::normalize_single(self.def, Value::Object(element), &self.label)
    }
}

fn retain_unmatched(items: &mut Vec<Value>, matched: &[usize]) {
    let mut index = 0;
    items.retain(|_| {
        let keep = !matched.contains(&index);
        index += 1;
        keep
    });
}

/// When an updated element became primary, the others lose `primary`.
fn keep_primary_in(items: &mut [Value], updated: &[usize]) {
    let updated_primary = updated
        .iter()
        .any(|&index| items.get(index).is_some_and(resource::is_primary));
    if !updated_primary {
        return;
    }
    for (index, item) in items.iter_mut().enumerate() {
        if !updated.contains(&index) {
            clear_primary(item);
        }
    }
}

/// Returns the `(sub-attribute, value)` pairs of a filter made only of `eq` comparisons joined by
/// `and`, as in `[type eq "work" and primary eq true]`; `None` for any other filter.
fn equality_conditions(filter: &Filter) -> Option<Vec<(String, Value)>> {
    let mut conditions = Vec::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter {
            Filter::And(left, right) => {
                pending.push(right);
                pending.push(left);
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if is_plain(path) => {
                conditions.push((path.name.clone(), value.clone()));
            }
            _ => return None,
        }
    }
    Some(conditions)
}

/// Returns the ids of a member filter made only of `value eq "id"` comparisons joined by `or`.
fn value_eq_ids(filter: &Filter) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter {
            Filter::Or(left, right) => {
                pending.push(right);
                pending.push(left);
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: Value::String(id),
            } if is_plain(path) && path.name.eq_ignore_ascii_case("value") => {
                ids.push(id.clone());
            }
            _ => return None,
        }
    }
    Some(ids)
}

fn is_plain(path: &AttrPath) -> bool {
    path.urn.is_none() && path.sub_attr.is_none()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use serde_json::json;

    use super::super::error::ScimType;
    use super::*;

    const ENTERPRISE: &str = schema::ENTERPRISE_USER_SCHEMA;

    /// Members in memory; ids starting with `unknown` are neither users nor groups.
    #[derive(Debug, Default, Clone)]
    struct Members(BTreeSet<String>);

    impl Members {
        fn of(ids: &[&str]) -> Members {
            Members(ids.iter().map(|id| id.to_string()).collect())
        }

        fn ids(&self) -> Vec<&str> {
            self.0.iter().map(String::as_str).collect()
        }
    }

    impl MemberSet for Members {
        fn contains(&mut self, id: &str) -> Result<bool, ScimError> {
            Ok(self.0.contains(id))
        }

        fn add(&mut self, id: &str) -> Result<(), ScimError> {
            if id.starts_with("unknown") {
                return Err(ScimError::invalid_value(format!(
                    "no user or group has id '{id}'"
                )));
            }
            self.0.insert(id.to_string());
            Ok(())
        }

        fn remove(&mut self, id: &str) -> Result<bool, ScimError> {
            Ok(self.0.remove(id))
        }

        fn clear(&mut self) -> Result<(), ScimError> {
            self.0.clear();
            Ok(())
        }

        fn list(&mut self) -> Result<Vec<Value>, ScimError> {
            let type_of = |id: &str| if id.starts_with('g') { "Group" } else { "User" };
            Ok(self
                .0
                .iter()
                .map(|id| json!({"value": id, "type": type_of(id)}))
                .collect())
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn user() -> Map<String, Value> {
        object(json!({
            "schemas": [schema::USER_SCHEMA],
            "id": "u1",
            "userName": "ada",
            "title": "Surveyor",
            "nickName": "Ada",
            "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.org", "type": "work", "primary": true}],
            "meta": {"resourceType": "User"},
        }))
    }

    fn group() -> Map<String, Value> {
        object(json!({
            "schemas": [schema::GROUP_SCHEMA],
            "id": "g1",
            "displayName": "Ops",
            "meta": {"resourceType": "Group"},
        }))
    }

    fn body(operations: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
    }

    /// Parses and applies `operations` to a copy of `doc`, as the store does.
    fn patch(
        kind: ResourceKind,
        doc: &Map<String, Value>,
        members: &mut Members,
        operations: Value,
    ) -> Result<Map<String, Value>, ScimError> {
        let ops = parse_patch(body(operations))?;
        let mut copy = doc.clone();
        apply_patch(kind, &mut copy, &ops, members)?;
        Ok(copy)
    }

    fn patch_user(operations: Value) -> Result<Map<String, Value>, ScimError> {
        patch(
            ResourceKind::User,
            &user(),
            &mut Members::default(),
            operations,
        )
    }

    fn patch_group(
        members: &mut Members,
        operations: Value,
    ) -> Result<Map<String, Value>, ScimError> {
        patch(ResourceKind::Group, &group(), members, operations)
    }

    fn assert_error(
        result: Result<Map<String, Value>, ScimError>,
        scim_type: ScimType,
        mentions: &str,
    ) {
        let error = result.expect_err("the request should be rejected");
        assert_eq!(error.status, 400);
        assert_eq!(error.scim_type, Some(scim_type), "detail: {}", error.detail);
        assert!(error.detail.contains(mentions), "detail: {}", error.detail);
    }

    #[test]
    fn add_sets_simple_attribute() {
        let doc =
            patch_user(json!([{"op": "add", "path": "displayName", "value": "Ada L."}])).unwrap();
        assert_eq!(doc["displayName"], "Ada L.");
    }

    #[test]
    fn entra_add_replaces_single_valued() {
        let doc = patch_user(json!([
            {"op": "Add", "path": "title", "value": "Senior Surveyor"},
            {"op": "Add", "path": "nickName", "value": "Sully"},
        ]))
        .unwrap();
        assert_eq!(doc["title"], "Senior Surveyor");
        assert_eq!(doc["nickName"], "Sully");
    }

    #[test]
    fn add_multi_valued_is_set_union() {
        let doc = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "ada@example.org", "type": "work"}]},
            {"op": "add", "path": "emails", "value": [{"value": "home@example.org", "type": "home"}]},
            {"op": "add", "path": "emails", "value": {"value": "home@example.org", "type": "home"}},
        ]))
        .unwrap();
        let expected = json!([
            {"value": "ada@example.org", "type": "work", "primary": true},
            {"value": "home@example.org", "type": "home"},
        ]);
        assert_eq!(doc["emails"], expected);
    }

    #[test]
    fn add_primary_element_clears_other_primary() {
        let doc = patch_user(json!([{"op": "add", "path": "emails",
            "value": [{"value": "home@example.org", "type": "home", "primary": true}]}]))
        .unwrap();
        let expected = json!([
            {"value": "ada@example.org", "type": "work"},
            {"value": "home@example.org", "type": "home", "primary": true},
        ]);
        assert_eq!(doc["emails"], expected);
    }

    #[test]
    fn replace_absent_attribute_adds_it() {
        let doc =
            patch_user(json!([{"op": "replace", "path": "locale", "value": "en-GB"}])).unwrap();
        assert_eq!(doc["locale"], "en-GB");
    }

    #[test]
    fn replace_multi_valued_replaces_list() {
        let value = json!([{"value": "new@example.org", "type": "home"}]);
        let doc = patch_user(json!([{"op": "replace", "path": "emails", "value": value}])).unwrap();
        assert_eq!(doc["emails"], value);
    }

    #[test]
    fn replace_complex_keeps_other_sub_attributes() {
        let doc = patch_user(
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Augusta"}}]),
        )
        .unwrap();
        assert_eq!(
            doc["name"],
            json!({"givenName": "Augusta", "familyName": "Lovelace"})
        );
    }

    #[test]
    fn remove_simple_attribute() {
        let doc = patch_user(json!([
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": "timezone"},
        ]))
        .unwrap();
        assert!(!doc.contains_key("title"));
        assert!(!doc.contains_key("timezone"));
    }

    #[test]
    fn remove_multi_valued_without_filter_clears() {
        let doc = patch_user(json!([{"op": "remove", "path": "emails"}])).unwrap();
        assert!(!doc.contains_key("emails"));
    }

    #[test]
    fn remove_multi_valued_by_value_list() {
        let doc = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "b@example.org"}]},
            {"op": "remove", "path": "emails", "value": [{"value": "ada@example.org"}]},
        ]))
        .unwrap();
        assert_eq!(doc["emails"], json!([{"value": "b@example.org"}]));
    }

    #[test]
    fn entra_remove_members_by_value_list() {
        let mut members = Members::of(&["u1", "u2", "u3"]);
        patch_group(
            &mut members,
            json!([{"op": "Remove", "path": "members",
            "value": [{"$ref": null, "value": "u1"}, {"value": "u3"}]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u2"]);
    }

    #[test]
    fn remove_members_without_value_clears() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(&mut members, json!([{"op": "remove", "path": "members"}])).unwrap();
        assert!(members.ids().is_empty());
    }

    #[test]
    fn remove_member_by_value_filter() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(
            &mut members,
            json!([
                {"op": "remove", "path": "members[value eq \"u1\"]"},
                {"op": "remove", "path": "members[value eq \"u9\"]"},
            ]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u2"]);
    }

    #[test]
    fn remove_members_by_other_filter() {
        let mut members = Members::of(&["g2", "u1", "u2"]);
        patch_group(
            &mut members,
            json!([{"op": "remove", "path": "members[type eq \"User\"]"}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["g2"]);
    }

    #[test]
    fn okta_filtered_remove_and_add_in_one_request() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(&mut members, json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u3", "display": "cy@example.org"}]},
        ]))
        .unwrap();
        assert_eq!(members.ids(), ["u2", "u3"]);
    }

    #[test]
    fn okta_replace_whole_member_list() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(
            &mut members,
            json!([{"op": "replace", "path": "members",
            "value": [{"value": "u2", "display": "bo"}, {"value": "u3", "display": "cy"}]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u2", "u3"]);
    }

    #[test]
    fn repeated_member_add_is_noop() {
        let mut members = Members::of(&["u1"]);
        let doc = patch_group(
            &mut members,
            json!([
                {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u1"}]},
            ]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1"]);
        assert!(!doc.contains_key("members"));
    }

    #[test]
    fn entra_member_add_with_null_ref() {
        let mut members = Members::default();
        patch_group(
            &mut members,
            json!([{"op": "Add", "path": "members",
            "value": [{"$ref": null, "value": "u1", "type": "User"}]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1"]);
    }

    #[test]
    fn member_add_accepts_bare_id() {
        let mut members = Members::default();
        patch_group(
            &mut members,
            json!([{"op": "add", "path": "members", "value": ["u1", "u2"]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1", "u2"]);
    }

    #[test]
    fn member_without_value_rejected() {
        let mut members = Members::default();
        let result = patch_group(
            &mut members,
            json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
        );
        assert_error(result, ScimType::InvalidValue, "members");
    }

    #[test]
    fn unknown_member_id_rejected() {
        let mut members = Members::default();
        let result = patch_group(
            &mut members,
            json!([{"op": "add", "path": "members",
            "value": [{"value": "u1"}, {"value": "unknown-1"}]}]),
        );
        assert_error(result, ScimType::InvalidValue, "unknown-1");
    }

    #[test]
    fn path_less_members_add() {
        let mut members = Members::default();
        patch_group(
            &mut members,
            json!([{"op": "add", "value": {"members": [{"value": "u1"}]}}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1"]);
    }

    #[test]
    fn filtered_replace_updates_sub_attribute() {
        let doc = patch_user(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value",
            "value": "juno@example.org"}]),
        )
        .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "juno@example.org", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn entra_add_filtered_email_creates_element() {
        let mut doc = user();
        doc.remove("emails");
        for op in ["Add", "Replace"] {
            let operations = json!([{"op": op, "path": "emails[type eq \"work\"].value",
                "value": "mira@example.com"}]);
            let patched = patch(
                ResourceKind::User,
                &doc,
                &mut Members::default(),
                operations,
            )
            .unwrap();
            assert_eq!(
                patched["emails"],
                json!([{"type": "work", "value": "mira@example.com"}]),
                "op {op}"
            );
        }
    }

    #[test]
    fn filtered_add_creates_from_and_conditions() {
        let doc = patch_user(json!([{"op": "add",
            "path": "emails[type eq \"home\" and primary eq true].value", "value": "h@example.org"}]))
        .unwrap();
        let expected = json!([
            {"value": "ada@example.org", "type": "work"},
            {"type": "home", "primary": true, "value": "h@example.org"},
        ]);
        assert_eq!(doc["emails"], expected);
    }

    #[test]
    fn filtered_replace_without_match_is_no_target() {
        let result = patch_user(
            json!([{"op": "replace", "path": "emails[value co \"nobody\"].type",
            "value": "home"}]),
        );
        assert_error(result, ScimType::NoTarget, "emails");
    }

    #[test]
    fn filtered_remove_removes_matching_elements() {
        let doc = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "h@example.org", "type": "home"}]},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "remove", "path": "emails[type eq \"other\"]"},
        ]))
        .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "h@example.org", "type": "home"}])
        );
    }

    #[test]
    fn filtered_remove_of_sub_attribute() {
        let doc = patch_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]))
            .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "ada@example.org", "type": "work"}])
        );
    }

    #[test]
    fn filter_on_single_valued_rejected() {
        let result = patch_user(json!([{"op": "remove", "path": "name[givenName eq \"Ada\"]"}]));
        assert_error(result, ScimType::InvalidPath, "name");
    }

    #[test]
    fn sub_attribute_path_creates_parent() {
        let mut doc = user();
        doc.remove("name");
        let operations = json!([{"op": "replace", "path": "name.GivenName", "value": "Ada"}]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        assert_eq!(patched["name"], json!({"givenName": "Ada"}));
    }

    #[test]
    fn sub_attribute_remove_drops_empty_parent() {
        let doc = patch_user(json!([
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "name.familyName"},
        ]))
        .unwrap();
        assert!(!doc.contains_key("name"));
    }

    #[test]
    fn extension_path_creates_extension() {
        let doc = patch_user(json!([
            {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Research"},
            {"op": "add", "path": format!("{ENTERPRISE}:manager.value"), "value": "boss"},
        ]))
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Research", "manager": {"value": "boss"}})
        );
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA, ENTERPRISE]));
    }

    #[test]
    fn empty_extension_leaves_schemas() {
        let mut doc = user();
        doc.insert(ENTERPRISE.to_string(), json!({"department": "Research"}));
        doc.insert(
            "schemas".to_string(),
            json!([schema::USER_SCHEMA, ENTERPRISE]),
        );
        let operations = json!([{"op": "remove", "path": format!("{ENTERPRISE}:department")}]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        assert!(!patched.contains_key(ENTERPRISE));
        assert_eq!(patched["schemas"], json!([schema::USER_SCHEMA]));
    }

    #[test]
    fn remove_whole_extension_by_urn() {
        let mut doc = user();
        doc.insert(ENTERPRISE.to_string(), json!({"department": "Research"}));
        let operations = json!([{"op": "remove", "path": ENTERPRISE}]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        assert!(!patched.contains_key(ENTERPRISE));
    }

    #[test]
    fn okta_path_less_replace_active() {
        let doc = patch_user(json!([{"op": "replace", "value": {"active": false}}])).unwrap();
        assert_eq!(doc["active"], false);
    }

    #[test]
    fn entra_path_less_dotted_and_urn_keys() {
        let doc = patch_user(json!([{"op": "replace", "value": {
            "displayName": "Juno Q. Fixture",
            "name.givenName": "Junia",
            "NAME.familyName": "Fixture-Lane",
            format!("{ENTERPRISE}:employeeNumber"): "E-40417",
        }}]))
        .unwrap();
        assert_eq!(doc["displayName"], "Juno Q. Fixture");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Junia", "familyName": "Fixture-Lane"})
        );
        assert_eq!(doc[ENTERPRISE], json!({"employeeNumber": "E-40417"}));
        assert!(!doc.contains_key("name.givenName"));
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA, ENTERPRISE]));
    }

    #[test]
    fn path_less_extension_object() {
        let doc = patch_user(json!([{"op": "add", "value": {
            ENTERPRISE: {"Department": "Research", "manager": {"value": "boss"}},
        }}]))
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Research", "manager": {"value": "boss"}})
        );
    }

    #[test]
    fn path_less_custom_extension_kept() {
        let custom = "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User";
        let doc = patch_user(json!([{"op": "add", "value": {custom: {"badge": "42"}}}])).unwrap();
        assert_eq!(doc[custom], json!({"badge": "42"}));
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA, custom]));
    }

    #[test]
    fn entra_string_booleans() {
        for (sent, stored) in [("False", false), ("TRUE", true), ("false", false)] {
            let doc =
                patch_user(json!([{"op": "Replace", "path": "active", "value": sent}])).unwrap();
            assert_eq!(doc["active"], json!(stored), "sent {sent}");
        }
    }

    #[test]
    fn entra_manager_bare_string() {
        let path = format!("{ENTERPRISE}:manager");
        let with_path = patch_user(json!([{"op": "add", "path": path, "value": "boss"}])).unwrap();
        let without_path =
            patch_user(json!([{"op": "replace", "value": {path.clone(): "boss"}}])).unwrap();
        assert_eq!(with_path[ENTERPRISE], json!({"manager": {"value": "boss"}}));
        assert_eq!(
            without_path[ENTERPRISE],
            json!({"manager": {"value": "boss"}})
        );
    }

    #[test]
    fn entra_tutorial_unqualified_manager_list() {
        let value = json!([{"$ref": "https://example.com/scim/v2/Users/boss", "value": "boss"}]);
        let with_path = patch_user(json!([{"op": "Add", "path": "manager", "value": value}])).unwrap();
        assert_eq!(with_path[ENTERPRISE]["manager"]["value"], "boss");
        assert!(with_path.get("manager").is_none());
        let without_path = patch_user(json!([{"op": "add", "value": {"department": "Research"}}])).unwrap();
        assert_eq!(without_path[ENTERPRISE]["department"], "Research");
        assert!(without_path.get("department").is_none());
        let removed = patch_user(json!([
            {"op": "add", "path": "manager", "value": "boss"},
            {"op": "remove", "path": "manager"}
        ]))
        .unwrap();
        assert!(removed.get(ENTERPRISE).is_none());
    }

    #[test]
    fn single_valued_attribute_rejects_longer_list() {
        let error = patch_user(json!([{"op": "replace", "path": "title", "value": ["a", "b"]}])).unwrap_err();
        assert_eq!(error.status, 400);
    }

    #[test]
    fn entra_clears_with_empty_and_null() {
        let mut doc = user();
        doc.insert(ENTERPRISE.to_string(), json!({"department": "Research"}));
        let operations = json!([
            {"op": "replace", "path": "title", "value": ""},
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": null},
            {"op": "replace", "path": "nickName", "value": null},
            {"op": "add", "path": "name.givenName", "value": ""},
        ]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        for key in ["title", "nickName", ENTERPRISE] {
            assert!(!patched.contains_key(key), "{key} should be cleared");
        }
        assert_eq!(patched["name"], json!({"familyName": "Lovelace"}));
    }

    #[test]
    fn operations_key_in_any_case() {
        let ops = parse_patch(json!({"schemas": [PATCH_OP_SCHEMA],
            "operations": [{"op": "replace", "path": "title", "value": "Surveyor"}]}))
        .unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].kind, PatchOpKind::Replace);
    }

    #[test]
    fn entra_capitalised_op_names() {
        let ops = parse_patch(body(json!([
            {"op": "Add", "path": "title", "value": "a"},
            {"op": "REPLACE", "path": "title", "value": "b"},
            {"op": "Remove", "path": "title"},
        ])))
        .unwrap();
        let kinds: Vec<PatchOpKind> = ops.iter().map(|op| op.kind).collect();
        assert_eq!(
            kinds,
            [PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove]
        );
    }

    #[test]
    fn missing_schemas_tolerated() {
        let ops = parse_patch(json!({"Operations": [{"op": "remove", "path": "title"}]})).unwrap();
        assert_eq!(ops.len(), 1);
    }

    #[test]
    fn okta_replace_with_own_id() {
        let mut members = Members::default();
        let doc = patch_group(
            &mut members,
            json!([{"op": "replace",
            "value": {"id": "g1", "displayName": "Ops Renamed"}}]),
        )
        .unwrap();
        assert_eq!(doc["displayName"], "Ops Renamed");
        assert_eq!(doc["id"], "g1");
    }

    #[test]
    fn replace_with_other_id_rejected() {
        let mut members = Members::default();
        let result = patch_group(
            &mut members,
            json!([{"op": "replace", "value": {"id": "g2"}}]),
        );
        assert_error(result, ScimType::Mutability, "id");
    }

    #[test]
    fn read_only_attribute_rejected() {
        let result =
            patch_user(json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]));
        assert_error(result, ScimType::Mutability, "groups");
    }

    #[test]
    fn group_display_name_and_external_id_replace() {
        let mut members = Members::default();
        let doc = patch_group(
            &mut members,
            json!([
                {"op": "replace", "path": "displayName", "value": "Berth Schedulers"},
                {"op": "replace", "path": "externalId", "value": "ext-9"},
            ]),
        )
        .unwrap();
        assert_eq!(doc["displayName"], "Berth Schedulers");
        assert_eq!(doc["externalId"], "ext-9");
    }

    #[test]
    fn wrong_type_rejected() {
        let result = patch_user(json!([{"op": "replace", "path": "active", "value": "yes"}]));
        assert_error(result, ScimType::InvalidValue, "active");
    }

    #[test]
    fn removing_required_attribute_rejected() {
        let result = patch_user(json!([{"op": "remove", "path": "userName"}]));
        assert_error(result, ScimType::InvalidValue, "userName");
    }

    #[test]
    fn second_primary_by_filter_rejected() {
        let result = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "b@example.org", "type": "home"}]},
            {"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true},
            {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
            {"op": "add", "path": "emails[value ew \"example.org\"].primary", "value": true},
        ]));
        assert_error(result, ScimType::InvalidValue, "primary");
    }

    #[test]
    fn atomic_when_later_operation_fails() {
        let stored = group();
        let mut members = Members::of(&["u1"]);
        let mut staged_doc = stored.clone();
        let mut staged_members = members.clone();
        let ops = parse_patch(body(json!([
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": [{"value": "u2"}]},
            {"op": "replace", "path": "displayName", "value": 42},
        ])))
        .unwrap();
        let error = apply_patch(
            ResourceKind::Group,
            &mut staged_doc,
            &ops,
            &mut staged_members,
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(
            error.detail.starts_with("operation 3:"),
            "detail: {}",
            error.detail
        );
        assert_eq!(stored, group());
        assert_eq!(members.ids(), ["u1"]);
        assert!(members.contains("u1").unwrap());
    }

    #[test]
    fn parse_rejects_bad_bodies() {
        let cases = [
            (json!([]), ScimType::InvalidSyntax, "JSON object"),
            (
                json!({"schemas": [PATCH_OP_SCHEMA]}),
                ScimType::InvalidSyntax,
                "Operations",
            ),
            (body(json!([])), ScimType::InvalidSyntax, "at least one"),
            (body(json!({"op": "add"})), ScimType::InvalidSyntax, "array"),
            (
                body(json!([{"op": "merge", "path": "title"}])),
                ScimType::InvalidSyntax,
                "merge",
            ),
            (
                body(json!([{"path": "title"}])),
                ScimType::InvalidSyntax,
                "op",
            ),
            (body(json!([{"op": "remove"}])), ScimType::NoTarget, "path"),
            (
                body(json!([{"op": "add", "path": "title"}])),
                ScimType::InvalidValue,
                "value",
            ),
            (
                body(json!([{"op": "add", "value": "x"}])),
                ScimType::InvalidValue,
                "object",
            ),
            (
                body(json!([{"op": "add", "path": "emails[type eq", "value": "x"}])),
                ScimType::InvalidPath,
                "position",
            ),
            (
                body(json!([{"op": "add", "path": 5, "value": "x"}])),
                ScimType::InvalidPath,
                "string",
            ),
        ];
        for (request, scim_type, mentions) in cases {
            let error = parse_patch(request.clone()).expect_err("the body should be rejected");
            assert_eq!(
                error.scim_type,
                Some(scim_type),
                "body {request}: {}",
                error.detail
            );
            assert!(
                error.detail.contains(mentions),
                "body {request}: {}",
                error.detail
            );
        }
    }

    #[test]
    fn parse_limits_operation_count() {
        let operation = json!({"op": "remove", "path": "title"});
        let operations = Value::Array(vec![operation; MAX_OPERATIONS + 1]);
        let error = parse_patch(body(operations)).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(error.detail.contains("too many operations"));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-zA-Z0-9 .:\\[\\]\"$]{0,12}".prop_map(Value::String),
            prop::sample::select(vec!["True", "", "u1", "work", ENTERPRISE]).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((json_key(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn json_key() -> impl Strategy<Value = String> {
        let known = vec![
            "value",
            "type",
            "primary",
            "active",
            "title",
            "emails",
            "name.givenName",
            "members",
            "id",
            "userName",
            "displayName",
            "manager",
            "op",
            "path",
            "Operations",
        ];
        prop_oneof![
            prop::sample::select(known).prop_map(str::to_string),
            "[a-zA-Z:.]{1,8}",
            Just(format!("{ENTERPRISE}:department")),
            Just(ENTERPRISE.to_string()),
        ]
    }

    fn operation() -> impl Strategy<Value = Value> {
        let ops = prop::sample::select(vec!["add", "Remove", "REPLACE", "copy"]);
        let paths = prop::sample::select(vec![
            "title",
            "active",
            "emails",
            "emails[type eq \"work\"].value",
            "emails[value co \"a\"]",
            "name.givenName",
            "members",
            "members[value eq \"u1\"]",
            "members[type eq \"User\"]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "id",
            "groups",
            "urn:x:y:z",
            "x509Certificates.value",
            "",
        ]);
        (ops, prop::option::of(paths), prop::option::of(json_value())).prop_map(
            |(op, path, value)| {
                let mut operation = json!({"op": op});
                if let Some(path) = path {
                    operation["path"] = Value::from(path);
                }
                if let Some(value) = value {
                    operation["value"] = value;
                }
                operation
            },
        )
    }

    fn apply_any(kind: ResourceKind, request: Value) {
        let Ok(ops) = parse_patch(request) else {
            return;
        };
        let mut doc = if kind == ResourceKind::User {
            user()
        } else {
            group()
        };
        let mut members = Members::of(&["u1", "g2"]);
        let _ = apply_patch(kind, &mut doc, &ops, &mut members);
    }

    proptest! {
        #[test]
        fn patch_never_panics_on_arbitrary_json(request in json_value()) {
            apply_any(ResourceKind::User, request.clone());
            apply_any(ResourceKind::Group, request);
        }

        #[test]
        fn patch_never_panics_on_arbitrary_operations(operations in prop::collection::vec(operation(), 1..5)) {
            apply_any(ResourceKind::User, body(Value::Array(operations.clone())));
            apply_any(ResourceKind::Group, body(Value::Array(operations)));
        }
    }
}
