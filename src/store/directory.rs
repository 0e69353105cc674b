//! The SCIM directory in redb: users and groups as documents, their `eq` indexes, group
//! memberships in two tables, and the dirty keys that tell the sync what changed. Every write
//! here runs inside a writer job, checks everything first and only then writes, so a rejected
//! request changes nothing.

use std::collections::BTreeSet;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde_json::{json, Map, Value};

use super::*;
use crate::scim::error::ScimError;
use crate::scim::patch::{self, MemberSet, PatchOp};
use crate::scim::resource::{self, Incoming};
use crate::scim::schema::ResourceKind;

impl From<StoreError> for ScimError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failure during a SCIM request");
        if error.is_unavailable() {
            return ScimError::new(503, None, "the store is reopening after a storage error or shutting down; retry shortly");
        }
        ScimError::internal("the server could not complete the request because of a storage failure; retry later")
    }
}

impl From<redb::StorageError> for ScimError {
    fn from(error: redb::StorageError) -> Self {
        StoreError::from(error).into()
    }
}

impl From<redb::TableError> for ScimError {
    fn from(error: redb::TableError) -> Self {
        StoreError::from(error).into()
    }
}

impl super::writer::JobError for ScimError {
    fn aborts(&self) -> bool {
        self.status >= 500
    }
}

fn table(kind: ResourceKind) -> TableDefinition<'static, &'static str, &'static [u8]> {
    match kind {
        ResourceKind::User => USERS,
        ResourceKind::Group => GROUPS,
    }
}

pub fn resource_type(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "User",
        ResourceKind::Group => "Group",
    }
}

fn not_found(kind: ResourceKind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id:?} not found", resource_type(kind)))
}

fn decode(bytes: &[u8]) -> Result<Map<String, Value>, ScimError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Storage(format!("corrupt document: {error}")).into())
}

fn encode(doc: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap_or_default()
}

/// Reads one stored document.
pub fn get_doc(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Map<String, Value>>, ScimError> {
    match table.get(id)? {
        Some(bytes) => Ok(Some(decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// The weak entity tag of a stored document, as `W/"N"`.
pub fn version_of(doc: &Map<String, Value>) -> &str {
    doc.get("meta").and_then(|meta| meta.get("version")).and_then(Value::as_str).unwrap_or("")
}

fn version_number(doc: &Map<String, Value>) -> u64 {
    version_of(doc)
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap_or(0)
}

/// Checks an `If-Match` header value against the stored version (weak comparison, RFC 7232
/// section 2.3.2); `*` matches any existing resource.
pub fn check_if_match(doc: &Map<String, Value>, if_match: Option<&str>) -> Result<(), ScimError> {
    let Some(if_match) = if_match else { return Ok(()) };
    let current = version_of(doc).trim_start_matches("W/");
    let matched = if_match.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.trim_start_matches("W/") == current
    });
    if matched {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {if_match} does not match the current version {}",
            version_of(doc)
        )))
    }
}

fn set_meta(kind: ResourceKind, doc: &mut Map<String, Value>, previous: Option<&Map<String, Value>>) {
    let now = now_rfc3339();
    let created = previous
        .and_then(|previous| previous.get("meta"))
        .and_then(|meta| meta.get("created"))
        .cloned()
        .unwrap_or_else(|| Value::from(now.clone()));
    let version = previous.map(version_number).unwrap_or(0) + 1;
    doc.insert(
        "meta".to_string(),
        json!({
            "resourceType": resource_type(kind),
            "created": created,
            "lastModified": now,
            "version": format!("W/\"{version}\""),
        }),
    );
}

/// Records that `key` changed, so the next sync looks at it.
pub fn mark_dirty(txn: &WriteTransaction, key: &str) -> Result<(), ScimError> {
    let mut meta = txn.open_table(META)?;
    let sequence = meta_get(&meta, "dirty_sequence")? + 1;
    meta.insert("dirty_sequence", sequence)?;
    txn.open_table(DIRTY)?.insert(key, sequence)?;
    Ok(())
}

fn member_key(group_id: &str, user_id: &str) -> String {
    format!("m:{group_id}:{user_id}")
}

fn string_attr<'a>(doc: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    doc.get(name).and_then(Value::as_str).filter(|value| !value.is_empty())
}

/// Index entries of a document: (unique name key, external id, lowercased display name).
struct IndexKeys {
    name: Option<String>,
    external_id: Option<String>,
    display_name: Option<String>,
}

fn index_keys(kind: ResourceKind, doc: &Map<String, Value>) -> IndexKeys {
    let name_attr = match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    };
    IndexKeys {
        name: string_attr(doc, name_attr).map(str::to_lowercase),
        external_id: string_attr(doc, "externalId").map(str::to_string),
        display_name: match kind {
            ResourceKind::User => string_attr(doc, "displayName").map(str::to_lowercase),
            ResourceKind::Group => None,
        },
    }
}

fn name_index(kind: ResourceKind) -> TableDefinition<'static, &'static str, &'static str> {
    match kind {
        ResourceKind::User => USER_BY_NAME,
        ResourceKind::Group => GROUP_BY_NAME,
    }
}

fn external_id_index(kind: ResourceKind) -> MultimapTableDefinition<'static, &'static str, &'static str> {
    match kind {
        ResourceKind::User => USER_BY_EXTERNAL_ID,
        ResourceKind::Group => GROUP_BY_EXTERNAL_ID,
    }
}

/// Rejects a unique name (`userName`, group `displayName`) that another resource holds.
fn check_unique(txn: &WriteTransaction, kind: ResourceKind, id: &str, doc: &Map<String, Value>) -> Result<(), ScimError> {
    let Some(name) = index_keys(kind, doc).name else { return Ok(()) };
    let index = txn.open_table(name_index(kind))?;
    if let Some(holder) = index.get(name.as_str())? {
        if holder.value() != id {
            let attribute = match kind {
                ResourceKind::User => "userName",
                ResourceKind::Group => "displayName",
            };
            // The index key is case-folded; the message quotes the name as the client sent it.
            let sent = doc.get(attribute).and_then(Value::as_str).unwrap_or(name.as_str());
            return Err(ScimError::uniqueness(format!(
                "{attribute} {sent:?} is already taken by {} {} (names are unique without regard to case)",
                resource_type(kind),
                holder.value()
            )));
        }
    }
    Ok(())
}

fn update_indexes(
    txn: &WriteTransaction,
    kind: ResourceKind,
    id: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> Result<(), ScimError> {
    let old = old.map(|doc| index_keys(kind, doc));
    let new = new.map(|doc| index_keys(kind, doc));
    let old_name = old.as_ref().and_then(|keys| keys.name.clone());
    let new_name = new.as_ref().and_then(|keys| keys.name.clone());
    if old_name != new_name {
        let mut index = txn.open_table(name_index(kind))?;
        if let Some(name) = &old_name {
            index.remove(name.as_str())?;
        }
        if let Some(name) = &new_name {
            index.insert(name.as_str(), id)?;
        }
    }
    let old_external = old.as_ref().and_then(|keys| keys.external_id.clone());
    let new_external = new.as_ref().and_then(|keys| keys.external_id.clone());
    if old_external != new_external {
        let mut index = txn.open_multimap_table(external_id_index(kind))?;
        if let Some(value) = &old_external {
            index.remove(value.as_str(), id)?;
        }
        if let Some(value) = &new_external {
            index.insert(value.as_str(), id)?;
        }
    }
    let old_display = old.as_ref().and_then(|keys| keys.display_name.clone());
    let new_display = new.as_ref().and_then(|keys| keys.display_name.clone());
    if old_display != new_display {
        let mut index = txn.open_multimap_table(USER_BY_DISPLAY_NAME)?;
        if let Some(value) = &old_display {
            index.remove(value.as_str(), id)?;
        }
        if let Some(value) = &new_display {
            index.insert(value.as_str(), id)?;
        }
    }
    Ok(())
}

fn dirty_key(kind: ResourceKind, id: &str) -> String {
    match kind {
        ResourceKind::User => format!("u:{id}"),
        ResourceKind::Group => format!("g:{id}"),
    }
}

fn write_doc(
    txn: &WriteTransaction,
    kind: ResourceKind,
    id: &str,
    old: Option<&Map<String, Value>>,
    doc: &Map<String, Value>,
) -> Result<(), ScimError> {
    update_indexes(txn, kind, id, old, Some(doc))?;
    txn.open_table(table(kind))?.insert(id, encode(doc).as_slice())?;
    mark_dirty(txn, &dirty_key(kind, id))
}

/// Bumps a resource's version and `lastModified` when something outside its document changed:
/// a group's members, or the groups a user belongs to (its `groups` attribute). Documents stay
/// small because memberships live in their own tables, so this costs the same for any group
/// size. A missing resource is skipped.
fn touch(txn: &WriteTransaction, kind: ResourceKind, id: &str) -> Result<(), ScimError> {
    let mut resources = txn.open_table(table(kind))?;
    let Some(mut doc) = get_doc(&resources, id)? else { return Ok(()) };
    let previous = doc.clone();
    set_meta(kind, &mut doc, Some(&previous));
    resources.insert(id, encode(&doc).as_slice())?;
    Ok(())
}

/// Group memberships as a patch sees them: the stored members with this request's changes
/// laid over them, written only by `commit`.
pub struct StagedMembers<'a> {
    txn: &'a WriteTransaction,
    group_id: String,
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
    cleared: bool,
}

impl<'a> StagedMembers<'a> {
    pub fn new(txn: &'a WriteTransaction, group_id: &str) -> Self {
        StagedMembers { txn, group_id: group_id.to_string(), added: BTreeSet::new(), removed: BTreeSet::new(), cleared: false }
    }

    fn stored(&self, id: &str) -> Result<bool, ScimError> {
        let members = self.txn.open_table(MEMBERS)?;
        let stored = members.get((self.group_id.as_str(), id))?.is_some();
        Ok(stored)
    }

    fn member_kind(&self, id: &str) -> Result<Option<u8>, ScimError> {
        if self.txn.open_table(USERS)?.get(id)?.is_some() {
            return Ok(Some(MEMBER_USER));
        }
        if self.txn.open_table(GROUPS)?.get(id)?.is_some() {
            return Ok(Some(MEMBER_GROUP));
        }
        Ok(None)
    }

    /// Whether this request changes any membership.
    pub fn changed(&self) -> bool {
        self.cleared || !self.added.is_empty() || !self.removed.is_empty()
    }

    /// Writes the staged changes to both membership tables and marks each one dirty.
    pub fn commit(self) -> Result<(), ScimError> {
        let mut removed = self.removed.clone();
        if self.cleared {
            removed.extend(read_member_ids(&self.txn.open_table(MEMBERS)?, &self.group_id)?);
        }
        let mut members = self.txn.open_table(MEMBERS)?;
        let mut member_of = self.txn.open_table(MEMBER_OF)?;
        for member in &removed {
            if self.added.contains(member) {
                continue;
            }
            members.remove((self.group_id.as_str(), member.as_str()))?;
            member_of.remove((member.as_str(), self.group_id.as_str()))?;
        }
        let mut kinds = Vec::with_capacity(self.added.len());
        for member in &self.added {
            kinds.push(self.member_kind(member)?.unwrap_or(MEMBER_USER));
        }
        for (member, kind) in self.added.iter().zip(kinds) {
            members.insert((self.group_id.as_str(), member.as_str()), kind)?;
            member_of.insert((member.as_str(), self.group_id.as_str()), ())?;
        }
        drop(members);
        drop(member_of);
        for member in removed.iter().chain(self.added.iter()) {
            mark_dirty(self.txn, &member_key(&self.group_id, member))?;
        }
        // A user's `groups` changed, so its ETag must too; an id in both sets kept its
        // membership.
        for member in removed.symmetric_difference(&self.added) {
            touch(self.txn, ResourceKind::User, member)?;
        }
        Ok(())
    }
}

impl MemberSet for StagedMembers<'_> {
    fn contains(&mut self, id: &str) -> Result<bool, ScimError> {
        if self.added.contains(id) {
            return Ok(true);
        }
        if self.cleared || self.removed.contains(id) {
            return Ok(false);
        }
        self.stored(id)
    }

    fn add(&mut self, id: &str) -> Result<(), ScimError> {
        if self.contains(id)? {
            return Ok(());
        }
        if id == self.group_id {
            return Err(ScimError::invalid_value(format!("group {id} cannot be a member of itself")));
        }
        if self.member_kind(id)?.is_none() {
            return Err(ScimError::invalid_value(format!(
                "member {id:?} is neither a user nor a group on this server; provision it first"
            )));
        }
        self.removed.remove(id);
        self.added.insert(id.to_string());
        Ok(())
    }

    fn remove(&mut self, id: &str) -> Result<bool, ScimError> {
        if !self.contains(id)? {
            return Ok(false);
        }
        if !self.added.remove(id) || self.stored(id)? {
            self.removed.insert(id.to_string());
        }
        Ok(true)
    }

    fn clear(&mut self) -> Result<(), ScimError> {
        self.cleared = true;
        self.added.clear();
        self.removed.clear();
        Ok(())
    }

    fn display(&mut self, id: &str) -> Result<Option<String>, ScimError> {
        let text = |doc: &Map<String, Value>, name: &str| doc.get(name).and_then(Value::as_str).map(str::to_string);
        if let Some(user) = get_doc(&self.txn.open_table(USERS)?, id)? {
            return Ok(text(&user, "displayName").or_else(|| text(&user, "userName")));
        }
        let group = get_doc(&self.txn.open_table(GROUPS)?, id)?;
        Ok(group.and_then(|group| text(&group, "displayName")))
    }

    fn list(&mut self) -> Result<Vec<Value>, ScimError> {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        if !self.cleared {
            ids.extend(read_member_ids(&self.txn.open_table(MEMBERS)?, &self.group_id)?);
        }
        for id in &self.removed {
            ids.remove(id);
        }
        ids.extend(self.added.iter().cloned());
        let mut members = Vec::with_capacity(ids.len());
        for id in ids {
            let kind = self.member_kind(&id)?.unwrap_or(MEMBER_USER);
            members.push(json!({"value": id, "type": member_type_name(kind)}));
        }
        Ok(members)
    }
}

fn member_type_name(kind: u8) -> &'static str {
    if kind == MEMBER_GROUP {
        "Group"
    } else {
        "User"
    }
}

fn read_member_ids(
    members: &impl ReadableTable<(&'static str, &'static str), u8>,
    group_id: &str,
) -> Result<Vec<String>, ScimError> {
    Ok(pair_range(members, group_id)?)
}

/// Creates a resource from a parsed body; returns the stored document.
pub fn create(txn: &WriteTransaction, kind: ResourceKind, incoming: Incoming) -> Result<Map<String, Value>, ScimError> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut doc = Map::new();
    doc.insert("schemas".to_string(), incoming.doc.get("schemas").cloned().unwrap_or(json!([])));
    doc.insert("id".to_string(), Value::from(id.clone()));
    for (name, value) in incoming.doc {
        if name != "schemas" && name != "id" && name != "meta" {
            doc.insert(name, value);
        }
    }
    check_unique(txn, kind, &id, &doc)?;
    let mut staged = StagedMembers::new(txn, &id);
    if let Some(members) = &incoming.members {
        for member in members {
            staged.add(member)?;
        }
    }
    set_meta(kind, &mut doc, None);
    write_doc(txn, kind, &id, None, &doc)?;
    staged.commit()?;
    Ok(doc)
}

/// Replaces a resource (PUT); `body` is parsed against the stored document inside the
/// transaction so immutable attributes are checked against what is stored now.
pub fn replace(
    txn: &WriteTransaction,
    kind: ResourceKind,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> Result<Map<String, Value>, ScimError> {
    let existing = get_doc(&txn.open_table(table(kind))?, id)?.ok_or_else(|| not_found(kind, id))?;
    check_if_match(&existing, if_match)?;
    let incoming = resource::parse_replace(kind, &existing, body)?;
    let mut doc = Map::new();
    doc.insert("schemas".to_string(), incoming.doc.get("schemas").cloned().unwrap_or(json!([])));
    doc.insert("id".to_string(), Value::from(id));
    for (name, value) in incoming.doc {
        if name != "schemas" && name != "id" && name != "meta" {
            doc.insert(name, value);
        }
    }
    check_unique(txn, kind, id, &doc)?;
    let mut staged = StagedMembers::new(txn, id);
    if kind == ResourceKind::Group {
        // A PUT replaces the whole group, members included (RFC 7644 section 3.5.1).
        staged.clear()?;
        for member in incoming.members.iter().flatten() {
            staged.add(member)?;
        }
    }
    set_meta(kind, &mut doc, Some(&existing));
    write_doc(txn, kind, id, Some(&existing), &doc)?;
    staged.commit()?;
    Ok(doc)
}

/// Applies PATCH operations atomically; returns the stored document.
pub fn patch(
    txn: &WriteTransaction,
    kind: ResourceKind,
    id: &str,
    ops: &[PatchOp],
    if_match: Option<&str>,
) -> Result<Map<String, Value>, ScimError> {
    let existing = get_doc(&txn.open_table(table(kind))?, id)?.ok_or_else(|| not_found(kind, id))?;
    check_if_match(&existing, if_match)?;
    let mut doc = existing.clone();
    let mut staged = StagedMembers::new(txn, id);
    patch::apply_patch(kind, &mut doc, ops, &mut staged)?;
    doc.insert("id".to_string(), Value::from(id));
    doc.insert("meta".to_string(), existing.get("meta").cloned().unwrap_or(Value::Null));
    if doc == existing && !staged.changed() {
        return Ok(existing);
    }
    check_unique(txn, kind, id, &doc)?;
    set_meta(kind, &mut doc, Some(&existing));
    write_doc(txn, kind, id, Some(&existing), &doc)?;
    staged.commit()?;
    Ok(doc)
}

/// Deletes a resource and every membership it takes part in.
pub fn delete(txn: &WriteTransaction, kind: ResourceKind, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    let existing = get_doc(&txn.open_table(table(kind))?, id)?.ok_or_else(|| not_found(kind, id))?;
    check_if_match(&existing, if_match)?;
    update_indexes(txn, kind, id, Some(&existing), None)?;
    txn.open_table(table(kind))?.remove(id)?;
    mark_dirty(txn, &dirty_key(kind, id))?;

    // The groups this resource belongs to lose it as a member.
    let parents = pair_range(&txn.open_table(MEMBER_OF)?, id)?;
    for group in &parents {
        let mut staged = StagedMembers::new(txn, group);
        staged.remove(id)?;
        staged.commit()?;
        touch(txn, ResourceKind::Group, group)?;
    }

    // A deleted group loses its own members.
    if kind == ResourceKind::Group {
        let mut staged = StagedMembers::new(txn, id);
        staged.clear()?;
        staged.commit()?;
    }
    Ok(())
}

/// Member objects of a group, in id order, with `$ref` under `base_url`.
pub fn group_members(txn: &ReadTransaction, group_id: &str, base_url: &str) -> Result<Vec<Value>, ScimError> {
    let members = txn.open_table(MEMBERS)?;
    let mut list = Vec::new();
    for entry in members.range((group_id, "")..)? {
        let (key, kind) = entry?;
        let (group, member) = key.value();
        if group != group_id {
            break;
        }
        let kind = member_type_name(kind.value());
        let reference = format!("{base_url}/{kind}s/{member}");
        list.push(json!({"value": member, "$ref": reference, "type": kind}));
    }
    Ok(list)
}

/// Number of a group's members, counting no further than `cap`.
pub fn member_count_up_to(txn: &ReadTransaction, group_id: &str, cap: usize) -> Result<usize, ScimError> {
    let members = txn.open_table(MEMBERS)?;
    let mut count = 0;
    for entry in members.range((group_id, "")..)?.take(cap) {
        let (key, _) = entry?;
        if key.value().0 != group_id {
            break;
        }
        count += 1;
    }
    Ok(count)
}

/// The `groups` attribute of a user: the groups that list it as a direct member.
pub fn user_groups(txn: &ReadTransaction, user_id: &str, base_url: &str) -> Result<Vec<Value>, ScimError> {
    let groups = txn.open_table(GROUPS)?;
    let mut list = Vec::new();
    for group_id in pair_range(&txn.open_table(MEMBER_OF)?, user_id)? {
        let group_id = group_id.as_str();
        let mut item = json!({"value": group_id, "$ref": format!("{base_url}/Groups/{group_id}"), "type": "direct"});
        if let Some(doc) = get_doc(&groups, group_id)? {
            if let Some(name) = doc.get("displayName") {
                item["display"] = name.clone();
            }
        }
        list.push(item);
    }
    Ok(list)
}

/// Reads one document from a snapshot.
pub fn read_doc(txn: &ReadTransaction, kind: ResourceKind, id: &str) -> Result<Option<Map<String, Value>>, ScimError> {
    get_doc(&txn.open_table(table(kind))?, id)
}

/// Ids a unique or indexed attribute points at: `attribute` is `id`, `username`,
/// `externalid` or `displayname` (lowercase), `value` as the client sent it.
pub fn ids_by_index(txn: &ReadTransaction, kind: ResourceKind, attribute: &str, value: &str) -> Result<Option<Vec<String>>, ScimError> {
    let ids = match (kind, attribute) {
        (_, "id") => {
            let exists = txn.open_table(table(kind))?.get(value)?.is_some();
            if exists { vec![value.to_string()] } else { Vec::new() }
        }
        (ResourceKind::User, "username") | (ResourceKind::Group, "displayname") => {
            let index = txn.open_table(name_index(kind))?;
            index.get(value.to_lowercase().as_str())?.map(|id| vec![id.value().to_string()]).unwrap_or_default()
        }
        (_, "externalid") => {
            let index = txn.open_multimap_table(external_id_index(kind))?;
            let mut ids = Vec::new();
            for id in index.get(value)? {
                ids.push(id?.value().to_string());
            }
            ids
        }
        (ResourceKind::User, "displayname") => {
            let index = txn.open_multimap_table(USER_BY_DISPLAY_NAME)?;
            let mut ids = Vec::new();
            for id in index.get(value.to_lowercase().as_str())? {
                ids.push(id?.value().to_string());
            }
            ids
        }
        _ => return Ok(None),
    };
    Ok(Some(ids))
}

/// Visits every document of a kind in id order until `visit` returns false.
pub fn scan(
    txn: &ReadTransaction,
    kind: ResourceKind,
    mut visit: impl FnMut(&str, Map<String, Value>) -> Result<bool, ScimError>,
) -> Result<(), ScimError> {
    let table = txn.open_table(table(kind))?;
    for entry in table.iter()? {
        let (id, bytes) = entry?;
        if !visit(id.value(), decode(bytes.value())?)? {
            break;
        }
    }
    Ok(())
}

/// Number of resources of a kind.
pub fn count(txn: &ReadTransaction, kind: ResourceKind) -> Result<u64, ScimError> {
    Ok(txn.open_table(table(kind))?.len()?)
}

/// Ids of a page in id order: `skip` resources, then at most `take`.
pub fn page_ids(txn: &ReadTransaction, kind: ResourceKind, skip: usize, take: usize) -> Result<Vec<String>, ScimError> {
    let table = txn.open_table(table(kind))?;
    let mut ids = Vec::with_capacity(take.min(1024));
    for entry in table.iter()?.skip(skip).take(take) {
        let (id, _) = entry?;
        ids.push(id.value().to_string());
    }
    Ok(ids)
}
