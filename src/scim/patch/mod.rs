//! SCIM PATCH (RFC 7644 section 3.5.2) on a stored resource document, including the forms that
//! identity providers send where they bend the RFC. Group members live outside the document and
//! change through [`MemberSet`].
//!
//! This file parses the request and dispatches each operation by its path. `target` resolves
//! a path to its place in the document, `attribute` applies an operation to one attribute or
//! sub-attribute, `filtered` applies value-filter paths such as `emails[type eq "work"]`, and
//! `members` changes Group members.

mod attribute;
mod filtered;
#[cfg(test)]
mod fixtures;
mod members;
mod target;

use serde_json::{Map, Value};

use self::target::{existing_key, Target};
use super::error::ScimError;
use super::filter::{self, AttrPath, PatchPath};
use super::resource;
use super::schema::{AttrDef, ResourceKind, SchemaDef};

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
    /// Returns a member's `display`: the user's or group's `displayName`, or a user's
    /// `userName` when it has none. Read only for filters on `display`.
    fn display(&mut self, id: &str) -> Result<Option<String>, ScimError>;
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
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::fixtures::{assert_error, body, group, patch_user, user, Members, ENTERPRISE};
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::schema;

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
    fn removing_required_attribute_rejected() {
        let result = patch_user(json!([{"op": "remove", "path": "userName"}]));
        assert_error(result, ScimType::InvalidValue, "userName");
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
