//! Organization sync at scale: provisions users, groups and memberships through batched
//! store writer jobs, then times the first sync, an incremental sync after 1% of users and
//! memberships changed, the export, and `access(user)` lookups.
//!
//! Run with `cargo bench --bench sync`. `IDPSYNC_BENCH_SCALE` (default 1.0) multiplies the
//! sizes: 100,000 users, 5,000 groups and 500,000 memberships at scale 1.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use idpsync::config::GuardConfig;
use idpsync::metrics::Metrics;
use idpsync::permissions::{load_dir, Policy};
use idpsync::scim::error::ScimError;
use idpsync::scim::patch::parse_patch;
use idpsync::scim::resource::parse_create;
use idpsync::scim::schema::ResourceKind;
use idpsync::store::{directory, Store};
use idpsync::sync::{Organization, Trigger};

/// Resources created per writer job.
const USERS_PER_JOB: usize = 1_000;
const GROUPS_PER_JOB: usize = 50;
const MEMBERS_PER_GROUP: usize = 100;
/// Groups named by a grant; the rest are unmapped.
const MAPPED_GROUPS: usize = 100;
const LOOKUPS: usize = 1_000;

struct Sizes {
    users: usize,
    groups: usize,
}

/// A small deterministic generator, so every run provisions the same shape.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

fn sizes() -> Sizes {
    let scale: f64 = std::env::var("IDPSYNC_BENCH_SCALE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0);
    Sizes {
        users: ((100_000.0 * scale) as usize).max(MEMBERS_PER_GROUP),
        groups: ((5_000.0 * scale) as usize).max(1),
    }
}

fn policy(folder: &Path) -> Policy {
    let dir = folder.join("permissions");
    std::fs::create_dir_all(&dir).expect("create the permissions folder");
    let mut text =
        String::from("[roles.editor]\npermissions = [\"asset.read\", \"asset.write\"]\n");
    for index in 0..MAPPED_GROUPS {
        text.push_str(&format!(
            "\n[[grants]]\ngroup = \"group-{index}\"\nrole = \"editor\"\nresources = [\"asset:{index}-*\"]\n"
        ));
    }
    std::fs::write(dir.join("grants.toml"), text).expect("write the permission file");
    load_dir(&dir).expect("the generated policy is valid")
}

fn id_of(doc: &serde_json::Map<String, Value>) -> String {
    doc.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

async fn provision_users(store: &Store, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(USERS_PER_JOB) {
        let end = (start + USERS_PER_JOB).min(count);
        let job = move |txn: &redb::WriteTransaction| -> Result<Vec<String>, ScimError> {
            let mut created = Vec::with_capacity(end - start);
            for index in start..end {
                let body = json!({
                    "userName": format!("user{index}@example.com"),
                    "displayName": format!("User {index}"),
                    "emails": [{"value": format!("user{index}@example.com"), "primary": true}],
                });
                let doc = directory::create(
                    txn,
                    ResourceKind::User,
                    parse_create(ResourceKind::User, body)?,
                )?;
                created.push(id_of(&doc));
            }
            Ok(created)
        };
        ids.extend(store.writer().write(job).await.expect("provision users"));
    }
    ids
}

/// Creates groups of `MEMBERS_PER_GROUP` users; returns each group's id and member indexes.
async fn provision_groups(
    store: &Store,
    users: &[String],
    count: usize,
    sequence: &mut Sequence,
) -> Vec<(String, Vec<usize>)> {
    let mut ids = Vec::with_capacity(count);
    let mut members_of = Vec::with_capacity(count);
    for start in (0..count).step_by(GROUPS_PER_JOB) {
        let end = (start + GROUPS_PER_JOB).min(count);
        let mut bodies = Vec::with_capacity(end - start);
        for index in start..end {
            let first = sequence.next(users.len());
            let indexes: Vec<usize> = (0..MEMBERS_PER_GROUP)
                .map(|offset| (first + offset * 7) % users.len())
                .collect();
            let members: Vec<Value> = indexes
                .iter()
                .map(|index| json!({"value": users[*index]}))
                .collect();
            members_of.push(indexes);
            bodies.push(json!({"displayName": format!("group-{index}"), "members": members}));
        }
        let job = move |txn: &redb::WriteTransaction| -> Result<Vec<String>, ScimError> {
            let mut created = Vec::with_capacity(bodies.len());
            for body in bodies {
                let doc = directory::create(
                    txn,
                    ResourceKind::Group,
                    parse_create(ResourceKind::Group, body)?,
                )?;
                created.push(id_of(&doc));
            }
            Ok(created)
        };
        ids.extend(store.writer().write(job).await.expect("provision groups"));
    }
    ids.into_iter().zip(members_of).collect()
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

/// Patches `(kind, id, operations)` in writer jobs of `per_job` patches.
async fn patch_all(store: &Store, patches: Vec<(ResourceKind, String, Value)>, per_job: usize) {
    for chunk in patches.chunks(per_job) {
        let chunk = chunk.to_vec();
        let job = move |txn: &redb::WriteTransaction| -> Result<(), ScimError> {
            for (kind, id, operations) in chunk {
                directory::patch(txn, kind, &id, &parse_patch(patch_body(operations))?, None)?;
            }
            Ok(())
        };
        store.writer().write(job).await.expect("apply patches");
    }
}

/// Changes 1% of users (display names) and 1% of memberships (half removed, half added).
async fn change_one_percent(
    store: &Store,
    users: &[String],
    groups: &[(String, Vec<usize>)],
    sequence: &mut Sequence,
) -> (usize, usize) {
    let mut patches = Vec::new();
    let user_changes = users.len() / 100;
    for index in 0..user_changes {
        let id = users[sequence.next(users.len())].clone();
        let operations =
            json!([{"op": "replace", "path": "displayName", "value": format!("Renamed {index}")}]);
        patches.push((ResourceKind::User, id, operations));
    }

    // Each touched group loses 5 of its members and gains 5 users who were not members.
    let membership_changes = groups.len() * MEMBERS_PER_GROUP / 100;
    let groups_touched = (membership_changes / 10).max(1).min(groups.len());
    for position in 0..groups_touched {
        let (group, members) = &groups[position * groups.len() / groups_touched];
        let mut operations = Vec::new();
        for member in members.iter().take(5) {
            operations.push(json!({"op": "remove", "path": format!("members[value eq \"{}\"]", users[*member])}));
        }
        let added: Vec<Value> = (1..=5)
            .map(|step| json!({"value": users[(members[0] + step * 3) % users.len()]}))
            .collect();
        operations.push(json!({"op": "add", "path": "members", "value": added}));
        patches.push((ResourceKind::Group, group.clone(), Value::Array(operations)));
    }
    patch_all(store, patches, 200).await;
    (user_changes, groups_touched * 10)
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start a runtime");
    runtime.block_on(run());
}

async fn run() {
    let sizes = sizes();
    let folder = tempfile::tempdir().expect("create a temp folder");
    let store = Store::open(&folder.path().join("bench.redb")).expect("open the store");
    let policy = Arc::new(ArcSwap::from_pointee(policy(folder.path())));
    let guard = GuardConfig {
        max_removed: u64::MAX,
        max_removed_share: 1.0,
        max_removed_floor: u64::MAX,
    };
    let export = folder.path().join("organization.json");
    let metrics = Arc::new(Metrics::default());
    let organization =
        Organization::new(store.clone(), policy, guard, Some(export.clone()), metrics);
    let mut sequence = Sequence(7);
    let mut rows: Vec<(String, String)> = Vec::new();

    let clock = Instant::now();
    let users = provision_users(&store, sizes.users).await;
    let groups = provision_groups(&store, &users, sizes.groups, &mut sequence).await;
    rows.push((
        format!(
            "provision {} users, {} groups, {} memberships",
            users.len(),
            groups.len(),
            groups.len() * MEMBERS_PER_GROUP
        ),
        format!("{:.2} s", clock.elapsed().as_secs_f64()),
    ));

    let clock = Instant::now();
    let first = organization
        .request(Trigger::Startup)
        .await
        .expect("first sync");
    rows.push((
        format!(
            "first sync ({} changes, export included)",
            first.counts.total()
        ),
        format!("{:.2} s", clock.elapsed().as_secs_f64()),
    ));

    let clock = Instant::now();
    organization.export().await.expect("export");
    let size = std::fs::metadata(&export)
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    rows.push((
        format!("export alone ({} MB)", size / 1_000_000),
        format!("{:.2} s", clock.elapsed().as_secs_f64()),
    ));

    let (user_changes, membership_changes) =
        change_one_percent(&store, &users, &groups, &mut sequence).await;
    let clock = Instant::now();
    let incremental = organization
        .request(Trigger::Schedule)
        .await
        .expect("incremental sync");
    rows.push((
        format!(
            "incremental sync ({user_changes} user patches, {membership_changes} membership changes: {} changes, export included)",
            incremental.counts.total()
        ),
        format!("{:.2} s", clock.elapsed().as_secs_f64()),
    ));

    let mut latencies = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let name = format!("USER{}@example.com", sequence.next(users.len()));
        let clock = Instant::now();
        let found = organization.access(&name).await.expect("access lookup");
        latencies.push(clock.elapsed());
        assert!(found.is_some(), "{name} is provisioned");
    }
    latencies.sort();
    rows.push((
        "access(user) p50".to_string(),
        format!("{:.3} ms", percentile(&latencies, 0.50).as_secs_f64() * 1e3),
    ));
    rows.push((
        "access(user) p99".to_string(),
        format!("{:.3} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3),
    ));

    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!("{:width$}  time", "step");
    for (name, value) in rows {
        println!("{name:width$}  {value}");
    }
    store.close().await;
}
