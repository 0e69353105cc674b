//! Fixtures shared by the PATCH tests: an in-memory `MemberSet`, sample documents and helpers
//! that parse and apply a request as the store does.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::{apply_patch, parse_patch, MemberSet, PATCH_OP_SCHEMA};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::schema::{self, ResourceKind};

pub(super) const ENTERPRISE: &str = schema::ENTERPRISE_USER_SCHEMA;

/// Members in memory; ids starting with `unknown` are neither users nor groups.
#[derive(Debug, Default, Clone)]
pub(super) struct Members(BTreeSet<String>);

impl Members {
    pub(super) fn of(ids: &[&str]) -> Members {
        Members(ids.iter().map(|id| id.to_string()).collect())
    }

    pub(super) fn ids(&self) -> Vec<&str> {
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

    fn display(&mut self, id: &str) -> Result<Option<String>, ScimError> {
        Ok(self.0.contains(id).then(|| format!("Member {id}")))
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

pub(super) fn user() -> Map<String, Value> {
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

pub(super) fn group() -> Map<String, Value> {
    object(json!({
        "schemas": [schema::GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Ops",
        "meta": {"resourceType": "Group"},
    }))
}

pub(super) fn body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
}

/// Parses and applies `operations` to a copy of `doc`, as the store does.
pub(super) fn patch(
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

pub(super) fn patch_user(operations: Value) -> Result<Map<String, Value>, ScimError> {
    patch(
        ResourceKind::User,
        &user(),
        &mut Members::default(),
        operations,
    )
}

pub(super) fn patch_group(
    members: &mut Members,
    operations: Value,
) -> Result<Map<String, Value>, ScimError> {
    patch(ResourceKind::Group, &group(), members, operations)
}

pub(super) fn assert_error(
    result: Result<Map<String, Value>, ScimError>,
    scim_type: ScimType,
    mentions: &str,
) {
    let error = result.expect_err("the request should be rejected");
    assert_eq!(error.status, 400);
    assert_eq!(error.scim_type, Some(scim_type), "detail: {}", error.detail);
    assert!(error.detail.contains(mentions), "detail: {}", error.detail);
}
