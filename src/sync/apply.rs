//! Applying a plan inside one writer job: the organization rows, the consumed dirty keys, the
//! audit events and the run record commit together or not at all.

use redb::{ReadableTable, WriteTransaction};

use super::history::{self, Counts, Outcome, SyncRun, Trigger};
use super::model::{self, add_counter};
use super::plan::{Plan, Writes};
use crate::store::{
    StoreError, DIRTY, META, ORG_ACCESS, ORG_GROUPS, ORG_MEMBERS, ORG_MEMBER_OF, ORG_USERS,
    ORG_USER_BY_NAME,
};

/// The run-level facts the job records next to the changes.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub trigger: Trigger,
    pub started: String,
    pub forced: bool,
}

/// Applies `plan` and records a succeeded run; returns the run record.
pub fn apply(txn: &WriteTransaction, plan: &Plan, start: &RunStart) -> Result<SyncRun, StoreError> {
    consume_dirty(txn, &plan.dirty)?;
    write_users(txn, &plan.writes)?;
    write_groups(txn, &plan.writes)?;
    write_members(txn, &plan.writes)?;
    write_access(txn, &plan.writes)?;
    write_counters(txn, &plan.writes)?;

    let run = history::write_run(
        txn,
        run_record(start, Outcome::Succeeded, None, Counts::of(&plan.changes)),
    )?;
    let (first_event, last_event) = history::write_events(txn, Some(run.id), &plan.changes)?;
    let run = SyncRun {
        first_event,
        last_event,
        ..run
    };
    txn.open_table(crate::store::SYNC_RUNS)?
        .insert(run.id, model::encode(&run)?.as_slice())?;
    txn.open_table(META)?
        .insert(model::LAST_APPLIED_RUN, run.id)?;
    Ok(run)
}

/// Builds a run record; `write_run` assigns the id.
pub fn run_record(
    start: &RunStart,
    outcome: Outcome,
    reason: Option<String>,
    counts: Counts,
) -> SyncRun {
    SyncRun {
        id: 0,
        trigger: start.trigger,
        started: start.started.clone(),
        finished: crate::store::now_rfc3339(),
        outcome,
        reason,
        dry_run: false,
        forced: start.forced,
        counts,
        first_event: None,
        last_event: None,
    }
}

/// Removes each planned dirty key whose sequence number is still the planned one. A key that
/// changed again after the snapshot stays, so the next sync sees its newer state.
fn consume_dirty(txn: &WriteTransaction, dirty: &[(String, u64)]) -> Result<(), StoreError> {
    let mut table = txn.open_table(DIRTY)?;
    for (key, sequence) in dirty {
        let current = table.get(key.as_str())?.map(|value| value.value());
        if current == Some(*sequence) {
            table.remove(key.as_str())?;
        }
    }
    Ok(())
}

/// Writes user records and moves their `userName` index entries. An entry is only removed
/// while it still points at this user, because a deleted user's old name may have been taken
/// over by a newer user.
fn write_users(txn: &WriteTransaction, writes: &Writes) -> Result<(), StoreError> {
    let mut users = txn.open_table(ORG_USERS)?;
    let mut names = txn.open_table(ORG_USER_BY_NAME)?;
    for (id, write) in &writes.users {
        users.insert(id.as_str(), model::encode(&write.record)?.as_slice())?;

        let name = write.record.attributes.user_name.to_lowercase();
        if write.previous_name.as_deref() == Some(name.as_str()) {
            continue;
        }
        if let Some(previous) = &write.previous_name {
            let holder = names
                .get(previous.as_str())?
                .map(|value| value.value().to_string());
            if holder.as_deref() == Some(id.as_str()) {
                names.remove(previous.as_str())?;
            }
        }
        if !name.is_empty() {
            names.insert(name.as_str(), id.as_str())?;
        }
    }
    Ok(())
}

fn write_groups(txn: &WriteTransaction, writes: &Writes) -> Result<(), StoreError> {
    let mut groups = txn.open_table(ORG_GROUPS)?;
    for (id, record) in &writes.groups {
        match record {
            Some(record) => groups.insert(id.as_str(), model::encode(record)?.as_slice())?,
            None => groups.remove(id.as_str())?,
        };
    }
    Ok(())
}

fn write_members(txn: &WriteTransaction, writes: &Writes) -> Result<(), StoreError> {
    let mut members = txn.open_table(ORG_MEMBERS)?;
    let mut member_of = txn.open_table(ORG_MEMBER_OF)?;
    for (group, user) in &writes.member_removes {
        members.remove((group.as_str(), user.as_str()))?;
        member_of.remove((user.as_str(), group.as_str()))?;
    }
    for (group, user) in &writes.member_adds {
        members.insert((group.as_str(), user.as_str()), ())?;
        member_of.insert((user.as_str(), group.as_str()), ())?;
    }
    Ok(())
}

/// Writes access entries; also used by a permission change.
pub fn write_access(txn: &WriteTransaction, writes: &Writes) -> Result<(), StoreError> {
    let mut access = txn.open_table(ORG_ACCESS)?;
    for (user, entry) in &writes.access {
        match entry {
            Some(entry) => access.insert(user.as_str(), model::encode(entry)?.as_slice())?,
            None => access.remove(user.as_str())?,
        };
    }
    Ok(())
}

fn write_counters(txn: &WriteTransaction, writes: &Writes) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    add_counter(&mut meta, model::ACTIVE_USERS, writes.active_users_delta)?;
    add_counter(
        &mut meta,
        model::DEACTIVATED_USERS,
        writes.deactivated_users_delta,
    )?;
    add_counter(&mut meta, model::GROUPS, writes.groups_delta)?;
    Ok(())
}
