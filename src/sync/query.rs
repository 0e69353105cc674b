//! Read-only views of the organization for the control socket and the CLI. Each one reads a
//! single snapshot, so it never waits for a sync.

use std::collections::BTreeSet;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::history::{self, EventFilter, EventPage, SyncRun};
use super::model::{self, OrgGroup, OrgUser};
use crate::permissions::{AccessGrant, Policy};
use crate::store::{
    meta_get, Store, StoreError, DIRTY, META, ORG_ACCESS, ORG_GROUPS, ORG_MEMBER_OF, ORG_USERS,
    ORG_USER_BY_NAME,
};

/// Organization counts, pending directory changes and the newest run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub active_users: u64,
    pub deactivated_users: u64,
    pub groups: u64,
    /// Groups that no grant names, so they give their members nothing.
    pub unmapped_groups: u64,
    /// Directory keys changed since the last sync that applied them.
    pub pending_changes: u64,
    pub last_run: Option<SyncRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    pub id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
    pub active: bool,
    /// Number of groups the user is a member of.
    pub groups: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    pub id: String,
    #[serde(rename = "displayName")]
    pub display_name: String,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    /// Number of user members.
    pub members: u64,
    /// Roles the group's grants give, sorted.
    pub roles: Vec<String>,
    pub unmapped: bool,
}

/// A group as named in an access report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupName {
    pub id: String,
    pub name: String,
}

/// The user an access report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserName {
    pub id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
}

/// A user's effective access with the grants it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessReport {
    pub user: UserName,
    pub active: bool,
    pub groups: Vec<GroupName>,
    pub roles: BTreeSet<String>,
    pub permissions: BTreeSet<String>,
    pub grants: Vec<AccessGrant>,
}

pub fn status(store: &Store, policy: &Policy) -> Result<Status, StoreError> {
    let txn = store.read()?;
    let meta = txn.open_table(META)?;
    let mut unmapped_groups = 0;
    for entry in txn.open_table(ORG_GROUPS)?.iter()? {
        let (_, bytes) = entry?;
        let group: OrgGroup = model::decode(bytes.value())?;
        if !group.is_mapped(policy) {
            unmapped_groups += 1;
        }
    }
    Ok(Status {
        active_users: meta_get(&meta, model::ACTIVE_USERS)?,
        deactivated_users: meta_get(&meta, model::DEACTIVATED_USERS)?,
        groups: meta_get(&meta, model::GROUPS)?,
        unmapped_groups,
        pending_changes: txn.open_table(DIRTY)?.len()?,
        last_run: history::last_run(&txn)?,
    })
}

/// Lists every organization user (deactivated ones included) in id order.
pub fn users(store: &Store) -> Result<Vec<UserSummary>, StoreError> {
    let txn = store.read()?;
    let mut found = Vec::new();
    for entry in txn.open_table(ORG_USERS)?.iter()? {
        let (_, bytes) = entry?;
        let user: OrgUser = model::decode(bytes.value())?;
        found.push(UserSummary {
            id: user.id,
            user_name: user.attributes.user_name,
            display_name: user.attributes.display_name,
            active: user.active,
            groups: user.group_count,
        });
    }
    Ok(found)
}

/// Lists every external group in id order with its mapping under `policy`.
pub fn groups(store: &Store, policy: &Policy) -> Result<Vec<GroupSummary>, StoreError> {
    let txn = store.read()?;
    let mut found = Vec::new();
    for entry in txn.open_table(ORG_GROUPS)?.iter()? {
        let (_, bytes) = entry?;
        let group: OrgGroup = model::decode(bytes.value())?;
        let roles = group_roles(policy, &group);
        found.push(GroupSummary {
            unmapped: roles.is_empty(),
            roles,
            members: group.member_count,
            id: group.id,
            display_name: group.attributes.display_name,
            external_id: group.attributes.external_id,
        });
    }
    Ok(found)
}

/// Roles that `policy` grants a group, sorted and without duplicates.
pub fn group_roles(policy: &Policy, group: &OrgGroup) -> Vec<String> {
    let attributes = &group.attributes;
    let grants =
        policy.grants_for_group(&attributes.display_name, attributes.external_id.as_deref());
    let roles: BTreeSet<String> = grants
        .iter()
        .map(|grant| grant.role().to_string())
        .collect();
    roles.into_iter().collect()
}

/// Finds an organization user by id, or else by `userName` (case-insensitive).
fn find_user(txn: &ReadTransaction, user: &str) -> Result<Option<OrgUser>, StoreError> {
    let users = txn.open_table(ORG_USERS)?;
    let mut record: Option<OrgUser> = model::get_record(&users, user)?;
    if record.is_none() {
        let names = txn.open_table(ORG_USER_BY_NAME)?;
        let id = names
            .get(user.to_lowercase().as_str())?
            .map(|id| id.value().to_string());
        if let Some(id) = id {
            record = model::get_record(&users, &id)?;
        }
    }
    Ok(record)
}

/// Lists audit events newest first (see [`history::events`]). Returns `None` when
/// `filter.user` names no organization user.
pub fn events(store: &Store, filter: &EventFilter) -> Result<Option<EventPage>, StoreError> {
    let txn = store.read()?;
    let user_id = match &filter.user {
        Some(user) => match find_user(&txn, user)? {
            Some(record) => Some(record.id),
            None => return Ok(None),
        },
        None => None,
    };
    history::events(&txn, filter, user_id.as_deref()).map(Some)
}

/// Reports a user's access; `user` is an id or a `userName` (case-insensitive).
pub fn access(store: &Store, user: &str) -> Result<Option<AccessReport>, StoreError> {
    let txn = store.read()?;
    let Some(record) = find_user(&txn, user)? else {
        return Ok(None);
    };

    let groups_table = txn.open_table(ORG_GROUPS)?;
    let mut groups = Vec::new();
    for group in model::pair_range(&txn.open_table(ORG_MEMBER_OF)?, &record.id)? {
        let found: Option<OrgGroup> = model::get_record(&groups_table, &group)?;
        let name = found
            .map(|found| found.attributes.display_name)
            .unwrap_or_default();
        groups.push(GroupName { id: group, name });
    }
    let access = model::get_access(&txn.open_table(ORG_ACCESS)?, &record.id)?;

    Ok(Some(AccessReport {
        user: UserName {
            id: record.id,
            user_name: record.attributes.user_name,
            display_name: record.attributes.display_name,
        },
        active: record.active,
        groups,
        roles: access.roles,
        permissions: access.permissions,
        grants: access.grants,
    }))
}
