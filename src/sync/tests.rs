//! Sync tests against a real store file: directory writes go through the SCIM directory
//! functions, then the organization is synced and inspected.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use super::*;
use crate::permissions::load_dir;
use crate::scim::error::ScimError;
use crate::scim::patch::parse_patch;
use crate::scim::resource::parse_create;
use crate::scim::schema::ResourceKind;
use crate::store::directory;

const POLICY: &str = r#"
[roles.editor]
permissions = ["asset.read", "asset.write"]

[roles.viewer]
permissions = ["asset.read"]

[[grants]]
group = "Artists"
role = "editor"
resources = ["asset:rig-*"]

[[grants]]
group = "Painters"
role = "viewer"
resources = ["*"]

[[grants]]
group = "Ops"
role = "viewer"
resources = ["*"]
"#;

struct Fixture {
    folder: tempfile::TempDir,
    store: Store,
    organization: Organization,
}

fn policy_from(folder: &Path, text: &str) -> Policy {
    let dir = folder.join("permissions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("grants.toml"), text).unwrap();
    load_dir(&dir).unwrap()
}

fn guard(max_removed: u64) -> GuardConfig {
    GuardConfig {
        max_removed,
        max_removed_share: 0.5,
        max_removed_floor: 10,
    }
}

fn fixture() -> Fixture {
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(&folder.path().join("idpsync.redb")).unwrap();
    let policy = Arc::new(ArcSwap::from_pointee(policy_from(folder.path(), POLICY)));
    let metrics = Arc::new(Metrics::default());
    let organization = Organization::new(store.clone(), policy, guard(100), None, metrics);
    Fixture {
        folder,
        store,
        organization,
    }
}

async fn create(store: &Store, kind: ResourceKind, body: Value) -> String {
    let doc = store
        .writer()
        .write(move |txn| -> Result<_, ScimError> {
            directory::create(txn, kind, parse_create(kind, body)?)
        })
        .await
        .unwrap();
    doc.get("id").and_then(Value::as_str).unwrap().to_string()
}

async fn create_user(store: &Store, name: &str) -> String {
    create(
        store,
        ResourceKind::User,
        json!({"userName": name, "displayName": name.to_uppercase()}),
    )
    .await
}

async fn create_group(store: &Store, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    create(
        store,
        ResourceKind::Group,
        json!({"displayName": name, "members": members}),
    )
    .await
}

async fn patch(store: &Store, kind: ResourceKind, id: &str, operations: Value) {
    let id = id.to_string();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations,
    });
    store
        .writer()
        .write(move |txn| -> Result<_, ScimError> {
            directory::patch(txn, kind, &id, &parse_patch(body)?, None)
        })
        .await
        .unwrap();
}

async fn delete(store: &Store, kind: ResourceKind, id: &str) {
    let id = id.to_string();
    store
        .writer()
        .write(move |txn| directory::delete(txn, kind, &id, None))
        .await
        .unwrap();
}

async fn sync(organization: &Organization) -> SyncReport {
    organization.request(Trigger::Socket).await.unwrap()
}

fn roles(report: &AccessReport) -> Vec<String> {
    report.roles.iter().cloned().collect()
}

async fn events_of(organization: &Organization, run: Option<u64>) -> Vec<AuditEvent> {
    organization.run(run.unwrap()).await.unwrap().unwrap().1
}

#[tokio::test]
async fn first_sync_creates_everything() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    create_group(store, "Artists", &[&alice, &bob]).await;
    create_group(store, "Unmapped", &[&alice]).await;

    let report = sync(&fixture.organization).await;

    assert_eq!(report.counts.user_created, 2);
    assert_eq!(report.counts.group_created, 2);
    assert_eq!(report.counts.member_added, 3);
    assert_eq!(report.counts.access_changed, 2);
    let status = fixture.organization.status().await.unwrap();
    assert_eq!(status.active_users, 2);
    assert_eq!(status.groups, 2);
    assert_eq!(status.unmapped_groups, 1);
    assert_eq!(status.pending_changes, 0);
    assert_eq!(
        status.last_run.map(|run| run.outcome),
        Some(Outcome::Succeeded)
    );
    let access = fixture.organization.access("ALICE").await.unwrap().unwrap();
    assert_eq!(roles(&access), ["editor"]);
    assert_eq!(access.groups.len(), 2);
    assert!(access.permissions.contains("asset.write"));
    let groups = fixture.organization.groups().await.unwrap();
    let artists = groups
        .iter()
        .find(|group| group.display_name == "Artists")
        .unwrap();
    assert_eq!(artists.members, 2);
    assert_eq!(artists.roles, ["editor"]);
    let unmapped = groups
        .iter()
        .find(|group| group.display_name == "Unmapped")
        .unwrap();
    assert!(unmapped.unmapped);
    let users = fixture.organization.users().await.unwrap();
    let alice_summary = users.iter().find(|user| user.id == alice).unwrap();
    assert_eq!(alice_summary.groups, 2);
    let events = events_of(&fixture.organization, report.run).await;
    assert_eq!(events.len() as u64, report.counts.total());
}

#[tokio::test]
async fn directory_changes_wait_for_sync() {
    let fixture = fixture();
    let alice = create_user(&fixture.store, "alice").await;
    assert!(fixture.organization.users().await.unwrap().is_empty());
    sync(&fixture.organization).await;

    let operations = json!([{"op": "replace", "path": "displayName", "value": "Alice Liddell"}]);
    patch(&fixture.store, ResourceKind::User, &alice, operations).await;
    let users = fixture.organization.users().await.unwrap();
    assert_eq!(users[0].display_name.as_deref(), Some("ALICE"));
    assert_eq!(
        fixture.organization.status().await.unwrap().pending_changes,
        1
    );

    let report = sync(&fixture.organization).await;
    assert_eq!(report.counts.user_updated, 1);
    assert_eq!(report.counts.total(), 1);
    let users = fixture.organization.users().await.unwrap();
    assert_eq!(users[0].display_name.as_deref(), Some("Alice Liddell"));
}

#[tokio::test]
async fn incremental_sync_touches_dirty_keys_only() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let artists = create_group(store, "Artists", &[&alice]).await;
    sync(&fixture.organization).await;

    let operations = json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]);
    patch(store, ResourceKind::Group, &artists, operations).await;
    let report = sync(&fixture.organization).await;

    assert_eq!(report.counts.member_added, 1);
    assert_eq!(report.counts.access_changed, 1);
    assert_eq!(report.counts.total(), 2);
    let events = events_of(&fixture.organization, report.run).await;
    assert!(events.iter().all(|event| event.subject.id == bob));
    let empty = sync(&fixture.organization).await;
    assert_eq!(empty.counts.total(), 0);
}

#[tokio::test]
async fn deactivate_keeps_memberships_drops_access() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    create_group(store, "Artists", &[&alice]).await;
    sync(&fixture.organization).await;

    patch(
        store,
        ResourceKind::User,
        &alice,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    let report = sync(&fixture.organization).await;
    assert_eq!(report.counts.user_deactivated, 1);
    assert_eq!(report.counts.access_changed, 1);
    let access = fixture.organization.access(&alice).await.unwrap().unwrap();
    assert!(!access.active);
    assert!(access.roles.is_empty());
    assert_eq!(access.groups.len(), 1);
    let events = events_of(&fixture.organization, report.run).await;
    let deactivated = events
        .iter()
        .find(|event| event.kind == "user_deactivated")
        .unwrap();
    assert_eq!(deactivated.after["reason"], "deactivated");

    patch(
        store,
        ResourceKind::User,
        &alice,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    let report = sync(&fixture.organization).await;
    assert_eq!(report.counts.user_reactivated, 1);
    let access = fixture.organization.access("alice").await.unwrap().unwrap();
    assert_eq!(roles(&access), ["editor"]);
    let status = fixture.organization.status().await.unwrap();
    assert_eq!(status.active_users, 1);
    assert_eq!(status.deactivated_users, 0);
}

#[tokio::test]
async fn deleted_user_is_deactivated_without_memberships() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    create_group(store, "Artists", &[&alice, &bob]).await;
    sync(&fixture.organization).await;

    delete(store, ResourceKind::User, &alice).await;
    let report = sync(&fixture.organization).await;

    assert_eq!(report.counts.user_deactivated, 1);
    assert_eq!(report.counts.member_removed, 1);
    assert_eq!(report.counts.access_changed, 1);
    let access = fixture.organization.access(&alice).await.unwrap().unwrap();
    assert!(!access.active);
    assert!(access.groups.is_empty());
    let groups = fixture.organization.groups().await.unwrap();
    assert_eq!(groups[0].members, 1);
    let events = events_of(&fixture.organization, report.run).await;
    let deactivated = events
        .iter()
        .find(|event| event.kind == "user_deactivated")
        .unwrap();
    assert_eq!(deactivated.after["reason"], "deleted");
    let status = fixture.organization.status().await.unwrap();
    assert_eq!(status.deactivated_users, 1);
    assert_eq!(status.active_users, 1);
}

#[tokio::test]
async fn deleted_group_removes_memberships() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let artists = create_group(store, "Artists", &[&alice]).await;
    sync(&fixture.organization).await;

    delete(store, ResourceKind::Group, &artists).await;
    let report = sync(&fixture.organization).await;

    assert_eq!(report.counts.group_deleted, 1);
    assert_eq!(report.counts.member_removed, 1);
    assert_eq!(report.counts.access_changed, 1);
    assert!(fixture.organization.groups().await.unwrap().is_empty());
    let access = fixture.organization.access(&alice).await.unwrap().unwrap();
    assert!(access.active);
    assert!(access.groups.is_empty());
    assert_eq!(fixture.organization.users().await.unwrap()[0].groups, 0);
}

#[tokio::test]
async fn group_rename_recomputes_member_access() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let artists = create_group(store, "Artists", &[&alice]).await;
    create_group(store, "Ops", &[&bob]).await;
    sync(&fixture.organization).await;

    patch(
        store,
        ResourceKind::Group,
        &artists,
        json!([{"op": "replace", "path": "displayName", "value": "Painters"}]),
    )
    .await;
    let report = sync(&fixture.organization).await;

    assert_eq!(report.counts.group_updated, 1);
    assert_eq!(report.counts.access_changed, 1);
    let access = fixture.organization.access(&alice).await.unwrap().unwrap();
    assert_eq!(roles(&access), ["viewer"]);
    assert_eq!(access.groups[0].name, "Painters");
}

#[tokio::test]
async fn group_members_that_are_groups_are_ignored() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let inner = create_group(store, "Inner", &[&alice]).await;
    create_group(store, "Artists", &[&inner]).await;

    let report = sync(&fixture.organization).await;

    assert_eq!(report.counts.member_added, 1);
    let access = fixture.organization.access(&alice).await.unwrap().unwrap();
    assert!(access.roles.is_empty());
    let groups = fixture.organization.groups().await.unwrap();
    let artists = groups
        .iter()
        .find(|group| group.display_name == "Artists")
        .unwrap();
    assert_eq!(artists.members, 0);
}

#[tokio::test]
async fn guard_blocks_until_forced() {
    let fixture = fixture();
    fixture.organization.reconfigure(guard(1), None);
    let store = &fixture.store;
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        ids.push(create_user(store, name).await);
    }
    sync(&fixture.organization).await;
    delete(store, ResourceKind::User, &ids[0]).await;
    delete(store, ResourceKind::User, &ids[1]).await;

    let blocked = fixture.organization.request(Trigger::Schedule).await;
    let Err(SyncError::Blocked { run, reason }) = blocked else {
        panic!("expected a blocked sync: {blocked:?}")
    };
    assert!(reason.contains("deactivate 2 of 3"), "{reason}");
    let status = fixture.organization.status().await.unwrap();
    assert_eq!(status.active_users, 3);
    assert_eq!(status.pending_changes, 2);
    let (record, events) = fixture
        .organization
        .run(run.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.outcome, Outcome::Blocked);
    assert_eq!(record.counts.user_deactivated, 2);
    assert!(events.is_empty());

    let options = SyncOptions {
        dry_run: false,
        force: true,
    };
    let forced = fixture
        .organization
        .sync(Trigger::Socket, options)
        .await
        .unwrap();
    assert!(forced.forced);
    assert_eq!(forced.counts.user_deactivated, 2);
    assert_eq!(fixture.organization.status().await.unwrap().active_users, 1);
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let fixture = fixture();
    let alice = create_user(&fixture.store, "alice").await;
    create_group(&fixture.store, "Artists", &[&alice]).await;

    let options = SyncOptions {
        dry_run: true,
        force: false,
    };
    let report = fixture
        .organization
        .sync(Trigger::Socket, options)
        .await
        .unwrap();

    assert!(report.dry_run);
    assert_eq!(report.run, None);
    assert_eq!(report.changes.len(), 4);
    assert_eq!(report.changes[0].kind(), "user_created");
    assert!(fixture.organization.runs(10).await.unwrap().is_empty());
    assert!(fixture.organization.users().await.unwrap().is_empty());
    assert_eq!(
        fixture.organization.status().await.unwrap().pending_changes,
        3
    );
}

#[tokio::test]
async fn concurrent_requests_share_one_follow_up_run() {
    let fixture = fixture();
    create_user(&fixture.store, "alice").await;
    let organization = fixture.organization.clone();

    // Holding the exclusive lock keeps the first run waiting while the others queue.
    let exclusive = organization.inner.exclusive.lock().await;
    let first = tokio::spawn({
        let organization = organization.clone();
        async move { organization.request(Trigger::Schedule).await }
    });
    while !lock(&organization.inner.queue).running {
        tokio::task::yield_now().await;
    }
    let mut followers = Vec::new();
    for trigger in [Trigger::Signal, Trigger::Socket] {
        let organization = organization.clone();
        followers.push(tokio::spawn(
            async move { organization.request(trigger).await },
        ));
    }
    while lock(&organization.inner.queue)
        .pending
        .as_ref()
        .map_or(0, |pending| pending.waiters.len())
        < 2
    {
        tokio::task::yield_now().await;
    }
    drop(exclusive);

    let first = first.await.unwrap().unwrap();
    let second = followers.pop().unwrap().await.unwrap().unwrap();
    let third = followers.pop().unwrap().await.unwrap().unwrap();
    assert_eq!(first.run, Some(1));
    assert_eq!(second.run, Some(2));
    assert_eq!(third.run, Some(2));
    assert_eq!(second.trigger, Trigger::Signal);
    assert_eq!(organization.runs(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn policy_change_audits_affected_users_only() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    create_group(store, "Artists", &[&alice]).await;
    create_group(store, "Ops", &[&bob]).await;
    sync(&fixture.organization).await;

    let changed = POLICY.replace(
        "group = \"Ops\"\nrole = \"viewer\"",
        "group = \"Ops\"\nrole = \"editor\"",
    );
    let policy = policy_from(fixture.folder.path(), &changed);
    let report = fixture.organization.apply_policy(policy).await.unwrap();

    assert_eq!(report.groups_changed, 1);
    assert_eq!(report.users_changed, 1);
    let access = fixture.organization.access(&bob).await.unwrap().unwrap();
    assert_eq!(roles(&access), ["editor"]);
    let txn = store.read().unwrap();
    let audit = txn.open_table(crate::store::AUDIT).unwrap();
    let bytes = audit.get(report.first_event.unwrap()).unwrap().unwrap();
    let event: AuditEvent = serde_json::from_slice(bytes.value()).unwrap();
    assert_eq!(event.kind, "access_changed");
    assert_eq!(event.run, None);
    assert_eq!(event.subject.id, bob);
    assert_eq!(event.before["roles"], json!(["viewer"]));

    let again = fixture
        .organization
        .apply_policy(policy_from(fixture.folder.path(), &changed))
        .await
        .unwrap();
    assert_eq!(again.users_changed, 0);
}

#[tokio::test]
async fn changed_key_stays_dirty_for_next_sync() {
    let fixture = fixture();
    let store = &fixture.store;
    let alice = create_user(store, "alice").await;
    let policy = fixture.organization.policy();
    let plan = plan::build(&store.read().unwrap(), &policy).unwrap();

    let operations = json!([{"op": "replace", "path": "displayName", "value": "Alice Liddell"}]);
    patch(store, ResourceKind::User, &alice, operations).await;
    let start = RunStart {
        trigger: Trigger::Socket,
        started: crate::store::now_rfc3339(),
        forced: false,
    };
    store
        .writer()
        .write(move |txn| apply::apply(txn, &plan, &start))
        .await
        .unwrap();

    let users = fixture.organization.users().await.unwrap();
    assert_eq!(users[0].display_name.as_deref(), Some("ALICE"));
    assert_eq!(
        fixture.organization.status().await.unwrap().pending_changes,
        1
    );
    let report = sync(&fixture.organization).await;
    assert_eq!(report.counts.user_updated, 1);
    let users = fixture.organization.users().await.unwrap();
    assert_eq!(users[0].display_name.as_deref(), Some("Alice Liddell"));
}

#[tokio::test]
async fn export_is_written_atomically() {
    use std::os::unix::fs::PermissionsExt;

    let fixture = fixture();
    let path = fixture.folder.path().join("out").join("organization.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    fixture
        .organization
        .reconfigure(guard(100), Some(path.clone()));
    let alice = create_user(&fixture.store, "alice").await;
    let artists = create_group(&fixture.store, "Artists", &[&alice]).await;

    let report = sync(&fixture.organization).await;

    assert_eq!(report.export_error, None);
    let document: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(document["sync_run"], json!(report.run));
    assert_eq!(document["users"][0]["userName"], "alice");
    assert_eq!(document["users"][0]["groups"], json!([artists]));
    assert_eq!(document["users"][0]["access"]["roles"], json!(["editor"]));
    assert_eq!(document["groups"][0]["members"], json!([alice]));
    assert_eq!(document["groups"][0]["unmapped"], false);
    let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(entries.len(), 1);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[tokio::test]
async fn export_to_missing_folder_reports_error() {
    let fixture = fixture();
    let path = fixture
        .folder
        .path()
        .join("missing")
        .join("organization.json");
    fixture
        .organization
        .reconfigure(guard(100), Some(path.clone()));
    create_user(&fixture.store, "alice").await;

    let report = sync(&fixture.organization).await;

    assert!(report
        .export_error
        .unwrap()
        .contains("cannot write export file"));
    assert_eq!(fixture.organization.status().await.unwrap().active_users, 1);
}

#[test]
fn guard_limits() {
    let guard = GuardConfig {
        max_removed: 100,
        max_removed_share: 0.25,
        max_removed_floor: 10,
    };
    // (removed, total, trips)
    let cases = [
        (0, 0, false),
        (10, 10, false),
        (11, 100, false),
        (26, 100, true),
        (25, 100, false),
        (101, 100_000, true),
        (100, 100_000, false),
    ];
    for (removed, total, trips) in cases {
        let users = Removals {
            users_deactivated: removed,
            active_users: total,
            ..Removals::default()
        };
        assert_eq!(
            guard_reason(&guard, &users).is_some(),
            trips,
            "users {removed} of {total}"
        );
        let groups = Removals {
            groups_deleted: removed,
            groups: total,
            ..Removals::default()
        };
        assert_eq!(
            guard_reason(&guard, &groups).is_some(),
            trips,
            "groups {removed} of {total}"
        );
    }
}
