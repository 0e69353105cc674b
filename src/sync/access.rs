//! Applying a new permission policy to the organization: only groups whose grants changed
//! (by `Policy::group_fingerprint`) have their members' access recomputed.

use std::collections::{BTreeSet, HashMap};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, WriteTransaction};
use serde::Serialize;

use super::history;
use super::model::{self, OrgGroup, OrgUser};
use super::plan::{Change, Writes};
use crate::permissions::{Access, GroupRef, Policy};
use crate::store::{StoreError, ORG_ACCESS, ORG_GROUPS, ORG_MEMBERS, ORG_MEMBER_OF, ORG_USERS};

/// Summary of a permission change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Groups whose grants changed.
    pub groups_changed: u64,
    /// Users whose effective access changed; one `access_changed` event each.
    pub users_changed: u64,
    pub first_event: Option<u64>,
    pub last_event: Option<u64>,
    /// Error message from writing the export file, when that failed. The change itself was
    /// applied.
    pub export_error: Option<String>,
}

/// The rows a permission change writes.
#[derive(Debug, Default)]
pub struct PolicyPlan {
    /// Groups with their fingerprint under the new policy.
    pub groups: Vec<OrgGroup>,
    pub writes: Writes,
    pub changes: Vec<Change>,
}

/// Plans a permission change. Scans the organization's groups (never its users) and reads
/// only the members of groups whose fingerprint differs from the stored one.
pub fn plan(txn: &ReadTransaction, policy: &Policy) -> Result<PolicyPlan, StoreError> {
    let groups_table = txn.open_table(ORG_GROUPS)?;
    let mut plan = PolicyPlan::default();
    for entry in groups_table.iter()? {
        let (_, bytes) = entry?;
        let mut group: OrgGroup = model::decode(bytes.value())?;
        let fingerprint = model::fingerprint(policy, &group.attributes);
        if fingerprint != group.fingerprint {
            group.fingerprint = fingerprint;
            plan.groups.push(group);
        }
    }

    let members = txn.open_table(ORG_MEMBERS)?;
    let mut users = BTreeSet::new();
    for group in &plan.groups {
        users.extend(model::pair_range(&members, &group.id)?);
    }

    let tables = Tables::open(txn)?;
    let mut cache = HashMap::new();
    for user in users {
        let Some(record) = model::get_record::<OrgUser>(&tables.users, &user)? else {
            continue;
        };
        let after = resolve_user(&tables, policy, &record, &mut cache)?;
        let before = model::get_access(&tables.access, &user)?;
        if before == after {
            continue;
        }
        let stored = (after != Access::default()).then(|| after.clone());
        plan.writes.access.insert(user.clone(), stored);
        plan.changes.push(Change::AccessChanged {
            user,
            user_name: record.attributes.user_name,
            before,
            after,
        });
    }
    Ok(plan)
}

/// Writes the plan with one `access_changed` event per user (no run); returns the report.
pub fn apply(txn: &WriteTransaction, plan: &PolicyPlan) -> Result<PolicyReport, StoreError> {
    {
        let mut groups = txn.open_table(ORG_GROUPS)?;
        for group in &plan.groups {
            groups.insert(group.id.as_str(), model::encode(group)?.as_slice())?;
        }
    }
    super::apply::write_access(txn, &plan.writes)?;
    let (first_event, last_event) = history::write_events(txn, None, &plan.changes)?;
    Ok(PolicyReport {
        groups_changed: plan.groups.len() as u64,
        users_changed: plan.changes.len() as u64,
        first_event,
        last_event,
        export_error: None,
    })
}

struct Tables {
    users: ReadOnlyTable<&'static str, &'static [u8]>,
    groups: ReadOnlyTable<&'static str, &'static [u8]>,
    member_of: ReadOnlyTable<(&'static str, &'static str), ()>,
    access: ReadOnlyTable<&'static str, &'static [u8]>,
}

impl Tables {
    fn open(txn: &ReadTransaction) -> Result<Tables, StoreError> {
        Ok(Tables {
            users: txn.open_table(ORG_USERS)?,
            groups: txn.open_table(ORG_GROUPS)?,
            member_of: txn.open_table(ORG_MEMBER_OF)?,
            access: txn.open_table(ORG_ACCESS)?,
        })
    }
}

/// Resolves a stored user's access from their stored groups; a deactivated user has none.
fn resolve_user(
    tables: &Tables,
    policy: &Policy,
    user: &OrgUser,
    cache: &mut HashMap<String, Option<GroupRef>>,
) -> Result<Access, StoreError> {
    if !user.active {
        return Ok(Access::default());
    }
    let mut refs = Vec::new();
    for group in model::pair_range(&tables.member_of, &user.id)? {
        if !cache.contains_key(&group) {
            let record: Option<OrgGroup> = model::get_record(&tables.groups, &group)?;
            cache.insert(group.clone(), record.map(|record| record.group_ref()));
        }
        if let Some(Some(found)) = cache.get(&group) {
            refs.push(found.clone());
        }
    }
    Ok(policy.resolve(&refs))
}
