//! Planning a sync in one read snapshot. The dirty keys name what changed in the directory,
//! and only those keys are compared with the organization, so the work follows the number of
//! changes and not the size of the directory.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};
use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{self, GroupAttributes, OrgGroup, OrgUser, UserAttributes};
use crate::permissions::{Access, GroupRef, Policy};
use crate::store::{
    meta_get, StoreError, DIRTY, GROUPS, MEMBERS, MEMBER_USER, META, ORG_ACCESS, ORG_GROUPS,
    ORG_MEMBERS, ORG_MEMBER_OF, ORG_USERS, USERS,
};

/// Cause of a user's deactivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeactivationReason {
    /// The IdP set `active` to false.
    Deactivated,
    /// The IdP deleted the user.
    Deleted,
}

/// One change a sync applies; `kind` is the audit event kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    UserCreated {
        user: OrgUser,
    },
    UserUpdated {
        id: String,
        before: UserAttributes,
        after: UserAttributes,
    },
    UserDeactivated {
        id: String,
        user_name: String,
        reason: DeactivationReason,
    },
    UserReactivated {
        id: String,
        user_name: String,
    },
    GroupCreated {
        group: OrgGroup,
    },
    GroupUpdated {
        id: String,
        before: GroupAttributes,
        after: GroupAttributes,
    },
    GroupDeleted {
        id: String,
        display_name: String,
    },
    MemberAdded {
        group: String,
        group_name: String,
        user: String,
        user_name: String,
    },
    MemberRemoved {
        group: String,
        group_name: String,
        user: String,
        user_name: String,
    },
    AccessChanged {
        user: String,
        user_name: String,
        before: Access,
        after: Access,
    },
}

impl Change {
    /// Returns the audit event kind, as serialized in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::UserCreated { .. } => "user_created",
            Change::UserUpdated { .. } => "user_updated",
            Change::UserDeactivated { .. } => "user_deactivated",
            Change::UserReactivated { .. } => "user_reactivated",
            Change::GroupCreated { .. } => "group_created",
            Change::GroupUpdated { .. } => "group_updated",
            Change::GroupDeleted { .. } => "group_deleted",
            Change::MemberAdded { .. } => "member_added",
            Change::MemberRemoved { .. } => "member_removed",
            Change::AccessChanged { .. } => "access_changed",
        }
    }
}

/// A user record to write, with the lowercased `userName` its name index entry had before.
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub previous_name: Option<String>,
    pub record: OrgUser,
}

/// The organization rows a plan writes.
#[derive(Debug, Default)]
pub struct Writes {
    pub users: BTreeMap<String, UserWrite>,
    /// `None` removes the group.
    pub groups: BTreeMap<String, Option<OrgGroup>>,
    pub member_adds: BTreeSet<(String, String)>,
    pub member_removes: BTreeSet<(String, String)>,
    /// `None` removes the user's access entry.
    pub access: BTreeMap<String, Option<Access>>,
    pub active_users_delta: i64,
    pub deactivated_users_delta: i64,
    pub groups_delta: i64,
}

/// Removal counts that the guard compares with the organization's size before the sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removals {
    pub users_deactivated: u64,
    pub active_users: u64,
    pub groups_deleted: u64,
    pub groups: u64,
}

/// The changes from one snapshot, and the dirty keys (with sequence numbers) they cover.
#[derive(Debug, Default)]
pub struct Plan {
    pub dirty: Vec<(String, u64)>,
    pub changes: Vec<Change>,
    pub writes: Writes,
    pub removals: Removals,
}

/// Builds the plan for everything marked dirty in `txn`.
pub fn build(txn: &ReadTransaction, policy: &Policy) -> Result<Plan, StoreError> {
    let mut planner = Planner::open(txn, policy)?;
    let dirty = read_dirty(txn)?;

    for (key, _) in &dirty {
        if let Some(id) = key.strip_prefix("u:") {
            planner.plan_user(id)?;
        }
    }
    for (key, _) in &dirty {
        if let Some(id) = key.strip_prefix("g:") {
            planner.plan_group(id)?;
        }
    }
    for (key, _) in &dirty {
        let pair = key.strip_prefix("m:").and_then(|rest| rest.split_once(':'));
        if let Some((group, user)) = pair {
            planner.plan_member(group, user)?;
        }
    }

    planner.finish(dirty)
}

fn read_dirty(txn: &ReadTransaction) -> Result<Vec<(String, u64)>, StoreError> {
    let table = txn.open_table(DIRTY)?;
    let mut dirty = Vec::new();
    for entry in table.iter()? {
        let (key, sequence) = entry?;
        dirty.push((key.value().to_string(), sequence.value()));
    }
    Ok(dirty)
}

fn read_document(
    table: &ReadOnlyTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Map<String, Value>>, StoreError> {
    model::get_record(table, id)
}

struct Planner<'a> {
    policy: &'a Policy,
    now: String,
    directory_users: ReadOnlyTable<&'static str, &'static [u8]>,
    directory_groups: ReadOnlyTable<&'static str, &'static [u8]>,
    directory_members: ReadOnlyTable<(&'static str, &'static str), u8>,
    users: ReadOnlyTable<&'static str, &'static [u8]>,
    groups: ReadOnlyTable<&'static str, &'static [u8]>,
    members: ReadOnlyTable<(&'static str, &'static str), ()>,
    member_of: ReadOnlyTable<(&'static str, &'static str), ()>,
    access: ReadOnlyTable<&'static str, &'static [u8]>,
    plan: Plan,
    /// Users whose effective access must be recomputed.
    affected_users: BTreeSet<String>,
    /// Groups whose new attributes may change what their members get.
    affected_groups: BTreeSet<String>,
    group_counts: HashMap<String, i64>,
    member_counts: HashMap<String, i64>,
}

impl<'a> Planner<'a> {
    fn open(txn: &ReadTransaction, policy: &'a Policy) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let removals = Removals {
            active_users: meta_get(&meta, model::ACTIVE_USERS)?,
            groups: meta_get(&meta, model::GROUPS)?,
            ..Removals::default()
        };
        Ok(Planner {
            policy,
            now: crate::store::now_rfc3339(),
            directory_users: txn.open_table(USERS)?,
            directory_groups: txn.open_table(GROUPS)?,
            directory_members: txn.open_table(MEMBERS)?,
            users: txn.open_table(ORG_USERS)?,
            groups: txn.open_table(ORG_GROUPS)?,
            members: txn.open_table(ORG_MEMBERS)?,
            member_of: txn.open_table(ORG_MEMBER_OF)?,
            access: txn.open_table(ORG_ACCESS)?,
            plan: Plan {
                removals,
                ..Plan::default()
            },
            affected_users: BTreeSet::new(),
            affected_groups: BTreeSet::new(),
            group_counts: HashMap::new(),
            member_counts: HashMap::new(),
        })
    }

    /// The user as it will be after the plan, `None` when the organization has no such user.
    fn user_after(&self, id: &str) -> Result<Option<OrgUser>, StoreError> {
        match self.plan.writes.users.get(id) {
            Some(write) => Ok(Some(write.record.clone())),
            None => model::get_record(&self.users, id),
        }
    }

    fn group_after(&self, id: &str) -> Result<Option<OrgGroup>, StoreError> {
        match self.plan.writes.groups.get(id) {
            Some(planned) => Ok(planned.clone()),
            None => model::get_record(&self.groups, id),
        }
    }

    fn put_user(&mut self, previous: Option<&OrgUser>, record: OrgUser) {
        let previous_name = previous.map(|user| user.attributes.user_name.to_lowercase());
        let previous_name = match self.plan.writes.users.get(&record.id) {
            Some(write) => write.previous_name.clone(),
            None => previous_name,
        };
        let write = UserWrite {
            previous_name,
            record,
        };
        self.plan
            .writes
            .users
            .insert(write.record.id.clone(), write);
    }

    fn plan_user(&mut self, id: &str) -> Result<(), StoreError> {
        let document = read_document(&self.directory_users, id)?;
        let existing: Option<OrgUser> = model::get_record(&self.users, id)?;
        match (document, existing) {
            (Some(document), None) => self.create_user(id, &document),
            (Some(document), Some(existing)) => self.update_user(&document, existing),
            (None, Some(existing)) => self.delete_user(existing),
            (None, None) => Ok(()),
        }
    }

    fn create_user(&mut self, id: &str, document: &Map<String, Value>) -> Result<(), StoreError> {
        let active = model::user_active(document);
        let record = OrgUser {
            id: id.to_string(),
            attributes: model::user_attributes(document),
            active,
            deleted: false,
            group_count: 0,
            created: self.now.clone(),
            updated: self.now.clone(),
            deactivated: (!active).then(|| self.now.clone()),
        };
        if active {
            self.plan.writes.active_users_delta += 1;
        } else {
            self.plan.writes.deactivated_users_delta += 1;
        }
        self.plan.changes.push(Change::UserCreated {
            user: record.clone(),
        });
        self.put_user(None, record);
        Ok(())
    }

    fn update_user(
        &mut self,
        document: &Map<String, Value>,
        existing: OrgUser,
    ) -> Result<(), StoreError> {
        let mut record = existing.clone();
        let attributes = model::user_attributes(document);
        if attributes != existing.attributes {
            self.plan.changes.push(Change::UserUpdated {
                id: existing.id.clone(),
                before: existing.attributes.clone(),
                after: attributes.clone(),
            });
            record.attributes = attributes;
        }

        let active = model::user_active(document);
        if active && !existing.active {
            self.reactivate(&mut record);
        } else if !active && existing.active {
            self.deactivate(&mut record, DeactivationReason::Deactivated);
        }

        if record != existing {
            record.updated = self.now.clone();
            self.put_user(Some(&existing), record);
        }
        Ok(())
    }

    fn reactivate(&mut self, record: &mut OrgUser) {
        record.active = true;
        record.deleted = false;
        record.deactivated = None;
        self.plan.writes.active_users_delta += 1;
        self.plan.writes.deactivated_users_delta -= 1;
        self.affected_users.insert(record.id.clone());
        self.plan.changes.push(Change::UserReactivated {
            id: record.id.clone(),
            user_name: record.attributes.user_name.clone(),
        });
    }

    fn deactivate(&mut self, record: &mut OrgUser, reason: DeactivationReason) {
        if record.active {
            self.plan.removals.users_deactivated += 1;
            self.plan.writes.active_users_delta -= 1;
            self.plan.writes.deactivated_users_delta += 1;
            record.deactivated = Some(self.now.clone());
        }
        record.active = false;
        record.deleted |= reason == DeactivationReason::Deleted;
        self.affected_users.insert(record.id.clone());
        self.plan.changes.push(Change::UserDeactivated {
            id: record.id.clone(),
            user_name: record.attributes.user_name.clone(),
            reason,
        });
    }

    /// Deactivates a user the IdP deleted and drops their memberships; the record stays so the
    /// history still names them.
    fn delete_user(&mut self, existing: OrgUser) -> Result<(), StoreError> {
        if existing.deleted {
            return Ok(());
        }
        let mut record = existing.clone();
        self.deactivate(&mut record, DeactivationReason::Deleted);
        record.updated = self.now.clone();
        self.put_user(Some(&existing), record);

        for group in model::pair_range(&self.member_of, &existing.id)? {
            self.remove_member(&group, &existing.id)?;
        }
        Ok(())
    }

    fn plan_group(&mut self, id: &str) -> Result<(), StoreError> {
        let document = read_document(&self.directory_groups, id)?;
        let existing: Option<OrgGroup> = model::get_record(&self.groups, id)?;
        match (document, existing) {
            (Some(document), None) => {
                self.create_group(id, &document);
                Ok(())
            }
            (Some(document), Some(existing)) => {
                self.update_group(&document, existing);
                Ok(())
            }
            (None, Some(existing)) => self.delete_group(existing),
            (None, None) => Ok(()),
        }
    }

    fn create_group(&mut self, id: &str, document: &Map<String, Value>) {
        let attributes = model::group_attributes(document);
        let record = OrgGroup {
            id: id.to_string(),
            fingerprint: model::fingerprint(self.policy, &attributes),
            attributes,
            member_count: 0,
            created: self.now.clone(),
            updated: self.now.clone(),
        };
        self.plan.writes.groups_delta += 1;
        self.plan.changes.push(Change::GroupCreated {
            group: record.clone(),
        });
        self.plan.writes.groups.insert(id.to_string(), Some(record));
    }

    /// Applies a rename or a new `externalId`. Members' access is recomputed when the group's
    /// grants changed, or when it is mapped, since each grant in a member's access names the
    /// group's display name.
    fn update_group(&mut self, document: &Map<String, Value>, existing: OrgGroup) {
        let attributes = model::group_attributes(document);
        if attributes == existing.attributes {
            return;
        }
        let mut record = existing.clone();
        record.fingerprint = model::fingerprint(self.policy, &attributes);
        record.attributes = attributes.clone();
        record.updated = self.now.clone();
        if record.fingerprint != existing.fingerprint || record.is_mapped(self.policy) {
            self.affected_groups.insert(existing.id.clone());
        }
        self.plan.changes.push(Change::GroupUpdated {
            id: existing.id.clone(),
            before: existing.attributes.clone(),
            after: attributes,
        });
        self.plan
            .writes
            .groups
            .insert(existing.id.clone(), Some(record));
    }

    fn delete_group(&mut self, existing: OrgGroup) -> Result<(), StoreError> {
        self.plan.removals.groups_deleted += 1;
        self.plan.writes.groups_delta -= 1;
        self.plan.changes.push(Change::GroupDeleted {
            id: existing.id.clone(),
            display_name: existing.attributes.display_name.clone(),
        });
        for user in model::pair_range(&self.members, &existing.id)? {
            self.remove_member(&existing.id, &user)?;
        }
        self.plan.writes.groups.insert(existing.id.clone(), None);
        Ok(())
    }

    /// Only user members count: a member recorded as a group in the directory is ignored.
    fn plan_member(&mut self, group: &str, user: &str) -> Result<(), StoreError> {
        let listed = self
            .directory_members
            .get((group, user))?
            .map(|kind| kind.value());
        let present = self.members.get((group, user))?.is_some();
        let pair = (group.to_string(), user.to_string());
        let desired = listed == Some(MEMBER_USER)
            && self.user_after(user)?.is_some()
            && self.group_after(group)?.is_some();

        if desired && !present && !self.plan.writes.member_adds.contains(&pair) {
            self.add_member(group, user)?;
        } else if !desired && present {
            self.remove_member(group, user)?;
        }
        Ok(())
    }

    fn add_member(&mut self, group: &str, user: &str) -> Result<(), StoreError> {
        let change = Change::MemberAdded {
            group: group.to_string(),
            group_name: self.group_name(group)?,
            user: user.to_string(),
            user_name: self.user_name(user)?,
        };
        self.plan.changes.push(change);
        self.plan
            .writes
            .member_adds
            .insert((group.to_string(), user.to_string()));
        self.count_membership(group, user, 1);
        Ok(())
    }

    /// Removes an organization membership once, however many paths lead to it.
    fn remove_member(&mut self, group: &str, user: &str) -> Result<(), StoreError> {
        let pair = (group.to_string(), user.to_string());
        if self.plan.writes.member_removes.contains(&pair) {
            return Ok(());
        }
        let change = Change::MemberRemoved {
            group: group.to_string(),
            group_name: self.group_name(group)?,
            user: user.to_string(),
            user_name: self.user_name(user)?,
        };
        self.plan.changes.push(change);
        self.plan.writes.member_removes.insert(pair);
        self.count_membership(group, user, -1);
        Ok(())
    }

    fn count_membership(&mut self, group: &str, user: &str, delta: i64) {
        *self.group_counts.entry(user.to_string()).or_default() += delta;
        *self.member_counts.entry(group.to_string()).or_default() += delta;
        self.affected_users.insert(user.to_string());
    }

    /// Returns the group's name before any rename in this plan, else the planned record's.
    fn group_name(&self, id: &str) -> Result<String, StoreError> {
        let stored: Option<OrgGroup> = model::get_record(&self.groups, id)?;
        let group = match stored {
            Some(group) => Some(group),
            None => self.group_after(id)?,
        };
        Ok(group
            .map(|group| group.attributes.display_name)
            .unwrap_or_default())
    }

    fn user_name(&self, id: &str) -> Result<String, StoreError> {
        let user = self.user_after(id)?;
        Ok(user
            .map(|user| user.attributes.user_name)
            .unwrap_or_default())
    }

    fn finish(mut self, dirty: Vec<(String, u64)>) -> Result<Plan, StoreError> {
        self.collect_group_members()?;
        self.apply_member_counts()?;
        self.apply_group_counts()?;
        self.recompute_access()?;
        self.plan.dirty = dirty;
        Ok(self.plan)
    }

    /// Adds the members of every affected group (after this plan's membership changes).
    fn collect_group_members(&mut self) -> Result<(), StoreError> {
        let groups: Vec<String> = self.affected_groups.iter().cloned().collect();
        for group in groups {
            for user in model::pair_range(&self.members, &group)? {
                let pair = (group.clone(), user);
                if !self.plan.writes.member_removes.contains(&pair) {
                    self.affected_users.insert(pair.1);
                }
            }
        }
        let added = self.plan.writes.member_adds.iter();
        let users: Vec<String> = added
            .filter(|(group, _)| self.affected_groups.contains(group))
            .map(|(_, user)| user.clone())
            .collect();
        self.affected_users.extend(users);
        Ok(())
    }

    fn apply_member_counts(&mut self) -> Result<(), StoreError> {
        let counts: Vec<(String, i64)> = self.member_counts.drain().collect();
        for (group, delta) in counts {
            if delta == 0 {
                continue;
            }
            if let Some(mut record) = self.group_after(&group)? {
                record.member_count = record.member_count.saturating_add_signed(delta);
                self.plan.writes.groups.insert(group, Some(record));
            }
        }
        Ok(())
    }

    fn apply_group_counts(&mut self) -> Result<(), StoreError> {
        let counts: Vec<(String, i64)> = self.group_counts.drain().collect();
        for (user, delta) in counts {
            if delta == 0 {
                continue;
            }
            let stored: Option<OrgUser> = model::get_record(&self.users, &user)?;
            if let Some(mut record) = self.user_after(&user)? {
                record.group_count = record.group_count.saturating_add_signed(delta);
                self.put_user(stored.as_ref(), record);
            }
        }
        Ok(())
    }

    /// Recomputes the access of every affected user; a deactivated user has none.
    fn recompute_access(&mut self) -> Result<(), StoreError> {
        let mut adds: HashMap<&str, Vec<&str>> = HashMap::new();
        for (group, user) in &self.plan.writes.member_adds {
            adds.entry(user.as_str()).or_default().push(group.as_str());
        }
        let mut group_refs: HashMap<String, Option<GroupRef>> = HashMap::new();
        let mut changes = Vec::new();

        for user in &self.affected_users {
            let Some(record) = self.user_after(user)? else {
                continue;
            };
            let mut groups: BTreeSet<String> = model::pair_range(&self.member_of, user)?
                .into_iter()
                .filter(|group| {
                    !self
                        .plan
                        .writes
                        .member_removes
                        .contains(&(group.clone(), user.clone()))
                })
                .collect();
            groups.extend(
                adds.get(user.as_str())
                    .into_iter()
                    .flatten()
                    .map(|group| group.to_string()),
            );

            let after = if record.active {
                let refs = self.group_refs(&groups, &mut group_refs)?;
                self.policy.resolve(&refs)
            } else {
                Access::default()
            };
            let before = model::get_access(&self.access, user)?;
            if before != after {
                changes.push((record, before, after));
            }
        }

        for (record, before, after) in changes {
            let stored = (after != Access::default()).then(|| after.clone());
            self.plan.writes.access.insert(record.id.clone(), stored);
            self.plan.changes.push(Change::AccessChanged {
                user: record.id,
                user_name: record.attributes.user_name,
                before,
                after,
            });
        }
        Ok(())
    }

    fn group_refs(
        &self,
        groups: &BTreeSet<String>,
        cache: &mut HashMap<String, Option<GroupRef>>,
    ) -> Result<Vec<GroupRef>, StoreError> {
        let mut refs = Vec::with_capacity(groups.len());
        for group in groups {
            if !cache.contains_key(group) {
                let found = self.group_after(group)?.map(|record| record.group_ref());
                cache.insert(group.clone(), found);
            }
            if let Some(Some(found)) = cache.get(group) {
                refs.push(found.clone());
            }
        }
        Ok(refs)
    }
}
