//! Organization records as stored in the `ORG_*` tables, and the helpers that read and write
//! them. Records are JSON so that a later version can add fields without a migration.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::permissions::{Access, GroupRef, Policy};
use crate::store::{StoreError, META};

/// META counters that the organization keeps, so the guard and `status` never scan.
pub const ACTIVE_USERS: &str = "org_active_users";
pub const DEACTIVATED_USERS: &str = "org_deactivated_users";
pub const GROUPS: &str = "org_groups";
/// The id of the latest sync run that applied changes.
pub const LAST_APPLIED_RUN: &str = "org_last_applied_run";
pub const RUN_SEQUENCE: &str = "sync_run_sequence";
pub const AUDIT_SEQUENCE: &str = "audit_sequence";

/// The user attributes the organization copies from the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAttributes {
    pub user_name: String,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The primary email, or the first one when none is marked primary.
    pub email: Option<String>,
}

/// One organization user. Users are never erased: a user the IdP deleted stays, deactivated,
/// with `deleted` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgUser {
    pub id: String,
    #[serde(flatten)]
    pub attributes: UserAttributes,
    pub active: bool,
    #[serde(default)]
    pub deleted: bool,
    /// Number of organization groups the user is a member of.
    #[serde(default)]
    pub group_count: u64,
    pub created: String,
    pub updated: String,
    pub deactivated: Option<String>,
}

/// The group attributes the organization copies from the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupAttributes {
    pub display_name: String,
    pub external_id: Option<String>,
}

/// One external group of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroup {
    pub id: String,
    #[serde(flatten)]
    pub attributes: GroupAttributes,
    /// Number of user members, kept here so listing groups never scans memberships.
    #[serde(default)]
    pub member_count: u64,
    /// `Policy::group_fingerprint` under the policy in force when the record was written;
    /// a policy change recomputes access only for groups whose fingerprint differs.
    #[serde(default)]
    pub fingerprint: u64,
    pub created: String,
    pub updated: String,
}

impl OrgGroup {
    pub fn group_ref(&self) -> GroupRef {
        GroupRef {
            id: self.id.clone(),
            display_name: self.attributes.display_name.clone(),
            external_id: self.attributes.external_id.clone(),
        }
    }

    pub fn is_mapped(&self, policy: &Policy) -> bool {
        policy.is_mapped(
            &self.attributes.display_name,
            self.attributes.external_id.as_deref(),
        )
    }
}

/// Computes a group's fingerprint under `policy`.
pub fn fingerprint(policy: &Policy, attributes: &GroupAttributes) -> u64 {
    policy.group_fingerprint(&attributes.display_name, attributes.external_id.as_deref())
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|error| StoreError::Storage(format!("corrupt organization record: {error}")))
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|error| StoreError::Storage(format!("cannot encode a record: {error}")))
}

/// Reads and decodes one JSON record keyed by a string.
pub fn get_record<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(id)? {
        Some(bytes) => Ok(Some(decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Reads a user's stored access, empty when the user has none.
pub fn get_access(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    user_id: &str,
) -> Result<Access, StoreError> {
    Ok(get_record(table, user_id)?.unwrap_or_default())
}

pub use crate::store::pair_range;

/// Adds `delta` to a META counter, never going below zero.
pub fn add_counter(
    meta: &mut Table<&'static str, u64>,
    key: &str,
    delta: i64,
) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    let current = crate::store::meta_get(meta, key)?;
    let next = current.saturating_add_signed(delta);
    meta.insert(key, next)?;
    Ok(())
}

/// Takes the next id from a META sequence.
pub fn next_id(txn: &WriteTransaction, key: &str) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let next = crate::store::meta_get(&meta, key)? + 1;
    meta.insert(key, next)?;
    Ok(next)
}

/// Extracts the attributes the organization keeps from a stored SCIM User document.
pub fn user_attributes(doc: &Map<String, Value>) -> UserAttributes {
    let name = doc.get("name");
    UserAttributes {
        user_name: text(doc.get("userName")).unwrap_or_default(),
        display_name: text(doc.get("displayName")),
        external_id: text(doc.get("externalId")),
        given_name: text(name.and_then(|name| name.get("givenName"))),
        family_name: text(name.and_then(|name| name.get("familyName"))),
        email: primary_email(doc),
    }
}

/// Reads the `active` attribute. An absent value counts as active, so a user provisioned
/// without the attribute gets access; the strings `"true"`/`"false"` count as booleans.
pub fn user_active(doc: &Map<String, Value>) -> bool {
    match doc.get("active") {
        Some(Value::Bool(active)) => *active,
        Some(Value::String(text)) => !text.eq_ignore_ascii_case("false"),
        _ => true,
    }
}

pub fn group_attributes(doc: &Map<String, Value>) -> GroupAttributes {
    GroupAttributes {
        display_name: text(doc.get("displayName")).unwrap_or_default(),
        external_id: text(doc.get("externalId")),
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
}

fn primary_email(doc: &Map<String, Value>) -> Option<String> {
    let emails = doc.get("emails").and_then(Value::as_array)?;
    let is_primary = |email: &&Value| {
        matches!(email.get("primary"), Some(Value::Bool(true)))
            || matches!(email.get("primary"), Some(Value::String(text)) if text.eq_ignore_ascii_case("true"))
    };
    let chosen = emails.iter().find(is_primary).or_else(|| emails.first())?;
    text(chosen.get("value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn email_prefers_primary() {
        let cases = [
            (
                json!({"emails": [{"value": "a@x"}, {"value": "b@x", "primary": true}]}),
                Some("b@x"),
            ),
            (
                json!({"emails": [{"value": "a@x"}, {"value": "b@x"}]}),
                Some("a@x"),
            ),
            (
                json!({"emails": [{"value": "a@x"}, {"value": "b@x", "primary": "True"}]}),
                Some("b@x"),
            ),
            (json!({"emails": []}), None),
            (json!({}), None),
        ];
        for (doc, expected) in cases {
            let found = primary_email(&object(doc.clone()));
            assert_eq!(found.as_deref(), expected, "{doc}");
        }
    }

    #[test]
    fn active_defaults_to_true() {
        let cases = [
            (json!({}), true),
            (json!({"active": false}), false),
            (json!({"active": "False"}), false),
            (json!({"active": true}), true),
        ];
        for (doc, expected) in cases {
            assert_eq!(user_active(&object(doc.clone())), expected, "{doc}");
        }
    }
}
