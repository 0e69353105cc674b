//! Sync runs and audit events: the records kept in `SYNC_RUNS` and `AUDIT`, how a plan's
//! changes become events, and the history queries.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::model::{self, next_id};
use super::plan::Change;
use crate::store::{meta_get, Store, StoreError, AUDIT, META, SYNC_RUNS};

/// Source of a sync request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Signal,
    Socket,
    Startup,
}

/// Result of a sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    /// The guard stopped the run before it applied anything.
    Blocked,
    /// A storage failure stopped the run; nothing was applied.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Blocked => "blocked",
            Outcome::Failed => "failed",
        }
    }
}

/// Number of changes of each kind in a run or a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub user_created: u64,
    pub user_updated: u64,
    pub user_deactivated: u64,
    pub user_reactivated: u64,
    pub group_created: u64,
    pub group_updated: u64,
    pub group_deleted: u64,
    pub member_added: u64,
    pub member_removed: u64,
    pub access_changed: u64,
}

impl Counts {
    pub fn of(changes: &[Change]) -> Counts {
        let mut counts = Counts::default();
        for change in changes {
            let slot = match change {
                Change::UserCreated { .. } => &mut counts.user_created,
                Change::UserUpdated { .. } => &mut counts.user_updated,
                Change::UserDeactivated { .. } => &mut counts.user_deactivated,
                Change::UserReactivated { .. } => &mut counts.user_reactivated,
                Change::GroupCreated { .. } => &mut counts.group_created,
                Change::GroupUpdated { .. } => &mut counts.group_updated,
                Change::GroupDeleted { .. } => &mut counts.group_deleted,
                Change::MemberAdded { .. } => &mut counts.member_added,
                Change::MemberRemoved { .. } => &mut counts.member_removed,
                Change::AccessChanged { .. } => &mut counts.access_changed,
            };
            *slot += 1;
        }
        counts
    }

    pub fn total(&self) -> u64 {
        self.user_created
            + self.user_updated
            + self.user_deactivated
            + self.user_reactivated
            + self.group_created
            + self.group_updated
            + self.group_deleted
            + self.member_added
            + self.member_removed
            + self.access_changed
    }
}

/// One sync run as recorded in `SYNC_RUNS`. Dry runs are never recorded, so `dry_run` is
/// always false in stored records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRun {
    pub id: u64,
    pub trigger: Trigger,
    pub started: String,
    pub finished: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub dry_run: bool,
    pub forced: bool,
    pub counts: Counts,
    /// Ids of the run's first and last audit events; events of a run are consecutive.
    pub first_event: Option<u64>,
    pub last_event: Option<u64>,
}

/// The user or group an audit event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `user` or `group`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
}

/// The kinds of audit event, as [`Change::kind`] names them.
pub const EVENT_KINDS: [&str; 10] = [
    "user_created",
    "user_updated",
    "user_deactivated",
    "user_reactivated",
    "group_created",
    "group_updated",
    "group_deleted",
    "member_added",
    "member_removed",
    "access_changed",
];

/// One change as recorded in `AUDIT`; `run` is null for a permission change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: u64,
    pub run: Option<u64>,
    pub at: String,
    pub kind: String,
    pub subject: Subject,
    pub before: Value,
    pub after: Value,
}

fn subject(kind: &str, id: &str, name: &str) -> Subject {
    Subject {
        kind: kind.to_string(),
        id: id.to_string(),
        name: name.to_string(),
    }
}

fn reference(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name})
}

/// Turns a change into its event's subject, before and after.
fn describe(change: &Change) -> (Subject, Value, Value) {
    match change {
        Change::UserCreated { user } => (
            subject("user", &user.id, &user.attributes.user_name),
            Value::Null,
            json!(user),
        ),
        Change::UserUpdated { id, before, after } => (
            subject("user", id, &after.user_name),
            json!(before),
            json!(after),
        ),
        Change::UserDeactivated {
            id,
            user_name,
            reason,
        } => (
            subject("user", id, user_name),
            json!({"active": true}),
            json!({"active": false, "reason": reason}),
        ),
        Change::UserReactivated { id, user_name } => (
            subject("user", id, user_name),
            json!({"active": false}),
            json!({"active": true}),
        ),
        Change::GroupCreated { group } => (
            subject("group", &group.id, &group.attributes.display_name),
            Value::Null,
            json!(group.attributes),
        ),
        Change::GroupUpdated { id, before, after } => (
            subject("group", id, &after.display_name),
            json!(before),
            json!(after),
        ),
        Change::GroupDeleted { id, display_name } => (
            subject("group", id, display_name),
            json!({"displayName": display_name}),
            Value::Null,
        ),
        Change::MemberAdded {
            group,
            group_name,
            user,
            user_name,
        } => (
            subject("user", user, user_name),
            Value::Null,
            json!({"group": reference(group, group_name)}),
        ),
        Change::MemberRemoved {
            group,
            group_name,
            user,
            user_name,
        } => (
            subject("user", user, user_name),
            json!({"group": reference(group, group_name)}),
            Value::Null,
        ),
        Change::AccessChanged {
            user,
            user_name,
            before,
            after,
        } => (
            subject("user", user, user_name),
            json!(before),
            json!(after),
        ),
    }
}

/// Writes one audit event per change with consecutive ids; returns the first and last id.
pub fn write_events(
    txn: &WriteTransaction,
    run: Option<u64>,
    changes: &[Change],
) -> Result<(Option<u64>, Option<u64>), StoreError> {
    if changes.is_empty() {
        return Ok((None, None));
    }
    let at = crate::store::now_rfc3339();
    let first = reserve_ids(txn, changes.len() as u64)?;
    let mut table = txn.open_table(AUDIT)?;
    let mut id = first;
    for change in changes {
        let (subject, before, after) = describe(change);
        let event = AuditEvent {
            id,
            run,
            at: at.clone(),
            kind: change.kind().to_string(),
            subject,
            before,
            after,
        };
        table.insert(id, model::encode(&event)?.as_slice())?;
        id += 1;
    }
    let last = id - 1;
    Ok((Some(first), Some(last)))
}

/// Takes `count` consecutive audit ids from the sequence and returns the first.
fn reserve_ids(txn: &WriteTransaction, count: u64) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let first = meta_get(&meta, model::AUDIT_SEQUENCE)? + 1;
    meta.insert(model::AUDIT_SEQUENCE, first + count - 1)?;
    Ok(first)
}

/// Stores a run record under a new id and returns it.
pub fn write_run(txn: &WriteTransaction, mut run: SyncRun) -> Result<SyncRun, StoreError> {
    run.id = next_id(txn, model::RUN_SEQUENCE)?;
    txn.open_table(SYNC_RUNS)?
        .insert(run.id, model::encode(&run)?.as_slice())?;
    Ok(run)
}

/// Returns up to `limit` runs, newest first.
pub fn runs(store: &Store, limit: usize) -> Result<Vec<SyncRun>, StoreError> {
    let txn = store.read()?;
    let table = txn.open_table(SYNC_RUNS)?;
    let mut found = Vec::new();
    for entry in table.iter()?.rev().take(limit) {
        let (_, bytes) = entry?;
        found.push(model::decode(bytes.value())?);
    }
    Ok(found)
}

/// Returns the newest run, if any.
pub fn last_run(txn: &redb::ReadTransaction) -> Result<Option<SyncRun>, StoreError> {
    let table = txn.open_table(SYNC_RUNS)?;
    let last = match table.last()? {
        Some((_, bytes)) => Some(model::decode(bytes.value())?),
        None => None,
    };
    Ok(last)
}

/// Returns a run and its audit events in id order.
pub fn run(store: &Store, id: u64) -> Result<Option<(SyncRun, Vec<AuditEvent>)>, StoreError> {
    let txn = store.read()?;
    let runs = txn.open_table(SYNC_RUNS)?;
    let Some(bytes) = runs.get(id)? else {
        return Ok(None);
    };
    let run: SyncRun = model::decode(bytes.value())?;
    let mut events = Vec::new();
    if let (Some(first), Some(last)) = (run.first_event, run.last_event) {
        let audit = txn.open_table(AUDIT)?;
        for entry in audit.range(first..=last)? {
            let (_, bytes) = entry?;
            events.push(model::decode(bytes.value())?);
        }
    }
    Ok(Some((run, events)))
}

/// Maximum number of audit events that one call of [`events`] reads. With a filter that few
/// events match, a page can hold fewer than `limit` events and still have a `next_before`.
pub const EVENT_SCAN_LIMIT: usize = 10_000;

/// Filters and page size of an audit event listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Maximum number of events on the page.
    pub limit: usize,
    /// Only events with a smaller id: the `next_before` of the previous page.
    pub before: Option<u64>,
    /// Only events of this kind, one of [`EVENT_KINDS`].
    pub kind: Option<String>,
    /// Only events about this user, given as an id or a `userName`.
    pub user: Option<String>,
}

/// One page of audit events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<AuditEvent>,
    /// The `before` value that continues with older events, or `None` when none are left.
    pub next_before: Option<u64>,
}

/// The fields of a stored event that the filters compare, decoded without the values.
#[derive(Deserialize)]
struct EventHead {
    kind: String,
    subject: SubjectHead,
}

#[derive(Deserialize)]
struct SubjectHead {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// Lists audit events newest first, walking the `AUDIT` table backwards from `filter.before`.
/// `user_id` replaces `filter.user` with the id it resolved to. The walk stops after
/// `filter.limit` matches or after [`EVENT_SCAN_LIMIT`] events, whichever comes first, so
/// the cost of a page does not grow with the history.
pub fn events(
    txn: &ReadTransaction,
    filter: &EventFilter,
    user_id: Option<&str>,
) -> Result<EventPage, StoreError> {
    let table = txn.open_table(AUDIT)?;
    let range = match filter.before {
        Some(before) => table.range(..before)?,
        None => table.range::<u64>(..)?,
    };
    let filtered = filter.kind.is_some() || user_id.is_some();
    let mut events = Vec::new();
    let mut last_scanned = None;
    for (scanned, entry) in range.rev().enumerate() {
        if events.len() >= filter.limit || scanned >= EVENT_SCAN_LIMIT {
            return Ok(EventPage {
                events,
                next_before: last_scanned,
            });
        }
        let (key, bytes) = entry?;
        last_scanned = Some(key.value());
        if filtered {
            let head: EventHead = model::decode(bytes.value())?;
            let kind_matches = filter.kind.as_deref().is_none_or(|kind| head.kind == kind);
            let user_matches =
                user_id.is_none_or(|user| head.subject.kind == "user" && head.subject.id == user);
            if !(kind_matches && user_matches) {
                continue;
            }
        }
        events.push(model::decode(bytes.value())?);
    }
    Ok(EventPage {
        events,
        next_before: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a new store with one `user_reactivated` event for each user id in `users`, in
    /// order, so event `n` is about `users[n - 1]`.
    fn store_with_events(folder: &tempfile::TempDir, users: &[&str]) -> Store {
        let store = Store::open(&folder.path().join("idpsync.redb")).unwrap();
        let changes: Vec<Change> = users
            .iter()
            .map(|user| Change::UserReactivated {
                id: user.to_string(),
                user_name: format!("{user}@example.com"),
            })
            .collect();
        let write = store
            .writer()
            .write(move |txn| write_events(txn, None, &changes));
        futures::executor::block_on(write).unwrap();
        store
    }

    fn filter(limit: usize, before: Option<u64>) -> EventFilter {
        EventFilter {
            limit,
            before,
            kind: None,
            user: None,
        }
    }

    fn ids(page: &EventPage) -> Vec<u64> {
        page.events.iter().map(|event| event.id).collect()
    }

    #[test]
    fn events_page_newest_first() {
        let folder = tempfile::tempdir().unwrap();
        let store = store_with_events(&folder, &["a", "b", "c", "d", "e"]);
        let txn = store.read().unwrap();

        let first = events(&txn, &filter(2, None), None).unwrap();
        assert_eq!(ids(&first), [5, 4]);
        assert_eq!(first.next_before, Some(4));
        let second = events(&txn, &filter(2, first.next_before), None).unwrap();
        assert_eq!(ids(&second), [3, 2]);
        let last = events(&txn, &filter(2, second.next_before), None).unwrap();
        assert_eq!(ids(&last), [1]);
        assert_eq!(last.next_before, None);
    }

    #[test]
    fn events_full_page_at_end_has_no_next() {
        let folder = tempfile::tempdir().unwrap();
        let store = store_with_events(&folder, &["a", "b"]);
        let txn = store.read().unwrap();

        let page = events(&txn, &filter(2, None), None).unwrap();
        assert_eq!(ids(&page), [2, 1]);
        assert_eq!(page.next_before, None);
    }

    #[test]
    fn events_filter_by_kind_and_user() {
        let folder = tempfile::tempdir().unwrap();
        let store = store_with_events(&folder, &["a", "b", "a", "c"]);
        let txn = store.read().unwrap();

        let page = events(&txn, &filter(10, None), Some("a")).unwrap();
        assert_eq!(ids(&page), [3, 1]);
        let mut by_kind = filter(10, None);
        by_kind.kind = Some("user_reactivated".to_string());
        assert_eq!(ids(&events(&txn, &by_kind, None).unwrap()), [4, 3, 2, 1]);
        by_kind.kind = Some("user_created".to_string());
        assert_eq!(
            ids(&events(&txn, &by_kind, None).unwrap()),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn events_scan_stops_at_scan_limit() {
        let folder = tempfile::tempdir().unwrap();
        let mut users = vec!["rare"];
        users.extend(std::iter::repeat_n("common", EVENT_SCAN_LIMIT + 5));
        let store = store_with_events(&folder, &users);
        let txn = store.read().unwrap();

        let first = events(&txn, &filter(10, None), Some("rare")).unwrap();
        assert_eq!(ids(&first), Vec::<u64>::new());
        assert_eq!(first.next_before, Some(7));
        let second = events(&txn, &filter(10, first.next_before), Some("rare")).unwrap();
        assert_eq!(ids(&second), [1]);
        assert_eq!(second.next_before, None);
    }
}
